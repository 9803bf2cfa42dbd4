import redis
from django.conf import settings
from django.db import connection
from django.http import JsonResponse
from django.views.decorators.http import require_GET

from usage.selectors import rollup_lag


@require_GET
def healthz(request):
    """200 when every configured dependency answers, else 503 naming what is down. `rollup` is a
    detail, never a cause of 503: a lagging rollup is alarmed (logged, shown to staff), while
    taking web processes out of service would not make it catch up (docs/NOTES.md)."""
    checks = {}
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        checks["database"] = "ok"
    except Exception as error:
        checks["database"] = f"down: {type(error).__name__}"
    if settings.REDIS_URL is None:
        checks["redis"] = "disabled"
    else:
        try:
            redis.Redis.from_url(settings.REDIS_URL, socket_timeout=2, socket_connect_timeout=2).ping()
            checks["redis"] = "ok"
        except Exception as error:
            checks["redis"] = f"down: {type(error).__name__}"
    healthy = all(value in ("ok", "disabled") for value in checks.values())
    checks["rollup"] = _rollup() if checks["database"] == "ok" else {"status": "unknown: database down"}
    return JsonResponse(checks, status=200 if healthy else 503)


def _rollup() -> dict:
    try:
        return rollup_lag().as_dict()
    except Exception as error:
        return {"status": f"unknown: {type(error).__name__}"}
