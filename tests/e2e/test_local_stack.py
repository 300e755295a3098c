"""``make up`` / ``make down``: the launcher behind them, on a state directory of the test's own."""

from __future__ import annotations

import dataclasses
import json
import os
import socket
import time
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from conveyor.local_stack import StackError, StackLayout, StackPorts, down, up

REPOSITORY = Path(__file__).resolve().parents[2]


def _local_defaults_only(environment: dict[str, str]) -> dict[str, str]:
    """The test's environment (its vhost) without the settings ``up`` must default itself."""
    own = ("CONVEYOR_DATABASE_URL", "CONVEYOR_BLOB_DIR", "CONVEYOR_JWT_SECRET")
    return {name: value for name, value in environment.items() if name not in own}


def _free_ports(free_port) -> StackPorts:
    return StackPorts(
        http=free_port(), https=free_port(), gateways=(free_port(), free_port()), prometheus=free_port(),
        autoscaler_metrics=free_port(),
    )


def _wait_until_completed(url: str, headers: dict[str, str], batch: dict) -> None:
    deadline = time.monotonic() + 30
    while (status := httpx.get(f"{url}{batch['links']['self']}", headers=headers).json()["status"]) != "COMPLETED":
        assert time.monotonic() < deadline, f"batch still {status}"
        time.sleep(0.1)


def test_up_serves_a_working_credential_watches_the_inbox_and_down_stops_everything(
    tmp_path: Path, service_environment: dict[str, str], free_port
) -> None:
    layout = StackLayout(root=REPOSITORY, state_dir=tmp_path / "var")
    metrics_port = free_port()
    environment = {**_local_defaults_only(service_environment), "CONVEYOR_WORKER_METRICS_PORT": str(metrics_port)}
    ports = _free_ports(free_port)
    started = up(layout, "127.0.0.1", ports, environment)
    processes = json.loads(layout.state_file.read_text())["processes"]
    worker_pids = [int(pid_file.read_text()) for pid_file in layout.workers_dir.glob("*.pid")]
    try:
        assert started["url"] == f"http://127.0.0.1:{ports.http}"
        assert {p["name"] for p in processes} == {
            "gateway-1", "gateway-2", "nginx", "prometheus", "autoscaler", "scheduler", "watcher"
        }
        assert len(worker_pids) == 1, "the autoscaler starts the minimum of one worker at once"
        assert (layout.state_dir / "conveyor.db").exists() and layout.secret_file.exists()
        with pytest.raises(StackError, match="already running"):
            up(layout, "127.0.0.1", _free_ports(free_port), environment)
        assert httpx.get(f"{started['https_url']}/api/v1/ready", verify=False).status_code == 200
        assert httpx.get(f"{started['prometheus_url']}/-/ready").status_code == 200

        token = httpx.post(
            f"{started['url']}/api/v1/auth/token",
            data={
                "grant_type": "client_credentials",
                "client_id": started["client_id"],
                "client_secret": started["client_secret"],
            },
        ).json()["access_token"]
        headers = {"Authorization": f"Bearer {token}"}
        batch = httpx.post(
            f"{started['url']}/api/v1/batches", headers=headers, files={"files": ("hello.txt", b"hello local stack")}
        ).json()
        _wait_until_completed(started["url"], headers, batch)
        jobs = httpx.get(f"{started['url']}{batch['links']['results']}", headers=headers).json()["jobs"]
        assert jobs[0]["result"]["word_count"] == 3

        (layout.inbox / "dropped.txt").write_text("one two three four")
        deadline = time.monotonic() + 30
        while len(batches := httpx.get(f"{started['url']}/api/v1/batches", headers=headers).json()["batches"]) < 2:
            assert time.monotonic() < deadline, "the watcher did not submit the file dropped in the inbox"
            time.sleep(0.2)
        watched = next(listed for listed in batches if listed["id"] != batch["id"])
        _wait_until_completed(started["url"], headers, watched)
        assert _documents_succeeded(metrics_port) == 2
    finally:
        stopped = down(layout)
    assert stopped[:2] == ["autoscaler", "worker-0"], "the autoscaler stops before its workers are drained"
    assert sorted(stopped[2:]) == ["gateway-1", "gateway-2", "nginx", "prometheus", "scheduler", "watcher"]
    assert not layout.state_file.exists()
    for process in [*processes, *({"pid": pid} for pid in worker_pids)]:
        with pytest.raises(ProcessLookupError):
            os.killpg(process["pid"], 0)
    assert down(layout) == []

    # The worker instance's metrics directory is wiped at each start: no count survives a restart.
    up(layout, "127.0.0.1", _free_ports(free_port), environment)
    try:
        assert _documents_succeeded(metrics_port) == 0
    finally:
        down(layout)


def _documents_succeeded(metrics_port: int) -> float:
    """What worker instance 0 reports on its metrics port (it serves once its processes have booted)."""
    deadline = time.monotonic() + 30
    while True:
        try:
            text = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics").text
            break
        except httpx.TransportError:
            assert time.monotonic() < deadline, "the worker's metrics port never answered"
            time.sleep(0.2)
    samples = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }
    return samples.get(("conveyor_jobs_finished_total", (("pipeline", "document"), ("state", "SUCCEEDED"))), 0.0)


def test_up_keeps_the_development_credential_across_restarts(
    tmp_path: Path, service_environment: dict[str, str], free_port
) -> None:
    layout = StackLayout(root=REPOSITORY, state_dir=tmp_path / "var")
    environment = _local_defaults_only(service_environment)
    try:
        first = up(layout, "127.0.0.1", _free_ports(free_port), environment)
    finally:
        down(layout)
    try:
        second = up(layout, "127.0.0.1", _free_ports(free_port), environment)
    finally:
        down(layout)
    assert (second["client_id"], second["client_secret"]) == (first["client_id"], first["client_secret"])


def test_up_refuses_a_port_in_use(tmp_path: Path, service_environment: dict[str, str], free_port) -> None:
    layout = StackLayout(root=REPOSITORY, state_dir=tmp_path / "var")
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        ports = dataclasses.replace(_free_ports(free_port), prometheus=busy.getsockname()[1])
        with pytest.raises(StackError, match=f"{ports.prometheus} already in use"):
            up(layout, "127.0.0.1", ports, service_environment)
