import os
import subprocess
import sys


def run_bare(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "mes.cli", *args],
        capture_output=True,
        text=True,
        timeout=60,
        input="",
        env={**os.environ, "MES_INSTANCE": ""},
    )


def assert_refused(result, message: str) -> None:
    """A refusal: exit 1, nothing on stdout, the one line ``error: message`` on stderr."""
    assert (result.code, result.out, result.err) == (1, "", f"error: {message}\n")
