"""Printed batch record benchmark: our PDF/A-3b against headless Chromium printing the same HTML.

The reference batch is real: a generated 200-phase master recipe (``benchmarks.recipes``'
generator, 4 unit procedures × 5 operations × 10 phases: limits, a choice, a calculation,
a lot, an instrument, timers, second-person verification on every third phase) installed at a
spoke on a fresh SQLite database and run to completion through the real services by the test
suite's recipe driver (``tests/recipe_driver.py``: people start, record, scan and sign every
phase, argon2 re-authentication included) — about 1,900 ledger entries. Its record is built as
``mes pdf`` builds it (:func:`mes.core.record.build_record`, the ledger as canonical JSON for
the attachment and the record hash) and pickled.

Then, in one run:

* **ours** — a fresh process (``--measure``) loads the record and calls
  :func:`mes.pdf.render.render_record_pdf` ``--repeat`` times (the first call is cold: the
  worker processes are started then), and signs the result with
  :func:`mes.pdf.sign.sign_pdf` (PAdES, pyHanko) when that module is there. Peak RSS is the
  process's own plus its largest child's (``ru_maxrss``; the two layout workers run at once, so
  the figure with both is reported too);
* **Chromium** — Playwright's sync API launches ``/usr/bin/chromium`` headless, loads
  :func:`mes.pdf.render.record_html` (the same document, header and footer in ``@page`` margin
  boxes) and prints it to PDF (A4, CSS page size), ``--repeat`` times; timed with and without
  the browser's launch.

Target (issue 6): ours ≤ 1.5 × Chromium (compared with Chromium's print alone, launch excluded —
the stricter reading). Run: ``python -m benchmarks.pdf`` (``--quick``: a 40-phase batch).
Results go to stdout as a table and to ``benchmarks/results/pdf.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
TESTS = ROOT / "tests"
RESULTS = Path(__file__).resolve().parent / "results"
CHROMIUM = "/usr/bin/chromium"
TARGET_RATIO = 1.5
ZONE = "Europe/Berlin"


# --- the reference batch ------------------------------------------------------------------------


def reference_record(folder: Path, units: int) -> dict[str, Any]:
    """Run a ``units × 5 × 10``-phase batch through the services; pickle its record."""
    sys.path[:0] = [str(TESTS)]
    import batch_helpers  # type: ignore[import-not-found]  # the test suite's helpers
    import recipe_driver  # type: ignore[import-not-found]
    from support import NOW  # type: ignore[import-not-found]

    from benchmarks.recipes import large_recipe
    from mes.core.canonical import canonical_json, content_hash
    from mes.core.keys import SiteKey
    from mes.core.passwords import PasswordPolicy
    from mes.core.record import batch_audit_lines, build_record
    from mes.core.site import Site
    from mes.services import batches
    from mes.store.engine import make_engine, session_factory
    from mes.store.migrate import upgrade
    from mes.store.uow import UnitOfWork

    engine = make_engine(f"sqlite:///{folder / 'pdf-bench.sqlite3'}")
    upgrade(engine)
    sessions = session_factory(engine)
    key = SiteKey.generate()

    def make_uow(role: str = "spoke", expiry_days: int | None = None, hub_key: Any = None) -> Any:
        site = Site(
            code="SPK1",
            name="Spoke One",
            role="spoke",
            time_zone=ZONE,
            key=key,
            password_policy=PasswordPolicy(expiry_days=expiry_days),
            hub_key=hub_key,
        )
        return UnitOfWork(sessions, site)

    start = time.perf_counter()
    spoke = batch_helpers.Spoke(make_uow=make_uow, hub_key=SiteKey.generate()).set_up()
    recipe = folder / "bench-record.yaml"
    recipe.write_text(large_recipe(units=units, operations=5, phases=10), encoding="utf-8")
    batch_id = recipe_driver.run_batch(spoke, recipe)
    drive_seconds = time.perf_counter() - start
    ctx = spoke.ctx("quinn", NOW + timedelta(days=2))
    with spoke.uow() as uow:
        batch = batches.get_batch(uow, ctx, batch_id).batch
        entries = batches.ledger_entries(uow, ctx, batch_id)
    engine.dispose()
    document = {"ledger": [{"body": e.body, "hash": e.hash} for e in entries]}
    record_hash = content_hash(document)
    record = build_record(
        batch,
        None,
        time_zone=ZONE,
        site_name="Spoke One",
        audit=batch_audit_lines(batch, entries, ZONE),
        record_hash=record_hash,
        generated_at=datetime.now(UTC),
        ledger=entries,
    )
    attachment = canonical_json({**document, "record_hash": record_hash})
    released, released_attachment = _released(batch, entries, document)
    path = folder / "record.pickle"
    path.write_bytes(pickle.dumps((record, attachment, released, released_attachment)))
    return {
        "path": str(path),
        "phases": record.phase_count,
        "audit_entries": len(record.audit),
        "attachment_bytes": len(attachment),
        "drive_s": drive_seconds,
    }


def _released(batch: Any, entries: list[Any], document: dict[str, Any]) -> tuple[Any, bytes]:
    """The same record after QA's review at a hub: every exception reviewed, every deviation
    closed, the batch released — a real review chain, sealed by the core (signatures made as
    the services make them, without a database), and its record."""
    from mes.core.audit import Actor
    from mes.core.canonical import canonical_json, content_hash
    from mes.core.esign import Manifestation, Meaning
    from mes.core.keys import SiteKey
    from mes.core.record import batch_audit_lines, build_record
    from mes.core.review import Decision, Review, ReviewSettings
    from mes.services.record import review_audit_lines

    quinn = Actor("01900000-0000-7000-8000-000000000001", "quinn", "Quinn Quality")
    at = datetime.now(UTC)
    review = Review(
        batch, [], record=entries, key=SiteKey.generate(), site="HUB", settings=ReviewSettings()
    )

    def signed(record: dict[str, Any], meaning: Meaning) -> Manifestation:
        return Manifestation.for_record(
            record_type="batch-review", record_id=batch.state.id, record=record,
            signer_id=quinn.user_id or "", username="quinn", printed_name=quinn.name,
            meaning=meaning, at=at, terminal="QA desk", site="HUB",
        )  # fmt: skip

    for finding in list(review.findings):
        if finding.by_closure:
            deviation = finding.key.split(":", 1)[1]
            assessment = {"classification": "minor", "description": "As recorded",
                          "impact": "None on the product", "root_cause": "Operator error"}  # fmt: skip
            review.assess_deviation(deviation, assessment, quinn, at, "QA desk")
            record = review.closure_record(deviation)
            review.close_deviation(deviation, signed(record, Meaning.CLOSED), quinn, at, "QA desk")
        elif not finding.blocking:
            record = review.exception_record(finding.key)
            manifestation = signed(record, Meaning.REVIEWED)
            review.mark_reviewed(finding.key, None, manifestation, quinn, at, "QA desk")
    record = review.decision_record(Decision.RELEASED, None)
    manifestation = signed(record, Meaning.RELEASED)
    review.decide(Decision.RELEASED, None, manifestation, quinn, at, "QA desk")
    chain = review.new_entries
    after = {**document, "review": [{"body": e.body, "hash": e.hash} for e in chain]}
    after_hash = content_hash(after)
    released = build_record(
        batch,
        review.state,
        time_zone=ZONE,
        site_name="Spoke One",
        audit=[*batch_audit_lines(batch, entries, ZONE), *review_audit_lines(chain, ZONE)],
        record_hash=after_hash,
        generated_at=datetime.now(UTC),
        ledger=entries,
    )
    return released, canonical_json({**after, "record_hash": after_hash})


# --- ours, in a fresh process -------------------------------------------------------------------


def _cpu_seconds() -> float:
    """CPU time of this process and of every child it has waited for (user + system)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _peak_mib() -> tuple[float, float]:
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    child = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return own, child


def measure(pickled: Path, out: Path, repeat: int) -> dict[str, Any]:
    """Render and sign the pickled record; the figures.

    * **cold** — nothing laid out before (a fresh part cache each time): the record of the
      complete batch as it first reaches the hub, rendered and signed;
    * **released** — the same batch after QA's review and release, rendered and signed as
      :func:`mes.pdf.issue.issue_record` does after a QA action: the parts the spoke's record
      fixes were laid out by an earlier print and are reused; the cover, the deviations and
      QA's audit trail are laid out again, the footer laid over, the whole signed;
    * **stored** — the released record handed out again (read back from the records folder).

    Cold and released are issued as :func:`mes.pdf.issue.issue_record` issues them: rendered,
    read back (:func:`mes.pdf.readback.missing_words`: the text extracted and every deviation,
    manifestation, value and audit line looked for) and signed. The read-back is timed on its
    own, and the released record is also issued without it in the same run (**released
    without read-back**: the issuing time before issue 13), alternating with the issue with it.
    """
    from mes.core.certificate import DocumentSigningKey
    from mes.pdf.issue import COVER_STAMP_BOX
    from mes.pdf.readback import missing_words
    from mes.pdf.render import PartCache, record_blocks, render_record_pdf
    from mes.pdf.sign import sign_pdf

    record, attachment, released, released_attachment = pickle.loads(pickled.read_bytes())
    at = datetime.now(UTC)
    key = DocumentSigningKey.generate("HUB", "Hub", at)
    read_back: dict[str, list[float]] = {"cold": [], "released": [], "released_cpu": []}

    def produce(rec: Any, att: bytes, cache: PartCache, figure: str | None) -> bytes:
        pdf = render_record_pdf(rec, att, cache=cache)
        if figure is not None:  # as issue_record does: signed only once read back whole
            start, start_cpu = time.perf_counter(), _cpu_seconds()
            missing = missing_words(rec, pdf)
            read_back[figure].append(time.perf_counter() - start)
            if figure == "released":
                read_back["released_cpu"].append(_cpu_seconds() - start_cpu)
            if missing:
                raise SystemExit(f"the print misses {[m.what for m in missing][:5]}")
        return sign_pdf(
            pdf, key, at=at, reason="Executed batch record", location="Hub (HUB)", name="Hub",
            stamp_page=0, stamp_box=COVER_STAMP_BOX,
        )  # fmt: skip

    cold, cold_cpu, unsigned = [], [], []
    warm, warm_cpu, before, before_cpu = [], [], [], []
    signed = b""
    with tempfile.TemporaryDirectory(prefix="mes-pdf-parts-") as tmp:
        for index in range(repeat):
            cache = PartCache(Path(tmp) / f"cold-{index}")
            start, start_cpu = time.perf_counter(), _cpu_seconds()
            produce(record, attachment, cache, "cold")
            cold.append(time.perf_counter() - start)
            cold_cpu.append(_cpu_seconds() - start_cpu)
            start = time.perf_counter()
            render_record_pdf(record, attachment, cache=PartCache(Path(tmp) / f"u-{index}"))
            unsigned.append(time.perf_counter() - start)
            start, start_cpu = time.perf_counter(), _cpu_seconds()
            produce(released, released_attachment, cache, None)
            before.append(time.perf_counter() - start)
            before_cpu.append(_cpu_seconds() - start_cpu)
            start, start_cpu = time.perf_counter(), _cpu_seconds()
            signed = produce(released, released_attachment, cache, "released")
            warm.append(time.perf_counter() - start)
            warm_cpu.append(_cpu_seconds() - start_cpu)
        out.write_bytes(signed)
        start = time.perf_counter()
        stored = out.read_bytes()
        stored_s = time.perf_counter() - start
    own, child = _peak_mib()
    workers = min(os.cpu_count() or 1, 4)
    return {
        "cold_seconds": cold,
        "cold_s": statistics.median(cold),
        "cold_first_s": cold[0],
        "cold_cpu_s": statistics.median(cold_cpu),  # workers included
        "unsigned_cold_s": statistics.median(unsigned),
        "released_seconds": warm,
        "released_s": statistics.median(warm),
        "released_cpu_s": statistics.median(warm_cpu),
        "released_without_read_back_seconds": before,
        "released_without_read_back_s": statistics.median(before),
        "released_without_read_back_cpu_s": statistics.median(before_cpu),
        "read_back_released_seconds": read_back["released"],
        "read_back_released_s": statistics.median(read_back["released"]),
        "read_back_released_cpu_s": statistics.median(read_back["released_cpu"]),
        "read_back_cold_s": statistics.median(read_back["cold"]),
        "stored_s": stored_s,
        "bytes": len(stored),
        "blocks": len(record_blocks(released)),
        "peak_rss_own_mib": own,
        "peak_rss_child_mib": child,
        "peak_rss_bound_mib": own + workers * child,  # every worker at its largest at once
    }


def _pages(pdf: Path) -> int:
    info = subprocess.run(["pdfinfo", str(pdf)], capture_output=True, text=True, check=True)
    return int(
        next(line for line in info.stdout.splitlines() if line.startswith("Pages:")).split()[1]
    )


# --- headless Chromium --------------------------------------------------------------------------


def chromium(pickled: Path, out: Path, repeat: int) -> dict[str, Any]:
    """Headless Chromium printing :func:`record_html` of the same record."""
    from playwright.sync_api import sync_playwright

    from mes.pdf.render import record_html

    _record, _attachment, released, _released_attachment = pickle.loads(pickled.read_bytes())
    html = record_html(released)
    totals, prints = [], []
    pdf = b""
    start_cpu = _cpu_seconds()
    with sync_playwright() as playwright:
        for _ in range(repeat):
            start = time.perf_counter()
            browser = playwright.chromium.launch(executable_path=CHROMIUM)
            launched = time.perf_counter()
            page = browser.new_page()
            page.set_content(html)
            pdf = page.pdf(format="A4", prefer_css_page_size=True, print_background=True)
            printed = time.perf_counter()
            browser.close()
            totals.append(printed - start)
            prints.append(printed - launched)
    # Chromium's processes are the Playwright driver's children: counted once it has exited
    cpu = (_cpu_seconds() - start_cpu) / repeat
    out.write_bytes(pdf)
    return {
        # per print with launch: the driver and the Chromium processes it reaped (a renderer
        # re-parented elsewhere would be missed, so this may be low)
        "cpu_s": cpu,
        "with_launch_s": statistics.median(totals),
        "print_s": statistics.median(prints),
        "bytes": len(pdf),
        "html_bytes": len(html.encode("utf-8")),
    }


# --- the run ------------------------------------------------------------------------------------


def run(units: int, repeat: int) -> dict[str, Any]:
    """Build the reference record, measure ours and Chromium; the results."""
    load_at_start = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="mes-pdf-bench-") as tmp:
        folder = Path(tmp)
        reference = reference_record(folder, units)
        pickled = Path(reference["path"])
        ours_pdf, chromium_pdf = folder / "ours.pdf", folder / "chromium.pdf"
        answer = subprocess.run(
            [
                sys.executable,
                "-m",
                "benchmarks.pdf",
                "--measure",
                str(pickled),
                str(ours_pdf),
                "--repeat",
                str(repeat),
            ],
            capture_output=True,
            text=True,
            cwd=ROOT,
            check=False,
        )
        if answer.returncode != 0:
            raise SystemExit(f"measuring our rendering failed:\n{answer.stderr}")
        ours = json.loads(answer.stdout.strip().splitlines()[-1])
        ours["pages"] = _pages(ours_pdf)
        theirs = chromium(pickled, chromium_pdf, repeat)
        theirs["pages"] = _pages(chromium_pdf)
    del reference["path"]
    ratio = ours["released_s"] / theirs["print_s"]
    return {
        "machine": {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "load_average": load_at_start,
            "load_average_end": os.getloadavg(),
        },
        "reference": reference,
        "ours": ours,
        "chromium": theirs,
        "ratio_to_print": ratio,
        "ratio_cold_to_print": ours["cold_s"] / theirs["print_s"],
        "ratio_to_print_with_launch": ours["released_s"] / theirs["with_launch_s"],
        "target_ratio": TARGET_RATIO,
        "target_met": ratio <= TARGET_RATIO,
    }


def report(results: dict[str, Any]) -> None:
    """The table."""
    ours, theirs, ref = results["ours"], results["chromium"], results["reference"]
    rows = [
        ("reference batch", f"{ref['phases']} phases, {ref['audit_entries']} audit entries"),
        (
            "ours cold: signed PDF/A s (first; CPU)",
            f"{ours['cold_s']:.2f} ({ours['cold_first_s']:.2f}; {ours['cold_cpu_s']:.2f})",
        ),
        ("ours cold: unsigned PDF/A s", f"{ours['unsigned_cold_s']:.2f}"),
        (
            "ours released: signed PDF/A s (CPU)",
            f"{ours['released_s']:.2f} ({ours['released_cpu_s']:.2f})",
        ),
        (
            "  the same without read-back s (CPU)",
            f"{ours['released_without_read_back_s']:.2f} "
            f"({ours['released_without_read_back_cpu_s']:.2f})",
        ),
        (
            "  read-back s released (CPU; cold)",
            f"{ours['read_back_released_s']:.2f} ({ours['read_back_released_cpu_s']:.2f}; "
            f"{ours['read_back_cold_s']:.2f})",
        ),
        ("ours stored: read back s", f"{ours['stored_s']:.4f}"),
        (
            "Chromium: print s (with launch; CPU)",
            f"{theirs['print_s']:.2f} ({theirs['with_launch_s']:.2f}; {theirs['cpu_s']:.2f})",
        ),
        ("ratio released / Chromium print", f"{results['ratio_to_print']:.2f}"),
        ("ratio cold / Chromium print", f"{results['ratio_cold_to_print']:.2f}"),
        ("pages ours / Chromium", f"{ours['pages']} / {theirs['pages']}"),
        ("bytes ours / Chromium", f"{ours['bytes']:,} / {theirs['bytes']:,}"),
        (
            "load average at start / end (1 min)",
            f"{results['machine']['load_average'][0]:.1f} / "
            f"{results['machine']['load_average_end'][0]:.1f}",
        ),
        (
            "peak RSS MiB (own + largest child)",
            f"{ours['peak_rss_own_mib']:.0f} + {ours['peak_rss_child_mib']:.0f}",
        ),
        (
            f"target: released ≤ {TARGET_RATIO} × Chromium",
            "met" if results["target_met"] else "NOT met",
        ),
    ]
    for label, value in rows:
        print(f"{label:<40}{value:>40}")


def main(argv: list[str] | None = None) -> None:
    """Run, print the table, write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a 40-phase batch")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--measure", nargs=2, help=argparse.SUPPRESS)
    args, _unknown = parser.parse_known_args(argv)
    if args.measure:
        print(json.dumps(measure(Path(args.measure[0]), Path(args.measure[1]), args.repeat)))
        return
    results = run(units=1 if args.quick else 4, repeat=args.repeat)
    report(results)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "pdf.json").write_text(json.dumps(results, indent=2))
    print(json.dumps(results))


if __name__ == "__main__":
    main()
