"""Settings every service shares, read from the environment with safe development defaults.

A service's settings module stays short and says only what is its own: it names each shared setting
it takes from ``common_settings`` (so a reader and a linter see every name), then adds its own::

    from servicekit.settings import common_settings, env, issuer_settings

    shared = common_settings(
        service="polls",
        base_dir=BASE_DIR,
        database_env="POLLS_DATABASE_URL",
        apps=["polls", "accounts"],
        urlconf="polls_service.urls",
    )
    SECRET_KEY = shared["SECRET_KEY"]
    ...                                        # one line per shared name, grouped by topic
    SERVICEKIT = shared["SERVICEKIT"]
    SERVICEKIT.update(issuer_settings(run=RUN_DIR, production=...))   # polls_service only: the issuer

``servicekit/tests/test_settings.py`` fails when a service's settings module leaves a shared name out.

``auth_settings`` (in ``common_settings``: how every service verifies tokens and service calls) and
``issuer_settings`` (polls_service only: how to sign) build the token entries of ``SERVICEKIT``.

Configuration comes from one ``env`` object (django-environ, ``servicekit.env``). A ``.env`` file at the repository root
is read when present; real environment variables win over it. ``.env.example`` documents them all.

Embedded defaults (nothing configured): one SQLite file per service under ``RUN_DIR``, kombu's
filesystem broker shared under ``RUN_DIR/broker`` and a file-based cache per service, so several
processes cooperate without any server. With ``*_DATABASE_URL``, ``REDIS_URL`` and ``BROKER_URL``
set, the real PostgreSQL, Redis and RabbitMQ are used.

``DJANGO_ENV=production`` refuses to start without a real secret key or with ``DJANGO_DEBUG`` on.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import environ
from django.core.exceptions import ImproperlyConfigured

from servicekit.env import env as env  # re-exported: a service's settings read through it too
from servicekit.throttle_rates import DEVELOPMENT_THROTTLE_RATES, PRODUCTION_THROTTLE_RATES, THROTTLE_RATE_VARIABLES

INSECURE_DEV_SECRET = "django-insecure-development-only-never-use-in-production"


def repo_root(base_dir: Path) -> Path:
    """The repository (or image) root: the parent of a service's directory."""
    return Path(base_dir).resolve().parent


def load_dotenv(base_dir: Path) -> None:
    """Read ``<repo root>/.env`` into the environment if it exists; set variables are never overridden."""
    dotenv = repo_root(base_dir) / ".env"
    if dotenv.is_file():
        environ.Env.read_env(str(dotenv), overwrite=False)


def run_dir(base_dir: Path) -> Path:
    """Where runtime state lives (SQLite files, broker folders, dev secrets, pid files)."""
    return Path(env.str("RUN_DIR", default=str(repo_root(base_dir) / ".run")))


def secret_key(*, production: bool, run: Path) -> str:
    """The Django secret key: required and strong in production, a generated dev file or placeholder otherwise."""
    key = env.str("DJANGO_SECRET_KEY", default="")
    if production:
        if not key or key == INSECURE_DEV_SECRET or key.startswith("django-insecure") or len(key) < 50:
            raise ImproperlyConfigured(
                "DJANGO_SECRET_KEY must be set to a random value of at least 50 characters in production."
            )
        return key
    if key:
        return key
    generated = run / "secrets" / "django_secret_key"
    if generated.is_file():
        return generated.read_text().strip()
    return INSECURE_DEV_SECRET


def database(*, database_env: str, service: str, run: Path) -> dict[str, Any]:
    """The service's own database: ``<SERVICE>_DATABASE_URL`` or one SQLite file under ``RUN_DIR``."""
    config = env.db_url(database_env, default=f"sqlite:///{run / f'{service}.sqlite3'}")
    engine = config["ENGINE"]
    if engine == "django.db.backends.postgresql":
        # Persistent connections suit web workers that run one request at a time; health checks drop dead ones, skipped
        # for a connection that finished a request cleanly within the grace (servicekit.db.postgresql).
        config["ENGINE"] = "servicekit.db.postgresql"
        config.setdefault("CONN_MAX_AGE", env.int("DATABASE_CONN_MAX_AGE", default=60))
        config["CONN_HEALTH_CHECKS"] = True
        config["HEALTH_CHECK_GRACE"] = env.float("DATABASE_HEALTH_CHECK_GRACE", default=1.0)
        options = config.setdefault("OPTIONS", {})
        options.setdefault("connect_timeout", 5)
        # Server-side binding and prepared statements: a statement run DATABASE_PREPARE_THRESHOLD times on a
        # connection is parsed and planned once, and its parameters travel apart from its text instead of
        # being quoted into it in Python. On the vote's statement this halved PostgreSQL's CPU per vote and
        # cut ~0.2 ms of the request's (docs/performance.md). Behind a pooler that cannot keep prepared
        # statements (PgBouncer in transaction mode before 1.21), set DATABASE_PREPARE_THRESHOLD empty.
        if env.bool("DATABASE_SERVER_SIDE_BINDING", default=True):
            options["server_side_binding"] = True
            threshold = env.str("DATABASE_PREPARE_THRESHOLD", default="5")
            options["prepare_threshold"] = int(threshold) if threshold else None
    elif engine == "django.db.backends.sqlite3":
        # Several processes (web workers, Celery) share the file: WAL and immediate transactions
        # avoid "database is locked" under concurrent writers.
        config["OPTIONS"] = {
            "timeout": 20,
            "transaction_mode": "IMMEDIATE",
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        }
    return config


def cache(*, service: str, run: Path) -> dict[str, Any]:
    """Redis when ``REDIS_URL`` is set, else a file cache that every process of the service shares."""
    redis_url = env.str("REDIS_URL", default="")
    if redis_url:
        return {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": redis_url,
            "KEY_PREFIX": env.str("CACHE_KEY_PREFIX", default=service),
            "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 2, "SOCKET_TIMEOUT": 2},
        }
    return {
        "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
        "LOCATION": str(run / "cache" / service),
        "KEY_PREFIX": service,
    }


def broker(*, run: Path) -> tuple[str, dict[str, Any]]:
    """The Celery broker URL and transport options: ``BROKER_URL`` or kombu's filesystem transport."""
    url = env.str("BROKER_URL", default="")
    if url:
        return url, {"confirm_publish": True} if url.startswith(("amqp", "pyamqp")) else {}
    folder = run / "broker"
    for sub in ("queue", "processed", "control"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    return "filesystem://", {
        "data_folder_in": str(folder / "queue"),
        "data_folder_out": str(folder / "queue"),
        "processed_folder": str(folder / "processed"),
        "control_folder": str(folder / "control"),
        "store_processed": False,
    }


def celery_topology(*, service: str) -> dict[str, Any]:
    """Queues, delivery guarantees and beat entries of the event machinery (``servicekit.events``).

    Every service's worker consumes ``CELERY_WORKER_QUEUES`` (read by ``scripts/stack.py``):
    ``<service>.events`` (if it consumes any event type: bound to the ``polls.events`` topic exchange),
    ``<service>.relay`` (publishing the outbox) and ``<service>.default`` (its own tasks). Tasks are
    acknowledged after they ran (``acks_late``), re-queued if the worker process dies, and a worker
    reserves one message at a time (a message of ``<service>.events`` is a batch of events). Database
    connections outlive tasks (``CELERY_DB_REUSE_MAX``). A service adds its own beat entries to
    ``CELERY_BEAT_SCHEDULE``.
    """
    from servicekit.events.bus import celery_queues, default_queue_name, relay_queue_name

    queues = celery_queues(service)
    sweep = env.float("EVENTS_RELAY_SWEEP_SECONDS", default=2.0)
    return {
        "CELERY_TASK_QUEUES": queues,
        "CELERY_TASK_DEFAULT_QUEUE": default_queue_name(service),
        "CELERY_WORKER_QUEUES": [q.name for q in queues if not q.name.endswith(".dlq")][::-1],
        "CELERY_TASK_ROUTES": {
            "servicekit.events.relay": {"queue": relay_queue_name(service)},
            "servicekit.events.prune": {"queue": default_queue_name(service)},
            "servicekit.audit.purge": {"queue": default_queue_name(service)},
        },
        "CELERY_TASK_ACKS_LATE": True,
        "CELERY_TASK_REJECT_ON_WORKER_LOST": True,
        "CELERY_WORKER_PREFETCH_MULTIPLIER": 1,
        # Celery's Django fixup closes every database connection before and after each task unless
        # this is set (a new PostgreSQL connection per task: most of a small task's CPU, measured).
        # Connections are kept instead and aged/health-checked by Django's CONN_MAX_AGE and
        # CONN_HEALTH_CHECKS, as in a web request (servicekit.events.tasks); this is only a backstop.
        "CELERY_DB_REUSE_MAX": 1000,
        "CELERY_TASK_DEFAULT_DELIVERY_MODE": "persistent",
        # Let a running task finish when the broker connection drops: its message is redelivered
        # anyway (acks_late) and the inbox absorbs the repeat, while cancelling terminates the pool
        # process, after which Celery 5.x can crash on reconnect ("file descriptor is None").
        "CELERY_WORKER_CANCEL_LONG_RUNNING_TASKS_ON_CONNECTION_LOSS": False,
        # Reconnect within ~2 s after a broker restart (Celery's default backoff grows to 30 s).
        "CELERY_WORKER_CONSUMER": "servicekit.events.worker:Consumer",
        "CELERY_BEAT_SCHEDULE": {
            # Publishes whatever a missed relay request (broker down, crash) left in the outbox.
            "servicekit-relay-sweep": {
                "task": "servicekit.events.relay",
                "schedule": sweep,
                "kwargs": {"linger": 0.0},
                "options": {"queue": relay_queue_name(service), "expires": max(sweep * 5, 10.0)},
            },
            "servicekit-prune-events": {
                "task": "servicekit.events.prune",
                "schedule": 3600.0,
                "options": {"queue": default_queue_name(service), "expires": 600.0},
            },
            # Deletes audit entries older than AUDIT_RETENTION_DAYS (servicekit.audit).
            "servicekit-purge-audit": {
                "task": "servicekit.audit.purge",
                "schedule": 3600.0,
                "options": {"queue": default_queue_name(service), "expires": 600.0},
            },
        },
    }


# --- Tokens and service credentials (SERVICEKIT entries) ------------------------------------------------


def _pem_text(value: str) -> str:
    """PEM from an environment variable: literal ``\\n`` sequences (one-line .env values) become newlines."""
    return value.replace("\\n", "\n").strip()


def _read_secret(path: Path) -> str:
    try:
        return path.read_text().strip()
    except OSError:
        return ""


def throttle_rates(*, production: bool) -> dict[str, str]:
    """Each credential budget (``servicekit.throttling``): its variable, else the environment's default."""
    defaults = PRODUCTION_THROTTLE_RATES if production else DEVELOPMENT_THROTTLE_RATES
    return {scope: env.str(variable, default=defaults[scope]) for scope, variable in THROTTLE_RATE_VARIABLES.items()}


def service_identity_settings(*, service: str, secrets: Path, production: bool) -> dict[str, Any]:
    """This service's own key and every service's public keys (``servicekit.service_identity``).

    ``SERVICE_KEYS_DIR`` (dev: ``RUN_DIR/secrets/service_keys``; k8s: a mounted volume) holds this
    service's ``<service>.pem`` and every service's ``<name>.pub.pem``; ``SERVICE_PRIVATE_KEY`` (PEM;
    one-line values with literal ``\\n`` work) or ``SERVICE_PRIVATE_KEY_FILE``, and ``SERVICE_PUBLIC_KEYS``
    (a JSON object ``{"polls": PEM bundle, ...}``) override them. Production refuses to start without its
    own key.
    """
    keys_dir = env.str("SERVICE_KEYS_DIR", default=str(secrets / "service_keys"))
    private_key = _pem_text(env.str("SERVICE_PRIVATE_KEY", default=""))
    private_key_file = env.str("SERVICE_PRIVATE_KEY_FILE", default=str(Path(keys_dir) / f"{service}.pem"))
    raw_public = env.str("SERVICE_PUBLIC_KEYS", default="").strip()
    try:
        public_keys = json.loads(raw_public) if raw_public else {}
    except ValueError as exc:
        raise ImproperlyConfigured("SERVICE_PUBLIC_KEYS must be a JSON object {service: PEM bundle}.") from exc
    if not isinstance(public_keys, dict) or not all(isinstance(v, str) for v in public_keys.values()):
        raise ImproperlyConfigured("SERVICE_PUBLIC_KEYS must be a JSON object {service: PEM bundle}.")
    if production and not (private_key or _read_secret(Path(private_key_file))):
        raise ImproperlyConfigured(f"SERVICE_PRIVATE_KEY must hold the {service} service's own RSA key (PEM).")
    return {
        "SERVICE_PRIVATE_KEY": private_key,
        "SERVICE_PRIVATE_KEY_FILE": private_key_file,
        "SERVICE_PUBLIC_KEYS": {name: _pem_text(bundle) for name, bundle in public_keys.items()},
        "SERVICE_KEYS_DIR": keys_dir,
        "SERVICE_TOKEN_SECONDS": env.int("SERVICE_TOKEN_SECONDS", default=60),
    }


def auth_settings(*, run: Path, service: str) -> dict[str, Any]:
    """The ``SERVICEKIT`` entries every service needs to verify tokens and service calls (read from env)."""
    secrets = Path(run) / "secrets"
    production = env.str("DJANGO_ENV", default="development") == "production"
    return {
        "JWT_ISSUER": env.str("JWT_ISSUER", default="polls-platform"),
        "JWT_AUDIENCE": env.str("JWT_AUDIENCE", default="polls-platform-api"),
        "JWT_PUBLIC_KEYS": _pem_text(env.str("JWT_PUBLIC_KEYS", default="")),
        "JWT_PUBLIC_KEYS_FILE": env.str("JWT_PUBLIC_KEYS_FILE", default=str(secrets / "jwt_public.pem")),
        "JWT_LEEWAY_SECONDS": min(env.int("JWT_LEEWAY_SECONDS", default=30), 30),
        "JWKS_URL": env.str("JWKS_URL", default="http://127.0.0.1:8001/.well-known/jwks.json"),
        **service_identity_settings(service=service, secrets=secrets, production=production),
        "TRUSTED_PROXIES": tuple(
            item.strip() for item in env.str("TRUSTED_PROXIES", default="127.0.0.1,::1").split(",") if item.strip()
        ),
        "THROTTLE_RATES": throttle_rates(production=production),
    }


def issuer_settings(*, run: Path, production: bool = False) -> dict[str, Any]:
    """The ``SERVICEKIT`` entries of the token issuer (polls_service): private key and lifetimes.

    Access tokens live ``JWT_ACCESS_MINUTES`` (default 5, at most 15), refresh tokens
    ``JWT_REFRESH_MINUTES`` (default one day). In production a private key is required.
    """
    private_key = _pem_text(env.str("JWT_PRIVATE_KEY", default=""))
    private_key_file = env.str("JWT_PRIVATE_KEY_FILE", default=str(Path(run) / "secrets" / "jwt_private.pem"))
    if production and not private_key and not Path(private_key_file).is_file():
        raise ImproperlyConfigured("JWT_PRIVATE_KEY or JWT_PRIVATE_KEY_FILE must name an RSA private key.")
    access_minutes = env.int("JWT_ACCESS_MINUTES", default=5)
    if not 1 <= access_minutes <= 15:
        raise ImproperlyConfigured("JWT_ACCESS_MINUTES must be between 1 and 15.")
    return {
        "JWT_PRIVATE_KEY": private_key,
        "JWT_PRIVATE_KEY_FILE": private_key_file,
        "JWT_KEY_ID": env.str("JWT_KEY_ID", default=""),
        "JWT_ACCESS_SECONDS": access_minutes * 60,
        "JWT_REFRESH_SECONDS": env.int("JWT_REFRESH_MINUTES", default=24 * 60) * 60,
        # The issuer's own keys are its configuration; fetching its own JWKS could only deadlock a worker.
        "JWKS_URL": "",
    }


def describe_backends(databases: dict[str, Any], caches: dict[str, Any], broker_url: str) -> dict[str, str]:
    """One word per backend, for start-up banners and ``/readyz`` (never includes credentials)."""
    engine = databases["default"]["ENGINE"].rsplit(".", 1)[-1]
    cache_backend = "redis" if "redis" in caches["default"]["BACKEND"].lower() else "file"
    broker_kind = broker_url.split("://", 1)[0]
    return {"database": engine, "cache": cache_backend, "broker": broker_kind}


def common_settings(
    *,
    service: str,
    base_dir: Path,
    database_env: str,
    apps: list[str],
    urlconf: str,
) -> dict[str, Any]:
    """All settings a service shares with the others, as a dict for ``globals().update(...)``.

    ``service`` is the public name used in paths (``/admin/<service>/``, ``/static/<service>/``,
    ``/api/schema/<service>/``) and in logs and metrics.
    """
    load_dotenv(base_dir)
    run = run_dir(base_dir)
    run.mkdir(parents=True, exist_ok=True)

    production = env.str("DJANGO_ENV", default="development") == "production"
    debug = env.bool("DJANGO_DEBUG", default=False)
    if production and debug:
        raise ImproperlyConfigured("DJANGO_DEBUG must be off when DJANGO_ENV=production.")

    databases = {"default": database(database_env=database_env, service=service, run=run)}
    caches = {"default": cache(service=service, run=run)}
    broker_url, broker_options = broker(run=run)
    max_body = env.int("MAX_BODY_BYTES", default=64 * 1024)

    return {
        # --- Core -------------------------------------------------------------------------------
        "BASE_DIR": Path(base_dir),
        "RUN_DIR": run,
        "SECRET_KEY": secret_key(production=production, run=run),
        "DEBUG": debug,
        "ALLOWED_HOSTS": env.list("DJANGO_ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "[::1]"]),
        "ROOT_URLCONF": urlconf,
        "WSGI_APPLICATION": f"{urlconf.split('.')[0]}.wsgi.application",
        "DEFAULT_AUTO_FIELD": "django.db.models.BigAutoField",
        "LANGUAGE_CODE": "en-us",
        "TIME_ZONE": "UTC",
        "USE_I18N": False,
        "USE_TZ": True,
        # Registration, admin password changes and ensure_operator (production) all run these.
        "AUTH_PASSWORD_VALIDATORS": [
            {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
            {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 10}},
            {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
            {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
        ],
        # --- Applications and middleware ------------------------------------------------------------
        "INSTALLED_APPS": [
            "django.contrib.admin",
            "django.contrib.auth",
            "django.contrib.contenttypes",
            "django.contrib.sessions",
            "django.contrib.messages",
            "django.contrib.staticfiles",
            "rest_framework",
            "django_filters",
            "drf_spectacular",
            "drf_spectacular_sidecar",
            "servicekit",
            *apps,
        ],
        "MIDDLEWARE": [
            # Request id first so every later log line and error carries it.
            "servicekit.logging.RequestIdMiddleware",
            "servicekit.metrics.MetricsMiddleware",
            # Sheds what queued too long under sustained overload (503 + Retry-After), before any other work.
            "servicekit.shedding.LoadSheddingMiddleware",
            "django.middleware.security.SecurityMiddleware",
            # Static files, sessions, the CSRF cookie, Django users and messages serve the admin only:
            # these are Django's (and WhiteNoise's) classes, skipped on /api/ and /internal/, whose
            # requests carry a token and get no cookie (~6 % of a vote's CPU; servicekit.api.middleware).
            "servicekit.api.middleware.WhiteNoiseMiddleware",
            "servicekit.api.middleware.SessionMiddleware",
            "django.middleware.common.CommonMiddleware",
            "servicekit.api.middleware.CsrfViewMiddleware",
            "servicekit.api.middleware.AuthenticationMiddleware",
            "servicekit.api.middleware.MessageMiddleware",
            "django.middleware.clickjacking.XFrameOptionsMiddleware",
        ],
        "TEMPLATES": [
            {
                "BACKEND": "django.template.backends.django.DjangoTemplates",
                "DIRS": [],
                "APP_DIRS": True,
                "OPTIONS": {
                    "context_processors": [
                        "django.template.context_processors.request",
                        "django.contrib.auth.context_processors.auth",
                        "django.contrib.messages.context_processors.messages",
                    ]
                },
            }
        ],
        # --- Data stores ------------------------------------------------------------------------------
        "DATABASES": databases,
        "CACHES": caches,
        "SERVICE_BACKENDS": describe_backends(databases, caches, broker_url),
        # --- Behind the gateway -----------------------------------------------------------------------
        # Every service serves its pages under its own prefix, so cookies must not collide on one host.
        "USE_X_FORWARDED_HOST": True,
        "USE_X_FORWARDED_PORT": True,
        "SESSION_COOKIE_NAME": f"{service}_sessionid",
        "CSRF_COOKIE_NAME": f"{service}_csrftoken",
        "SESSION_COOKIE_PATH": f"/admin/{service}/",
        "CSRF_COOKIE_PATH": f"/admin/{service}/",
        "CSRF_TRUSTED_ORIGINS": env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[]),
        "SESSION_COOKIE_SECURE": production,
        "CSRF_COOKIE_SECURE": production,
        "STATIC_URL": f"/static/{service}/",
        "STATIC_ROOT": run / "static" / service,
        "DATA_UPLOAD_MAX_MEMORY_SIZE": max_body,
        "FILE_UPLOAD_MAX_MEMORY_SIZE": max_body,
        # --- Celery -----------------------------------------------------------------------------------
        "CELERY_BROKER_URL": broker_url,
        "CELERY_BROKER_TRANSPORT_OPTIONS": broker_options,
        "CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP": True,
        "CELERY_TASK_IGNORE_RESULT": True,
        "CELERY_RESULT_BACKEND": None,
        "CELERY_TASK_SERIALIZER": "json",
        "CELERY_ACCEPT_CONTENT": ["json"],
        "CELERY_TIMEZONE": "UTC",
        "CELERY_WORKER_HIJACK_ROOT_LOGGER": False,
        "CELERY_BEAT_SCHEDULE_FILENAME": str(run / f"celerybeat-{service}"),
        **celery_topology(service=service),
        # --- REST framework and OpenAPI ---------------------------------------------------------------
        "REST_FRAMEWORK": {
            "EXCEPTION_HANDLER": "servicekit.errors.problem_exception_handler",
            "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
            "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
            # Stateless RS256 access tokens (servicekit.auth); request.user is a servicekit Principal.
            "DEFAULT_AUTHENTICATION_CLASSES": ["servicekit.auth.JWTAuthentication"],
            "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.AllowAny"],
            "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
            "UNAUTHENTICATED_USER": "servicekit.auth.AnonymousPrincipal",
        },
        "SPECTACULAR_SETTINGS": {
            "TITLE": f"{service} service API",
            "SERVE_INCLUDE_SCHEMA": False,
            "SWAGGER_UI_DIST": "SIDECAR",
            "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
            "REDOC_DIST": "SIDECAR",
        },
        # --- Observability ----------------------------------------------------------------------------
        # dictConfig, and Python warnings become log lines too (servicekit.logging.configure).
        "LOGGING_CONFIG": "servicekit.logging.configure",
        "LOGGING": logging_config(
            service=service,
            level=env.str("LOG_LEVEL", default="INFO"),
            version=service_version(),
            environment=env.str("DJANGO_ENV", default="development"),
        ),
        # JWT verification keys, issuer/audience, service credential, trusted proxies, login throttles.
        "SERVICEKIT": {"SERVICE_NAME": service, "MAX_BODY_BYTES": max_body, **auth_settings(run=run, service=service)},
        # --- Production hardening ---------------------------------------------------------------------
        "SECURE_CONTENT_TYPE_NOSNIFF": True,
        "X_FRAME_OPTIONS": "DENY",
        "CSRF_FAILURE_VIEW": "servicekit.errors.csrf_failure",
        "SECURE_PROXY_SSL_HEADER": ("HTTP_X_FORWARDED_PROTO", "https"),
    }


def service_version() -> str:
    """``SERVICE_VERSION`` (the deployed image's tag), else servicekit's own version: ``service.version``."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return env.str("SERVICE_VERSION", default="") or version("servicekit")
    except PackageNotFoundError:
        return "0"


def logging_config(*, service: str, level: str, version: str = "", environment: str = "") -> dict[str, Any]:
    """ECS JSON lines on stderr (``servicekit.logging.EcsFormatter``): service, trace, request and user ids."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {
            "ecs": {
                "()": "servicekit.logging.EcsFormatter",
                "service": service,
                "version": version,
                "environment": environment,
            }
        },
        "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "ecs"}},
        "root": {"handlers": ["stderr"], "level": level},
        "loggers": {
            "django.server": {"level": "WARNING"},
            # 4xx are answered as problem+json and counted in metrics; Django's per-request warning
            # would duplicate every one of them in the logs.
            "django.request": {"level": "ERROR"},
            # Two INFO lines per Celery task ("received", "succeeded") cost more than a small event
            # handler itself; failures are still logged at WARNING/ERROR.
            "celery.app.trace": {"level": env.str("CELERY_TASK_LOG_LEVEL", default="WARNING")},
            "celery.worker.strategy": {"level": env.str("CELERY_TASK_LOG_LEVEL", default="WARNING")},
            # Beat sends the relay sweep every 2 s; one INFO line each would drown every other log.
            "celery.beat": {"level": env.str("CELERY_BEAT_LOG_LEVEL", default="WARNING")},
        },
    }
