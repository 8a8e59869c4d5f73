"""Production: every secret comes from the environment and has no default."""

from .base import *  # noqa: F403
from .base import env, env_secret

DEBUG = False
SECRET_KEY = env_secret("SECRET_KEY")
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=True)
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=True)
SECURE_CONTENT_TYPE_NOSNIFF = True
STATIC_ROOT = env.path("STATIC_ROOT", default=str(BASE_DIR / "staticfiles"))  # noqa: F405
WHITENOISE_USE_FINDERS = False
