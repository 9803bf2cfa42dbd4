"""`Authorization: Api-Key <key>`: the key names exactly one product, never the request body."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework.authentication import BaseAuthentication
from rest_framework.exceptions import AuthenticationFailed

from orgs.models import ProductAPIKey

KEYWORD = "Api-Key"


class ProductAPIKeyAuthentication(BaseAuthentication):
    def authenticate(self, request):
        header = request.META.get("HTTP_AUTHORIZATION", "")
        if not header:
            return None  # IsAuthenticated then answers 401 unauthenticated
        scheme, _, key = header.partition(" ")
        key = key.strip()
        if scheme != KEYWORD or not key:
            raise AuthenticationFailed("The Authorization header must be `Api-Key <key>`.")
        prefix, _, _ = key.partition(".")
        api_key = ProductAPIKey.objects.select_related("product").filter(prefix=prefix, revoked=False).first()
        # is_valid compares hashes in constant time.
        if api_key is None or api_key.has_expired or not api_key.is_valid(key):
            raise AuthenticationFailed("Unknown, revoked or expired API key.")
        return api_key.product, api_key

    def authenticate_header(self, request):
        return KEYWORD


class ProductAPIKeyScheme(OpenApiAuthenticationExtension):
    target_class = ProductAPIKeyAuthentication
    name = "ApiKey"

    def get_security_definition(self, auto_schema):
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": "`Api-Key <key>`: one key per product, issued in the admin.",
        }
