"""Flash settings, read from the environment (see .env.example).

Unknown or malformed values fail at start-up, not at first use.
"""

from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured
from kombu import Queue

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

DEBUG = env.bool("DEBUG", default=False)
SECRET_KEY = env.str("SECRET_KEY", default="")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off (see .env.example).")
    SECRET_KEY = "dev-only-insecure-key-do-not-use-in-production-0123456789"
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])
# Where the platforms reach us (Shopify webhooks are registered at <this>/webhooks/shopify).
PUBLIC_BASE_URL = env.str("PUBLIC_BASE_URL", default="").rstrip("/")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "loyalty",
    "channels_app",
    "claims",
    "events",
]

MIDDLEWARE = [
    # First: every log line of a request carries its id, and /healthz is answered before host
    # validation, the HTTPS redirect, sessions and auth (a load balancer calls it by IP address).
    "flash.middleware.RequestIdMiddleware",
    "flash.middleware.HealthCheckMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "flash.middleware.StaticFilesMiddleware",  # WhiteNoise
    "loyalty.api.audit.ApiAuditMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "flash.urls"

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

WSGI_APPLICATION = "flash.wsgi.application"

DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # IMMEDIATE takes the write lock at BEGIN, so concurrent writers queue instead of
    # failing half-way with "database is locked" on lock upgrade.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {"transaction_mode": "IMMEDIATE", "timeout": 20}
    )
DATABASES["default"]["ATOMIC_REQUESTS"] = False
DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("CONN_MAX_AGE", default=0))

REDIS_URL = env.str("REDIS_URL", default="")

# AES-256-GCM key ring for channel secrets, newest first (see channels_app/vault.py).
FLASH_VAULT_KEYS = env.str("FLASH_VAULT_KEYS", default="")

CACHES = {
    "default": (
        {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}
        if REDIS_URL
        else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
    )
}
# Several deployments (or test runs) sharing one Redis database keep their keys apart: the
# cache's, the claim pacing buckets' (claims/pacing.py) and, below, the broker's.
CACHES["default"]["KEY_PREFIX"] = env.str("CACHE_KEY_PREFIX", default="")
PACING_KEY_PREFIX = env.str("PACING_KEY_PREFIX", default="flash")

# Celery: with no broker configured, tasks run in-process (eagerly) so the demo needs
# nothing but Python. Production sets CELERY_BROKER_URL (Redis or RabbitMQ).
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="")
CELERY_TASK_ALWAYS_EAGER = not CELERY_BROKER_URL
CELERY_TASK_EAGER_PROPAGATES = True
# Nobody waits on a task's return value: no result backend unless one is asked for, so a
# .delay() in a web request costs one broker write and nothing more.
CELERY_RESULT_BACKEND = env.str("CELERY_RESULT_BACKEND", default="") or None
CELERY_TASK_IGNORE_RESULT = True
# Several deployments (or test runs) may share one Redis: a prefix keeps their queues apart.
if CELERY_KEY_PREFIX := env.str("CELERY_KEY_PREFIX", default=""):
    CELERY_BROKER_TRANSPORT_OPTIONS = {"global_keyprefix": CELERY_KEY_PREFIX}
CELERY_TASK_ACKS_LATE = True
# One queue per kind of work, so a backlog of one (a webhook storm, a platform throttling claim
# checks) never delays the others, and each can get workers of its own (see docs/operations.md).
# Every task is routed by name here; tests/test_production.py fails for a task that is not.
FLASH_QUEUES = {
    # Shopify deliveries to settle, and our own outbound webhooks and e-mails.
    "webhooks": [
        "channels_app.order_bridge.process_webhook",
        "events.tasks.deliver",
        "events.tasks.send_automation_email",
    ],
    # Marketplace claims checked against the platforms (paced per channel).
    "verify": ["claims.tasks.verify_claim", "claims.tasks.retry_due_claims"],
    # Periodic upkeep: tokens, re-checks, Shopify sync, ledger holds, the outbox, beat's pulse.
    "sync": [
        "channels_app.tasks.refresh_channel_tokens",
        "channels_app.tasks.recheck_channels",
        "channels_app.tasks.sync_products",
        "channels_app.tasks.sync_all_shopify",
        "loyalty.tasks.retry_cap_holds",
        "loyalty.tasks.vest_due_awards",
        "events.tasks.dispatch_outbox",
        "events.tasks.retry_due_deliveries",
        "flash.tasks.beat_heartbeat",
    ],
    # Refunds and cancellations found on the marketplaces, reversed on the ledger.
    "clawback": ["claims.tasks.clawback_pass"],
}
CELERY_TASK_ROUTES = {
    name: {"queue": queue} for queue, names in FLASH_QUEUES.items() for name in names
}
# A worker started without -Q consumes every queue (the tests' and the benches' single worker).
# Each queue has a routing key of its own: bound by one shared key, a direct exchange (RabbitMQ)
# would copy every message into every queue.
CELERY_TASK_QUEUES = [Queue(name, routing_key=name) for name in FLASH_QUEUES]
# Belt and braces: were a task ever sent unrouted, a sync worker still runs it.
CELERY_TASK_DEFAULT_QUEUE = "sync"
# Logs keep the Django LOGGING format (JSON in production); flash/celery.py adds the task id.
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BEAT_SCHEDULE = {
    "retry-cap-unavailable-holds": {
        "task": "loyalty.tasks.retry_cap_holds",
        "schedule": env.int("CAP_RETRY_SECONDS", default=60),
    },
    "vest-due-awards": {
        "task": "loyalty.tasks.vest_due_awards",
        "schedule": env.int("VESTING_SECONDS", default=15 * 60),
    },
    "refresh-channel-tokens": {
        "task": "channels_app.tasks.refresh_channel_tokens",
        "schedule": env.int("TOKEN_REFRESH_SECONDS", default=15 * 60),
    },
    "recheck-channels": {
        "task": "channels_app.tasks.recheck_channels",
        "schedule": env.int("CHANNEL_RECHECK_SECONDS", default=6 * 3600),
    },
    # Shopify catalogs (and, in the same loop, the orders a webhook missed).
    "sync-all-shopify": {
        "task": "channels_app.tasks.sync_all_shopify",
        "schedule": env.int("SHOPIFY_SYNC_SECONDS", default=5 * 60),
    },
    # The outbox's events to webhooks and e-mail automations (events app), and due retries.
    "dispatch-outbox": {
        "task": "events.tasks.dispatch_outbox",
        "schedule": env.int("EVENTS_DISPATCH_SECONDS", default=10),
    },
    # Order claims whose verification is due again (retries, interrupted work).
    "retry-due-claims": {
        "task": "claims.tasks.retry_due_claims",
        "schedule": env.int("CLAIMS_RETRY_SECONDS", default=30),
    },
    "retry-due-deliveries": {
        "task": "events.tasks.retry_due_deliveries",
        "schedule": env.int("EVENTS_RETRY_SECONDS", default=15),
    },
    # Marketplace refunds and cancellations reverse the points their claims earned.
    "clawback-pass": {
        "task": "claims.tasks.clawback_pass",
        "schedule": env.int("CLAWBACK_INTERVAL_SECONDS", default=15 * 60),
    },
    # Beat's pulse: /healthz reports beat stale when this has not run for BEAT_HEARTBEAT_MAX_AGE.
    "beat-heartbeat": {
        "task": "flash.tasks.beat_heartbeat",
        "schedule": env.int("BEAT_HEARTBEAT_SECONDS", default=60),
    },
}
BEAT_HEARTBEAT_MAX_AGE = env.int("BEAT_HEARTBEAT_MAX_AGE", default=5 * 60)
# The claw-back job's windows end this long before now (platforms publish changes late; the
# demo's sandbox does not), and one pass stops after CLAWBACK_MAX_SECONDS (it resumes).
CLAWBACK_SETTLE_SECONDS = env.int("CLAWBACK_SETTLE_SECONDS", default=150)
CLAWBACK_MAX_SECONDS = env.int("CLAWBACK_MAX_SECONDS", default=300)
CLAWBACK_OVERLAP_SECONDS = env.int("CLAWBACK_OVERLAP_SECONDS", default=60)
# Outbound calls to the platforms give up after this many seconds (then retried later).
CHANNEL_HTTP_TIMEOUT = env.float("CHANNEL_HTTP_TIMEOUT", default=10.0)
# Webhook endpoints must be https:// (events carry member data); plain http only in development.
EVENTS_REQUIRE_HTTPS = env.bool("EVENTS_REQUIRE_HTTPS", default=not DEBUG)

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = env.str("TIME_ZONE", default="UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = Path(env.str("STATIC_ROOT", default=str(BASE_DIR / "staticfiles")))
STATICFILES_DIRS = [BASE_DIR / "static"]
# WhiteNoise serves the collected files from gunicorn itself. In production they are hashed
# and compressed (`collectstatic`, run by `make run`); in DEBUG (the demo) they are served
# from the apps as they are.
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "flash.storage.CompressedManifestStorage"
        )
    },
}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

LOGIN_URL = "/admin/login/"

# Security. Production (DEBUG off) gets HTTPS-only cookies and HSTS; the member portal is
# embeddable in a brand's site, so its cookies must travel in a cross-site iframe.
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=not DEBUG)
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=not DEBUG)
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=not DEBUG)
SESSION_COOKIE_SAMESITE = "None" if SESSION_COOKIE_SECURE else "Lax"
CSRF_COOKIE_SAMESITE = "None" if CSRF_COOKIE_SECURE else "Lax"
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0 if DEBUG else 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = not DEBUG
SECURE_HSTS_PRELOAD = not DEBUG
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["loyalty.api.auth.ApiKeyAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["loyalty.api.auth.HasScope"],
    "DEFAULT_THROTTLE_CLASSES": ["loyalty.api.auth.KeyRateThrottle"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "EXCEPTION_HANDLER": "loyalty.api.errors.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "UNAUTHENTICATED_USER": None,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Flash v2 API",
    "DESCRIPTION": (
        "Award points on sales, redeem coupons at the register, and reconcile members, ledger "
        "and stores. Authenticate with `Authorization: Bearer fl_live_…` (a team key). "
        'Errors are `{"error": {"code", "message"}}`.'
    ),
    "VERSION": "2.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SCHEMA_PATH_PREFIX": "/api/v2",
    "SWAGGER_UI_DIST": "SIDECAR",  # served from our own static files: the docs work offline
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
}
API_DEFAULT_RATE_LIMIT = env.int("API_DEFAULT_RATE_LIMIT", default=600)

# EMAIL_URL configures SMTP in one value: smtp+tls://user:password@host:587 (STARTTLS),
# smtp+ssl://…:465, smtp://…:25. Without it: the console in DEBUG (the demo prints its mail);
# in production nothing is sent (and nothing with a member's address reaches the logs).
if env.str("EMAIL_URL", default=""):
    globals().update(env.email_url("EMAIL_URL"))
else:
    EMAIL_BACKEND = env.str(
        "EMAIL_BACKEND",
        default=(
            "django.core.mail.backends.console.EmailBackend"
            if DEBUG
            else "django.core.mail.backends.dummy.EmailBackend"
        ),
    )
EMAIL_TIMEOUT = env.int("EMAIL_TIMEOUT", default=20)
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="Flash <no-reply@flash.local>")

# The portal may be framed by these origins (the brands' own sites); '*' in the demo.
PORTAL_FRAME_ANCESTORS = env.list("PORTAL_FRAME_ANCESTORS", default=["*"] if DEBUG else [])

# One JSON object per line in production (time, level, logger, message, request_id, task_id,
# exception), plain text in DEBUG. Both formats mask secrets, postal codes and e-mail
# addresses (flash/logs.py).
LOG_FORMAT = env.str("LOG_FORMAT", default="text" if DEBUG else "json")
if LOG_FORMAT not in ("json", "text"):
    raise ImproperlyConfigured("LOG_FORMAT must be 'json' or 'text'.")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "json": {"()": "flash.logs.JsonFormatter"},
        "text": {
            "()": "flash.logs.RedactingFormatter",
            "format": "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s",
        },
    },
    "filters": {"context": {"()": "flash.logs.ContextFilter"}},
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": LOG_FORMAT,
            "filters": ["context"],
        }
    },
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    # The SP-API client's HTTP library logs every request line at INFO; a URL is enough noise.
    "loggers": {"httpx": {"level": "WARNING"}},
}
