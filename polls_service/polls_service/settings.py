"""Settings of polls_service. The shared ones come from servicekit, each by name; then this service's own."""

from pathlib import Path

from django.conf import global_settings

from accounts.hashers import DJANGO_ITERATIONS, checked_iterations
from servicekit.settings import common_settings, env, issuer_settings

BASE_DIR = Path(__file__).resolve().parent.parent

# --- Shared with every service, each by name (servicekit.settings.common_settings; servicekit's
# tests/test_settings.py fails when a name is missing here) ------------------------------------------------
shared = common_settings(
    service="polls",
    base_dir=BASE_DIR,
    database_env="POLLS_DATABASE_URL",
    apps=["polls", "accounts", "rest_framework_simplejwt.token_blacklist"],
    urlconf="polls_service.urls",
)
# Core
RUN_DIR = shared["RUN_DIR"]
SECRET_KEY = shared["SECRET_KEY"]
DEBUG = shared["DEBUG"]
ALLOWED_HOSTS = shared["ALLOWED_HOSTS"]
ROOT_URLCONF = shared["ROOT_URLCONF"]
WSGI_APPLICATION = shared["WSGI_APPLICATION"]
DEFAULT_AUTO_FIELD = shared["DEFAULT_AUTO_FIELD"]
LANGUAGE_CODE = shared["LANGUAGE_CODE"]
TIME_ZONE = shared["TIME_ZONE"]
USE_I18N = shared["USE_I18N"]
USE_TZ = shared["USE_TZ"]
AUTH_PASSWORD_VALIDATORS = shared["AUTH_PASSWORD_VALIDATORS"]
# Applications and middleware
INSTALLED_APPS = shared["INSTALLED_APPS"]
MIDDLEWARE = shared["MIDDLEWARE"]
TEMPLATES = shared["TEMPLATES"]
# Data stores
DATABASES = shared["DATABASES"]
CACHES = shared["CACHES"]
SERVICE_BACKENDS = shared["SERVICE_BACKENDS"]
# Behind the gateway
USE_X_FORWARDED_HOST = shared["USE_X_FORWARDED_HOST"]
USE_X_FORWARDED_PORT = shared["USE_X_FORWARDED_PORT"]
SESSION_COOKIE_NAME = shared["SESSION_COOKIE_NAME"]
CSRF_COOKIE_NAME = shared["CSRF_COOKIE_NAME"]
SESSION_COOKIE_PATH = shared["SESSION_COOKIE_PATH"]
CSRF_COOKIE_PATH = shared["CSRF_COOKIE_PATH"]
CSRF_TRUSTED_ORIGINS = shared["CSRF_TRUSTED_ORIGINS"]
SESSION_COOKIE_SECURE = shared["SESSION_COOKIE_SECURE"]
CSRF_COOKIE_SECURE = shared["CSRF_COOKIE_SECURE"]
STATIC_URL = shared["STATIC_URL"]
STATIC_ROOT = shared["STATIC_ROOT"]
DATA_UPLOAD_MAX_MEMORY_SIZE = shared["DATA_UPLOAD_MAX_MEMORY_SIZE"]
FILE_UPLOAD_MAX_MEMORY_SIZE = shared["FILE_UPLOAD_MAX_MEMORY_SIZE"]
# Celery
CELERY_BROKER_URL = shared["CELERY_BROKER_URL"]
CELERY_BROKER_TRANSPORT_OPTIONS = shared["CELERY_BROKER_TRANSPORT_OPTIONS"]
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = shared["CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP"]
CELERY_TASK_IGNORE_RESULT = shared["CELERY_TASK_IGNORE_RESULT"]
CELERY_RESULT_BACKEND = shared["CELERY_RESULT_BACKEND"]
CELERY_TASK_SERIALIZER = shared["CELERY_TASK_SERIALIZER"]
CELERY_ACCEPT_CONTENT = shared["CELERY_ACCEPT_CONTENT"]
CELERY_TIMEZONE = shared["CELERY_TIMEZONE"]
CELERY_WORKER_HIJACK_ROOT_LOGGER = shared["CELERY_WORKER_HIJACK_ROOT_LOGGER"]
CELERY_BEAT_SCHEDULE_FILENAME = shared["CELERY_BEAT_SCHEDULE_FILENAME"]
CELERY_TASK_QUEUES = shared["CELERY_TASK_QUEUES"]
CELERY_TASK_DEFAULT_QUEUE = shared["CELERY_TASK_DEFAULT_QUEUE"]
CELERY_WORKER_QUEUES = shared["CELERY_WORKER_QUEUES"]
CELERY_TASK_ROUTES = shared["CELERY_TASK_ROUTES"]
CELERY_TASK_ACKS_LATE = shared["CELERY_TASK_ACKS_LATE"]
CELERY_TASK_REJECT_ON_WORKER_LOST = shared["CELERY_TASK_REJECT_ON_WORKER_LOST"]
CELERY_WORKER_PREFETCH_MULTIPLIER = shared["CELERY_WORKER_PREFETCH_MULTIPLIER"]
CELERY_DB_REUSE_MAX = shared["CELERY_DB_REUSE_MAX"]
CELERY_TASK_DEFAULT_DELIVERY_MODE = shared["CELERY_TASK_DEFAULT_DELIVERY_MODE"]
CELERY_WORKER_CANCEL_LONG_RUNNING_TASKS_ON_CONNECTION_LOSS = shared[
    "CELERY_WORKER_CANCEL_LONG_RUNNING_TASKS_ON_CONNECTION_LOSS"
]
CELERY_WORKER_CONSUMER = shared["CELERY_WORKER_CONSUMER"]
CELERY_BEAT_SCHEDULE = shared["CELERY_BEAT_SCHEDULE"]
# REST framework and OpenAPI
REST_FRAMEWORK = shared["REST_FRAMEWORK"]
SPECTACULAR_SETTINGS = shared["SPECTACULAR_SETTINGS"]
# Observability
LOGGING_CONFIG = shared["LOGGING_CONFIG"]
LOGGING = shared["LOGGING"]
# servicekit: JWT verification, service credential, trusted proxies, login throttles
SERVICEKIT = shared["SERVICEKIT"]
# Production hardening
SECURE_CONTENT_TYPE_NOSNIFF = shared["SECURE_CONTENT_TYPE_NOSNIFF"]
X_FRAME_OPTIONS = shared["X_FRAME_OPTIONS"]
CSRF_FAILURE_VIEW = shared["CSRF_FAILURE_VIEW"]
SECURE_PROXY_SSL_HEADER = shared["SECURE_PROXY_SSL_HEADER"]

# --- Identity provider: only this service holds the JWT private key -------------------------------------
_production = env.str("DJANGO_ENV", default="development") == "production"
SERVICEKIT.update(issuer_settings(run=RUN_DIR, production=_production))

# --- Passwords: PBKDF2 at Django's iteration count or more (accounts.hashers); test stacks may set fewer ----
PASSWORD_HASH_ITERATIONS = checked_iterations(
    env.int("PASSWORD_HASH_ITERATIONS", default=DJANGO_ITERATIONS), production=_production
)
PASSWORD_HASHERS = [
    "accounts.hashers.ConfiguredPBKDF2PasswordHasher",
    *(name for name in global_settings.PASSWORD_HASHERS if not name.endswith(".PBKDF2PasswordHasher")),
]

# --- Gates, called before polls_service commits: open freezes choices, close/delete seal votes ----------
CHOICE_INTERNAL_URL = env.str("CHOICE_INTERNAL_URL", default="http://127.0.0.1:8002")
VOTE_INTERNAL_URL = env.str("VOTE_INTERNAL_URL", default="http://127.0.0.1:8003")

# --- Periodic tasks: close open polls whose closes_at has passed ----------------------------------------
CELERY_BEAT_SCHEDULE["polls-close-expired"] = {
    "task": "polls.close_expired_polls",
    "schedule": env.float("POLLS_AUTO_CLOSE_SECONDS", default=15.0),
    "options": {"expires": 60.0},
}
CELERY_BEAT_SCHEDULE["accounts-flush-expired-tokens"] = {
    "task": "accounts.flush_expired_tokens",
    "schedule": env.float("TOKEN_FLUSH_SECONDS", default=3600.0),
    "options": {"expires": 600.0},
}
