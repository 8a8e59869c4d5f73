"""The test suite: `make test`."""

from .base import *  # noqa: F403
from .base import CHANNEL_LAYERS, env

DEBUG = False
SECRET_KEY = env.str("SECRET_KEY", default="test-only-insecure-key-0123456789-abcdefghijklmnop")
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
# Per-process cache, emptied before each test (allauth keeps its rate limits there).
CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# Keep the suite's Redis keys and pub/sub channels apart from a `make run` on the same Redis.
CHANNEL_LAYERS["default"].setdefault("CONFIG", {})["prefix"] = "tdtest"
STREAM_REDIS_PREFIX = "tdtest:"
