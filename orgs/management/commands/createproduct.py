from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.core.validators import validate_slug

from orgs.services.audit import Actor
from orgs.services.products import ensure_product, issue_api_key


class Command(BaseCommand):
    help = "Create the product if needed and issue a new API key; the key is printed alone, last, once."

    def add_arguments(self, parser):
        parser.add_argument("slug")
        parser.add_argument("--name")

    def handle(self, *args, slug, name, **options):
        try:
            validate_slug(slug)
        except ValidationError:
            raise CommandError(f"{slug!r} is not a slug (letters, digits, - and _).") from None
        product, created = ensure_product(slug=slug, name=name)
        _, key = issue_api_key(product=product, name="createproduct", actor=Actor.system("createproduct"))
        self.stdout.write(f"{'Created' if created else 'Found'} product {product.slug}; new API key:")
        self.stdout.write(key)
