"""Settings shared by every environment; each value comes from the environment (SPEC "Configuration")."""

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import django_stubs_ext
import environ
import limits
from django.core.exceptions import ImproperlyConfigured

# Lets admin classes and querysets be subscripted at run time (ModelAdmin[Plan]) for mypy.
django_stubs_ext.monkeypatch()

BASE_DIR = Path(__file__).resolve().parent.parent.parent
env = environ.Env()


def env_secret(name: str, *, value_hint: str) -> str:
    """A setting production cannot run without: set and not blank, else the process refuses to start."""
    value = env.str(name, default="")
    if not value.strip():
        raise ImproperlyConfigured(
            f"{name} is missing or blank. Set the {name} environment variable to {value_hint}. "
            "Production settings (config.settings.prod, the default) never fall back to a built-in value; "
            "for local development run `make run` or set DJANGO_SETTINGS_MODULE=config.settings.dev."
        )
    return value


def env_choice(name: str, choices: Sequence[str], *, default: str) -> str:
    """One of `choices`; anything else stops the process, rather than failing at first use."""
    value = env.str(name, default=default).strip().lower()
    if value not in choices:
        raise ImproperlyConfigured(f"{name}={value!r} is not allowed: set it to one of {', '.join(choices)}.")
    return value


def env_rate_limit(name: str, *, default: str) -> str:
    """A rate limit in the `limits` notation ("300 per 10 seconds", "600/minute") or "off"; anything else
    stops the process (core/ratelimit.py applies it)."""
    value = " ".join(env.str(name, default=default).split())
    if value.lower() == "off":
        return "off"
    try:
        limits.parse(value)
    except ValueError:
        raise ImproperlyConfigured(
            f"{name}={value!r} is not a rate limit: write it as '300 per 10 seconds' or '600/minute', or 'off'."
        ) from None
    return value


def email_settings(url: str) -> dict[str, Any]:
    """EMAIL_BACKEND, EMAIL_HOST, … from an EMAIL_URL (smtp+tls://user:password@host:587, consolemail://)."""
    return {name: value for name, value in environ.Env.email_url_config(url).items() if value is not None}


# ---------------------------------------------------------------------------------------------
# Core
# ---------------------------------------------------------------------------------------------
DEBUG = env.bool("DEBUG", default=False)
SECRET_KEY = env.str("SECRET_KEY", default="")
# Keys retired by a rotation: signatures (sessions, hand-off tokens, password resets) made with them
# stay valid until they expire, while everything new is signed with SECRET_KEY.
SECRET_KEY_FALLBACKS = [key for key in env.list("SECRET_KEY_FALLBACKS", default=[]) if key.strip()]
BASE_DOMAIN = env.str("BASE_DOMAIN", default="localhost")
# `Authorization: Bearer <token>` shows operational detail (why /readyz fails, /metrics) to a
# monitor without a staff session; unset, only staff see it.
METRICS_TOKEN = env.str("METRICS_TOKEN", default="")
PORT = env.int("PORT", default=8000)
# The public host and every organisation's subdomain; ALLOWED_HOSTS adds others (a custom domain,
# an address a monitor uses). The tenant middleware still answers a 404 for a subdomain with no
# Domain row; this list keeps forged Host headers out of absolute URLs (password-reset links, the
# hand-off redirect) before any view runs. /healthz and /readyz answer on every host: they run first.
ALLOWED_HOSTS = [BASE_DOMAIN, f".{BASE_DOMAIN}", *env.list("ALLOWED_HOSTS", default=[])]

# ---------------------------------------------------------------------------------------------
# Behind a reverse proxy or load balancer: trusted only when the operator says one is there
# ---------------------------------------------------------------------------------------------
# A client can send X-Forwarded-Proto itself; only a proxy that overwrites it may be believed, or
# anyone could pass for HTTPS (secure-only cookies, no redirect) over plain HTTP.
SECURE_PROXY_SSL_HEADER = (
    ("HTTP_X_FORWARDED_PROTO", "https") if env.bool("TRUSTED_PROXY_SSL_HEADER", default=False) else None
)
# allauth's rate limits (sign-up, log-in, password reset) count per client address. Without a
# declared proxy that is REMOTE_ADDR, and X-Forwarded-For is ignored (any client can send one).
# TRUSTED_PROXY_COUNT proxies each append the address they saw: the client is the one that many
# entries from the right. TRUSTED_CLIENT_IP_HEADER instead names a header the proxy sets
# (X-Real-IP, CF-Connecting-IP); a request without it is refused.
ALLAUTH_TRUSTED_PROXY_COUNT = env.int("TRUSTED_PROXY_COUNT", default=0)
ALLAUTH_TRUSTED_CLIENT_IP_HEADER = env.str("TRUSTED_CLIENT_IP_HEADER", default="") or None

# ---------------------------------------------------------------------------------------------
# Abuse: per-address limits (core/ratelimit.py), counted in Redis across every web process
# ---------------------------------------------------------------------------------------------
# Per client address (the one above; an IPv6 address's /64), in a moving window. Generous, because a
# corporate NAT puts a whole office behind one address (README "Design notes": how they were chosen).
RATE_LIMIT_WS_CONNECTS = env_rate_limit("RATE_LIMIT_WS_CONNECTS", default="300 per 10 seconds")
RATE_LIMIT_WIDGET_TOKENS = env_rate_limit("RATE_LIMIT_WIDGET_TOKENS", default="600 per minute")

ROOT_URLCONF = "config.urls_tenants"
PUBLIC_SCHEMA_URLCONF = "config.urls_public"
ASGI_APPLICATION = "config.asgi.application"
WSGI_APPLICATION = None

# ---------------------------------------------------------------------------------------------
# Apps: public schema (SHARED_APPS) and per-organisation schema (TENANT_APPS)
# ---------------------------------------------------------------------------------------------
SHARED_APPS = [
    "django_tenants",
    "django_guid",
    "tenants",
    "accounts",
    "billing",
    "core",
    "symbols",
    "streaming",
    "dashboard",
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.admin",
    "django.contrib.staticfiles",
    "django.contrib.postgres",
    "allauth",
    "allauth.account",
    "channels",
    "csp",
]
TENANT_APPS = [
    "django.contrib.contenttypes",
    "watchlists",
    "widgets",
    "alerts",
]
INSTALLED_APPS = SHARED_APPS + [app for app in TENANT_APPS if app not in SHARED_APPS]

TENANT_MODEL = "tenants.Organisation"
TENANT_DOMAIN_MODEL = "tenants.Domain"
# New organisations are cloned from this schema instead of running every migration (see
# tenants/schema_template.py); it is kept migrated by `manage.py bootstrap`.
TENANT_BASE_SCHEMA = "tenant_template"
TENANT_CREATION_FAKES_MIGRATIONS = True
TENANT_LIMIT_SET_CALLS = True
# pg_dump writes the template's SQL that new schemas are made from (tenants/schema_script.py); empty:
# the one on PATH, else the embedded server's. Without one, sign-up falls back to clone_schema.
PG_DUMP = env.str("PG_DUMP", default="")

MIDDLEWARE = [
    # A request id for the logs: the proxy's X-Request-ID when it is a UUID, else a new one; returned.
    "django_guid.middleware.guid_middleware",
    "core.middleware.HealthCheckMiddleware",
    "core.metrics.MetricsMiddleware",  # /metrics (Prometheus), on the event loop: see core/metrics.py
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # Before the tenant middleware, so the pages it renders itself (unknown organisation, 503) are covered.
    "core.csp.CSPMiddleware",
    "tenants.middleware.OrganisationMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "tenants.middleware.MembershipRequiredMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "allauth.account.middleware.AccountMiddleware",
]

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
                "core.context_processors.site",
            ],
        },
    },
]

# ---------------------------------------------------------------------------------------------
# Content-Security-Policy (django-csp), here so that development and the tests run under it too
# ---------------------------------------------------------------------------------------------
# Scripts and styles come from our own static files only: nothing inline, no eval, so injected
# markup cannot run. connect-src also gets the page's own ws:/wss: origin (core.csp). form-action
# covers the public host and organisations' hosts because Chromium applies it to the redirects
# after a form post too: sign-up and log-in on the public host end on the organisation's host.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "frame-ancestors": ["'none'"],
        "form-action": ["'self'", f"{BASE_DOMAIN}:*", f"*.{BASE_DOMAIN}:*"],
    },
}

# ---------------------------------------------------------------------------------------------
# Database and channel layer
# ---------------------------------------------------------------------------------------------
DATABASES = {
    "default": env.db_url("DATABASE_URL", default="postgres://root@127.0.0.1:5432/tickerdeck"),
}
DATABASES["default"]["ENGINE"] = "tenants.postgresql_backend"  # django-tenants', faster table listing
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
DATABASES["default"].setdefault("OPTIONS", {})["connect_timeout"] = 5
# A pool per process (psycopg_pool): streams and requests borrow a connection for each query batch
# instead of opening one (a new PostgreSQL connection took ~40 % of a websocket connect's time).
# Django's persistent connections are not an option under ASGI; the pool is. A request waits at most
# DATABASE_POOL_TIMEOUT for a connection, so a database outage is a quick 503, not a hung page.
if env.bool("DATABASE_POOL", default=True):
    DATABASES["default"]["OPTIONS"]["pool"] = {
        "min_size": 2,
        "max_size": env.int("DATABASE_POOL_MAX", default=12),
        "timeout": env.float("DATABASE_POOL_TIMEOUT", default=3.0),
    }
    # The pool replaces connections that come back broken; a check on every loan would add a round
    # trip to each database call (a fifth of a connect storm's waiting).
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = False
DATABASE_ROUTERS = ["django_tenants.routers.TenantSyncRouter"]
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env.str("REDIS_URL", default="")
CHANNEL_LAYERS: dict[str, dict[str, Any]]

if REDIS_URL:
    # channels-redis' pub/sub layer: a group is a Redis pub/sub channel. Each web process joins one
    # channel per organisation (streaming.hub) and fans out locally, so a dead process leaves no
    # stale group members, and no per-channel capacity silently drops whole messages. Measured with
    # 500 connections (bench/stream_probe.py): p50 8 ms, where the core (list-based) layer queued
    # up to its capacity, at 4-5 s.
    # CHANNEL_LAYER_URLS: more Redis servers for the layer alone; each channel (an organisation's
    # groups, a connection's channel) lives on one of them, chosen by a hash of its name.
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "streaming.layers.PipelinedPubSubChannelLayer",
            "CONFIG": {
                "hosts": [
                    {"address": url, "socket_keepalive": True, "socket_connect_timeout": 5, "health_check_interval": 30}
                    for url in env.list("CHANNEL_LAYER_URLS", default=[REDIS_URL])
                ],
                "prefix": env.str("CHANNEL_LAYER_PREFIX", default="td"),
            },
        },
    }
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": "td",
        },
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer", "CONFIG": {"capacity": 10_000}}}
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# ---------------------------------------------------------------------------------------------
# Accounts (django-allauth, e-mail as the login)
# ---------------------------------------------------------------------------------------------
AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "allauth.account.auth_backends.AuthenticationBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
ACCOUNT_LOGIN_METHODS = {"email"}
ACCOUNT_SIGNUP_FIELDS = ["email*", "password1*"]
ACCOUNT_USER_MODEL_USERNAME_FIELD = None
ACCOUNT_UNIQUE_EMAIL = True
EMAIL_VERIFICATION_MODES = ("none", "optional", "mandatory")
# Off here so `make run` and the tests land a new owner on the dashboard at once; production's
# default is "mandatory" (config/settings/prod.py).
ACCOUNT_EMAIL_VERIFICATION = env_choice("ACCOUNT_EMAIL_VERIFICATION", EMAIL_VERIFICATION_MODES, default="none")
# Confirming in the browser that signed up finishes that sign-up: signed in, on to the new
# organisation. allauth does this only for the session that signed up, so a leaked link signs
# nobody in; confirmed elsewhere, the owner logs in (AccountAdapter says where to go next).
ACCOUNT_LOGIN_ON_EMAIL_CONFIRMATION = True
ACCOUNT_ADAPTER = "tenants.adapter.AccountAdapter"
ACCOUNT_FORMS = {
    "login": "tenants.forms.OrganisationLoginForm",
    "signup": "tenants.forms.OrganisationSignupForm",
}
ACCOUNT_LOGOUT_REDIRECT_URL = "/"
ACCOUNT_SESSION_REMEMBER = True
LOGIN_URL = "account_login"
LOGIN_REDIRECT_URL = "/"
# Session and CSRF cookies stay host-only: one organisation's host never sees another's cookie.
SESSION_COOKIE_DOMAIN = None
CSRF_COOKIE_DOMAIN = None
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"

EMAIL_BACKEND = env.str("EMAIL_BACKEND", default="django.core.mail.backends.console.EmailBackend")
if email_url := env.str("EMAIL_URL", default=""):
    globals().update(email_settings(email_url))
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="Tickerdeck <no-reply@tickerdeck.test>")

# ---------------------------------------------------------------------------------------------
# Static files, i18n
# ---------------------------------------------------------------------------------------------
STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
# Static files are served by WhiteNoise on every host (widgets load them from other sites' pages);
# without a collectstatic run (dev, tests) it serves straight from the source folders; prod sets STATIC_ROOT.
WHITENOISE_USE_FINDERS = env.bool("WHITENOISE_USE_FINDERS", default=True)
LANGUAGE_CODE = "en-gb"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# ---------------------------------------------------------------------------------------------
# Logging
# ---------------------------------------------------------------------------------------------
DJANGO_GUID = {
    "GUID_HEADER_NAME": "X-Request-ID",  # nginx: proxy_set_header X-Request-ID $request_id
    "VALIDATE_GUID": True,  # anything but a UUID from outside is replaced, never logged as it came
    "RETURN_HEADER": True,
    "EXPOSE_HEADER": False,
    "IGNORE_URLS": ["healthz", "readyz"],
}
LOG_FORMATS = ("plain", "json")


def logging_config(log_format: str) -> dict[str, Any]:
    """Console logs, one line per record with its request id: readable text, or JSON for a log pipeline."""
    fields = "%(asctime)s %(levelname)s %(name)s %(request_id)s %(message)s"
    formatters = {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"},
        "json": {"()": "pythonjsonlogger.json.JsonFormatter", "fmt": fields,
                 "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"}},
    }  # fmt: skip
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"request_id": {"()": "core.logs.RequestId"}},
        "formatters": {log_format: formatters[log_format]},
        "handlers": {"console": {"class": "logging.StreamHandler", "formatter": log_format, "filters": ["request_id"]}},
        "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
        "loggers": {"django.db.backends": {"level": "WARNING"}},
    }


LOGGING = logging_config(env_choice("LOG_FORMAT", LOG_FORMATS, default="plain"))

# ---------------------------------------------------------------------------------------------
# Stripe (billing issue) and market data
# ---------------------------------------------------------------------------------------------
STRIPE_SECRET_KEY = env.str("STRIPE_SECRET_KEY", default="")
STRIPE_WEBHOOK_SECRET = env.str("STRIPE_WEBHOOK_SECRET", default="")
STRIPE_API_BASE = env.str("STRIPE_API_BASE", default="")
STRIPE_TIMEOUT_SECONDS = env.float("STRIPE_TIMEOUT_SECONDS", default=10.0)  # one request to Stripe, at most
MARKET_DATA_PROVIDER = env.str("MARKET_DATA_PROVIDER", default="simulated")

# ---------------------------------------------------------------------------------------------
# Streaming
# ---------------------------------------------------------------------------------------------
SIMULATED_TICKS_PER_SECOND = env.float("SIMULATED_TICKS_PER_SECOND", default=50.0)
SIMULATED_SEED = env.int("SIMULATED_SEED", default=None)
# Trading hours (NYSE calendar): outside them the feed publishes nothing and dashboards say "market
# closed". Off by default (the simulated feed trades round the clock); meant for replays and vendors.
MARKET_HOURS = env.bool("MARKET_HOURS", default=False)
# /readyz fails when no feed leader has reported for this long (0: the feed is not checked).
FEED_STALE_SECONDS = env.float("FEED_STALE_SECONDS", default=30.0)
# Replays (MARKET_DATA_PROVIDER=replay): a CSV file or a folder of them, and minutes of history per second.
REPLAY_PATH = env.str("REPLAY_PATH", default="")
REPLAY_SPEED = env.float("REPLAY_SPEED", default=60.0)
# Vendor streams (MARKET_DATA_PROVIDER=alpaca|finnhub|polygon): keys from the environment; the URLs
# point elsewhere only for a local fake (the tests) or a vendor's other endpoint.
ALPACA_API_KEY_ID = env.str("ALPACA_API_KEY_ID", default="")
ALPACA_API_SECRET_KEY = env.str("ALPACA_API_SECRET_KEY", default="")
ALPACA_FEED = env.str("ALPACA_FEED", default="iex")  # iex (free) or sip
ALPACA_STREAM_URL = env.str("ALPACA_STREAM_URL", default="wss://stream.data.alpaca.markets/v2")
ALPACA_DATA_URL = env.str("ALPACA_DATA_URL", default="https://data.alpaca.markets")
FINNHUB_API_KEY = env.str("FINNHUB_API_KEY", default="")
FINNHUB_STREAM_URL = env.str("FINNHUB_STREAM_URL", default="wss://ws.finnhub.io")
FINNHUB_API_URL = env.str("FINNHUB_API_URL", default="https://finnhub.io/api/v1")
POLYGON_API_KEY = env.str("POLYGON_API_KEY", default="")
POLYGON_STREAM_URL = env.str("POLYGON_STREAM_URL", default="wss://socket.polygon.io/stocks")
POLYGON_API_URL = env.str("POLYGON_API_URL", default="https://api.polygon.io")
# The relay provider reads quotes that another process publishes on this Redis channel (the bench).
RELAY_CHANNEL = env.str("RELAY_CHANNEL", default="td:relay:quotes")
# How long a stream lease lives without its process refreshing it (a killed process's streams
# stop counting after this).
STREAM_LEASE_SECONDS = env.float("STREAM_LEASE_SECONDS", default=30.0)
# STREAM_LEASE_URLS: the Redis servers holding stream leases (default REDIS_URL alone); each
# organisation's leases live on one of them, chosen by a hash of its schema (streaming.state.redis).
STREAM_LEASE_URLS = env.list("STREAM_LEASE_URLS", default=[REDIS_URL] if REDIS_URL else [])
# How long a widget viewer token lets a viewer connect (the embed script renews it before then).
WIDGET_TOKEN_SECONDS = env.int("WIDGET_TOKEN_SECONDS", default=300)
STREAM_SLOW_CONSUMER_SECONDS = env.float("STREAM_SLOW_CONSUMER_SECONDS", default=30.0)
# How long a web process reuses a connect check it made (session, membership, standing, plan) for
# the same session in the same organisation: a sign-out, password change, deactivation, removal or
# plan change reaches new connects within this time. 0: every connect reads the database.
STREAM_SESSION_CACHE_SECONDS = env.float("STREAM_SESSION_CACHE_SECONDS", default=2.0)
# The feed publishes an organisation's quotes at most this often (one message per window), and a web
# process writes what a message brings at once: so also the shortest time between two frames of a
# connection (streaming.feed, streaming.sender).
STREAM_FRAME_MS = env.float("STREAM_FRAME_MS", default=20.0)
# Seconds in a plan's "delay minute": 60 everywhere except tests that shorten time.
STREAM_DELAY_MINUTE_SECONDS = env.float("STREAM_DELAY_MINUTE_SECONDS", default=60.0)
STREAM_REDIS_PREFIX = env.str("STREAM_REDIS_PREFIX", default="td:")
# Without Redis there is one process: it runs the feed itself.
STREAM_FEED_IN_PROCESS = env.bool("STREAM_FEED_IN_PROCESS", default=not REDIS_URL)

# ---------------------------------------------------------------------------------------------
# Alerts (read through alerts/conf.py)
# ---------------------------------------------------------------------------------------------
# Webhooks to loopback, private, link-local or reserved addresses are refused unless this is on (or
# DEBUG is): a webhook URL must not let an organisation make our servers call into our own network.
ALERT_WEBHOOK_ALLOW_PRIVATE = env.bool("ALERT_WEBHOOK_ALLOW_PRIVATE", default=False)
# A failed delivery is tried again after BACKOFF seconds, doubling each time up to BACKOFF_MAX, for
# RETRY_HOURS after the alert fired (SPEC: 24 hours).
ALERT_WEBHOOK_BACKOFF_SECONDS = env.float("ALERT_WEBHOOK_BACKOFF_SECONDS", default=30.0)
ALERT_WEBHOOK_BACKOFF_MAX_SECONDS = env.float("ALERT_WEBHOOK_BACKOFF_MAX_SECONDS", default=3600.0)
ALERT_WEBHOOK_RETRY_HOURS = env.float("ALERT_WEBHOOK_RETRY_HOURS", default=24.0)
ALERT_WEBHOOK_TIMEOUT_SECONDS = env.float("ALERT_WEBHOOK_TIMEOUT_SECONDS", default=10.0)
