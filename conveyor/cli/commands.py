"""The ``conveyor`` command line (click), with rich's progress bars and tables."""

from __future__ import annotations

import json
import runpy
import sys
import time
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Any

import click
import httpx
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TransferSpeedColumn
from rich.table import Column, Table

from conveyor.cli import profiles
from conveyor.cli.api import Api, ApiFailure, issue_token
from conveyor.cli.uploads import MultipartBody, NoFiles, collect

FINAL_STATUSES = {"COMPLETED", "FAILED", "PARTIALLY_COMPLETED", "CANCELLED"}
EXIT_REFUSED, EXIT_USAGE, EXIT_BATCH_NOT_COMPLETED, EXIT_UNAVAILABLE, EXIT_AUTH = 1, 2, 3, 4, 5
PLATFORM_DIR = Path(__file__).resolve().parents[2] / "platform"
POLL_SECONDS = 0.5

errors = Console(stderr=True)


class Context:
    def __init__(self, profile: str, as_json: bool) -> None:
        self.profile_name = profile
        self.as_json = as_json
        self.console = Console()

    def api(self) -> Api:
        known = profiles.load_all()
        if self.profile_name not in known:
            raise click.exceptions.Exit(_fail(EXIT_AUTH, f"profile {self.profile_name!r} is not logged in: run `conveyor login` first"))
        return Api(self.profile_name, known[self.profile_name], notify=lambda text: errors.print(f"[yellow]{text}[/]"))

    def emit(self, value: Any, render: Callable[[Any], None]) -> None:
        if self.as_json:
            click.echo(json.dumps(value, indent=2))
        else:
            render(value)


def _fail(code: int, message: str) -> int:
    errors.print(f"[red]error:[/] {message}")
    return code


def api_errors(command: Callable) -> Callable:
    """Turn an :class:`ApiFailure` into its message and exit code."""

    @wraps(command)
    def run(*arguments: Any, **options: Any) -> Any:
        try:
            return command(*arguments, **options)
        except ApiFailure as failure:
            if failure.status == 0 or failure.status >= 500:
                code = EXIT_UNAVAILABLE
            elif failure.status in (401, 403):
                code = EXIT_AUTH
            else:
                code = EXIT_REFUSED
            raise click.exceptions.Exit(_fail(code, str(failure))) from None

    return run


HELP = """Conveyor from a terminal: submit and follow batches, fetch results and
reports; operators manage clients, workers and queues.

Log in once per profile (conveyor login --url ... --client-id ...).  Exit
codes: 0 done; 1 the API refused the request (4xx); 2 bad usage; 3 the batch
ended other than COMPLETED (submit, watch); 4 the gateway was unreachable or
failing (5xx); 5 not logged in, or the credential was refused."""


@click.group(help=HELP)
@click.option("--profile", envvar="CONVEYOR_CLI_PROFILE", default="default", show_default=True, help="which saved login to use")
@click.option("--json", "as_json", is_flag=True, help="print JSON for scripts instead of tables")
@click.pass_context
def cli(context: click.Context, profile: str, as_json: bool) -> None:
    context.obj = Context(profile, as_json)


pass_context = click.make_pass_decorator(Context)


# --- client ---------------------------------------------------------------------


@cli.command()
@click.option("--url", required=True, help="the API, e.g. http://127.0.0.1:8000")
@click.option("--client-id", required=True)
@click.option("--client-secret", prompt=True, hide_input=True)
@pass_context
@api_errors
def login(context: Context, url: str, client_id: str, client_secret: str) -> None:
    """Check a client credential and save it (and its token) under the profile."""
    url = url.rstrip("/")
    with httpx.Client(timeout=30) as client:
        token, expires_at = issue_token(client, url, client_id, client_secret)
    profiles.save(context.profile_name, profiles.Profile(url, client_id, client_secret, token, expires_at))
    context.emit(
        {"profile": context.profile_name, "url": url, "client_id": client_id},
        lambda value: context.console.print(f"logged in to {url} as {client_id} (profile {context.profile_name})"),
    )


@cli.command()
@click.argument("paths", nargs=-1, required=True)
@click.option("--pipeline", help="documents (default), analysis or csv_quality")
@click.option("--thresholds", type=click.Path(exists=True, dir_okay=False, path_type=Path), help="CSV quality thresholds (JSON); implies --pipeline csv_quality")
@click.option("--callback-url", help="webhook called when the batch ends")
@click.option("--idempotency-key", help="makes a retried submit return the first batch instead of a new one")
@click.option("--split", is_flag=True, help="more files than your tier allows in one batch: send several batches")
@click.option("--no-wait", is_flag=True, help="return once the batch is accepted")
@pass_context
@api_errors
def submit(context: Context, paths: tuple[str, ...], pipeline: str | None, thresholds: Path | None,
           callback_url: str | None, idempotency_key: str | None, split: bool, no_wait: bool) -> None:
    """Upload files, folders and globs as one batch (or, with --split, as many as
    the tier needs), then follow it to its end.  Files are checked against the
    tier's limits before anything is sent."""
    try:
        files = collect(paths)
    except NoFiles as error:
        raise click.exceptions.Exit(_fail(EXIT_USAGE, str(error))) from None
    api = context.api()
    limits = api.json("GET", "/api/v1/limits")
    too_big = [path for path in files if path.stat().st_size > limits["max_file_bytes"]]
    if too_big:
        names = ", ".join(str(path) for path in too_big[:5])
        raise click.exceptions.Exit(
            _fail(EXIT_USAGE, f"larger than the {limits['tier']} tier's {limits['max_file_bytes']} bytes per file: {names}")
        )
    per_batch = limits["max_files_per_batch"]
    if len(files) > per_batch and not split:
        raise click.exceptions.Exit(
            _fail(EXIT_USAGE, f"{len(files)} files, the {limits['tier']} tier takes {per_batch} per batch: pass --split")
        )
    fields = {}
    if thresholds is not None:
        fields["thresholds"] = thresholds.read_text()
        pipeline = pipeline or "csv_quality"
    if callback_url:
        fields["callback_url"] = callback_url
    parts = [files[start : start + per_batch] for start in range(0, len(files), per_batch)]
    accepted = []
    for number, part in enumerate(parts, 1):
        key = idempotency_key and (idempotency_key if len(parts) == 1 else f"{idempotency_key}-{number}")
        accepted.append(_upload(context, api, MultipartBody.of(part, fields), pipeline, key))
    if no_wait:
        context.emit(_one_or_all(accepted), lambda value: context.console.print("\n".join(batch["id"] for batch in accepted)))
        return
    ended = [_follow(context, api, batch["id"]) for batch in accepted]

    def render(value: object) -> None:
        for batch in ended:
            _print_batch(context, batch)

    context.emit(_one_or_all(ended), render)
    if any(batch["status"] != "COMPLETED" for batch in ended):
        raise click.exceptions.Exit(EXIT_BATCH_NOT_COMPLETED)


def _one_or_all(batches: list[dict]) -> dict | list[dict]:
    """What --json prints: the batch, or the list of them when --split made several."""
    return batches[0] if len(batches) == 1 else batches


def _upload(context: Context, api: Api, body: MultipartBody, pipeline: str | None, idempotency_key: str | None) -> dict:
    """One batch, with a progress bar by bytes; the body is streamed afresh if a 429 makes us send it again."""
    headers = {"Content-Type": body.content_type, "Content-Length": str(len(body))}
    if idempotency_key:
        headers["Idempotency-Key"] = idempotency_key
    with Progress(
        TextColumn("uploading {task.fields[count]} files"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
        console=errors, disable=context.as_json,
    ) as progress:
        task = progress.add_task("upload", total=body.file_bytes, count=len(body.files))

        def fresh_body() -> dict[str, Any]:
            progress.reset(task)
            return {"content": body.stream(lambda count: progress.advance(task, count))}

        batch = api.json(
            "POST", "/api/v1/batches", headers=headers, body_factory=fresh_body,
            params={"pipeline": pipeline} if pipeline else None,
        )
    errors.print(f"batch {batch['id']} accepted ({batch['counts']['total']} jobs)")  # stderr: --json output stays clean
    return batch


def _follow(context: Context, api: Api, batch_id: str) -> dict:
    """A progress bar of the batch's jobs until it ends; returns the ended batch."""
    batch = api.json("GET", f"/api/v1/batches/{batch_id}")
    with Progress(
        TextColumn("processing"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[status]}"), TimeElapsedColumn(),
        console=errors, disable=context.as_json,
    ) as progress:
        task = progress.add_task("jobs", total=batch["counts"]["total"], status=batch["status"])
        while True:
            counts = batch["counts"]
            done = counts["succeeded"] + counts["failed"] + counts["cancelled"]
            progress.update(task, completed=done, status=batch["status"])
            if batch["status"] in FINAL_STATUSES:
                return batch
            time.sleep(POLL_SECONDS)
            batch = api.json("GET", f"/api/v1/batches/{batch_id}")


def _print_batch(context: Context, batch: dict) -> None:
    counts = batch["counts"]
    reason = f" — {batch['status_reason']}" if batch.get("status_reason") else ""
    context.console.print(
        f"{batch['id']}  {batch['status']}{reason}\n"
        f"  {counts['total']} jobs: {counts['succeeded']} succeeded, {counts['failed']} failed, "
        f"{counts['cancelled']} cancelled, {counts['pending']} pending"
    )


@cli.command()
@click.argument("batch_id")
@pass_context
@api_errors
def status(context: Context, batch_id: str) -> None:
    """One batch's status and counts."""
    context.emit(context.api().json("GET", f"/api/v1/batches/{batch_id}"), lambda value: _print_batch(context, value))


@cli.command()
@click.argument("batch_id")
@pass_context
@api_errors
def watch(context: Context, batch_id: str) -> None:
    """Follow a batch with a progress bar until it ends (exit 3 unless COMPLETED)."""
    batch = _follow(context, context.api(), batch_id)
    context.emit(batch, lambda value: _print_batch(context, value))
    if batch["status"] != "COMPLETED":
        raise click.exceptions.Exit(EXIT_BATCH_NOT_COMPLETED)


@cli.command(name="list")
@click.option("--status", "status_filter", help="only batches in this status")
@click.option("--limit", type=click.IntRange(1, 1000), default=20, show_default=True)
@pass_context
@api_errors
def list_batches(context: Context, status_filter: str | None, limit: int) -> None:
    """Your batches, newest first."""
    params: dict[str, Any] = {"limit": limit}
    if status_filter:
        params["status"] = status_filter
    batches = context.api().json("GET", "/api/v1/batches", params=params)["batches"]

    def render(rows: list[dict]) -> None:
        table = Table(Column("batch", no_wrap=True, min_width=36), "status", "jobs", "done %", "created")
        for row in rows:
            created = row["created_at"][:19].replace("T", " ") + " UTC"
            table.add_row(row["id"], row["status"], str(row["counts"]["total"]), f"{row['progress_percent']:.0f}", created)
        context.console.print(table)

    context.emit(batches, render)


@cli.command()
@click.argument("batch_id")
@pass_context
@api_errors
def results(context: Context, batch_id: str) -> None:
    """Every job of a batch: state, attempts, error or a summary of the result."""
    jobs = list(context.api().paged(f"/api/v1/batches/{batch_id}/results", "jobs", limit=100))

    def render(rows: list[dict]) -> None:
        table = Table("file", "state", "attempts", "result or error")
        for job in rows:
            result = job.get("result") or {}
            summary = job.get("error") or ", ".join(f"{key} {result[key]}" for key in ("kind", "word_count") if key in result)
            table.add_row(job["filename"], job["state"], str(job["attempts"]), summary)
        context.console.print(table)

    context.emit(jobs, render)


@cli.command()
@click.argument("batch_id")
@click.option("--format", "report_format", type=click.Choice(["csv", "json", "html"]), default="json", show_default=True)
@click.option("-o", "--output", type=click.Path(dir_okay=False, writable=True, path_type=Path), required=True)
@pass_context
@api_errors
def report(context: Context, batch_id: str, report_format: str, output: Path) -> None:
    """Download a batch's report to a file."""
    response = context.api().request("GET", f"/api/v1/batches/{batch_id}/report", params={"format": report_format})
    output.write_bytes(response.content)
    context.emit(
        {"batch": batch_id, "format": report_format, "output": str(output), "bytes": len(response.content)},
        lambda value: context.console.print(f"wrote {value['bytes']} bytes to {output}"),
    )


@cli.command()
@click.argument("batch_id")
@pass_context
@api_errors
def cancel(context: Context, batch_id: str) -> None:
    """Cancel a batch: waiting jobs never run, running ones stop at their next checkpoint."""
    context.emit(context.api().json("DELETE", f"/api/v1/batches/{batch_id}"), lambda value: _print_batch(context, value))


@cli.command()
@click.argument("batch_id")
@pass_context
@api_errors
def retry(context: Context, batch_id: str) -> None:
    """Run a batch's failed jobs again."""
    context.emit(context.api().json("POST", f"/api/v1/batches/{batch_id}/retry"), lambda value: _print_batch(context, value))


# --- operator -------------------------------------------------------------------


def _platform_tool(name: str, summary: str) -> click.Command:
    @click.command(name=name, context_settings={"ignore_unknown_options": True, "help_option_names": []}, add_help_option=False)
    @click.argument("arguments", nargs=-1, type=click.UNPROCESSED)
    def tool(arguments: tuple[str, ...]) -> None:
        sys.argv = [f"conveyor {name}", *arguments]
        try:
            runpy.run_path(str(PLATFORM_DIR / f"{name}.py"), run_name="__main__")
        except SystemExit as finished:
            raise click.exceptions.Exit(finished.code if isinstance(finished.code, int) else 0) from None

    tool.help = f"platform/{name}.py (same arguments; --help lists them). Reads CONVEYOR_* like the services."
    tool.short_help = f"{summary} (platform/{name}.py)"
    return tool


cli.add_command(_platform_tool("tokens", "clients, tokens and signing keys"))
cli.add_command(_platform_tool("scale", "worker instances: status, up N, down N, drain ID"))


@cli.command()
@pass_context
@api_errors
def queues(context: Context) -> None:
    """Messages waiting and consumers per job queue, its retry (.DQ) and dead-letter (.XQ) queues (admin)."""
    depths = context.api().json("GET", "/api/v1/admin/queues")["queues"]

    def render(rows: list[dict]) -> None:
        table = Table("queue", "ready", "consumers")
        for row in rows:
            table.add_row(row["queue"], str(row["ready"]), str(row["consumers"]))
        context.console.print(table)

    context.emit(depths, render)


@cli.command()
@pass_context
@api_errors
def workers(context: Context) -> None:
    """Live worker processes and their last heartbeat (admin)."""
    listing = context.api().json("GET", "/api/v1/admin/workers")

    def render(value: dict) -> None:
        table = Table("worker", "queues", "in progress", "started", "last seen")
        for row in value["workers"]:
            table.add_row(row["worker_id"], ", ".join(row["queues"]), str(row["jobs_in_progress"]), row["started_at"], row["last_seen_at"])
        context.console.print(table)
        context.console.print(f"{len(value['workers'])} live workers, {value['jobs_in_progress']} jobs in progress")

    context.emit(listing, render)


def main() -> int:
    try:
        # Without standalone mode click returns an Exit's code instead of raising it.
        code = cli.main(standalone_mode=False)
    except click.ClickException as error:
        error.show()
        return EXIT_USAGE
    except click.exceptions.Abort:
        return EXIT_USAGE
    return code if isinstance(code, int) else 0
