"""Allowed origins are stored exactly as browsers send them in the Origin header."""

import pytest
from django.core.exceptions import ValidationError

from widgets.origins import MAX_ORIGINS, origin_normalise, origins_normalise, request_origin


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("https://www.example.com", "https://www.example.com"),
        ("  HTTPS://WWW.Example.COM/  ", "https://www.example.com"),
        ("https://example.com:443", "https://example.com"),
        ("http://example.com:80", "http://example.com"),
        ("https://example.com:8443", "https://example.com:8443"),
        ("http://127.0.0.1:8123", "http://127.0.0.1:8123"),
        ("https://[::1]:9000", "https://[::1]:9000"),
        ("https://bücher.example", "https://xn--bcher-kva.example"),
    ],
)
def test_an_origin_is_normalised_as_browsers_write_it(raw: str, expected: str) -> None:
    assert origin_normalise(raw) == expected


@pytest.mark.parametrize(
    ("raw", "says"),
    [
        ("", "empty"),
        ("www.example.com", "must start with https://"),
        ("ftp://example.com", "must start with https://"),
        ("javascript:alert(1)", "must start with https://"),
        ("https://example.com/page", "without a path"),
        ("https://example.com?x=1", "without a path"),
        ("https://example.com#top", "without a path"),
        ("https://user:pw@example.com", "user name or password"),
        ("https://*.example.com", "wildcards"),
        ("https://example.com:99999", "not a valid origin"),
        ("https://", "no host name"),
        ("https://" + "a" * 300 + ".com", "longer than"),
    ],
)
def test_anything_but_scheme_host_port_is_refused_with_a_reason(raw: str, says: str) -> None:
    with pytest.raises(ValidationError) as refused:
        origin_normalise(raw)
    assert says in " ".join(refused.value.messages)


def test_a_list_is_deduplicated_in_order_and_bounded() -> None:
    assert origins_normalise(["https://b.example", "https://A.example", "https://b.example/"]) == [
        "https://b.example",
        "https://a.example",
    ]
    with pytest.raises(ValidationError, match="at least one"):
        origins_normalise([])
    with pytest.raises(ValidationError, match=f"at most {MAX_ORIGINS}"):
        origins_normalise([f"https://s{i}.example" for i in range(MAX_ORIGINS + 1)])


def test_every_bad_entry_is_reported_at_once() -> None:
    with pytest.raises(ValidationError) as refused:
        origins_normalise(["https://ok.example", "nope", "https://x.example/path"])
    assert len(refused.value.messages) == 2


@pytest.mark.parametrize("header", ["", "null", "not an origin", "https://example.com/path"])
def test_an_unusable_origin_header_is_none(header: str) -> None:
    assert request_origin(header) is None
