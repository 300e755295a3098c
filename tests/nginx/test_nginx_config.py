"""The rendered nginx configuration passes ``nginx -t``, for the local stack
and for a server (the site under a Debian-style nginx.conf), and says what
the scale-out design asks of it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from conveyor.nginx_config import (
    NginxConfigError,
    NginxSite,
    check,
    largest_upload_bytes,
    render_site,
    self_signed_certificate,
    write_standalone,
)
from conveyor.tiers import DEFAULT_TIERS_FILE, Tiers

GATEWAYS = ["127.0.0.1:18001", "127.0.0.1:18002"]


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return self_signed_certificate(tmp_path_factory.mktemp("tls"))


def server_site(certificate: tuple[Path, Path]) -> NginxSite:
    return NginxSite(
        gateways=GATEWAYS,
        max_body_bytes=largest_upload_bytes(Tiers.load(DEFAULT_TIERS_FILE, 10)),
        http_listen="127.0.0.1:18080",
        https_listen="127.0.0.1:18443",
        https_port=18443,
        redirect_http=True,
        certificate=certificate[0],
        certificate_key=certificate[1],
        server_name="api.example.com",
        allowed_networks=["10.0.0.0/8", "127.0.0.1"],
    )


def test_the_local_stack_configuration_passes_nginx_t(tmp_path: Path, certificate: tuple[Path, Path]) -> None:
    site = NginxSite(
        gateways=GATEWAYS, max_body_bytes=1 << 30, https_listen="127.0.0.1:18443",
        certificate=certificate[0], certificate_key=certificate[1],
    )
    config = write_standalone(site, tmp_path / "nginx")  # raises unless nginx -t passes
    assert "listen 127.0.0.1:8000;" in config.read_text()


def test_the_server_site_passes_nginx_t_under_a_debian_nginx_conf(tmp_path: Path, certificate: tuple[Path, Path]) -> None:
    (tmp_path / "conf.d").mkdir()
    (tmp_path / "conf.d" / "conveyor.conf").write_text(render_site(server_site(certificate)))
    main = tmp_path / "nginx.conf"
    main.write_text(
        f"pid {tmp_path}/nginx.pid;\nerror_log {tmp_path}/error.log;\nevents {{}}\n"
        f"http {{\n    client_body_temp_path {tmp_path}/body;\n    proxy_temp_path {tmp_path}/proxy;\n"
        f"    include {tmp_path}/conf.d/*.conf;\n}}\n"
    )
    check(main, tmp_path)


def test_the_site_balances_streams_uploads_and_restricts_operator_paths(certificate: tuple[Path, Path]) -> None:
    site = render_site(server_site(certificate))
    assert "least_conn;" in site and "keepalive 32;" in site
    for gateway in GATEWAYS:
        assert f"server {gateway} max_fails=2 fail_timeout=5s;" in site
    upload = site[site.index("location = /api/v1/batches {") :].split("}")[0]
    assert "proxy_request_buffering off;" in upload
    assert f"client_max_body_size {500 * 100 * 1024 * 1024 + 1024 * 1024};" in upload  # enterprise: 500 files x 100 MiB
    assert "proxy_next_upstream error timeout http_502 http_504;" in site and "non_idempotent;" not in site
    for restricted in ("location = /metrics {", "location ^~ /api/v1/admin/ {"):
        block = site[site.index(restricted) :].split("}")[0]
        assert "allow 10.0.0.0/8;" in block and "deny all;" in block
    assert "limit_req_status 429;" in site
    assert "ssl_protocols TLSv1.2 TLSv1.3;" in site and "Strict-Transport-Security" in site
    assert "return 308 https://$host:18443$request_uri;" in site


def test_a_broken_configuration_is_reported_with_nginx_s_reason(tmp_path: Path) -> None:
    site = NginxSite(gateways=["127.0.0.1:18001"], max_body_bytes=1024, shield_rate="lots")
    with pytest.raises(NginxConfigError, match="invalid rate"):
        write_standalone(site, tmp_path / "nginx")


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"gateways": []}, "at least one gateway"),
        ({"https_listen": "443"}, "certificate"),
        ({"http_listen": None}, "HTTP or an HTTPS"),
        ({"redirect_http": True}, "needs an HTTPS server"),
    ],
)
def test_an_impossible_site_is_refused_before_rendering(overrides: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        NginxSite(**{"gateways": GATEWAYS, "max_body_bytes": 1024, **overrides})


def test_the_server_renderer_writes_a_site_nginx_accepts(tmp_path: Path, certificate: tuple[Path, Path]) -> None:
    completed = subprocess.run(
        [
            sys.executable, "platform/nginx_site.py", "--gateway", GATEWAYS[0], "--gateway", GATEWAYS[1],
            "--http-listen", "127.0.0.1:18080", "--https-listen", "127.0.0.1:18443",
            "--certificate", str(certificate[0]), "--certificate-key", str(certificate[1]), "--allow", "10.0.0.0/8",
        ],
        capture_output=True, text=True, cwd=Path(__file__).resolve().parents[2], check=False,
    )
    assert completed.returncode == 0, completed.stderr
    assert "allow 10.0.0.0/8;" in completed.stdout
