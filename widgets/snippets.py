"""The embed snippet: one element and one script tag, pasted into a page of an allowed site."""

from django.utils.html import format_html


def embed_snippet(*, public_id: str, organisation_base_url: str) -> str:
    """`organisation_base_url` is the organisation's scheme://host[:port], where the script and token live."""
    return str(
        format_html(
            '<div data-tickerdeck-widget="{}"></div>\n<script src="{}/widgets/{}/embed.js" async></script>',
            public_id,
            organisation_base_url.rstrip("/"),
            public_id,
        )
    )
