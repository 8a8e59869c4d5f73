"""The test suite: `make test`."""

import uuid

from .base import *  # noqa: F403
from .base import CHANNEL_LAYERS, DATABASES, env, env_rate_limit

DEBUG = False
SECRET_KEY = env.str("SECRET_KEY", default="test-only-insecure-key-0123456789-abcdefghijklmnop")
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
# Per-process cache, emptied before each test (allauth keeps its rate limits there).
CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# Each test run gets its own Redis keys and channel names, apart from a `make run` or another run
# on the same Redis; the servers a run starts inherit them through the environment (tests/live.py).
TEST_REDIS_NAMESPACE = env.str("TEST_REDIS_NAMESPACE", default=f"tdtest{uuid.uuid4().hex[:8]}")
CHANNEL_LAYERS["default"].setdefault("CONFIG", {})["prefix"] = TEST_REDIS_NAMESPACE
STREAM_REDIS_PREFIX = TEST_REDIS_NAMESPACE + ":"

# The pytest process switches to the test database after settings load, and a pool opened before
# the switch would keep connecting to the old name: no pool there. The servers the tests start
# (tests/live.py) get the test database's name at once, and use the pool like production.
if not env.bool("TEST_SERVER_PROCESS", default=False):
    DATABASES["default"]["OPTIONS"].pop("pool", None)

# Most tests run no feed process: the readiness probe leaves the feed out unless a test turns it on.
FEED_STALE_SECONDS = env.float("FEED_STALE_SECONDS", default=0.0)

# Many tests open dozens to thousands of websockets from one address (127.0.0.1, or none at all with
# channels' WebsocketCommunicator) and ask for many widget tokens: the per-address limits stay on
# (every connect still goes through them) but out of their way. The limits' own tests set them low.
RATE_LIMIT_WS_CONNECTS = env_rate_limit("RATE_LIMIT_WS_CONNECTS", default="100000 per 10 seconds")
RATE_LIMIT_WIDGET_TOKENS = env_rate_limit("RATE_LIMIT_WIDGET_TOKENS", default="100000 per minute")
