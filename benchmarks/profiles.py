"""Where the time goes: py-spy samples a running process (and its children)
while a benchmark loads it, and the collapsed stacks are summed per function.

Each function's share is the fraction of samples in which it is on the stack
(inclusive), so a caller's share contains its callees'; idle threads waiting
for work are left out (their samples say nothing about a request's cost)."""

from __future__ import annotations

import collections
import shutil
import subprocess
import sys
from pathlib import Path

# Innermost frames that mean a thread is waiting (for work, a lock or the network), not working.
IDLE_LEAVES = {"wait", "select", "poll", "epoll", "sleep", "acquire", "get", "accept", "_wait_for_tstate_lock", "recv", "recv_into"}
# Where a cost can be attributed: Conveyor's own code, and the libraries it
# calls for each request or job (the frameworks' plumbing above them is shared
# by every sample and says nothing).
COST_CENTRES = (
    "conveyor/", "gateway/", "actors/", "jose/", "limits/", "redis/", "slowapi/", "prometheus_client/",
    "sqlalchemy/engine/", "sqlite3/", "pika/", "json/", "passlib/", "multipart/", "python_multipart/",
)


def py_spy() -> str:
    return shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))


def start_recording(pid: int, seconds: int, output: Path) -> subprocess.Popen:
    """Sample ``pid`` and its subprocesses for ``seconds`` (collapsed stacks to ``output``)."""
    return subprocess.Popen(
        [py_spy(), "record", "--pid", str(pid), "--subprocesses", "--duration", str(seconds), "--rate", "250",
         "--format", "raw", "--nonblocking", "--output", str(output)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )


def summarise(collapsed: Path, top: int = 18) -> list[dict[str, object]]:
    """The functions on the stack most often in busy samples: name (file:line), inclusive share."""
    inclusive: collections.Counter[str] = collections.Counter()
    busy = 0
    for line in collapsed.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        frames = stack.split(";")
        if not count.isdigit() or frames[-1].split(" (")[0].rsplit(".", 1)[-1] in IDLE_LEAVES:
            continue
        busy += int(count)
        for frame in set(_function(frame) for frame in frames):
            inclusive[frame] += int(count)
    rows = [
        {"function": frame, "share": round(count / busy, 3)}
        for frame, count in inclusive.most_common()
        if frame.split(" (", 1)[-1].startswith(COST_CENTRES)
    ]
    return rows[:top]


def _function(frame: str) -> str:
    """``name (path/to/module.py:line)`` → ``name (module path from the package)``, line dropped."""
    name, _, location = frame.partition(" (")
    path = location.rstrip(")").rsplit(":", 1)[0]
    for marker in ("site-packages/", "/work/", "lib/python3"):
        if marker in path:
            path = path.split(marker, 1)[1]
    return f"{name} ({path})"
