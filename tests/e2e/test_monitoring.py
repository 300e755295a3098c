"""A real Prometheus, configured from the repository's ``prometheus/`` folder,
scraping a running gateway, worker and RabbitMQ: every target is up, every rule
evaluates, the job counters equal the ledger's, queue depth series exist, and
every metric the dashboards and rules read is really exported."""

from __future__ import annotations

from urllib.parse import urlsplit

from process_waits import wait_for
from promql_names import dashboard_and_rule_metrics

from conveyor.pipelines import queue_names
from conveyor.settings import Settings

# Each passes the gateway's checks; the last two fail when a worker reads them.
DOCUMENTS = {
    "a.txt": b"plain words for the first document",
    "b.md": b"# Title\n\nsome markdown body\n",
    "c.csv": b"name,value\nx,1\ny,2\n",
    "d.json": b'{"title": "four"}',
    "broken.json": b'{"unterminated": ',
    "ragged.csv": b"one column\nonly\n",
}
# Exported only where a node exporter runs (none on a test machine).
HOST_METRIC_PREFIX = "node_"


def test_prometheus_sees_every_part_and_counts_what_the_ledger_counts(
    start_gateway, start_worker, make_client, start_prometheus, rabbitmq_url: str, service_settings: Settings
) -> None:
    gateway = start_gateway(CONVEYOR_BUSINESS_METRICS_SECONDS="1")
    worker = start_worker()
    token = gateway.token(make_client(tier="standard"))
    batch = gateway.wait_for_batch(token, gateway.upload(token, DOCUMENTS)["id"])
    assert (batch["status"], batch["counts"]["succeeded"], batch["counts"]["failed"]) == ("PARTIALLY_COMPLETED", 4, 2)

    prometheus = start_prometheus(
        {
            "conveyor-gateway": [urlsplit(gateway.url).netloc],
            "conveyor-worker": [urlsplit(worker.metrics_url).netloc],
            "rabbitmq": [service_settings.rabbitmq_metrics_address],
            "rabbitmq-detailed": [service_settings.rabbitmq_metrics_address],
        }
    )
    processes = [gateway.process, worker, prometheus.process]

    def targets_up() -> list[dict] | None:
        targets = prometheus.api("targets")["activeTargets"]
        return targets if targets and all(target["health"] == "up" for target in targets) else None

    targets = wait_for(targets_up, 60, "every scrape target up", processes)
    assert {target["labels"]["job"] for target in targets} == {
        "conveyor-gateway", "conveyor-worker", "rabbitmq", "rabbitmq-detailed", "prometheus"
    }

    # What the ledger recorded is what Prometheus counts.
    finished = {"SUCCEEDED": 4.0, "FAILED": 2.0, "CANCELLED": 0.0}
    wait_for(
        lambda: prometheus.vector("sum by (state) (conveyor_jobs_finished_total)")
        == {(("state", state),): count for state, count in finished.items()},
        30,
        "job counters equal to the ledger's",
        processes,
    )
    assert prometheus.vector('conveyor_batches_finished_total{status="PARTIALLY_COMPLETED"}') != {}
    assert sum(prometheus.vector('conveyor_batches_finished_total{status="PARTIALLY_COMPLETED"}').values()) == 1
    assert sum(prometheus.vector('conveyor_gateway_upload_files_total{tier="standard"}').values()) == len(DOCUMENTS)
    assert sum(prometheus.vector("conveyor_gateway_jobs_published_total").values()) == len(DOCUMENTS)
    assert sum(prometheus.vector('dramatiq_messages_total{actor_name="process_document"}').values()) == len(DOCUMENTS)
    assert sum(prometheus.vector("conveyor_backlog_jobs").values()) == 0

    # Queue depth and consumers of this test's vhost, per job queue.
    vhost = urlsplit(rabbitmq_url).path.lstrip("/")
    ready = prometheus.vector(f'rabbitmq_detailed_queue_messages_ready{{vhost="{vhost}"}}')
    assert {dict(labels)["queue"] for labels in ready} >= set(queue_names())
    consumers = prometheus.vector(f'rabbitmq_detailed_queue_consumers{{vhost="{vhost}",queue="documents"}}')
    assert list(consumers.values()) == [1.0]

    # Every recording and alert rule evaluates without error.
    def evaluated_rules() -> list[dict] | None:
        rules = [rule for group in prometheus.api("rules")["groups"] for rule in group["rules"]]
        return rules if all(not rule["lastEvaluation"].startswith("0001-") for rule in rules) else None

    rules = wait_for(evaluated_rules, 30, "every rule evaluated", processes)
    assert len(rules) >= 25
    assert [(rule["name"], rule.get("lastError")) for rule in rules if rule["health"] != "ok"] == []

    # Every metric a dashboard panel or a rule reads is exported by this stack.
    exported = set(prometheus.api("label/__name__/values"))
    wanted = {name for name in dashboard_and_rule_metrics() if not name.startswith(HOST_METRIC_PREFIX)}
    assert len(wanted) > 20
    assert sorted(wanted - exported) == []
