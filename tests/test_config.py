"""Settings: a bad value stops start-up with a message naming the variable."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from app.core.config import load_settings
from app.core.errors import ConfigurationError


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    for name in ("DATABASE_URL", "REDIS_URL", "OSS_ENDPOINT", "OSS_BUCKET", "OSS_ACCESS_KEY_ID",
                 "OSS_ACCESS_KEY_SECRET", "WP_URL", "WP_USER", "WP_APP_PASSWORD", "IMAP_HOST", "IMAP_USER",
                 "IMAP_PASSWORD", "JWT_SECRET_KEY", "ENCRYPTION_KEY", "COPYDESK_ENV", "MAX_UPLOAD_MB"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("COPYDESK_ENV_FILE", "")


@pytest.mark.parametrize(
    "name, value, expected",
    [
        ("DATABASE_URL", "mysql://root@localhost/x", "DATABASE_URL"),
        ("REDIS_URL", "http://localhost:6379", "REDIS_URL"),
        ("JWT_SECRET_KEY", "short", "JWT_SECRET_KEY"),
        ("MAX_UPLOAD_MB", "-3", "MAX_UPLOAD_MB"),
        ("PUBLIC_URL", "not a url", "PUBLIC_URL"),
        ("OPENAI_BASE_URL", "ftp://models", "OPENAI_BASE_URL"),
        ("IMAP_PORT", "70000", "IMAP_PORT"),
    ],
)
def test_bad_value_names_the_variable(monkeypatch, name, value, expected):
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigurationError) as err:
        load_settings()
    assert expected in err.value.message
    assert err.value.message.startswith("invalid configuration")


def test_half_configured_services_say_what_is_missing(monkeypatch):
    monkeypatch.setenv("OSS_ENDPOINT", "https://oss-cn-hangzhou.aliyuncs.com")
    monkeypatch.setenv("OSS_BUCKET", "b")
    with pytest.raises(ConfigurationError) as err:
        load_settings()
    assert "OSS_ACCESS_KEY_ID" in err.value.message and "OSS_ACCESS_KEY_SECRET" in err.value.message


def test_production_requires_its_services_and_secrets(monkeypatch):
    monkeypatch.setenv("COPYDESK_ENV", "production")
    with pytest.raises(ConfigurationError) as err:
        load_settings()
    assert "DATABASE_URL is required" in err.value.message


def test_defaults_need_nothing_configured(tmp_path, monkeypatch):
    monkeypatch.setenv("COPYDESK_STATE_DIR", str(tmp_path))
    settings = load_settings()
    assert settings.database_url is None and settings.redis_url is None and not settings.uses_oss
    assert len(settings.jwt_secret()) >= 32
    assert settings.jwt_secret() == load_settings().jwt_secret()  # kept in the state folder
    assert (tmp_path / "secrets" / "jwt-secret").stat().st_mode & 0o077 == 0  # private to its owner


def test_secrets_are_redacted_from_logs(monkeypatch):
    from app.core.logging import Redactor

    redact = Redactor(["s3cr3t-value", "abcd"])
    line = redact("login with s3cr3t-value to postgresql://copydesk:hunter22@db/x failed (abcd)")
    assert "s3cr3t-value" not in line and "hunter22" not in line and "abcd" not in line
    assert line.count("[redacted]") == 3


def test_cli_exits_2_with_one_line_on_bad_configuration(tmp_path):
    env = {"PATH": "/usr/bin:/bin", "COPYDESK_ENV_FILE": "", "REDIS_URL": "ftp://nope",
           "COPYDESK_STATE_DIR": str(tmp_path)}
    result = subprocess.run([sys.executable, "-m", "app.cli", "users", "list"], env=env, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1].startswith("copydesk: invalid configuration: REDIS_URL")


def test_runtime_settings_come_from_the_state_folder(tmp_path, monkeypatch):
    """The configuration file names the state folder; a running stack's runtime.env there wins over
    the file, and the environment over both."""
    from app.core.config import state_dir

    state = tmp_path / "stack-a"
    state.mkdir()
    (state / "runtime.env").write_text("DATABASE_URL=postgresql://postgres:pw@127.0.0.1:7001/copydesk\n"
                                       "PUBLIC_URL=http://127.0.0.1:7002\n")
    env_file = tmp_path / "copydesk.env"
    env_file.write_text(f"COPYDESK_STATE_DIR={state}\nPUBLIC_URL=http://127.0.0.1:8000\nMAX_UPLOAD_MB=7\n")
    monkeypatch.setenv("COPYDESK_ENV_FILE", str(env_file))
    monkeypatch.delenv("COPYDESK_STATE_DIR", raising=False)
    monkeypatch.delenv("PUBLIC_URL", raising=False)
    assert state_dir() == state
    settings = load_settings()
    assert settings.state_dir == state and settings.max_upload_mb == 7
    assert settings.database_url.endswith("@127.0.0.1:7001/copydesk")
    assert str(settings.public_url).startswith("http://127.0.0.1:7002")

    monkeypatch.setenv("PUBLIC_URL", "http://127.0.0.1:7003")
    assert str(load_settings().public_url).startswith("http://127.0.0.1:7003")

    # Another state folder: another stack's runtime settings, none here.
    monkeypatch.delenv("PUBLIC_URL")
    monkeypatch.setenv("COPYDESK_STATE_DIR", str(tmp_path / "stack-b"))
    settings = load_settings()
    assert settings.state_dir == tmp_path / "stack-b" and settings.database_url is None
    assert str(settings.public_url).startswith("http://127.0.0.1:8000")


def test_a_relative_state_folder_is_made_absolute(tmp_path, monkeypatch):
    from app.core.config import state_dir

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("COPYDESK_STATE_DIR", "here")
    assert state_dir() == tmp_path / "here" and load_settings().state_dir == tmp_path / "here"


def test_env_example_lists_every_setting():
    from app.core.config import ROOT, Settings

    listed = set(re.findall(r"^([A-Z][A-Z0-9_]*)=", (ROOT / ".env.example").read_text(), re.MULTILINE))
    variables = [field.alias or name.upper() for name, field in Settings.model_fields.items()]
    assert [name for name in variables if name not in listed] == []
