"""Django settings of the orchestrator's own set-up work (organisations, owners, sessions).

Production's settings, so rows and sessions are made exactly as the servers under test read them
(same SECRET_KEY and prefixes through the environment), with one change: the bench's owners never
log in, so their passwords are hashed with a fast hasher instead of PBKDF2's million rounds (half a
second per organisation). Session checks do not hash: they compare an HMAC of the stored hash.
Its log stays at warnings: the bench's terminal is for the table.
"""

from config.settings.prod import *  # noqa: F403
from config.settings.prod import LOGGING

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
LOGGING = {**LOGGING, "root": {"handlers": ["console"], "level": "WARNING"}}
