"""The engine's ceiling and the peer, on the same RabbitMQ: raw pika publish
and consume rates, a raw Dramatiq no-op actor draining a queue, and Celery
draining the same trivial document work.

A drain is timed from the moment the queue's ready count first drops (the
consumers have booted) until it is empty; at most one prefetch window per
consumer is still in flight then, a rounding error at these counts."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pika

from conveyor.processes import ManagedProcess, start_process
from platform_under_test import REPOSITORY, ready_messages

BENCH_DIR = Path(__file__).resolve().parent
TINY_TEXT = "a tiny document of six words"


def pika_rates(broker_url: str, messages: int) -> dict[str, float]:
    """Publish ``messages`` small persistent messages with one BlockingConnection, then consume and ack them."""
    queue = "bench-pika"
    connection = pika.BlockingConnection(pika.URLParameters(broker_url))
    channel = connection.channel()
    channel.queue_declare(queue, durable=True)
    body = b'{"job": "0123456789"}'
    properties = pika.BasicProperties(delivery_mode=2)
    started = time.perf_counter()
    for _ in range(messages):
        channel.basic_publish("", queue, body, properties)
    while channel.queue_declare(queue, passive=True).method.message_count < messages:
        connection.process_data_events(0.01)
    published = time.perf_counter() - started

    channel.basic_qos(prefetch_count=100)
    consumed = 0
    started = time.perf_counter()
    for method, _, _ in channel.consume(queue, inactivity_timeout=5):
        if method is None:
            break
        channel.basic_ack(method.delivery_tag)
        consumed += 1
        if consumed == messages:
            break
    drained = time.perf_counter() - started
    channel.cancel()
    connection.close()
    return {
        "messages": messages,
        "publish_per_second": round(messages / published, 1),
        "consume_per_second": round(consumed / drained, 1),
    }


def time_drain(broker_url: str, queue: str, total: int, start_consumers: Callable[[], list[ManagedProcess]], timeout: float) -> float:
    """Seconds for the started consumers to empty ``queue`` (holding ``total`` messages)."""
    consumers = start_consumers()
    try:
        deadline = time.monotonic() + timeout
        while ready_messages(broker_url, queue) >= total:
            _check(consumers, deadline)
            time.sleep(0.005)
        started = time.perf_counter()
        while ready_messages(broker_url, queue) > 0:
            _check(consumers, deadline)
            time.sleep(0.02)
        return time.perf_counter() - started
    finally:
        for consumer in consumers:
            consumer.stop()


def _check(consumers: list[ManagedProcess], deadline: float) -> None:
    if time.monotonic() > deadline:
        raise RuntimeError("drain timed out:\n" + "\n".join(consumer.log_tail() for consumer in consumers))
    for consumer in consumers:
        if not consumer.is_running():
            raise RuntimeError(f"{consumer.name} exited:\n{consumer.log_tail()}")


def _environment(broker_url: str, **extra: str) -> dict[str, str]:
    return {**os.environ, "BENCH_BROKER_URL": broker_url, "PYTHONPATH": f"{BENCH_DIR}:{REPOSITORY}", **extra}


def dramatiq_noop_drain(broker_url: str, messages: int, processes: int, threads: int, log_dir: Path) -> dict[str, float]:
    os.environ["BENCH_BROKER_URL"] = broker_url
    import noop_actors  # declares the broker for this URL

    broker = noop_actors.dramatiq.get_broker()
    broker.declare_queue(noop_actors.QUEUE)
    for number in range(messages):
        noop_actors.noop.send(number)
    broker.close()

    def start() -> list[ManagedProcess]:
        command = [sys.executable, "-m", "dramatiq", "noop_actors", "--processes", str(processes), "--threads", str(threads)]
        environment = _environment(broker_url, dramatiq_queue_prefetch=str(threads))
        return [start_process("dramatiq-noop", command, environment, log_dir / "dramatiq-noop.log", BENCH_DIR)]

    seconds = time_drain(broker_url, noop_actors.QUEUE, messages, start, timeout=600)
    return {"messages": messages, "seconds": round(seconds, 2), "per_second": round(messages / seconds, 1)}


def celery_drain(broker_url: str, messages: int, processes: int, threads: int, log_dir: Path) -> dict[str, float]:
    """The same trivial document analysis as Conveyor's, ``processes`` Celery
    workers of ``threads`` threads each (Dramatiq's shape), acks late."""
    result_backend = "redis://127.0.0.1:6379/14"
    os.environ.update(BENCH_BROKER_URL=broker_url, BENCH_RESULT_BACKEND=result_backend)
    import celery_tasks

    with celery_tasks.app.producer_or_acquire() as producer:
        for number in range(messages):
            celery_tasks.analyse.apply_async((TINY_TEXT, f"tiny-{number}.txt"), producer=producer)

    def start() -> list[ManagedProcess]:
        environment = _environment(broker_url, BENCH_RESULT_BACKEND=result_backend)
        return [
            start_process(
                f"celery-{worker}",
                [
                    sys.executable, "-m", "celery", "-A", "celery_tasks", "worker", "--pool", "threads",
                    "--concurrency", str(threads), "--loglevel", "WARNING", "-n", f"bench{worker}@%h", "--without-heartbeat",
                    "--without-gossip", "--without-mingle",
                ],
                environment,
                log_dir / f"celery-{worker}.log",
                BENCH_DIR,
            )
            for worker in range(processes)
        ]

    seconds = time_drain(broker_url, celery_tasks.QUEUE, messages, start, timeout=900)
    return {"messages": messages, "seconds": round(seconds, 2), "per_second": round(messages / seconds, 1)}
