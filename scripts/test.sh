#!/usr/bin/env bash
# `make test`: the whole suite against real PostgreSQL, Redis and RabbitMQ on localhost.
#
#   scripts/test.sh              everything (what .ci/run runs)
#   scripts/test.sh lint         ruff check + ruff format --check + import-linter contracts + mypy (servicekit)
#   scripts/test.sh migrations   makemigrations --check for every service
#   scripts/test.sh units        every service's own suite (each in its own process)
#   scripts/test.sh stack        the cross-service suite in tests/ (starts and stops a test stack)
#
# Steps: start any missing local server (scripts/infra.sh), make the virtualenv, then the stages above.
# Each service suite runs in its own process on its own PostgreSQL test database; the cross-service
# suite (tests/) brings a real stack up through scripts/stack.py on ports 18001-18003 and 18080, so
# `make test` also works while `make up` runs. TEST_NAMESPACE=<name> isolates concurrent runs (own
# databases, run folders, Redis DB, RabbitMQ vhost and, with TEST_STACK_PORT_OFFSET, ports).
# Exits non-zero when any stage fails and prints one summary line at the end.
set -uo pipefail
cd "$(dirname "$0")/.."
REPO=$(pwd)
PY="$REPO/.venv/bin/python"
SERVICES=(polls_service choice_service vote_service)
DELIVERY_TESTS=tests/ops/test_delivery.py  # offline (no stack needed): run in the own-stack lane, below
# Tests that start stacks of their own: run beside the session-stack suite (its second lane).
# Offline checks (no stack) run in this lane too, since it is the shorter one: the delivery checks (pipelines,
# scanners) and the committed OpenAPI schemas and Postman collection against regeneration (~80 s that were on
# the session-stack lane, the longer one: 895 s against 720 s in the CI run of 2026-12-03).
OFFLINE_CONTRACT_TESTS=(tests/contract/test_openapi_committed.py
    tests/contract/test_postman.py::test_committed_collection_and_environment_match_regeneration)
OWN_STACK_TESTS=(tests/chaos tests/e2e/test_platform.py::test_embedded_defaults_come_up_and_down_leaves_nothing tests/e2e/test_failover.py tests/e2e/test_overload.py "$DELIVERY_TESTS" "${OFFLINE_CONTRACT_TESTS[@]}")
STAGES=("$@")
[[ ${#STAGES[@]} -eq 0 ]] && STAGES=(lint migrations units stack)

declare -a RESULTS=()
FAILED=0
STARTED=$SECONDS

stage() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
record() {  # name rc seconds
    local verdict=ok
    [[ $2 -ne 0 ]] && verdict="FAILED (exit $2)" && FAILED=1
    RESULTS+=("$1: $verdict, $3 s")
}

# pytest exit 5 means "no tests collected": a suite that tests nothing is a failure, not a pass.
pytest_rc() {
    [[ $1 -eq 5 ]] && echo "test: the suite collected no test" >&2
    echo "$1"
}

if [[ " ${STAGES[*]} " =~ " units " || " ${STAGES[*]} " =~ " stack " ]]; then
    stage "infrastructure (PostgreSQL, Redis, RabbitMQ, nginx)"
    bash scripts/infra.sh all || { echo "test: infrastructure is not available"; exit 1; }
fi
python3 scripts/stack.py venv || { echo "test: could not create the virtualenv"; exit 1; }
export PATH="$REPO/.venv/bin:$PATH"
export PACT_DO_NOT_TRACK=true

run_lint() {
    local t=$SECONDS rc=0
    stage "ruff check"
    ruff check . || rc=1
    stage "ruff format --check"
    ruff format --check . || rc=1
    stage "import-linter contracts"
    PYTHONPATH="servicekit:polls_service:choice_service:vote_service" lint-imports || rc=1
    stage "mypy (strict, servicekit)"
    mypy || rc=1  # pyproject.toml [tool.mypy]; cache under .run/mypy (~12 s cold, ~3 s warm)
    record lint $rc $((SECONDS - t))
}

run_migrations() {
    local t=$SECONDS rc=0 svc
    stage "makemigrations --check (every service)"
    for svc in "${SERVICES[@]}"; do
        # Embedded SQLite settings: the check needs no server, only the models and migration files.
        if ! (cd "$svc" && env -u POLLS_DATABASE_URL -u CHOICE_DATABASE_URL -u VOTE_DATABASE_URL \
            RUN_DIR="$REPO/.run/migrations-check" REDIS_URL= BROKER_URL= \
            "$PY" manage.py makemigrations --check --dry-run >"$REPO/.run/migrations-check-$svc.log" 2>&1); then
            echo "$svc: missing migrations or broken models:"; cat "$REPO/.run/migrations-check-$svc.log"; rc=1
        else
            echo "$svc: migrations up to date"
        fi
    done
    record migrations $rc $((SECONDS - t))
}

# One unit suite, its output in .run/units-<name>.log; appends "<name> <rc> <seconds>" to .run/units-results.
unit_suite() {  # name directory [pytest args...]
    local name=$1 dir=$2 t=$SECONDS rc
    shift 2
    (cd "$dir" && "$PY" -m pytest -q -p no:cacheprovider "$@") >".run/units-$name.log" 2>&1
    rc=$(pytest_rc $?)
    echo "$name $rc $((SECONDS - t))" >>.run/units-results
}

run_units() {
    # Two lanes for the machine's two cores, about even (CI run of 2026-12-03: polls_service 21 s + servicekit
    # 52-64 s beside choice_service 23 s + vote_service 28 s). Each suite has its own databases, Redis db and
    # queue namespace.
    local name rc secs lane
    rm -f .run/units-results .run/units-*.log
    (
        unit_suite polls_service polls_service
        [[ -d servicekit/tests ]] && unit_suite servicekit servicekit tests
    ) &
    lane=$!
    unit_suite choice_service choice_service
    unit_suite vote_service vote_service
    wait "$lane"
    for name in "${SERVICES[@]}" servicekit; do
        [[ -f .run/units-$name.log ]] || continue
        stage "$name suite"
        cat ".run/units-$name.log"
        read -r _ rc secs < <(grep "^$name " .run/units-results || echo "$name 1 0")
        record "$name" "$rc" "$secs"
    done
}

run_stack() {
    # Two lanes for the two cores: the tests that bring up stacks of their own (the fault tests with
    # their private broker, the embedded-defaults stack) run beside the suite on the session stack.
    local t=$SECONDS rc own_rc own_secs own_lane id skip=()
    for id in "${OWN_STACK_TESTS[@]}"; do
        # A folder is ignored; a test is deselected by its id relative to tests/ (pytest's rootdir).
        if [[ $id == *::* ]]; then skip+=(--deselect "${id#tests/}"); else skip+=(--ignore="$id"); fi
    done
    stage "cross-service suite (tests/, against a real stack; ${OWN_STACK_TESTS[*]} beside it, on their own stacks)"
    rm -f .run/stack-own.log .run/stack-own.result
    (
        s=$SECONDS
        # Start once the session stack is up (its gateway answers; at most 3 minutes): two stacks
        # starting at once on two cores each take twice as long.
        "$PY" - "$((18080 + ${TEST_STACK_PORT_OFFSET:-0}))" <<'WAIT'
import sys, time, urllib.request
deadline = time.monotonic() + 180
while time.monotonic() < deadline:
    try:
        urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/healthz", timeout=1)
        break
    except OSError:
        time.sleep(0.5)
WAIT
        "$PY" -m pytest -c tests/pytest.ini -q --durations=10 "${OWN_STACK_TESTS[@]}" >.run/stack-own.log 2>&1
        echo "$(pytest_rc $?) $((SECONDS - s))" >.run/stack-own.result
    ) &
    own_lane=$!
    "$PY" -m pytest -c tests/pytest.ini -q --durations=15 --ignore="$DELIVERY_TESTS" "${skip[@]}" tests
    rc=$(pytest_rc $?)
    record cross-service "$rc" $((SECONDS - t))
    wait "$own_lane"
    stage "own-stack tests (${OWN_STACK_TESTS[*]})"
    cat .run/stack-own.log
    read -r own_rc own_secs < <(cat .run/stack-own.result 2>/dev/null || echo "1 0")
    record own-stack "$own_rc" "$own_secs"
}

mkdir -p .run
for s in "${STAGES[@]}"; do
    case "$s" in
        lint) run_lint ;;
        migrations) run_migrations ;;
        units) run_units ;;
        stack) run_stack ;;
        *) echo "test: unknown stage '$s' (lint, migrations, units, stack)"; exit 2 ;;
    esac
done

echo
for line in "${RESULTS[@]}"; do echo "  $line"; done
if [[ $FAILED -ne 0 ]]; then
    echo "make test: FAILED after $((SECONDS - STARTED)) s"
    exit 1
fi
echo "make test: all passed in $((SECONDS - STARTED)) s"
