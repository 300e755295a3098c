"""The pipelines through real processes: a CSV quality batch with thresholds
and a signed webhook at the end, and a large document that fans out into
parts on the ``analysis`` queue and comes back as one job."""

from __future__ import annotations

import json
import time

import httpx

from conveyor.webhook_signing import verify
from webhook_receiver import Receiver

THRESHOLDS = {
    "columns": {
        "accuracy": {"warning": 0.9, "fail": 0.8, "direction": "higher_better"},
        "latency_ms": {"warning": 200, "fail": 500, "direction": "lower_better"},
    }
}
TABLE = b"model,accuracy,latency_ms\na,0.95,120\nb,0.85,150\nc,0.70,90\nd,0.99,n/a\n"


def test_a_csv_quality_batch_is_assessed_and_its_signed_webhook_arrives(gateway, start_worker, make_client) -> None:
    start_worker()
    token = gateway.token(make_client(tier="standard"))
    headers = {"Authorization": f"Bearer {token}"}
    with Receiver.running(failures=1) as receiver:
        response = httpx.post(
            f"{gateway.url}/api/v1/batches?pipeline=csv_quality",
            headers=headers,
            data={"thresholds": json.dumps(THRESHOLDS), "callback_url": receiver.url},
            files=[("files", ("models.csv", TABLE)), ("files", ("other.csv", b"model,accuracy\nz,0.5\ny,0.91\n"))],
        )
        assert response.status_code == 202, response.text
        batch_id = response.json()["id"]
        final = gateway.wait_for_batch(token, batch_id)
        deadline = time.monotonic() + 30  # the first delivery fails; the retry comes after a backoff
        while len(receiver.received) < 2:
            assert time.monotonic() < deadline, f"webhook not delivered: {receiver.received}"
            time.sleep(0.2)

    assert final["status"] == "COMPLETED"
    first, second = gateway.jobs(token, batch_id)
    assert [row["status"] for row in first["result"]["rows"]] == ["pass", "warn", "fail", "fail"]
    assert first["result"]["rows"][3]["metrics"]["latency_ms"]["status"] == "invalid"
    assert second["result"]["missing_columns"] == ["latency_ms"]
    report = gateway.get(token, f"/api/v1/batches/{batch_id}/report")
    assert report["quality"]["rows"] == 6
    assert report["quality"]["status_counts"] == {"pass": 1, "warn": 1, "fail": 4}

    secret = gateway.get(token, "/api/v1/webhook-secret")["secret"]
    body, signature = receiver.received[-1]
    verify(secret, signature, body)
    assert json.loads(body)["batch"]["status"] == "COMPLETED"
    delivered = gateway.get(token, f"/api/v1/batches/{batch_id}")
    assert delivered["webhook_state"] == "DELIVERED"


def test_a_large_document_fans_out_and_is_aggregated_into_one_job(
    start_gateway, start_worker, make_client, service_environment: dict[str, str]
) -> None:
    service_environment.update(CONVEYOR_CHUNK_SIZE="200", CONVEYOR_CHUNK_OVERLAP="20")
    gateway = start_gateway()
    start_worker(threads=4)
    token = gateway.token(make_client(tier="standard"))
    text = "\n".join(f"Paragraph {n}: conveyor belts carry parcels between warehouses." for n in range(600))
    accepted = gateway.upload(token, {"long.txt": text.encode(), "short.txt": b"a short note"})
    final = gateway.wait_for_batch(token, accepted["id"])
    assert final["status"] == "COMPLETED"
    assert final["counts"] == {"total": 2, "succeeded": 2, "failed": 0, "cancelled": 0, "pending": 0}
    long, short = gateway.jobs(token, accepted["id"])
    assert long["result"]["parts"] > 1 and "parts" not in short["result"]
    chunks = long["result"]["chunks"]
    assert [chunk["index"] for chunk in chunks] == list(range(len(chunks))) and len(chunks) > 64
    assert chunks[-1]["end"] == long["result"]["character_count"]
    assert {"conveyor", "parcels", "warehouses"} <= set(long["result"]["keywords"])
