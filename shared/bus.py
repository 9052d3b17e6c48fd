"""The message bus on RabbitMQ.

- Events: a durable topic exchange `<ns>.events`; the routing key is the event type
  ("auth.user.created"). Whoever cares binds a queue to it.
- Work: durable queues `<ns>.<name>`. Every message is persistent and confirmed by the broker before
  `publish`/`send` returns.
- Consumers ack only after the handler returned. A handler that raises is retried after a growing
  delay (through `<queue>.retry`, whose expired messages flow back to the queue) up to
  `max_attempts` times; then the message goes to the dead-letter queue `<queue>.dead`, where it
  waits for a human. A message that is not a valid envelope goes there at once.

Messages may arrive more than once (a retry after a crash between effect and ack): handlers must
be idempotent, keyed on `Envelope.id`.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import aio_pika
from aio_pika.abc import (
    AbstractChannel,
    AbstractExchange,
    AbstractIncomingMessage,
    AbstractQueue,
    AbstractRobustConnection,
)
from pydantic import BaseModel, Field, ValidationError

from shared.request_id import current_request_id, request_id_var

logger = logging.getLogger(__name__)

ATTEMPT_HEADER = "x-attempt"


class Envelope(BaseModel):
    id: uuid.UUID = Field(default_factory=uuid.uuid4)
    type: str
    occurred_at: datetime = Field(default_factory=lambda: datetime.now(UTC))
    request_id: str | None = Field(default_factory=current_request_id)
    data: dict[str, Any] = Field(default_factory=dict)


Handler = Callable[[Envelope], Awaitable[None]]


def retry_delay_ms(attempt: int) -> int:
    """0.5 s, 1 s, 2 s, ... capped at a minute."""
    return int(min(500 * 2 ** (attempt - 1), 60_000))


class MessageBus:
    def __init__(self, connection: AbstractRobustConnection, *, namespace: str) -> None:
        self.connection = connection
        self.namespace = namespace
        self._channel: AbstractChannel | None = None
        self._events: AbstractExchange | None = None
        self._dead: AbstractExchange | None = None

    def queue_name(self, name: str) -> str:
        return f"{self.namespace}.{name}"

    async def start(self) -> None:
        self._channel = await self.connection.channel(
            publisher_confirms=True, on_return_raises=True
        )
        self._events = await self._channel.declare_exchange(
            f"{self.namespace}.events", aio_pika.ExchangeType.TOPIC, durable=True
        )
        self._dead = await self._channel.declare_exchange(
            f"{self.namespace}.dead", aio_pika.ExchangeType.DIRECT, durable=True
        )

    @property
    def channel(self) -> AbstractChannel:
        if self._channel is None:
            raise RuntimeError("MessageBus.start() was not awaited")
        return self._channel

    async def declare_queue(
        self, name: str, *, bindings: Sequence[str] = (), channel: AbstractChannel | None = None
    ) -> AbstractQueue:
        """Declare `<ns>.<name>` with its retry and dead-letter queues; bind it to event types."""
        channel = channel or self.channel
        full = self.queue_name(name)
        dead = await channel.declare_queue(f"{full}.dead", durable=True)
        await dead.bind(f"{self.namespace}.dead", routing_key=full)
        await channel.declare_queue(
            f"{full}.retry",
            durable=True,
            arguments={"x-dead-letter-exchange": "", "x-dead-letter-routing-key": full},
        )
        queue = await channel.declare_queue(
            full,
            durable=True,
            arguments={
                "x-dead-letter-exchange": f"{self.namespace}.dead",
                "x-dead-letter-routing-key": full,
            },
        )
        for binding in bindings:
            await queue.bind(f"{self.namespace}.events", routing_key=binding)
        return queue

    async def publish(self, event_type: str, data: dict[str, Any]) -> Envelope:
        """Publish an event; returns once the broker confirmed it."""
        assert self._events is not None, "MessageBus.start() was not awaited"
        envelope = Envelope(type=event_type, data=data)
        await self._events.publish(_to_message(envelope), routing_key=event_type, mandatory=False)
        return envelope

    async def send(self, queue: str, message_type: str, data: dict[str, Any]) -> Envelope:
        """Put work on a declared queue; returns once the broker confirmed it."""
        envelope = Envelope(type=message_type, data=data)
        await self.channel.default_exchange.publish(
            _to_message(envelope), routing_key=self.queue_name(queue), mandatory=True
        )
        return envelope

    async def consume(
        self,
        queue: str,
        handler: Handler,
        *,
        bindings: Sequence[str] = (),
        max_attempts: int = 5,
        prefetch: int = 16,
    ) -> Consumer:
        channel = await self.connection.channel(publisher_confirms=True)
        await channel.set_qos(prefetch_count=prefetch)
        declared = await self.declare_queue(queue, bindings=bindings, channel=channel)
        consumer = Consumer(channel, declared, handler, max_attempts=max_attempts)
        consumer.tag = await declared.consume(consumer.on_message)
        return consumer


class Consumer:
    def __init__(
        self,
        channel: AbstractChannel,
        queue: AbstractQueue,
        handler: Handler,
        *,
        max_attempts: int,
    ) -> None:
        self.channel = channel
        self.queue = queue
        self.handler = handler
        self.max_attempts = max_attempts
        self.tag: str | None = None

    async def on_message(self, message: AbstractIncomingMessage) -> None:
        try:
            envelope = Envelope.model_validate_json(message.body)
        except ValidationError:
            logger.error("%s: not a message envelope, dead-lettered", self.queue.name)
            await message.reject(requeue=False)
            return
        attempt = int(message.headers.get(ATTEMPT_HEADER) or 1)  # type: ignore[arg-type]
        token = request_id_var.set(envelope.request_id)
        try:
            await self.handler(envelope)
        except asyncio.CancelledError:
            await message.nack(requeue=True)
            raise
        except Exception:
            await self._retry_or_dead_letter(message, envelope, attempt)
        else:
            await message.ack()
        finally:
            request_id_var.reset(token)

    async def _retry_or_dead_letter(
        self, message: AbstractIncomingMessage, envelope: Envelope, attempt: int
    ) -> None:
        if attempt >= self.max_attempts:
            logger.exception(
                "%s: %s %s failed %d times, dead-lettered",
                self.queue.name,
                envelope.type,
                envelope.id,
                attempt,
            )
            await message.reject(requeue=False)
            return
        logger.warning(
            "%s: %s %s failed (attempt %d), will retry",
            self.queue.name,
            envelope.type,
            envelope.id,
            attempt,
            exc_info=True,
        )
        retry = _to_message(envelope, attempt=attempt + 1, expiration_ms=retry_delay_ms(attempt))
        # The copy is confirmed before the original is acked: a crash in between repeats the
        # message, never loses it.
        await self.channel.default_exchange.publish(retry, routing_key=f"{self.queue.name}.retry")
        await message.ack()

    async def stop(self) -> None:
        if self.tag is not None:
            await self.queue.cancel(self.tag)
            self.tag = None
        await self.channel.close()


def _to_message(
    envelope: Envelope, *, attempt: int = 1, expiration_ms: int | None = None
) -> aio_pika.Message:
    return aio_pika.Message(
        envelope.model_dump_json().encode(),
        content_type="application/json",
        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        message_id=str(envelope.id),
        type=envelope.type,
        headers={ATTEMPT_HEADER: attempt},
        expiration=None if expiration_ms is None else expiration_ms / 1000,
    )
