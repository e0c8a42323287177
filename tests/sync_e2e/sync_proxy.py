"""A small HTTP/1.1 forwarder between a spoke and the hub that can misbehave on request.

One request per connection: the proxy reads the request, sends it to the hub with
``Connection: close``, reads the whole answer, then passes it on — or, when a rule armed by the
test matches the request, cuts the answer off half way, changes one byte of its body, or holds
it until the test lets it go (so the test can kill the spoke while its request is in flight,
after the hub committed). For an outage it answers every request itself, without asking the hub
(a reverse proxy's 502 page, say), until the test lets traffic pass again. Every exchange is
logged.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from dataclasses import dataclass, field

ACTIONS = ("cut", "flip", "hold")


@dataclass
class Rule:
    """Misbehave on the first matching request after ``skip`` matching ones pass untouched."""

    method: str
    prefix: str
    action: str
    skip: int = 0
    fired: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)
    target: str | None = None  # the request it fired on


@dataclass(frozen=True)
class Exchange:
    """One forwarded request and what the proxy did with the answer."""

    method: str
    target: str
    status: int
    action: str | None


def flip_byte(data: bytes, index: int) -> bytes:
    """``data`` with the byte at ``index`` changed (letters change case, digits 0↔1, 2↔3…).

    The result stays within base64url's alphabet, so what breaks is the signature, not the
    encoding.
    """
    old = data[index]
    if chr(old).isalpha():
        new = old ^ 0x20
    elif chr(old).isdigit():
        new = old ^ 0x01
    else:
        new = ord("A")
    assert new != old
    return data[:index] + bytes([new]) + data[index + 1 :]


def _read_request(conn: socket.socket) -> bytes | None:
    data = b""
    while b"\r\n\r\n" not in data:
        part = conn.recv(65536)
        if not part:
            return None
        data += part
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    while len(body) < length:
        part = conn.recv(65536)
        if not part:
            return None
        body += part
    lines = [
        line
        for line in head.split(b"\r\n")
        if line.partition(b":")[0].strip().lower() != b"connection"
    ]
    return b"\r\n".join([*lines, b"Connection: close"]) + b"\r\n\r\n" + body


def _read_answer(conn: socket.socket) -> bytes:
    chunks = []
    while part := conn.recv(65536):
        chunks.append(part)
    return b"".join(chunks)


class Proxy:
    """Listens on 127.0.0.1 (a free port) and forwards to ``upstream_port`` on 127.0.0.1."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream = ("127.0.0.1", upstream_port)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        self.rules: list[Rule] = []
        self.failing: bytes | None = None  # the answer to every request during an outage
        self.log: list[Exchange] = []
        self.errors: list[str] = []
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._serve, name="sync-proxy", daemon=True)
        self._thread.start()

    def arm(self, method: str, prefix: str, action: str, *, skip: int = 0) -> Rule:
        """Misbehave (``action``) on a coming request whose path starts with ``prefix``."""
        assert action in ACTIONS
        rule = Rule(method, prefix, action, skip)
        with self._lock:
            self.rules.append(rule)
        return rule

    def fail_all(self, status: int, reason: str, content_type: str, body: bytes) -> None:
        """Answer every request with this, without asking the hub, until :meth:`pass_all`."""
        head = (
            f"HTTP/1.1 {status} {reason}\r\nServer: nginx\r\nContent-Type: {content_type}\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
        )
        with self._lock:
            self.failing = head.encode("latin-1") + body

    def pass_all(self) -> None:
        """End the outage: forward every request to the hub again."""
        with self._lock:
            self.failing = None

    def close(self) -> None:
        """Stop listening; let every held answer go."""
        with self._lock:
            for rule in self.rules:
                rule.release.set()
        self.listener.close()

    def _match(self, method: str, target: str) -> Rule | None:
        with self._lock:
            for rule in self.rules:
                if rule.fired.is_set() or method != rule.method:
                    continue
                if not target.startswith(rule.prefix):
                    continue
                if rule.skip:
                    rule.skip -= 1
                    return None
                rule.target = target
                return rule
        return None

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return  # closed
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn: socket.socket) -> None:
        try:
            with conn:
                conn.settimeout(90)
                self._exchange(conn)
        except Exception as err:  # a thread must not raise: the test reads errors
            self.errors.append(f"{type(err).__name__}: {err}")

    def _exchange(self, conn: socket.socket) -> None:
        request = _read_request(conn)
        if request is None:
            return
        method, target, _ = request.split(b"\r\n", 1)[0].decode("latin-1").split(" ", 2)
        with self._lock:
            failing = self.failing
            if failing is not None:
                self.log.append(Exchange(method, target, int(failing.split(b" ", 2)[1]), "fail"))
        if failing is not None:
            conn.sendall(failing)
            return
        rule = self._match(method, target)
        with socket.create_connection(self.upstream, timeout=90) as upstream:
            upstream.sendall(request)
            answer = _read_answer(upstream)
        status = int(answer.split(b" ", 2)[1]) if answer else 0
        with self._lock:
            self.log.append(Exchange(method, target, status, rule.action if rule else None))
        if rule is None:
            conn.sendall(answer)
            return
        body_at = answer.index(b"\r\n\r\n") + 4
        middle = body_at + (len(answer) - body_at) // 2
        if rule.action == "cut":  # the head and half the body, then the connection drops
            conn.sendall(answer[:middle])
            rule.fired.set()
        elif rule.action == "flip":
            conn.sendall(flip_byte(answer, middle))
            rule.fired.set()
        else:  # hold: the hub has answered (and committed); the spoke waits for the answer
            rule.fired.set()
            rule.release.wait(90)
            with contextlib.suppress(OSError):  # the spoke may be gone
                conn.sendall(answer)
