#!/usr/bin/env bash
# Make sure the local servers the platform needs are installed and running.
#
#   scripts/infra.sh [postgres] [redis] [rabbitmq] [nginx] [browser] [metrics] [python] [all]     (default: all)
#
# Each component is installed from Debian's packages when missing and we run as root (otherwise the
# script says exactly what to install), then started when its port does not answer:
#   postgres  127.0.0.1:5432  pg_ctlcluster <version> main start
#   redis     127.0.0.1:6379  redis-server --daemonize yes (no persistence: a cache)
#   rabbitmq  127.0.0.1:5672  rabbitmq-server -detached; the test vhost "polls_test" is created
#   nginx     binary only     (the stack runs its own nginx master with -p RUN_DIR/nginx)
#   python    venv support    for the system's Python 3.11 (python3.11-venv), which the virtualenv is made
#             from when it can (scripts/platform_stack/venv.py: ~20 % less CPU per vote than pyenv's build)
#   metrics   binaries only   Prometheus + promtool, prometheus-nginx-exporter, prometheus-postgres-exporter
#             (nothing is started: tests start Prometheus on a private port); RabbitMQ's prometheus
#             plugin (:15692) is enabled by `rabbitmq`
# Idempotent and quiet when everything already runs. Exits non-zero with one clear line on failure.
set -euo pipefail

log() { printf 'infra: %s\n' "$*"; }
die() { printf 'infra: ERROR: %s\n' "$*" >&2; exit 1; }

port_open() {  # host port
    (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null && return 0 || return 1
}

wait_port() {  # name host port seconds
    local i
    for ((i = 0; i < $4 * 5; i++)); do
        port_open "$2" "$3" && return 0
        sleep 0.2
    done
    die "$1 did not start listening on $2:$3 within $4 s"
}

APT_UPDATED=0
apt_install() {  # packages...
    if [[ $(id -u) -ne 0 ]]; then
        die "missing $*; install it with: sudo apt-get install -y $*"
    fi
    if [[ $APT_UPDATED -eq 0 ]]; then
        log "apt-get update"
        DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
        APT_UPDATED=1
    fi
    log "installing $* from Debian packages"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

ensure_postgres() {
    if ! command -v pg_ctlcluster >/dev/null || [[ -z "$(ls /etc/postgresql 2>/dev/null)" ]]; then
        apt_install postgresql
    fi
    if ! port_open 127.0.0.1 5432; then
        local version
        version=$(ls /etc/postgresql | sort -V | tail -1)
        log "starting PostgreSQL $version"
        pg_ctlcluster --skip-systemctl-redirect "$version" main start
        wait_port PostgreSQL 127.0.0.1 5432 30
    fi
    if ! psql -h 127.0.0.1 -U postgres -d postgres -Atqc 'SELECT 1' >/dev/null 2>&1; then
        # A fresh Debian cluster only allows peer auth for postgres: trust loopback (dev/test only).
        local hba
        hba=$(ls /etc/postgresql/*/main/pg_hba.conf | sort -V | tail -1)
        if [[ $(id -u) -eq 0 && -w "$hba" ]] && ! grep -q 'polls-platform' "$hba"; then
            log "allowing trust authentication on loopback in $hba (development machine)"
            sed -i '1i # polls-platform: trust loopback for development and tests\nhost all all 127.0.0.1/32 trust\nhost all all ::1/128 trust' "$hba"
            local version
            version=$(ls /etc/postgresql | sort -V | tail -1)
            pg_ctlcluster --skip-systemctl-redirect "$version" main reload
            sleep 1
        fi
        psql -h 127.0.0.1 -U postgres -d postgres -Atqc 'SELECT 1' >/dev/null \
            || die "PostgreSQL on 127.0.0.1:5432 refuses user postgres without a password; allow trust on loopback or set *_DATABASE_URL with a password"
    fi
}

ensure_redis() {
    command -v redis-server >/dev/null || apt_install redis-server
    if ! port_open 127.0.0.1 6379; then
        log "starting Redis"
        mkdir -p /var/lib/redis /var/log/redis
        redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
            --dir /var/lib/redis --logfile /var/log/redis/ci.log
        wait_port Redis 127.0.0.1 6379 15
    fi
}

ensure_rabbitmq() {
    command -v rabbitmq-server >/dev/null || apt_install rabbitmq-server
    if ! port_open 127.0.0.1 5672; then
        log "starting RabbitMQ (about 10 s)"
        if [[ $(id -u) -eq 0 ]]; then
            mkdir -p /var/lib/rabbitmq /var/log/rabbitmq
            chown -R rabbitmq:rabbitmq /var/lib/rabbitmq /var/log/rabbitmq 2>/dev/null || true
        fi
        # Never poll rabbitmqctl while the node boots: wait on the AMQP port instead.
        rabbitmq-server -detached >/dev/null 2>&1 || true
        wait_port RabbitMQ 127.0.0.1 5672 90
    fi
    if [[ $(id -u) -eq 0 ]] && command -v rabbitmqctl >/dev/null; then
        if ! rabbitmqctl -q list_vhosts 2>/dev/null | grep -qx polls_test; then
            log "creating RabbitMQ vhost polls_test"
            rabbitmqctl -q add_vhost polls_test >/dev/null 2>&1 || true
            rabbitmqctl -q set_permissions -p polls_test guest '.*' '.*' '.*' >/dev/null 2>&1 || true
        fi
        # Its metrics on :15692 (Prometheus); enabling a plugin on a running node takes effect at once.
        if ! port_open 127.0.0.1 15692 && command -v rabbitmq-plugins >/dev/null; then
            log "enabling RabbitMQ's prometheus plugin (:15692)"
            rabbitmq-plugins -q enable rabbitmq_prometheus >/dev/null 2>&1 || log "could not enable rabbitmq_prometheus"
        fi
    fi
}

ensure_nginx() {
    command -v nginx >/dev/null || [[ -x /usr/sbin/nginx ]] || apt_install nginx-light
}

# The browser tests drive Debian's Chromium (never a downloaded browser); the client's unit tests run on node.
ensure_browser() {
    [[ -x /usr/bin/chromium ]] || apt_install chromium
    command -v node >/dev/null || apt_install nodejs
}

# Alert rules are unit-tested with promtool and a real Prometheus scrapes the test stack (tests/e2e/test_prometheus.py).
ensure_metrics() {
    local missing=()
    command -v promtool >/dev/null || missing+=(prometheus)
    [[ -x /usr/bin/prometheus-nginx-exporter ]] || missing+=(prometheus-nginx-exporter)
    [[ -x /usr/bin/prometheus-postgres-exporter ]] || missing+=(prometheus-postgres-exporter)
    [[ ${#missing[@]} -eq 0 ]] || apt_install "${missing[@]}"
}

ensure_python() {  # the virtualenv is made from the system's Python 3.11 when it has venv and ensurepip
    [[ -x /usr/bin/python3.11 ]] || return 0
    /usr/bin/python3.11 -c 'import ensurepip, venv' 2>/dev/null && return 0
    if [[ $(id -u) -ne 0 ]]; then  # not fatal: the virtualenv is then made from the Python running the stack
        log "python3.11-venv is missing: the virtualenv will use $(command -v python3) (faster: sudo apt-get install -y python3.11-venv)"
        return 0
    fi
    apt_install python3.11-venv
}

ensure_wrk() {  # make bench drives the load with wrk
    command -v wrk >/dev/null || apt_install wrk
}

components=("$@")
[[ ${#components[@]} -eq 0 ]] && components=(all)
for c in "${components[@]}"; do
    case "$c" in
        all) ensure_postgres; ensure_redis; ensure_rabbitmq; ensure_nginx; ensure_browser; ensure_metrics; ensure_python ;;
        postgres | postgresql) ensure_postgres ;;
        redis) ensure_redis ;;
        rabbitmq | amqp) ensure_rabbitmq ;;
        nginx) ensure_nginx ;;
        browser | chromium) ensure_browser ;;
        wrk) ensure_wrk ;;
        python) ensure_python ;;
        metrics | prometheus) ensure_metrics ;;
        *) die "unknown component '$c' (postgres, redis, rabbitmq, nginx, browser, wrk, metrics, python, all)" ;;
    esac
done
