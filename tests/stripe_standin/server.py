"""An honest, stateful Stripe stand-in: a local HTTP server for the test suite.

It answers the Stripe API calls this project and dj-stripe 2.11 make, with real-shaped JSON in the
pinned API version (builders in objects.py), keeps state between calls, records every request, and
can inject faults. Tests point the stripe library at it (`stripe.api_base = standin.url`, done by the
`stripe_standin` fixture) and assert on what reached it. See README.md beside this file.

What "honest" means here: it answers the way Stripe documents (error shapes and statuses, list
envelopes and pagination, idempotency keys, meter-event rules); where Stripe's behaviour is not
documented the choice is written down in README.md; parameters it does not model are refused with
Stripe's `parameter_unknown` error rather than silently ignored.
"""

import copy
import hashlib
import hmac
import itertools
import json
import re
import threading
import time
import traceback
import uuid
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit

from tests.stripe_standin import objects

# --- Request decoding -------------------------------------------------------------------------

_KEY = re.compile(r"^([^\[\]]+)((?:\[[^\[\]]*\])*)$")


def decode_form(pairs: list[tuple[str, str]]) -> dict:
    """Stripe's form encoding to nested dicts and lists.

    `a[b][c]=v` → {"a": {"b": {"c": "v"}}}; `items[0][price]=p` → {"items": [{"price": "p"}]};
    `expand[]=x&expand[]=y` → {"expand": ["x", "y"]}. Values stay strings, as Stripe receives them.
    """
    root: dict = {}
    for key, value in pairs:
        match = _KEY.match(key)
        if not match:
            root[key] = value
            continue
        parts = [match.group(1), *re.findall(r"\[([^\[\]]*)\]", match.group(2))]
        node = root
        for part, following in itertools.pairwise(parts):
            if isinstance(node, list):
                child = [] if following == "" else {}
                node.append(child)
            else:
                child = node.get(part)
                if not isinstance(child, dict | list):
                    child = [] if following == "" else {}
                    node[part] = child
            node = child
        if isinstance(node, list):
            node.append(value)
        else:
            node[parts[-1]] = value
    return _listify(root)


def _listify(node):
    if isinstance(node, list):
        return [_listify(item) for item in node]
    if isinstance(node, dict):
        node = {key: _listify(value) for key, value in node.items()}
        if node and all(key.isdigit() for key in node):
            return [node[key] for key in sorted(node, key=int)]
    return node


def sign_webhook(payload: bytes | str, secret: str, timestamp: int | None = None) -> dict[str, str]:
    """Headers for a webhook delivery signed the way Stripe signs them (`t=…,v1=HMAC-SHA256`)."""
    if isinstance(payload, bytes):
        payload = payload.decode()
    timestamp = int(time.time()) if timestamp is None else timestamp
    signature = hmac.new(secret.encode(), f"{timestamp}.{payload}".encode(), hashlib.sha256).hexdigest()
    return {"Stripe-Signature": f"t={timestamp},v1={signature}"}


# --- Records, faults, errors ------------------------------------------------------------------


@dataclass
class RecordedRequest:
    """One request that reached the stand-in, and what it answered."""

    method: str
    path: str
    params: dict
    idempotency_key: str | None
    stripe_version: str | None
    api_key: str | None
    time: float
    status: int | None = None
    response: dict | None = None
    replayed: bool = False  # answered from the idempotency cache
    fault: "Fault | None" = None  # the injected fault that answered it, if any
    note: str | None = None


@dataclass
class Fault:
    method: str
    path: "str | re.Pattern"
    status: int | None
    times: int
    body: dict | None
    delay: float | None
    after: bool
    headers: dict = field(default_factory=dict)

    def matches(self, method: str, path: str) -> bool:
        if self.method not in ("*", method):
            return False
        if isinstance(self.path, re.Pattern):
            return bool(self.path.search(path))
        return path.startswith(self.path)


@dataclass
class _Saved:
    method: str
    path: str
    params: dict
    status: int
    body: dict
    time: float


@dataclass
class _Response:
    status: int
    body: dict
    headers: dict = field(default_factory=dict)
    delay: float | None = None


class StripeError(Exception):
    """A Stripe error answer. `saved`: stored under the idempotency key (Stripe saves a result only
    once the endpoint has begun executing, so validation errors are not saved)."""

    def __init__(self, status, message, *, type="invalid_request_error", code=None, param=None, saved=False):
        super().__init__(message)
        self.status = status
        self.body = objects.error_body(message, type=type, code=code, param=param)
        self.saved = saved


def _missing(param: str) -> StripeError:
    return StripeError(400, f"Missing required param: {param}.", code="parameter_missing", param=param)


def _no_such(kind: str, id: str, param: str | None = None) -> StripeError:
    status = 400 if param else 404
    return StripeError(status, f"No such {kind}: '{id}'", code="resource_missing", param=param or "id")


_DEFAULT_FAULT_MESSAGES = {
    429: (
        "invalid_request_error",
        "rate_limit",
        "Request rate limit exceeded. Learn more about rate limits here https://stripe.com/docs/rate-limits.",
    ),
    409: (
        "invalid_request_error",
        "lock_timeout",
        "This object cannot be accessed right now because another API request or Stripe process is "
        "currently accessing it. If you see this error intermittently, retry the request.",
    ),
}


def _fault_body(status: int) -> dict:
    if status in _DEFAULT_FAULT_MESSAGES:
        type, code, message = _DEFAULT_FAULT_MESSAGES[status]
        return objects.error_body(message, type=type, code=code)
    if status >= 500:
        return objects.error_body(
            "An unknown error occurred. Please retry the request.", type="api_error", code=None
        )
    return objects.error_body("The request failed (injected by the Stripe stand-in).")


# --- Parameter helpers --------------------------------------------------------------------------

_TRUE, _FALSE = "true", "false"


def _int(params: dict, name: str, default=None) -> int | None:
    value = params.get(name)
    if value is None:
        return default
    try:
        return int(value)
    except (TypeError, ValueError):
        raise StripeError(
            400, f"Invalid integer: {value}", code="parameter_invalid_integer", param=name
        ) from None


def _bool(params: dict, name: str, default=None) -> bool | None:
    value = params.get(name)
    if value is None:
        return default
    if value in (_TRUE, _FALSE):
        return value == _TRUE
    raise StripeError(400, f"Invalid boolean: {value}", param=name)


def _dict(params: dict, name: str) -> dict:
    value = params.get(name)
    if value in (None, ""):
        return {}
    if not isinstance(value, dict):
        raise StripeError(400, f"Invalid object: {name} must be a hash", param=name)
    return value


def _merge_metadata(current: dict, update) -> dict:
    """Stripe's metadata update: keys merge; an empty value (or `metadata=""`) unsets."""
    if update == "":
        return {}
    if not isinstance(update, dict):
        raise StripeError(400, "Invalid object", param="metadata")
    merged = dict(current)
    for key, value in update.items():
        if value == "":
            merged.pop(key, None)
        else:
            merged[key] = value
    return merged


def _nullable(value):
    return None if value == "" else value


# --- The server -----------------------------------------------------------------------------------

_LIST_PARAMS = {"limit", "starting_after", "ending_before", "expand"}
# Id prefixes and the kind of object they name (for `get`, `set` and `expand[]`).
_ID_KINDS = {
    "acct": "account",
    "cus": "customer",
    "prod": "product",
    "price": "price",
    "mtr": "billing.meter",
    "cs": "checkout.session",
    "sub": "subscription",
    "in": "invoice",
    "evt": "event",
}
_KINDS = tuple(_ID_KINDS.values())
_SUBSCRIPTION_STATUSES = {
    "active", "canceled", "incomplete", "incomplete_expired", "past_due", "paused", "trialing", "unpaid",
}  # fmt: skip
_METER_EVENT_PAST = 35 * 24 * 3600
_METER_EVENT_FUTURE = 5 * 60
_IDENTIFIER_WINDOW = 24 * 3600
_IDEMPOTENCY_WINDOW = 24 * 3600


class StripeStandin:
    """The stand-in. Start it once (`start()`), `reset()` it between tests, `stop()` it at the end.

    Test-side helpers seed state (`add_customer`, `add_price`, `add_subscription`, `add_invoice`,
    `set`, `update`), build webhook payloads (`event`), inject faults (`fail_next`) and read what was
    sent (`requests`, `requests_to`, `meter_events`).
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0):
        self._lock = threading.RLock()
        self._httpd = ThreadingHTTPServer((host, port), _Handler)
        self._httpd.daemon_threads = True
        self._httpd.standin = self  # type: ignore[attr-defined]
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="stripe-standin", daemon=True)
        self._routes = self._build_routes()
        self.reset()

    # --- lifecycle ----------------------------------------------------------------------------

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> "StripeStandin":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def reset(self) -> None:
        """Forget every object, request, meter event, idempotency key and pending fault."""
        with self._lock:
            self._objects: dict[str, dict[str, dict]] = {kind: {} for kind in _KINDS}
            self._checkout_items: dict[str, list[dict]] = {}
            self._checkout_subscription_data: dict[str, dict] = {}
            self._meter_events: list[dict] = []
            self._identifiers: dict[str, float] = {}
            self.meter_event_errors: list[dict] = []
            self._idempotency: dict[str, _Saved] = {}
            self._faults: list[Fault] = []
            self.requests: list[RecordedRequest] = []
            self.internal_errors: list[str] = []
            # Replace to move the stand-in's clock on its own (time_machine moves it with the test's).
            self.clock = time.time
            # Meter events younger than this many seconds are left out of summaries (Stripe aggregates
            # asynchronously; its summaries are "eventually consistent"). 0: counted at once.
            self.summary_delay = 0
            self.account = objects.account(id="acct_1StandinTestAcct")
            self._objects["account"][self.account["id"]] = self.account

    def _now(self) -> int:
        return int(self.clock())

    # --- test-side: reading what was sent -------------------------------------------------------

    def requests_to(self, method: str, path: "str | re.Pattern") -> list[RecordedRequest]:
        """The recorded requests with this method (`*` for any) whose path starts with / matches `path`."""
        probe = Fault(method.upper() if method != "*" else "*", path, None, 0, None, None, False)
        with self._lock:
            return [r for r in self.requests if probe.matches(r.method, r.path)]

    @property
    def meter_events(self) -> list[dict]:
        """The accepted meter events (billing.meter_event objects), oldest first."""
        with self._lock:
            return copy.deepcopy(self._meter_events)

    def calls(self) -> list[str]:
        """`METHOD /path` of every recorded request, in order: handy in assertion messages."""
        with self._lock:
            return [f"{r.method} {r.path}" for r in self.requests]

    # --- test-side: faults --------------------------------------------------------------------

    def fail_next(
        self,
        method: str,
        path: "str | re.Pattern",
        status: int | None = 500,
        times: int = 1,
        body: dict | None = None,
        delay: float | None = None,
        after: bool = False,
        headers: dict | None = None,
    ) -> Fault:
        """Answer the next `times` matching requests with a fault instead of the real answer.

        `path` is a prefix (`"/v1/billing/meter_events"`) or a compiled regex. `status` 5xx answers
        Stripe's `api_error`, 429 its rate limit, 409 its lock timeout, unless `body` is given.
        `delay` sleeps that many seconds before answering (longer than the client's timeout = a
        timeout). By default the request does not reach the stand-in's logic (nothing changes and
        nothing is stored under its idempotency key); `after=True` runs it first and then answers the
        fault, the "Stripe did it but the answer was lost" case. `status=None` answers the real
        response (after `delay`).
        """
        fault = Fault(
            method.upper(), path, status, times, body, delay, after or status is None, headers or {}
        )
        with self._lock:
            self._faults.append(fault)
        return fault

    # --- test-side: seeding state ---------------------------------------------------------------

    def set(self, obj: dict) -> dict:
        """Store `obj` (a whole object with `id` and `object`), replacing any with the same id.

        Invoices are stored with all their lines (`lines.data`); a checkout session's expanded
        `line_items`, if present, become its line items.
        """
        kind = obj["object"]
        if kind not in self._objects:
            raise ValueError(f"the stand-in does not store {kind!r} objects")
        obj = copy.deepcopy(obj)
        with self._lock:
            if kind == "checkout.session":
                items = obj.pop("line_items", None)
                if items is not None:
                    self._checkout_items[obj["id"]] = items["data"]
                self._checkout_items.setdefault(obj["id"], [])
            self._objects[kind][obj["id"]] = obj
            return copy.deepcopy(obj)

    def get(self, id: str) -> dict:
        """A copy of the stored object with this id (invoices with all their lines)."""
        with self._lock:
            return copy.deepcopy(self._find(id))

    def get_all(self, kind: str) -> list[dict]:
        """Copies of every stored object of a kind (`"customer"`, `"invoice"`, …), oldest first."""
        with self._lock:
            return copy.deepcopy(list(self._objects[kind].values()))

    def update(self, id: str, **fields) -> dict:
        """Shallow-merge `fields` into the stored object and return it (e.g. `status="paid"`)."""
        with self._lock:
            obj = self._find(id)
            obj.update(copy.deepcopy(fields))
            return copy.deepcopy(obj)

    def add_customer(self, **fields) -> dict:
        """A customer (`email`, `name`, `metadata`, … as in objects.customer)."""
        fields.setdefault("created", self._now())
        return self.set(objects.customer(**fields))

    def add_product(self, **fields) -> dict:
        fields.setdefault("created", self._now())
        return self.set(objects.product(**fields))

    def add_price(self, *, product: str | None = None, **fields) -> dict:
        """A price (monthly licensed by default); creates a product when none is given."""
        if product is None:
            product = self.add_product(name=fields.get("nickname") or "Plan")["id"]
        fields.setdefault("created", self._now())
        return self.set(objects.price(product=product, **fields))

    def add_meter(self, *, event_name: str, **fields) -> dict:
        fields.setdefault("created", self._now())
        return self.set(objects.meter(event_name=event_name, **fields))

    def add_subscription(self, customer: "str | dict", items: list, status: str = "active", **fields) -> dict:
        """A subscription of `customer` on `items` (price ids or price dicts, which must be stored)."""
        customer_id = customer if isinstance(customer, str) else customer["id"]
        with self._lock:
            prices = [self._find(p if isinstance(p, str) else p["id"]) for p in items]
            fields.setdefault("created", self._now())
            return self.set(
                objects.subscription(customer=customer_id, prices=prices, status=status, **fields)
            )

    def add_invoice(
        self,
        customer: "str | dict",
        subscription: "str | dict | None" = None,
        status: str = "open",
        lines: list | None = None,
        amount_paid: int | None = None,
        **fields,
    ) -> dict:
        """An invoice of `customer` with `lines`: `(price_id, amount)` or `(price_id, amount, quantity)`.

        With `subscription`, lines on one of its prices are generated by that subscription item
        (`parent.subscription_item_details`); other lines by invoice items. Any number of lines:
        the invoice embeds the first ten and `GET /v1/invoices/{id}/lines` pages through the rest.
        """
        with self._lock:
            customer_obj = self._find(customer if isinstance(customer, str) else customer["id"])
            sub = None
            if subscription is not None:
                sub = self._find(subscription if isinstance(subscription, str) else subscription["id"])
            invoice_id = fields.pop("id", None) or objects.new_id("in")
            created = fields.pop("created", None) or self._now()
            period_start = fields.pop("period_start", None) or (sub and _period(sub)[0]) or created
            period_end = fields.pop("period_end", None) or (sub and _period(sub)[1]) or created
            built = []
            for line in lines or []:
                price_id, amount, *rest = line
                price = self._find(price_id)
                item = _item_for_price(sub, price_id) if sub else None
                built.append(
                    objects.invoice_line_item(
                        invoice=invoice_id,
                        price=price,
                        amount=amount,
                        quantity=rest[0] if rest else None,
                        subscription=sub["id"] if item else None,
                        subscription_item=item["id"] if item else None,
                        period_start=period_start,
                        period_end=period_end,
                    )
                )
            obj = objects.invoice(
                id=invoice_id,
                customer=customer_obj,
                lines=built,
                subscription=sub["id"] if sub else None,
                status=status,
                amount_paid=amount_paid,
                created=created,
                period_start=period_start,
                period_end=period_end,
                **fields,
            )
            if sub is not None:
                sub["latest_invoice"] = invoice_id
            return self.set(obj)

    def event(
        self, type: str, obj: "dict | str", *, previous_attributes: dict | None = None, **fields
    ) -> dict:
        """A real-shaped event envelope of `type` around `obj` (an object or the id of a stored one),
        rendered as the API renders it (invoices with their first ten lines). The event is stored,
        so `GET /v1/events/{id}` answers it."""
        with self._lock:
            if isinstance(obj, str):
                obj = self._find(obj)
            rendered = self._render(obj)
            fields.setdefault("created", self._now())
            envelope = objects.event(type, rendered, previous_attributes=previous_attributes, **fields)
            self._objects["event"][envelope["id"]] = copy.deepcopy(envelope)
            return envelope

    def complete_checkout(self, session_id: str, *, customer: "str | None" = None) -> dict:
        """Do what Stripe does when the customer pays an open subscription-mode session: create the
        customer (if the session had none), the active subscription on the session's prices and its
        first invoice (paid); mark the session complete. Returns the session."""
        with self._lock:
            session = self._find(session_id)
            if session["status"] != "open":
                raise ValueError(f"checkout session {session_id} is {session['status']}, not open")
            now = self._now()
            customer_id = session["customer"] or customer
            if customer_id is None:
                customer_id = self.add_customer(email=session["customer_email"])["id"]
            items = self._checkout_items[session_id]
            extra = self._checkout_subscription_data.get(session_id, {})
            sub = self.add_subscription(
                customer_id,
                [item["price"]["id"] for item in items],
                quantities={item["price"]["id"]: item["quantity"] for item in items if item["quantity"]},
                metadata=extra.get("metadata") or {},
                created=now,
            )
            lines = [(item["price"]["id"], item["amount_total"], item["quantity"] or 0) for item in items]
            invoice = self.add_invoice(
                customer_id,
                subscription=sub["id"],
                status="paid",
                lines=lines,
                billing_reason="subscription_create",
            )
            customer_obj = self._find(customer_id)
            session.update(
                customer=customer_id,
                customer_details={
                    "address": customer_obj["address"],
                    "business_name": None,
                    "email": customer_obj["email"],
                    "individual_name": None,
                    "name": customer_obj["name"],
                    "phone": customer_obj["phone"],
                    "tax_exempt": "none",
                    "tax_ids": [],
                },
                invoice=invoice["id"],
                payment_status="paid",
                status="complete",
                subscription=sub["id"],
                url=None,
            )
            return copy.deepcopy(session)

    # --- request handling ---------------------------------------------------------------------------

    def handle(self, method: str, target: str, headers: dict, body: bytes) -> _Response:
        split = urlsplit(target)
        path = split.path
        pairs = parse_qsl(split.query, keep_blank_values=True)
        if body:
            pairs += parse_qsl(body.decode(), keep_blank_values=True)
        params = decode_form(pairs)
        headers = {key.lower(): value for key, value in headers.items()}
        idempotency_key = headers.get("idempotency-key") if method == "POST" else None
        authorization = headers.get("authorization", "")
        api_key = authorization[7:] if authorization.startswith("Bearer ") else None
        with self._lock:
            record = RecordedRequest(
                method=method,
                path=path,
                params=params,
                idempotency_key=idempotency_key,
                stripe_version=headers.get("stripe-version"),
                api_key=api_key,
                time=self.clock(),
            )
            self.requests.append(record)
            fault = self._take_fault(method, path)
            if fault is not None and not fault.after:
                response = _Response(
                    fault.status, fault.body or _fault_body(fault.status), dict(fault.headers)
                )
            else:
                try:
                    response = self._answer(method, path, params, idempotency_key, api_key, record)
                except Exception:  # a bug in the stand-in: answer 500 and let the fixture fail the test
                    self.internal_errors.append(traceback.format_exc())
                    record.note = "the stand-in crashed: see standin.internal_errors"
                    response = _Response(500, _fault_body(500))
                if fault is not None and fault.status is not None:
                    response = _Response(
                        fault.status, fault.body or _fault_body(fault.status), dict(fault.headers)
                    )
            record.fault = fault
            record.status = response.status
            record.response = response.body
            response.delay = fault.delay if fault else None
            request_id = objects.new_id("req")
            response.headers.setdefault("Request-Id", request_id)
            response.headers.setdefault("Stripe-Version", record.stripe_version or objects.API_VERSION)
            if idempotency_key:
                response.headers.setdefault("Idempotency-Key", idempotency_key)
            return response

    def _take_fault(self, method: str, path: str) -> Fault | None:
        for fault in self._faults:
            if fault.times > 0 and fault.matches(method, path):
                fault.times -= 1
                if fault.times == 0:
                    self._faults.remove(fault)
                return fault
        return None

    def _answer(self, method, path, params, idempotency_key, api_key, record) -> _Response:
        if not api_key:
            return _Response(
                401,
                objects.error_body(
                    "You did not provide an API key. You need to provide your API key in the Authorization "
                    "header, using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY')."
                ),
            )
        now = self.clock()
        if idempotency_key:
            self._idempotency = {
                k: v for k, v in self._idempotency.items() if now - v.time < _IDEMPOTENCY_WINDOW
            }
            saved = self._idempotency.get(idempotency_key)
            if saved is not None:
                if (saved.method, saved.path, saved.params) != (method, path, params):
                    message = (
                        "Keys for idempotent requests can only be used with the same parameters they were "
                        f"first used with. Try using a key other than '{idempotency_key}' if you meant to "
                        "execute a different request."
                    )
                    return _Response(400, objects.error_body(message, type="idempotency_error"))
                record.replayed = True
                return _Response(saved.status, copy.deepcopy(saved.body), {"Idempotent-Replayed": "true"})
        status, body, saved_result = self._route(method, path, params, record)
        if idempotency_key and saved_result:
            self._idempotency[idempotency_key] = _Saved(
                method, path, params, status, copy.deepcopy(body), now
            )
        return _Response(status, body)

    def _route(self, method, path, params, record) -> tuple[int, dict, bool]:
        for route_method, pattern, handler, allowed in self._routes:
            if route_method != method:
                continue
            match = pattern.fullmatch(path)
            if not match:
                continue
            unknown = [name for name in params if name not in allowed]
            if unknown:
                record.note = f"parameter not modelled by the stand-in (or unknown to Stripe): {unknown[0]}"
                error = StripeError(
                    400,
                    f"Received unknown parameter: {unknown[0]}",
                    code="parameter_unknown",
                    param=unknown[0],
                )
                return error.status, error.body, False
            try:
                result = handler(params, *match.groups())
            except StripeError as error:
                return error.status, error.body, error.saved
            return 200, result, True
        body = objects.error_body(
            f"Unrecognized request URL ({method}: {path}). Please see https://stripe.com/docs or we can help "
            "at https://support.stripe.com/."
        )
        record.note = "no such route in the stand-in"
        return 404, body, False

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

    # account

    def _get_account(self, params):
        return self._render(self.account, params.get("expand"))

    def _get_account_by_id(self, params, id):
        return self._retrieve("account", id, params)

    # customers

    def _create_customer(self, params):
        obj = objects.customer(created=self._now())
        self._apply_customer_fields(obj, params)
        self._objects["customer"][obj["id"]] = obj
        return self._render(obj, params.get("expand"))

    def _update_customer(self, params, id):
        obj = self._find(id, "customer")
        self._apply_customer_fields(obj, params)
        return self._render(obj, params.get("expand"))

    def _apply_customer_fields(self, obj, params):
        for name in ("email", "name", "description", "phone", "business_name", "individual_name"):
            if name in params:
                obj[name] = _nullable(params[name])
        if "metadata" in params:
            obj["metadata"] = _merge_metadata(obj["metadata"], params["metadata"])
        if "address" in params:
            obj["address"] = (
                None if params["address"] == "" else {**objects.blank_address(), **params["address"]}
            )
        if "shipping" in params:
            shipping = params["shipping"]
            obj["shipping"] = (
                None
                if shipping == ""
                else {
                    "address": {**objects.blank_address(), **shipping.get("address", {})},
                    "name": shipping.get("name"),
                    "phone": shipping.get("phone"),
                }
            )
        if "preferred_locales" in params:
            obj["preferred_locales"] = params["preferred_locales"] or []
        if "tax_exempt" in params:
            obj["tax_exempt"] = params["tax_exempt"] or "none"
        if "invoice_settings" in params:
            settings = _dict(params, "invoice_settings")
            for key in ("default_payment_method", "footer"):
                if key in settings:
                    obj["invoice_settings"][key] = _nullable(settings[key])
        if "balance" in params:
            obj["balance"] = _int(params, "balance")
        if "invoice_prefix" in params:
            obj["invoice_prefix"] = params["invoice_prefix"]
        if "next_invoice_sequence" in params:
            obj["next_invoice_sequence"] = _int(params, "next_invoice_sequence")

    def _get_customer(self, params, id):
        return self._retrieve("customer", id, params)

    def _list_customers(self, params):
        email = params.get("email")
        return self._list("customer", params, "/v1/customers", lambda c: email is None or c["email"] == email)

    def _delete_customer(self, params, id):
        self._find(id, "customer")
        del self._objects["customer"][id]
        return {"id": id, "object": "customer", "deleted": True}

    # products

    def _create_product(self, params):
        if not params.get("name"):
            raise _missing("name")
        product_id = params.get("id")
        if product_id and product_id in self._objects["product"]:
            raise StripeError(400, "Product already exists.", code="resource_already_exists", param="id")
        obj = objects.product(id=product_id or None, name=params["name"], created=self._now())
        self._apply_product_fields(obj, params)
        self._objects["product"][obj["id"]] = obj
        return self._render(obj, params.get("expand"))

    def _update_product(self, params, id):
        obj = self._find(id, "product")
        self._apply_product_fields(obj, params)
        if "default_price" in params:
            obj["default_price"] = _nullable(params["default_price"])
        obj["updated"] = self._now()
        return self._render(obj, params.get("expand"))

    def _apply_product_fields(self, obj, params):
        for name in ("name", "description", "statement_descriptor", "tax_code", "unit_label", "url"):
            if name in params:
                obj[name] = _nullable(params[name])
        if "active" in params:
            obj["active"] = _bool(params, "active")
        if "metadata" in params:
            obj["metadata"] = _merge_metadata(obj["metadata"], params["metadata"])

    def _get_product(self, params, id):
        return self._retrieve("product", id, params)

    def _list_products(self, params):
        active = _bool(params, "active")
        ids = params.get("ids")

        def keep(p):
            return (active is None or p["active"] == active) and (ids is None or p["id"] in ids)

        return self._list("product", params, "/v1/products", keep)

    def _list_product_features(self, params, id):
        # Entitlement features are not modelled: every product has none (dj-stripe asks on each sync).
        self._find(id, "product")
        return self._list([], params, f"/v1/products/{id}/features")

    # prices

    def _create_price(self, params):
        currency = params.get("currency")
        if not currency:
            raise _missing("currency")
        product_id = params.get("product")
        if product_id is None and "product_data" in params:
            data = _dict(params, "product_data")
            if not data.get("name"):
                raise _missing("product_data[name]")
            product_obj = objects.product(
                name=data["name"], metadata=data.get("metadata"), created=self._now()
            )
            self._objects["product"][product_obj["id"]] = product_obj
            product_id = product_obj["id"]
        if product_id is None:
            raise _missing("product")
        if product_id not in self._objects["product"]:
            raise _no_such("product", product_id, param="product")
        if "unit_amount" in params and "unit_amount_decimal" in params:
            raise StripeError(
                400,
                "You may only specify one of these parameters: unit_amount, unit_amount_decimal.",
                param="unit_amount_decimal",
            )
        unit_amount = _int(params, "unit_amount")
        unit_amount_decimal = params.get("unit_amount_decimal")
        if unit_amount_decimal is not None:
            try:
                Decimal(unit_amount_decimal)
            except InvalidOperation:
                raise StripeError(
                    400, f"Invalid decimal: {unit_amount_decimal}", param="unit_amount_decimal"
                ) from None
        if unit_amount is None and unit_amount_decimal is None:
            raise _missing("unit_amount")
        recurring = _dict(params, "recurring") if "recurring" in params else None
        kwargs = {"interval": None}
        if recurring is not None:
            if recurring.get("interval") not in ("day", "week", "month", "year"):
                raise (
                    _missing("recurring[interval]")
                    if not recurring.get("interval")
                    else StripeError(
                        400,
                        f"Invalid recurring[interval]: {recurring['interval']}",
                        param="recurring[interval]",
                    )
                )
            usage_type = recurring.get("usage_type", "licensed")
            if usage_type not in ("licensed", "metered"):
                raise StripeError(
                    400, f"Invalid recurring[usage_type]: {usage_type}", param="recurring[usage_type]"
                )
            meter_id = recurring.get("meter")
            if usage_type == "metered" and not meter_id:
                raise _missing("recurring[meter]")
            if meter_id and meter_id not in self._objects["billing.meter"]:
                raise _no_such("billing.meter", meter_id, param="recurring[meter]")
            kwargs = {
                "interval": recurring["interval"],
                "interval_count": _int(recurring, "interval_count", 1),
                "usage_type": usage_type,
                "meter": meter_id,
            }
        lookup_key = params.get("lookup_key")
        if lookup_key:
            self._claim_lookup_key(lookup_key, _bool(params, "transfer_lookup_key", False))
        obj = objects.price(
            product=product_id,
            unit_amount=unit_amount,
            unit_amount_decimal=unit_amount_decimal,
            currency=currency.lower(),
            lookup_key=lookup_key or None,
            nickname=params.get("nickname"),
            metadata=_merge_metadata({}, params.get("metadata", {})),
            created=self._now(),
            **kwargs,
        )
        if "active" in params:
            obj["active"] = _bool(params, "active")
        if "tax_behavior" in params:
            obj["tax_behavior"] = params["tax_behavior"]
        self._objects["price"][obj["id"]] = obj
        return self._render(obj, params.get("expand"))

    def _claim_lookup_key(self, lookup_key: str, transfer: bool, for_price: str | None = None):
        for other in self._objects["price"].values():
            if other["lookup_key"] == lookup_key and other["id"] != for_price:
                if not transfer:
                    raise StripeError(
                        400,
                        f"A price (`{other['id']}`) already uses that lookup key.",
                        param="lookup_key",
                    )
                other["lookup_key"] = None

    def _update_price(self, params, id):
        obj = self._find(id, "price")
        if "lookup_key" in params:
            lookup_key = _nullable(params["lookup_key"])
            if lookup_key:
                self._claim_lookup_key(lookup_key, _bool(params, "transfer_lookup_key", False), for_price=id)
            obj["lookup_key"] = lookup_key
        if "active" in params:
            obj["active"] = _bool(params, "active")
        if "nickname" in params:
            obj["nickname"] = _nullable(params["nickname"])
        if "metadata" in params:
            obj["metadata"] = _merge_metadata(obj["metadata"], params["metadata"])
        if "tax_behavior" in params:
            obj["tax_behavior"] = params["tax_behavior"]
        return self._render(obj, params.get("expand"))

    def _get_price(self, params, id):
        return self._retrieve("price", id, params)

    def _list_prices(self, params):
        lookup_keys = params.get("lookup_keys")
        if lookup_keys is not None and (not isinstance(lookup_keys, list) or len(lookup_keys) > 10):
            raise StripeError(400, "lookup_keys must be an array of at most 10 strings", param="lookup_keys")
        active = _bool(params, "active")
        product = params.get("product")
        type_ = params.get("type")
        currency = params.get("currency")

        def keep(p):
            return (
                (lookup_keys is None or p["lookup_key"] in lookup_keys)
                and (active is None or p["active"] == active)
                and (product is None or p["product"] == product)
                and (type_ is None or p["type"] == type_)
                and (currency is None or p["currency"] == currency)
            )

        return self._list("price", params, "/v1/prices", keep)

    # billing meters

    def _create_meter(self, params):
        for name in ("display_name", "event_name"):
            if not params.get(name):
                raise _missing(name)
        aggregation = _dict(params, "default_aggregation")
        formula = aggregation.get("formula")
        if not formula:
            raise _missing("default_aggregation[formula]")
        if formula not in ("sum", "count", "last"):
            raise StripeError(
                400, f"Invalid default_aggregation[formula]: {formula}", param="default_aggregation[formula]"
            )
        event_name = params["event_name"]
        for other in self._objects["billing.meter"].values():
            if other["event_name"] == event_name and other["status"] == "active":
                raise StripeError(
                    400, f"An active meter with event_name `{event_name}` already exists.", param="event_name"
                )
        obj = objects.meter(
            event_name=event_name,
            display_name=params["display_name"],
            formula=formula,
            customer_payload_key=_dict(params, "customer_mapping").get(
                "event_payload_key", "stripe_customer_id"
            ),
            value_payload_key=_dict(params, "value_settings").get("event_payload_key", "value"),
            event_time_window=params.get("event_time_window"),
            created=self._now(),
        )
        self._objects["billing.meter"][obj["id"]] = obj
        return self._render(obj, params.get("expand"))

    def _list_meters(self, params):
        status = params.get("status")
        return self._list(
            "billing.meter", params, "/v1/billing/meters", lambda m: status is None or m["status"] == status
        )

    def _get_meter(self, params, id):
        return self._retrieve("billing.meter", id, params)

    def _update_meter(self, params, id):
        obj = self._find(id, "billing.meter")
        if "display_name" in params:
            obj["display_name"] = params["display_name"]
            obj["updated"] = self._now()
        return self._render(obj)

    def _deactivate_meter(self, params, id):
        obj = self._find(id, "billing.meter")
        obj.update(status="inactive", status_transitions={"deactivated_at": self._now()}, updated=self._now())
        return self._render(obj)

    def _reactivate_meter(self, params, id):
        obj = self._find(id, "billing.meter")
        obj.update(status="active", status_transitions={"deactivated_at": None}, updated=self._now())
        return self._render(obj)

    # meter events

    def _create_meter_event(self, params):
        event_name = params.get("event_name")
        if not event_name:
            raise _missing("event_name")
        payload = params.get("payload")
        if not isinstance(payload, dict) or not payload:
            raise _missing("payload")
        now = self._now()
        meter = next(
            (m for m in self._objects["billing.meter"].values() if m["event_name"] == event_name), None
        )
        customer_key = meter["customer_mapping"]["event_payload_key"] if meter else "stripe_customer_id"
        value_key = meter["value_settings"]["event_payload_key"] if meter else "value"
        if not payload.get(customer_key):
            raise StripeError(
                400,
                f"Missing required param: payload[{customer_key}].",
                code="parameter_missing",
                param=f"payload[{customer_key}]",
            )
        if value_key not in payload:
            raise StripeError(
                400,
                f"Missing required param: payload[{value_key}].",
                code="parameter_missing",
                param=f"payload[{value_key}]",
            )
        value = payload[value_key]
        if not re.fullmatch(r"-?\d{1,15}", value):
            raise StripeError(
                400,
                f"The value in the event payload must be a whole number. Received `{value}`.",
                code="meter_event_invalid_value",
                param=f"payload[{value_key}]",
            )
        timestamp = _int(params, "timestamp", now)
        if timestamp < now - _METER_EVENT_PAST:
            raise StripeError(
                400,
                "Timestamp must be within the past 35 calendar days.",
                code="timestamp_too_far_in_past",
                param="timestamp",
            )
        if timestamp > now + _METER_EVENT_FUTURE:
            raise StripeError(
                400,
                "Timestamp must be no more than 5 minutes in the future.",
                code="timestamp_in_future",
                param="timestamp",
            )
        identifier = params.get("identifier") or str(uuid.uuid4())
        seen = self._identifiers.get(identifier)
        if seen is not None and now - seen < _IDENTIFIER_WINDOW:
            # What Stripe answers (observed; the docs only say uniqueness is enforced): a 400
            # invalid_request_error with this message and no `code`. See README.md.
            raise StripeError(400, f"An event already exists with identifier {identifier}.")
        self._identifiers[identifier] = now
        obj = objects.meter_event(
            event_name=event_name, payload=payload, identifier=identifier, timestamp=timestamp, created=now
        )
        # Stripe validates the event name and the customer asynchronously: the event is accepted and a
        # meter error report follows. The stand-in records the report and leaves the event unbilled.
        if meter is None or meter["status"] != "active":
            code = "no_meter" if meter is None else "archived_meter"
            self.meter_event_errors.append({"code": code, "event": copy.deepcopy(obj)})
        elif payload[customer_key] not in self._objects["customer"]:
            self.meter_event_errors.append(
                {"code": "meter_event_customer_not_found", "event": copy.deepcopy(obj)}
            )
        else:
            self._meter_events.append(obj)
        return copy.deepcopy(obj)

    def _meter_event_summaries(self, params, id):
        meter = self._find(id, "billing.meter")
        customer = params.get("customer")
        if not customer:
            raise _missing("customer")
        start, end = _int(params, "start_time"), _int(params, "end_time")
        if start is None:
            raise _missing("start_time")
        if end is None:
            raise _missing("end_time")
        for name, value in (("start_time", start), ("end_time", end)):
            if value % 60:
                raise StripeError(400, f"{name} must be aligned with minute boundaries.", param=name)
        if end <= start:
            raise StripeError(400, "end_time must be after start_time.", param="end_time")
        window = params.get("value_grouping_window")
        if window not in (None, "hour", "day"):
            raise StripeError(400, f"Invalid value_grouping_window: {window}", param="value_grouping_window")
        horizon = self._now() - self.summary_delay
        customer_key = meter["customer_mapping"]["event_payload_key"]
        value_key = meter["value_settings"]["event_payload_key"]
        events = [
            e
            for e in self._meter_events
            if e["event_name"] == meter["event_name"]
            and e["payload"].get(customer_key) == customer
            and start <= e["timestamp"] < end
            and e["created"] <= horizon
        ]
        if window is None:
            windows = [(start, end)]
        else:
            size = 3600 if window == "hour" else 86400
            bounds = sorted(
                {max(start, e["timestamp"] - e["timestamp"] % size) for e in events}, reverse=True
            )
            windows = [(b, min(b - b % size + size, end)) for b in bounds]
        summaries = []
        for window_start, window_end in windows:
            inside = [e for e in events if window_start <= e["timestamp"] < window_end]
            summaries.append(
                objects.meter_event_summary(
                    meter=id,
                    customer=customer,
                    start_time=window_start,
                    end_time=window_end,
                    aggregated_value=_aggregate(meter["default_aggregation"]["formula"], inside, value_key),
                )
            )
        return self._list(summaries, params, f"/v1/billing/meters/{id}/event_summaries", newest_first=False)

    # checkout sessions

    def _create_checkout_session(self, params):
        mode = params.get("mode")
        if not mode:
            raise _missing("mode")
        if mode != "subscription":
            raise StripeError(400, f"The stand-in models only mode=subscription, not {mode}.", param="mode")
        if params.get("customer") and params.get("customer_email"):
            raise StripeError(
                400,
                "You may only specify one of these parameters: customer, customer_email.",
                param="customer_email",
            )
        customer = params.get("customer")
        if customer and customer not in self._objects["customer"]:
            raise _no_such("customer", customer, param="customer")
        line_items = params.get("line_items")
        if not isinstance(line_items, list) or not line_items:
            raise _missing("line_items")
        items = []
        for index, line in enumerate(line_items):
            price_id = line.get("price") if isinstance(line, dict) else None
            if not price_id:
                raise _missing(f"line_items[{index}][price]")
            price = self._objects["price"].get(price_id)
            if price is None:
                raise _no_such("price", price_id, param=f"line_items[{index}][price]")
            if not price["active"]:
                raise StripeError(
                    400,
                    "The price specified is inactive. This field only accepts active prices.",
                    param=f"line_items[{index}][price]",
                )
            metered = (price["recurring"] or {}).get("usage_type") == "metered"
            quantity = _int(line, "quantity")
            if metered and quantity is not None:
                raise StripeError(
                    400,
                    f"Quantity should not be specified where usage_type is `metered`. Remove quantity from "
                    f"`line_items[{index}]`",
                    param=f"line_items[{index}][quantity]",
                )
            if not metered and quantity is None:
                raise StripeError(
                    400,
                    f"Quantity is required. Add `quantity` to `line_items[{index}]`",
                    code="parameter_missing",
                    param=f"line_items[{index}][quantity]",
                )
            items.append(objects.checkout_line_item(price=copy.deepcopy(price), quantity=quantity))
        if not any(item["price"]["recurring"] for item in items):
            raise StripeError(
                400,
                "You must provide at least one recurring price in `subscription` mode when using prices.",
                param="line_items",
            )
        currencies = {item["currency"] for item in items}
        if len(currencies) > 1:
            raise StripeError(400, "All prices must use the same currency.", param="line_items")
        obj = objects.checkout_session(
            line_items=items,
            mode=mode,
            customer=customer,
            customer_email=params.get("customer_email"),
            success_url=params.get("success_url"),
            cancel_url=params.get("cancel_url"),
            metadata=_merge_metadata({}, params.get("metadata", {})),
            client_reference_id=params.get("client_reference_id"),
            created=self._now(),
            expires_at=_int(params, "expires_at"),
        )
        for name in ("allow_promotion_codes",):
            if name in params:
                obj[name] = _bool(params, name)
        for name in ("billing_address_collection", "payment_method_collection", "locale"):
            if name in params:
                obj[name] = params[name]
        self._objects["checkout.session"][obj["id"]] = obj
        self._checkout_items[obj["id"]] = items
        self._checkout_subscription_data[obj["id"]] = _dict(params, "subscription_data")
        return self._render(obj, params.get("expand"))

    def _get_checkout_session(self, params, id):
        return self._retrieve("checkout.session", id, params)

    def _list_checkout_sessions(self, params):
        filters = {name: params[name] for name in ("customer", "status", "subscription") if name in params}
        return self._list(
            "checkout.session",
            params,
            "/v1/checkout/sessions",
            lambda s: all(s.get(name) == value for name, value in filters.items()),
        )

    def _list_checkout_line_items(self, params, id):
        self._find(id, "checkout.session")
        return self._list(
            self._checkout_items[id], params, f"/v1/checkout/sessions/{id}/line_items", newest_first=False
        )

    def _expire_checkout_session(self, params, id):
        obj = self._find(id, "checkout.session")
        if obj["status"] != "open":
            raise StripeError(
                400,
                f'Only Checkout Sessions with a status in ["open"] can be expired. This session has '
                f'status "{obj["status"]}".',
            )
        obj.update(status="expired", url=None)
        return self._render(obj, params.get("expand"))

    # subscriptions

    def _get_subscription(self, params, id):
        return self._retrieve("subscription", id, params)

    def _list_subscriptions(self, params):
        customer = params.get("customer")
        status = params.get("status")
        price = params.get("price")
        if status is not None and status not in _SUBSCRIPTION_STATUSES | {"all", "ended"}:
            raise StripeError(400, f"Invalid status: {status}", param="status")

        def keep(s):
            if customer is not None and s["customer"] != customer:
                return False
            if price is not None and all(i["price"]["id"] != price for i in s["items"]["data"]):
                return False
            if status is None:
                return s["status"] != "canceled"  # Stripe leaves canceled ones out unless asked
            if status == "ended":
                return s["status"] in ("canceled", "incomplete_expired")
            return status == "all" or s["status"] == status

        return self._list("subscription", params, "/v1/subscriptions", keep)

    def _update_subscription(self, params, id):
        obj = self._find(id, "subscription")
        if obj["status"] in ("canceled", "incomplete_expired") and set(params) - {
            "metadata",
            "cancellation_details",
            "expand",
        }:
            raise StripeError(
                400, "A canceled subscription can only update its cancellation_details and metadata."
            )
        if "cancel_at_period_end" in params:
            cancel = _bool(params, "cancel_at_period_end")
            obj["cancel_at_period_end"] = cancel
            if cancel:
                obj["cancel_at"] = _period(obj)[1]
                obj["canceled_at"] = self._now()
                obj["cancellation_details"]["reason"] = "cancellation_requested"
            else:
                obj["cancel_at"] = obj["canceled_at"] = None
                obj["cancellation_details"] = {"comment": None, "feedback": None, "reason": None}
        if "cancellation_details" in params:
            details = _dict(params, "cancellation_details")
            for key in ("comment", "feedback"):
                if key in details:
                    obj["cancellation_details"][key] = _nullable(details[key])
        if "metadata" in params:
            obj["metadata"] = _merge_metadata(obj["metadata"], params["metadata"])
        if "description" in params:
            obj["description"] = _nullable(params["description"])
        return self._render(obj, params.get("expand"))

    def _cancel_subscription(self, params, id):
        obj = self._find(id, "subscription")
        if obj["status"] in ("canceled", "incomplete_expired"):
            raise StripeError(
                400, "A canceled subscription can only update its cancellation_details and metadata."
            )
        now = self._now()
        obj.update(
            status="canceled", canceled_at=now, ended_at=now, cancel_at=None, cancel_at_period_end=False
        )
        obj["cancellation_details"] = {"comment": None, "feedback": None, "reason": "cancellation_requested"}
        details = _dict(params, "cancellation_details")
        for key in ("comment", "feedback"):
            if key in details:
                obj["cancellation_details"][key] = _nullable(details[key])
        return self._render(obj, params.get("expand"))

    def _list_subscription_items(self, params):
        subscription_id = params.get("subscription")
        if not subscription_id:
            raise _missing("subscription")
        items = self._find(subscription_id, "subscription")["items"]["data"]
        return self._list(
            items, params, f"/v1/subscription_items?subscription={subscription_id}", newest_first=False
        )

    # invoices

    def _get_invoice(self, params, id):
        return self._retrieve("invoice", id, params)

    def _list_invoices(self, params):
        customer = params.get("customer")
        subscription = params.get("subscription")
        status = params.get("status")

        def keep(i):
            parent = i["parent"] or {}
            sub = (parent.get("subscription_details") or {}).get("subscription")
            return (
                (customer is None or i["customer"] == customer)
                and (subscription is None or sub == subscription)
                and (status is None or i["status"] == status)
            )

        return self._list("invoice", params, "/v1/invoices", keep)

    def _list_invoice_lines(self, params, id):
        invoice = self._find(id, "invoice")
        return self._list(invoice["lines"]["data"], params, f"/v1/invoices/{id}/lines", newest_first=False)

    def _pay_invoice(self, params, id):
        obj = self._find(id, "invoice")
        if obj["status"] == "paid":
            raise StripeError(400, "Invoice is already paid")
        if obj["status"] != "open":
            raise StripeError(
                400, f"You can only pay an invoice that is open. This invoice is {obj['status']}."
            )
        now = self._now()
        obj.update(
            status="paid",
            amount_paid=obj["amount_due"],
            amount_remaining=0,
            attempted=True,
            attempt_count=obj["attempt_count"] + 1,
            next_payment_attempt=None,
            auto_advance=False,
        )
        obj["status_transitions"]["paid_at"] = now
        return self._render(obj, params.get("expand"))

    def _void_invoice(self, params, id):
        return self._close_invoice(id, "void", "voided_at", params)

    def _mark_invoice_uncollectible(self, params, id):
        return self._close_invoice(id, "uncollectible", "marked_uncollectible_at", params)

    def _close_invoice(self, id, status, transition, params):
        obj = self._find(id, "invoice")
        if obj["status"] != "open":
            raise StripeError(
                400, f"You can only mark an open invoice as {status}. This invoice is {obj['status']}."
            )
        obj.update(status=status, amount_remaining=0, next_payment_attempt=None, auto_advance=False)
        obj["status_transitions"][transition] = self._now()
        return self._render(obj, params.get("expand"))

    # events

    def _get_event(self, params, id):
        return self._retrieve("event", id, params)

    def _list_events(self, params):
        type_ = params.get("type")
        return self._list("event", params, "/v1/events", lambda e: type_ is None or e["type"] == type_)


# --- Helpers and tables -----------------------------------------------------------------------------

_CUSTOMER_FIELDS = {
    "address", "balance", "business_name", "description", "email", "individual_name", "invoice_prefix",
    "invoice_settings", "metadata", "name", "next_invoice_sequence", "phone", "preferred_locales",
    "shipping", "tax_exempt",
}  # fmt: skip
_PRODUCT_FIELDS = {
    "active",
    "description",
    "metadata",
    "name",
    "statement_descriptor",
    "tax_code",
    "unit_label",
    "url",
}
_PRICE_CREATE_FIELDS = {
    "active", "currency", "lookup_key", "metadata", "nickname", "product", "product_data", "recurring",
    "tax_behavior", "transfer_lookup_key", "unit_amount", "unit_amount_decimal",
}  # fmt: skip
_PRICE_UPDATE_FIELDS = {"active", "lookup_key", "metadata", "nickname", "tax_behavior", "transfer_lookup_key"}
_METER_FIELDS = {
    "customer_mapping", "default_aggregation", "display_name", "event_name", "event_time_window",
    "value_settings",
}  # fmt: skip
_METER_EVENT_FIELDS = {"event_name", "identifier", "payload", "timestamp"}
_CHECKOUT_FIELDS = {
    "allow_promotion_codes", "billing_address_collection", "cancel_url", "client_reference_id", "customer",
    "customer_email", "expires_at", "line_items", "locale", "metadata", "mode", "payment_method_collection",
    "subscription_data", "success_url",
}  # fmt: skip
_SUBSCRIPTION_UPDATE_FIELDS = {
    "cancel_at_period_end", "cancellation_details", "description", "metadata", "proration_behavior",
}  # fmt: skip


def _kind_of(id) -> str | None:
    if not isinstance(id, str) or "_" not in id:
        return None
    return _ID_KINDS.get(id.split("_", 1)[0])


def _period(subscription: dict) -> tuple[int, int]:
    """A subscription's current period: since basil it lives on its items."""
    items = subscription["items"]["data"]
    if not items:
        return subscription["start_date"], subscription["start_date"]
    return items[0]["current_period_start"], items[0]["current_period_end"]


def _item_for_price(subscription: dict, price_id: str) -> dict | None:
    return next((i for i in subscription["items"]["data"] if i["price"]["id"] == price_id), None)


def _aggregate(formula: str, events: list[dict], value_key: str) -> float:
    if formula == "count":
        return len(events)
    values = [
        Decimal(e["payload"][value_key]) for e in sorted(events, key=lambda e: (e["timestamp"], e["created"]))
    ]
    if formula == "last":
        return float(values[-1]) if values else 0
    return float(sum(values, Decimal(0)))


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "StripeStandin/1.0"
    disable_nagle_algorithm = True  # headers and body go in two writes: no 40 ms delayed-ACK stalls

    def do_GET(self):
        self._dispatch("GET")

    def do_POST(self):
        self._dispatch("POST")

    def do_DELETE(self):
        self._dispatch("DELETE")

    def _dispatch(self, method: str) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        response = self.server.standin.handle(method, self.path, dict(self.headers.items()), body)  # type: ignore[attr-defined]
        if response.delay:
            time.sleep(response.delay)
        payload = json.dumps(response.body).encode()
        try:
            self.send_response(response.status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            for name, value in response.headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (a timeout test): nothing left to answer

    def log_message(self, format, *args):
        pass
