from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from billingsite.health import healthz

urlpatterns = [
    path("healthz", healthz),
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
