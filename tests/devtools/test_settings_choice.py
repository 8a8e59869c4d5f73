"""`make run` and `make test` name their settings module themselves (the default is production's)."""

import pytest

from devtools.__main__ import _environment
from devtools.servers import Services

SERVICES = Services("postgres://root@127.0.0.1:5432/x", "test", "", "test")


@pytest.mark.parametrize("settings_module", ["config.settings.dev", "config.settings.test"])
def test_devtools_names_its_settings_module_even_when_the_shell_exports_another(
    monkeypatch: pytest.MonkeyPatch, settings_module: str
) -> None:
    monkeypatch.setenv("DJANGO_SETTINGS_MODULE", "config.settings.prod")

    env = _environment(SERVICES, settings_module)

    assert env["DJANGO_SETTINGS_MODULE"] == settings_module
