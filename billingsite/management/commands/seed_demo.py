import random
import tomllib
from datetime import timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import transaction
from django.utils import timezone

from billing.models import GrantType
from billing.services.accounts import open_organization
from billing.services.catalog import load_catalog
from billing.services.grants import grant_credits
from orgs.models import Organization, Product, Role
from orgs.services.audit import Actor
from orgs.services.invitations import create_invitation
from orgs.services.memberships import upsert_membership
from orgs.services.products import issue_api_key
from usage.services.events import record_usage_events
from usage.services.rollup import rollup_usage

CATALOG = settings.BASE_DIR / "catalog" / "example.toml"

ORGS: list[dict[str, Any]] = [
    {
        "name": "Acme Robotics",
        "slug": "acme",
        "billing_email": "billing@acme.example",
        "members": [
            ("u_ada", "ada@acme.example", Role.OWNER),
            ("u_grace", "grace@acme.example", Role.BILLING),
        ],
        "invite": ("linus@acme.example", Role.MEMBER),
        "usage": {"red": {"fix_run": 3, "review_minute": 8}, "blue": {"build_minute": 8}},
    },
    {
        "name": "Globex",
        "slug": "globex",
        "billing_email": "ap@globex.example",
        "members": [
            ("u_hank", "hank@globex.example", Role.OWNER),
            ("u_mona", "mona@globex.example", Role.ADMIN),
            ("u_otto", "otto@globex.example", Role.MEMBER),
        ],
        "invite": None,
        "usage": {"green": {"api_call": 600}, "red": {"fix_run": 2}},
    },
    {
        "name": "Ada's sandbox",
        "slug": "ada-personal",
        "billing_email": "ada@acme.example",
        "personal": True,
        "members": [("u_ada", "ada@acme.example", Role.OWNER)],
        "invite": None,
        "usage": {"red": {"fix_run": 1}},
    },
]
DAYS_OF_USAGE = 21  # about 60 % of each org's credits: the demo shows usage, not debt


class Command(BaseCommand):
    help = (
        "Load the example catalog, demo organizations, members, credits and three weeks of usage "
        "(idempotent), and print a new API key for the product red."
    )

    def handle(self, *args, **options):
        actor = Actor.system("seed_demo")
        with open(CATALOG, "rb") as handle:
            load_catalog(tomllib.load(handle))
        products = {product.slug: product for product in Product.objects.all()}
        with transaction.atomic():
            for spec in ORGS:
                if not Organization.objects.filter(slug=spec["slug"]).exists():
                    self._open(spec, actor, Actor.for_product(products["red"]))
        acme = Organization.objects.get(slug="acme")
        grant_credits(
            org=acme,
            amount=Decimal("500"),
            grant_type=GrantType.PROMOTIONAL,
            reason="Welcome credits (demo)",
            idempotency_key="demo-welcome",
            actor=Actor.for_product(products["red"]),
        )
        events = self._usage(products)
        rollup_usage()  # the org page charts usage from the hourly buckets
        _, key = issue_api_key(product=products["red"], name="demo", actor=actor)
        self.stdout.write(
            f"Demo data loaded: {len(products)} products, {len(ORGS)} organizations, "
            f"{events['accepted']} new usage events ({events['duplicates']} already there)."
        )
        self.stdout.write(f"API key for the product red (shown once): {key}")

    def _open(self, spec, actor, product_actor):
        (owner_id, owner_email, _), *others = spec["members"]
        org = open_organization(
            name=spec["name"],
            slug=spec["slug"],
            billing_email=spec["billing_email"],
            personal=spec.get("personal", False),
            owner_user_id=owner_id,
            owner_email=owner_email,
            actor=actor,
        )
        for user_id, email, role in others:
            upsert_membership(org=org, user_id=user_id, role=role, email=email, actor=product_actor)
        if spec["invite"]:
            email, role = spec["invite"]
            create_invitation(org=org, email=email, role=role, actor=product_actor)

    def _usage(self, products) -> dict:
        """Deterministic event ids, so a rerun finds them all as duplicates."""
        totals = {"accepted": 0, "duplicates": 0}
        now = timezone.now()
        for spec in ORGS:
            org = Organization.objects.get(slug=spec["slug"])
            user_id = spec["members"][0][0]
            for product_slug, metrics in spec["usage"].items():
                rng = random.Random(f"{spec['slug']}-{product_slug}")
                events = []
                for day in range(DAYS_OF_USAGE, 0, -1):
                    for metric, per_day in metrics.items():
                        for n in range(rng.randint(per_day // 2, per_day)):
                            events.append(
                                {
                                    "event_id": f"demo-{spec['slug']}-{metric}-{day}-{n}",
                                    "org_id": org.public_id,
                                    "metric": metric,
                                    "quantity": str(rng.randint(1, 3)),
                                    "occurred_at": (
                                        now - timedelta(days=day, minutes=rng.randint(0, 1200))
                                    ).isoformat(),
                                    "user_id": user_id,
                                }
                            )
                for start in range(0, len(events), 1000):
                    result = record_usage_events(
                        product=products[product_slug], events=events[start : start + 1000]
                    )
                    totals["accepted"] += result["accepted"]
                    totals["duplicates"] += result["duplicates"]
        return totals
