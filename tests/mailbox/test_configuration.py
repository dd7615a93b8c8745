"""A source's settings: typed options checked whenever they are saved, the default mailbox's
variables, and a CA certificate trusted from memory (never written to a shared path)."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

import pytest
from pydantic import ValidationError

from app.core.config import load_settings
from app.core.errors import ConfigurationError

MAILBOX = {"IMAP_HOST": "imap.example.org", "IMAP_USER": "desk@example.org", "IMAP_PASSWORD": "pw-for-tests"}


def test_options_are_typed_and_refused_when_unknown_or_bad():
    from app.models import Source

    options = Source(options={"timeout": 10, "allow_plain": True}).typed_options
    assert (options.timeout, options.allow_plain, options.max_messages_per_poll, options.ca_cert) == (10, True, 200, None)
    with pytest.raises(ValidationError, match="colour"):
        Source(options={"colour": "red"})
    with pytest.raises(ValidationError, match="timeout"):
        Source(options={"timeout": 0})
    with pytest.raises(ValidationError, match="PEM certificate"):
        Source(options={"ca_cert": "-----BEGIN CERTIFICATE-----\nnot one\n-----END CERTIFICATE-----\n"})


@pytest.mark.postgres
@pytest.mark.redis
def test_the_api_and_the_cli_refuse_bad_options(stack_env, admin_client, tmp_path):
    body = {"name": f"opts-{uuid.uuid4().hex[:6]}", "host": "imap.example.org", "username": "u", "password": "p"}
    for extra, words in [({"allow_plain": "perhaps"}, "allow_plain"), ({"timeout": 5}, "timeout")]:
        answer = admin_client.post("/sources", json={**body, **extra})
        assert answer.status_code == 422 and words in answer.json()["detail"], answer.text
    not_a_cert = tmp_path / "ca.pem"
    not_a_cert.write_text("a note, not a certificate\n")
    added = subprocess.run(
        [sys.executable, "-c", "from app.cli import main; main()", "mailbox", "add", body["name"], "--host", "h",
         "--user", "u", "--password", "p", "--ca-file", str(not_a_cert)],
        env=stack_env["env"], capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert added.returncode == 2
    assert added.stderr.strip() == "copydesk: ca_cert: must be a PEM certificate (-----BEGIN CERTIFICATE-----) that TLS can load"


def variables(monkeypatch, **values: str):
    """The settings with only these IMAP_* variables set (as the environment gives them: text)."""
    for name in [name for name in os.environ if name.startswith("IMAP_")]:
        monkeypatch.delenv(name)
    for name, value in {**MAILBOX, **values}.items():
        monkeypatch.setenv(name, value)
    return load_settings()


def test_the_default_mailbox_variables(monkeypatch, tmp_path):
    from app.services.mailboxes import environment_values

    ca = tmp_path / "ca.pem"
    ca.write_text("PEM")
    values = environment_values(variables(
        monkeypatch, IMAP_ALLOWED_SENDERS=" ann@example.org, @partner.example ,", IMAP_POLL_INTERVAL="30",
        IMAP_ENABLED="false", IMAP_PROCESSED_FOLDER="Done", IMAP_DEFAULTS='{"status": "draft"}', IMAP_CA_FILE=str(ca),
    ))  # fmt: skip
    assert values == {
        "host": "imap.example.org", "port": None, "tls_mode": "imaps", "allow_plain": False,
        "username": "desk@example.org", "folder": "INBOX", "processed_folder": "Done",
        "allowed_senders": ["ann@example.org", "@partner.example"], "poll_interval": 30, "enabled": False,
        "defaults": {"status": "draft"}, "ca_cert": "PEM",
    }  # fmt: skip
    assert "failed_folder" not in values and "workflow" not in values  # unset: left to the API

    with pytest.raises(ConfigurationError, match="IMAP_POLL_INTERVAL"):
        variables(monkeypatch, IMAP_POLL_INTERVAL="0")
    with pytest.raises(ConfigurationError, match="IMAP_DEFAULTS"):
        variables(monkeypatch, IMAP_POLL_INTERVAL="30", IMAP_DEFAULTS="not JSON")
    with pytest.raises(ConfigurationError, match="IMAP_DEFAULTS: colour"):
        environment_values(variables(monkeypatch, IMAP_DEFAULTS='{"colour": "red"}'))
    with pytest.raises(ConfigurationError, match="IMAP_CA_FILE: cannot read"):
        environment_values(variables(monkeypatch, IMAP_DEFAULTS="{}", IMAP_CA_FILE=str(tmp_path / "missing.pem")))
    variables(monkeypatch)
    for name in MAILBOX:
        monkeypatch.delenv(name)
    assert environment_values(load_settings()) is None


@pytest.mark.imap
@pytest.mark.postgres
@pytest.mark.redis
def test_a_ca_certificate_is_trusted_from_memory(stack_env, dovecot, imap_user):
    from app.core.security import encrypt_secret
    from app.integrations.mailbox import check_mailbox
    from app.models import Source
    from app.services.mailboxes import mailbox_config

    pem = Path(dovecot.ca_file).read_text()
    source = Source(
        name="in-memory-ca", host=dovecot.host, port=dovecot.imaps_port, tls_mode="imaps", username=imap_user,
        password_encrypted=encrypt_secret(dovecot.users[imap_user]), folder="INBOX", processed_folder="Processed",
        failed_folder="Failed", allowed_senders=[], options={"ca_cert": pem},
    )  # fmt: skip
    before = set(Path(tempfile.gettempdir()).iterdir())
    config = mailbox_config(source)
    assert (config.ca_file, config.ca_cert) == (None, pem)
    assert check_mailbox(config).logged_in
    written = [p for p in set(Path(tempfile.gettempdir()).iterdir()) - before if p.is_file() and p.read_text(errors="ignore") == pem]
    assert written == []


@pytest.mark.postgres
@pytest.mark.redis
def test_a_bad_variable_is_logged_and_stops_no_dispatch(stack_env, monkeypatch, caplog):
    from app.core.config import reset_settings_cache
    from app.services.mailboxes import sync_default_source

    variables(monkeypatch, IMAP_DEFAULTS='{"status": "maybe"}')
    reset_settings_cache()
    try:
        with caplog.at_level("ERROR", logger="copydesk.mailbox"):
            sync_default_source()  # what beat and the dispatcher do first: it must not raise
        assert "IMAP_DEFAULTS: status: Input should be" in caplog.text
    finally:
        monkeypatch.undo()
        reset_settings_cache()
