"""Django settings of the naive design: Channels, channels-redis' core layer at its defaults, no database.

NAIVE_REDIS_URL=redis://… NAIVE_CHANNEL_PREFIX=… DJANGO_SETTINGS_MODULE=bench.systems.naive.settings
"""

import os

SECRET_KEY = "bench-naive-not-secret"  # noqa: S105 (nothing is signed: no sessions, no database)
DEBUG = False
ALLOWED_HOSTS = ["*"]
INSTALLED_APPS = ["channels"]
DATABASES: dict[str, dict[str, str]] = {}
USE_TZ = True
ASGI_APPLICATION = "bench.systems.naive.asgi.application"
# The textbook set-up: the list-based core layer, capacity 100 per channel (its default), which
# drops messages silently once a consumer's channel is full.
CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {"hosts": [os.environ["NAIVE_REDIS_URL"]], "prefix": os.environ["NAIVE_CHANNEL_PREFIX"]},
    }
}
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,  # bench.ticks says when the bridge has subscribed
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": "WARNING"},
}
