"""OpenAPI pieces shared by every endpoint (drf-spectacular)."""

from typing import Any

from drf_spectacular.utils import OpenApiResponse
from rest_framework import serializers


class ErrorDetailSerializer(serializers.Serializer[Any]):
    code = serializers.CharField(help_text="Stable snake_case code, e.g. `org_not_found`.")
    message = serializers.CharField()
    details = serializers.DictField(help_text="`fields` holds per-field messages for 400s.")


class ErrorSerializer(serializers.Serializer[Any]):
    error = ErrorDetailSerializer()


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
