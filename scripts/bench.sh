#!/usr/bin/env bash
# `make bench`: the vote path through the gateway beside a minimal baseline doing the same durable work.
#
#   scripts/bench.sh                      start a dedicated stack on PostgreSQL (ports 18501-18503/18580 (BENCH_PORT_BASE)),
#                                         the baseline app (127.0.0.1:18590, database bench_baseline), benchmark both
#                                         interleaved in one window, stop both
#   scripts/bench.sh --baseline-only      only the baseline (also BENCH_ONLY=baseline; needs PostgreSQL alone)
#   BENCH_GATEWAY=http://127.0.0.1:8080 BENCH_VOTES_URL=http://127.0.0.1:8003 BENCH_RUN_DIR=.run \
#   BENCH_VOTE_DATABASE_URL=postgres://postgres@127.0.0.1:5432/votes scripts/bench.sh
#                                         benchmark a platform that is already running (make up on PostgreSQL)
#
# Knobs: BENCH_DURATION (s per run, default 10), BENCH_CONNECTIONS (64), BENCH_LOW_CONNECTIONS (8),
# BENCH_THREADS (2), BENCH_POLLS (20), BENCH_ROUNDS (1), BENCH_VISIBLE_DEADLINE (30 s). wrk (Debian
# package) drives the load with the Lua scripts in scripts/bench/; the figures, the ratios and the targets are printed and
# written to RUN_DIR/bench/results.json. See docs/performance.md.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v wrk >/dev/null || { echo "bench: wrk is not installed (apt-get install wrk)"; exit 1; }
baseline_only=${BENCH_ONLY:-}
for arg in "$@"; do [[ $arg == --baseline-only ]] && baseline_only=baseline; done
if [[ $baseline_only == baseline ]]; then
    bash scripts/infra.sh postgres
else
    bash scripts/infra.sh postgres redis rabbitmq nginx
fi
python3 scripts/stack.py venv

# The baseline's dev dependencies (requirements/bench.txt) into .venv, once per version of that file.
marker=.venv/.bench-requirements-hash
wanted=$(sha256sum requirements/bench.txt | cut -d' ' -f1)
if [[ ! -f $marker || $(cat "$marker") != "$wanted" ]] \
    || ! .venv/bin/python -c 'import starlette, uvicorn, asyncpg' 2>/dev/null; then
    echo "bench: installing the baseline's requirements (requirements/bench.txt) into .venv"
    pip_log=$(mktemp)
    .venv/bin/python -m pip install --disable-pip-version-check -q -r requirements/bench.txt >"$pip_log" 2>&1 \
        || { cat "$pip_log"; rm -f "$pip_log"; echo "bench: pip install -r requirements/bench.txt failed"; exit 1; }
    rm -f "$pip_log"
    echo "$wanted" >"$marker"
fi
exec .venv/bin/python scripts/bench.py "$@"
