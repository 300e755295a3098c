"""Publishes job messages from the async gateway through one confirmed channel.

Dramatiq's RabbitMQ broker keeps a blocking pika connection per thread, so all
broker calls run on one dedicated thread: one connection per gateway process,
publishes serialised, each confirmed by RabbitMQ before the call returns.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import dramatiq
import pika.exceptions
from dramatiq.brokers.rabbitmq import RabbitmqBroker
from dramatiq.errors import DramatiqError

from conveyor.pipelines import queue_names


DEPTH_CACHE_SECONDS = 2.0


class BrokerUnavailable(Exception):
    """RabbitMQ could not be reached or did not confirm a message."""


class JobPublisher:
    def __init__(self, broker: RabbitmqBroker) -> None:
        self._broker = broker
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="publisher")
        self._depths: dict[str, tuple[float, int]] = {}

    async def _run(self, function, *args):  # type: ignore[no-untyped-def]
        return await asyncio.get_running_loop().run_in_executor(self._thread, function, *args)

    async def publish(self, messages: Sequence[dramatiq.Message]) -> None:
        """Publish ``messages`` in order; raise :class:`BrokerUnavailable` at the first unconfirmed one."""
        await self._run(self._publish_all, messages)

    def _publish_all(self, messages: Sequence[dramatiq.Message]) -> None:
        for message in messages:
            try:
                self._broker.enqueue(message)
            except DramatiqError as error:
                raise BrokerUnavailable(f"RabbitMQ did not confirm a message for {message.queue_name}: {error}") from error

    async def check(self) -> None:
        """Raise unless RabbitMQ answers and every job queue exists (declaring them if needed)."""
        for queue_name in queue_names():
            await self._run(self._ready_messages, queue_name)

    async def ready_messages(self, queue_name: str, max_age: float | None = None) -> int:
        """Messages waiting in ``queue_name``; a reading up to ``max_age`` seconds old
        (default ``DEPTH_CACHE_SECONDS``) is reused so that backpressure checks stay cheap."""
        max_age = DEPTH_CACHE_SECONDS if max_age is None else max_age
        now = time.monotonic()
        cached = self._depths.get(queue_name)
        if cached is not None and now - cached[0] < max_age:
            return cached[1]
        depth = await self._run(self._ready_messages, queue_name)
        self._depths[queue_name] = (now, depth)
        return depth

    async def queue_state(self, queue_name: str) -> tuple[int, int]:
        """Ready messages and consumers of ``queue_name``, read now (operators' views)."""
        return await self._run(self._declare_passively, queue_name)

    def _ready_messages(self, queue_name: str) -> int:
        return self._declare_passively(queue_name)[0]

    def _declare_passively(self, queue_name: str) -> tuple[int, int]:
        # An idle blocking connection misses heartbeats and is closed by
        # RabbitMQ; the second attempt runs on a fresh connection.
        for attempt in range(2):
            try:
                self._broker.declare_queue(queue_name, ensure=True)
                method = self._broker.channel.queue_declare(queue_name, passive=True).method
                return method.message_count, method.consumer_count
            except (DramatiqError, pika.exceptions.AMQPError) as error:
                del self._broker.connection
                if attempt:
                    raise BrokerUnavailable(f"RabbitMQ is unreachable: {error!r}") from error
        raise AssertionError("unreachable")

    async def close(self) -> None:
        await self._run(self._broker.close)
        self._thread.shutdown(wait=True)
