"""codepref settings.

Every setting comes from the environment through the small typed helpers below. With nothing
set, the project runs on embedded defaults: a SQLite file, Celery tasks run inline, and the
tiny local model built by ``training.bootstrap``. README.md lists every variable.
"""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent


def env_str(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool = False) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    value = raw.strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name}={raw!r}: expected one of 1/0, true/false, yes/no, on/off")


def env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={raw!r}: expected an integer") from None


def env_float(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return float(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={raw!r}: expected a number") from None


def env_list(name: str, default: list[str]) -> list[str]:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    return [item.strip() for item in raw.split(",") if item.strip()]


# --- core -------------------------------------------------------------------------------------
DEBUG = env_bool("DJANGO_DEBUG", False)
SECRET_KEY = env_str("DJANGO_SECRET_KEY")
if not SECRET_KEY:
    if not DEBUG and env_bool("CODEPREF_PRODUCTION", False):
        raise ImproperlyConfigured("DJANGO_SECRET_KEY must be set when CODEPREF_PRODUCTION=1")
    SECRET_KEY = "insecure-dev-key-only-for-local-use-" + "x" * 32
ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", ["127.0.0.1", "localhost", "testserver", "[::1]"])
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS", [])
VAR_DIR = Path(env_str("CODEPREF_VAR_DIR", str(BASE_DIR / "var")))

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "allauth",
    "allauth.account",
    "allauth.socialaccount",
    "allauth.socialaccount.providers.github",
    "rest_framework",
    "knox",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI and Redoc served from our static files (the CSP allows no CDN)
    "django_celery_beat",
    "django_celery_results",
    "csp",
    "feedback",
]

MIDDLEWARE = [
    "feedback.middleware.RequestGuardMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "feedback.middleware.ContentSecurityPolicyMiddleware",  # django-csp's, with a fixed policy for JSON
    "allauth.account.middleware.AccountMiddleware",
]

ROOT_URLCONF = "feedback.urls"
WSGI_APPLICATION = "feedback.wsgi.application"

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
                "csp.context_processors.nonce",
                "feedback.context_processors.site",
            ],
        },
    },
]

# --- database ---------------------------------------------------------------------------------
DATABASE_URL = env_str("DATABASE_URL", f"sqlite:///{VAR_DIR / 'codepref.sqlite3'}")
DATABASES = {
    "default": dj_database_url.parse(
        DATABASE_URL,
        conn_max_age=env_int("DB_CONN_MAX_AGE", 60),
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # Django's backend with a health check that needs no round trip (see feedback/postgresql/base.py).
    DATABASES["default"]["ENGINE"] = "feedback.postgresql"
    # A server that does not answer fails the request in seconds (a JSON 503) instead of holding its thread.
    DATABASES["default"].setdefault("OPTIONS", {})["connect_timeout"] = env_int("DB_CONNECT_TIMEOUT", 5)
    # A statement running longer is cancelled (the request gets a 503); 0 = no limit (the workers in compose).
    if env_float("DB_STATEMENT_TIMEOUT", 30.0) > 0:
        _statement_ms = int(env_float("DB_STATEMENT_TIMEOUT", 30.0) * 1000)
        DATABASES["default"]["OPTIONS"]["options"] = f"-c statement_timeout={_statement_ms}"
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # SQLite serialises writers; a busy timeout and IMMEDIATE transactions avoid "database is locked".
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 20,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL;",
    }
    _sqlite_name = DATABASES["default"].get("NAME") or ""
    if _sqlite_name and _sqlite_name != ":memory:":
        Path(_sqlite_name).parent.mkdir(parents=True, exist_ok=True)
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = False
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- auth -------------------------------------------------------------------------------------
AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "allauth.account.auth_backends.AuthenticationBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "account_login"
LOGIN_REDIRECT_URL = "rank"
ACCOUNT_LOGOUT_REDIRECT_URL = "home"
ACCOUNT_LOGIN_METHODS = {"username", "email"}
ACCOUNT_SIGNUP_FIELDS = ["email*", "username*", "password1*", "password2*"]
ACCOUNT_EMAIL_VERIFICATION = env_str("ACCOUNT_EMAIL_VERIFICATION", "none")
ACCOUNT_SIGNUP_FORM_CLASS = "feedback.accounts.forms.SignupExtrasForm"
ACCOUNT_ADAPTER = "feedback.accounts.adapter.AccountAdapter"  # refuses confusable usernames
# Per address only: a per-account limit would let anyone lock an account's owner out (the lock-out below
# counts per account and address). Sign-ups per address, counted in the cache (Redis in production).
ACCOUNT_RATE_LIMITS = {"login_failed": "10/m/ip", "signup": env_str("SIGNUP_RATE", "20/h") + "/ip"}
SOCIALACCOUNT_PROVIDERS: dict = {}
GITHUB_CLIENT_ID = env_str("GITHUB_CLIENT_ID")
GITHUB_CLIENT_SECRET = env_str("GITHUB_CLIENT_SECRET")
if GITHUB_CLIENT_ID and GITHUB_CLIENT_SECRET:
    SOCIALACCOUNT_PROVIDERS["github"] = {
        "APPS": [{"client_id": GITHUB_CLIENT_ID, "secret": GITHUB_CLIENT_SECRET, "key": ""}],
        "SCOPE": ["read:user", "user:email"],
    }
EMAIL_BACKEND = env_str("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "codepref <noreply@localhost>")

# --- i18n, static, media ----------------------------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
STATIC_URL = "static/"
STATIC_ROOT = Path(env_str("STATIC_ROOT", str(BASE_DIR / "staticfiles")))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": env_str("STATICFILES_BACKEND", "django.contrib.staticfiles.storage.StaticFilesStorage")
    },
}
MEDIA_ROOT = Path(env_str("MEDIA_ROOT", str(VAR_DIR / "media")))
MEDIA_URL = "media/"

# --- security ---------------------------------------------------------------------------------
PRODUCTION = env_bool("CODEPREF_PRODUCTION", False)
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
SECURE_REFERRER_POLICY = "same-origin"
SESSION_COOKIE_HTTPONLY = True
if PRODUCTION:
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    STORAGES["staticfiles"]["BACKEND"] = "whitenoise.storage.CompressedManifestStaticFilesStorage"

from csp.constants import NONCE, NONE, SELF  # noqa: E402

CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF, NONCE],
        "style-src": [SELF, NONCE],
        "img-src": [SELF, "data:"],
        "object-src": [NONE],
        "base-uri": [SELF],
        "form-action": [SELF, "https://github.com"],
        "frame-ancestors": [NONE],
    }
}

# --- REST API ---------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "feedback.api.authentication.CachedTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["feedback.api.permissions.DenyAll"],  # every view opts in
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_VERSIONING_CLASS": None,
    "EXCEPTION_HANDLER": "feedback.api.errors.exception_handler",
    # JSON bodies only, through orjson (its nesting limit answers a 100,000-deep body with a 400).
    "DEFAULT_PARSER_CLASSES": ["feedback.api.rendering.ORJSONParser"],
    # Counted in the cache (feedback/api/throttling.py); "votes" also counts the ranking page's votes.
    "DEFAULT_THROTTLE_CLASSES": ["feedback.api.throttling.AnonThrottle", "feedback.api.throttling.UserThrottle"],
    "DEFAULT_THROTTLE_RATES": {
        "anon": env_str("API_ANON_RATE", "60/min"),
        "user": env_str("API_USER_RATE", "600/min"),
        "token": env_str("API_TOKEN_RATE", "20/min"),
        "votes": env_str("API_VOTE_RATE", "30/min"),
    },
    "NUM_PROXIES": env_int("NUM_PROXIES", 0),
}
# The largest API request body (a vote is ~200 bytes); a larger one is refused with 413 before it is read.
API_MAX_BODY_BYTES = env_int("API_MAX_BODY_BYTES", 1_000_000)
# Seconds a token lookup is cached per process; a revoked token may still work this long in another process.
API_TOKEN_CACHE_SECONDS = env_float("API_TOKEN_CACHE_SECONDS", 5.0)
KNOX_TOKEN_MODEL = "knox.AuthToken"  # named, so that feedback.ApiTokenName can point at it
REST_KNOX = {
    "TOKEN_TTL": timedelta(days=env_int("API_TOKEN_TTL_DAYS", 90)) if env_int("API_TOKEN_TTL_DAYS", 90) else None,
    "AUTH_HEADER_PREFIX": "Token",
    "AUTO_REFRESH": False,
    "TOKEN_LIMIT_PER_USER": None,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "codepref API",
    "DESCRIPTION": "Rank code-model completions, and (for maintainers) export preference datasets.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

# --- cache ------------------------------------------------------------------------------------
# Seconds to wait for Redis (the cache and the broker) before giving up: a hung Redis costs a request this
# long, not the request's whole life.
REDIS_TIMEOUT = env_float("REDIS_TIMEOUT", 2.0)
CACHE_URL = env_str("CACHE_URL")  # redis://host:6379/1: rate limits shared by every process
CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "codepref"}}
if CACHE_URL:
    CACHES["default"] = {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": CACHE_URL,
        "OPTIONS": {"socket_connect_timeout": REDIS_TIMEOUT, "socket_timeout": REDIS_TIMEOUT},
    }

# --- Celery -----------------------------------------------------------------------------------
# The in-memory transport names its host, so that kombu does not warn that none was given (the demo runs inline).
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", "memory://localhost/")
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", not os.environ.get("CELERY_BROKER_URL"))
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_RESULT_BACKEND = env_str("CELERY_RESULT_BACKEND", "django-db")
CELERY_RESULT_EXTENDED = True
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SOFT_TIME_LIMIT = env_int("CELERY_TASK_SOFT_TIME_LIMIT", 3 * 3600)
CELERY_TASK_TIME_LIMIT = env_int("CELERY_TASK_TIME_LIMIT", 3 * 3600 + 300)
# Longer than the longest task, so that an unacked task is not redelivered while it still runs.
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": env_int("CELERY_VISIBILITY_TIMEOUT", 4 * 3600),
    # A hung Redis fails a publish in seconds (POST /api/v1/datasets/ answers 503), never hangs the request.
    "socket_timeout": REDIS_TIMEOUT,
    "socket_connect_timeout": REDIS_TIMEOUT,
}
CELERY_BROKER_CONNECTION_TIMEOUT = REDIS_TIMEOUT
CELERY_TASK_PUBLISH_RETRY_POLICY = {"max_retries": 1, "interval_start": 0, "interval_step": 0.5, "interval_max": 0.5}
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_ROUTES = {
    "feedback.tasks.generate_completions": {"queue": "generation"},
    "feedback.tasks.run_tests": {"queue": "sandbox"},
    "feedback.tasks.train_cycle": {"queue": "training"},
}
# Declared, so that a worker started without -Q consumes all four (and they exist before the first message).
CELERY_TASK_QUEUES = {
    name: {"exchange": name, "routing_key": name} for name in ("default", "generation", "sandbox", "training")
}
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_TIMEZONE = TIME_ZONE
CELERY_WORKER_HIJACK_ROOT_LOGGER = False

# --- codepref ---------------------------------------------------------------------------------
CODEPREF = {
    # Ranking
    "VOTES_PER_PAIR": env_int("CODEPREF_VOTES_PER_PAIR", 3),
    "ASSIGNMENT_TTL_SECONDS": env_int("CODEPREF_ASSIGNMENT_TTL_SECONDS", 30 * 60),
    "MAX_PAIRS_PER_PROMPT": env_int("CODEPREF_MAX_PAIRS_PER_PROMPT", 6),
    "SHOW_TEST_OUTCOMES": env_bool("CODEPREF_SHOW_TEST_OUTCOMES", False),
    "UNDO_SECONDS": env_int("CODEPREF_UNDO_SECONDS", 10),  # a volunteer may take back their last vote this long
    "CONTRIBUTION_LICENCE": env_str("CODEPREF_CONTRIBUTION_LICENCE", "CC-BY-4.0"),
    "CONTRIBUTION_LICENCE_URL": env_str(
        "CODEPREF_CONTRIBUTION_LICENCE_URL", "https://creativecommons.org/licenses/by/4.0/"
    ),
    "LANGUAGES": env_list(
        "CODEPREF_LANGUAGES",
        ["python", "javascript", "typescript", "java", "c", "cpp", "go", "rust", "ruby", "php", "bash", "sql"],
    ),
    # Models and generation
    "MODEL": env_str("CODEPREF_MODEL", str(VAR_DIR / "models" / "bootstrap")),
    "OPENAI_BASE_URL": env_str("CODEPREF_OPENAI_BASE_URL", "http://127.0.0.1:8001/v1"),
    "OPENAI_API_KEY_ENV": "CODEPREF_OPENAI_API_KEY",
    "PAIRING_POLICY": env_str("CODEPREF_PAIRING_POLICY", "self"),  # "self" or "arena"
    # Sandbox
    "SANDBOX_TIMEOUT_SECONDS": env_float("CODEPREF_SANDBOX_TIMEOUT", 10.0),
    "SANDBOX_OUTPUT_LIMIT": env_int("CODEPREF_SANDBOX_OUTPUT_LIMIT", 8192),
    "SANDBOX_MEMORY_MB": env_int("CODEPREF_SANDBOX_MEMORY_MB", 1024),
    # Test programs run at once by one run_tests task; keep below the cores so the web stays responsive.
    "SANDBOX_WORKERS": env_int("CODEPREF_SANDBOX_WORKERS", 2),
    # Datasets
    "DATASETS_DIR": Path(env_str("CODEPREF_DATASETS_DIR", str(MEDIA_ROOT / "datasets"))),
    "PSEUDONYM_SALT": env_str("CODEPREF_PSEUDONYM_SALT", SECRET_KEY),
    "SNAPSHOT_MIN_VOTES": env_int("CODEPREF_SNAPSHOT_MIN_VOTES", 1),
    "SNAPSHOT_MIN_AGREEMENT": env_float("CODEPREF_SNAPSHOT_MIN_AGREEMENT", 0.0),
    "SNAPSHOT_TEST_FRACTION": env_float("CODEPREF_SNAPSHOT_TEST_FRACTION", 0.1),
    "SNAPSHOT_DROP_TIES": env_bool("CODEPREF_SNAPSHOT_DROP_TIES", True),  # ties / both-bad out of the pairwise file
    "SNAPSHOT_EXCLUDE_OPEN_FLAGS": env_bool("CODEPREF_SNAPSHOT_EXCLUDE_OPEN_FLAGS", False),  # upheld ones always
    "SNAPSHOT_SPLIT_SALT": env_str("CODEPREF_SNAPSHOT_SPLIT_SALT", "codepref-split-v1"),  # changing it reshuffles
    # Training
    "TRAINING_DIR": Path(env_str("CODEPREF_TRAINING_DIR", str(VAR_DIR / "training"))),
    "TRAINING_RECIPE": env_str("CODEPREF_TRAINING_RECIPE", "tiny"),
    "TRAINING_MIN_NEW_PREFERENCES": env_int("CODEPREF_TRAINING_MIN_NEW_PREFERENCES", 50),
    # What the pipeline starts each training stage with (its --launcher): empty = this Python; else a command
    # taking `-m <module>`, e.g. "accelerate launch --config_file training/recipes/accelerate/zero2.yaml".
    "TRAINING_LAUNCHER": env_str("CODEPREF_TRAINING_LAUNCHER", ""),
    "TRAINING_PIPELINE_MODULE": env_str("CODEPREF_TRAINING_PIPELINE_MODULE", "training.pipeline"),
    "TRAINING_RECIPES_DIR": Path(env_str("CODEPREF_TRAINING_RECIPES_DIR", str(BASE_DIR / "training" / "recipes"))),
    "TRAINING_TIMEOUT_SECONDS": env_int("CODEPREF_TRAINING_TIMEOUT_SECONDS", 3 * 3600),
    "TRAINING_POLL_SECONDS": env_float("CODEPREF_TRAINING_POLL_SECONDS", 2.0),
    "TRAINING_ARENA_PROMPTS": env_int("CODEPREF_TRAINING_ARENA_PROMPTS", 50),  # prompts the new policy answers
    # The promotion gate's evidence floor: completions per model (prompts x samples); see training/promotion_gate.py.
    "PROMOTION_MIN_COMPLETIONS": env_int("CODEPREF_PROMOTION_MIN_COMPLETIONS", 100),
    # Leaderboards (feedback/leaderboards/): bootstrap resamples of the votes for the simultaneous 95% intervals,
    # their seed, and how many contributors each list shows.
    "LEADERBOARD_BOOTSTRAP_ROUNDS": env_int("CODEPREF_LEADERBOARD_BOOTSTRAP_ROUNDS", 1000),
    "LEADERBOARD_SEED": env_int("CODEPREF_LEADERBOARD_SEED", 12),
    "LEADERBOARD_CONTRIBUTORS": env_int("CODEPREF_LEADERBOARD_CONTRIBUTORS", 50),
}

# --- login lock-out (django-axes; see feedback/accounts/lockout.py) -------------------------------
INSTALLED_APPS.append("axes")
AUTHENTICATION_BACKENDS.insert(0, "feedback.accounts.lockout.LockoutBackend")
MIDDLEWARE.append("axes.middleware.AxesMiddleware")
AXES_HANDLER = "axes.handlers.database.AxesDatabaseHandler"  # one count for every process
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_FAILURE_LIMIT = env_int("LOGIN_FAILURE_LIMIT", 5)
AXES_COOLOFF_TIME = timedelta(seconds=env_int("LOGIN_COOLOFF_SECONDS", 900))
AXES_RESET_ON_SUCCESS = True
AXES_USERNAME_CALLABLE = "feedback.accounts.lockout.account_key"
AXES_CLIENT_IP_CALLABLE = "feedback.client_ip.client_ip"
AXES_LOCKOUT_CALLABLE = "feedback.accounts.lockout.lockout_response"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}, "axes": {"level": "WARNING"}},  # axes: lock-outs only
}

# --- quality control (issue 12: gold pairs, trust, anomaly flags, adaptive k) --------------------------------
CODEPREF.update(
    {
        "QC_GOLD_RATE": env_float("CODEPREF_QC_GOLD_RATE", 0.1),  # share of hand-outs that are gold pairs
        "QC_ONBOARDING_PAIRS": env_int("CODEPREF_QC_ONBOARDING_PAIRS", 3),  # a new volunteer's first pairs: gold
        # Trust: smoothed accuracy (Beta prior) on gold answers plus agreement with final labels, as 2p - 1. The
        # prior (mean 2/3, worth 15 answers) keeps an honest newcomer's few unlucky answers from excluding them.
        "QC_TRUST_PRIOR_ALPHA": env_float("CODEPREF_QC_TRUST_PRIOR_ALPHA", 10.0),
        "QC_TRUST_PRIOR_BETA": env_float("CODEPREF_QC_TRUST_PRIOR_BETA", 5.0),
        "QC_AGREEMENT_WEIGHT": env_float("CODEPREF_QC_AGREEMENT_WEIGHT", 1.0),  # one agreement vs one gold answer
        "QC_TRUST_THRESHOLD": env_float("CODEPREF_QC_TRUST_THRESHOLD", 0.2),  # below: votes leave snapshots
        # Anomaly flags on votes (flagged votes count QC_FLAGGED_VOTE_WEIGHT of their weight).
        "QC_READ_MS_BASE": env_int("CODEPREF_QC_READ_MS_BASE", 1500),
        "QC_READ_MS_PER_CHAR": env_float("CODEPREF_QC_READ_MS_PER_CHAR", 2.0),
        "QC_SAME_SIDE_RUN": env_int("CODEPREF_QC_SAME_SIDE_RUN", 10),
        "QC_ONE_CHOICE_RUN": env_int("CODEPREF_QC_ONE_CHOICE_RUN", 10),
        "QC_MAX_VOTES_PER_MINUTE": env_int("CODEPREF_QC_MAX_VOTES_PER_MINUTE", 12),
        "QC_DAILY_CAP": env_int("CODEPREF_QC_DAILY_CAP", 500),
        # Picking the longer (or the shorter) side in at least this share of this many votes is flagged.
        "QC_LENGTH_BIAS_VOTES": env_int("CODEPREF_QC_LENGTH_BIAS_VOTES", 10),
        "QC_LENGTH_BIAS_SHARE": env_float("CODEPREF_QC_LENGTH_BIAS_SHARE", 0.9),
        "QC_FLAGGED_VOTE_WEIGHT": env_float("CODEPREF_QC_FLAGGED_VOTE_WEIGHT", 0.1),
        "QC_FLAGGED_SHARE": env_float("CODEPREF_QC_FLAGGED_SHARE", 0.3),  # share of flagged votes that flags one
        # Adaptive k: pairs whose votes agree less than this get QC_EXTRA_VOTES more, up to QC_MAX_VOTES_PER_PAIR.
        "QC_LOW_AGREEMENT": env_float("CODEPREF_QC_LOW_AGREEMENT", 0.6),
        "QC_EXTRA_VOTES": env_int("CODEPREF_QC_EXTRA_VOTES", 2),
        "QC_MAX_VOTES_PER_PAIR": env_int("CODEPREF_QC_MAX_VOTES_PER_PAIR", 7),
    }
)

# --- drills and operations (issue 11) ----------------------------------------------------------
# The plumbing's error responses (401/403/404/413/415/429/503) documented on every API operation.
SPECTACULAR_SETTINGS["POSTPROCESSING_HOOKS"] = [
    "drf_spectacular.hooks.postprocess_schema_enums",
    "feedback.api.schema.add_common_errors",
]
# Prometheus: django-prometheus's request metrics and codepref's counters (feedback/metrics.py) at /metrics,
# answered to loopback and METRICS_ALLOWED_IPS, or to "Authorization: Bearer <METRICS_TOKEN>"; 404 otherwise.
INSTALLED_APPS.append("django_prometheus")
MIDDLEWARE.insert(0, "feedback.request_id.RequestIdMiddleware")  # X-Request-ID, also on refused requests
# django-prometheus's per-request metrics cost ~0.3 ms of CPU per vote (bench/vote_path.py, "nometrics"): opt in.
METRICS_REQUESTS = env_bool("METRICS_REQUESTS", False)
if METRICS_REQUESTS:
    MIDDLEWARE.insert(0, "django_prometheus.middleware.PrometheusBeforeMiddleware")
    MIDDLEWARE.append("django_prometheus.middleware.PrometheusAfterMiddleware")
METRICS_TOKEN = env_str("METRICS_TOKEN")
METRICS_ALLOWED_IPS = env_list("METRICS_ALLOWED_IPS", ["127.0.0.1", "::1"])
# Logs: "plain" for people, "json" (one object a line) for collectors; both carry the request id.
LOG_FORMAT = env_str("LOG_FORMAT", "plain")
if LOG_FORMAT not in ("plain", "json"):
    raise ImproperlyConfigured(f"LOG_FORMAT={LOG_FORMAT!r}: expected plain or json")
LOGGING["filters"] = {"request_id": {"()": "feedback.request_id.RequestIdFilter"}}
LOGGING["formatters"]["plain"]["format"] = "%(asctime)s %(levelname)s %(name)s [%(request_id)s]: %(message)s"
LOGGING["formatters"]["json"] = {"()": "feedback.log_format.JsonFormatter"}
LOGGING["handlers"]["console"].update(formatter=LOG_FORMAT, filters=["request_id"])
