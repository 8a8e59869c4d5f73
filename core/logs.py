"""Log records carry the id of the request they were written for (django-guid's, from X-Request-ID)."""

import logging

from django_guid.log_filters import CorrelationId


class RequestId(CorrelationId):
    """`request_id` on every record: the request's id, or "-" outside a request (feed, start-up)."""

    def __init__(self) -> None:
        super().__init__(correlation_id_field="request_id")

    def filter(self, record: logging.LogRecord) -> bool:
        super().filter(record)
        if record.request_id is None:  # type: ignore[attr-defined]
            record.request_id = "-"
        return True
