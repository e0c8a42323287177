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
