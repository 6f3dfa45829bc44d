"""Test settings: the suite's own keyring and fast hashing; DATABASE_URL still decides the DB."""

import os

os.environ.setdefault("LLMCP_READ_DOTENV", "false")
os.environ.setdefault("DEBUG", "false")
os.environ.setdefault("SECRET_KEY", "test-secret-key-not-for-production")
os.environ.setdefault("LLMCP_ENCRYPTION_KEYS", "test1:8nMEf3UOQNoXFGzb0fv8qUZ63ywmx9tZIa8jdnoNnhw=")

from .base import *  # noqa: F403
from .base import BASE_DIR, DATABASES

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
WHITENOISE_AUTOREFRESH = True
WHITENOISE_USE_FINDERS = True  # servers started by tests serve static files uncollected
ALLOWED_HOSTS = ["*"]
SESSION_COOKIE_SECURE = False
CSRF_COOKIE_SECURE = False
SECURE_SSL_REDIRECT = False
# Tests open connections from several threads (live server, concurrency tests): no pool.
DATABASES["default"].get("OPTIONS", {}).pop("pool", None)
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # A file, not memory, so that servers and commands started by a test share its data.
    DATABASES["default"]["TEST"] = {"NAME": str(BASE_DIR / ".test-db.sqlite3")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # When a test's cleanup (TRUNCATE) meets a server's usage insert, let the server's side
    # be the one PostgreSQL cancels: its writer tries the batch again; a failed cleanup
    # would leave the test's rows to every later test.
    DATABASES["default"].setdefault("OPTIONS", {})["options"] = "-c deadlock_timeout=5s"
