import os

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "billingsite.settings")

application = get_wsgi_application()

# Serving needs what commands do not (settings.py): refuse to start rather than answer 400 to
# every request or fail at the first signed cookie.
if not settings.DEBUG:
    # Reading an empty SECRET_KEY raises ImproperlyConfigured ("The SECRET_KEY setting must not be empty.").
    settings.SECRET_KEY  # noqa: B018
    if not settings.ALLOWED_HOSTS:
        raise ImproperlyConfigured("ALLOWED_HOSTS must be set when DEBUG is off.")
