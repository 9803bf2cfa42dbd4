"""Reference data every database starts with, loaded by a data migration."""

from decimal import Decimal

# DESIGN.md's suggested defaults; load_catalog overwrites them from the catalog.
DEFAULT_PLANS = {
    "free": {"monthly_credits": Decimal("1000"), "seat_limit": 3, "overage_allowed": False},
    "pro": {"monthly_credits": Decimal("20000"), "seat_limit": 20, "overage_allowed": True},
    "team": {"monthly_credits": Decimal("100000"), "seat_limit": None, "overage_allowed": True},
}


def create_default_plans(apps, schema_editor=None):
    Plan = apps.get_model("billing", "Plan")
    for name, terms in DEFAULT_PLANS.items():
        Plan.objects.get_or_create(name=name, defaults=terms)
