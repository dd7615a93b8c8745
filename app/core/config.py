"""Settings from the environment and a `.env` file (pydantic-settings).

Every variable is documented in `.env.example` and the README. A bad value stops start-up with a
message that names the variable (`load_settings()` turns pydantic's errors into one readable
`ConfigurationError`). Unset services fall back to the embedded defaults (see README).
"""

from __future__ import annotations

import functools
import os
import secrets
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import AnyHttpUrl, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from app.core.errors import ConfigurationError

ROOT = Path(__file__).resolve().parents[2]


def _env_file() -> str | None:
    """The configuration file: COPYDESK_ENV_FILE (a path; "" for none, as the tests have it), else .env."""
    value = os.environ.get("COPYDESK_ENV_FILE")
    return ".env" if value is None else (value or None)


def state_dir() -> Path:
    """Where this stack keeps its state (embedded servers, runtime.env, local storage, dev secrets, logs):
    COPYDESK_STATE_DIR from the environment, else from the configuration file, else state/ in the
    checkout. The one place that decides it: `copydesk dev`, the CLI, the API and the workers read the
    runtime settings of a running stack (runtime.env) from here."""
    value = os.environ.get("COPYDESK_STATE_DIR")
    if not value and _env_file():
        from dotenv import dotenv_values

        value = dotenv_values(_env_file()).get("COPYDESK_STATE_DIR")
    return Path(value).expanduser().resolve() if value else ROOT / "state"


def runtime_env_path() -> Path:
    """Settings a running `copydesk dev` decided (embedded DATABASE_URL, REDIS_URL, PUBLIC_URL)."""
    return state_dir() / "runtime.env"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        case_sensitive=False,
        env_ignore_empty=True,  # VAR= (as docker compose passes unset variables) means "not set"
    )

    # --- general -----------------------------------------------------------------------------
    env: Literal["development", "production", "test"] = Field("development", alias="COPYDESK_ENV")
    state_dir: Path = Field(default_factory=state_dir, alias="COPYDESK_STATE_DIR")
    public_url: AnyHttpUrl = Field("http://127.0.0.1:8000", alias="PUBLIC_URL")
    max_upload_mb: float = Field(50, gt=0, le=2048, alias="MAX_UPLOAD_MB")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field("INFO", alias="LOG_LEVEL")
    log_format: Literal["json", "text"] = Field("json", alias="LOG_FORMAT")

    # --- PostgreSQL and Redis (unset: embedded servers started by `copydesk dev`) -------------
    database_url: str | None = Field(None, alias="DATABASE_URL")
    redis_url: str | None = Field(None, alias="REDIS_URL")

    # --- connections to PostgreSQL and Redis (app/core/connections.py) -----------------------
    # Seconds to open a connection; then an open connection whose peer stops answering (a host cut
    # off the network) fails after DEAD_PEER_TIMEOUT seconds (TCP keepalive + TCP_USER_TIMEOUT).
    connect_timeout: int = Field(5, ge=2, le=300, alias="CONNECT_TIMEOUT")
    dead_peer_timeout: int = Field(10, ge=2, le=3600, alias="DEAD_PEER_TIMEOUT")
    # The longest wait for one Redis reply, how often an idle Redis connection is checked before use,
    # and how often a failed Redis command is tried again (each time on a new connection).
    redis_socket_timeout: float = Field(5, gt=1, alias="REDIS_SOCKET_TIMEOUT")
    redis_health_check_interval: int = Field(10, ge=0, alias="REDIS_HEALTH_CHECK_INTERVAL")
    redis_retries: int = Field(1, ge=0, le=10, alias="REDIS_RETRIES")

    # --- auth --------------------------------------------------------------------------------
    jwt_secret_key: SecretStr | None = Field(None, alias="JWT_SECRET_KEY")
    jwt_expire_minutes: int = Field(60 * 12, gt=0, alias="JWT_EXPIRE_MINUTES")
    # Fernet key for passwords stored in the database (mailboxes, WordPress sites).
    encryption_key: SecretStr | None = Field(None, alias="ENCRYPTION_KEY")

    # --- object storage ----------------------------------------------------------------------
    storage_dir: Path | None = Field(None, alias="STORAGE_DIR")
    oss_endpoint: str | None = Field(None, alias="OSS_ENDPOINT")
    oss_bucket: str | None = Field(None, alias="OSS_BUCKET")
    oss_access_key_id: str | None = Field(None, alias="OSS_ACCESS_KEY_ID")
    oss_access_key_secret: SecretStr | None = Field(None, alias="OSS_ACCESS_KEY_SECRET")
    oss_public_base_url: str | None = Field(None, alias="OSS_PUBLIC_BASE_URL")
    oss_signature_version: Literal["v1", "v4"] = Field("v4", alias="OSS_SIGNATURE_VERSION")
    oss_region: str | None = Field(None, alias="OSS_REGION")

    # --- LLM ---------------------------------------------------------------------------------
    openai_api_key: SecretStr | None = Field(None, alias="OPENAI_API_KEY")
    openai_base_url: str | None = Field(None, alias="OPENAI_BASE_URL")
    openai_model: str = Field("gpt-4o-mini", alias="OPENAI_MODEL")
    openai_timeout: float = Field(120, gt=0, alias="OPENAI_TIMEOUT")
    # Cached edits older than this are deleted (hourly, by beat); 0 keeps them forever.
    llm_cache_days: float = Field(90, ge=0, alias="LLM_CACHE_DAYS")

    # --- WordPress (default site) ------------------------------------------------------------
    wp_url: AnyHttpUrl | None = Field(None, alias="WP_URL")
    wp_user: str | None = Field(None, alias="WP_USER")
    wp_app_password: SecretStr | None = Field(None, alias="WP_APP_PASSWORD")
    wp_body_format: Literal["blocks", "html"] = Field("blocks", alias="WP_BODY_FORMAT")
    wp_import_images: bool = Field(True, alias="WP_IMPORT_IMAGES")
    wp_default_status: Literal["draft", "pending", "publish", "private"] = Field(
        "draft", alias="WP_DEFAULT_STATUS"
    )
    wp_default_category: str | None = Field(None, alias="WP_DEFAULT_CATEGORY")
    # JSON, the default site's `options` as the API takes them for other sites (app/models/site.py).
    wp_site_options: dict[str, Any] | None = Field(None, alias="WP_SITE_OPTIONS")
    # Seconds a site's tags and categories are kept in Redis for the editors (0: asked every time).
    site_terms_ttl: float = Field(300, ge=0, le=86400, alias="SITE_TERMS_TTL")

    # --- mailbox (default source) ------------------------------------------------------------
    imap_host: str | None = Field(None, alias="IMAP_HOST")
    imap_port: int | None = Field(None, gt=0, lt=65536, alias="IMAP_PORT")
    imap_user: str | None = Field(None, alias="IMAP_USER")
    imap_password: SecretStr | None = Field(None, alias="IMAP_PASSWORD")
    imap_folder: str = Field("INBOX", alias="IMAP_FOLDER")
    imap_tls: Literal["imaps", "starttls", "plain"] = Field("imaps", alias="IMAP_TLS")
    # Each of these, when set, is the default mailbox's value (applied before its first poll, and
    # the API refuses to change it); unset, the value an admin gives through the API stays.
    imap_processed_folder: str | None = Field(None, alias="IMAP_PROCESSED_FOLDER")
    imap_failed_folder: str | None = Field(None, alias="IMAP_FAILED_FOLDER")
    imap_allowed_senders: str | None = Field(None, alias="IMAP_ALLOWED_SENDERS")  # comma-separated
    imap_poll_interval: int | None = Field(None, ge=1, le=86400, alias="IMAP_POLL_INTERVAL")
    imap_enabled: bool | None = Field(None, alias="IMAP_ENABLED")
    imap_workflow: str | None = Field(None, alias="IMAP_WORKFLOW")
    imap_defaults: dict[str, Any] | None = Field(None, alias="IMAP_DEFAULTS")  # JSON, as the API's `defaults`
    imap_ca_file: Path | None = Field(None, alias="IMAP_CA_FILE")  # PEM of a CA to trust

    # --- replies to senders (SMTP) and webhooks ---------------------------------------------
    smtp_host: str | None = Field(None, alias="SMTP_HOST")
    smtp_port: int | None = Field(None, gt=0, lt=65536, alias="SMTP_PORT")  # None: 587, 465 (ssl) or 25 (plain)
    smtp_user: str | None = Field(None, alias="SMTP_USER")
    smtp_password: SecretStr | None = Field(None, alias="SMTP_PASSWORD")
    smtp_tls: Literal["starttls", "ssl", "plain"] = Field("starttls", alias="SMTP_TLS")
    smtp_from: str | None = Field(None, alias="SMTP_FROM")  # a mailbox's replies may set their own
    smtp_timeout: float = Field(30, gt=0, alias="SMTP_TIMEOUT")
    smtp_ca_file: Path | None = Field(None, alias="SMTP_CA_FILE")  # a CA bundle instead of the system's
    webhook_timeout: float = Field(10, gt=0, alias="WEBHOOK_TIMEOUT")
    # How often beat turns new run events into replies and webhook deliveries.
    notify_interval: float = Field(5, gt=0, alias="NOTIFY_INTERVAL")
    # Tries per reply or delivery (transient failures), the first wait and the longest between tries.
    notify_max_attempts: int = Field(8, ge=1, le=50, alias="NOTIFY_MAX_ATTEMPTS")
    notify_retry_wait: float = Field(10, gt=0, alias="NOTIFY_RETRY_WAIT")
    notify_retry_max_wait: float = Field(3600, gt=0, alias="NOTIFY_RETRY_MAX_WAIT")
    # A send claimed longer ago than this belonged to a worker that died (above SMTP/WEBHOOK_TIMEOUT).
    notify_claim_timeout: float = Field(300, gt=0, alias="NOTIFY_CLAIM_TIMEOUT")

    # --- LibreOffice -------------------------------------------------------------------------
    soffice_path: str = Field("soffice", alias="SOFFICE_PATH")
    convert_timeout: float = Field(120, gt=0, alias="CONVERT_TIMEOUT")

    # --- Celery and the workflow engine ------------------------------------------------------
    # Longer than the longest step timeout and the longest retry countdown (notes: duplicates otherwise).
    visibility_timeout: int = Field(3 * 3600, gt=0, alias="CELERY_VISIBILITY_TIMEOUT")
    unacked_restore_interval: float = Field(10, gt=0, alias="CELERY_UNACKED_RESTORE_INTERVAL")
    result_expires: int = Field(7 * 24 * 3600, gt=0, alias="CELERY_RESULT_EXPIRES")
    # A retry that would wait longer than this goes back to the broker instead of holding a worker slot.
    inline_retry_max_wait: float = Field(10, ge=0, alias="INLINE_RETRY_MAX_WAIT")
    heartbeat_interval: float = Field(5, gt=0, alias="STEP_HEARTBEAT_INTERVAL")
    # A running step whose heartbeat is older than this is presumed dead (its worker was killed).
    heartbeat_timeout: float = Field(60, gt=0, alias="STEP_HEARTBEAT_TIMEOUT")
    # The sweeper re-queues a run that has shown no progress for this long (and no live step).
    stuck_after: float = Field(600, gt=0, alias="RUN_STUCK_AFTER")
    sweep_interval: float = Field(30, gt=0, alias="SWEEP_INTERVAL")
    max_sweeps: int = Field(3, ge=0, alias="RUN_MAX_SWEEPS")
    mailbox_dispatch_interval: float = Field(5, gt=0, alias="MAILBOX_DISPATCH_INTERVAL")
    # Extra workflow definitions (a folder of YAML files) and modules registering extra step kinds.
    workflows_dir: Path | None = Field(None, alias="WORKFLOWS_DIR")
    step_modules: str = Field("", alias="STEP_MODULES")  # comma-separated module paths

    # --- Flower ------------------------------------------------------------------------------
    flower_user: str = Field("admin", alias="FLOWER_USER")
    flower_password: SecretStr | None = Field(None, alias="FLOWER_PASSWORD")
    flower_port: int = Field(5555, gt=0, lt=65536, alias="FLOWER_PORT")

    @field_validator("state_dir")
    @classmethod
    def _absolute_state_dir(cls, value: Path) -> Path:
        return value.expanduser().resolve()

    @field_validator("database_url")
    @classmethod
    def _check_database_url(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        scheme = urlsplit(value).scheme
        if not scheme.startswith("postgres"):
            raise ValueError("must be a PostgreSQL URL such as postgresql://user:pass@host:5432/db")
        return value

    @field_validator("redis_url")
    @classmethod
    def _check_redis_url(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        if urlsplit(value).scheme not in ("redis", "rediss", "unix"):
            raise ValueError("must be a Redis URL such as redis://127.0.0.1:6379/0")
        return value

    @field_validator("jwt_secret_key")
    @classmethod
    def _check_jwt_secret(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < 32:
            raise ValueError("must be at least 32 characters (e.g. `openssl rand -hex 32`)")
        return value

    @field_validator("oss_endpoint", "openai_base_url")
    @classmethod
    def _check_http_url(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        if urlsplit(value).scheme not in ("http", "https"):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/")

    @model_validator(mode="after")
    def _check_groups(self) -> Settings:
        oss = {
            "OSS_ENDPOINT": self.oss_endpoint,
            "OSS_BUCKET": self.oss_bucket,
            "OSS_ACCESS_KEY_ID": self.oss_access_key_id,
            "OSS_ACCESS_KEY_SECRET": self.oss_access_key_secret,
        }
        if any(oss.values()) and not all(oss.values()):
            missing = ", ".join(k for k, v in oss.items() if not v)
            raise ValueError(f"OSS storage is half configured: set {missing} as well (or none of them)")
        wp = {"WP_URL": self.wp_url, "WP_USER": self.wp_user, "WP_APP_PASSWORD": self.wp_app_password}
        if any(wp.values()) and not all(wp.values()):
            missing = ", ".join(k for k, v in wp.items() if not v)
            raise ValueError(f"the default WordPress site is half configured: set {missing} as well")
        if bool(self.smtp_user) != bool(self.smtp_password):
            raise ValueError("SMTP login is half configured: set SMTP_USER and SMTP_PASSWORD together (or neither)")
        imap = {"IMAP_HOST": self.imap_host, "IMAP_USER": self.imap_user, "IMAP_PASSWORD": self.imap_password}
        if any(imap.values()) and not all(imap.values()):
            missing = ", ".join(k for k, v in imap.items() if not v)
            raise ValueError(f"the default mailbox is half configured: set {missing} as well")
        if self.env == "production":
            for name, value in (
                ("DATABASE_URL", self.database_url),
                ("REDIS_URL", self.redis_url),
                ("JWT_SECRET_KEY", self.jwt_secret_key),
                ("ENCRYPTION_KEY", self.encryption_key),
            ):
                if not value:
                    raise ValueError(f"{name} is required when COPYDESK_ENV=production")
        return self

    # --- derived values ----------------------------------------------------------------------

    @property
    def storage_root(self) -> Path:
        return self.storage_dir or self.state_dir / "storage"

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 1024 * 1024)

    @property
    def uses_oss(self) -> bool:
        return bool(self.oss_endpoint)

    @property
    def uses_openai(self) -> bool:
        return self.openai_api_key is not None

    def jwt_secret(self) -> str:
        if self.jwt_secret_key is not None:
            return self.jwt_secret_key.get_secret_value()
        return _state_secret(self.state_dir / "secrets" / "jwt-secret", lambda: secrets.token_urlsafe(48))

    def fernet_key(self) -> str:
        if self.encryption_key is not None:
            return self.encryption_key.get_secret_value()
        from cryptography.fernet import Fernet

        return _state_secret(
            self.state_dir / "secrets" / "encryption-key", lambda: Fernet.generate_key().decode()
        )

    def secret_values(self) -> list[str]:
        """Every configured secret, for log redaction and the no-leak tests."""
        values = []
        for field in (
            self.oss_access_key_secret,
            self.openai_api_key,
            self.wp_app_password,
            self.imap_password,
            self.smtp_password,
            self.jwt_secret_key,
            self.encryption_key,
            self.flower_password,
        ):
            if field is not None and field.get_secret_value():
                values.append(field.get_secret_value())
        for url in (self.database_url, self.redis_url):
            password = urlsplit(url).password if url else None
            if password:
                values.append(password)
        return values


def _state_secret(path: Path, make) -> str:
    """A development secret kept in the (git-ignored) state folder, created on first use."""
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        value = make()
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(value)
        return value
    except FileExistsError:  # pragma: no cover - raced with another process
        return path.read_text().strip()


def load_settings(**overrides) -> Settings:
    """Read the settings, or raise ConfigurationError naming each bad variable."""
    # The environment wins over runtime.env, which wins over the configuration file. COPYDESK_ENV_FILE=""
    # reads neither file (the tests use it: they never see a developer's .env or a running stack).
    env_file = _env_file()
    overrides.setdefault("_env_file", (env_file, runtime_env_path()) if env_file else None)
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            loc = [str(p) for p in err.get("loc", ()) if p != "__root__"]
            name = loc[0].upper() if loc else ""
            msg = err.get("msg", "invalid").removeprefix("Value error, ")
            problems.append(f"{name}: {msg}" if name else msg)
        raise ConfigurationError("invalid configuration: " + "; ".join(problems)) from None


@functools.lru_cache(maxsize=1)
def get_settings() -> Settings:
    return load_settings()


def reset_settings_cache() -> None:
    get_settings.cache_clear()
