"""Finding stored objects, rendering them as the API answers them (`expand[]`), list pagination."""

import copy

from tests.stripe_standin import objects
from tests.stripe_standin.server.forms import StripeError, _int, _no_such

# Id prefixes and the kind of object they name (for `get`, `set` and `expand[]`).
_ID_KINDS = {
    "acct": "account",
    "cus": "customer",
    "prod": "product",
    "price": "price",
    "mtr": "billing.meter",
    "cs": "checkout.session",
    "sub": "subscription",
    "sub_sched": "subscription_schedule",
    "in": "invoice",
    "evt": "event",
    "pi": "payment_intent",
    "ch": "charge",
    "cbtxn": "customer_balance_transaction",
    "pm": "payment_method",
    "re": "refund",
}
_KINDS = tuple(_ID_KINDS.values())


class StorageMixin:
    """Lookup, rendering, `expand[]` and lists, mixed into `StripeStandin` (core.py)."""

    # --- storage and rendering -----------------------------------------------------------------------

    def _find(self, id: str, kind: str | None = None) -> dict:
        kind = kind or _kind_of(id)
        if kind is None:  # a caller-chosen id (products may have one): look everywhere
            kind = next((k for k, store in self._objects.items() if id in store), None)
        obj = self._objects.get(kind, {}).get(id) if kind else None
        if obj is None:
            raise _no_such(kind or "object", id)
        return obj

    def _render(self, obj: dict, expand: list | None = None) -> dict:
        """The object as the API answers it: a copy; invoices show their first ten lines."""
        obj = copy.deepcopy(obj)
        if obj.get("object") == "invoice":
            lines = obj["lines"]["data"]
            obj["lines"] = objects.list_object(
                lines[: objects.INVOICE_LINES_PAGE],
                f"/v1/invoices/{obj['id']}/lines",
                has_more=len(lines) > objects.INVOICE_LINES_PAGE,
                total_count=len(lines),
            )
        for path in expand or []:
            obj = self._expand(obj, path.split("."))
        return obj

    def _expand(self, node, parts: list[str]):
        if isinstance(node, list):
            return [self._expand(item, parts) for item in node]
        if not isinstance(node, dict) or not parts:
            return node
        key, rest = parts[0], parts[1:]
        if key not in node:
            extra = self._expandable_extra(node, key)
            if extra is None:
                return node
            node[key] = extra
        value = node[key]
        if isinstance(value, str):
            value = self._resolve(value)
        elif isinstance(value, list) and not rest:
            value = [self._resolve(item) if isinstance(item, str) else item for item in value]
        node[key] = self._expand(value, rest) if rest else value
        return node

    def _resolve(self, id: str):
        try:
            return self._render(self._find(id))
        except StripeError:
            return id  # not an id of a stored object: left as it is

    def _expandable_extra(self, node: dict, key: str):
        """Fields Stripe includes only when expanded."""
        kind = node.get("object")
        if kind == "customer" and key in ("sources", "tax_ids"):
            return objects.list_object([], f"/v1/customers/{node['id']}/{key}")
        if kind == "customer" and key == "subscriptions":
            subs = [
                self._render(s)
                for s in reversed(self._objects["subscription"].values())
                if s["customer"] == node["id"] and s["status"] != "canceled"
            ]
            return objects.list_object(subs, f"/v1/customers/{node['id']}/subscriptions")
        if kind == "checkout.session" and key == "line_items":
            items = copy.deepcopy(self._checkout_items.get(node["id"], []))
            return objects.list_object(items, f"/v1/checkout/sessions/{node['id']}/line_items")
        if kind == "item" and key == "discounts":
            return []
        if key == "breakdown" and "amount_discount" in node:
            return {"discounts": [], "taxes": []}
        return None

    def _list(self, kind_or_items, params: dict, url: str, predicate=None, newest_first: bool = True) -> dict:
        if isinstance(kind_or_items, str):
            items = list(self._objects[kind_or_items].values())
        else:
            items = list(kind_or_items)
        if newest_first:
            items.reverse()
        if predicate is not None:
            items = [item for item in items if predicate(item)]
        limit = _int(params, "limit", 10)
        if not 1 <= limit <= 100:
            raise StripeError(400, "Invalid limit: must be between 1 and 100", param="limit")
        ids = [item["id"] for item in items]
        if params.get("starting_after"):
            cursor = params["starting_after"]
            if cursor not in ids:
                raise _no_such("object", cursor, param="starting_after")
            start = ids.index(cursor) + 1
            page, has_more = items[start : start + limit], start + limit < len(items)
        elif params.get("ending_before"):
            cursor = params["ending_before"]
            if cursor not in ids:
                raise _no_such("object", cursor, param="ending_before")
            end = ids.index(cursor)
            page, has_more = items[max(end - limit, 0) : end], end - limit > 0
        else:
            page, has_more = items[:limit], len(items) > limit
        expand = [p.removeprefix("data.") for p in params.get("expand", []) if p.startswith("data.")]
        return objects.list_object([self._render(item, expand) for item in page], url, has_more=has_more)

    def _retrieve(self, kind: str, id: str, params: dict) -> dict:
        obj = self._objects[kind].get(id)
        if obj is None:
            raise _no_such(kind, id)
        return self._render(obj, params.get("expand"))


def _kind_of(id) -> str | None:
    if not isinstance(id, str) or "_" not in id:
        return None
    if id.startswith("sub_sched_"):
        return "subscription_schedule"
    return _ID_KINDS.get(id.split("_", 1)[0])
