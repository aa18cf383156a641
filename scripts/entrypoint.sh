#!/bin/sh
# Container entrypoint of a service image (see Dockerfile). SERVICE_PACKAGE names the Django project.
#   web (default)   granian (servicekit.server) on WEB_BIND with multiprocess metrics in a fresh PROMETHEUS_MULTIPROC_DIR
#   worker          Celery worker (queues: CELERY_WORKER_QUEUES of the service, or WORKER_QUEUES)
#   beat            Celery beat (one per service)
#   (Celery runs --quiet: no plain-text banner, every log line is ECS JSON)
#   migrate         migrate the service's own database, then ensure_operator when the service has it
#   manage ARGS     any manage.py command
set -eu
: "${SERVICE_PACKAGE:?SERVICE_PACKAGE is not set}"
role="${1:-web}"
[ "$#" -gt 0 ] && shift

case "$role" in
web)
    rm -rf "${PROMETHEUS_MULTIPROC_DIR:?}" && mkdir -p "$PROMETHEUS_MULTIPROC_DIR"
    exec python -m servicekit.server "${SERVICE_PACKAGE}.wsgi:application" "$@"
    ;;
worker)
    # Its own metrics folder, emptied like the web server's (WORKER_METRICS_PORT serves it).
    rm -rf "${PROMETHEUS_MULTIPROC_DIR:?}" && mkdir -p "$PROMETHEUS_MULTIPROC_DIR"
    queues="${WORKER_QUEUES:-$(python -c 'import django; django.setup(); from django.conf import settings as s; print(",".join(getattr(s, "CELERY_WORKER_QUEUES", None) or [s.CELERY_TASK_DEFAULT_QUEUE]))')}"
    exec celery -A "$SERVICE_PACKAGE" --quiet worker -Q "$queues" --concurrency "${WORKER_CONCURRENCY:-2}" -n "${SERVICE_PACKAGE}@%h" --without-gossip --without-mingle --loglevel "${LOG_LEVEL:-INFO}" "$@"
    ;;
beat)
    exec celery -A "$SERVICE_PACKAGE" --quiet beat -s /tmp/celerybeat-schedule --loglevel "${LOG_LEVEL:-INFO}" "$@"
    ;;
migrate)
    python manage.py migrate --noinput
    if python manage.py help ensure_operator >/dev/null 2>&1; then python manage.py ensure_operator; fi
    ;;
manage)
    exec python manage.py "$@"
    ;;
*)
    echo "entrypoint: unknown role '$role' (web, worker, beat, migrate, manage)" >&2
    exit 64
    ;;
esac
