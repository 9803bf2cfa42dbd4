"""Request parsing: JSON numbers as Decimal, strict bodies, the API's field types."""

import copy
from collections.abc import Callable, Mapping
from typing import IO, Any, Protocol, cast

from django.conf import settings
from django.core.validators import URLValidator
from rest_framework import serializers
from rest_framework.parsers import JSONParser
from rest_framework.request import Request

from core.api.bodies import load_json
from core.errors import InvalidRequest, ServiceError


class PayloadTooLarge(ServiceError):
    code = "payload_too_large"
    status = 413
    message = "The request body is too large."


class UnknownField(InvalidRequest):
    code = "unknown_field"
    message = "The request has fields this endpoint does not know."

    @classmethod
    def naming(cls, keys: list[str]) -> "UnknownField":
        return cls(
            f"Unknown field{'s' if len(keys) > 1 else ''}: {', '.join(keys)}.",
            details={"fields": {key: ["This field is not known."] for key in keys}},
        )


class DecimalJSONParser(JSONParser):
    """JSON with every number read as Decimal (never a binary float), NaN and Infinity refused."""

    def parse(
        self, stream: IO[Any], media_type: str | None = None, parser_context: Mapping[str, Any] | None = None
    ) -> Any:
        body = stream.read(settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 1)
        if len(body) > settings.DATA_UPLOAD_MAX_MEMORY_SIZE:
            raise PayloadTooLarge(details={"max_bytes": settings.DATA_UPLOAD_MAX_MEMORY_SIZE})
        return load_json(body)


class StrictSerializer(serializers.Serializer[Any]):
    """A request body: a JSON object whose every key this endpoint knows.

    Unknown keys are `400 unknown_field`, checked before any field is validated, so a typo (say
    `bonus_type`) can never be silently replaced by a default.

    One rule for text everywhere: a string field (CharField and its kin, ChoiceField) takes a JSON
    string only, never a number or a boolean turned into text.
    """

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, Mapping):
            known = {name for name, field in self.fields.items() if not field.read_only}
            unknown = sorted(key for key in data if key not in known)
            if unknown:
                raise UnknownField.naming(unknown)
            not_text = {
                name: [STRING_ONLY]
                for name, field in self.fields.items()
                if isinstance(field, (serializers.CharField, serializers.ChoiceField))
                and data.get(name) is not None
                and not isinstance(data[name], str)
            }
            if not_text:
                raise serializers.ValidationError({**self._other_errors(data), **not_text})
        return super().to_internal_value(data)

    def _other_errors(self, data: Any) -> dict[str, Any]:
        try:
            super().to_internal_value(data)
        except serializers.ValidationError as error:
            return dict(error.detail) if isinstance(error.detail, dict) else {}
        return {}


STRING_ONLY = "A JSON string."


class EmptyBody(StrictSerializer):
    """`{}` (or no body): any field is `400 unknown_field`."""


class WebURLField(serializers.URLField):
    """An http or https URL (no ftp, no other scheme), at most 2,000 characters by default."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("max_length", 2000)
        super().__init__(**kwargs)
        self.validators = [v for v in self.validators if not isinstance(v, URLValidator)] + [
            URLValidator(schemes=["http", "https"], message="An http or https URL.")
        ]


def parse_body(serializer_class: type[StrictSerializer], request: Request) -> dict[str, Any]:
    """Validate the request body; raises unknown_field or invalid_request, writes nothing."""
    serializer = serializer_class(data=request.data)
    serializer.is_valid(raise_exception=True)
    validated: dict[str, Any] = serializer.validated_data
    return validated


class UserIdField(serializers.CharField):
    """The identity service's opaque user id: 1 to 128 characters, taken exactly as given."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("max_length", 128)
        kwargs.setdefault("trim_whitespace", False)
        super().__init__(**kwargs)


# --- Lean parsing for the hottest small bodies -------------------------------------------------
#
# A DRF serializer deep-copies its fields for every request: on entitlements:check that is a
# measurable share of the whole request (bench/check). These readers keep the same contract
# (unknown_field first, then invalid_request with per-field messages) in plain code. The
# serializers of those endpoints stay, for the OpenAPI description only.


def read_object(data: Any, fields: Mapping[str, "Reader"]) -> dict[str, Any]:
    """Read a JSON object with `fields` = {name: reader}; a reader takes the raw value (or MISSING)
    and returns the parsed one, or raises ValueError with the message for that field."""
    if not isinstance(data, Mapping):
        raise InvalidRequest(
            "The body is a JSON object.", details={"fields": {"non_field_errors": ["Expected an object."]}}
        )
    unknown = sorted(key for key in data if key not in fields)
    if unknown:
        raise UnknownField.naming(unknown)
    values: dict[str, Any] = {}
    errors: dict[str, list[str]] = {}
    for name, reader in fields.items():
        try:
            values[name] = reader(data.get(name, MISSING))
        except ValueError as error:
            errors[name] = [str(error)]
    if errors:
        raise InvalidRequest(details={"fields": errors})
    return values


MISSING = object()


class Reader(Protocol):
    """Takes the raw JSON value (or MISSING) and returns the parsed one, or raises ValueError."""

    schema_field: serializers.Field[Any, Any, Any, Any]

    def __call__(self, value: object, /) -> Any: ...


def described(read: Callable[[object], Any], field: serializers.Field[Any, Any, Any, Any]) -> Reader:
    """Attach to a reader the serializer field that describes it in the OpenAPI schema, so the
    schema is made from the very readers that parse the body (schema_for) and cannot drift."""
    reader = cast(Reader, read)
    reader.schema_field = field
    return reader


def schema_for(name: str, fields: dict[str, Reader]) -> type[serializers.Serializer[Any]]:
    """A serializer describing a body that read_object reads with `fields`, for the schema only."""
    attrs = {key: copy.deepcopy(reader.schema_field) for key, reader in fields.items()}
    return type(name, (serializers.Serializer,), attrs)


def text(max_length: int, *, required: bool = True, default: str | None = None) -> Reader:
    def read(value: object) -> str | None:
        if value is MISSING or value is None:
            if required:
                raise ValueError("This field is required.")
            return default
        if not isinstance(value, str) or not value:
            raise ValueError("A non-empty string.")
        if len(value) > max_length:
            raise ValueError(f"At most {max_length} characters.")
        return value

    return described(read, serializers.CharField(max_length=max_length, required=required))


def integer(*, minimum: int, maximum: int, default: int) -> Reader:
    def read(value: object) -> int:
        if value is MISSING or value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value <= maximum:
            raise ValueError(f"A whole number from {minimum} to {maximum}.")
        return value

    field = serializers.IntegerField(min_value=minimum, max_value=maximum, required=False, default=default)
    return described(read, field)
