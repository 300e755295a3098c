"""A gateway replica dies under load behind nginx: reads never fail, every
upload ends accepted exactly once (a clean error in between is retried with
the same Idempotency-Key), nothing is half-stored, and the replica, once
restarted, takes requests again."""

from __future__ import annotations

import os
import signal
import threading
import time
import uuid
from collections import Counter
from pathlib import Path
from urllib.parse import urlsplit

import httpx
from prometheus_client.parser import text_string_to_metric_families

from conveyor.processes import gateway_command, start_process, wait_until_ready
from process_waits import wait_for

FILES = {f"part-{n}.txt": (f"document {n} " * 20_000).encode() for n in range(3)}  # ~240 KB each: uploads take a while
RETRYABLE = {502, 503}


def requests_served(gateway_url: str) -> float:
    text = httpx.get(f"{gateway_url}/metrics").text
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "conveyor_gateway_requests_total" and sample.labels["route"] != "/metrics"
    )


def test_killing_a_replica_loses_no_read_and_no_upload(
    start_gateway, start_worker, start_nginx, make_client, service_environment: dict[str, str], tmp_path: Path
) -> None:
    shared = {"CONVEYOR_RATE_LIMIT_STORAGE": "redis://127.0.0.1:6379/0", "CONVEYOR_TRUSTED_PROXIES": "127.0.0.1/32"}
    doomed, survivor = start_gateway(**shared), start_gateway(**shared)
    start_worker()
    nginx = start_nginx([doomed.url, survivor.url], shield_rate="2000r/s", shield_burst=2000)  # one client address here
    token = survivor.token(make_client())
    headers = {"Authorization": f"Bearer {token}"}
    stop = threading.Event()
    reads: Counter[str] = Counter()
    clean_errors: list[tuple[int, str]] = []
    accepted: dict[str, str] = {}  # Idempotency-Key -> batch id

    def read_continuously() -> None:
        with httpx.Client(timeout=30) as client:
            while not stop.is_set():
                try:
                    reads[str(client.get(f"{nginx.url}/api/v1/batches", headers=headers).status_code)] += 1
                except httpx.HTTPError as error:
                    reads[type(error).__name__] += 1

    def upload_continuously() -> None:
        with httpx.Client(timeout=60) as client:
            while not stop.is_set():
                key = uuid.uuid4().hex
                for _ in range(20):
                    try:
                        response = client.post(
                            f"{nginx.url}/api/v1/batches",
                            headers={**headers, "Idempotency-Key": key},
                            files=[("files", (name, content)) for name, content in FILES.items()],
                        )
                    except httpx.TransportError as error:
                        clean_errors.append((0, type(error).__name__))
                        continue
                    if response.status_code == 202:
                        accepted[key] = response.json()["id"]
                        break
                    assert response.status_code in RETRYABLE, response.text
                    clean_errors.append((response.status_code, response.json()["error"]))
                    time.sleep(0.2)
                else:
                    raise AssertionError(f"upload {key} never accepted: {clean_errors[-3:]}")

    threads = [threading.Thread(target=read_continuously), *(threading.Thread(target=upload_continuously) for _ in range(2))]
    for thread in threads:
        thread.start()
    restarted = None
    try:
        time.sleep(3)
        os.killpg(doomed.process.pid, signal.SIGKILL)
        killed_at = len(accepted)
        time.sleep(4)
        port = urlsplit(doomed.url).port
        restarted = start_process(
            "gateway-restarted", gateway_command("127.0.0.1", port), {**service_environment, **shared},
            tmp_path / "gateway-restarted.log", tmp_path,
        )
        wait_until_ready(doomed.url, restarted)
        before = requests_served(doomed.url)
        wait_for(lambda: requests_served(doomed.url) > before + 5, 30, "the restarted replica serving through nginx", [restarted])
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=120)
        if restarted is not None:
            restarted.stop()

    assert set(reads) == {"200"}, f"failed reads: {reads}"
    assert len(accepted) > killed_at > 0, "uploads went on before and after the kill"
    for key, batch_id in accepted.items():
        batch = survivor.wait_for_batch(token, batch_id)
        assert (batch["status"], batch["counts"]["total"], batch["counts"]["succeeded"]) == ("COMPLETED", 3, 3), key
    listed = []
    cursor = None
    while True:
        page = survivor.get(token, f"/api/v1/batches?limit=100{f'&cursor={cursor}' if cursor else ''}")
        listed += page["batches"]
        if (cursor := page["next_cursor"]) is None:
            break
    assert sorted(batch["id"] for batch in listed) == sorted(accepted.values()), "one batch per key, nothing half-stored"
    print(f"reads {reads['200']}, uploads {len(accepted)}, clean errors retried: {Counter(clean_errors)}")
