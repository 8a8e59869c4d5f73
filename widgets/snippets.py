"""The embed snippet: one element and one script tag, pasted into a page of an allowed site."""

from django.utils.html import escape


def embed_snippet(*, public_id: str, organisation_base_url: str) -> str:
    """The snippet as text (templates escape it to show it); `organisation_base_url` is scheme://host[:port]."""
    public_id, base = escape(public_id), escape(organisation_base_url.rstrip("/"))
    # An f-string makes plain text of escape()'s safe strings: shown on a page, it must be escaped again.
    return (
        f'<div data-tickerdeck-widget="{public_id}"></div>\n'
        f'<script src="{base}/widgets/{public_id}/embed.js" async></script>'
    )
