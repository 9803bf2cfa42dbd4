"""The `StripeStandin` class: state, locking, recording, idempotency, faults, request handling and
the HTTP server; composed with the mixins that hold the endpoints, storage, routes and seeding helpers."""

import copy
import json
import re
import threading
import time
import traceback
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit

from tests.stripe_standin import objects
from tests.stripe_standin.server.catalog import CatalogMixin
from tests.stripe_standin.server.checkout import CheckoutMixin
from tests.stripe_standin.server.customers import CustomersMixin
from tests.stripe_standin.server.events import EventsMixin
from tests.stripe_standin.server.forms import StripeError, decode_form
from tests.stripe_standin.server.invoices import InvoicesMixin
from tests.stripe_standin.server.meters import MetersMixin
from tests.stripe_standin.server.payments import PaymentsMixin
from tests.stripe_standin.server.records import Fault, Hook, RecordedRequest, _fault_body, _Response, _Saved
from tests.stripe_standin.server.routes import RoutesMixin
from tests.stripe_standin.server.schedules import SchedulesMixin
from tests.stripe_standin.server.seeding import SeedingMixin
from tests.stripe_standin.server.storage import _KINDS, StorageMixin
from tests.stripe_standin.server.subscriptions import SubscriptionsMixin

# --- The server -----------------------------------------------------------------------------------

_IDEMPOTENCY_WINDOW = 24 * 3600


class StripeStandin(
    SeedingMixin,
    StorageMixin,
    RoutesMixin,
    CustomersMixin,
    CatalogMixin,
    MetersMixin,
    CheckoutMixin,
    SubscriptionsMixin,
    SchedulesMixin,
    PaymentsMixin,
    InvoicesMixin,
    EventsMixin,
):
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
            self._checkout_payment_data: dict[str, dict] = {}
            self._meter_events: list[dict] = []
            self._identifiers: dict[str, float] = {}
            self.meter_event_errors: list[dict] = []
            self._idempotency: dict[str, _Saved] = {}
            self._faults: list[Fault] = []
            self._hooks: list[Hook] = []
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

    def before_next(
        self,
        method: str,
        path: "str | re.Pattern",
        action: Callable[[RecordedRequest], object],
        times: int = 1,
    ) -> Hook:
        """Run `action(request)` just before the next `times` matching requests are handled: what
        happened at Stripe in between two of our calls (the customer paying a checkout session after
        our subscription list answered and before our expire arrives). It runs under the stand-in's
        lock, after the request is recorded and before any fault; seeding helpers work inside it.
        """
        hook = Hook(method.upper(), path, action, times)
        with self._lock:
            self._hooks.append(hook)
        return hook

    def clear_faults(self) -> None:
        """Forget the faults not yet met: Stripe is healthy again."""
        with self._lock:
            self._faults = []

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
            self._run_hooks(record)
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

    def _run_hooks(self, record: RecordedRequest) -> None:
        for hook in [h for h in self._hooks if h.matches(record.method, record.path)]:
            hook.times -= 1
            if hook.times == 0:
                self._hooks.remove(hook)
            try:
                hook.action(record)
            except Exception:  # a broken hook is a broken test: fail it through the fixture
                self.internal_errors.append(traceback.format_exc())
                record.note = "a before_next hook failed: see standin.internal_errors"

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
