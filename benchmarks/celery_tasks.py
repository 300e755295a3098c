"""The peer: the same trivial document work as Conveyor's, as a Celery task on
the same RabbitMQ (``BENCH_BROKER_URL``), results kept in Redis
(``BENCH_RESULT_BACKEND``), acknowledged late like Dramatiq's."""

import os

from celery import Celery

from actors.document_analysis import ChunkingPolicy, analyse_document

QUEUE = "bench-celery"
POLICY = ChunkingPolicy()

app = Celery("bench", broker=os.environ["BENCH_BROKER_URL"], backend=os.environ["BENCH_RESULT_BACKEND"])
app.conf.update(
    task_acks_late=True,
    task_reject_on_worker_lost=True,
    worker_prefetch_multiplier=1,
    task_default_queue=QUEUE,
    result_expires=3600,
    broker_connection_retry_on_startup=True,
)


@app.task(name="analyse")
def analyse(content: str, filename: str) -> dict:
    analysis = analyse_document(content.encode(), filename, POLICY)
    return {"kind": analysis.kind, "word_count": analysis.word_count}
