"""Conveyor's own figures, through nginx: end-to-end throughput and latency
of a document mix, the drain rate of trivial jobs, the processes × threads
matrix, and premium latency while a free-tier backlog drains.

Every figure comes from the ledger's timestamps and the client's clock, the
same code for every run: a job's latency is from the moment its client began
the upload to the job's ``finished_at``."""

from __future__ import annotations

import math
import random
import threading
import time
from dataclasses import dataclass

from pathlib import Path

import httpx

import profiles
from conveyor.sample_documents import make_pdf
from platform_under_test import Deployment

WORDS = "batch ledger queue worker chunk metric replica token upload retry document pipeline priority".split()


def tiny_documents(count: int, prefix: str = "tiny") -> dict[str, bytes]:
    return {f"{prefix}-{number}.txt": f"document {number} of {prefix} has words".encode() for number in range(count)}


def realistic_documents(count: int, seed: int = 7) -> dict[str, bytes]:
    """A third each of ~20 KB texts, 500-row CSVs and 5-page PDFs."""
    generator = random.Random(seed)
    documents: dict[str, bytes] = {}
    for number in range(count):
        kind = number % 3
        if kind == 0:
            paragraphs = [" ".join(generator.choices(WORDS, k=120)) + "." for _ in range(25)]
            documents[f"report-{number}.txt"] = "\n\n".join(paragraphs).encode()
        elif kind == 1:
            rows = [f"{row},{generator.choice(WORDS)},{generator.random():.4f}" for row in range(500)]
            documents[f"table-{number}.csv"] = ("id,label,value\n" + "\n".join(rows) + "\n").encode()
        else:
            pages = [" ".join(generator.choices(WORDS, k=60)) for _ in range(5)]
            documents[f"scan-{number}.pdf"] = make_pdf(pages)
    return documents


def percentile(values: list[float], fraction: float) -> float:
    """The nearest-rank percentile: the smallest value at or above ``fraction`` of them."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


@dataclass
class Submitted:
    submit_times: dict[str, float]  # batch id -> epoch seconds when its upload began
    began: float
    ended: float

    @property
    def batch_ids(self) -> list[str]:
        return list(self.submit_times)


def submit_concurrently(
    deployment: Deployment, documents: dict[str, bytes], clients: int, batch_size: int, tier: str = "enterprise"
) -> Submitted:
    """Upload ``documents`` in batches of ``batch_size`` from ``clients`` threads, each with its own connection."""
    names = list(documents)
    batches = [names[start : start + batch_size] for start in range(0, len(names), batch_size)]
    pending = list(enumerate(batches))
    lock = threading.Lock()
    submit_times: dict[str, float] = {}
    errors: list[BaseException] = []

    def client_loop() -> None:
        with httpx.Client(timeout=300) as client:
            while True:
                with lock:
                    if not pending or errors:
                        return
                    _, batch = pending.pop(0)
                began = time.time()
                try:
                    batch_id = deployment.submit(client, {name: documents[name] for name in batch}, tier)
                except BaseException as error:  # noqa: BLE001 - reported below
                    errors.append(error)
                    return
                with lock:
                    submit_times[batch_id] = began

    began = time.time()
    threads = [threading.Thread(target=client_loop) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return Submitted(submit_times, began, time.time())


def _finished_jobs(deployment: Deployment, submitted: Submitted) -> list[dict]:
    jobs = deployment.jobs(submitted.batch_ids)
    failed = [job for job in jobs if job["state"] != "SUCCEEDED"]
    if failed:
        raise RuntimeError(f"{len(failed)} jobs did not succeed, e.g. {failed[0]}")
    return jobs


def end_to_end(
    deployment: Deployment, documents: dict[str, bytes], clients: int, batch_size: int, processes: int, threads: int
) -> dict[str, object]:
    """Workers running, ``clients`` submitting: documents per hour from the first
    upload to the last job done, and submit-to-done latency percentiles."""
    deployment.start_workers(processes, threads)
    time.sleep(3)  # the workers boot before the clock starts
    submitted = submit_concurrently(deployment, documents, clients, batch_size)
    deployment.wait_until_done(timeout=1800, batch_ids=submitted.batch_ids)
    deployment.stop_workers()
    all_jobs = _finished_jobs(deployment, submitted)
    latencies = [job["finished"] - submitted.submit_times[job["batch_id"]] for job in all_jobs]
    wall = max(job["finished"] for job in all_jobs) - submitted.began
    return {
        "documents": len(all_jobs),
        "clients": clients,
        "batch_size": batch_size,
        "workers": f"{processes}x{threads}",
        "seconds": round(wall, 2),
        "documents_per_second": round(len(all_jobs) / wall, 2),
        "documents_per_hour": round(len(all_jobs) / wall * 3600),
        "latency_p50_s": round(percentile(latencies, 0.50), 3),
        "latency_p95_s": round(percentile(latencies, 0.95), 3),
        "latency_p99_s": round(percentile(latencies, 0.99), 3),
        "latencies_s": [round(value, 3) for value in latencies],
    }


def drain(
    deployment: Deployment, documents: dict[str, bytes], processes: int, threads: int,
    batch_size: int = 500, profile: Path | None = None,
) -> dict[str, object]:
    """Queue ``documents`` with no worker running, then start ``processes`` x
    ``threads`` and time the drain from the first job started to the last done
    (``profile``: py-spy samples the worker group meanwhile, into that file)."""
    deployment.stop_workers()
    submitted = submit_concurrently(deployment, documents, clients=2, batch_size=batch_size)
    deployment.start_workers(processes, threads)
    recording = None
    if profile is not None:
        while deployment.open_jobs(submitted.batch_ids) == len(documents):
            time.sleep(0.05)  # sample the work, not the workers' start-up
        recording = profiles.start_recording(deployment.workers[0].pid, 6, profile)
    deployment.wait_until_done(timeout=1800, batch_ids=submitted.batch_ids)
    if recording is not None:
        recording.wait()
    deployment.stop_workers()
    jobs = _finished_jobs(deployment, submitted)
    seconds = max(job["finished"] for job in jobs) - min(job["started"] for job in jobs)
    return {
        "documents": len(jobs),
        "workers": f"{processes}x{threads}",
        "seconds": round(seconds, 2),
        "per_second": round(len(jobs) / seconds, 2),
        "attempts_above_one": sum(1 for job in jobs if job["attempts"] != 1),
    }


def priority_under_backlog(
    deployment: Deployment, backlog: int, probes: int, processes: int, threads: int
) -> dict[str, object]:
    """``backlog`` free-tier jobs queued, then the workers start and a premium
    single-document batch is submitted every 0.25 s while the backlog drains."""
    deployment.stop_workers()
    free = submit_concurrently(deployment, tiny_documents(backlog, "free"), clients=2, batch_size=1000, tier="free")
    deployment.start_workers(processes, threads)
    probe_times: dict[str, float] = {}
    backlog_at_probe: list[int] = []
    with httpx.Client(timeout=60) as client:
        for number in range(probes):
            remaining = deployment.open_jobs(free.batch_ids)
            if not remaining:
                break
            backlog_at_probe.append(remaining)
            began = time.time()
            probe_times[deployment.submit(client, {f"premium-{number}.txt": b"premium work, please"}, "premium")] = began
            time.sleep(0.25)
    deployment.wait_until_done(timeout=1800, batch_ids=free.batch_ids + list(probe_times))
    deployment.stop_workers()
    latencies = [job["finished"] - probe_times[job["batch_id"]] for job in deployment.jobs(list(probe_times))]
    free_jobs = deployment.jobs(free.batch_ids)
    return {
        "free_backlog": backlog,
        "premium_probes": len(latencies),
        "workers": f"{processes}x{threads}",
        "premium_latency_p50_s": round(percentile(latencies, 0.50), 3),
        "premium_latency_p95_s": round(percentile(latencies, 0.95), 3),
        "premium_latency_max_s": round(max(latencies), 3) if latencies else None,
        "backlog_drain_seconds": round(max(job["finished"] for job in free_jobs) - min(job["started"] for job in free_jobs), 2),
        "premium_latencies_s": [round(value, 3) for value in latencies],
        "free_backlog_at_probe": backlog_at_probe,
    }
