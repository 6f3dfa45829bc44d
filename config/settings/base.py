"""Settings shared by every environment, read from the environment through one `env`.

Production needs SECRET_KEY, DATABASE_URL and LLMCP_ENCRYPTION_KEYS; `make run` writes a
local `.env` with generated values so a first run needs nothing.
"""

from datetime import timedelta
from pathlib import Path
from typing import Any

import environ
from django.core.exceptions import ImproperlyConfigured

from config import access as _access

BASE_DIR = Path(__file__).resolve().parent.parent.parent

env = environ.Env()
# The test settings skip it: `make run` writes a .env for a local, plain-HTTP server, and the
# suite must test the production defaults whatever that file says.
if env.bool("LLMCP_READ_DOTENV", default=True) and (BASE_DIR / ".env").exists():
    environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

DEBUG = env.bool("DEBUG", default=False)
# Outside debug there is no default: a missing SECRET_KEY must stop the server.
SECRET_KEY = (
    env.str("SECRET_KEY") if not DEBUG else env.str("SECRET_KEY", default="insecure-dev-only")
)
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

# Provider and user keys are encrypted with this keyring, never with SECRET_KEY, so that
# rotating one leaves the other intact. Format: "id:fernetkey,id:fernetkey"; the first
# entry encrypts, every entry decrypts.
ENCRYPTION_KEYS = env.str("LLMCP_ENCRYPTION_KEYS", default="")

# Base URL overrides may not point at link-local or cloud-metadata addresses unless allowed.
ALLOW_LINK_LOCAL_BASE_URLS = env.bool("ALLOW_LINK_LOCAL_BASE_URLS", default=False)

# Platform API tokens: the longest an API token may live (sessions end with their session).
API_TOKEN_MAX_LIFETIME_DAYS = env.int("API_TOKEN_MAX_LIFETIME_DAYS", default=365)

# Model calls go through the built-in AI Gateway when both are on (routing decides in one
# place, routing.deployment); otherwise straight to the provider.
AI_GATEWAY_ENABLED = env.bool("AI_GATEWAY_ENABLED", default=True)
AI_GATEWAY_CHAT_ROUTING = env.bool("AI_GATEWAY_CHAT_ROUTING", default=True)
# The gateway's own connections: one async psycopg pool per worker process (PostgreSQL).
# Prometheus metrics at /metrics: off unless a token (sent as "Authorization: Bearer …") or
# the addresses allowed to scrape without one are set (comma-separated IPs or networks).
METRICS_TOKEN = env.str("METRICS_TOKEN", default="")
METRICS_ALLOWED_IPS = env.list("METRICS_ALLOWED_IPS", default=[])
# How long a central key the provider rate-limited rests when the answer names no time.
AI_GATEWAY_KEY_COOLDOWN_SECONDS = env.float("AI_GATEWAY_KEY_COOLDOWN_SECONDS", default=60.0)
# The circuit breaker per provider and model: this many calls failing at the provider (5xx,
# no answer) within the window open it; calls then fail at once (or go to a fallback model)
# for AI_GATEWAY_BREAKER_OPEN_SECONDS, after which one call tries again. 0 turns it off.
AI_GATEWAY_BREAKER_FAILURES = env.int("AI_GATEWAY_BREAKER_FAILURES", default=10)
AI_GATEWAY_BREAKER_WINDOW_SECONDS = env.float("AI_GATEWAY_BREAKER_WINDOW_SECONDS", default=60.0)
AI_GATEWAY_BREAKER_OPEN_SECONDS = env.float("AI_GATEWAY_BREAKER_OPEN_SECONDS", default=30.0)
AI_GATEWAY_DB_POOL_SIZE = env.int("AI_GATEWAY_DB_POOL_SIZE", default=4)
# Longest a gateway statement may run, in seconds (in practice: wait for a lock that a
# migration or a stuck transaction holds); past it a call is answered 503.
AI_GATEWAY_DB_STATEMENT_TIMEOUT = env.float("AI_GATEWAY_DB_STATEMENT_TIMEOUT", default=15.0)
AI_GATEWAY_MAX_BODY_BYTES = env.int("AI_GATEWAY_MAX_BODY_BYTES", default=32 * 1024 * 1024)
# The request bodies one worker process holds at once, all calls together: past it a call
# is answered 503 (the SDKs try again) rather than the process running out of memory. A
# call alone may always hold a whole body.
AI_GATEWAY_MAX_BUFFERED_BYTES = env.int("AI_GATEWAY_MAX_BUFFERED_BYTES", default=256 * 1024 * 1024)
# Usage rows wait here before being written in batches; beyond it a row is dropped, counted
# and logged.
AI_GATEWAY_USAGE_QUEUE_SIZE = env.int("AI_GATEWAY_USAGE_QUEUE_SIZE", default=20_000)
# Seconds a worker gathers usage rows before writing them in one batch: longer, fewer and
# fuller batches; shorter, rows on the Usage tab sooner.
AI_GATEWAY_USAGE_BATCH_WAIT = env.float("AI_GATEWAY_USAGE_BATCH_WAIT", default=0.2)

# The address people and tools reach this server at (https://llm.example.com), for the links
# it makes: invitations, the tools' base URLs. Unset: the address each request came to.
SITE_URL = env.str("SITE_URL", default="").strip()
if SITE_URL and not SITE_URL.startswith(("http://", "https://")):
    raise ImproperlyConfigured("SITE_URL must start with http:// or https://.")

# Budgets (Admin -> Budgets & limits). Whether calls made with a person's own provider key
# count against budgets (the person pays for those).
BUDGETS_COUNT_PERSONAL_KEYS = env.bool("BUDGETS_COUNT_PERSONAL_KEYS", default=False)
# What a call whose cost cannot be read counts as: "worst_case" (its hold: its prompt and
# output at the model's highest known price) or "zero". Either way it is shown apart.
BUDGETS_UNKNOWN_COST = env.str("BUDGETS_UNKNOWN_COST", default="worst_case")
if BUDGETS_UNKNOWN_COST not in ("worst_case", "zero"):
    raise ImproperlyConfigured("BUDGETS_UNKNOWN_COST must be worst_case or zero.")
# USD per 1M tokens a model without any price is held at (never zero).
BUDGETS_UNPRICED_USD_PER_MILLION = env.float("BUDGETS_UNPRICED_USD_PER_MILLION", default=100.0)
# The output tokens a call that sets no maximum may generate, when its model has no context
# limit to bound it.
BUDGETS_DEFAULT_OUTPUT_TOKENS = env.int("BUDGETS_DEFAULT_OUTPUT_TOKENS", default=128_000)
# Seconds a call's hold outlives the call at most when its worker dies before settling it.
BUDGETS_HOLD_SECONDS = env.int("BUDGETS_HOLD_SECONDS", default=2 * 60 * 60)

# Where budgets' and rate limits' counters live: PostgreSQL (or SQLite) by default; Redis
# when REDIS_URL is set (redis://host:6379/0), shared by every server process and replica.
REDIS_URL = env.str("REDIS_URL", default="").strip()
if REDIS_URL and not REDIS_URL.startswith(("redis://", "rediss://", "unix://")):
    raise ImproperlyConfigured("REDIS_URL must start with redis://, rediss:// or unix://.")
# What a call meets while Redis cannot be reached: "closed" refuses it (503), "open" lets it
# through uncounted. Budgets fail closed, rate limits open, unless set otherwise.
BUDGETS_WHEN_REDIS_DOWN = env.str("BUDGETS_WHEN_REDIS_DOWN", default="closed")
RATE_LIMITS_WHEN_REDIS_DOWN = env.str("RATE_LIMITS_WHEN_REDIS_DOWN", default="open")
for _name in ("BUDGETS_WHEN_REDIS_DOWN", "RATE_LIMITS_WHEN_REDIS_DOWN"):
    if globals()[_name] not in ("open", "closed"):
        raise ImproperlyConfigured(f"{_name} must be open or closed.")
# Seconds between two log lines about the same Redis outage (each counts the calls it met).
REDIS_OUTAGE_LOG_SECONDS = env.float("REDIS_OUTAGE_LOG_SECONDS", default=60.0)

# Outbound calls to providers (lib.outbound).
OUTBOUND_CONNECT_TIMEOUT = env.float("OUTBOUND_CONNECT_TIMEOUT", default=10.0)
# Ten minutes, as the OpenAI and Anthropic SDKs wait: a long non-streamed answer sends no
# byte until it is done, and giving up sooner fails a call the provider still bills.
OUTBOUND_READ_TIMEOUT = env.float("OUTBOUND_READ_TIMEOUT", default=600.0)
OUTBOUND_MAX_CONNECTIONS = env.int("OUTBOUND_MAX_CONNECTIONS", default=1000)
# "Test connection" and "Discover models" give up after this many seconds (at most 5).
PROVIDER_TEST_TIMEOUT = min(env.float("PROVIDER_TEST_TIMEOUT", default=5.0), 5.0)

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django_htmx",
    "template_partials",
    "csp",
    "axes",
    "mozilla_django_oidc",
    "accounts",
    "audit",
    "providers",
    "models_catalog",
    "userkeys",
    "tokens",
    "routing",
    "spend",
    "gateway",
    "chats",
    "fakeprovider",
    "ui",
]

MIDDLEWARE = [
    # First: load balancers' probes name a replica's own address as the host.
    "accounts.health.HealthCheckMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "lib.middleware.PermissionsPolicyMiddleware",
    "lib.nul.RefuseNulBytesMiddleware",
    "csp.middleware.CSPMiddleware",
    "lib.static.StaticFilesMiddleware",  # WhiteNoise
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "tokens.middleware.ApiTokenMiddleware",
    "lib.middleware.NoStoreWhenSignedInMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    # Last, as django-axes requires: it turns a locked-out sign-in into the lockout page.
    "axes.middleware.AxesMiddleware",
]

AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]

# Single sign-on (OpenID Connect). Endpoints come from the issuer's discovery document.
OIDC_ISSUER = env.str("OIDC_ISSUER", default="")
OIDC_RP_CLIENT_ID = env.str("OIDC_CLIENT_ID", default="")
OIDC_RP_CLIENT_SECRET = env.str("OIDC_CLIENT_SECRET", default="")
OIDC_PROVIDER_NAME = env.str("OIDC_PROVIDER_NAME", default="single sign-on")
OIDC_RP_SIGN_ALGO = env.str("OIDC_SIGN_ALGO", default="RS256")
OIDC_RP_SCOPES = env.str("OIDC_SCOPES", default="openid email profile")
OIDC_USE_PKCE = True
OIDC_USE_NONCE = True
OIDC_ALLOWED_EMAIL_DOMAINS = [d.lower() for d in env.list("OIDC_ALLOWED_EMAIL_DOMAINS", default=[])]
# Groups follow this claim on every sign-in; members of OIDC_ADMIN_GROUPS become admins.
OIDC_GROUPS_CLAIM = env.str("OIDC_GROUPS_CLAIM", default="")
OIDC_ADMIN_GROUPS = env.list("OIDC_ADMIN_GROUPS", default=[])
OIDC_TIMEOUT = 10
if OIDC_ISSUER and OIDC_RP_CLIENT_ID:
    AUTHENTICATION_BACKENDS.append("accounts.oidc.Backend")
# "break_glass": password sign-in only for BREAK_GLASS_USERS (everyone else uses SSO).
PASSWORD_SIGN_IN = env.str("PASSWORD_SIGN_IN", default="all")
BREAK_GLASS_USERS = env.list("BREAK_GLASS_USERS", default=[])
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="llmcp@localhost")

ROOT_URLCONF = "config.urls"

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

WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"

DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The embedded first-run database is shared by page requests, the gateway's usage writer
    # and chats: write-ahead logging lets readers and one writer work at once, and a writer
    # waits for the lock instead of failing.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            "transaction_mode": "IMMEDIATE",
            "timeout": 20,
        }
    )
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # Under ASGI persistent connections leak (Django #33497); use psycopg's pool instead.
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"].setdefault("OPTIONS", {})
    if env.bool("DATABASE_POOL", default=True):
        DATABASES["default"]["OPTIONS"]["pool"] = {
            "min_size": 1,
            "max_size": env.int("DATABASE_POOL_MAX_SIZE", default=10),
        }

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}

SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = False  # htmx reads the token from the body's hx-headers, not the cookie
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=not DEBUG)
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=not DEBUG)
SESSION_COOKIE_SAMESITE = "Lax"
X_FRAME_OPTIONS = "DENY"

# HTTPS. Behind a TLS-terminating proxy set SECURE_PROXY_SSL_HEADER=X-Forwarded-Proto so that
# an https:// Origin is recognised (the proxy must set that header itself, always).
_proxy_header = env.str("SECURE_PROXY_SSL_HEADER", default="")
if _proxy_header:
    SECURE_PROXY_SSL_HEADER = (
        "HTTP_" + _proxy_header.strip().upper().replace("-", "_"),
        "https",
    )
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=not DEBUG)
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0 if DEBUG else 31_536_000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=False)
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=False)
# Both HSTS extras reach beyond this server (every subdomain; browsers' built-in lists), so
# they are the operator's choice, off by default; `check --deploy` need not nag about them.
SILENCED_SYSTEM_CHECKS = ["security.W005", "security.W021"]
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"

# Content Security Policy: everything (htmx included) is served from our own origin.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "connect-src": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
        "base-uri": ["'none'"],
        "object-src": ["'none'"],
    }
}

# Sign-in throttling (django-axes): after AXES_FAILURE_LIMIT failures for one account, or from
# one address, sign-in is refused for the cool-off time, on our page and the Django admin's.
# Either rule lets anyone who knows a username lock that account for the cool-off time;
# SIGN_IN_LOCKOUT=account_and_address locks an account only for the address that failed,
# and an address for every account past SIGN_IN_ADDRESS_FAILURE_LIMIT.
AXES_FAILURE_LIMIT = env.int("SIGN_IN_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = timedelta(minutes=env.int("SIGN_IN_COOLOFF_MINUTES", default=15))
SIGN_IN_LOCKOUT = env.str("SIGN_IN_LOCKOUT", default="account")
if SIGN_IN_LOCKOUT not in ("account", "account_and_address"):
    raise ImproperlyConfigured(
        f"SIGN_IN_LOCKOUT must be 'account' or 'account_and_address', not {SIGN_IN_LOCKOUT!r}."
    )
SIGN_IN_ADDRESS_FAILURE_LIMIT = env.int("SIGN_IN_ADDRESS_FAILURE_LIMIT", default=50)
# Pair mode: the pair's attempts first, the address's second (accounts.throttle).
AXES_LOCKOUT_PARAMETERS: list[Any] = (
    [["username", "ip_address"], "ip_address"]
    if SIGN_IN_LOCKOUT == "account_and_address"
    else ["username", "ip_address"]
)
# A success clears only its own account's failures from its own address (the handler).
AXES_RESET_ON_SUCCESS = True
AXES_HANDLER = "accounts.throttle.SignInThrottle"
AXES_LOCKOUT_CALLABLE = "accounts.views.locked_out"
AXES_USERNAME_CALLABLE = "accounts.throttle.username_for_throttling"
# Client addresses come from REMOTE_ADDR unless a number of trusted proxies is given: a
# forwarded-for header anyone can send must not let them dodge the per-address limit.
TRUSTED_PROXY_COUNT = env.int("TRUSTED_PROXY_COUNT", default=0)
AXES_IPWARE_META_PRECEDENCE_ORDER: tuple[str, ...] = ("REMOTE_ADDR",)
if TRUSTED_PROXY_COUNT:
    AXES_IPWARE_PROXY_COUNT = TRUSTED_PROXY_COUNT
    AXES_IPWARE_META_PRECEDENCE_ORDER = ("HTTP_X_FORWARDED_FOR", "REMOTE_ADDR")

DEFAULT_EXCEPTION_REPORTER_FILTER = "lib.reporting.SecretsExceptionReporterFilter"
ADMINS = [("Operators", address) for address in env.list("ADMIN_EMAILS", default=[])]
SERVER_EMAIL = env.str("SERVER_EMAIL", default="llmcp@localhost")
EMAIL_BACKEND = env.str("EMAIL_BACKEND", default="django.core.mail.backends.smtp.EmailBackend")
EMAIL_HOST = env.str("EMAIL_HOST", default="localhost")
EMAIL_PORT = env.int("EMAIL_PORT", default=25)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "filters": {
        "client_errors": {"()": "lib.logging.ClientErrorsInOneLine"},
        "require_debug_false": {"()": "django.utils.log.RequireDebugFalse"},
    },
    "handlers": {
        "mail_admins": {
            "level": "ERROR",
            "filters": ["require_debug_false"],
            "class": "django.utils.log.AdminEmailHandler",
            "include_html": True,
        },
        "console": {"class": "logging.StreamHandler", "formatter": "plain"},
    },
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {
        # Replaces Django's default (a second console handler while DEBUG is on): every
        # record is printed once, by the root handler; server errors are also mailed to
        # ADMINS when it is set (with the same secret-hiding report filter).
        "django": {"handlers": ["mail_admins"], "level": "INFO", "propagate": True},
        "django.request": {"filters": ["client_errors"]},
        "django.security": {"filters": ["client_errors"]},
        # django-axes announces itself at every start; failures and lock-outs stay visible.
        "axes.apps": {"level": "WARNING"},
        "axes.handlers": {"level": "WARNING"},
        # One line per in-process gateway call otherwise; calls are in the usage rows.
        "httpx": {"level": "WARNING"},
    },
}

# The URL names a platform token may open besides the AI Gateway (config.access): the
# documented JSON endpoints. Pages, forms and the Django admin take a browser session.
PLATFORM_TOKEN_URL_NAMES = _access.PLATFORM_TOKEN_URL_NAMES
