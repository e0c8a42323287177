"""A local HTTP server in its own process that writes down every request it gets.

For the tests that prove the record's renderer fetches nothing: a payload points at this
server, and afterwards its log must be empty. The server runs in a child process (the test
process keeps a single thread, so the renderer's layout workers are forked as in production);
it writes each request line to its log and flushes it before answering, so a request the
renderer made is in the log by the time the rendering returns.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

SERVER = """
import http.server, sys
log = open(sys.argv[1], "a", encoding="utf-8")
class Recorder(http.server.BaseHTTPRequestHandler):
    def answer(self):
        log.write(self.requestline + "\\n"); log.flush()
        body = b"body { color: red }"
        self.send_response(200)
        self.send_header("Content-Type", "text/css")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
    do_GET = do_POST = do_HEAD = answer
    def log_message(self, *args):
        pass
server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
print(server.server_address[1], flush=True)
server.serve_forever()
"""


@dataclass(frozen=True)
class RecordingServer:
    """Where the server listens, and what it was asked."""

    port: int
    log: Path

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def requests(self) -> list[str]:
        return self.log.read_text(encoding="utf-8").splitlines()


@contextmanager
def recording_server(folder: Path) -> Iterator[RecordingServer]:
    """A recording HTTP server on 127.0.0.1 for the length of the block."""
    log = folder / "requests.log"
    log.write_text("", encoding="utf-8")
    process = subprocess.Popen(
        [sys.executable, "-c", SERVER, str(log)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert process.stdout is not None
        port = int(process.stdout.readline())  # printed once it listens
        yield RecordingServer(port, log)
    finally:
        process.terminate()
        process.wait(timeout=30)
        if process.stdout is not None:
            process.stdout.close()
