"""One settings module, driven by environment variables (docs/OPERATING.md: Configuration).

With nothing set, the project runs on an embedded default: SQLite in ./var and Celery tasks run in
process. Production and the test suite set DATABASE_URL (PostgreSQL) and REDIS_URL.
"""

from datetime import timedelta
from pathlib import Path

import dj_database_url
import django_stubs_ext
from django.core.exceptions import ImproperlyConfigured
from kombu import Queue

from billingsite.queues import MAINTENANCE, QUEUES, TASK_ROUTES
from core.api.ratelimit_rules import DEFAULT_LIMITS, parse_limits
from core.env import env_bool, env_decimal, env_hour_instant, env_int, env_list, env_str

# Lets the admin's classes take type arguments at run time (`ModelAdmin[Organization]`), as the
# type checker reads them (django-stubs).
django_stubs_ext.monkeypatch()

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = BASE_DIR / "var"

DEBUG = env_bool("DEBUG", default=False)

# With DEBUG off these two have no default. Commands that serve nothing (makemigrations, migrate,
# runjob) run without them; the web process refuses to start (billingsite/wsgi.py), and Django
# refuses to read an empty SECRET_KEY anywhere.
SECRET_KEY = env_str("SECRET_KEY", default="development-only-secret-key" if DEBUG else "")
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"] if DEBUG else [])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "core.admin.site.BackOfficeAdminConfig",  # django.contrib.admin with the back office's site
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework_api_key",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "simple_history",
    "djstripe",
    "billingsite",
    "core",
    "orgs",
    "billing",
    "usage",
    "axes",  # admin login throttling (below)
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "core.middleware.RequestIdMiddleware",
    "core.api.guards.HostileInputMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "core.middleware.StaffHistoryMiddleware",
    "core.replicas.ReplicaChangelistMiddleware",
    "axes.middleware.AxesMiddleware",  # last: turns a locked-out login into its answer
]

# Admin login throttling (django-axes): a username tried from one address fails AXES_FAILURE_LIMIT
# times, and that pair is locked out for AXES_COOLOFF_MINUTES (429); a success resets the count. Per
# pair, not per username alone, so a stranger cannot lock a staff member out from elsewhere.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = env_int("AXES_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("AXES_COOLOFF_MINUTES", default=15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_HTTP_RESPONSE_CODE = 429
AXES_CLIENT_IP_CALLABLE = "core.requests.client_ip"  # the same address as the rest of the service
AXES_VERBOSE = False  # no banner on every command

ROOT_URLCONF = "billingsite.urls"
WSGI_APPLICATION = "billingsite.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Database -------------------------------------------------------------------------------

DATABASE_URL = env_str("DATABASE_URL")
EMBEDDED = DATABASE_URL is None
if DATABASE_URL is None:
    VAR_DIR.mkdir(exist_ok=True)
    DATABASE_URL = f"sqlite:///{VAR_DIR / 'db.sqlite3'}"
try:
    DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=60, conn_health_checks=True)}
except ValueError as error:
    raise ImproperlyConfigured(f"DATABASE_URL is not a database URL: {error}") from None
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # Prepared statements for what a worker repeats (the API key lookup, the entitlement check):
    # planning them again each time costs more than running them (bench/check). Django turns
    # psycopg's preparing off unless asked, and it needs server-side binding. Not for a pooler in
    # transaction mode.
    DATABASES["default"].setdefault("OPTIONS", {}).update(server_side_binding=True, prepare_threshold=2)
    DATABASES["default"].setdefault("TEST", {})["NAME"] = env_str("TEST_DATABASE_NAME")
# A streaming replica, optional: the admin's list pages, the usage summary and the parity check read
# from it while it is within DATABASE_REPLICA_MAX_LAG seconds (core/replicas.py); all else is primary.
DATABASE_REPLICA_URL = env_str("DATABASE_REPLICA_URL")
DATABASE_REPLICA_MAX_LAG = float(env_decimal("DATABASE_REPLICA_MAX_LAG", default="10"))
if DATABASE_REPLICA_URL is not None:
    try:
        DATABASES["replica"] = dj_database_url.parse(
            DATABASE_REPLICA_URL, conn_max_age=60, conn_health_checks=True
        )
    except ValueError as error:
        raise ImproperlyConfigured(f"DATABASE_REPLICA_URL is not a database URL: {error}") from None
    if DATABASES["replica"]["ENGINE"] != DATABASES["default"]["ENGINE"]:
        raise ImproperlyConfigured("DATABASE_REPLICA_URL must be a replica of DATABASE_URL (same engine).")
    DATABASES["replica"].setdefault("OPTIONS", {}).update(DATABASES["default"].get("OPTIONS", {}))
    # In tests the replica streams the test database pytest-django creates on the primary.
    DATABASES["replica"]["TEST"] = {"MIRROR": "default"}
DATABASE_ROUTERS = ["core.replicas.ReplicaRouter"]
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Redis and Celery -----------------------------------------------------------------------

REDIS_URL = env_str("REDIS_URL")
if REDIS_URL is not None and not REDIS_URL.startswith(("redis://", "rediss://", "unix://")):
    raise ImproperlyConfigured(f"REDIS_URL must be a redis:// URL, not {REDIS_URL!r}.")

CELERY_BROKER_URL = REDIS_URL or "memory://"
CELERY_RESULT_BACKEND = REDIS_URL
CELERY_TASK_IGNORE_RESULT = True
# Without a broker (the embedded default), tasks run in the process that enqueues them.
CELERY_TASK_ALWAYS_EAGER = REDIS_URL is None
CELERY_TASK_EAGER_PROPAGATES = True
# A killed worker must not lose a task: acknowledge after running, requeue on worker loss.
# Every task is idempotent, so running one twice is harmless.
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TIMEZONE = "UTC"
# Every task has its queue (billingsite/queues.py); a worker without -Q consumes all of them.
CELERY_TASK_QUEUES = [Queue(name, routing_key=name) for name in QUEUES]
CELERY_TASK_DEFAULT_QUEUE = MAINTENANCE
CELERY_TASK_ROUTES = TASK_ROUTES
# Beat runs once however many are started: celery-redbeat keeps the schedule in Redis under a lock
# that a second beat waits for (it takes over within REDBEAT_LOCK_TIMEOUT if the first dies).
# (Its own settings are set on the Celery app: billingsite/celery.py.)
if REDIS_URL is not None:
    CELERY_BEAT_SCHEDULER = "redbeat.RedBeatScheduler"

# --- Stripe and dj-stripe (docs/NOTES.md) ----------------------------------------------------

STRIPE_LIVE_MODE = env_bool("STRIPE_LIVE_MODE", default=False)
STRIPE_TEST_SECRET_KEY = env_str("STRIPE_TEST_SECRET_KEY", default="")
STRIPE_LIVE_SECRET_KEY = env_str("STRIPE_LIVE_SECRET_KEY", default="")
# Pinned: without it the version sent follows whatever stripe library is installed.
STRIPE_API_VERSION = "2026-05-27.dahlia"
_stripe_api_host = env_str("STRIPE_API_HOST")
if _stripe_api_host is not None:
    if not _stripe_api_host.startswith(("http://", "https://")):
        raise ImproperlyConfigured(f"STRIPE_API_HOST must be an http(s) URL, not {_stripe_api_host!r}.")
    STRIPE_API_HOST = _stripe_api_host.rstrip("/")

# The Stripe customer is the organization, never a user. Decided before the first migration:
# dj-stripe's initial migration bakes in this foreign key target.
DJSTRIPE_SUBSCRIBER_MODEL = "orgs.Organization"
DJSTRIPE_FOREIGN_KEY_TO_FIELD = "id"
DJSTRIPE_SUBSCRIBER_MODEL_REQUEST_CALLBACK = "orgs.selectors.org_for_request"
DJSTRIPE_WEBHOOK_VALIDATION = "verify_signature"

# --- Billing rules --------------------------------------------------------------------------

BILLING_SHADOW_MODE = env_bool("BILLING_SHADOW_MODE", default=True)
BILLING_BILL_FROM = env_hour_instant("BILLING_BILL_FROM")
SUPPORT_CREDIT_GRANT_LIMIT = env_decimal("SUPPORT_CREDIT_GRANT_LIMIT", default="1000")
# Decision receipts: record the denials products receive (shown on the org's admin page); off only
# to measure what recording costs (bench/check.py --receipts off).
ENTITLEMENT_RECEIPTS = env_bool("ENTITLEMENT_RECEIPTS", default=True)

# Usage history (PostgreSQL): monthly partitions made ahead; raw events archived past retention.
USAGE_PARTITION_MONTHS_AHEAD = env_int("USAGE_PARTITION_MONTHS_AHEAD", default=3, minimum=1)
USAGE_EVENT_RETENTION_MONTHS = env_int("USAGE_EVENT_RETENTION_MONTHS", default=13, minimum=2)
USAGE_ARCHIVE_DIR = Path(env_str("USAGE_ARCHIVE_DIR", str(VAR_DIR / "usage-archive")))

# --- The start-up guard for live mode --------------------------------------------------------

if STRIPE_LIVE_MODE:
    if DEBUG:
        raise ImproperlyConfigured("STRIPE_LIVE_MODE is on: refusing to start with DEBUG on.")
    if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
        raise ImproperlyConfigured("STRIPE_LIVE_MODE is on: refusing to start on SQLite (set DATABASE_URL).")
    if REDIS_URL is None:
        raise ImproperlyConfigured("STRIPE_LIVE_MODE is on: refusing to start without REDIS_URL.")
    if not STRIPE_LIVE_SECRET_KEY:
        raise ImproperlyConfigured("STRIPE_LIVE_MODE is on: STRIPE_LIVE_SECRET_KEY must be set.")

# --- API ------------------------------------------------------------------------------------

# The API contract: a body over 1 MiB is 413 payload_too_large.
DATA_UPLOAD_MAX_MEMORY_SIZE = 1024 * 1024

# Rate limits per API key and endpoint class (core/api/ratelimits.py; docs/OPERATING.md).
API_RATE_LIMITS = env_str("API_RATE_LIMITS", DEFAULT_LIMITS)
try:
    parse_limits(API_RATE_LIMITS)
except ValueError as error:
    raise ImproperlyConfigured(str(error)) from None

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["orgs.api.auth.ProductAPIKeyAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PARSER_CLASSES": ["core.api.parsing.DecimalJSONParser"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "EXCEPTION_HANDLER": "core.api.errors.exception_handler",
    "DEFAULT_THROTTLE_CLASSES": ["core.api.ratelimits.ApiKeyRateThrottle"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "UNAUTHENTICATED_USER": None,
    "COERCE_DECIMAL_TO_STRING": True,
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Billing control plane API",
    "DESCRIPTION": "The contract products program against.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "SERVE_AUTHENTICATION": [],
    # The UI's assets are bundled (drf-spectacular-sidecar): /api/docs/ works with no internet.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "core.api.schema.complete_the_contract",
    ],
}

# History is for reading: reverting from the admin would write around the services.
SIMPLE_HISTORY_REVERT_DISABLED = True

# --- Auth, i18n, static ---------------------------------------------------------------------

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
# Static files are served straight from the apps (WhiteNoise with finders), so
# `gunicorn billingsite.wsgi` needs no collectstatic step; STATIC_ROOT only if you collect.
WHITENOISE_USE_FINDERS = True
if env_str("STATIC_ROOT"):
    STATIC_ROOT = env_str("STATIC_ROOT")

EMAIL_BACKEND = env_str("EMAIL_BACKEND", default="django.core.mail.backends.console.EmailBackend")
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", default="billing@localhost")

if not DEBUG:
    SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", default=True)
    CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", default="INFO")},
}
