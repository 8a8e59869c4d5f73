"""Committed tenants for websocket tests (the consumer's queries run on other threads' connections)."""

import asyncio
import contextlib
import shutil
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import pytest
import redis
from asgiref.sync import sync_to_async
from channels import DEFAULT_CHANNEL_LAYER
from channels.layers import channel_layers
from channels.testing import WebsocketCommunicator

from accounts.models import User
from accounts.services import owner_get_or_create
from accounts.sessions import session_create
from billing.models import Plan
from config.asgi import application
from streaming.feed import Feed
from streaming.hub import stream_hub_close
from streaming.providers import SimulatedProvider
from streaming.state import stream_state
from tenants.db import activate_public_schema
from tenants.models import Membership, Organisation, Role
from tenants.services.organisations import organisation_create
from tenants.services.team import membership_remove
from tests.conftest import PASSWORD
from tests.live import free_port


@dataclass
class Tenant:
    organisation: Organisation
    owner: User
    session: str

    @property
    def host(self) -> str:
        return f"{self.organisation.slug}.localhost"

    @property
    def schema(self) -> str:
        return str(self.organisation.schema_name)


@dataclass
class Committed:
    """Creates committed rows and removes them afterwards."""

    organisations: list[Organisation] = field(default_factory=list)
    users: list[User] = field(default_factory=list)
    plans: list[Plan] = field(default_factory=list)

    # Async tests call these through sync_to_async (the ORM refuses to run on the event loop).
    async def plan(self, **limits: Any) -> Plan:
        return await sync_to_async(self.plan_sync)(**limits)

    async def tenant(self, plan: Plan | str = "pro", **organisation_fields: Any) -> Tenant:
        return await sync_to_async(self.tenant_sync)(plan, **organisation_fields)

    async def member(self, tenant: Tenant, email: str) -> str:
        return await sync_to_async(self.member_sync)(tenant, email)

    def plan_sync(self, **limits: Any) -> Plan:
        slug = f"test-{uuid.uuid4().hex[:8]}"
        defaults: dict[str, Any] = {"name": slug, "slug": slug, "max_symbols_per_stream": 5, "max_streams": 2,
                                    "realtime": True, "delay_minutes": 0, "is_public": False}  # fmt: skip
        plan = Plan.objects.create(**{**defaults, **limits})
        self.plans.append(plan)
        return plan

    def tenant_sync(self, plan: Plan | str = "pro", **organisation_fields: Any) -> Tenant:
        activate_public_schema()  # a request served by the test client leaves this thread's connection on its tenant
        slug = f"t{uuid.uuid4().hex[:10]}"
        owner = owner_get_or_create(email=f"owner@{slug}.example", password=PASSWORD)
        self.users.append(owner)
        plan_row = plan if isinstance(plan, Plan) else Plan.objects.get(slug=plan)
        organisation = organisation_create(name=f"Org {slug}", slug=slug, owner=owner, plan=plan_row)
        if organisation_fields:
            Organisation.objects.filter(pk=organisation.pk).update(**organisation_fields)
            organisation.refresh_from_db()
        self.organisations.append(organisation)
        return Tenant(organisation, owner, session_create(owner))

    def member_sync(self, tenant: Tenant, email: str) -> str:
        user = owner_get_or_create(email=email, password=PASSWORD)
        self.users.append(user)
        Membership.objects.create(user=user, organisation=tenant.organisation, role=Role.MEMBER)
        return session_create(user)

    def cleanup(self) -> None:
        for organisation in self.organisations:
            organisation.delete()  # drops the schema
        User.objects.filter(pk__in=[u.pk for u in self.users]).delete()
        Plan.objects.filter(pk__in=[p.pk for p in self.plans]).delete()


def remove_members_but_the_owner(tenant: Tenant) -> None:
    """The owner removes every other member, as on the team page (their streams close after commit)."""
    owner = Membership.objects.get(organisation=tenant.organisation, user=tenant.owner)
    for membership in Membership.objects.filter(organisation=tenant.organisation).exclude(pk=owner.pk):
        membership_remove(actor=owner, target=membership)


@pytest.fixture
def committed(django_db_setup: None, django_db_blocker: Any) -> Iterator[Committed]:
    with django_db_blocker.unblock():
        rows = Committed()
        try:
            yield rows
        finally:
            rows.cleanup()


@pytest.fixture
async def hub_cleanup() -> AsyncIterator[None]:
    """Close this test loop's stream hub afterwards (its rooms, tasks and Redis subscriptions)."""
    yield
    async with asyncio.timeout(10):
        await stream_hub_close()


@pytest.fixture
async def feed(hub_cleanup: None) -> AsyncIterator[Feed]:
    """The real feed, with a fast seeded simulated provider, leading in this test's event loop."""
    # A layer of its own, as in production where the feed is another process: the test's web side
    # (hub rooms) and the feed do not share channels-redis' per-instance connections and locks.
    layer = channel_layers.make_backend(DEFAULT_CHANNEL_LAYER)
    running = Feed(SimulatedProvider(ticks_per_second=400, seed=7), stream_state(), layer)
    task = asyncio.create_task(running.run())
    yield running
    running.stop()
    async with asyncio.timeout(10):
        await task


def connect(
    host: str,
    *,
    session: str | None = None,
    query: str = "symbols=AAPL,MSFT",
    origin: str | None = None,
) -> WebsocketCommunicator:
    headers = [(b"host", host.encode())]
    if session:
        headers.append((b"cookie", f"sessionid={session}".encode()))
    if origin:
        headers.append((b"origin", origin.encode()))
    return WebsocketCommunicator(application, f"/ws/stock-market/?{query}", headers=headers)


async def receive(communicator: WebsocketCommunicator, within: float = 5) -> dict[str, Any]:
    return dict(orjson.loads(await communicator.receive_from(within)))


async def expect_refusal(communicator: WebsocketCommunicator, close_code: int, error_code: str) -> dict[str, Any]:
    """The server accepts, sends an `error` with `error_code`, then closes with `close_code`."""
    connected, _ = await communicator.connect()
    assert connected
    error = await receive(communicator)
    assert error["type"] == "error"
    assert error["code"] == error_code
    assert error["message"]
    closed = await communicator.receive_output(5)
    assert closed == {"type": "websocket.close", "code": close_code}
    await communicator.wait()
    return error


async def receive_until(
    communicator: WebsocketCommunicator, kind: str, within: float = 5, **match: Any
) -> dict[str, Any]:
    """Skip messages until one of type `kind` (with the given fields) arrives."""
    deadline = asyncio.get_running_loop().time() + within
    while True:
        left = deadline - asyncio.get_running_loop().time()
        if left <= 0:
            raise TimeoutError(f"no {kind} message with {match} within {within}s")
        message = await receive(communicator, within=left)
        if message["type"] == kind and all(message.get(k) == v for k, v in match.items()):
            return message


@pytest.fixture
def two_redis_servers(tmp_path: Path) -> Iterator[list[str]]:
    """Two redis-server processes of their own, on free ports, stopped afterwards."""
    redis_server = shutil.which("redis-server")
    if redis_server is None:
        pytest.fail("redis-server is not installed: `make test` starts Redis with it (README: Tests)")
    processes, urls = [], []
    for n in range(2):
        port = free_port()
        processes.append(subprocess.Popen(
            [redis_server, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(tmp_path), "--dbfilename", f"shard{n}.rdb"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        ))  # fmt: skip
        urls.append(f"redis://127.0.0.1:{port}/0")
    try:
        for url in urls:
            client = redis.Redis.from_url(url)
            for _ in range(100):
                with contextlib.suppress(redis.ConnectionError):
                    if client.ping():
                        break
                time.sleep(0.05)
            client.close()
        yield urls
    finally:
        for process in processes:
            process.terminate()
            process.wait(timeout=10)
