"""The route table: every endpoint, its handler and the parameters it models."""

import re

from tests.stripe_standin.server.catalog import _PRICE_CREATE_FIELDS, _PRICE_UPDATE_FIELDS, _PRODUCT_FIELDS
from tests.stripe_standin.server.checkout import _CHECKOUT_FIELDS
from tests.stripe_standin.server.customers import _BALANCE_TRANSACTION_FIELDS, _CUSTOMER_FIELDS
from tests.stripe_standin.server.meters import _METER_EVENT_FIELDS, _METER_FIELDS
from tests.stripe_standin.server.payments import _PAYMENT_INTENT_FIELDS, _REFUND_FIELDS
from tests.stripe_standin.server.schedules import _SCHEDULE_CREATE_FIELDS, _SCHEDULE_UPDATE_FIELDS
from tests.stripe_standin.server.subscriptions import _SUBSCRIPTION_UPDATE_FIELDS

_LIST_PARAMS = {"limit", "starting_after", "ending_before", "expand"}


class RoutesMixin:
    """The route table, mixed into `StripeStandin` (core.py)."""

    # --- routes -------------------------------------------------------------------------------------

    def _build_routes(self):
        table = [
            ("GET", "/v1/account", self._get_account, set()),
            ("GET", "/v1/accounts/([^/]+)", self._get_account_by_id, set()),
            ("POST", "/v1/customers", self._create_customer, _CUSTOMER_FIELDS),
            ("GET", "/v1/customers", self._list_customers, {"email", "created", "test_clock"}),
            ("GET", "/v1/customers/([^/]+)", self._get_customer, set()),
            ("POST", "/v1/customers/([^/]+)", self._update_customer, _CUSTOMER_FIELDS),
            ("DELETE", "/v1/customers/([^/]+)", self._delete_customer, set()),
            (
                "POST",
                "/v1/customers/([^/]+)/balance_transactions",
                self._create_balance_transaction,
                _BALANCE_TRANSACTION_FIELDS,
            ),
            ("GET", "/v1/customers/([^/]+)/balance_transactions", self._list_balance_transactions, set()),
            ("POST", "/v1/products", self._create_product, _PRODUCT_FIELDS | {"id"}),
            ("GET", "/v1/products", self._list_products, {"active", "ids", "created", "shippable", "url"}),
            ("GET", "/v1/products/([^/]+)", self._get_product, set()),
            ("POST", "/v1/products/([^/]+)", self._update_product, _PRODUCT_FIELDS | {"default_price"}),
            ("GET", "/v1/products/([^/]+)/features", self._list_product_features, set()),
            ("POST", "/v1/prices", self._create_price, _PRICE_CREATE_FIELDS),
            (
                "GET",
                "/v1/prices",
                self._list_prices,
                {"active", "currency", "lookup_keys", "product", "type"},
            ),
            ("GET", "/v1/prices/([^/]+)", self._get_price, set()),
            ("POST", "/v1/prices/([^/]+)", self._update_price, _PRICE_UPDATE_FIELDS),
            ("POST", "/v1/billing/meters", self._create_meter, _METER_FIELDS),
            ("GET", "/v1/billing/meters", self._list_meters, {"status"}),
            ("GET", "/v1/billing/meters/([^/]+)", self._get_meter, set()),
            ("POST", "/v1/billing/meters/([^/]+)", self._update_meter, {"display_name"}),
            ("POST", "/v1/billing/meters/([^/]+)/deactivate", self._deactivate_meter, set()),
            ("POST", "/v1/billing/meters/([^/]+)/reactivate", self._reactivate_meter, set()),
            (
                "GET",
                "/v1/billing/meters/([^/]+)/event_summaries",
                self._meter_event_summaries,
                {"customer", "start_time", "end_time", "value_grouping_window"},
            ),
            ("POST", "/v1/billing/meter_events", self._create_meter_event, _METER_EVENT_FIELDS),
            ("POST", "/v1/checkout/sessions", self._create_checkout_session, _CHECKOUT_FIELDS),
            (
                "GET",
                "/v1/checkout/sessions",
                self._list_checkout_sessions,
                {"customer", "status", "subscription", "payment_intent", "created"},
            ),
            ("GET", "/v1/checkout/sessions/([^/]+)", self._get_checkout_session, set()),
            ("GET", "/v1/checkout/sessions/([^/]+)/line_items", self._list_checkout_line_items, set()),
            ("POST", "/v1/checkout/sessions/([^/]+)/expire", self._expire_checkout_session, set()),
            (
                "GET",
                "/v1/subscriptions",
                self._list_subscriptions,
                {"customer", "status", "price", "created"},
            ),
            ("GET", "/v1/subscriptions/([^/]+)", self._get_subscription, set()),
            ("POST", "/v1/subscriptions/([^/]+)", self._update_subscription, _SUBSCRIPTION_UPDATE_FIELDS),
            (
                "DELETE",
                "/v1/subscriptions/([^/]+)",
                self._cancel_subscription,
                {"cancellation_details", "invoice_now", "prorate"},
            ),
            ("POST", "/v1/subscription_schedules", self._create_schedule, _SCHEDULE_CREATE_FIELDS),
            ("GET", "/v1/subscription_schedules/([^/]+)", self._get_schedule, set()),
            ("POST", "/v1/subscription_schedules/([^/]+)", self._update_schedule, _SCHEDULE_UPDATE_FIELDS),
            (
                "POST",
                "/v1/subscription_schedules/([^/]+)/release",
                self._release_schedule,
                {"preserve_cancel_date"},
            ),
            ("POST", "/v1/payment_intents", self._create_payment_intent, _PAYMENT_INTENT_FIELDS),
            ("GET", "/v1/payment_intents/([^/]+)", self._get_payment_intent, set()),
            ("GET", "/v1/charges/([^/]+)", self._get_charge, set()),
            ("GET", "/v1/payment_methods/([^/]+)", self._get_payment_method, set()),
            ("POST", "/v1/refunds", self._create_refund, _REFUND_FIELDS),
            ("GET", "/v1/subscription_items", self._list_subscription_items, {"subscription"}),
            ("GET", "/v1/invoices", self._list_invoices, {"customer", "subscription", "status", "created"}),
            ("GET", "/v1/invoices/([^/]+)", self._get_invoice, set()),
            ("GET", "/v1/invoices/([^/]+)/lines", self._list_invoice_lines, set()),
            ("POST", "/v1/invoices/([^/]+)/pay", self._pay_invoice, {"paid_out_of_band"}),
            ("POST", "/v1/invoices/([^/]+)/void", self._void_invoice, set()),
            ("POST", "/v1/invoices/([^/]+)/mark_uncollectible", self._mark_invoice_uncollectible, set()),
            ("GET", "/v1/events", self._list_events, {"type", "types", "created"}),
            ("GET", "/v1/events/([^/]+)", self._get_event, set()),
        ]
        routes = []
        for method, pattern, handler, allowed in table:
            listing = handler.__name__.startswith("_list") or handler == self._meter_event_summaries
            extra = _LIST_PARAMS if listing else {"expand"}
            routes.append((method, re.compile(pattern), handler, set(allowed) | extra))
        return routes
