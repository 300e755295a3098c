"""Dramatiq's RabbitMQ broker configured the way every Conveyor process needs it."""

from __future__ import annotations

from urllib.parse import unquote, urlsplit

from dramatiq.brokers.rabbitmq import RabbitmqBroker

from conveyor.pipelines import queue_names
from conveyor.settings import Settings


def create_broker(settings: Settings, *, confirm_delivery: bool) -> RabbitmqBroker:
    """A broker whose queues carry ``x-max-priority`` and are declared up front.

    ``confirm_delivery`` makes every publish wait for RabbitMQ's confirm, so a
    returned ``enqueue`` means the message is safely queued (the gateway's
    publishing path).  The broker carries Dramatiq's default middleware.
    """
    broker = RabbitmqBroker(
        url=settings.broker_url,
        confirm_delivery=confirm_delivery,
        max_priority=settings.max_priority,
    )
    for queue_name in queue_names():
        broker.declare_queue(queue_name)
    return broker


def broker_vhost(broker_url: str) -> str:
    """The vhost of an ``amqp://`` URL (``/`` when the path is empty)."""
    path = urlsplit(broker_url).path
    return unquote(path[1:]) if len(path) > 1 else "/"
