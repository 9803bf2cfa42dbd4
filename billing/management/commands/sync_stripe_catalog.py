import json

from django.core.management.base import BaseCommand, CommandError

from billing.services.catalog_sync import sync_stripe_catalog
from billing.stripe_api import StripeRefused, StripeUnavailable


class Command(BaseCommand):
    help = (
        "Publish the catalog to Stripe: a product and monthly price per paid plan, the overage_credits "
        "meter and each overage plan's metered price; idempotent by lookup keys. Run it before the "
        "first checkout in every environment."
    )

    def handle(self, *args, **options):
        try:
            created = sync_stripe_catalog()
        except (StripeUnavailable, StripeRefused) as error:
            raise CommandError(f"Stripe: {error.message} {error.details}") from None
        self.stdout.write(json.dumps(created))
