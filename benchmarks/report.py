"""The benchmark's outputs: every figure as JSON, a Markdown table with a
met/missed line per target, and PNG plots, all in ``benchmarks/results/``."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402 - the backend is chosen first

README_START = "<!-- benchmark table: written by benchmarks/run.py -->"
README_END = "<!-- end of benchmark table -->"


def verdict(met: bool) -> str:
    return "**met**" if met else "**missed**"


def targets(results: dict) -> list[tuple[str, str, bool]]:
    """(target, measured, met) for every target of the harness."""
    figures = results["figures"]
    wanted = results["targets"]
    rows = []
    e2e = figures["end_to_end"][-1]
    rows.append((f"end-to-end documents/hour >= {wanted['docs_per_hour']}", f"{e2e['documents_per_hour']:,}", e2e["documents_per_hour"] >= wanted["docs_per_hour"]))
    engine_ratio = figures["ratios"]["conveyor_to_dramatiq"]
    rows.append((f"trivial jobs, Conveyor / raw Dramatiq >= {wanted['engine_ratio']}", f"{engine_ratio:.3f}", engine_ratio >= wanted["engine_ratio"]))
    celery_ratio = figures["ratios"]["conveyor_to_celery"]
    rows.append((f"trivial jobs, Conveyor / Celery >= {wanted['celery_ratio']}", f"{celery_ratio:.3f}", celery_ratio >= wanted["celery_ratio"]))
    read_ratio = figures["ratios"]["gateway_reads_to_bare"]
    rows.append((f"status reads, gateway / bare Starlette >= {wanted['read_ratio']}", f"{read_ratio:.3f}", read_ratio >= wanted["read_ratio"]))
    priority = figures["priority"]["premium_latency_p95_s"]
    rows.append((f"premium p95 under a {figures['priority']['free_backlog']:,}-job free backlog < {wanted['priority_p95_s']} s", f"{priority:.3f} s", priority < wanted["priority_p95_s"]))
    rss = figures["upload_memory"]["peak_rss_mb"]
    rows.append((f"gateway peak RSS during a {figures['upload_memory']['upload_mib']:.0f} MiB upload < {wanted['upload_rss_mb']} MB", f"{rss} MB", rss < wanted["upload_rss_mb"]))
    return rows


def markdown(results: dict) -> str:
    machine, figures = results["machine"], results["figures"]
    lines = [
        f"Run {results['started']} ({results['mode']}), {results['seconds']:.0f} s. Machine: {machine['cores']} cores "
        f"({machine['cpu']}), {machine['memory_gib']} GiB, Python {machine['python']}, RabbitMQ {machine['rabbitmq']}, "
        f"nginx {machine['nginx']}, SQLite {machine['sqlite']}, Dramatiq {machine['dramatiq']}, Celery {machine['celery']}. "
        f"Workers {figures['recommended']['workers']} (processes x threads) unless a row says otherwise.",
        "",
        "| target | measured | verdict |",
        "|---|---|---|",
        *(f"| {target} | {measured} | {verdict(met)} |" for target, measured, met in targets(results)),
        "",
        "End to end through nginx (2 gateway replicas, SQLite ledger), submit-to-done latency:",
        "",
        "| documents | clients | files/upload | seconds | docs/hour | p50 s | p95 s | p99 s |",
        "|---|---|---|---|---|---|---|---|",
        *(
            f"| {row['documents']} | {row['clients']} | {row['batch_size']} | {row['seconds']} | {row['documents_per_hour']:,} | "
            f"{row['latency_p50_s']} | {row['latency_p95_s']} | {row['latency_p99_s']} |"
            for row in figures["end_to_end"]
        ),
        "",
        "Engine ceiling and peer, same RabbitMQ, same worker shape:",
        "",
        "| what | messages | per second |",
        "|---|---|---|",
        f"| raw pika publish (one connection, persistent) | {figures['pika']['messages']} | {figures['pika']['publish_per_second']:,.0f} |",
        f"| raw pika consume + ack (prefetch 100) | {figures['pika']['messages']} | {figures['pika']['consume_per_second']:,.0f} |",
        f"| raw Dramatiq no-op actor, drain | {figures['dramatiq']['messages']} | {figures['dramatiq']['per_second']:,.0f} |",
        f"| Celery, same document analysis, drain (acks late, results in Redis) | {figures['celery']['messages']} | {figures['celery']['per_second']:,.0f} |",
        f"| Conveyor, trivial documents, drain (ledger, blobs) | {figures['trivial_drain']['documents']} | {figures['trivial_drain']['per_second']:,.0f} |",
        f"| Conveyor, trivial documents, end to end through nginx | {figures['trivial_end_to_end']['documents']} | {figures['trivial_end_to_end']['documents_per_second']:,.0f} |",
        "",
        "Gateway through nginx (`wrk -c {c}`, {s} s each):".format(c=results["parameters"]["connections"], s=results["parameters"]["wrk_seconds"]),
        "",
        "| endpoint | req/s | p50 ms | p99 ms |",
        "|---|---|---|---|",
        *(
            f"| {name} | {row['requests_per_second']:,.0f} | {row['p50_ms']:.2f} | {row['p99_ms']:.2f} |"
            for name, row in (
                ("bare Starlette `GET /api/v1/batches/{id}`", figures["gateway"]["bare_reads"]),
                ("gateway `GET /api/v1/batches/{id}` (token, rate limit in Redis)", figures["gateway"]["reads"]),
                ("gateway `POST /api/v1/batches`, one small file", figures["gateway"]["uploads"]),
            )
        ),
        "",
        "Tuning matrix (documents/second draining a mix of tiny and realistic documents):",
        "",
        _matrix(figures["matrix"]),
        "",
        f"Recommended: {figures['recommended']['workers']} per 2 cores ({figures['recommended']['per_second']} documents/s). "
        f"Priority run: {figures['priority']['premium_probes']} premium probes while {figures['priority']['free_backlog']:,} free-tier jobs "
        f"drained in {figures['priority']['backlog_drain_seconds']} s: p50 {figures['priority']['premium_latency_p50_s']} s, "
        f"p95 {figures['priority']['premium_latency_p95_s']} s, max {figures['priority']['premium_latency_max_s']} s.",
    ]
    if "profiles" in figures:
        lines += [
            "",
            "Where the time goes (py-spy on the running process: share of busy samples with the function on the stack,",
            "Conveyor's code and the libraries it calls per request or job):",
            "",
            *_profile("worker draining trivial documents", figures["profiles"]["worker_trivial_drain"]),
            "",
            *_profile("gateway serving status reads", figures["profiles"]["gateway_reads"]),
        ]
    return "\n".join(lines) + "\n"


def _profile(title: str, rows: list[dict]) -> list[str]:
    return [f"| {title} | share |", "|---|---|", *(f"| `{row['function']}` | {row['share']:.0%} |" for row in rows)]


def _matrix(cells: list[dict]) -> str:
    processes = sorted({cell["processes"] for cell in cells})
    threads = sorted({cell["threads"] for cell in cells})
    rate = {(cell["processes"], cell["threads"]): cell["per_second"] for cell in cells}
    header = "| processes \\ threads | " + " | ".join(str(t) for t in threads) + " |"
    rule = "|---|" + "---|" * len(threads)
    rows = [f"| {p} | " + " | ".join(f"{rate.get((p, t), '')}" for t in threads) + " |" for p in processes]
    return "\n".join([header, rule, *rows])


def plots(results: dict, directory: Path) -> list[str]:
    figures = results["figures"]
    written = []

    figure, axis = plt.subplots(figsize=(6, 4))
    runs = figures["end_to_end"]
    axis.plot([run["clients"] for run in runs], [run["documents_per_second"] for run in runs], marker="o")
    axis.set(xlabel="concurrent clients", ylabel="documents/second (end to end)", title="Throughput vs concurrency", xscale="log")
    axis.grid(alpha=0.3)
    written.append(_save(figure, directory / "throughput_vs_concurrency.png"))

    figure, axis = plt.subplots(figsize=(6, 4))
    latencies = runs[-1]["latencies_s"]
    axis.hist(latencies, bins=40)
    for label, key in (("p50", "latency_p50_s"), ("p95", "latency_p95_s"), ("p99", "latency_p99_s")):
        axis.axvline(runs[-1][key], linestyle="--", label=f"{label} {runs[-1][key]} s")
    axis.set(xlabel="submit-to-done latency (s)", ylabel="documents", title=f"Latency, {runs[-1]['clients']} clients")
    axis.legend()
    written.append(_save(figure, directory / "latency_distribution.png"))

    figure, axis = plt.subplots(figsize=(6, 4))
    priority = figures["priority"]
    axis.plot(priority["free_backlog_at_probe"], priority["premium_latencies_s"], marker="o", linestyle="")
    axis.axhline(results["targets"]["priority_p95_s"], color="red", linestyle="--", label="target for p95")
    axis.set(xlabel="free-tier jobs still open when submitted", ylabel="premium latency (s)", title="Priority under backlog")
    axis.invert_xaxis()
    axis.legend()
    written.append(_save(figure, directory / "priority_latency.png"))
    return written


def _save(figure, path: Path) -> str:
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path.name


def write(results: dict, directory: Path, readme: Path | None) -> str:
    """Write the JSON, the table and the plots; copy the table into ``readme`` between its markers."""
    directory.mkdir(parents=True, exist_ok=True)
    results["plots"] = plots(results, directory)
    (directory / "benchmark.json").write_text(json.dumps(results, indent=2) + "\n")
    table = markdown(results)
    (directory / "benchmark.md").write_text(table)
    text = readme.read_text() if readme is not None else ""
    if README_START in text and README_END in text:
        head, rest = text.split(README_START, 1)
        readme.write_text(f"{head}{README_START}\n{table}{README_END}{rest.split(README_END, 1)[1]}")
    return table
