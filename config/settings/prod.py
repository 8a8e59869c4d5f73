"""Production: every secret comes from the environment and has no default."""

from .base import *  # noqa: F403
from .base import EMAIL_VERIFICATION_MODES, LOG_FORMATS, email_settings, env, env_choice, env_secret, logging_config

DEBUG = False
# One JSON object per line, with the request id, for a log pipeline (LOG_FORMAT=plain: text).
LOGGING = logging_config(env_choice("LOG_FORMAT", LOG_FORMATS, default="json"))
SECRET_KEY = env_secret(
    "SECRET_KEY",
    value_hint="a long random string, e.g. the output of: python -c 'import secrets; print(secrets.token_urlsafe(50))'",
)

# ---------------------------------------------------------------------------------------------
# Sign-up: each one creates a schema, so an address must be proven first; that needs a mail server
# ---------------------------------------------------------------------------------------------
ACCOUNT_EMAIL_VERIFICATION = env_choice("ACCOUNT_EMAIL_VERIFICATION", EMAIL_VERIFICATION_MODES, default="mandatory")
# No console fallback: verification and password-reset mails printed to a log reach nobody.
globals().update(
    email_settings(
        env_secret("EMAIL_URL", value_hint="your SMTP server, e.g. smtp+tls://user:password@smtp.example.com:587")
    )
)

# ---------------------------------------------------------------------------------------------
# HTTPS only
# ---------------------------------------------------------------------------------------------
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
# Load balancers probe over plain HTTP; a redirect would read as "unhealthy".
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$"]
# A year, the figure browsers' preload lists ask for. Organisations live on subdomains of
# BASE_DOMAIN, so they are covered too; preload only takes effect once the domain is submitted
# to hstspreload.org, and SECURE_HSTS_PRELOAD=false keeps the header from inviting that.
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=365 * 24 * 3600)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=True)
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=True)
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=True)
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=True)
SECURE_CONTENT_TYPE_NOSNIFF = True
STATIC_ROOT = env.path("STATIC_ROOT", default=str(BASE_DIR / "staticfiles"))  # noqa: F405
WHITENOISE_USE_FINDERS = False
# Hashed, compressed static files (far-future caching) once they are collected: the image built by
# docker/Dockerfile collects them and turns this on. Without a collectstatic run a hashed name
# cannot be computed and pages would fail, hence off by default.
if env.bool("STATIC_FILES_HASHED", default=False):
    STORAGES = {
        "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
        "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
    }

# Errors to Sentry (or a compatible service) when a DSN is set; no personal data is sent.
if sentry_dsn := env.str("SENTRY_DSN", default=""):
    import sentry_sdk

    sentry_sdk.init(
        dsn=sentry_dsn,
        environment=env.str("SENTRY_ENVIRONMENT", default="production"),
        traces_sample_rate=env.float("SENTRY_TRACES_SAMPLE_RATE", default=0.0),
        send_default_pii=False,
    )
