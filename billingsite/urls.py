from django.contrib import admin
from django.http import HttpResponse
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from billingsite.health import healthz

FAVICON_SVG = (
    '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 16 16"><rect width="16" height="16" rx="3" '
    'fill="#417690"/><path d="M4 4h5a2 2 0 0 1 0 4H4zm0 4h6a2 2 0 0 1 0 4H4z" fill="white"/></svg>'
)


def favicon(request):
    """Browsers ask for /favicon.ico on any page (the API docs too): an icon, never a 404."""
    response = HttpResponse(FAVICON_SVG, content_type="image/svg+xml")
    response["Cache-Control"] = "public, max-age=86400"
    return response


urlpatterns = [
    path("healthz", healthz),
    path("favicon.ico", favicon),
    path("api/v1/", include("orgs.api.urls")),
    path("api/v1/", include("billing.api.urls")),
    path("api/v1/", include("usage.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
    path("stripe/", include("billing.webhook_urls", namespace="djstripe")),
    path("admin/", admin.site.urls),
]

handler404 = "core.api.errors.api_not_found"
handler500 = "core.api.errors.api_server_error"
