"""Everything before launching: dev secrets, local servers, databases, reachability, migrations, static.

``prepare(stack)`` runs the steps in order; each step is a function of its own. Imports of the
virtualenv's packages (psycopg) stay inside the functions that need them.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
import time
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlsplit

from .common import LOCAL_HOSTS, REPO, SERVICES, Service, StackError, file_lock, mask_url

if TYPE_CHECKING:
    from .api import Stack

# Run inside a service's environment: what its settings resolve to and, with --check, whether they answer.
INTROSPECT = r"""
import json, logging, sys
import django
django.setup()
logging.disable(logging.CRITICAL)
from django.conf import settings
from django.core.management import get_commands
from servicekit.health import run_checks
db = settings.DATABASES["default"]
queues = getattr(settings, "CELERY_WORKER_QUEUES", None)
info = {
    "backends": getattr(settings, "SERVICE_BACKENDS", {}),
    "database": {"engine": db["ENGINE"].rsplit(".", 1)[-1], "name": str(db.get("NAME", "")),
                 "host": db.get("HOST") or "", "port": str(db.get("PORT") or "")},
    "cache": settings.CACHES["default"].get("LOCATION", ""),
    "broker": settings.CELERY_BROKER_URL,
    "queues": list(queues) if queues else None,
    "default_queue": getattr(settings, "CELERY_TASK_DEFAULT_QUEUE", "celery"),
    "ensure_operator": "ensure_operator" in get_commands(),
}
if "--check" in sys.argv:
    info["checks"] = run_checks(("database", "cache", "broker"))
print("INTROSPECT " + json.dumps(info))
"""


def prepare(stack: Stack) -> None:
    """Secrets, servers, databases, reachability, migrations, static files, operator: in that order."""
    started = time.monotonic()
    stack.run_dir.mkdir(parents=True, exist_ok=True)
    write_dev_secrets(stack)
    ensure_local_servers(stack.env, stack.log)
    ensure_rabbitmq_vhost(stack.env, fresh=stack.fresh_databases)
    build_client(stack.python)
    ensure_databases(stack.env, fresh=stack.fresh_databases)
    stack.info = check_backends(stack)  # before anything is migrated
    per_service(lambda service: migrate_and_collect(stack, service))
    stack.log(f"prepared (secrets, migrations, static files) in {time.monotonic() - started:.1f} s")


def write_dev_secrets(stack: Stack) -> None:
    """The dev secrets and, unless the gateway is given a certificate of its own, the dev CA and its certificate."""
    from scripts.devsecrets import ensure_dev_secrets, ensure_dev_tls, trust_hint

    created = ensure_dev_secrets(stack.run_dir)
    if not stack.env.get("GATEWAY_TLS_CERT_FILE"):
        tls = ensure_dev_tls(stack.run_dir)
        created += tls
        if tls:
            stack.log(f"HTTPS: trust the development CA once -- {trust_hint(stack.run_dir)}")
    if created:
        stack.log(f"generated dev secrets in {stack.run_dir / 'secrets'}: {', '.join(created)}")


def ensure_local_servers(env: dict[str, str], log) -> None:
    """Start PostgreSQL/Redis/RabbitMQ on this machine when a configured URL points here (and nginx)."""
    wanted: list[str] = []
    for service in SERVICES:
        target = postgres_target(env.get(service.database_env, ""))
        if target and target["host"] in LOCAL_HOSTS and "postgres" not in wanted:
            wanted.append("postgres")
    redis = urlsplit(env.get("REDIS_URL", ""))
    if redis.scheme.startswith("redis") and (redis.hostname or "") in LOCAL_HOSTS:
        wanted.append("redis")
    broker = urlsplit(env.get("BROKER_URL", ""))
    if broker.scheme in ("amqp", "pyamqp", "amqps") and (broker.hostname or "") in LOCAL_HOSTS:
        wanted.append("rabbitmq")
    wanted.append("nginx")
    result = subprocess.run(
        ["bash", str(REPO / "scripts" / "infra.sh"), *wanted], capture_output=True, text=True, check=False
    )
    for line in result.stdout.splitlines():
        log(line)
    if result.returncode != 0:
        raise StackError(result.stderr.strip().splitlines()[-1] if result.stderr.strip() else "infra.sh failed")


def ensure_rabbitmq_vhost(env: dict[str, str], *, fresh: bool = False) -> None:
    """Create the broker URL's vhost on a local RabbitMQ when missing (needs rabbitmqctl).

    ``fresh`` deletes it first, so no queue declared by an earlier run (with other arguments)
    survives into this one: the test stack starts from an empty broker as from empty databases.
    """
    broker = urlsplit(env.get("BROKER_URL", ""))
    if broker.scheme not in ("amqp", "pyamqp") or (broker.hostname or "") not in LOCAL_HOSTS:
        return
    vhost = unquote(broker.path[1:]) if broker.path not in ("", "/") else "/"
    if vhost == "/" or not shutil.which("rabbitmqctl"):
        return
    listed = subprocess.run(["rabbitmqctl", "-q", "list_vhosts"], capture_output=True, text=True, check=False)
    if vhost in listed.stdout.split():
        if not fresh:
            return
        subprocess.run(["rabbitmqctl", "-q", "delete_vhost", vhost], capture_output=True, check=False)
    subprocess.run(["rabbitmqctl", "-q", "add_vhost", vhost], capture_output=True, check=False)
    user = unquote(broker.username or "guest")
    subprocess.run(
        ["rabbitmqctl", "-q", "set_permissions", "-p", vhost, user, ".*", ".*", ".*"],
        capture_output=True,
        check=False,
    )


def build_client(python: str) -> None:
    """Build the browser client (``web/build.py`` -> ``web/dist``) when its build script exists."""
    build = REPO / "web" / "build.py"
    if not build.is_file():
        return
    with file_lock(REPO / ".run" / "web-build.lock"):
        result = subprocess.run([python, str(build)], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        tail = (result.stderr or result.stdout).strip().splitlines()[-5:]
        raise StackError("web client build failed:\n  " + "\n  ".join(tail))


# ----- databases ------------------------------------------------------------------------------------


def postgres_target(url: str) -> dict[str, str] | None:
    """Connection parts of a postgres URL, or None for other engines."""
    parts = urlsplit(url)
    if parts.scheme not in ("postgres", "postgresql", "pgsql", "postgis"):
        return None
    return {
        "host": parts.hostname or "127.0.0.1",
        "port": str(parts.port or 5432),
        "user": unquote(parts.username or "postgres"),
        "password": unquote(parts.password or ""),
        "dbname": unquote(parts.path.lstrip("/")),
    }


def ensure_databases(env: dict[str, str], *, fresh: bool) -> None:
    """Create each service's PostgreSQL database when it is local (recreate every one when ``fresh``)."""
    for service in SERVICES:
        url = env.get(service.database_env, "")
        target = postgres_target(url)
        if target and (fresh or target["host"] in LOCAL_HOSTS):
            try:
                ensure_postgres_database(url, fresh=fresh)
            except StackError as exc:
                raise StackError(f"{service.name}: database unreachable ({mask_url(url)}): {exc}") from exc


def ensure_postgres_database(url: str, *, fresh: bool) -> None:
    """Create the database of ``url`` if missing (drop it first when ``fresh``)."""
    import psycopg
    from psycopg import sql

    target = postgres_target(url)
    assert target is not None
    name = target.pop("dbname")
    try:
        conn = psycopg.connect(**target, dbname="postgres", autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else exc.__class__.__name__
        raise StackError(f"PostgreSQL at {target['host']}:{target['port']} is unreachable: {first}") from exc
    with conn:
        if fresh:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if not exists:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


# ----- each service's own view of its backends ----------------------------------------------------


def introspect(python: str, service: Service, env: dict[str, str], *, check: bool) -> dict:
    """What the service's settings resolve to (``INTROSPECT``); with ``check``, whether each backend answers."""
    result = subprocess.run(
        [python, "-c", INTROSPECT, *(["--check"] if check else [])],
        cwd=REPO / service.directory,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    for line in result.stdout.splitlines():
        if line.startswith("INTROSPECT "):
            return json.loads(line.removeprefix("INTROSPECT "))
    tail = (result.stderr or result.stdout).strip().splitlines()[-8:]
    raise StackError(f"{service.name}: settings do not load:\n  " + "\n  ".join(tail))


def check_backends(stack: Stack) -> dict[str, dict]:
    """Every service's introspection, once its database, cache and broker all answered (else StackError)."""
    infos = per_service(lambda service: stack.introspect(service, check=True))
    for service in SERVICES:
        info = infos[service.name]
        for check, result in info["checks"].items():
            if result != "ok":
                raise StackError(f"{service.name}: {check} unreachable ({describe_target(info, check)})")
    return infos


def describe_target(info: dict, check: str) -> str:
    if check == "database":
        db = info["database"]
        if db["engine"] == "sqlite3":
            return f"sqlite {db['name']}"
        return f"{db['engine']} {db['host'] or '127.0.0.1'}:{db['port'] or 5432}/{db['name']}"
    if check == "cache":
        return mask_url(str(info["cache"]))
    return mask_url(str(info["broker"]))


def migrate_and_collect(stack: Stack, service: Service) -> None:
    stack.manage(service, "migrate", "--noinput")
    stack.manage(service, "collectstatic", "--noinput", "--clear")
    if stack.info[service.name]["ensure_operator"]:
        stack.manage(service, "ensure_operator")


def per_service(func) -> dict:
    """``func(service)`` for every service at once (one thread each); the first error is re-raised here."""
    results: dict = {}
    errors: list[BaseException] = []

    def run(service: Service) -> None:
        try:
            results[service.name] = func(service)
        except BaseException as exc:  # re-raised below in the caller's thread
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(s,)) for s in SERVICES]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return results
