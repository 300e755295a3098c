"""Grafana's provisioning files and dashboards: stable uids, one datasource,
and every panel query valid PromQL (checked by promtool) reading only metrics
Conveyor, Dramatiq or RabbitMQ export.  That every such metric really exists
in a running stack is checked by tests/e2e/test_monitoring.py."""

from __future__ import annotations

import subprocess
from pathlib import Path

import yaml
from promql_names import REPOSITORY, dashboard_expressions, dashboards, metric_names, raw_metric_names

GRAFANA_DIR = REPOSITORY / "grafana"
UIDS = {"conveyor-overview", "conveyor-gateway", "conveyor-queues-workers", "conveyor-tenants"}
EXPORTERS = ("conveyor_", "dramatiq_", "rabbitmq_detailed_")


def _datasource_uid() -> str:
    provisioned = yaml.safe_load((GRAFANA_DIR / "provisioning" / "datasources" / "prometheus.yml").read_text())
    (datasource,) = provisioned["datasources"]
    assert datasource["type"] == "prometheus"
    return datasource["uid"]


def test_dashboards_have_their_stable_uids_and_the_provider_loads_them() -> None:
    found = {name: dashboard["uid"] for name, dashboard in dashboards().items()}
    assert set(found.values()) == UIDS
    assert all(name == f"{uid}.json" for name, uid in found.items())
    provider = yaml.safe_load((GRAFANA_DIR / "provisioning" / "dashboards" / "conveyor.yml").read_text())
    (files,) = provider["providers"]
    assert files["type"] == "file" and files["options"]["path"].endswith("/dashboards")


def test_every_panel_queries_the_provisioned_datasource() -> None:
    uid = _datasource_uid()
    for name, dashboard in dashboards().items():
        for panel in dashboard["panels"]:
            where = f"{name} / {panel['title']}"
            assert panel["datasource"] == {"type": "prometheus", "uid": uid}, where
            assert panel["targets"], f"{where} draws nothing"
            assert all(target["datasource"]["uid"] == uid and target["expr"].strip() for target in panel["targets"]), where
        ids = [panel["id"] for panel in dashboard["panels"]]
        assert len(ids) == len(set(ids)), f"{name} repeats a panel id"


def test_every_panel_query_is_valid_promql(tmp_path: Path) -> None:
    """promtool parses each query as a recording rule; a failure names the panel."""
    expressions = dashboard_expressions()
    rule_file = tmp_path / "dashboards.yml"
    rule_file.write_text(
        yaml.safe_dump(
            {"groups": [{"name": "dashboards", "rules": [{"record": f"panel_{n}", "expr": expr} for n, (_, expr) in enumerate(expressions)]}]}
        )
    )
    run = subprocess.run(["promtool", "check", "rules", str(rule_file)], capture_output=True, text=True, timeout=60)
    if run.returncode != 0:
        failing = [where for n, (where, _) in enumerate(expressions) if f"panel_{n}" in run.stdout + run.stderr]
        raise AssertionError(f"invalid PromQL in {failing or 'a panel'}:\n{run.stdout}{run.stderr}")


def test_panels_read_only_exported_metrics_and_known_recording_rules() -> None:
    for where, expression in dashboard_expressions():
        assert metric_names(expression), f"{where} reads no metric"
        for name in raw_metric_names(expression):  # KeyError: a recording rule that does not exist
            assert name == "up" or name.startswith(EXPORTERS), f"{where} reads {name}, which nothing of ours exports"
