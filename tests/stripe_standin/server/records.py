"""What the stand-in records of each request, the faults it injects, and what it saves and answers."""

import re
from collections.abc import Callable
from dataclasses import dataclass, field

from tests.stripe_standin import objects

# --- Records and faults -------------------------------------------------------------------------


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
        return _matches(self.method, self.path, method, path)


@dataclass
class Hook:
    """Something that happens at Stripe just before a matching request is handled (`before_next`)."""

    method: str
    path: "str | re.Pattern"
    action: "Callable[[RecordedRequest], object]"
    times: int

    def matches(self, method: str, path: str) -> bool:
        return _matches(self.method, self.path, method, path)


def _matches(method_pattern: str, path_pattern: "str | re.Pattern", method: str, path: str) -> bool:
    if method_pattern not in ("*", method):
        return False
    if isinstance(path_pattern, re.Pattern):
        return bool(path_pattern.search(path))
    return path.startswith(path_pattern)


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
