"""`manage.py create_widget` prints a public id and a snippet whose script and token work."""

import json
import re
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from tenants.models import Organisation
from tests.conftest import host_client

pytestmark = pytest.mark.django_db


def test_create_widget_prints_a_working_snippet(pro_org: Organisation) -> None:
    out = StringIO()
    call_command(
        "create_widget", "--org", "initech", "--name", "Ticker", "--symbols", "AAPL,msft",
        "--origin", "https://www.example.com", "--origin", "https://shop.example.com", "--kind", "ticker_tape",
        "--base-url", "http://initech.localhost", stdout=out,
    )  # fmt: skip
    printed = out.getvalue()
    public_id = re.search(r"Public id: (w_[A-Za-z0-9_-]{16})", printed)
    assert public_id is not None
    script = re.search(
        r'<script src="http://initech\.localhost(/widgets/(w_[^/]+)/embed\.js)" async></script>', printed
    )
    assert script is not None
    assert script.group(2) == public_id.group(1)
    assert f'<div data-tickerdeck-widget="{public_id.group(1)}"></div>' in printed

    client = host_client("initech.localhost")
    assert client.get(script.group(1)).status_code == 200
    token = client.post(f"/widgets/{public_id.group(1)}/token/", HTTP_ORIGIN="https://shop.example.com")
    assert token.status_code == 200
    assert json.loads(token.content)["token"]


def test_create_widget_says_why_it_refuses(free_org: Organisation) -> None:
    with pytest.raises(CommandError, match="the Free plan allows no widgets"):
        call_command(
            "create_widget", "--org", "hooli", "--name", "T", "--symbols", "AAPL", "--origin", "https://a.example"
        )
    with pytest.raises(CommandError, match="No organisation"):
        call_command(
            "create_widget", "--org", "nobody", "--name", "T", "--symbols", "AAPL", "--origin", "https://a.example"
        )
