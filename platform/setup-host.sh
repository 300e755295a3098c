#!/usr/bin/env bash
# Prepare this host for `make up` and `make test` (Debian, as root):
# install the system packages that are missing, then start the services that
# are not answering.  Services already running on 127.0.0.1 are reused as
# they are.  Safe to run again: it changes nothing on a ready host.
set -euo pipefail

log() { printf 'setup-host: %s\n' "$*"; }

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_for_port() { # port seconds name
    local deadline=$((SECONDS + $2))
    until port_open "$1"; do
        if ((SECONDS > deadline)); then
            log "$3 did not open port $1 within $2 s"
            return 1
        fi
        sleep 1
    done
}

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

# --- packages -----------------------------------------------------------------
declare -A wanted=(
    [rabbitmq-server]=rabbitmq-server
    [nginx]=nginx
    [prometheus]=prometheus
    [redis-server]=redis-server
    [sqlite3]=sqlite3  # the runbook reads the local ledger with it
    [openssl]=openssl  # the local stack's and the tests' self-signed certificate
    [chromium]=chromium  # the dashboard's browser test (headless, driven by Playwright)
)
python3 -c 'import venv, ensurepip' 2>/dev/null || wanted[python3-venv]=python3-venv
command -v psql >/dev/null && port_open 5432 || wanted[postgresql]=postgresql

missing=()
for package in "${!wanted[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
fresh_postgresql=no
if ((${#missing[@]})); then
    [[ " ${missing[*]} " == *" postgresql "* ]] && fresh_postgresql=yes
    log "installing: ${missing[*]}"
    # Packages must not start their services on install (nginx would take port
    # 80); services are started below, only those Conveyor needs.
    policy=/usr/sbin/policy-rc.d
    if [ ! -e "$policy" ]; then
        as_root sh -c "printf '#!/bin/sh\nexit 101\n' > $policy && chmod 755 $policy"
        trap 'as_root rm -f "$policy"' EXIT
    fi
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# --- services -----------------------------------------------------------------
if ! port_open 5672; then
    log "starting RabbitMQ"
    as_root rabbitmq-server -detached
    wait_for_port 5672 120 RabbitMQ
fi
as_root rabbitmqctl await_startup --timeout 120 >/dev/null
# Queue depth and consumers per queue for Prometheus (port 15692, /metrics/detailed).
if ! as_root rabbitmq-plugins is_enabled rabbitmq_prometheus >/dev/null 2>&1; then
    log "enabling the rabbitmq_prometheus plugin"
    as_root rabbitmq-plugins enable --quiet rabbitmq_prometheus >/dev/null
fi
wait_for_port 15692 60 "RabbitMQ's Prometheus endpoint"

if ! port_open 6379; then
    log "starting Redis"
    as_root mkdir -p /var/lib/redis /var/log/redis
    as_root redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
        --dir /var/lib/redis --logfile /var/log/redis/conveyor.log
    wait_for_port 6379 30 Redis
fi

if ! port_open 5432; then
    cluster_version=$(ls /etc/postgresql | sort -V | tail -n 1)
    if [ "$fresh_postgresql" = yes ]; then
        # A cluster we just installed: let the local test suite connect as postgres over TCP.
        hba=/etc/postgresql/$cluster_version/main/pg_hba.conf
        as_root sed -i '1i host all postgres 127.0.0.1/32 trust' "$hba"
    fi
    log "starting PostgreSQL $cluster_version"
    as_root pg_ctlcluster --skip-systemctl-redirect "$cluster_version" main start
    wait_for_port 5432 60 PostgreSQL
fi

log "ready: RabbitMQ :5672 (metrics :15692), Redis :6379, PostgreSQL :5432; nginx and prometheus installed"
