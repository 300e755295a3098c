#!/usr/bin/env python3
"""Gateway benchmarks, measured against a baseline in the same run.

1. Authenticated, rate-limited ``GET /api/v1/batches/{id}`` against a bare
   Starlette endpoint, both under one uvicorn process, loaded by ``wrk`` on
   loopback; the ratio of requests per second is the figure (target >= 0.3),
   with rate-limit counters in memory and in Redis.
2. Peak RSS (``VmHWM``) of a gateway process while it receives one 1 GiB
   upload, streamed by the client (target < 150 MB).

Writes ``benchmarks/results/gateway.json`` and ``gateway.md``.

    python benchmarks/gateway.py [--seconds 10] [--connections 32] [--upload-mib 1024]
"""

from __future__ import annotations

import argparse
import json
import os
import platform as host_platform
import re
import secrets
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from conveyor.credentials import register_client
from conveyor.ledger import Ledger, create_ledger_engine
from conveyor.ledger.migrate import upgrade
from conveyor.processes import ManagedProcess, gateway_command, start_process, wait_until_ready
from conveyor.settings import Settings
from conveyor.tiers import DEFAULT_TIERS_FILE, Tiers

RESULTS = Path(__file__).resolve().parent / "results"
REPOSITORY = Path(__file__).resolve().parent.parent
READ_RATIO_TARGET = 0.3
UPLOAD_RSS_TARGET_MB = 150
BARE_APP = '''
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

async def batch(request):
    return JSONResponse({"id": request.path_params["batch_id"], "status": "PENDING"})

app = Starlette(routes=[Route("/api/v1/batches/{batch_id}", batch)])
'''


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def vhost() -> Iterator[str]:
    name = f"conveyor-bench-{uuid.uuid4().hex[:8]}"
    subprocess.run(["rabbitmqctl", "--quiet", "add_vhost", name], check=True, capture_output=True)
    subprocess.run(["rabbitmqctl", "--quiet", "set_permissions", "-p", name, "guest", ".*", ".*", ".*"], check=True, capture_output=True)
    try:
        yield f"amqp://guest:guest@127.0.0.1:5672/{name}"
    finally:
        subprocess.run(["rabbitmqctl", "--quiet", "delete_vhost", name], capture_output=True)


def benchmark_tiers(path: Path, max_file_bytes: int) -> Path:
    """The shipped tiers with limits raised out of the way (still checked on every request)."""
    text = DEFAULT_TIERS_FILE.read_text()
    text = re.sub(r'(upload|read)_rate = "[^"]*"', r'\1_rate = "100000000/minute"', text)
    text = re.sub(r"max_file_bytes = [\d_]+", f"max_file_bytes = {max_file_bytes}", text)
    text = re.sub(r"max_pending_jobs = [\d_]+", "max_pending_jobs = 100000000", text)
    text = re.sub(r'(auth|probe)_rate = "[^"]*"', r'\1_rate = "100000000/minute"', text)
    path.write_text(text)
    return path


@contextmanager
def gateway(directory: Path, broker_url: str, storage: str, max_file_bytes: int) -> Iterator[tuple[ManagedProcess, str, dict]]:
    environment = {name: value for name, value in os.environ.items() if not name.startswith("CONVEYOR_")}
    environment.update(
        CONVEYOR_DATABASE_URL=f"sqlite:///{directory / 'ledger.db'}",
        CONVEYOR_BLOB_DIR=str(directory / "blobs"),
        CONVEYOR_BROKER_URL=broker_url,
        CONVEYOR_JWT_SECRET=secrets.token_urlsafe(48),
        CONVEYOR_TIERS_FILE=str(benchmark_tiers(directory / "tiers.toml", max_file_bytes)),
        CONVEYOR_RATE_LIMIT_STORAGE=storage,
        CONVEYOR_RATE_LIMIT_PREFIX=f"bench-{uuid.uuid4().hex[:8]}",
        CONVEYOR_MAX_READY_MESSAGES="100000000",
        CONVEYOR_LOG_LEVEL="WARNING",
    )
    settings = Settings.from_env(environment)
    engine = create_ledger_engine(settings.database_url)
    upgrade(engine)
    credential = register_client(Ledger(engine), Tiers.load(settings.tiers_file, settings.max_priority), "bench", "enterprise")
    engine.dispose()
    port = free_port()
    process = start_process("gateway", gateway_command("127.0.0.1", port), environment, directory / "gateway.log", REPOSITORY)
    try:
        url = f"http://127.0.0.1:{port}"
        wait_until_ready(url, process)
        token = httpx.post(
            f"{url}/api/v1/auth/token",
            data={"grant_type": "client_credentials", "client_id": credential.client.id, "client_secret": credential.secret},
        ).json()["access_token"]
        yield process, url, {"Authorization": f"Bearer {token}"}
    finally:
        process.stop()


def wrk(url: str, seconds: int, connections: int, headers: dict[str, str]) -> dict[str, float]:
    """Requests per second and latency percentiles (ms) from ``wrk --latency``."""
    command = ["wrk", "--latency", "-t", "1", "-c", str(connections), "-d", f"{seconds}s"]
    for name, value in headers.items():
        command += ["-H", f"{name}: {value}"]
    output = subprocess.run([*command, url], check=True, capture_output=True, text=True).stdout
    latency = {p: _milliseconds(re.search(rf"^\s+{p}%\s+(\S+)", output, re.MULTILINE).group(1)) for p in ("50", "99")}
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    return {
        "requests_per_second": float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1)),
        "p50_ms": latency["50"],
        "p99_ms": latency["99"],
        "non_2xx": int(non_2xx.group(1)) if non_2xx else 0,
    }


def _milliseconds(value: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", value).groups()
    return float(number) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def bare_starlette(directory: Path, seconds: int, connections: int) -> dict[str, float]:
    (directory / "bare_app.py").write_text(BARE_APP)
    port = free_port()
    command = [sys.executable, "-m", "uvicorn", "bare_app:app", "--port", str(port), "--no-access-log", "--log-level", "warning"]
    process = start_process("bare", command, dict(os.environ), directory / "bare.log", directory)
    try:
        for _ in range(100):
            try:
                httpx.get(f"http://127.0.0.1:{port}/api/v1/batches/x")
                break
            except httpx.HTTPError:
                time.sleep(0.1)
        return wrk(f"http://127.0.0.1:{port}/api/v1/batches/x", seconds, connections, {})
    finally:
        process.stop()


def gateway_reads(directory: Path, broker_url: str, storage: str, seconds: int, connections: int) -> dict[str, float]:
    with gateway(directory, broker_url, storage, 1024) as (_, url, headers):
        batch = httpx.post(f"{url}/api/v1/batches", headers=headers, files={"files": ("a.txt", b"benchmark")}).json()
        measured = wrk(f"{url}{batch['links']['self']}", seconds, connections, headers)
        if measured["non_2xx"]:
            raise RuntimeError(f"{measured['non_2xx']} reads failed during the run: the figure would be meaningless")
        return measured


def upload_peak_rss(directory: Path, broker_url: str, upload_bytes: int) -> dict[str, float]:
    boundary = uuid.uuid4().hex
    chunk = (b"conveyor streams uploads " * 2731)[:65536]

    def body() -> Iterator[bytes]:
        yield f'--{boundary}\r\nContent-Disposition: form-data; name="files"; filename="big.txt"\r\n\r\n'.encode()
        for _ in range(upload_bytes // len(chunk)):
            yield chunk
        yield f"\r\n--{boundary}--\r\n".encode()

    with gateway(directory, broker_url, "memory://", upload_bytes + 1) as (process, url, headers):
        before = _peak_rss_mb(process.pid)
        started = time.monotonic()
        response = httpx.post(
            f"{url}/api/v1/batches",
            headers={**headers, "Content-Type": f"multipart/form-data; boundary={boundary}"},
            content=body(),
            timeout=600,
        )
        elapsed = time.monotonic() - started
        response.raise_for_status()
        return {
            "upload_mib": upload_bytes / 2**20,
            "peak_rss_mb_before": before,
            "peak_rss_mb": _peak_rss_mb(process.pid),
            "seconds": round(elapsed, 2),
            "mib_per_second": round(upload_bytes / 2**20 / elapsed, 1),
        }


def _peak_rss_mb(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    return round(int(re.search(r"VmHWM:\s+(\d+) kB", status).group(1)) / 1024, 1)


def markdown(results: dict) -> str:
    reads, bare = results["reads"], results["bare_starlette"]
    lines = [
        f"Machine: {results['machine']['cores']} cores, {results['machine']['memory_gib']} GiB, Python {results['machine']['python']}, "
        f"wrk -c {results['connections']} for {results['seconds']} s per row.",
        "",
        "| endpoint | req/s | p50 ms | p99 ms | ratio to bare | target |",
        "|---|---|---|---|---|---|",
        f"| bare Starlette `GET /api/v1/batches/{{id}}` | {bare['requests_per_second']:.0f} | {bare['p50_ms']:.2f} | {bare['p99_ms']:.2f} | 1.00 | |",
    ]
    for storage, row in reads.items():
        ratio = row["requests_per_second"] / bare["requests_per_second"]
        verdict = "met" if ratio >= READ_RATIO_TARGET else "missed"
        lines.append(
            f"| gateway, authenticated + rate-limited ({storage}) | {row['requests_per_second']:.0f} | {row['p50_ms']:.2f} | "
            f"{row['p99_ms']:.2f} | {ratio:.2f} | >= {READ_RATIO_TARGET}: {verdict} |"
        )
    upload = results["upload"]
    verdict = "met" if upload["peak_rss_mb"] < UPLOAD_RSS_TARGET_MB else "missed"
    lines += [
        "",
        f"1 upload of {upload['upload_mib']:.0f} MiB: gateway peak RSS {upload['peak_rss_mb']} MB "
        f"(before: {upload['peak_rss_mb_before']} MB), {upload['mib_per_second']} MiB/s; target < {UPLOAD_RSS_TARGET_MB} MB: {verdict}.",
    ]
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--upload-mib", type=int, default=1024)
    arguments = parser.parse_args()
    RESULTS.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="conveyor-bench-") as temporary, vhost() as broker_url:
        directory = Path(temporary)
        storages = {"memory": "memory://", "redis": "redis://127.0.0.1:6379/0"}
        for name in [*storages, "upload"]:
            (directory / name).mkdir()
        results = {
            "machine": {
                "cores": os.cpu_count(),
                "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
                "python": host_platform.python_version(),
            },
            "seconds": arguments.seconds,
            "connections": arguments.connections,
            "bare_starlette": bare_starlette(directory, arguments.seconds, arguments.connections),
            "reads": {
                name: gateway_reads(directory / name, broker_url, storage, arguments.seconds, arguments.connections)
                for name, storage in storages.items()
            },
            "upload": upload_peak_rss(directory / "upload", broker_url, arguments.upload_mib * 2**20),
        }
    (RESULTS / "gateway.json").write_text(json.dumps(results, indent=2) + "\n")
    table = markdown(results)
    (RESULTS / "gateway.md").write_text(table)
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
