"""The failures a service can report, each with a stable code and HTTP status.

One small hierarchy for the whole project: every app's own errors subclass these. The API turns
any of them into `{"error": {"code", "message", "details"}}` in one exception handler
(core/api/errors.py).
"""

from typing import Any


class ServiceError(Exception):
    code = "error"
    status = 400
    message = "The request could not be completed."

    def __init__(self, message: str | None = None, *, details: dict[str, Any] | None = None):
        self.message = message or self.message
        self.details: dict[str, Any] = details or {}
        super().__init__(self.message)


class NotFound(ServiceError):
    status = 404


class Conflict(ServiceError):
    status = 409


class Gone(ServiceError):
    status = 410


class PaymentRequired(ServiceError):
    status = 402


class Forbidden(ServiceError):
    status = 403


class InvalidRequest(ServiceError):
    code = "invalid_request"
    message = "The request is invalid."
