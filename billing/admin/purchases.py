"""The org page's credit purchases: what was bought, paid, refunded, clawed back and owed."""

from billing.models import CreditPurchase
from core.admin.readonly import ReadOnlyInline
from core.admin.sections import Section, organization_page


class CreditPurchaseInline(ReadOnlyInline):
    model = CreditPurchase
    fk_name = "org"
    fields = (
        "created_at",
        "credits",
        "amount_cents",
        "currency",
        "status",
        "payment_intent_id",
        "grant",
        "refunded_cents",
        "clawed_back",
        "owed",
    )
    readonly_fields = fields
    ordering = ["-id"]


def register_purchase_section() -> None:
    """Called from BillingConfig.ready."""
    organization_page.add(Section("credit-purchases", order=35, inlines=(CreditPurchaseInline,)))
