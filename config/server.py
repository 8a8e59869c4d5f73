"""`python -m config.server`: uvicorn serving config.asgi, with bounded buffers per connection.

Linux lets a socket's send buffer grow to ~4 MB, and asyncio buffers 64 KB more before it tells
the application to wait. A client that stops reading would then swallow minutes of quotes before
the server noticed: no conflation (the slow reader gets an old backlog) and no 4408. Bounding both
buffers makes `send` wait within a few frames, so the connection's conflating buffer takes over.
"""

import argparse
import asyncio
import gc
import logging
import os
import resource
import socket
import sys
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import uvicorn
import uvloop
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.protocol import State

from config.slim import Flag, ReceiveQueue
from config.workers import default_workers, die_with_parent, supervise
from streaming.quotes import WRITE_FRAME

SEND_BUFFER_BYTES = 8 * 1024  # the kernel doubles it
WRITE_BUFFER_BYTES = 8 * 1024
MAX_FRAME_BYTES = 64 * 1024


class ConnectionLog:
    """The logger of one websocket's protocol objects, less their lines at INFO.

    uvicorn logs '… "WebSocket /ws/…" [accepted]' (or 403, or the code) and websockets "connection
    open" and "connection closed", all at INFO on uvicorn's error logger even with the access log off:
    three lines a connection, noise (and ~4 % of the CPU of a connect storm) at hundreds of connects a
    second. The metrics count connects and refusals instead. Every other level goes to the logger.
    """

    def __init__(self, logger: logging.Logger) -> None:
        self._logger = logger

    def info(self, msg: object, *args: object, **kwargs: Any) -> None:
        return

    def __getattr__(self, name: str) -> Any:
        return getattr(self._logger, name)


UVICORN_LOG = logging.getLogger("uvicorn.error")
CONNECTION_LOG = ConnectionLog(UVICORN_LOG)


class BoundedWebSocketProtocol(WebSocketsSansIOProtocol):
    """uvicorn's websocket protocol with a small transport write buffer, without per-connection INFO lines."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.logger = CONNECTION_LOG  # type: ignore[assignment]  # a Logger in all it is asked for
        self.conn.logger = CONNECTION_LOG  # type: ignore[assignment]
        # uvicorn's asyncio.Queue and asyncio.Event: five empty deques, 3.7 KB a connection (config.slim).
        self.queue = ReceiveQueue()  # type: ignore[assignment]
        self.writable = Flag()  # type: ignore[assignment]
        self.writable.set()

    def handle_connect(self, event: Any) -> None:
        super().handle_connect(event)
        scope = getattr(self, "scope", None)  # none when the handshake was refused
        if scope is not None:
            scope["extensions"][WRITE_FRAME] = self.write_frame

    def connection_lost(self, exc: Exception | None) -> None:
        # The scope holds this protocol (its write_frame): a cycle that only a full garbage collection
        # would free, long after the connection, since gc_tune makes those rare.
        scope = getattr(self, "scope", None)
        if scope is not None:
            scope["extensions"].pop(WRITE_FRAME, None)
        super().connection_lost(exc)

    def write_frame(self, frame: bytes) -> bool:
        """Write a whole server frame made elsewhere (streaming.quotes.websocket_text_frame) now, if the
        connection is open and its socket writable; False, writing nothing, otherwise (the caller then
        sends through ASGI, which waits). The websocket protocol keeps no state per data frame sent,
        so a frame written here is as if `send_text` had made it."""
        if (
            self.handshake_complete
            and not self.close_sent
            and not self.disconnected
            and self.writable.is_set()
            and self.conn.state is State.OPEN
            and not self.transport.is_closing()
        ):
            self.transport.write(frame)
            return True
        return False

    def start_keepalive(self) -> None:
        # Called once, right after the handshake's answer is written: uvicorn keeps the handshake's
        # request and response (their headers, ~2.4 KB) for the connection's life, and never reads them
        # again. A websocket left open all day should cost no more than it must.
        self.request = self.response = None  # type: ignore[assignment]
        self.handshake_parser_drop()
        super().start_keepalive()

    def handshake_parser_drop(self) -> None:
        """websockets parses a connection's bytes with one generator, whose frame keeps the handshake's
        request (all its headers, ~2.5 KB) in a local variable for the connection's life. Once the
        handshake is answered and no byte waits in its buffer (it is then between frames, having taken
        nothing), a fresh generator takes over: the same frame parser, without the request."""
        conn = self.conn
        if conn.state is State.OPEN and not conn.reader.buffer and not conn.reader.eof:
            conn.parser.close()
            conn.parser = conn.parse()
            next(conn.parser)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        if isinstance(transport, asyncio.WriteTransport):
            transport.set_write_buffer_limits(high=WRITE_BUFFER_BYTES)

    def send_receive_event_to_app(self) -> None:
        # uvicorn closes a text message that is not UTF-8 with 1007, as it should, but logs it at
        # ERROR with a traceback first: any client could fill the error log (the fuzzing found it).
        # The same close here, logged as the client's mistake it is.
        if self.curr_msg_data_type == "text" and not self.close_sent and not _utf8(self.frames):
            self.frames = []
            UVICORN_LOG.info("closed a websocket that sent text that is not UTF-8 (1007)")
            self.conn.send_close(1007)
            self.handle_parser_exception()
            return
        super().send_receive_event_to_app()


def _utf8(parts: Sequence[bytes]) -> bool:
    """Whether a message's frames, joined (a split may fall inside a character), are UTF-8."""
    try:
        b"".join(parts).decode()
    except UnicodeDecodeError:
        return False
    return True


def listening_socket(host: str, port: int, *, reuse_port: bool = False) -> socket.socket:
    """A listening socket whose accepted connections inherit a small kernel send buffer.

    `reuse_port`: one of several workers' sockets on the same address (config.workers)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SEND_BUFFER_BYTES)
    sock.bind((host, port))
    sock.listen(4096)
    sock.set_inheritable(True)
    return sock


def open_files_raise() -> None:
    """The soft limit on open files raised to the hard one: each websocket is a file, and a soft limit
    of 1,024 (common in containers) would refuse connections long before memory or CPU run out."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def gc_tune() -> None:
    """Fewer full garbage collections: they stop the event loop for tens of milliseconds.

    Everything loaded at start-up (Django, the URLconfs, the app) is moved out of the collector's
    sight with gc.freeze(), and the oldest generation is collected ten times less often. Streaming
    allocates many short-lived objects (frames, futures), which the young generations still reclaim.
    """
    import config.asgi  # noqa: F401  (import the application now, so that freeze() covers it)

    gc.collect()
    gc.freeze()
    young, middle, _ = gc.get_threshold()
    gc.set_threshold(young, middle, 100)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m config.server")
    parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
    parser.add_argument("--log-level", default=os.environ.get("LOG_LEVEL", "info").lower())
    parser.add_argument("--threads", type=int, default=int(os.environ.get("WEB_THREADS", "12")),
                        help="threads for database calls (keep DATABASE_POOL_MAX at least as large)")  # fmt: skip
    parser.add_argument("--workers", type=int, default=int(os.environ.get("WEB_WORKERS") or default_workers()),
                        help="web processes on the port, one per core by default (config.workers)")  # fmt: skip
    parser.add_argument("--worker-of", type=int, help=argparse.SUPPRESS)  # the supervisor's pid, in a worker
    parser.add_argument("--worker-index", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.workers < 1:
        parser.error("--workers must be at least 1")
    if args.workers > 1 and args.worker_of is None:
        logging.basicConfig(level=args.log_level.upper(), format="%(message)s")
        sys.exit(supervise(args.host, args.port, args.workers, worker_args(args)))
    if args.worker_of is not None:
        die_with_parent(args.worker_of)
    config = uvicorn.Config(
        "config.asgi:application",
        ws=BoundedWebSocketProtocol,
        ws_per_message_deflate=False,
        ws_max_size=MAX_FRAME_BYTES,
        lifespan="off",
        access_log=False,
        log_level=args.log_level,
        # X-Forwarded-For/-Proto are believed only from the proxies the operator names; uvicorn's own
        # default would trust any loopback peer.
        proxy_headers=bool(os.environ.get("FORWARDED_ALLOW_IPS")),
        forwarded_allow_ips=os.environ.get("FORWARDED_ALLOW_IPS") or None,
    )
    open_files_raise()
    gc_tune()
    sockets = [listening_socket(args.host, args.port, reuse_port=args.worker_of is not None)]
    if args.worker_of is not None and (ports_from := os.environ.get("WEB_WORKER_PORTS_FROM")):
        sockets.append(listening_socket(args.host, int(ports_from) + args.worker_index))
    server = uvicorn.Server(config)
    uvloop.run(serve(server, sockets, threads=args.threads))


def worker_args(args: argparse.Namespace) -> list[str]:
    """A worker's command-line arguments: the supervisor's own, less the address and the count."""
    return ["--log-level", args.log_level, "--threads", str(args.threads), "--workers", "1"]


async def serve(server: uvicorn.Server, sockets: list[socket.socket], *, threads: int) -> None:
    """uvicorn's serve loop, with a thread pool sized for the database calls of connects.

    Those calls (`database_sync_to_async`) mostly wait on PostgreSQL; asyncio's default pool (cores
    + 4 threads) left a connect storm waiting for a free thread with the CPU half idle.
    """
    asyncio.get_running_loop().set_default_executor(ThreadPoolExecutor(threads, thread_name_prefix="db"))
    await server.serve(sockets=sockets)


if __name__ == "__main__":
    main(sys.argv[1:])
