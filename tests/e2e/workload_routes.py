"""Where the test pipelines of ``workloads.py`` are published (importable
without registering their actors)."""

from __future__ import annotations

from conveyor.pipelines import PipelineRoute

QUEUE = "workloads"
ROUTES = {
    name: PipelineRoute(queue_name=QUEUE, actor_name=name)
    for name in ("sleep", "fail_once_then_succeed", "bad_input", "overrun_hard_limit", "stop_at_soft_limit")
}
