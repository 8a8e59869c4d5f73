"""The check of a lent database connection works whatever its descriptor's number.

A web process holding a thousand websockets gives the database connections its pool opens later
descriptors past 1024, which select() refuses: the soak (bench.soak, 2,000 connections) saw every page
and widget token request of such a process answer 500 with "filedescriptor out of range in select()".
"""

import os
import socket
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

from django.db import connection
from django.test import Client

from tenants.middleware import readable_now

SELECT_LIMIT = 1024  # FD_SETSIZE


@contextmanager
def low_descriptors_taken() -> Iterator[None]:
    """Every descriptor up to past select()'s limit taken, so the next socket gets a higher one."""
    with ExitStack() as stack:
        while True:
            fd = os.open(os.devnull, os.O_RDONLY)
            stack.callback(os.close, fd)
            if fd > SELECT_LIMIT:
                break
        yield


def test_a_socket_past_descriptor_1024_is_readable_only_once_its_peer_wrote_or_closed() -> None:
    with low_descriptors_taken():
        ours, theirs = socket.socketpair()
    with ours, theirs:
        assert ours.fileno() > SELECT_LIMIT
        assert readable_now(ours.fileno()) is False
        theirs.close()  # as the database server closes a connection it terminated
        assert readable_now(ours.fileno()) is True


def test_a_page_is_served_when_the_database_connection_is_past_descriptor_1024(
    django_db_setup: None, django_db_blocker: Any, client: Client
) -> None:
    # The test database without a test transaction (the connection is replaced) and without
    # pytest-django's transactional mode, whose flush at the end would empty the seeded plans and symbol directory for
    # every later test of this worker. The page only reads.
    with django_db_blocker.unblock():
        connection.close()
        with low_descriptors_taken():
            connection.ensure_connection()
        raw = connection.connection
        assert raw is not None
        assert raw.fileno() > SELECT_LIMIT

        response = client.get("/", HTTP_HOST="localhost")

        assert response.status_code == 200
        assert connection.connection is raw  # the healthy connection was kept, not replaced
        connection.close()
