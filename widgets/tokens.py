"""Viewer tokens: signed, short-lived, bound to one widget of one organisation and the Origin that asked."""

from dataclasses import dataclass

from django.conf import settings
from django.core import signing

SALT = "tickerdeck.widgets.viewer-token"
MAX_TOKEN_LENGTH = 512


@dataclass(frozen=True)
class TokenProblem:
    """Why a token does not let a viewer in; `origin` problems are 4403, the rest 4401."""

    origin: bool
    message: str


def token_seconds() -> int:
    return int(settings.WIDGET_TOKEN_SECONDS)


def widget_token_issue(*, schema_name: str, public_id: str, origin: str) -> str:
    return signing.dumps({"s": schema_name, "w": public_id, "o": origin}, salt=SALT)


def widget_token_problem(token: str, *, schema_name: str, public_id: str, origin: str | None) -> TokenProblem | None:
    """None when the token is ours, unexpired, for this widget of this organisation and this Origin."""
    # Tokens are ASCII (base64 and ":"); anything else never verifies, and a lone surrogate made the
    # signature check raise UnicodeEncodeError.
    if not token or len(token) > MAX_TOKEN_LENGTH or not token.isascii():
        return TokenProblem(False, "The widget token is missing or malformed; fetch a new one.")
    try:
        claims = signing.loads(token, salt=SALT, max_age=token_seconds())
    except signing.SignatureExpired:
        return TokenProblem(False, "The widget token has expired; fetch a new one.")
    except signing.BadSignature:
        return TokenProblem(False, "The widget token is not valid.")
    if not isinstance(claims, dict) or claims.get("s") != schema_name or claims.get("w") != public_id:
        return TokenProblem(False, "The widget token belongs to another widget.")
    if origin is None or claims.get("o") != origin:
        return TokenProblem(True, "The widget token was issued to another web site.")
    return None
