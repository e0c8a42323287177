"""The spoke's sync client: enroll, pull recipe bundles, push the outbox, pull QA's review.

Every request after enrollment is signed with the spoke's key (:func:`mes.core.sync.sign_request`).
A round never loses anything: the outbox mark moves only on the hub's acknowledgement naming the
spoke's own entry, so an interrupted round (crash, dropped connection, hub restart) is repaired
by the next one, which resends and gets "already held" for what arrived.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import secrets
import socket
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
from sqlalchemy.exc import IntegrityError

from mes.core.errors import BundleRefused, BundleUnknownKey, ConfigurationError, MesError
from mes.core.keys import SitePublicKey
from mes.core.sync import NONCE_HEADER, ack_verifies, sign_request
from mes.services import lookback, outbox, review
from mes.services.context import Context
from mes.services.instance import pin_hub_key
from mes.services.recipes import install_bundle
from mes.services.runtime import Runtime
from mes.sync.answers import (
    HubUnreachable,
    LinkState,
    NotTheHubsAnswer,
    outage_wait,
    verdict_of,
)
from mes.sync.reviews import UnreadableReviews, read_entries

API = "/api/v1"
TIMEOUT = httpx.Timeout(30.0, connect=5.0)
MAX_CHUNK_BYTES = 1_500_000  # below the hub's 2 MB request limit
UNVERIFIED_ACK = (
    "The hub's acknowledgement is not signed with the hub key this spoke pinned: the mark was "
    "not moved; the batch is offered again later (check the hub's key and the network path)."
)
PUSH_STREAMS = 2  # batches sent at once (each batch's chunks still go one after the other)
# The background loop offers a batch the hub refused again only after this long (a person has to
# act on a refusal; 'mes sync' by hand always offers everything), and waits longer and longer,
# up to this, while the hub refuses the spoke itself (suspended, revoked, clock off). Only the
# hub's own verdicts count as refusals; an outage is retried within seconds (mes.sync.answers).
RETRY_REFUSED_SECONDS = 300.0
# Between rounds the loop looks this often for an urgent batch (a deviation raised, a result out
# of specification, a bedside mismatch): it goes to the hub at once, not at the next interval.
URGENT_LOOK_SECONDS = 0.25
# Batches named in one request for review updates (the hub takes at most 10,000).
REVIEW_HEADS_PER_REQUEST = 5_000
# Decided batches named each round, in turn, for review entries recorded after the decision
# (a look-back's disposition): every decided batch is asked about once per N / 500 rounds.
REVIEWS_SWEPT = 500


class NotEnrolled(ConfigurationError):
    """The spoke has not enrolled with a hub."""


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass
class RoundReport:
    """What one sync round did."""

    bundles_installed: list[str] = field(default_factory=list)
    bundles_refused: list[str] = field(default_factory=list)
    batches: int = 0
    stored: int = 0
    duplicates: int = 0
    refused: list[str] = field(default_factory=list)
    spoke_refused: bool = False  # the hub refused the spoke itself (401 or 403)
    reviews_stored: int = 0  # review entries of the hub (QA's decisions) stored here
    outage: str | None = None  # why an operation got no answer of the hub's (retried soon)

    def summary(self) -> str:
        """One line for people."""
        parts = [
            f"{self.stored} entries stored at the hub"
            + (f" ({self.duplicates} already there)" if self.duplicates else "")
            + f" from {self.batches} batch{'es' if self.batches != 1 else ''}"
        ]
        if self.bundles_installed:
            parts.append(f"installed {', '.join(self.bundles_installed)}")
        if self.bundles_refused:
            parts.append(f"refused bundles: {'; '.join(self.bundles_refused)}")
        if self.reviews_stored:
            parts.append(f"{self.reviews_stored} review entries of the hub stored")
        if self.refused:
            parts.append(f"refused by the hub: {'; '.join(self.refused)}")
        if self.outage:
            parts.append(f"hub unreachable, nothing lost, to be sent again: {self.outage}")
        return "; ".join(parts) + "."


class HubClient:
    """Signed requests from this spoke to its hub."""

    def __init__(
        self,
        runtime: Runtime,
        hub_url: str,
        *,
        clock: Callable[[], datetime] = _now,
        http: httpx.Client | None = None,
    ) -> None:
        self.runtime = runtime
        self.base = hub_url.rstrip("/")
        self.clock = clock
        self.http = http or httpx.Client(timeout=TIMEOUT)
        # The last problem with review updates that was logged: the same one is logged once,
        # not every round, until review updates arrive again.
        self.review_problem: tuple[str, str] | None = None
        # Likewise the last refusal of this spoke's audit head (mes.sync.anchors).
        self.anchor_problem: str | None = None
        self.link = LinkState()  # the outage in progress, logged once (mes.sync.answers)
        self.stalled: set[str] = set()  # batches whose push met an outage last round
        self.swept_after = ""  # the last decided batch asked about (REVIEWS_SWEPT)

    def close(self) -> None:
        """Close the connection pool."""
        self.http.close()

    def request(
        self, method: str, path: str, body: bytes = b"", content_type: str | None = None
    ) -> httpx.Response:
        """Send one signed request; raise :class:`HubUnreachable` if there is no answer."""
        site = self.runtime.site
        full = API + path
        headers = sign_request(
            method,
            full,
            body,
            site=site.code,
            key=site.key,
            at=self.clock(),
            nonce=secrets.token_urlsafe(24),
        )
        if content_type:
            headers["Content-Type"] = content_type
        try:
            return self.http.request(method, self.base + full, content=body, headers=headers)
        except httpx.HTTPError as err:
            raise HubUnreachable(
                f"The hub at {self.base} did not answer ({type(err).__name__}: {err}).",
                what_to_do="Nothing was lost: records stay queued and are sent when it answers.",
            ) from None


# --- enrollment -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Enrolled:
    """What enrollment did."""

    hub_code: str
    hub_name: str
    hub_key_id: str
    pinned_now: bool


def enroll(
    runtime: Runtime, hub_url: str, code: str, *, http: httpx.Client | None = None
) -> Enrolled:
    """Send this spoke's public key with a one-time code; pin the hub's key it answers with."""
    settings = runtime.settings
    site = runtime.site
    if site.role != "spoke":
        raise ConfigurationError("Only a spoke enrolls with a hub; this instance is the hub.")
    client = http or httpx.Client(timeout=TIMEOUT)
    body = {
        "site_code": site.code,
        "code": code.strip(),
        "public_key_pem": site.key.public.pem().decode("ascii"),
    }
    try:
        response = client.post(hub_url.rstrip("/") + API + "/enroll", json=body)
    except httpx.HTTPError as err:
        raise HubUnreachable(
            f"The hub at {hub_url} did not answer ({err}).",
            what_to_do="Check the hub URL and the network, then try again.",
        ) from None
    finally:
        if http is None:
            client.close()
    if response.status_code != 200:
        message = verdict_of(response, what_to_do="Try again when the hub answers.").message
        raise ConfigurationError(f"The hub refused the enrollment: {message}")
    try:
        answer = response.json()
        hub = answer["hub"]
        hub_key = SitePublicKey.from_pem(hub["public_key_pem"].encode("ascii"))
        if hub_key.key_id != hub["key_id"]:
            raise ValueError("key id does not match the key")
    except (ValueError, KeyError, TypeError, AttributeError):
        raise ConfigurationError("The hub's enrollment answer is not readable.") from None
    pinned_now = False
    path = settings.hub_key_path
    if path.exists():
        pinned = SitePublicKey.from_pem(path.read_bytes())
        if pinned.key_id != hub_key.key_id:
            raise ConfigurationError(
                f"This spoke already trusts another hub key ({pinned.key_id}); the hub at "
                f"{hub_url} answered with {hub_key.key_id}.",
                what_to_do="A hub key is re-pinned only under change control: replace "
                f"{path} by hand after verifying the new key, then enroll again.",
            )
    else:
        pin_hub_key(path, hub_key)
        pinned_now = True
    ctx = Context.command_line(_now(), "mes", socket.gethostname())
    with runtime.uow() as uow:
        outbox.record_enrollment(uow, ctx, hub_url.rstrip("/"), hub["site_code"], hub_key.key_id)
    if pinned_now:
        runtime.site = _with_hub_key(runtime, hub_key)
    return Enrolled(hub["site_code"], hub.get("name", ""), hub_key.key_id, pinned_now)


def _with_hub_key(runtime: Runtime, hub_key: SitePublicKey) -> Any:
    from dataclasses import replace

    return replace(runtime.site, hub_key=hub_key)


# --- one round ------------------------------------------------------------------------------


def hub_url_of(runtime: Runtime) -> str:
    """The hub this spoke enrolled with (refuse if none)."""
    with runtime.uow(read_only=True) as uow:
        link = outbox.hub_link(uow)
        if link is None:
            raise NotEnrolled(
                "This spoke has not enrolled with a hub.",
                what_to_do="Run 'mes spoke enroll --hub URL --code CODE' with the code from the hub.",
            )
        return link.hub_url


def sync_round(
    runtime: Runtime,
    client: HubClient | None = None,
    *,
    retry_refused_after: float | None = None,
) -> RoundReport:
    """Pull new bundles, push every pending batch (deviations first), pull QA's review.

    ``retry_refused_after``: leave out batches the hub refused less than this many seconds ago
    (the background loop; by hand, every pending batch is offered).

    An answer that is not the hub's (:class:`NotTheHubsAnswer`: a 5xx, a proxy's page) ends
    that operation, and the round goes on with the next; no answer at all
    (:class:`HubUnreachable`) ends the round. Either is logged once per outage, and nothing is
    held against a record: it is all offered again next round (:mod:`mes.sync.answers`).
    """
    own = client is None
    _reload_hub_key(runtime)
    client = client or HubClient(runtime, hub_url_of(runtime))
    report = RoundReport()
    operations = (
        lambda: _pull_bundles(runtime, client, report),
        # Pushed even when the hub refused the bundle list: a refused push marks the batch
        # refused with the hub's reason, which the board shows.
        lambda: _push(runtime, client, report, retry_refused_after),
        lambda: None if report.spoke_refused else _pull_reviews(runtime, client, report),
        lambda: None if report.spoke_refused else _anchor_audit_head(runtime, client, report),
    )
    try:
        for operation in operations:
            try:
                operation()
            except NotTheHubsAnswer as outage:
                report.outage = report.outage or outage.message
        if report.outage:
            client.link.down(runtime, client.clock(), report.outage)
        else:
            client.link.up(runtime, client.clock())
    except HubUnreachable as err:
        client.link.down(runtime, client.clock(), err.message)
        raise
    finally:
        if own:
            client.close()
    return report


def _reload_hub_key(runtime: Runtime) -> None:
    """Pick up a hub key pinned since this process started.

    E.g. 'mes spoke enroll' was run in another shell while 'mes serve' was running. An
    unreadable key file changes nothing: bundles are then refused with the reason, as before.
    """
    path = runtime.settings.hub_key_path
    if runtime.site.hub_key is None and path.exists():
        with contextlib.suppress(ValueError):
            runtime.site = _with_hub_key(runtime, SitePublicKey.from_pem(path.read_bytes()))


def _pull_bundles(runtime: Runtime, client: HubClient, report: RoundReport) -> None:
    response = client.request("GET", "/sync/bundles")
    if response.status_code != 200:
        verdict = verdict_of(response)
        _note(runtime, client, "pull", "refused", code=verdict.code, reason=verdict.message)
        report.refused.append(verdict.message)
        report.spoke_refused = verdict.refuses_spoke
        return
    with runtime.uow(read_only=True) as uow:
        handled = outbox.handled_bundles(uow)
    try:
        offers = response.json()["bundles"]
        if not isinstance(offers, list) or not all(isinstance(o, dict) for o in offers):
            raise TypeError
    except (ValueError, KeyError, TypeError):  # e.g. a captive portal's page, answered 200
        raise NotTheHubsAnswer(
            "The answer to the request for the bundle list is not the hub's (not its JSON)."
        ) from None
    for offer in offers:
        bundle_hash = str(offer.get("bundle_hash", ""))
        if not bundle_hash or bundle_hash in handled:
            continue
        label = f"{offer.get('recipe_code')} v{offer.get('version')}"
        fetched = client.request("GET", f"/sync/bundles/{bundle_hash}")
        if fetched.status_code != 200:
            # The hub did not hand it over: no verdict on the bundle, so it is logged as a
            # failed fetch and asked for again next round (an outage ends the pull here).
            verdict = verdict_of(fetched)
            _note(
                runtime,
                client,
                "fetch",
                "refused",
                item=bundle_hash,
                code=verdict.code,
                reason=verdict.message,
            )
            report.bundles_refused.append(f"{label}: {verdict.message}")
            continue
        # The hash the hub listed is the SHA-256 of the bundle's text: what arrives under it
        # must be that text. If it is not, it was damaged on the way; the refusal is then no
        # verdict on the bundle, which is fetched again next round (not remembered as refused).
        intact = hashlib.sha256(fetched.content.strip()).hexdigest() == bundle_hash
        ctx = Context(at=client.clock(), user_id=None, terminal=f"sync from hub {client.base}")
        try:
            with runtime.uow() as uow:
                install_bundle(uow, ctx, fetched.content, f"hub bundle {label}")
        except IntegrityError:  # another round installed it at the same moment
            continue
        except BundleRefused as refusal:
            reason = refusal.message
            # A verdict on the bundle itself is remembered; a key this spoke does not hold
            # (yet) or damage on the way is not, and the bundle is fetched again next round.
            intact = intact and not isinstance(refusal, BundleUnknownKey)
            if not intact and isinstance(refusal, BundleUnknownKey):
                reason += " It is fetched again next round."
            elif not intact:
                reason += (
                    " What arrived is not the bundle the hub listed (damaged on the way); it is "
                    "fetched again next round."
                )
            _note(
                runtime,
                client,
                "install" if intact else "fetch",
                "refused",
                item=bundle_hash,
                code=type(refusal).__name__,
                reason=reason,
            )
            report.bundles_refused.append(f"{label}: {reason}")
            continue
        _note(runtime, client, "install", "accepted", item=bundle_hash, reason=label)
        report.bundles_installed.append(label)


def _pull_reviews(runtime: Runtime, client: HubClient, report: RoundReport) -> None:
    """Ask the hub for QA's review entries of the batches not yet released or rejected here.

    Undecided batches are named every round; decided ones a few hundred a round in turn
    (``REVIEWS_SWEPT``), for what QA records after the decision (a look-back's disposition),
    so a round's cost does not grow with the history. Entries are stored only if they verify with the pinned hub key and
    continue the chain held here (:func:`mes.services.review.receive_review_entries`, which
    logs each batch accepted or refused); an answer that is not a list of review entries of the
    batches asked about is refused whole and logged, and nothing of it is stored.
    """
    with runtime.uow(read_only=True) as uow:
        awaited = sorted(review.awaited_reviews(uow).items())
        # Decided batches, a few each round in turn: a look-back disposition may come years
        # after the release (mes.services.lookback.decided_reviews).
        swept = lookback.decided_reviews(uow, after=client.swept_after, limit=REVIEWS_SWEPT)
    asks = [
        dict(awaited[start : start + REVIEW_HEADS_PER_REQUEST])
        for start in range(0, len(awaited), REVIEW_HEADS_PER_REQUEST)
    ]
    if swept:
        asks.append(swept)
    for asked in asks:
        body = json.dumps({"known": asked}, separators=(",", ":")).encode("utf-8")
        response = client.request("POST", "/sync/reviews", body, "application/json")
        if response.status_code != 200:
            verdict = verdict_of(response)
            _review_problem(runtime, client, verdict.code, verdict.message)
            report.refused.append(f"review updates: {verdict.message}")
            report.spoke_refused = verdict.refuses_spoke
            return
        try:
            answer = response.json()
            if not isinstance(answer, dict) or set(answer) != {"entries"}:
                raise UnreadableReviews("the answer is not an object with exactly 'entries'")
            entries = read_entries(answer["entries"], asked)
        except (ValueError, UnreadableReviews) as err:
            message = f"The hub's answer to a request for review updates is unreadable: {err}."
            _review_problem(runtime, client, "unreadable-answer", message)
            report.refused.append(message)
            return
        if entries:
            try:
                with runtime.uow() as uow:
                    report.reviews_stored += review.receive_review_entries(
                        uow, client.clock(), entries
                    )
            except MesError as err:  # e.g. no hub key pinned here to verify them with
                _review_problem(runtime, client, type(err).__name__[:32], err.message)
                report.refused.append(err.message)
                return
    client.review_problem = None
    client.swept_after = max(swept) if len(swept) == REVIEWS_SWEPT else ""  # then from the start


def _anchor_audit_head(runtime: Runtime, client: HubClient, report: RoundReport) -> None:
    """The hub countersigns this spoke's audit head (:mod:`mes.sync.anchors`)."""
    from mes.sync.anchors import exchange_audit_heads

    problem = exchange_audit_heads(runtime, client)
    if problem:
        report.refused.append(problem)


def _review_problem(runtime: Runtime, client: HubClient, code: str, message: str) -> None:
    """Log a refused or unreadable review answer once (not every round while it lasts)."""
    if client.review_problem != (code, message):
        _note(runtime, client, "review", "refused", code=code, reason=message)
        client.review_problem = (code, message)


def _note(runtime: Runtime, client: HubClient, action: str, outcome: str, **what: Any) -> None:
    with runtime.uow() as uow:
        outbox.note(uow, client.clock(), action, outcome, **what)


def due(
    waiting: list[outbox.PendingBatch], now: datetime, retry_refused_after: float | None
) -> list[outbox.PendingBatch]:
    """The pending batches to offer now: all, or (with a retry delay) not those refused lately."""
    if retry_refused_after is None:
        return waiting
    return [
        b
        for b in waiting
        if b.refused_at is None or (now - b.refused_at).total_seconds() >= retry_refused_after
    ]


def next_wait(interval: float, refusals_in_a_row: int) -> float:
    """Seconds to the next round.

    The interval, doubled for each round in a row in which the hub refused the spoke itself, at
    most RETRY_REFUSED_SECONDS.
    """
    if refusals_in_a_row <= 0:
        return interval
    return min(max(interval, 1.0) * 2**refusals_in_a_row, RETRY_REFUSED_SECONDS)


def _push(
    runtime: Runtime,
    client: HubClient,
    report: RoundReport,
    retry_refused_after: float | None = None,
) -> None:
    """Send every pending batch, deviations first, ``PUSH_STREAMS`` batches at a time.

    Each batch's chunks go strictly in sequence order; different batches are independent, so two
    travel at once (the hub verifies one while the spoke signs the next).
    """
    with runtime.uow(read_only=True) as uow:
        waiting = due(outbox.pending(uow), client.clock(), retry_refused_after)
    # A batch whose push met an outage last round goes last (otherwise in the same order): one
    # batch the hub fails on every time (a 500) does not hold the others back.
    waiting.sort(key=lambda b: b.batch_id in client.stalled)
    client.stalled = set()
    refused_spoke = threading.Event()  # the hub refuses the spoke or is gone: stop the round
    lock = threading.Lock()

    def push(batch: outbox.PendingBatch) -> None:
        if refused_spoke.is_set():
            return
        part = RoundReport()
        try:
            _push_batch(runtime, client, batch, part, refused_spoke)
        except HubUnreachable:
            refused_spoke.set()  # the other stream stops too: the round ends, nothing is lost
            with lock:
                client.stalled.add(batch.batch_id)
            raise
        finally:
            with lock:
                report.batches += part.batches
                report.stored += part.stored
                report.duplicates += part.duplicates
                report.refused += part.refused
                report.spoke_refused = report.spoke_refused or part.spoke_refused

    if len(waiting) <= 1 or PUSH_STREAMS == 1:
        for batch in waiting:
            push(batch)
        return
    with ThreadPoolExecutor(PUSH_STREAMS, thread_name_prefix="mes-push") as pool:
        for _done in pool.map(push, waiting):  # re-raises a stream's error (hub unreachable)
            pass


def _push_batch(
    runtime: Runtime,
    client: HubClient,
    batch: outbox.PendingBatch,
    report: RoundReport,
    refused_spoke: threading.Event,
) -> None:
    report.batches += 1
    after = batch.acked_seq
    size = runtime.settings.sync_chunk_entries
    while not refused_spoke.is_set():
        with runtime.uow(read_only=True) as uow:
            made = outbox.chunk_after(uow, client.clock(), batch.batch_id, after, size)
        if made is None:
            return
        token, _first, last = made
        if len(token) > MAX_CHUNK_BYTES and size > 1:
            size = max(1, size // 2)
            continue
        response = client.request("POST", "/sync/chunks", token.encode("ascii"), "application/jose")
        if response.status_code == 200:
            ack, problem = _read_ack(runtime, response, batch.batch_id, last)
            if ack is None and problem == UNVERIFIED_ACK:
                # A readable answer the pinned hub key did not sign: something on the way made
                # it up. A security event to read, not an outage to retry every second.
                with runtime.uow() as uow:
                    outbox.refused(uow, client.clock(), batch.batch_id, "unverified-ack", problem)
                report.refused.append(problem)
                return
            if ack is None:  # not the hub's acknowledgement: no verdict, sent again next round
                raise NotTheHubsAnswer(problem)
            with runtime.uow() as uow:
                ok = outbox.acknowledge(
                    uow,
                    client.clock(),
                    batch.batch_id,
                    ack["last_seq"],
                    ack["last_hash"],
                    stored=ack["stored"],
                    duplicates=ack["duplicates"],
                    receipt=(response.request.headers.get(NONCE_HEADER, ""), ack["signature"]),
                )
            report.stored += ack["stored"]
            report.duplicates += ack["duplicates"]
            if not ok:
                report.refused.append(f"batch {batch.batch_id}: acknowledgement mismatch")
                return
            after = ack["last_seq"]
            continue
        verdict = verdict_of(response)  # an outage (NotTheHubsAnswer) parks nothing
        code, message, body = verdict.code, verdict.message, verdict.body
        if (
            code == "chain-gap"
            and isinstance(body.get("last_seq"), int)
            and body["last_seq"] < after
        ):
            # The hub holds less than this spoke believed: resend from where it ends.
            after = body["last_seq"]
            continue
        with runtime.uow() as uow:
            outbox.refused(uow, client.clock(), batch.batch_id, code, message)
        report.refused.append(message)
        if verdict.refuses_spoke:
            report.spoke_refused = True
            refused_spoke.set()  # the spoke itself is refused: stop the round
        return


def _read_ack(
    runtime: Runtime, response: httpx.Response, batch_id: str, sent_up_to: int
) -> tuple[dict[str, Any] | None, str]:
    """The hub's acknowledgement, if it is one the hub signed for this very request.

    Returns (ack, "") or (None, why): the mark never moves on an answer the spoke cannot
    verify with the pinned hub key (something on the way could have made it up).
    """
    why = "The hub's answer to a push is not an acknowledgement this spoke can read."
    try:
        ack = response.json()
    except ValueError:
        return None, why
    if not isinstance(ack, dict):
        return None, why
    fields = ("batch", "stored", "duplicates", "last_seq", "last_hash", "signature")
    if not all(k in ack for k in fields) or ack["batch"] != batch_id:
        return None, why
    numbers = [ack["stored"], ack["duplicates"], ack["last_seq"]]
    if not all(type(n) is int and 0 <= n <= sent_up_to for n in numbers):
        return None, why
    if not isinstance(ack["last_hash"], str) or len(ack["last_hash"]) != 64:
        return None, why
    hub_key = runtime.site.hub_key
    nonce = response.request.headers.get(NONCE_HEADER, "")
    if (
        hub_key is None
        or not isinstance(ack["signature"], str)
        or not ack_verifies(
            hub_key,
            ack["signature"],
            site=runtime.site.code,
            batch=batch_id,
            last_seq=ack["last_seq"],
            last_hash=ack["last_hash"],
            nonce=nonce,
        )
    ):
        return None, UNVERIFIED_ACK
    return ack, ""


def loop(runtime: Runtime, stop: Any, *, interval: float | None = None) -> None:
    """Sync rounds until ``stop`` (a threading.Event) is set; outages are logged once each.

    While the hub is unreachable the next round comes after 0.5 s, 1 s, then every 2 s
    (:func:`mes.sync.answers.outage_wait`), whatever the interval.
    """
    interval = float(interval if interval is not None else runtime.settings.sync_interval_seconds)
    outages_in_a_row = 0
    refusals_in_a_row = 0
    client: HubClient | None = None
    while not stop.is_set():
        try:
            if client is None:
                client = HubClient(runtime, hub_url_of(runtime))
            report = sync_round(runtime, client, retry_refused_after=RETRY_REFUSED_SECONDS)
            refusals_in_a_row = refusals_in_a_row + 1 if report.spoke_refused else 0
            outages_in_a_row = outages_in_a_row + 1 if report.outage else 0
        except HubUnreachable:
            outages_in_a_row += 1
        except NotEnrolled:
            pass  # nothing to do until the spoke enrolls
        except Exception:
            import logging

            logging.getLogger("mes.sync").exception("sync round failed")
        if outages_in_a_row:
            stop.wait(outage_wait(outages_in_a_row))
        elif refusals_in_a_row:
            stop.wait(next_wait(interval, refusals_in_a_row))
        else:
            wait_for_next_round(runtime, stop, interval)
    if client is not None:
        client.close()


def wait_for_next_round(runtime: Runtime, stop: Any, seconds: float) -> bool:
    """Wait ``seconds`` for the next round, or less: True when an urgent batch ended the wait.

    An urgent batch is one with a deviation waiting for the hub (the outbox's priority), so QA
    sees it within seconds whatever the interval. Each look is one indexed read of the pending
    rows; a batch the hub refused lately waits as in a round (:data:`RETRY_REFUSED_SECONDS`).
    """
    deadline = time.monotonic() + seconds
    while True:
        left = deadline - time.monotonic()
        if left <= 0 or stop.wait(min(URGENT_LOOK_SECONDS, left)):
            return False
        with runtime.uow(read_only=True) as uow:
            if outbox.urgent_waiting(uow, _now(), RETRY_REFUSED_SECONDS):
                return True


def start_background(runtime: Runtime) -> Any:
    """Start the sync loop in a daemon thread if this is a spoke with an interval; the stop event."""
    stop = threading.Event()
    if runtime.site.role != "spoke" or runtime.settings.sync_interval_seconds <= 0:
        return stop
    thread = threading.Thread(target=loop, args=(runtime, stop), name="mes-sync", daemon=True)
    thread.start()
    return stop


__all__ = [
    "HubClient",
    "HubUnreachable",
    "NotEnrolled",
    "RoundReport",
    "enroll",
    "loop",
    "start_background",
    "sync_round",
    "wait_for_next_round",
]
