"""Run Python or manage.py in a child process with a chosen environment (settings are read at start-up)."""

import json
import os
import subprocess
import sys
from collections.abc import Sequence
from typing import Any

from tests.live import ROOT

# A key as an operator would generate it (python -c "import secrets; print(secrets.token_urlsafe(50))").
REAL_SECRET_KEY = "k3Jq9v0mZt2L8xQwRr5nYb7Hc1Fd4Gs6Pa0Ue9Io2Wl3Ty5Vx7Nz1Mk4Bj8Ch6Dg"
# What production needs to start at all (config/settings/prod.py: no defaults for either).
PRODUCTION_ENV = {"SECRET_KEY": REAL_SECRET_KEY, "EMAIL_URL": "smtp+tls://mailer:secret@smtp.example.com:587"}
# Variables a developer's or CI's shell may export that would change what these tests read.
CLEARED = {
    "DJANGO_SETTINGS_MODULE",
    "SECRET_KEY",
    "ALLOWED_HOSTS",
    "BASE_DOMAIN",
    "DEBUG",
    "EMAIL_URL",
    "ACCOUNT_EMAIL_VERIFICATION",
    "TRUSTED_PROXY_COUNT",
    "TRUSTED_CLIENT_IP_HEADER",
    "TRUSTED_PROXY_SSL_HEADER",
}


def run_python(args: Sequence[str], **env_changes: str) -> subprocess.CompletedProcess[str]:
    """`python <args>` from the project root, without DJANGO_SETTINGS_MODULE or SECRET_KEY unless given."""
    env = {key: value for key, value in os.environ.items() if key not in CLEARED}
    env.update(env_changes)
    return subprocess.run(
        [sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False
    )


def settings_of(module: str, names: Sequence[str], **env_changes: str) -> dict[str, Any]:
    """The named settings of `module` as a process started with this environment sees them."""
    code = (
        "import json, django; django.setup(); from django.conf import settings; "
        f"print(json.dumps({{name: getattr(settings, name, None) for name in {list(names)!r}}}, default=str))"
    )
    result = run_python(["-c", code], DJANGO_SETTINGS_MODULE=module, **env_changes)
    assert result.returncode == 0, result.stderr
    values: dict[str, Any] = json.loads(result.stdout.splitlines()[-1])
    return values


def production_settings(names: Sequence[str], **env_changes: str) -> dict[str, Any]:
    return settings_of("config.settings.prod", names, **{**PRODUCTION_ENV, **env_changes})
