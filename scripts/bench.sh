#!/usr/bin/env bash
# `make bench`: votes/s and results/s through the gateway, each beside the vote service's /healthz.
#
#   scripts/bench.sh                      start a dedicated stack on PostgreSQL (ports 18501-18503/18580 (BENCH_PORT_BASE)),
#                                         benchmark it, stop it
#   BENCH_GATEWAY=http://127.0.0.1:8080 BENCH_VOTES_URL=http://127.0.0.1:8003 BENCH_RUN_DIR=.run scripts/bench.sh
#                                         benchmark a platform that is already running (make up on PostgreSQL)
#
# Knobs: BENCH_DURATION (s, default 10), BENCH_CONNECTIONS (64), BENCH_THREADS (2), BENCH_POLLS (20).
# wrk (Debian package) drives the load with the Lua scripts in scripts/bench/; the figures and their
# ratios are printed and written to RUN_DIR/bench/results.json. See docs/performance.md.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v wrk >/dev/null || { echo "bench: wrk is not installed (apt-get install wrk)"; exit 1; }
bash scripts/infra.sh postgres redis rabbitmq nginx
python3 scripts/stack.py venv
exec .venv/bin/python scripts/bench.py "$@"
