from django.urls import path

from billing.api import (
    auto_top_up,
    checkout,
    credits,
    entitlements,
    organizations,
    plan_changes,
    purchases,
    spend_caps,
)

urlpatterns = [
    path("orgs", organizations.OrganizationCreateView.as_view()),
    path("orgs/<str:org_id>", organizations.OrganizationDetailView.as_view()),
    path("orgs/<str:org_id>/credits", credits.CreditsView.as_view()),
    path("orgs/<str:org_id>/credits/grants", credits.CreditGrantView.as_view()),
    path("orgs/<str:org_id>/checkout-sessions", checkout.CheckoutSessionView.as_view()),
    path("orgs/<str:org_id>/subscription:change", plan_changes.SubscriptionChangeView.as_view()),
    path("orgs/<str:org_id>/credit-purchases", purchases.CreditPurchaseView.as_view()),
    path("orgs/<str:org_id>/spend-cap", spend_caps.SpendCapView.as_view()),
    path("orgs/<str:org_id>/auto-top-up", auto_top_up.AutoTopUpView.as_view()),
    path("credit-policy", credits.CreditPolicyView.as_view()),
    path("entitlements:check", entitlements.EntitlementCheckView.as_view()),
    path("entitlements:reserve", entitlements.EntitlementReserveView.as_view()),
    path("holds/<str:hold_id>:release", entitlements.HoldReleaseView.as_view()),
]
