import secrets

from django.conf import settings
from django.core.management.base import BaseCommand
from djstripe.enums import WebhookEndpointValidation
from djstripe.models import WebhookEndpoint


class Command(BaseCommand):
    help = (
        "Register a Stripe webhook endpoint with a known signing secret, without calling Stripe (for "
        "`stripe listen`, local stand-ins and tests). Prints its path alone on the last line."
    )

    def add_arguments(self, parser):
        parser.add_argument("--secret", required=True, help="the signing secret (whsec_…)")

    def handle(self, *args, secret, **options):
        endpoint = WebhookEndpoint(
            id=f"we_local_{secrets.token_hex(8)}",
            livemode=settings.STRIPE_LIVE_MODE,
            api_version=settings.STRIPE_API_VERSION,
            enabled_events=["*"],
            status="enabled",
            secret=secret,
            djstripe_validation_method=WebhookEndpointValidation.verify_signature,
        )
        endpoint.url = f"http://localhost/stripe/webhook/{endpoint.djstripe_uuid}/"
        endpoint.save()
        self.stdout.write(f"Webhook endpoint {endpoint.id} registered; its path:")
        self.stdout.write(f"/stripe/webhook/{endpoint.djstripe_uuid}/")
