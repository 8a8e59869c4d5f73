"""Operations: every request has an id (X-Request-ID) that its log lines carry; production logs are JSON
lines; errors go to Sentry when SENTRY_DSN is set (here a local stand-in that takes Sentry's envelopes)."""

import gzip
import json
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.test import Client

from tests.config.support import PRODUCTION_ENV, run_python

LOG_A_LINE = (
    "import django, logging; django.setup(); from django_guid import set_guid; "
    "logging.getLogger('tickerdeck.example').warning('outside a request'); "
    "set_guid('5d1f6a0c8e2b4c7d9a3e1f2b3c4d5e6f'); logging.getLogger('tickerdeck.example').warning('in one')"
)


@pytest.mark.django_db
def test_a_request_keeps_the_proxys_id_and_gets_one_otherwise(client: Client) -> None:
    given = uuid.uuid4().hex
    kept = client.get("/", headers={"X-Request-ID": given})
    forged = client.get("/", headers={"X-Request-ID": "<script>not-an-id</script>"})
    none = client.get("/")

    assert kept["X-Request-ID"] == given
    for response in (forged, none):
        assert uuid.UUID(response["X-Request-ID"]).hex == response["X-Request-ID"], "a new id, never what came"


def test_production_logs_one_json_object_per_line_with_the_request_id() -> None:
    result = run_python(["-c", LOG_A_LINE], DJANGO_SETTINGS_MODULE="config.settings.prod", **PRODUCTION_ENV)

    assert result.returncode == 0, result.stderr
    outside, inside = (json.loads(line) for line in result.stderr.splitlines()[-2:])
    assert inside["message"] == "in one"
    assert (inside["level"], inside["logger"]) == ("WARNING", "tickerdeck.example")
    assert inside["request_id"] == "5d1f6a0c8e2b4c7d9a3e1f2b3c4d5e6f"
    assert outside["request_id"] == "-"
    assert "time" in inside


def test_log_format_plain_is_text_and_anything_else_stops_the_process() -> None:
    plain = run_python(["-c", LOG_A_LINE], DJANGO_SETTINGS_MODULE="config.settings.prod", LOG_FORMAT="plain",
                       **PRODUCTION_ENV)  # fmt: skip
    wrong = run_python(["-c", LOG_A_LINE], DJANGO_SETTINGS_MODULE="config.settings.prod", LOG_FORMAT="xml",
                       **PRODUCTION_ENV)  # fmt: skip

    assert plain.returncode == 0, plain.stderr
    assert plain.stderr.splitlines()[-1].endswith(
        "WARNING tickerdeck.example [5d1f6a0c8e2b4c7d9a3e1f2b3c4d5e6f] in one"
    )
    assert wrong.returncode != 0
    assert "LOG_FORMAT='xml' is not allowed" in wrong.stderr


class Envelopes(BaseHTTPRequestHandler):
    """Sentry's ingestion endpoint, as far as the SDK needs it: takes envelopes, answers 200."""

    received: list[bytes] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        Envelopes.received.append(gzip.decompress(body) if self.headers.get("Content-Encoding") == "gzip" else body)
        self.send_response(200)
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def sentry() -> Iterator[str]:
    Envelopes.received = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), Envelopes)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://public-key@127.0.0.1:{server.server_address[1]}/42"
    server.shutdown()


def test_errors_reach_sentry_when_a_dsn_is_set_and_nothing_is_sent_without(sentry: str) -> None:
    report = (
        "import django; django.setup(); import sentry_sdk; "
        "print(sentry_sdk.is_initialized()); sentry_sdk.capture_message('feed lost its provider'); sentry_sdk.flush(5)"
    )
    with_dsn = run_python(["-c", report], DJANGO_SETTINGS_MODULE="config.settings.prod", SENTRY_DSN=sentry,
                          **PRODUCTION_ENV)  # fmt: skip
    without = run_python(["-c", report], DJANGO_SETTINGS_MODULE="config.settings.prod", **PRODUCTION_ENV)

    assert with_dsn.returncode == 0, with_dsn.stderr
    assert with_dsn.stdout.split()[0] == "True"
    assert any(b"feed lost its provider" in envelope for envelope in Envelopes.received)
    assert without.stdout.split()[0] == "False"
    assert len(Envelopes.received) == 1
