"""OpenAPI pieces shared by every endpoint (drf-spectacular)."""

from typing import Any

from drf_spectacular.utils import OpenApiParameter, OpenApiResponse
from rest_framework import serializers


class ErrorDetailSerializer(serializers.Serializer[Any]):
    code = serializers.CharField(help_text="Stable snake_case code, e.g. `org_not_found`.")
    message = serializers.CharField()
    details = serializers.DictField(help_text="`fields` holds per-field messages for 400s.")


class ErrorSerializer(serializers.Serializer[Any]):
    error = ErrorDetailSerializer()


def page_of(name: str, item: type[serializers.Serializer[Any]]) -> type[serializers.Serializer[Any]]:
    """A cursor page's schema: `{next, previous, results}` (follow `next` until it is null)."""
    attrs = {
        "next": serializers.URLField(allow_null=True, help_text="The next page's URL; null on the last."),
        "previous": serializers.URLField(allow_null=True, help_text="The previous page's URL, or null."),
        "results": item(many=True),
    }
    return type(name, (serializers.Serializer,), attrs)


CURSOR = OpenApiParameter("cursor", str, description="The page to read, taken from `next` or `previous`.")


def errors(*codes: str) -> dict[int, OpenApiResponse]:
    """Schema responses for the given `status:code` pairs, grouped by status."""
    by_status: dict[int, list[str]] = {}
    for item in ("401:unauthenticated", *codes):
        status, code = item.split(":")
        by_status.setdefault(int(status), []).append(code)
    return {
        status: OpenApiResponse(ErrorSerializer, description=" / ".join(f"`{c}`" for c in names))
        for status, names in by_status.items()
    }


# --- The contract completed: every operation's shared answers, examples, bounds -----------------

# Realistic examples for fields by name (the schema's own example wins where a view gives one).
FIELD_EXAMPLES: dict[str, Any] = {
    "org_id": "org_2VxQ9mT4kLp8",
    "user_id": "u_peter",
    "owner_user_id": "u_peter",
    "metric": "fix_run",
    "quantity": "3",
    "amount": "250",
    "cost": "7.500000",
    "balance": "992.500000",
    "posted_balance": "1000.000000",
    "event_id": "run-8f14e45f",
    "idempotency_key": "reserve-8f14e45f",
    "hold_id": "hold_7Hc2Wq9Zr1",
    "name": "Initech",
    "billing_email": "ap@initech.example",
    "email": "milton@initech.example",
    "role": "member",
    "plan": "pro",
    "reason": "Goodwill after the outage of 2026-11-17",
    "occurred_at": "2026-11-18T09:58:00Z",
    "success_url": "https://red.example/billing/done",
    "cancel_url": "https://red.example/billing",
    "url": "https://red.example/hooks/billing",
    "token": "inv_Jx2kQ8sVb3Hn",
    "ttl_seconds": 900,
    "payment_status": "ok",
}

SHARED_ERRORS = {
    "400": (
        "invalid_request",
        "a control character in a query, JSON deeper than 32 levels, NUL or a "
        "lone surrogate in a string, a cost beyond 10^14 credits",
    ),
    "404": ("not_found", "a control character or broken UTF-8 in a path id"),
    "413": ("payload_too_large", "a body over 1 MB"),
    "429": ("rate_limited", "past the API key's budget for this endpoint class; see `Retry-After`"),
}

BOUNDS = (
    " Input rules for every endpoint: string fields take JSON strings only; no NUL or unpaired "
    "surrogate in any string or key; JSON at most 32 levels deep; bodies at most 1 MB; amounts and "
    "quantities ≥ 0, at most 6 decimal places, below 10^14, and a cost (quantity × price), a usage "
    "batch's total per org and a hold's commit below 10^14 credits."
)


def _error_response(code: str, why: str) -> dict[str, Any]:
    return {
        "description": f"`{code}`: {why}.",
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }


def _complete_responses(path: str, method: str, operation: dict[str, Any]) -> None:
    responses = operation.setdefault("responses", {})
    shared = ["400", "429"]
    if "{" in path:
        shared.append("404")
    if method in ("post", "put", "patch"):
        shared.append("413")
    for status in shared:
        code, why = SHARED_ERRORS[status]
        if status not in responses:
            responses[status] = _error_response(code, why)
        elif f"`{code}`" not in responses[status].get("description", ""):
            responses[status]["description"] += f" / `{code}` ({why})"


def _complete_properties(schema: dict[str, Any]) -> None:
    for name, prop in schema.get("properties", {}).items():
        if name in FIELD_EXAMPLES and "example" not in prop and "$ref" not in prop:
            prop["example"] = FIELD_EXAMPLES[name]
        is_amount = prop.get("format") == "decimal" or name in ("quantity", "amount")
        if is_amount and prop.get("type") == "string":  # what the server reads: ≥ 0, 6 places, < 10^14
            prop["pattern"] = r"^\d{1,14}(\.\d{1,6})?$"


def complete_the_contract(
    result: dict[str, Any], generator: Any, request: Any, public: bool
) -> dict[str, Any]:
    """drf-spectacular postprocessing hook: what every operation shares, stated on each one (the
    error codes any request can meet, the input bounds, 429), examples for fields by name."""
    for path, item in result.get("paths", {}).items():
        if not path.startswith("/api/v1/"):
            continue
        for method, operation in item.items():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            _complete_responses(path, method, operation)
            description = operation.get("description") or operation.get("summary") or ""
            if "Input rules" not in description:
                operation["description"] = description + BOUNDS
    for schema in result.get("components", {}).get("schemas", {}).values():
        _complete_properties(schema)
    return result
