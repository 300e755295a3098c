#!/usr/bin/env python3
"""Conveyor's benchmark: throughput against a target, the engine's ceiling and
Celery in the same run, the gateway against bare Starlette, a processes x
threads matrix, priority under backlog and upload memory.

    python benchmarks/run.py [--quick] [--target-docs-per-hour 170]

Writes benchmarks/results/benchmark.json (every figure and the machine),
benchmark.md (the table, also copied into the README) and PNG plots.
--quick runs smaller counts (under two minutes on 2 cores); the committed
results come from a full run.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import engine
import gateway_load
import profiles
import report
import throughput
from platform_under_test import deployment, machine, vhost

RESULTS = Path(__file__).resolve().parent / "results"
README = Path(__file__).resolve().parent.parent / "README.md"

FULL = {
    "matrix_processes": [1, 2], "matrix_threads": [1, 2, 4, 8], "matrix_tiny": 400, "matrix_realistic": 200,
    "e2e_tiny": 1500, "e2e_realistic": 300, "concurrency": [1, 4, 16], "files_per_upload": 10,
    "trivial": 3000, "pika": 20000, "dramatiq": 20000, "celery": 5000,
    "backlog": 5000, "probes": 60, "wrk_seconds": 10, "connections": 32, "upload_mib": 1024, "profile": True,
}
QUICK = {
    "matrix_processes": [1, 2], "matrix_threads": [2], "matrix_tiny": 150, "matrix_realistic": 50,
    "e2e_tiny": 300, "e2e_realistic": 60, "concurrency": [1, 8], "files_per_upload": 10,
    "trivial": 600, "pika": 5000, "dramatiq": 5000, "celery": 500,
    "backlog": 1000, "probes": 20, "wrk_seconds": 3, "connections": 16, "upload_mib": 256, "profile": False,
}


def log(message: str) -> None:
    print(f"[{datetime.now().strftime('%H:%M:%S')}] {message}", flush=True)


def measure(parameters: dict, directory: Path) -> dict:
    figures: dict = {}
    with vhost() as broker_url:
        log("raw pika publish and consume")
        figures["pika"] = engine.pika_rates(broker_url, parameters["pika"])
    with vhost() as broker_url, deployment(directory / "conveyor", broker_url) as conveyor:
        log("tuning matrix")
        mix = {**throughput.tiny_documents(parameters["matrix_tiny"], "matrix"), **throughput.realistic_documents(parameters["matrix_realistic"])}
        figures["matrix"] = []
        for processes in parameters["matrix_processes"]:
            for threads in parameters["matrix_threads"]:
                cell = throughput.drain(conveyor, {f"{processes}x{threads}-{name}": content for name, content in mix.items()}, processes, threads)
                figures["matrix"].append({"processes": processes, "threads": threads, **cell})
                log(f"  {processes} x {threads}: {cell['per_second']} documents/s")
        best = max(figures["matrix"], key=lambda cell: cell["per_second"])
        processes, threads = best["processes"], best["threads"]
        figures["recommended"] = {"workers": f"{processes}x{threads}", "per_second": best["per_second"]}

        log(f"trivial documents: drain, then end to end, {processes} x {threads}")
        figures["trivial_drain"] = throughput.drain(
            conveyor, throughput.tiny_documents(parameters["trivial"], "trivial"), processes, threads,
            profile=directory / "worker.profile" if parameters["profile"] else None,
        )
        trivial = throughput.end_to_end(
            conveyor, throughput.tiny_documents(parameters["trivial"], "trivial-e2e"), clients=4, batch_size=100,
            processes=processes, threads=threads,
        )
        trivial.pop("latencies_s")
        figures["trivial_end_to_end"] = trivial

        log("end to end, document mix, by concurrency")
        figures["end_to_end"] = []
        for clients in parameters["concurrency"]:
            documents = {
                **throughput.tiny_documents(parameters["e2e_tiny"], f"e2e-{clients}"),
                **{f"c{clients}-{name}": content for name, content in throughput.realistic_documents(parameters["e2e_realistic"]).items()},
            }
            run = throughput.end_to_end(conveyor, documents, clients, parameters["files_per_upload"], processes, threads)
            figures["end_to_end"].append(run)
            log(f"  {clients} clients: {run['documents_per_hour']:,} documents/hour, p95 {run['latency_p95_s']} s")

        log("priority under a free-tier backlog")
        figures["priority"] = throughput.priority_under_backlog(conveyor, parameters["backlog"], parameters["probes"], processes, threads)

    with vhost() as broker_url:
        log(f"raw Dramatiq no-op drain, {processes} x {threads}")
        figures["dramatiq"] = engine.dramatiq_noop_drain(broker_url, parameters["dramatiq"], processes, threads, directory)
    with vhost() as broker_url:
        log(f"Celery drain, {processes} x {threads}")
        figures["celery"] = engine.celery_drain(broker_url, parameters["celery"], processes, threads, directory)

    log("gateway through nginx")
    figures["gateway"] = {"bare_reads": gateway_load.bare_starlette(directory / "bare", parameters["wrk_seconds"], parameters["connections"])}
    with vhost() as broker_url, deployment(directory / "gateway", broker_url, replicas=1) as single:
        figures["gateway"]["reads"] = gateway_load.gateway_reads(
            single, parameters["wrk_seconds"], parameters["connections"],
            profile=directory / "gateway.profile" if parameters["profile"] else None,
        )
        figures["gateway"]["uploads"] = gateway_load.gateway_uploads(single, directory, parameters["wrk_seconds"], parameters["connections"])
        log(f"one {parameters['upload_mib']} MiB upload")
        figures["upload_memory"] = gateway_load.upload_peak_rss(single, parameters["upload_mib"] * 2**20)

    if parameters["profile"]:
        figures["profiles"] = {
            "worker_trivial_drain": profiles.summarise(directory / "worker.profile"),
            "gateway_reads": profiles.summarise(directory / "gateway.profile"),
        }
    trivial_rate = figures["trivial_end_to_end"]["documents_per_second"]
    figures["ratios"] = {
        "conveyor_to_dramatiq": round(trivial_rate / figures["dramatiq"]["per_second"], 4),
        "conveyor_to_celery": round(trivial_rate / figures["celery"]["per_second"], 4),
        "gateway_reads_to_bare": round(
            figures["gateway"]["reads"]["requests_per_second"] / figures["gateway"]["bare_reads"]["requests_per_second"], 4
        ),
    }
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smaller counts, under two minutes")
    parser.add_argument("--target-docs-per-hour", type=float, default=170.0)
    parser.add_argument("--results", type=Path, default=RESULTS, help="where to write (default benchmarks/results)")
    arguments = parser.parse_args()
    parameters = QUICK if arguments.quick else FULL
    started = time.monotonic()
    results = {
        "started": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "mode": "quick" if arguments.quick else "full",
        "machine": machine(),
        "parameters": parameters,
        "targets": {
            "docs_per_hour": arguments.target_docs_per_hour, "engine_ratio": 0.6, "celery_ratio": 2.0,
            "read_ratio": 0.3, "priority_p95_s": 2.0, "upload_rss_mb": 150,
        },
    }
    with tempfile.TemporaryDirectory(prefix="conveyor-bench-") as temporary:
        results["figures"] = measure(parameters, Path(temporary))
    results["seconds"] = round(time.monotonic() - started, 1)
    table = report.write(results, arguments.results, README if arguments.results == RESULTS else None)
    print(table)
    missed = [target for target, _, met in report.targets(results) if not met]
    print(f"{len(missed)} of {len(report.targets(results))} targets missed" + (": " + "; ".join(missed) if missed else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
