import json
import tomllib

from django.core.management.base import BaseCommand, CommandError

from billing.services.catalog import CatalogError, load_catalog


class Command(BaseCommand):
    help = (
        "Create or update products, metric prices and plans from a TOML catalog; idempotent. "
        "A changed price becomes a new price version; recorded usage keeps its price."
    )

    def add_arguments(self, parser):
        parser.add_argument("file")

    def handle(self, *args, file, **options):
        try:
            with open(file, "rb") as handle:
                document = tomllib.load(handle)
        except OSError as error:
            raise CommandError(f"Cannot read {file}: {error}") from None
        except tomllib.TOMLDecodeError as error:
            raise CommandError(f"{file} is not valid TOML: {error}") from None
        try:
            changes = load_catalog(document)
        except CatalogError as error:
            raise CommandError(
                "The catalog is invalid; nothing was loaded:\n  " + "\n  ".join(error.problems)
            ) from None
        self.stdout.write(json.dumps(changes))
