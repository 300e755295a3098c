"""The engine's ceiling: a Dramatiq actor that does nothing, on the same
RabbitMQ broker settings as Conveyor's workers (``BENCH_BROKER_URL``)."""

import os

import dramatiq
from dramatiq.brokers.rabbitmq import RabbitmqBroker

QUEUE = "bench-noop"

dramatiq.set_broker(RabbitmqBroker(url=os.environ["BENCH_BROKER_URL"]))


@dramatiq.actor(queue_name=QUEUE, max_retries=0)
def noop(number: int) -> None:
    """Nothing: what is left is Dramatiq's and RabbitMQ's own cost per message."""
