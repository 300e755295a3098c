"""nginx from the repository's template in front of real gateway replicas:
what a client and an operator see through it."""

from __future__ import annotations

import httpx

from conveyor.settings import Settings

TOKENLESS = "/api/v1/batches"  # answers 401 without a token, counted by client address


def test_the_api_is_served_over_http_and_https_with_security_headers(start_gateway, start_nginx) -> None:
    nginx = start_nginx([start_gateway().url])
    plain = httpx.get(f"{nginx.url}/api/v1/ready")
    secure = httpx.get(f"{nginx.https_url}/api/v1/ready", verify=False)
    for response in (plain, secure):
        assert response.status_code == 200, response.text
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["x-frame-options"] == "DENY"
        assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
        assert response.headers["server"] == "nginx"  # no version
    assert "max-age=" in secure.headers["strict-transport-security"]
    assert secure.http_version in ("HTTP/1.1", "HTTP/2")


def test_metrics_and_admin_paths_are_refused_outside_the_allowed_networks(start_gateway, start_nginx) -> None:
    gateway = start_gateway()
    nginx = start_nginx([gateway.url], allowed_networks=["10.0.0.0/8"])
    for path in ("/metrics", "/api/v1/admin/workers"):
        response = httpx.get(f"{nginx.url}{path}")
        assert response.status_code == 403, path
        assert response.json()["error"] == "forbidden"
    assert httpx.get(f"{gateway.url}/metrics").status_code == 200  # the replica itself still serves Prometheus
    opened = start_nginx([gateway.url], allowed_networks=["127.0.0.1"])
    assert httpx.get(f"{opened.url}/metrics").status_code == 200


def test_nginx_refusals_answer_json(start_gateway, start_nginx, free_port, make_client) -> None:
    gateway = start_gateway()
    small = start_nginx([gateway.url], max_body_bytes=1024 * 1024)
    token = gateway.token(make_client())
    too_big = httpx.post(
        f"{small.url}/api/v1/batches",
        headers={"Authorization": f"Bearer {token}"},
        files={"files": ("big.txt", b"x" * (2 * 1024 * 1024))},
    )
    assert too_big.status_code == 413
    assert too_big.json()["error"] == "payload_too_large"

    nobody = start_nginx([f"http://127.0.0.1:{free_port()}"], through=False)
    down = httpx.get(f"{nobody.url}/api/v1/batches")
    assert down.status_code == 502
    assert down.json()["error"] == "gateway_unavailable" and "Idempotency-Key" in down.json()["detail"]
    assert down.headers["retry-after"] == "1"


def test_the_per_address_shield_answers_429_with_retry_after(start_gateway, start_nginx) -> None:
    nginx = start_nginx([start_gateway().url], shield_rate="2r/s", shield_burst=3)
    with httpx.Client() as client:
        answers = [client.get(f"{nginx.url}/api/v1/ready") for _ in range(12)]
    limited = [answer for answer in answers if answer.status_code == 429]
    assert limited, [answer.status_code for answer in answers]
    assert limited[0].json()["error"] == "rate_limited"
    assert limited[0].headers["retry-after"] == "1"
    assert {answer.status_code for answer in answers} == {200, 429}


def test_the_gateway_limits_the_real_client_address_not_a_forged_one(
    start_gateway, start_nginx, make_tiers_file, service_settings: Settings
) -> None:
    gateway = start_gateway(
        CONVEYOR_TIERS_FILE=str(make_tiers_file(unauthenticated_rate="5/minute")),
        CONVEYOR_TRUSTED_PROXIES="127.0.0.1/32",
    )
    nginx = start_nginx([gateway.url])

    def client_at(address: str) -> httpx.Client:  # loopback aliases: addresses nginx does not trust
        return httpx.Client(transport=httpx.HTTPTransport(local_address=address))

    with client_at("127.0.0.2") as forger, client_at("127.0.0.3") as neighbour:
        statuses = [
            forger.get(f"{nginx.url}{TOKENLESS}", headers={"X-Forwarded-For": f"203.0.113.{n}"}).status_code
            for n in range(8)
        ]
        assert statuses == [401] * 5 + [429] * 3, "forged X-Forwarded-For hops do not buy a new budget"
        assert neighbour.get(f"{nginx.url}{TOKENLESS}").status_code == 401, "another address has its own budget"
