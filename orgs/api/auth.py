"""`Authorization: Api-Key <key>`: the key names exactly one product, never the request body."""

from dataclasses import dataclass

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework.authentication import BaseAuthentication
from rest_framework.exceptions import AuthenticationFailed, NotAuthenticated

from orgs.models import Product, ProductAPIKey

KEYWORD = "Api-Key"


@dataclass(frozen=True)
class PresentedKey:
    """A key as the request presents it, not yet verified."""

    key: str

    @property
    def prefix(self) -> str:
        return self.key.partition(".")[0]


def presented_key(request) -> PresentedKey | None:
    """The key in the Authorization header; None when there is no header (401 unauthenticated)."""
    header = request.META.get("HTTP_AUTHORIZATION", "")
    if not header:
        return None
    scheme, _, key = header.partition(" ")
    key = key.strip()
    if scheme != KEYWORD or not key:
        raise AuthenticationFailed("The Authorization header must be `Api-Key <key>`.")
    return PresentedKey(key)


def verified_product(presented: PresentedKey, api_key: ProductAPIKey | None) -> Product:
    """The product behind the key, or AuthenticationFailed. `api_key` is the unrevoked key row with
    the presented prefix, if any; the hashes are compared in constant time (SHA-512)."""
    hashes = ProductAPIKey.objects.key_generator
    if api_key is None or api_key.has_expired or not hashes.verify(presented.key, api_key.hashed_key):
        raise AuthenticationFailed("Unknown, revoked or expired API key.")
    return api_key.product


def authenticate_key(presented: PresentedKey | None) -> Product:
    if presented is None:
        raise NotAuthenticated
    api_key = (
        ProductAPIKey.objects.select_related("product").filter(prefix=presented.prefix, revoked=False).first()
    )
    return verified_product(presented, api_key)


class ProductAPIKeyAuthentication(BaseAuthentication):
    def authenticate(self, request):
        presented = presented_key(request)
        if presented is None:
            return None  # IsAuthenticated then answers 401 unauthenticated
        return authenticate_key(presented), presented

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
