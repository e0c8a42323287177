"""Offline verification of an issued batch-record PDF (``mes verify FILE.pdf``).

Four checks, each failure named in words:

1. the PDF signature (mes.pdf.sign.verify_pdf): intact, valid, made with a trusted hub
   certificate, covering the whole file;
2. the embedded ``batch-record.json`` is there and is a batch record of the known format;
3. its chains verify: the batch's ledger with the key of the site that made it, the review
   chain with the key of the hub that sealed it (keys taken from the record itself: they are
   trustworthy because the hub's PDF signature covers them), and ``record_hash`` matches;
4. optionally, the hub's database holds the same entries (same seq → hash in both chains);
   when it holds them all and more, the record is superseded (not a failure): the hub's
   newest record is named with what was added since (:class:`Superseded`).

The record's format is read in one place, :func:`check_record`, so it can change with the
record builder (mes.services.record) without touching the rest.
(21 CFR 11.10(a): altered records are detected; 11.10(b): accurate and complete copies.)
"""

from __future__ import annotations

import hashlib
import io
import re
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from cryptography import x509
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.misc import PdfError
from pyhanko.pdf_utils.reader import PdfFileReader

from mes.core.batch import EntryKind
from mes.core.canonical import content_hash, strict_loads
from mes.core.errors import ChainBroken, InvalidInput
from mes.core.keys import SitePublicKey
from mes.core.ledger import SealedEntry, verify_chain
from mes.core.review import ReviewKind
from mes.pdf.sign import PdfSignatureCheck, verify_pdf
from mes.services.record import ATTACHMENT_NAME, RECORD_FORMAT

CHAINS = ("ledger", "review")
# A comparability report (mes.pdf.comparability) embeds a manifest of this format and its CSV.
REPORT_FORMAT = "mes-comparability-report/1"
MANIFEST_NAME = "comparability-report.json"


# --- the embedded file --------------------------------------------------------------------


def _name_tree_items(node: generic.DictionaryObject, depth: int = 0) -> list[tuple[str, Any]]:
    if depth > 32:  # a loop in a damaged name tree
        return []
    items: list[tuple[str, Any]] = []
    names = node.get("/Names")
    if names is not None:
        for i in range(0, len(names) - 1, 2):
            items.append((str(names[i]), names[i + 1].get_object()))
    for kid in node.get("/Kids", ()):
        items.extend(_name_tree_items(kid.get_object(), depth + 1))
    return items


def embedded_file(pdf: bytes, name: str = ATTACHMENT_NAME) -> bytes | None:
    """The decoded content of the attached file called ``name``, or None when there is none."""
    try:
        reader = PdfFileReader(io.BytesIO(pdf))
        tree = reader.root.get("/Names", {}).get("/EmbeddedFiles")
        if tree is None:
            return None
        for key, spec in _name_tree_items(tree.get_object()):
            names = {key, str(spec.get("/UF", "")), str(spec.get("/F", ""))}
            if name in names and "/EF" in spec:
                streams = spec["/EF"]
                stream = (streams.get("/UF") or streams["/F"]).get_object()
                return bytes(stream.data)
    except (PdfError, ValueError, KeyError, TypeError, AttributeError, zlib.error) as err:
        raise InvalidInput(f"the PDF's attachments cannot be read ({err})") from None
    return None


# --- the record inside --------------------------------------------------------------------


@dataclass(frozen=True)
class RecordCheck:
    """What the embedded batch record says about itself, and what is wrong with it."""

    batch_id: str | None = None
    batch_number: str | None = None
    site: str | None = None
    chains: Mapping[str, list[tuple[int, str]]] = field(default_factory=dict)  # seq → hash
    verified: Mapping[str, int] = field(default_factory=dict)  # entries verified per chain
    problems: tuple[str, ...] = ()


def _sealed(chain: str, raw: Any) -> list[SealedEntry]:
    if not isinstance(raw, list):
        raise ValueError(f"the record's {chain} is not a list of entries")
    entries = []
    for position, item in enumerate(raw, start=1):
        if not (
            isinstance(item, dict)
            and isinstance(item.get("body"), dict)
            and isinstance(item.get("hash"), str)
            and isinstance(item.get("signature"), str)
        ):
            raise ValueError(
                f"{chain} entry {position} is not a sealed entry (body, hash, signature)"
            )
        entries.append(
            SealedEntry(body=item["body"], hash=item["hash"], signature=item["signature"])
        )
    return entries


def _chain_site(chain: str, batch_site: str, entries: list[SealedEntry]) -> str:
    """Whose key verifies a chain: the ledger's is the batch's site, the review's the hub's."""
    if chain == "ledger" or not entries:
        return batch_site
    return str(entries[0].body.get("site"))


def _check_chain(
    chain: str,
    entries: list[SealedEntry],
    batch_id: str,
    site: str,
    keys: Mapping[str, SitePublicKey],
) -> tuple[int, list[str]]:
    key = keys.get(site)
    if key is None:
        return 0, [f"{chain}: the record holds no public key of site {site} to verify it with"]
    problems = []
    try:
        count = verify_chain(entries, key)
    except ChainBroken as err:
        count = 0
        problems.append(f"{chain} entry {err.seq}: {err.problem}")
    for entry in entries:
        if entry.body.get("batch") != batch_id:
            problems.append(
                f"{chain} entry {entry.body.get('seq')}: it belongs to batch "
                f"{entry.body.get('batch')}, not to this record's batch {batch_id}"
            )
            break
        if entry.body.get("site") != site:
            problems.append(
                f"{chain} entry {entry.body.get('seq')}: it was made at {entry.body.get('site')}, "
                f"not at {site} like the rest of the chain"
            )
            break
    return count, problems


def _binding_problems(
    chains: Mapping[str, list[SealedEntry]], number: str, site: str, issuer: str | None
) -> list[str]:
    """What ties the chains to each other and to the issuer.

    A review by the issuing hub (never by the batch's own site), a decision made on the
    embedded ledger (its head one of the ledger's entries: what follows it was appended after
    the decision), and the batch's number as it was created.
    """
    problems = []
    ledger, review = chains.get("ledger", []), chains.get("review", [])
    if ledger and ledger[0].body.get("kind") == EntryKind.BATCH_CREATED:
        created = ledger[0].body.get("payload", {}).get("number")
        if created != number:
            problems.append(f"the record names batch {number}, its ledger created {created}")
    if review:
        reviewer = str(review[0].body.get("site"))
        if reviewer == site:
            problems.append(
                f"review: signed by {site}, the site that made the batch — a review is the hub's"
            )
        elif issuer is not None and reviewer != issuer:
            problems.append(
                f"review: signed by site {reviewer}, but the PDF was issued by hub {issuer}"
            )
        held = [[e.seq, e.hash] for e in ledger]
        for entry in review:
            if entry.body.get("kind") not in (ReviewKind.BATCH_RELEASED, ReviewKind.BATCH_REJECTED):
                continue
            decided = entry.body.get("payload", {}).get("record", {}).get("record_head")
            # entries after the decided head are the spoke's after release (results, custody,
            # the bedside): printed as such; the head itself must be one of the ledger's
            if decided not in held:
                problems.append(
                    f"review entry {entry.seq}: the decision was made on the record up to entry "
                    f"{(decided or ['?'])[0]}, which the embedded ledger (entries 1–"
                    f"{held[-1][0] if held else 0}) does not hold"
                    " — the ledger is not the record that was decided"
                )
    return problems


def issuer_site(subject: str | None) -> str | None:
    """The hub's site code from its certificate's subject (``OU=MES site CODE``)."""
    found = re.search(r"MES site ([A-Za-z0-9_-]+)", subject or "")
    return found.group(1) if found else None


def check_record(document: bytes, issuer: str | None = None) -> RecordCheck:
    """Verify the embedded record: its format, its hash, every entry of both chains, and what binds them.

    ``issuer``: the site code of the hub that signed the PDF, when known.
    """
    try:
        record = strict_loads(document)
    except (ValueError, UnicodeDecodeError):
        return RecordCheck(problems=(f"the embedded {ATTACHMENT_NAME} is not JSON",))
    if not isinstance(record, dict) or record.get("format") != RECORD_FORMAT:
        found = record.get("format") if isinstance(record, dict) else None
        return RecordCheck(
            problems=(f"the embedded file is not a {RECORD_FORMAT} record (format: {found!r})",)
        )
    batch = record.get("batch")
    if not (isinstance(batch, dict) and all(isinstance(batch.get(k), str) for k in ("id", "site"))):
        return RecordCheck(problems=("the record does not name its batch (id, number, site)",))
    batch_id, site = batch["id"], batch["site"]
    number = str(batch.get("number"))
    problems: list[str] = []
    unhashed = {k: v for k, v in record.items() if k != "record_hash"}
    if content_hash(unhashed) != record.get("record_hash"):
        problems.append("record_hash does not match the record's content: it was edited")
    keys: dict[str, SitePublicKey] = {}
    raw_keys = record.get("keys")
    for code, pem in raw_keys.items() if isinstance(raw_keys, dict) else ():
        try:
            keys[code] = SitePublicKey.from_pem(str(pem).encode("ascii"))
        except (ValueError, UnicodeEncodeError):
            problems.append(f"the record's public key of site {code} is not an Ed25519 key")
    chains: dict[str, list[tuple[int, str]]] = {}
    sealed: dict[str, list[SealedEntry]] = {}
    verified: dict[str, int] = {}
    for chain in CHAINS:
        try:
            entries = _sealed(chain, record.get(chain))
        except ValueError as err:
            problems.append(str(err))
            continue
        sealed[chain] = entries
        chains[chain] = [(_seq(e), e.hash) for e in entries]
        count, chain_problems = _check_chain(
            chain, entries, batch_id, _chain_site(chain, site, entries), keys
        )
        verified[chain] = count
        problems.extend(chain_problems)
    try:
        problems.extend(_binding_problems(sealed, number, site, issuer))
    except (AttributeError, IndexError, KeyError, TypeError, ValueError):
        problems.append("the record's decision or batch entry is malformed")
    return RecordCheck(batch_id, number, site, chains, verified, tuple(problems))


def _seq(entry: SealedEntry) -> int:
    try:
        return entry.seq
    except (KeyError, TypeError, ValueError):
        return 0


def compare_chains(
    record: Mapping[str, list[tuple[int, str]]], hub: Mapping[str, list[tuple[int, str]]]
) -> list[str]:
    """Where the record's chains differ from the hub's: the first difference of each chain."""
    problems = []
    for chain in CHAINS:
        ours, theirs = record.get(chain, []), hub.get(chain, [])
        for (seq, digest), (hub_seq, hub_digest) in zip(ours, theirs, strict=False):
            if (seq, digest) != (hub_seq, hub_digest):
                problems.append(
                    f"{chain} entry {seq}: the hub holds a different entry "
                    f"(hash {hub_digest[:12]}…, the record has {digest[:12]}…)"
                )
                break
        else:
            if len(ours) < len(theirs):
                problems.append(
                    f"{chain}: the hub holds {len(theirs)} entries, the record only {len(ours)} "
                    f"(entries {len(ours) + 1}–{len(theirs)} are not in this record)"
                )
            elif len(ours) > len(theirs):
                problems.append(
                    f"{chain} entry {len(theirs) + 1}: the record has {len(ours)} entries, "
                    f"the hub only {len(theirs)}"
                )
    return problems


def only_added(
    record: Mapping[str, list[tuple[int, str]]], hub: Mapping[str, list[tuple[int, str]]]
) -> bool:
    """True when the hub holds every entry of the record and more: the record was superseded."""
    longer = False
    for chain in CHAINS:
        ours, theirs = list(record.get(chain, [])), list(hub.get(chain, []))
        if theirs[: len(ours)] != ours:
            return False
        longer = longer or len(theirs) > len(ours)
    return longer


@dataclass(frozen=True)
class Superseded:
    """The newest record the hub issued for a batch whose chains moved since an older copy."""

    sha256: str  # of the newer signed PDF
    issued_at: str  # UTC, mes.pdf.issue.ISSUED_AT_FORMAT
    added: tuple[str, ...]  # each entry added since the older copy, in a few words

    @property
    def line(self) -> str:
        """'superseded by record <sha256> issued <time>: 2 entries: result … recorded, …'."""
        count = len(self.added)
        entries = f"{count} {'entry' if count == 1 else 'entries'}"
        return (
            f"superseded by record {self.sha256} issued {self.issued_at}: "
            f"{entries}: {', '.join(self.added)}"
        )


# --- the whole check ----------------------------------------------------------------------


@dataclass(frozen=True)
class RecordVerification:
    """The outcome of ``mes verify``: each check's findings and a summary."""

    signature: PdfSignatureCheck
    record: RecordCheck
    compared_with_hub: bool = False
    hub_problems: tuple[str, ...] = ()
    superseded: Superseded | None = None  # the hub holds more entries: its newer record

    @property
    def problems(self) -> list[str]:
        """Every failure, one line each, named by what failed."""
        return [
            *(f"PDF signature: {p}" for p in self.signature.problems),
            *(f"batch record: {p}" for p in self.record.problems),
            *(f"hub database: {p}" for p in self.hub_problems),
        ]

    @property
    def ok(self) -> bool:
        """True when every check passed."""
        return not self.problems

    def summary(self) -> list[str]:
        """Short lines for a record that verified."""
        when: datetime | None = self.signature.signing_time
        lines = [
            f"Signed by {self.signature.signer} on "
            f"{when.strftime('%Y-%m-%d %H:%M:%S %Z') if when else 'an unknown date'} "
            f"(certificate SHA-256 {self.signature.signer_fingerprint})",
            f"Batch {self.record.batch_number} made at {self.record.site}: "
            + ", ".join(
                f"{n} {chain} entries verified" for chain, n in self.record.verified.items()
            ),
        ]
        if self.superseded is not None:
            lines.append(
                "The hub's database holds every entry of this record, and entries added since."
            )
        elif self.compared_with_hub:
            lines.append("The hub's database holds the same entries.")
        return lines


def verify_record_pdf(
    pdf: bytes,
    trust: Sequence[x509.Certificate],
    hub_chains: Callable[[str], Mapping[str, list[tuple[int, str]]]] | None = None,
    superseding: Callable[[str, Mapping[str, int]], Superseded] | None = None,
) -> RecordVerification:
    """All checks of an issued record; ``hub_chains(batch_id)`` gives the hub's copy to compare.

    ``superseding(batch_id, heads)``: the hub's newest record of the batch, asked for when the
    record verifies and the hub holds all of its entries and more (``heads``: the last seq of
    each of the record's chains). Such a record is not a failure but superseded: its signature
    and entries are valid, and :attr:`RecordVerification.superseded` names the newer record.
    Raises :class:`InvalidInput` when ``pdf`` is not a readable PDF.
    """
    signature = verify_pdf(pdf, trust)
    try:
        document = embedded_file(pdf)
    except InvalidInput as err:  # e.g. a damaged attachment stream: the signature says more
        document, record = None, RecordCheck(problems=(err.message,))
    else:
        record = RecordCheck(problems=(f"the PDF has no embedded {ATTACHMENT_NAME}",))
    if document is not None:
        record = check_record(document, issuer_site(signature.signer))
    if hub_chains is None or record.batch_id is None:
        return RecordVerification(signature, record)
    hub = hub_chains(record.batch_id)
    differences = tuple(compare_chains(record.chains, hub))
    valid = signature.ok and not record.problems
    if differences and valid and superseding is not None and only_added(record.chains, hub):
        heads = {
            chain: (entries[-1][0] if entries else 0) for chain, entries in record.chains.items()
        }
        return RecordVerification(signature, record, True, (), superseding(record.batch_id, heads))
    return RecordVerification(signature, record, True, differences)


# --- a comparability report ---------------------------------------------------------------------


@dataclass(frozen=True)
class ReportVerification:
    """The outcome of ``mes verify`` for a comparability report.

    The PDF signature covers the embedded manifest and CSV; what is checked beyond it is that
    they agree with each other and with the print: the embedded CSV's SHA-256 is the manifest's
    and is printed in the report, and a CSV delivered beside the PDF is the same data.
    """

    signature: PdfSignatureCheck
    manifest: Mapping[str, Any]
    report_problems: tuple[str, ...] = ()
    beside: str | None = None  # the CSV file checked beside the PDF, if any

    @property
    def problems(self) -> list[str]:
        """Every failure, one line each, named by what failed."""
        return [
            *(f"PDF signature: {p}" for p in self.signature.problems),
            *(f"comparability report: {p}" for p in self.report_problems),
        ]

    @property
    def ok(self) -> bool:
        """True when every check passed."""
        return not self.problems

    def summary(self) -> list[str]:
        """Short lines for a report that verified."""
        when: datetime | None = self.signature.signing_time
        m = self.manifest
        period = m.get("period", {})
        data = m.get("data", {})
        lines = [
            f"Signed by {self.signature.signer} on "
            f"{when.strftime('%Y-%m-%d %H:%M:%S %Z') if when else 'an unknown date'} "
            f"(certificate SHA-256 {self.signature.signer_fingerprint})",
            f"Comparability report of {m.get('recipe_code')}, {period.get('from')} to "
            f"{period.get('to')}: {m.get('batches')} batches, "
            f"{len(m.get('parameters', []))} parameters",
            f"Data {data.get('name')} (SHA-256 {data.get('sha256')}) embedded and printed",
        ]
        if self.beside is not None:
            lines.append(f"{self.beside} beside it is the same data.")
        return lines


def document_kind(pdf: bytes) -> str:
    """``"report"`` for a comparability report (its manifest embedded), else ``"record"``."""
    try:
        return "report" if embedded_file(pdf, MANIFEST_NAME) is not None else "record"
    except InvalidInput:
        return "record"  # the record's checks name the damage


def verify_report_pdf(
    pdf: bytes, trust: Sequence[x509.Certificate], beside: tuple[str, bytes] | None = None
) -> ReportVerification:
    """All checks of a signed comparability report; ``beside``: (name, bytes) of its CSV file."""
    from mes.pdf.readback import printed_text, squeezed

    signature = verify_pdf(pdf, trust)
    problems: list[str] = []
    try:
        manifest = strict_loads(embedded_file(pdf, MANIFEST_NAME) or b"")
    except (ValueError, UnicodeDecodeError, InvalidInput):
        manifest = None
    if not isinstance(manifest, dict) or manifest.get("format") != REPORT_FORMAT:
        return ReportVerification(
            signature, {}, (f"the embedded {MANIFEST_NAME} is not a {REPORT_FORMAT} manifest",)
        )
    data = manifest.get("data") if isinstance(manifest.get("data"), dict) else {}
    name, digest = str(data.get("name")), str(data.get("sha256"))
    csv = embedded_file(pdf, name)
    if csv is None:
        problems.append(f"the PDF has no embedded {name}, the data the manifest names")
    elif hashlib.sha256(csv).hexdigest() != digest:
        problems.append(
            f"the embedded {name} has SHA-256 {hashlib.sha256(csv).hexdigest()}, "
            f"the manifest says {digest}"
        )
    if squeezed(f"SHA-256 {digest}") not in squeezed(printed_text(pdf)):
        problems.append(f"the printed report does not show the data's SHA-256 {digest}")
    checked = None
    if beside is not None:
        beside_name, beside_bytes = beside
        found = hashlib.sha256(beside_bytes).hexdigest()
        if found != digest:
            problems.append(
                f"{beside_name} beside it has SHA-256 {found}, not the report's data ({digest}): "
                "it is not the data of this report, or it was changed"
            )
        checked = beside_name
    return ReportVerification(signature, manifest, tuple(problems), checked)
