"""Seed data shared by the benchmarks: the red product, orgs with a member and plenty of credits."""

from decimal import Decimal


def seed(orgs: int) -> dict:
    from billing.models import GrantType, MetricPrice
    from billing.services.accounts import open_organization
    from billing.services.catalog import load_catalog
    from billing.services.grants import grant_credits
    from orgs.models import Product
    from orgs.services.audit import Actor
    from orgs.services.memberships import upsert_membership
    from orgs.services.products import issue_api_key

    actor = Actor.system("bench")
    load_catalog(
        {
            "products": {
                "red": {"name": "Red", "metrics": {"fix_run": {"unit": "run", "credits_per_unit": "2.5"}}}
            },
            "plans": {
                "free": {"monthly_credits": "1000", "seats": 3, "overage": False},
                "pro": {
                    "monthly_credits": "20000",
                    "seats": 20,
                    "overage": True,
                    "monthly_price_cents": 4900,
                    "overage_cents_per_credit": "0.5",
                },
            },
        }
    )
    product = Product.objects.get(slug="red")
    org_ids = []
    for n in range(orgs):
        org = open_organization(
            name=f"Bench {n}", billing_email=f"b{n}@bench.example", owner_user_id="owner", actor=actor
        )
        upsert_membership(org=org, user_id="member", role="member", actor=actor)
        # Plenty of credits: the common path, where events are covered and no overage is written.
        grant_credits(
            org=org, amount=Decimal(10**9), grant_type=GrantType.PURCHASE, reason="bench", actor=actor
        )
        org_ids.append(org.public_id)
    _, key = issue_api_key(product=product, name="bench", actor=actor)
    price = MetricPrice.objects.get(metric__product=product, metric__key="fix_run")
    return {"key": key, "org_ids": org_ids, "product_id": product.pk, "price_id": price.pk}
