"""What a request says about itself: the address it came from, and the id it is known by."""

from contextvars import ContextVar

from django.http import HttpRequest

# Set per HTTP request by core.middleware.RequestIdMiddleware, per task by the job runner; the audit
# log records it.
request_id_var: ContextVar[str] = ContextVar("request_id", default="")


def client_ip(request: HttpRequest) -> str:
    """The address that connected (a proxy in front must be trusted to set REMOTE_ADDR)."""
    return str(request.META.get("REMOTE_ADDR", ""))
