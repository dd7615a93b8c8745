"""The command line without any service: help text and what a missing API means."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from tests.support import free_port


def copydesk(*args: str, tmp_path, **env: str) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if not k.startswith("COPYDESK_")}
    full = {**base, "COPYDESK_ENV_FILE": "", "COPYDESK_STATE_DIR": str(tmp_path / "state"),
            "XDG_CONFIG_HOME": str(tmp_path / "config"), "COLUMNS": "100", **env}
    return subprocess.run([sys.executable, "-m", "app.cli", *args], env=full, cwd=tmp_path, capture_output=True,
                          text=True, timeout=60)


@pytest.mark.parametrize("command", [("runs",), ("submit",), ("dev",), ("reject",), ("mailbox", "add"), ("users", "create")])
def test_help_names_values_not_python_types(tmp_path, command):
    result = copydesk(*command, "--help", tmp_path=tmp_path)
    assert result.returncode == 0, result.stderr
    assert not re.search(r"<(str|bool|int|float|Path|list\[str\])[^>]*>", result.stdout), result.stdout


def test_help_shows_what_each_option_takes(tmp_path):
    runs = copydesk("runs", "--help", tmp_path=tmp_path).stdout
    assert re.search(r"--api-url\s+URL\s", runs) and re.search(r"--limit\s+LIMIT\s", runs)
    assert re.search(r"--watch\s+refresh every second", runs)  # a flag takes no value
    dev = copydesk("dev", "--help", tmp_path=tmp_path).stdout
    assert re.search(r"--flower-port\s+PORT\s", dev) and re.search(r"--ready-file\s+FILE\s", dev)


def test_an_api_that_cannot_be_reached_says_so_before_asking_to_log_in(tmp_path):
    nowhere = f"http://127.0.0.1:{free_port()}"
    result = copydesk("runs", "--api-url", nowhere, tmp_path=tmp_path)
    assert result.returncode == 3, result.stderr
    assert result.stderr.startswith(f"copydesk: cannot reach the API at {nowhere}")
