import csv
import json

from django.core.management.base import BaseCommand, CommandError

from orgs.models import Product
from orgs.services.audit import Actor
from orgs.services.memberships import import_memberships

COLUMNS = ["org_id", "user_id", "role", "email"]


class Command(BaseCommand):
    help = (
        "Bulk-import a product's memberships (CSV with the header org_id,user_id,role,email) through "
        "the membership service; idempotent. Prints counts of created, updated, unchanged and "
        "rejected rows, with the reason for each rejection."
    )

    def add_arguments(self, parser):
        parser.add_argument("file")
        parser.add_argument("--product", required=True, help="the product these memberships come from")

    def handle(self, *args, file, product, **options):
        product_row = Product.objects.filter(slug=product).first()
        if product_row is None:
            raise CommandError(f"No product {product!r}; create it with createproduct first.")
        try:
            with open(file, newline="", encoding="utf-8-sig") as handle:
                reader = csv.DictReader(handle)
                header = [name.strip() for name in reader.fieldnames or []]
                if header != COLUMNS:
                    raise CommandError(f"The first line must be the header {','.join(COLUMNS)}.")
                rows = [{k.strip(): (v or "").strip() for k, v in row.items() if k} for row in reader]
        except OSError as error:
            raise CommandError(f"Cannot read {file}: {error}") from None

        result = import_memberships(rows=rows, actor=Actor.for_product(product_row))

        for rejection in result["rejections"]:
            # Row numbers count data rows; the file line is one more (the header).
            self.stderr.write(
                f"line {rejection['row'] + 1}: rejected ({rejection['reason']}): "
                f"{rejection['org_id']},{rejection['user_id']}"
            )
        self.stdout.write(json.dumps(result))
