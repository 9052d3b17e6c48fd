from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import aio_pika
import pytest
from aio_pika.abc import AbstractRobustConnection

from shared.bus import Envelope, MessageBus
from shared.request_id import request_id_var
from tests.support.stores import Stores


async def eventually(condition: Callable[[], Awaitable[bool]], *, within: float = 15.0) -> None:
    deadline = time.monotonic() + within
    while not await condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.05)


@pytest.fixture
async def connection(stores: Stores) -> AsyncIterator[AbstractRobustConnection]:
    conn = await aio_pika.connect_robust(stores.amqp_url)
    yield conn
    await conn.close()


@pytest.fixture
async def bus(
    stores: Stores, connection: AbstractRobustConnection, request: pytest.FixtureRequest
) -> AsyncIterator[MessageBus]:
    # A namespace per test: queues of one test never feed another.
    namespace = f"{stores.namespace}-{request.node.name[:40]}"
    message_bus = MessageBus(connection, namespace=namespace)
    await message_bus.start()
    yield message_bus
    channel = await connection.channel()
    for queue in ("work", "work.retry", "work.dead", "audit", "audit.retry", "audit.dead"):
        await channel.queue_delete(f"{namespace}.{queue}")
    for exchange in ("events", "dead"):
        await channel.exchange_delete(f"{namespace}.{exchange}")
    await channel.close()


async def queue_depth(bus: MessageBus, name: str) -> int:
    channel = await bus.connection.channel()
    try:
        queue = await channel.declare_queue(bus.queue_name(name), passive=True)
        return queue.declaration_result.message_count or 0
    finally:
        await channel.close()


async def test_work_reaches_a_consumer_with_its_envelope(bus: MessageBus) -> None:
    received: list[Envelope] = []

    async def handle(envelope: Envelope) -> None:
        received.append(envelope)

    consumer = await bus.consume("work", handle)
    token = request_id_var.set("req-123")
    try:
        sent = await bus.send("work", "thing.do", {"n": 1})
    finally:
        request_id_var.reset(token)

    async def arrived() -> bool:
        return len(received) == 1

    await eventually(arrived)
    await consumer.stop()
    assert received[0].id == sent.id
    assert received[0].type == "thing.do"
    assert received[0].data == {"n": 1}
    assert received[0].request_id == "req-123"


async def test_a_handler_failing_every_time_ends_in_the_dead_letter_queue(bus: MessageBus) -> None:
    attempts: list[int] = []

    async def always_fails(envelope: Envelope) -> None:
        attempts.append(1)
        raise RuntimeError("cannot do it")

    consumer = await bus.consume("work", always_fails, max_attempts=3)
    await bus.send("work", "thing.do", {"n": 2})

    async def dead_lettered() -> bool:
        return await queue_depth(bus, "work.dead") == 1

    await eventually(dead_lettered)
    await consumer.stop()
    assert len(attempts) == 3
    assert await queue_depth(bus, "work") == 0


async def test_a_handler_that_recovers_is_not_dead_lettered(bus: MessageBus) -> None:
    calls: list[int] = []

    async def fails_once(envelope: Envelope) -> None:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("transient")

    consumer = await bus.consume("work", fails_once, max_attempts=3)
    await bus.send("work", "thing.do", {})

    async def handled_twice() -> bool:
        return len(calls) == 2

    await eventually(handled_twice)
    await consumer.stop()
    assert await queue_depth(bus, "work.dead") == 0


async def test_a_message_survives_a_consumer_that_dies_before_acking(
    bus: MessageBus, stores: Stores
) -> None:
    started = asyncio.Event()

    async def never_finishes(envelope: Envelope) -> None:
        started.set()
        await asyncio.Event().wait()

    # The first consumer has a connection of its own, closed mid-work like a crashed process.
    doomed_connection = await aio_pika.connect_robust(stores.amqp_url)
    doomed_bus = MessageBus(doomed_connection, namespace=bus.namespace)
    await doomed_bus.start()
    await doomed_bus.consume("work", never_finishes)
    sent = await bus.send("work", "thing.do", {"n": 3})
    await asyncio.wait_for(started.wait(), 10)
    await doomed_connection.close()

    received: list[Envelope] = []

    async def handle(envelope: Envelope) -> None:
        received.append(envelope)

    consumer = await bus.consume("work", handle)

    async def redelivered() -> bool:
        return len(received) == 1

    await eventually(redelivered)
    await consumer.stop()
    assert received[0].id == sent.id


async def test_a_message_sent_while_no_consumer_runs_waits_for_one(bus: MessageBus) -> None:
    await bus.declare_queue("work")
    sent = await bus.send("work", "thing.do", {"n": 4})
    received: list[Envelope] = []

    async def handle(envelope: Envelope) -> None:
        received.append(envelope)

    consumer = await bus.consume("work", handle)

    async def arrived() -> bool:
        return len(received) == 1

    await eventually(arrived)
    await consumer.stop()
    assert received[0].id == sent.id


async def test_events_reach_the_queues_bound_to_their_type(bus: MessageBus) -> None:
    received: list[Envelope] = []

    async def handle(envelope: Envelope) -> None:
        received.append(envelope)

    consumer = await bus.consume("audit", handle, bindings=["user.*"])
    await bus.publish("order.created", {"id": 1})
    await bus.publish("user.created", {"id": 2})

    async def arrived() -> bool:
        return len(received) == 1

    await eventually(arrived)
    await consumer.stop()
    assert received[0].type == "user.created"
    assert await queue_depth(bus, "audit") == 0


async def test_sending_to_an_undeclared_queue_fails_loudly(bus: MessageBus) -> None:
    with pytest.raises(aio_pika.exceptions.DeliveryError):
        await bus.send("nobody-listens", "thing.do", {})


async def test_a_message_that_is_not_an_envelope_is_dead_lettered_at_once(
    bus: MessageBus,
) -> None:
    calls: list[Envelope] = []

    async def handle(envelope: Envelope) -> None:
        calls.append(envelope)

    consumer = await bus.consume("work", handle)
    await bus.channel.default_exchange.publish(
        aio_pika.Message(b"not json"), routing_key=bus.queue_name("work")
    )

    async def dead_lettered() -> bool:
        return await queue_depth(bus, "work.dead") == 1

    await eventually(dead_lettered)
    await consumer.stop()
    assert calls == []
