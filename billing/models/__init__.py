"""billing's models, split by topic; imported here so Django finds them as billing.models."""

from billing.models.accounts import (
    BillingAccount,
    Metric,
    MetricPrice,
    PaymentStatus,
    Plan,
    PlanQuerySet,
    SuspensionSource,
)
from billing.models.credits import (
    AllowanceClaim,
    ClaimStatus,
    CreditBalance,
    CreditGrant,
    EntryType,
    GrantType,
    Hold,
    HoldState,
    LedgerDrift,
    LedgerEntry,
)
from billing.models.invoicing import (
    CheckoutSession,
    CheckoutStatus,
    FailureResolution,
    InvoiceKind,
    InvoiceRecord,
    PaymentFailure,
    RejectedWebhook,
    StripeEventProblem,
    StripeMeter,
)
from billing.models.plan_changes import PlanChange, PlanChangeKind, PlanChangeStatus
from billing.models.purchases import CreditPurchase, PurchaseStatus, TopUpTerms
from billing.models.receipts import DenialReceipt
from billing.models.stripe_events import ReceivedStripeEvent, RejectedWebhookTally, StripeEventStatus

__all__ = [
    "AllowanceClaim",
    "BillingAccount",
    "CheckoutSession",
    "CheckoutStatus",
    "ClaimStatus",
    "CreditBalance",
    "CreditGrant",
    "CreditPurchase",
    "DenialReceipt",
    "EntryType",
    "FailureResolution",
    "GrantType",
    "Hold",
    "HoldState",
    "InvoiceKind",
    "InvoiceRecord",
    "LedgerDrift",
    "LedgerEntry",
    "Metric",
    "MetricPrice",
    "PaymentFailure",
    "PaymentStatus",
    "Plan",
    "PlanChange",
    "PlanChangeKind",
    "PlanChangeStatus",
    "PlanQuerySet",
    "PurchaseStatus",
    "ReceivedStripeEvent",
    "RejectedWebhook",
    "RejectedWebhookTally",
    "StripeEventProblem",
    "StripeEventStatus",
    "StripeMeter",
    "SuspensionSource",
    "TopUpTerms",
]
