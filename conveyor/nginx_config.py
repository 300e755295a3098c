"""Rendering nginx's configuration from the templates in ``nginx/``.

``conveyor.conf.j2`` is the site (upstream over the gateway replicas, the
outer per-address limit, streaming uploads, restricted metrics and admin
paths, HTTP and HTTPS servers).  A server includes it from Debian's
``nginx.conf`` (``/etc/nginx/conf.d/conveyor.conf``); the local stack and the
tests wrap it in ``standalone.conf.j2``, a whole configuration whose files all
live under one prefix directory.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import jinja2

from conveyor.tiers import Tiers

TEMPLATE_DIR = Path(__file__).resolve().parents[1] / "nginx"
# A multipart body carries each file's part headers and the form fields besides the files.
FORM_OVERHEAD_BYTES = 1024 * 1024


class NginxConfigError(RuntimeError):
    """The rendered configuration does not pass ``nginx -t``."""


@dataclass(frozen=True)
class NginxSite:
    gateways: Sequence[str]  # host:port of each replica
    max_body_bytes: int  # the largest upload a tier allows (see largest_upload_bytes)
    http_listen: str | None = "127.0.0.1:8000"
    https_listen: str | None = None
    https_port: int = 443  # where the HTTP server redirects to
    redirect_http: bool = False  # HTTP only redirects to HTTPS (a server); else HTTP serves the API
    certificate: Path | None = None
    certificate_key: Path | None = None
    server_name: str = "_"
    metrics_path: str = "/metrics"
    allowed_networks: Sequence[str] = ("127.0.0.1", "::1")  # may reach metrics and the admin API
    shield_rate: str = "50r/s"
    shield_burst: int = 100
    max_fails: int = 2
    fail_timeout: str = "5s"
    body_timeout: str = "300s"

    def __post_init__(self) -> None:
        if not self.gateways:
            raise ValueError("nginx needs at least one gateway replica")
        if self.https_listen and not (self.certificate and self.certificate_key):
            raise ValueError("HTTPS needs a certificate and its key")
        if not (self.http_listen or self.https_listen):
            raise ValueError("nginx needs an HTTP or an HTTPS address to listen on")
        if self.redirect_http and not self.https_listen:
            raise ValueError("redirecting HTTP needs an HTTPS server")


def largest_upload_bytes(tiers: Tiers) -> int:
    """The biggest request body any tier may send: its whole largest batch."""
    return max(tier.max_files_per_batch * tier.max_file_bytes for tier in map(tiers.__getitem__, tiers.names)) + FORM_OVERHEAD_BYTES


def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATE_DIR), undefined=jinja2.StrictUndefined, keep_trailing_newline=True
    )


def render_site(site: NginxSite) -> str:
    """The site for ``/etc/nginx/conf.d/`` (http context)."""
    return _environment().get_template("conveyor.conf.j2").render(**vars(site))


def render_standalone(site: NginxSite, prefix: Path) -> str:
    """A whole configuration for ``nginx -p prefix -c <file>``; started as root,
    its workers run as the user who started it (they write under ``prefix``)."""
    user = pwd.getpwuid(os.getuid()).pw_name if os.geteuid() == 0 else None
    return _environment().get_template("standalone.conf.j2").render(site=render_site(site), prefix=prefix, user=user)


def write_standalone(site: NginxSite, prefix: Path) -> Path:
    """Render into ``prefix/nginx.conf``, check it with ``nginx -t`` and return its path."""
    prefix.mkdir(parents=True, exist_ok=True)
    config_file = prefix / "nginx.conf"
    config_file.write_text(render_standalone(site, prefix))
    check(config_file, prefix)
    return config_file


def nginx_binary() -> str:
    return shutil.which("nginx") or "/usr/sbin/nginx"


def check(config_file: Path, prefix: Path) -> None:
    completed = subprocess.run(
        [nginx_binary(), "-t", "-q", "-p", str(prefix), "-c", str(config_file)],
        capture_output=True, text=True, check=False,
    )
    if completed.returncode != 0:
        raise NginxConfigError(f"nginx -t failed for {config_file}:\n{completed.stderr.strip()}")


def nginx_command(config_file: Path, prefix: Path) -> list[str]:
    return [nginx_binary(), "-p", str(prefix), "-c", str(config_file)]


def self_signed_certificate(directory: Path, common_name: str = "localhost") -> tuple[Path, Path]:
    """A certificate and key for local HTTPS (the local stack and the tests), made once by openssl."""
    certificate, key = directory / "certificate.pem", directory / "key.pem"
    if not (certificate.exists() and key.exists()):
        directory.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [
                "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                "-days", "365", "-subj", f"/CN={common_name}",
                "-addext", f"subjectAltName=DNS:{common_name},IP:127.0.0.1",
                "-keyout", str(key), "-out", str(certificate),
            ],
            check=True, capture_output=True,
        )
        key.chmod(0o600)
    return certificate, key
