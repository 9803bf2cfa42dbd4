"""Stripe's wire format: request decoding, webhook signatures, error answers, parameter readers."""

import hashlib
import hmac
import itertools
import re
import time

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


# --- Errors -------------------------------------------------------------------------------------


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
