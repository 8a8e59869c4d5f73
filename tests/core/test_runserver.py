"""`manage.py runserver` says what to run instead of serving a site without live quotes."""

from tests.config.support import run_python


def test_runserver_refuses_and_names_make_run() -> None:
    result = run_python(["manage.py", "runserver", "8000"], DJANGO_SETTINGS_MODULE="config.settings.dev")

    assert result.returncode == 1
    assert "runserver serves no websockets" in result.stderr
    assert "`make run`" in result.stderr
    assert "python -m config.server" in result.stderr
