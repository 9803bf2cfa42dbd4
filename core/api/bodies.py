"""The one JSON reader for request bodies (every API endpoint and the Stripe webhook).

A body that passes `load_json` is safe for everything after it: no value nested deeper than
MAX_DEPTH, no string or key holding NUL or a lone surrogate (PostgreSQL refuses NUL, and a lone
surrogate cannot be encoded back into a response), no parser failure escaping as a 500
(RecursionError, overflow). Errors name the field by its path, never echo the bad text.
"""

import json
import re
from collections.abc import Callable
from decimal import Decimal
from typing import Any, NoReturn

from core.errors import InvalidRequest

MAX_DEPTH = 32
# A lone surrogate survives json.loads (a valid pair is joined into one code point), as does NUL.
_BAD_CHARACTER = re.compile("[\x00\ud800-\udfff]")


def has_bad_character(text: str) -> bool:
    """True when `text` holds NUL or an unpaired surrogate."""
    return _BAD_CHARACTER.search(text) is not None


def _reject_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not a number JSON allows")


def _safe_key(key: str) -> str:
    return json.dumps(key)[1:-1] if has_bad_character(key) or not key.isprintable() else key


def _bad(path: str, message: str) -> InvalidRequest:
    where = path or "body"
    return InvalidRequest(
        f"The body is invalid at `{where}`: {message}", details={"fields": {where: [message]}}
    )


def check_json_value(value: Any) -> None:
    """Walk a parsed body iteratively: depth and characters. Raises InvalidRequest."""
    stack: list[tuple[Any, str, int]] = [(value, "", 1)]
    while stack:
        item, path, depth = stack.pop()
        if isinstance(item, str):
            if has_bad_character(item):
                raise _bad(path, "A string may not hold NUL or an unpaired surrogate.")
        elif isinstance(item, dict):
            if depth > MAX_DEPTH:
                raise _bad(path, f"Nested deeper than {MAX_DEPTH} levels.")
            for key, child in item.items():
                if has_bad_character(key):
                    raise _bad(path, "A key may not hold NUL or an unpaired surrogate.")
                stack.append((child, f"{path}.{_safe_key(key)}" if path else _safe_key(key), depth + 1))
        elif isinstance(item, list):
            if depth > MAX_DEPTH:
                raise _bad(path, f"Nested deeper than {MAX_DEPTH} levels.")
            stack.extend((child, f"{path}[{index}]", depth + 1) for index, child in enumerate(item))


def load_json(body: bytes | str, *, parse_float: Callable[[str], Any] = Decimal) -> Any:
    """Parse a request body. Numbers are Decimal unless `parse_float` says otherwise (the API's
    rule: money is never a binary float); NaN and Infinity are refused. Raises InvalidRequest
    (400 `invalid_request`) for anything that is not a safe JSON document."""
    try:
        value = json.loads(body, parse_float=parse_float, parse_constant=_reject_constant)
    except RecursionError:
        raise InvalidRequest(
            f"The body is nested deeper than {MAX_DEPTH} levels.", details={"max_depth": MAX_DEPTH}
        ) from None
    except (ValueError, OverflowError, MemoryError) as error:
        # JSONDecodeError and UnicodeDecodeError are ValueErrors; their messages carry positions,
        # never the text itself.
        raise InvalidRequest(f"The body is not valid JSON: {error}") from None
    check_json_value(value)
    return value
