"""Which settings a process runs with when nobody says, and what production refuses to start without."""

import pytest

from tests.config.support import PRODUCTION_ENV, run_python

SHOW_SETTINGS = (
    "from django.conf import settings; print(settings.SETTINGS_MODULE, settings.DEBUG, settings.SECRET_KEY_FALLBACKS)"
)
PRINT_SETTINGS = "import django; django.setup(); " + SHOW_SETTINGS


def test_manage_py_without_a_settings_module_runs_production_and_refuses_without_secret_key() -> None:
    result = run_python(["manage.py", "check"])

    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert "SECRET_KEY" in result.stderr


@pytest.mark.parametrize("value", ["", "   ", "\t"], ids=["empty", "spaces", "tab"])
def test_production_refuses_an_empty_or_blank_secret_key(value: str) -> None:
    result = run_python(["manage.py", "check"], SECRET_KEY=value)

    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert "Set the SECRET_KEY environment variable" in result.stderr  # says what to do


def test_the_asgi_application_without_a_settings_module_runs_production() -> None:
    refused = run_python(["-c", "import config.asgi"])
    started = run_python(["-c", "import config.asgi; " + PRINT_SETTINGS], **PRODUCTION_ENV)

    assert refused.returncode != 0
    assert "SECRET_KEY" in refused.stderr
    assert started.returncode == 0, started.stderr
    assert started.stdout.split()[:2] == ["config.settings.prod", "False"]


def test_manage_py_with_a_real_secret_key_runs_production_settings() -> None:
    result = run_python(["manage.py", "shell", "-v", "0", "-c", SHOW_SETTINGS], **PRODUCTION_ENV)

    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[:2] == ["config.settings.prod", "False"]


def test_secret_key_fallbacks_come_from_the_environment() -> None:
    result = run_python(
        ["-c", PRINT_SETTINGS],
        DJANGO_SETTINGS_MODULE="config.settings.prod",
        SECRET_KEY_FALLBACKS="old-key-one,old-key-two",
        **PRODUCTION_ENV,
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith("['old-key-one', 'old-key-two']")


def test_development_settings_are_chosen_by_name_and_need_no_secret_key() -> None:
    result = run_python(["-c", PRINT_SETTINGS], DJANGO_SETTINGS_MODULE="config.settings.dev")

    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[:2] == ["config.settings.dev", "True"]
