"""Stripe stand-ins on loopback: localstripe (a stateful fake Stripe) and a Checkout/Portal answerer."""

import json
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode

import pytest
from pytest_django.fixtures import Settings

from tests.live import free_port, stop

SECRET_KEY = "sk_test_tickerdeck_localstripe"  # localstripe accepts any key starting with sk_
WEBHOOK_SECRET = "whsec_tickerdeck_test"
SESSION_KINDS = {"/v1/checkout/sessions": "checkout.session", "/v1/billing_portal/sessions": "billing_portal.session",
                 "/v1/customers": "customer"}  # fmt: skip


@dataclass
class LocalStripe:
    """A running localstripe process."""

    url: str

    def post(self, path: str, fields: dict[str, str], method: str = "POST") -> dict[str, Any]:
        """A form-encoded request to Stripe's API, as a Stripe user (or Stripe's dashboard) would send."""
        data = urlencode(fields).encode() if fields else None
        headers = {"Authorization": f"Bearer {SECRET_KEY}"}
        request = urllib.request.Request(self.url + path, data=data, method=method, headers=headers)  # noqa: S310
        with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310 (loopback)
            body = response.read()
        return dict(json.loads(body)) if body else {}

    def send_webhooks_to(self, url: str, name: str = "tickerdeck") -> None:
        """localstripe signs and POSTs every event it makes to `url` (one second after the event)."""
        self.post(f"/_config/webhooks/{name}", {"url": url, "secret": WEBHOOK_SECRET})


@pytest.fixture(scope="session")
def localstripe() -> Iterator[LocalStripe]:
    port = free_port()
    process = subprocess.Popen(
        [str(Path(sys.executable).parent / "localstripe"), "--port", str(port), "--from-scratch"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    try:
        while True:
            try:
                with urllib.request.urlopen(url + "/js.stripe.com/v3/", timeout=1):  # noqa: S310 (loopback)
                    break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("localstripe did not start") from None
                time.sleep(0.1)
        yield LocalStripe(url)
    finally:
        stop(process)


@pytest.fixture
def stripe_settings(settings: Settings, localstripe: LocalStripe) -> LocalStripe:
    """Billing configured against localstripe."""
    settings.STRIPE_SECRET_KEY = SECRET_KEY
    settings.STRIPE_WEBHOOK_SECRET = WEBHOOK_SECRET
    settings.STRIPE_API_BASE = localstripe.url
    return localstripe


@dataclass
class SessionAnswerer:
    """A loopback server that answers Checkout and Portal sessions (and customers) as Stripe's API does."""

    url: str
    requests: list[tuple[str, dict[str, str]]] = field(default_factory=list)


@pytest.fixture
def stripe_sessions(settings: Settings) -> Iterator[SessionAnswerer]:
    """Stripe's /v1/checkout/sessions, /v1/billing_portal/sessions and /v1/customers: records the form, answers."""
    answerer = SessionAnswerer(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            form = dict(parse_qsl(self.rfile.read(length).decode(), keep_blank_values=True))
            answerer.requests.append((self.path, form))
            kind = SESSION_KINDS
            if self.path not in kind or not self.headers.get("Authorization", "").startswith("Bearer sk_"):
                self._answer(404, {"error": {"type": "invalid_request_error", "message": "Unrecognized request URL"}})
                return
            if kind[self.path] == "customer":
                self._answer(200, {"id": f"cus_test_{len(answerer.requests)}", "object": "customer", **form})
                return
            session_id = f"cs_test_{len(answerer.requests)}"
            page = (
                f"{answerer.url}/pay/{session_id}"
                if kind[self.path] == "checkout.session"
                else f"{answerer.url}/portal"
            )
            self._answer(200, {"id": session_id, "object": kind[self.path], "url": page})

        def do_GET(self) -> None:
            body = b"<!doctype html><title>Fake Stripe</title><h1>Stripe Checkout (test)</h1>"
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _answer(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    answerer.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    settings.STRIPE_SECRET_KEY = SECRET_KEY
    settings.STRIPE_WEBHOOK_SECRET = WEBHOOK_SECRET
    settings.STRIPE_API_BASE = answerer.url
    try:
        yield answerer
    finally:
        server.shutdown()
        server.server_close()
