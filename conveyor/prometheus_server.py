"""A Prometheus running the repository's configuration (``prometheus/``).

The scrape configuration reads its targets from ``targets/<job>.json``
(Prometheus file service discovery) beside ``prometheus.yml``.  A deployment
edits those files; the local stack and the end-to-end tests copy the folder
and write their own, so the very same rules and jobs watch their processes.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path

import yaml

PROMETHEUS_DIR = Path(__file__).resolve().parents[1] / "prometheus"
CONFIG_NAME = "prometheus.yml"


def scrape_jobs(source: Path = PROMETHEUS_DIR) -> list[str]:
    """The job names of the repository's scrape configuration."""
    config = yaml.safe_load((source / CONFIG_NAME).read_text())
    return [job["job_name"] for job in config["scrape_configs"]]


def prepare_configuration(
    destination: Path,
    targets: Mapping[str, Sequence[str]],
    scrape_interval: str | None = None,
    source: Path = PROMETHEUS_DIR,
) -> Path:
    """Copy the configuration and rules to ``destination`` with ``targets``
    (job name → ``host:port`` list; a job not named gets no target); returns the
    config file.  ``scrape_interval`` shortens scrapes and rule evaluation."""
    unknown = sorted(set(targets) - set(scrape_jobs(source)))
    if unknown:
        raise ValueError(f"no scrape job named {', '.join(unknown)} in {source / CONFIG_NAME}")
    shutil.copytree(source, destination, dirs_exist_ok=True, ignore=shutil.ignore_patterns("targets"))
    config_file = destination / CONFIG_NAME
    if scrape_interval is not None:
        config = yaml.safe_load(config_file.read_text())
        config["global"].update(scrape_interval=scrape_interval, evaluation_interval=scrape_interval)
        config_file.write_text(yaml.safe_dump(config, sort_keys=False))
    target_dir = destination / "targets"
    target_dir.mkdir(exist_ok=True)
    for job in scrape_jobs(source):
        write_targets(target_dir / f"{job}.json", targets.get(job, ()))
    return config_file


def write_targets(path: Path, addresses: Sequence[str]) -> None:
    """A file-discovery target file listing ``addresses`` (``host:port``), replaced
    atomically so Prometheus never reads half of it."""
    groups = [{"targets": list(addresses)}] if addresses else []
    partial = path.with_name(f".{path.name}.tmp")
    partial.write_text(json.dumps(groups, indent=2) + "\n")
    os.replace(partial, path)


def prometheus_command(config_file: Path, data_dir: Path, host: str, port: int) -> list[str]:
    return [
        "prometheus",
        f"--config.file={config_file}",
        f"--storage.tsdb.path={data_dir}",
        f"--web.listen-address={host}:{port}",
        "--storage.tsdb.retention.time=2d",
    ]
