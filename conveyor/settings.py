"""Process configuration, read once at start-up from ``CONVEYOR_*`` variables.

Every process (gateway, worker, operator tools) builds one :class:`Settings`
with :meth:`Settings.from_env` and passes it down explicitly.  A bad or unknown
variable stops start-up with a :class:`SettingsError` naming the variable, so a
typo never silently falls back to a default.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Mapping
from ipaddress import IPv4Network, IPv6Network, ip_network
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from conveyor.tiers import DEFAULT_TIERS_FILE

PREFIX = "CONVEYOR_"
CLI_PREFIX = "CONVEYOR_CLI_"  # the command line's own variables (conveyor.cli), not service settings
MIN_SECRET_LENGTH = 32


class SettingsError(ValueError):
    """A ``CONVEYOR_*`` variable is missing, malformed or unknown."""


def _positive_int(raw: str) -> int:
    value = int(raw)
    if value <= 0:
        raise ValueError("must be a positive integer")
    return value


def _non_negative_int(raw: str) -> int:
    value = int(raw)
    if value < 0:
        raise ValueError("must be zero or a positive integer")
    return value


def _positive_float(raw: str) -> float:
    value = float(raw)
    if not value > 0:
        raise ValueError("must be a positive number")
    return value


def _non_negative_float(raw: str) -> float:
    value = float(raw)
    if not value >= 0:
        raise ValueError("must be zero or a positive number")
    return value


def _fraction(raw: str) -> float:
    value = float(raw)
    if not 0 <= value < 1:
        raise ValueError("must be at least 0 and below 1")
    return value


def _choice(*choices: str) -> Callable[[str], str]:
    def parse(raw: str) -> str:
        if raw not in choices:
            raise ValueError(f"must be one of {', '.join(choices)}")
        return raw

    return parse


def _optional_path(raw: str) -> Path | None:
    return Path(raw) if raw.strip() else None


def _priority_ceiling(raw: str) -> int:
    value = int(raw)
    if not 1 <= value <= 255:
        raise ValueError("must be between 1 and 255 (RabbitMQ x-max-priority)")
    return value


def _database_url(raw: str) -> str:
    scheme = urlsplit(raw).scheme
    if not (scheme.startswith("sqlite") or scheme.startswith("postgresql")):
        raise ValueError("must be a sqlite:/// or postgresql:// URL")
    return raw


def _amqp_url(raw: str) -> str:
    if urlsplit(raw).scheme not in ("amqp", "amqps"):
        raise ValueError("must be an amqp:// or amqps:// URL")
    return raw


def _secret(raw: str) -> str:
    if raw and len(raw) < MIN_SECRET_LENGTH:
        raise ValueError(f"must be at least {MIN_SECRET_LENGTH} characters")
    return raw


def _rate_limit_storage(raw: str) -> str:
    if urlsplit(raw).scheme not in ("memory", "redis"):
        raise ValueError("must be memory:// or a redis:// URL")
    return raw


def _networks(raw: str) -> tuple[IPv4Network | IPv6Network, ...]:
    return tuple(ip_network(part.strip(), strict=False) for part in raw.split(",") if part.strip())


def _http_url(raw: str) -> str:
    if urlsplit(raw).scheme not in ("http", "https"):
        raise ValueError("must be an http:// or https:// URL")
    return raw.rstrip("/")


def _paths(raw: str) -> tuple[Path, ...]:
    return tuple(Path(part.strip()) for part in raw.split(",") if part.strip())


def _extensions(raw: str) -> tuple[str, ...]:
    extensions = tuple(part.strip().lower() for part in raw.split(",") if part.strip())
    if any(not extension.startswith(".") for extension in extensions):
        raise ValueError("must be comma-separated extensions starting with a dot, like .txt,.csv")
    return extensions


def _boolean(raw: str) -> bool:
    lowered = raw.strip().lower()
    if lowered not in ("true", "false", "1", "0", "yes", "no"):
        raise ValueError("must be true or false")
    return lowered in ("true", "1", "yes")


def _log_level(raw: str) -> str:
    level = raw.upper()
    if level not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        raise ValueError("must be DEBUG, INFO, WARNING or ERROR")
    return level


def _url_path(raw: str) -> str:
    if not raw.startswith("/") or raw.rstrip("/") != raw or " " in raw:
        raise ValueError("must be a path starting with / and not ending with /, like /metrics")
    return raw


def _port(raw: str) -> int:
    value = int(raw)
    if not 1 <= value <= 65535:
        raise ValueError("must be a TCP port between 1 and 65535")
    return value


def _setting(parse: Callable[[str], Any], default: str, doc: str, secret: bool = False) -> Any:
    """Declare a field read from ``CONVEYOR_<FIELD NAME>``; a secret's value never appears in errors."""
    return dataclasses.field(metadata={"parse": parse, "default": default, "doc": doc, "secret": secret})


@dataclasses.dataclass(frozen=True)
class Settings:
    database_url: str = _setting(
        _database_url, "sqlite:///var/conveyor.db", "Ledger database (SQLite file or PostgreSQL URL)."
    )
    blob_dir: Path = _setting(Path, "var/blobs", "Directory of the content-addressed blob store.")
    broker_url: str = _setting(
        _amqp_url, "amqp://guest:guest@127.0.0.1:5672/%2F", "RabbitMQ URL, vhost included."
    )
    max_priority: int = _setting(
        _priority_ceiling, "10", "x-max-priority of the job queues (changing it needs the queues deleted)."
    )
    tiers_file: Path = _setting(Path, str(DEFAULT_TIERS_FILE), "TOML file defining the service tiers.")
    jwt_secret: str = _setting(
        _secret, "", "HS256 signing secret for access tokens, 32+ characters; required by the gateway.", secret=True
    )
    jwt_issuer: str = _setting(str, "conveyor", "`iss` claim of issued tokens, required when verifying.")
    jwt_audience: str = _setting(str, "conveyor-api", "`aud` claim of issued tokens, required when verifying.")
    token_ttl_seconds: int = _setting(_positive_int, "900", "Lifetime of an access token.")
    rate_limit_storage: str = _setting(
        _rate_limit_storage, "memory://", "Rate-limit counters: memory:// for one replica, redis://host:port/db for several."
    )
    rate_limit_prefix: str = _setting(
        str, "conveyor", "Prefix of rate-limit keys, so several deployments can share one Redis."
    )
    trusted_proxies: tuple[IPv4Network | IPv6Network, ...] = _setting(
        _networks, "", "Comma-separated addresses/networks whose X-Forwarded-For is believed (nginx)."
    )
    max_ready_messages: int = _setting(
        _positive_int, "10000", "Ready messages in a job queue above which uploads get 503 (backpressure)."
    )
    worker_threads: int = _setting(_positive_int, "4", "Threads per worker process (prefetch follows it).")
    worker_processes: int = _setting(_positive_int, "1", "Worker processes started by the local launcher.")
    chunk_size: int = _setting(_positive_int, "2000", "Characters per text chunk.")
    chunk_overlap: int = _setting(_non_negative_int, "200", "Characters shared by neighbouring chunks.")
    log_level: str = _setting(_log_level, "INFO", "Log level of every process.")
    gateway_url: str = _setting(
        _http_url, "http://127.0.0.1:8000", "Where the watcher and the scheduler submit batches (the API, or nginx)."
    )
    watch_directories: tuple[Path, ...] = _setting(
        _paths, "", "Comma-separated directories the watcher always watches (more through the admin API)."
    )
    watch_client_id: str = _setting(str, "", "Client whose batches the directories of CONVEYOR_WATCH_DIRECTORIES submit.")
    watch_extensions: tuple[str, ...] = _setting(
        _extensions,
        ".txt,.md,.csv,.tsv,.json,.html,.xml,.pdf,.docx",
        "File extensions the watcher submits (default for directories added without a list).",
    )
    watch_recursive: bool = _setting(_boolean, "false", "Whether CONVEYOR_WATCH_DIRECTORIES include subdirectories.")
    watch_settle_seconds: int = _setting(
        _positive_int, "2", "Seconds a file must stay unchanged before the watcher submits it."
    )

    metrics_path: str = _setting(
        _url_path, "/metrics", "Path where each gateway replica serves its Prometheus metrics (keep it off the public nginx)."
    )
    business_metrics_seconds: int = _setting(
        _positive_int, "15", "How long the gateway reuses the ledger figures (backlog, oldest job, ...) it exports as metrics."
    )
    rabbitmq_metrics_url: str = _setting(
        _http_url, "http://127.0.0.1:15692", "RabbitMQ's Prometheus plugin, where the dashboard reads unacknowledged messages per queue."
    )
    worker_metrics_port: int = _setting(
        _port, "9191", "Metrics port of worker instance 0; instance N serves on this port + N."
    )
    worker_metrics_dir: Path = _setting(
        Path, "var/worker-metrics", "Parent of each worker instance's Prometheus multiprocess directory (<dir>/<N>, wiped at start)."
    )

    autoscaler_prometheus_url: str = _setting(_http_url, "http://127.0.0.1:9090", "Prometheus the autoscaler reads the load from.")
    autoscaler_interval_seconds: float = _setting(_positive_float, "15", "Seconds between two autoscaler decisions.")
    autoscaler_min_workers: int = _setting(_non_negative_int, "1", "Fewest worker instances the autoscaler keeps.")
    autoscaler_max_workers: int = _setting(_positive_int, "4", "Most worker instances the autoscaler starts.")
    autoscaler_target_backlog_per_worker: float = _setting(
        _positive_float, "100", "Jobs waiting or running that one worker instance should carry (the backlog term)."
    )
    autoscaler_tolerance: float = _setting(
        _fraction, "0.1", "Relative change from the current count below which the autoscaler does nothing."
    )
    autoscaler_stabilization_seconds: float = _setting(
        _non_negative_float, "300", "A scale-down goes only to the highest recommendation of this window."
    )
    autoscaler_max_step: int = _setting(_positive_int, "2", "Most instances one decision starts or stops.")
    autoscaler_backend: str = _setting(
        _choice("local", "systemd"), "local", "How worker instances run: local process groups or systemd's worker@N units."
    )
    autoscaler_state_dir: Path = _setting(Path, "var/workers", "Pid files of the local backend's worker instances.")
    autoscaler_metrics_port: int = _setting(_port, "9290", "Port of the autoscaler's own metrics.")
    autoscaler_worker_targets_file: Path | None = _setting(
        _optional_path, "", "Prometheus file-discovery targets the autoscaler rewrites with the running worker instances."
    )

    def __post_init__(self) -> None:
        if self.chunk_overlap >= self.chunk_size:
            raise SettingsError(f"{PREFIX}CHUNK_OVERLAP: must be smaller than {PREFIX}CHUNK_SIZE")
        if self.autoscaler_min_workers > self.autoscaler_max_workers:
            raise SettingsError(f"{PREFIX}AUTOSCALER_MIN_WORKERS: must not exceed {PREFIX}AUTOSCALER_MAX_WORKERS")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Build settings from ``environ`` (default: ``os.environ``)."""
        environ = os.environ if environ is None else environ
        fields = {f"{PREFIX}{field.name.upper()}": field for field in dataclasses.fields(cls)}
        unknown = sorted(
            name for name in environ if name.startswith(PREFIX) and not name.startswith(CLI_PREFIX) and name not in fields
        )
        if unknown:
            raise SettingsError(f"{unknown[0]}: unknown setting (known: {', '.join(sorted(fields))})")
        values = {}
        for name, field in fields.items():
            raw = environ.get(name, field.metadata["default"])
            try:
                values[field.name] = field.metadata["parse"](raw)
            except ValueError as error:
                shown = "value hidden" if field.metadata["secret"] else f"got {raw!r}"
                raise SettingsError(f"{name}: {error} ({shown})") from None
        return cls(**values)

    @property
    def rabbitmq_metrics_address(self) -> str:
        """``host:port`` of RabbitMQ's Prometheus plugin, as a scrape target."""
        return urlsplit(self.rabbitmq_metrics_url).netloc

    def require_jwt_secret(self) -> str:
        """The signing secret, for the processes that issue or verify tokens."""
        if not self.jwt_secret:
            raise SettingsError(f"{PREFIX}JWT_SECRET: required by the gateway but not set")
        return self.jwt_secret

    @classmethod
    def documentation(cls) -> list[tuple[str, str, str]]:
        """(variable, default, description) for every setting, for the README and ``--help``."""
        return [
            (f"{PREFIX}{field.name.upper()}", field.metadata["default"], field.metadata["doc"])
            for field in dataclasses.fields(cls)
        ]
