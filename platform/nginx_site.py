#!/usr/bin/env python3
"""Render Conveyor's nginx site for a server (http context, for /etc/nginx/conf.d/).

    platform/nginx_site.py --gateway 127.0.0.1:8001 --gateway 127.0.0.1:8002 \\
        --server-name api.example.com --certificate /etc/ssl/conveyor.pem --certificate-key /etc/ssl/conveyor.key \\
        --allow 10.0.0.0/8 > /etc/nginx/conf.d/conveyor.conf
    nginx -t && systemctl reload nginx

With a certificate, port 80 redirects to HTTPS on 443; without one, port 80
serves the API.  The upload body limit follows the largest tier of
CONVEYOR_TIERS_FILE; the metrics path is CONVEYOR_METRICS_PATH.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from conveyor.nginx_config import NginxSite, largest_upload_bytes, render_site
from conveyor.settings import Settings, SettingsError
from conveyor.tiers import TierError, Tiers


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--gateway", action="append", required=True, help="host:port of a gateway replica (repeat)")
    parser.add_argument("--server-name", default="_")
    parser.add_argument("--certificate", type=Path, help="TLS certificate chain (PEM); enables HTTPS")
    parser.add_argument("--certificate-key", type=Path, help="its private key (PEM)")
    parser.add_argument("--http-listen", default="80")
    parser.add_argument("--https-listen", default="443")
    parser.add_argument(
        "--allow", action="append", default=[], help="network that may reach metrics and the admin API (repeat; default loopback)"
    )
    parser.add_argument("--shield-rate", default="50r/s", help="per-address request rate (nginx limit_req)")
    parser.add_argument("--shield-burst", type=int, default=100)
    arguments = parser.parse_args()
    try:
        settings = Settings.from_env()
        tiers = Tiers.load(settings.tiers_file, settings.max_priority)
        https = arguments.certificate is not None
        site = NginxSite(
            gateways=arguments.gateway,
            max_body_bytes=largest_upload_bytes(tiers),
            http_listen=arguments.http_listen,
            https_listen=arguments.https_listen if https else None,
            https_port=int(arguments.https_listen.rpartition(":")[2]),
            redirect_http=https,
            certificate=arguments.certificate,
            certificate_key=arguments.certificate_key,
            server_name=arguments.server_name,
            metrics_path=settings.metrics_path,
            allowed_networks=arguments.allow or ["127.0.0.1", "::1"],
            shield_rate=arguments.shield_rate,
            shield_burst=arguments.shield_burst,
        )
    except (SettingsError, TierError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    sys.stdout.write(render_site(site))
    return 0


if __name__ == "__main__":
    sys.exit(main())
