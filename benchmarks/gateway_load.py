"""The gateway through nginx, against a bare Starlette endpoint behind the same
nginx: authenticated, rate-limited status reads and small uploads per second
(``wrk`` on loopback, p50/p99), and the gateway's peak RSS while one 1 GiB
upload streams through nginx."""

from __future__ import annotations

import re
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx

import profiles
from conveyor.nginx_config import NginxSite, nginx_command, write_standalone
from conveyor.processes import start_process, wait_until_ready
from platform_under_test import Deployment, free_port

BARE_APP = '''
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

async def batch(request):
    return JSONResponse({"id": request.path_params["batch_id"], "status": "PENDING"})

async def ready(request):
    return JSONResponse({"status": "ready"})

app = Starlette(routes=[Route("/api/v1/batches/{batch_id}", batch), Route("/api/v1/ready", ready)])
'''
UPLOAD_SCRIPT = '''
wrk.method = "POST"
wrk.body = "--{boundary}\\r\\nContent-Disposition: form-data; name=\\"files\\"; filename=\\"small.txt\\"\\r\\n\\r\\na small upload of a few words\\r\\n--{boundary}--\\r\\n"
wrk.headers["Content-Type"] = "multipart/form-data; boundary={boundary}"
'''


def wrk(url: str, seconds: int, connections: int, headers: dict[str, str], script: Path | None = None) -> dict[str, float]:
    """Requests per second and latency percentiles (ms) from ``wrk --latency``."""
    command = ["wrk", "--latency", "-t", "1", "-c", str(connections), "-d", f"{seconds}s"]
    for name, value in headers.items():
        command += ["-H", f"{name}: {value}"]
    if script is not None:
        command += ["-s", str(script)]
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


def _without_failures(measured: dict[str, float], what: str) -> dict[str, float]:
    if measured["non_2xx"]:
        raise RuntimeError(f"{measured['non_2xx']} {what} failed during the run: the figure would be meaningless")
    return measured


def bare_starlette(directory: Path, seconds: int, connections: int) -> dict[str, float]:
    """The bare endpoint under one uvicorn process, behind nginx configured like Conveyor's."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "bare_app.py").write_text(BARE_APP)
    port = free_port()
    command = [sys.executable, "-m", "uvicorn", "bare_app:app", "--port", str(port), "--no-access-log", "--log-level", "warning"]
    bare = start_process("bare", command, {}, directory / "bare.log", directory)
    nginx = None
    try:
        wait_until_ready(f"http://127.0.0.1:{port}", bare)
        http = free_port()
        site = NginxSite(
            gateways=[f"127.0.0.1:{port}"], max_body_bytes=2**20, http_listen=f"127.0.0.1:{http}",
            shield_rate="100000r/s", shield_burst=100000,
        )
        prefix = directory / "nginx"
        nginx = start_process("nginx", nginx_command(write_standalone(site, prefix), prefix), {}, prefix / "stdout.log", directory)
        wait_until_ready(f"http://127.0.0.1:{http}", nginx)
        return _without_failures(wrk(f"http://127.0.0.1:{http}/api/v1/batches/x", seconds, connections, {}), "bare reads")
    finally:
        if nginx is not None:
            nginx.stop()
        bare.stop()


def gateway_reads(deployment: Deployment, seconds: int, connections: int, profile: Path | None = None) -> dict[str, float]:
    """Status reads of one batch; ``profile``: py-spy samples the gateway meanwhile, into that file."""
    with httpx.Client() as client:
        batch_id = deployment.submit(client, {"a.txt": b"benchmark"})
    recording = profiles.start_recording(deployment.gateways[0].pid, max(1, seconds - 1), profile) if profile else None
    measured = wrk(f"{deployment.url}/api/v1/batches/{batch_id}", seconds, connections, deployment.headers())
    if recording is not None:
        recording.wait()
    return _without_failures(measured, "reads")


def gateway_uploads(deployment: Deployment, directory: Path, seconds: int, connections: int) -> dict[str, float]:
    """Small one-file uploads: each is recorded in the ledger and published to RabbitMQ."""
    script = directory / "upload.lua"
    script.write_text(UPLOAD_SCRIPT.replace("{boundary}", uuid.uuid4().hex))
    return _without_failures(wrk(f"{deployment.url}/api/v1/batches", seconds, connections, deployment.headers(), script), "uploads")


def upload_peak_rss(deployment: Deployment, upload_bytes: int) -> dict[str, float]:
    """One upload of ``upload_bytes`` through nginx to a single gateway replica; its peak RSS (``VmHWM``)."""
    boundary = uuid.uuid4().hex
    chunk = (b"conveyor streams uploads " * 2731)[:65536]

    def body() -> Iterator[bytes]:
        yield f'--{boundary}\r\nContent-Disposition: form-data; name="files"; filename="big.txt"\r\n\r\n'.encode()
        for _ in range(upload_bytes // len(chunk)):
            yield chunk
        yield f"\r\n--{boundary}--\r\n".encode()

    gateway = deployment.gateways[0]
    before = _peak_rss_mb(gateway.pid)
    started = time.monotonic()
    response = httpx.post(
        f"{deployment.url}/api/v1/batches",
        headers={**deployment.headers(), "Content-Type": f"multipart/form-data; boundary={boundary}"},
        content=body(),
        timeout=900,
    )
    elapsed = time.monotonic() - started
    if response.status_code != 202:
        raise RuntimeError(f"the large upload was refused: {response.status_code} {response.text}")
    return {
        "upload_mib": upload_bytes / 2**20,
        "peak_rss_mb_before": before,
        "peak_rss_mb": _peak_rss_mb(gateway.pid),
        "seconds": round(elapsed, 2),
        "mib_per_second": round(upload_bytes / 2**20 / elapsed, 1),
    }


def _peak_rss_mb(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    return round(int(re.search(r"VmHWM:\s+(\d+) kB", status).group(1)) / 1024, 1)
