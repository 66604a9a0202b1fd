"""Settings for the test suite: the production settings with test-only speed-ups."""

import os
import uuid

os.environ.setdefault("SECRET_KEY", "test-only-secret-key-not-for-production-use-0123456789")
# A fixed test key ring: k2 is the newest, k1 an older key still able to open old secrets.
os.environ.setdefault(
    "FLASH_VAULT_KEYS",
    "k2:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=,k1:H0RUU1RfVEVTVF9LRVlfT05FX0ZPUl9GTEFTSF9YWFg=",
)
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/flash")

from .settings import *  # noqa: E402,F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
SECURE_SSL_REDIRECT = False
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = False
SESSION_COOKIE_SAMESITE = CSRF_COOKIE_SAMESITE = "Lax"
SECURE_HSTS_SECONDS = 0
CELERY_TASK_ALWAYS_EAGER = True
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
# Rate-limit buckets in a shared Redis are keyed by channel pk, which a fresh test database
# hands out again: each test run gets its own key space.
PACING_KEY_PREFIX = f"flash-test-{uuid.uuid4().hex[:12]}"
