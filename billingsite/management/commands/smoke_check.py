import json
import uuid

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.test import Client
from django.utils import timezone

from billing.services.accounts import soft_delete_organization
from orgs.models import Organization, Product
from orgs.services.audit import Actor
from orgs.services.products import issue_api_key, revoke_api_key


class StepFailed(Exception):
    pass


class Command(BaseCommand):
    help = (
        "The end-to-end proof before a product relies on this service: over the real API (in process, "
        "with a temporary key of the product) create a throwaway org, invite, accept, check an "
        "entitlement, record usage; then clean up. Exits non-zero naming the first step that failed."
    )

    def add_arguments(self, parser):
        parser.add_argument("--product", required=True)

    def handle(self, *args, product, **options):
        product_row = Product.objects.filter(slug=product).first()
        if product_row is None:
            raise CommandError(f"No product {product!r}; create it with createproduct first.")
        actor = Actor.system("smoke_check")
        api_key, key = issue_api_key(product=product_row, name="smoke_check (temporary)", actor=actor)
        host = next((h.lstrip(".") for h in settings.ALLOWED_HOSTS if h.strip("*.")), "localhost")
        client = Client(HTTP_AUTHORIZATION=f"Api-Key {key}", HTTP_HOST=host)
        self.org_id = None
        try:
            self._run(client)
        except StepFailed as failure:
            raise CommandError(f"smoke check failed at step {failure}") from None
        finally:
            if self.org_id:
                org = Organization.objects.get(public_id=self.org_id)
                soft_delete_organization(org=org, actor=actor, reason="smoke check clean-up")
            revoke_api_key(api_key=api_key, actor=actor, reason="smoke check finished")
        self.stdout.write(self.style.SUCCESS(f"smoke check passed for {product}"))

    def _call(self, step: str, client: Client, method: str, path: str, body=None, expect=200) -> dict:
        response = getattr(client, method)(
            f"/api/v1/{path}",
            data=json.dumps(body) if body is not None else None,
            content_type="application/json",
        )
        if response.status_code != expect:
            raise StepFailed(
                f"'{step}': expected {expect}, got {response.status_code} {response.content[:300]!r}"
            )
        self.stdout.write(f"ok   {step}")
        return response.json() if response.content else {}

    def _run(self, client: Client) -> None:
        run = uuid.uuid4().hex[:10]
        org = self._call(
            "create org",
            client,
            "post",
            "orgs",
            {
                "name": f"smoke check {run}",
                "billing_email": "smoke@example.invalid",
                "owner_user_id": f"smoke-owner-{run}",
            },
            expect=201,
        )
        self.org_id = org["id"]
        member = f"smoke-member-{run}"
        invitation = self._call(
            "invite",
            client,
            "post",
            f"orgs/{self.org_id}/invitations",
            {"email": f"{member}@example.invalid", "role": "member"},
            expect=201,
        )
        self._call(
            "accept invitation",
            client,
            "post",
            "invitations:accept",
            {"token": invitation["token"], "user_id": member},
            expect=201,
        )
        self._call("read membership", client, "get", f"orgs/{self.org_id}/members/{member}")
        policy = self._call("read credit policy", client, "get", "credit-policy")
        if not policy["metrics"]:
            raise StepFailed("'read credit policy': the product has no metric; load the catalog first")
        metric = policy["metrics"][0]["metric"]
        decision = self._call(
            "check entitlement",
            client,
            "post",
            "entitlements:check",
            {"org_id": self.org_id, "user_id": member, "metric": metric, "quantity": "1"},
        )
        if not decision["allowed"]:
            raise StepFailed(f"'check entitlement': not allowed ({decision['reason']})")
        event = {
            "event_id": f"smoke-{run}",
            "org_id": self.org_id,
            "metric": metric,
            "quantity": "1",
            "occurred_at": timezone.now().isoformat(),
            "user_id": member,
        }
        result = self._call("record usage", client, "post", "usage/events", {"events": [event]}, expect=202)
        if result != {"accepted": 1, "duplicates": 0}:
            raise StepFailed(f"'record usage': unexpected result {result}")
