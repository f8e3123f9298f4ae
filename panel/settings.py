"""Filrouge settings: everything comes from environment variables with safe defaults.

With nothing configured the panel runs on SQLite and an embedded Redis server (started
by `manage.py runpanel`), so `make run` works on a laptop with only Python installed.
"""

import os
import secrets
from datetime import timedelta
from pathlib import Path

import dj_database_url
from cryptography.fernet import Fernet
from django.utils.translation import gettext_lazy as _

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("FILROUGE_VAR_DIR", BASE_DIR / "var"))
VAR_DIR.mkdir(mode=0o700, parents=True, exist_ok=True)


def env_bool(name, default=False):
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in ("1", "true", "yes", "on")


def env_int(name, default):
    return int(os.environ.get(name, default))


def env_list(name, default=""):
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


DEBUG = env_bool("DEBUG")


def secret_from_file(path, make):
    """Read a generated secret, creating it (mode 0600) on first start of a single-host install."""
    path = Path(path)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another process of the same install won the race
            pass
        else:
            with os.fdopen(fd, "w") as handle:
                handle.write(make())
    private_file(path)
    return path.read_text().strip()


def private_file(path):
    """Create the file if missing, readable and writable by the panel's user only (0600);
    an existing one made by an older version with wider permissions is narrowed."""
    path = Path(path)
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
        if path.stat().st_mode & 0o077:
            path.chmod(0o600)
    except OSError:  # a read-only mount or another owner: leave it, SQLite or open() will say
        pass


# Unset SECRET_KEY: a random key kept in VAR_DIR, so a laptop install needs no setup.
# Deployments with several web replicas must set it explicitly (compose.yaml does).
SECRET_KEY = os.environ.get("SECRET_KEY") or secret_from_file(
    VAR_DIR / "secret-key", lambda: secrets.token_urlsafe(50)
)

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "127.0.0.1,localhost,[::1]")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")
SITE_NAME = os.environ.get("SITE_NAME", "Filrouge")

# Credentials are encrypted with their own keys, never derived from SECRET_KEY.
# Several comma-separated Fernet keys: the first encrypts, all decrypt (rotation).
CREDENTIAL_KEYS = env_list("FILROUGE_CREDENTIAL_KEYS") or [
    secret_from_file(VAR_DIR / "credential-key", lambda: Fernet.generate_key().decode())
]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_filters",
    "django_htmx",
    "django_rq",
    "axes",
    "csp",
    "panel",
    "panel.accounts",
    "panel.audit",
    "panel.jobs",
    "panel.dashboard",
    "panel.health",
    "metrics",
    "clusters",
    "deployments",
    "labs",
    "terminals",
]

MIDDLEWARE = [
    "panel.lib.middleware.RequestSizeLimitMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "panel.audit.middleware.AuditContextMiddleware",
    "panel.lib.unavailable.DatabaseUnavailableMiddleware",
    "panel.accounts.middleware.ForcePasswordChangeMiddleware",
    "csp.middleware.CSPMiddleware",
    # Last, as django-axes asks: turns a locked-out login into the "try again at" page.
    "axes.middleware.AxesMiddleware",
]

# Failed logins (django-axes; docs/operator-guide.md, "Login throttling"): after
# FILROUGE_LOGIN_FAILURE_LIMIT failures for one account, or from one client address, logins
# are refused (even with the right password) until FILROUGE_LOGIN_COOLOFF_MINUTES after the last one.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_ENABLED = env_bool("FILROUGE_LOGIN_THROTTLE", True)
AXES_FAILURE_LIMIT = env_int("FILROUGE_LOGIN_FAILURE_LIMIT", 10)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("FILROUGE_LOGIN_COOLOFF_MINUTES", 15))
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_CALLABLE = "panel.accounts.throttle.lockout_response"
AXES_CLIENT_IP_CALLABLE = "panel.accounts.throttle.client_address"
AXES_VERBOSE = False

ROOT_URLCONF = "panel.urls"
WSGI_APPLICATION = "panel.wsgi.application"
ASGI_APPLICATION = "panel.asgi.application"
AUTH_USER_MODEL = "accounts.User"
LOGIN_URL = "accounts:login"
LOGIN_REDIRECT_URL = "dashboard:index"
LOGOUT_REDIRECT_URL = "accounts:login"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "panel.context_processors.site",
            ],
        },
    },
]

# Database: PostgreSQL through psycopg 3 when DATABASE_URL is set, SQLite otherwise.
DATABASE_URL = os.environ.get("DATABASE_URL") or f"sqlite:///{VAR_DIR / 'filrouge.sqlite3'}"
DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 60))}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Web, worker and scheduler share the file: WAL lets readers go on while one writes,
    # and IMMEDIATE transactions wait for the lock instead of failing halfway.
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"]["OPTIONS"] = {
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
        "timeout": 30,
    }
    # metrics.Point's unique index carries the value (a covering index) on PostgreSQL; SQLite
    # has none, and metrics' migration 0002 gives it a plain unique index instead.
    SILENCED_SYSTEM_CHECKS = ["models.W039"]
    if os.environ.get("FILROUGE_TEST_SQLITE_NAME"):
        DATABASES["default"]["TEST"] = {"NAME": os.environ["FILROUGE_TEST_SQLITE_NAME"]}
    if str(DATABASES["default"]["NAME"]) not in ("", ":memory:") and not str(DATABASES["default"]["NAME"]).startswith("file:"):
        # SQLite creates its file (and the -wal/-shm files, which copy its mode) as 0644:
        # the whole inventory and the encrypted credentials would be readable by any local user.
        private_file(DATABASES["default"]["NAME"])
else:
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Redis: the embedded server's unix socket when REDIS_URL is unset (see panel/lib/embedded_redis.py).
EMBEDDED_REDIS = not os.environ.get("REDIS_URL")
EMBEDDED_REDIS_SOCKET = VAR_DIR / "redis.sock"
REDIS_URL = os.environ.get("REDIS_URL") or f"unix://{EMBEDDED_REDIS_SOCKET}?db=0"
RQ_QUEUES = {
    "high": {"URL": REDIS_URL, "DEFAULT_TIMEOUT": 600},
    "default": {"URL": REDIS_URL, "DEFAULT_TIMEOUT": 3600},
    "low": {"URL": REDIS_URL, "DEFAULT_TIMEOUT": 3600},
}
RQ_SHOW_ADMIN_LINK = False
# Websockets (terminals): the channel layer on the same Redis, so that a reconnect or a
# watcher that reaches another web process finds the process that holds the shell.
CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        # The layer blocks 5 s in BZPOPMIN: the client's read timeout must be longer than that.
        "CONFIG": {"hosts": [{"address": REDIS_URL, "socket_timeout": 30}], "prefix": "filrouge-channels", "capacity": 2000, "expiry": 60},
    },
}

# Terminals in the browser (terminals/): seconds, bytes, days. See the operator guide.
TERMINAL_RECONNECT_GRACE = float(os.environ.get("FILROUGE_TERMINAL_RECONNECT_GRACE", 60))
TERMINAL_IDLE_TIMEOUT = float(os.environ.get("FILROUGE_TERMINAL_IDLE_TIMEOUT", 30 * 60))
TERMINAL_MAX_SESSION = float(os.environ.get("FILROUGE_TERMINAL_MAX_SESSION", 8 * 3600))
TERMINAL_REPLAY_BUFFER = env_int("FILROUGE_TERMINAL_REPLAY_BUFFER", 64 * 1024)
TERMINAL_RECORDING_MAX_BYTES = env_int("FILROUGE_TERMINAL_RECORDING_MAX_BYTES", 20 * 1024 * 1024)
TERMINAL_RECORDING_RETENTION_DAYS = float(os.environ.get("FILROUGE_TERMINAL_RECORDING_RETENTION_DAYS", 90))
TERMINAL_MAX_PER_PROCESS = env_int("FILROUGE_TERMINAL_MAX_PER_PROCESS", 200)
TERMINAL_RECORDINGS_DIR = Path(os.environ.get("FILROUGE_TERMINAL_RECORDINGS_DIR", VAR_DIR / "recordings"))

# Job engine tuning (seconds). Tests shorten the lost-job delays; production keeps these.
JOB_HEARTBEAT_INTERVAL = float(os.environ.get("FILROUGE_JOB_HEARTBEAT_INTERVAL", 5))
JOB_LOST_AFTER = float(os.environ.get("FILROUGE_JOB_LOST_AFTER", 30))
JOB_LINE_FLUSH_INTERVAL = float(os.environ.get("FILROUGE_JOB_LINE_FLUSH_INTERVAL", 0.25))
JOB_CANCEL_POLL_INTERVAL = float(os.environ.get("FILROUGE_JOB_CANCEL_POLL_INTERVAL", 0.5))
RECONCILE_INTERVAL = float(os.environ.get("FILROUGE_RECONCILE_INTERVAL", 10))
RECONCILE_QUEUED_GRACE = float(os.environ.get("FILROUGE_RECONCILE_QUEUED_GRACE", 5))
# Workers write a heartbeat to Redis this often (and wait no longer than this for a job
# between two of them); one silent for WORKER_STALE_AFTER seconds is listed as dead.
WORKER_HEARTBEAT_INTERVAL = max(1, int(float(os.environ.get("FILROUGE_WORKER_HEARTBEAT_INTERVAL", 10))))
WORKER_STALE_AFTER = float(os.environ.get("FILROUGE_WORKER_STALE_AFTER", 3 * WORKER_HEARTBEAT_INTERVAL))
# When Redis or the database goes away: the longest wait between two attempts (work resumes
# within that long of its return) and how often "still unreachable" may be logged.
OUTAGE_RETRY_MAX_WAIT = float(os.environ.get("FILROUGE_OUTAGE_RETRY_MAX_WAIT", 2))
OUTAGE_LOG_PERIOD = float(os.environ.get("FILROUGE_OUTAGE_LOG_PERIOD", 60))
# A job keeps at most this many lines in memory while the database is unreachable.
JOB_LINE_BUFFER_MAX = int(os.environ.get("FILROUGE_JOB_LINE_BUFFER_MAX", 200_000))
# ... and waits at most this long (seconds) for the database to record its end.
JOB_END_PATIENCE = float(os.environ.get("FILROUGE_JOB_END_PATIENCE", 600))

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 10}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = os.environ.get("LANGUAGE_CODE", "en")
LANGUAGES = [("en", _("English")), ("fr", _("French"))]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = os.environ.get("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(os.environ.get("STATIC_ROOT", VAR_DIR / "staticfiles"))
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = True

# Requests larger than this are answered 413 before Django reads them.
MAX_REQUEST_BYTES = env_int("FILROUGE_MAX_REQUEST_BYTES", 5 * 1024 * 1024)
DATA_UPLOAD_MAX_MEMORY_SIZE = MAX_REQUEST_BYTES
FILE_UPLOAD_MAX_MEMORY_SIZE = MAX_REQUEST_BYTES
# A compose service's build context (tar, after .dockerignore) is stored encrypted up to this size.
BUILD_CONTEXT_MAX_BYTES = env_int("FILROUGE_BUILD_CONTEXT_MAX_BYTES", 50 * 1024 * 1024)

SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SECURE = env_bool("SECURE_COOKIES")
CSRF_COOKIE_SECURE = env_bool("SECURE_COOKIES")
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if env_bool("BEHIND_TLS_PROXY") else None
# HTTPS (docs/operator-guide.md, "HTTPS, HSTS and the Content-Security-Policy"): off by
# default so that a laptop on http://127.0.0.1 works; set both behind TLS.
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT")
SECURE_REDIRECT_EXEMPT = [r"^healthz/"]  # probes of the orchestrator speak plain http inside the cluster
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS")
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD")
# Content-Security-Policy (django-csp) on every response: scripts, styles, fonts and
# images from the panel's own static files only, no inline script or style, no eval.
_CSP_DIRECTIVES = {
    "default-src": ["'self'"],
    "script-src": ["'self'"],
    "style-src": ["'self'"],
    "img-src": ["'self'", "data:"],
    "font-src": ["'self'"],
    "connect-src": ["'self'"],
    "object-src": ["'none'"],
    "base-uri": ["'self'"],
    "form-action": ["'self'"],
    "frame-ancestors": ["'none'"],
}
if env_bool("CSP_REPORT_ONLY"):  # to try a changed policy on a live panel before enforcing it
    CONTENT_SECURITY_POLICY_REPORT_ONLY = {"DIRECTIVES": _CSP_DIRECTIVES}
    CONTENT_SECURITY_POLICY = None
else:
    CONTENT_SECURITY_POLICY = {"DIRECTIVES": _CSP_DIRECTIVES}
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "panel.accounts.api_auth.ApiTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": [
        "rest_framework.permissions.IsAuthenticated",
        "panel.accounts.api_auth.TokenScopePermission",
    ],
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.LimitOffsetPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_SCHEMA_CLASS": "panel.lib.schema.AutoSchema",
    "EXCEPTION_HANDLER": "panel.lib.api.exception_handler",
    "DEFAULT_PARSER_CLASSES": [
        "panel.lib.parsers.LimitedJSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_RENDERER_CLASSES": [
        "rest_framework.renderers.JSONRenderer",
        "rest_framework.renderers.BrowsableAPIRenderer",
    ],
}
from panel.lib.error_schemas import ERROR_COMPONENTS as _ERROR_SCHEMAS  # noqa: E402 - plain data

SPECTACULAR_SETTINGS = {
    "TITLE": "Filrouge API",
    "DESCRIPTION": "Inventory, jobs, deployments and teaching labs. Authenticate with "
    "`Authorization: Bearer <token>` (create tokens under Account → API tokens).",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "APPEND_COMPONENTS": {
        "securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer"}},
        "schemas": _ERROR_SCHEMAS,
    },
    "SECURITY": [{"bearerAuth": []}],
}
# Teaching lab: every object a lab environment creates carries filrouge.lab=<LABS_INSTANCE>,
# so one panel (or one test run) only ever sweeps its own.
LABS_INSTANCE = os.environ.get("FILROUGE_LABS_INSTANCE", "filrouge")
LABS_PORT_RANGE = tuple(int(p) for p in os.environ.get("FILROUGE_LABS_PORT_RANGE", "20000-29999").split("-", 1))
LABS_EXPIRY_SWEEP_INTERVAL = float(os.environ.get("FILROUGE_LABS_EXPIRY_SWEEP_INTERVAL", 20))
# Docker labs (labs/providers/docker_project.py): each environment's network takes a small subnet of this
# pool (the engine's default pools hold only ~30 networks); ports are published on this address.
LABS_DOCKER_SUBNET_POOL = os.environ.get("FILROUGE_LABS_DOCKER_SUBNET_POOL", "10.213.0.0/16")
LABS_DOCKER_SUBNET_PREFIX = int(os.environ.get("FILROUGE_LABS_DOCKER_SUBNET_PREFIX", 27))
LABS_DOCKER_PUBLISH_IP = os.environ.get("FILROUGE_LABS_DOCKER_PUBLISH_IP", "127.0.0.1")
LABS_DOCKER_PUBLIC_HOST = os.environ.get("FILROUGE_LABS_DOCKER_PUBLIC_HOST", "")
LABS_DOCKER_ALLOWED_REGISTRIES = tuple(r for r in os.environ.get("FILROUGE_LABS_DOCKER_ALLOWED_REGISTRIES", "").split(",") if r)
# The Debian image lab SSH hosts are built on (labs/providers/ssh_image.py; see the operator guide).
LABS_HOST_BASE_IMAGE = os.environ.get("FILROUGE_LABS_HOST_BASE_IMAGE", "debian:bookworm")

# Hostile input (docs/operator-guide.md, "Limits on what people send"): every YAML document a
# person gives the panel (panel/lib/safe_yaml.py) and every JSON body of the API.
YAML_MAX_BYTES = int(os.environ.get("FILROUGE_YAML_MAX_BYTES", 2 * 1024 * 1024))
YAML_MAX_DEPTH = int(os.environ.get("FILROUGE_YAML_MAX_DEPTH", 100))
YAML_MAX_ALIASES = int(os.environ.get("FILROUGE_YAML_MAX_ALIASES", 1000))
YAML_MAX_NODES = int(os.environ.get("FILROUGE_YAML_MAX_NODES", 250_000))
API_JSON_MAX_DEPTH = int(os.environ.get("FILROUGE_API_JSON_MAX_DEPTH", 100))
# json's decoder recurses once per level, on top of the request's own stack: past a few
# hundred levels the interpreter's recursion limit, not this one, would answer (a 500).
if not 1 <= API_JSON_MAX_DEPTH <= 500:
    raise ValueError(f"FILROUGE_API_JSON_MAX_DEPTH must be between 1 and 500, not {API_JSON_MAX_DEPTH}.")

API_TOKEN_LAST_USED_RESOLUTION = 60  # seconds between writes of last_used_at

LOG_LEVEL = os.environ.get("LOG_LEVEL", "INFO")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"redact": {"()": "panel.lib.redaction.RedactingLogFilter"}},
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain", "filters": ["redact"]}},
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django.db.backends": {"level": "INFO"},
        "rq.worker": {"level": os.environ.get("RQ_LOG_LEVEL", "WARNING")},
        "paramiko": {"level": "WARNING"},
    },
}

# Kubernetes API: seconds to wait for one answer (watches and log follows ask for less).
KUBE_READ_TIMEOUT = float(os.environ.get("FILROUGE_KUBE_READ_TIMEOUT", 60))
# The image of an isolated namespace's workspace pod (a shell with kubectl and curl); empty:
# clusters.kubernetes.workspace.DEFAULT_IMAGE. Air-gapped clusters mirror it and name their copy.
KUBE_WORKSPACE_IMAGE = os.environ.get("FILROUGE_KUBE_WORKSPACE_IMAGE", "")
# Where the API server's own traffic to pods comes from (control-plane node addresses, e.g.
# "10.0.0.10/32,10.0.0.11/32"): isolated namespaces let it in, so that the service proxy works
# under a network plugin that enforces NetworkPolicies.
KUBE_APISERVER_CIDRS = tuple(c.strip() for c in os.environ.get("FILROUGE_KUBE_APISERVER_CIDRS", "").split(",") if c.strip())


# ---- metrics (metrics/, docs/operator-guide.md "Metrics") ------------------------------------
# Raw samples are kept for a day, 5-minute averages for 30 days.
METRICS_RAW_RETENTION = env_int("FILROUGE_METRICS_RAW_RETENTION", 86400)
METRICS_ROLLUP_RETENTION = env_int("FILROUGE_METRICS_ROLLUP_RETENTION", 30 * 86400)
# With a Prometheus that scrapes /metrics, charts read from it (PromQL) instead of the database.
PROMETHEUS_URL = os.environ.get("PROMETHEUS_URL", "").rstrip("/")
# One answer of Prometheus serves every chart asking the same query within these seconds (0: none).
PROMETHEUS_CACHE_SECONDS = env_int("FILROUGE_PROMETHEUS_CACHE_SECONDS", 5)
# How often a chart on a page asks for new points.
METRICS_CHART_POLL_SECONDS = env_int("FILROUGE_METRICS_CHART_POLL_SECONDS", 15)
# Container stats: one call per running container (the Docker API has no bulk stats call), at
# most this many at a time.
METRICS_DOCKER_STATS_WORKERS = env_int("FILROUGE_METRICS_DOCKER_STATS_WORKERS", 8)
# ...and no new stats call after this many seconds of a probe round (the rest go first next round).
METRICS_DOCKER_STATS_BUDGET = env_int("FILROUGE_METRICS_DOCKER_STATS_BUDGET", 20)
# ...and only for the panel's own containers (services it deployed, lab environments): "panel";
# or for every running container of the engine: "all".
METRICS_DOCKER_STATS_SCOPE = os.environ.get("FILROUGE_METRICS_DOCKER_STATS_SCOPE", "panel")
# Service health checks the probe makes (an HTTP GET to each replica's published port): at most
# this many seconds each, and none started after the budget of a round is spent.
METRICS_HEALTH_CHECK_TIMEOUT = env_int("FILROUGE_METRICS_HEALTH_CHECK_TIMEOUT", 2)
METRICS_HEALTH_CHECK_BUDGET = env_int("FILROUGE_METRICS_HEALTH_CHECK_BUDGET", 10)
# Load tests (deployments/loadtest.py): hard limits a job's parameters cannot exceed.
LOADTEST_MAX_SECONDS = env_int("FILROUGE_LOADTEST_MAX_SECONDS", 300)
LOADTEST_MAX_CONCURRENCY = env_int("FILROUGE_LOADTEST_MAX_CONCURRENCY", 200)
LOADTEST_MAX_RATE = env_int("FILROUGE_LOADTEST_MAX_RATE", 5000)
# Teachers' load tests on lab environments (labs/loadtest.py): lower caps on top of the above
# (the smaller of both applies), since a lab host serves a whole class at once.
LABS_LOADTEST_MAX_SECONDS = env_int("FILROUGE_LABS_LOADTEST_MAX_SECONDS", 120)
LABS_LOADTEST_MAX_CONCURRENCY = env_int("FILROUGE_LABS_LOADTEST_MAX_CONCURRENCY", 50)
LABS_LOADTEST_MAX_RATE = env_int("FILROUGE_LABS_LOADTEST_MAX_RATE", 2000)
