"""The rendered record read back (mes.pdf.readback): real PDFs, whole or with a part missing.

A whole print of the sample record (in one piece and in parallel parts) shows everything the
record holds. A print with the deviations hidden by a stylesheet, signatures made invisible,
the audit trail moved off the page, a value or a signature left out of the rendered record, or
a manifestation printed once where the record holds it twice, is found short — and each
missing item is named. Long values that wrap over lines are still found.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from record_fixtures import executed_batch, ledger_json, sample_record

from mes.core.phases import Printed
from mes.core.record import BatchRecord
from mes.pdf import render
from mes.pdf.readback import expected_words, missing_words, printed_text, squeezed
from mes.pdf.render import render_record_pdf


@pytest.fixture(scope="module")
def sample() -> tuple[BatchRecord, bytes]:
    batch = executed_batch()
    return sample_record(batch), ledger_json(batch)


def with_stylesheet(monkeypatch: pytest.MonkeyPatch, rule: str) -> None:
    """The print template's stylesheet with ``rule`` added (a tampered template)."""
    stylesheet = render._css() + "\n" + rule
    monkeypatch.setattr(render, "_css", lambda: stylesheet)


def phases(record: BatchRecord):
    return [ph for unit in record.units for op in unit.operations for ph in op.phases]


@pytest.mark.parametrize("workers", [1, 2], ids=["one-piece", "two-parts"])
def test_a_whole_print_shows_everything_the_record_holds(sample, workers):
    record, attachment = sample
    expected = expected_words(record)
    whats = " | ".join(item.what for item in expected)
    (deviation,) = record.deviations
    assert f"deviation {deviation.id}" in whats
    assert "the signature " in whats and "the value " in whats and "the change of " in whats
    assert sum(item.what.startswith("line ") for item in expected) == len(record.audit)
    assert missing_words(record, render_record_pdf(record, attachment, workers=workers)) == []


def test_a_print_with_the_deviations_hidden_is_refused_naming_them(sample, monkeypatch):
    record, attachment = sample
    with_stylesheet(monkeypatch, ".deviation { display: none }")
    pdf = render_record_pdf(record, attachment, workers=1)
    (deviation,) = record.deviations
    assert deviation.id in printed_text(pdf)  # still named by the audit trail …
    missing = [item.what for item in missing_words(record, pdf)]
    assert missing == [  # … but its section is gone, and the check says so
        f"deviation {deviation.id}",
        f"the signature {deviation.acknowledgement.text}",
        f"the signature {deviation.closure.text}",
    ]


@pytest.mark.parametrize(
    ("rule", "what"),
    [
        (".sig { visibility: hidden }", "the signature "),
        (".a:not(.a-head) { position: absolute; left: -300mm }", "line "),
        (".row.st-alert { display: none }", "the value Viability = 80.0 %"),
    ],
    ids=["invisible-signatures", "audit-trail-off-the-page", "alert-value-hidden"],
)
def test_text_that_is_not_drawn_on_a_page_is_found_missing(sample, monkeypatch, rule, what):
    record, attachment = sample
    with_stylesheet(monkeypatch, rule)
    missing = missing_words(record, render_record_pdf(record, attachment, workers=1))
    assert missing and all(item.what.startswith(what) for item in missing), missing


def with_values(phase: Any, values: tuple[Any, ...]) -> Any:
    """The printed phase with these value lines in place of its inputs' and calculations'."""
    others = tuple(part for part in phase.parts if part.kind not in ("inputs", "calculations"))
    return dataclasses.replace(phase, parts=(Printed("inputs", values), *others))


def test_a_value_or_a_signature_left_out_of_the_print_is_named(sample):
    record, attachment = sample
    count = next(ph for ph in phases(record) if ph.id == "count_cells")
    viability = next(v for v in count.values if v.label == "Viability")
    signature = count.signatures[0]
    shortened = dataclasses.replace(
        with_values(count, tuple(dataclasses.replace(v, value_text="81.0 %") if v is viability
                                 else v for v in count.values)),
        signatures=count.signatures[1:],
    )  # fmt: skip
    printed = dataclasses.replace(
        record,
        units=tuple(
            dataclasses.replace(unit, operations=tuple(
                dataclasses.replace(op, phases=tuple(
                    shortened if ph is count else ph for ph in op.phases)) for op in unit.operations))
            for unit in record.units
        ),
    )  # fmt: skip
    missing = missing_words(record, render_record_pdf(printed, attachment, workers=1))
    assert [item.what for item in missing] == [
        f"the value Viability = 80.0 % in phase {count.number} ({count.name})",
        f"the signature {signature.text}",
    ]


def test_a_manifestation_the_record_holds_twice_must_be_printed_twice(sample):
    record, attachment = sample
    pdf = render_record_pdf(record, attachment, workers=1)
    (first, *others) = record.cover.batch_signatures
    twice = dataclasses.replace(
        record,
        cover=dataclasses.replace(record.cover, batch_signatures=(first, first, *others)),
    )
    assert [item.what for item in missing_words(twice, pdf)] == [f"the signature {first.text}"]


def test_a_long_value_wrapped_over_lines_is_found(sample):
    record, attachment = sample
    long_words = " ".join(
        f"lot-{n:04d}-of-the-sterile-single-use-sampling-syringes-withdrawn" for n in range(12)
    )
    count = next(ph for ph in phases(record) if ph.id == "count_cells")
    viability = next(v for v in count.values if v.label == "Viability")
    long_value = dataclasses.replace(viability, value_text=long_words, label="Remark\u00ad text")
    wrapped = dataclasses.replace(
        record,
        units=tuple(
            dataclasses.replace(unit, operations=tuple(
                dataclasses.replace(op, phases=tuple(
                    with_values(ph, (long_value, *ph.values)) if ph is count
                    else ph for ph in op.phases)) for op in unit.operations))
            for unit in record.units
        ),
    )  # fmt: skip
    pdf = render_record_pdf(wrapped, attachment, workers=1)
    assert long_words not in printed_text(pdf)  # the value wraps: not one run of text
    assert missing_words(wrapped, pdf) == []


def test_one_unbroken_100_character_token_wraps_on_the_page_and_is_found(sample):
    record, attachment = sample
    scan = "X" * 100  # a mis-scan: scans of up to 100 characters are kept
    first = record.audit[0]
    long_line = dataclasses.replace(first, text=f"scanned '{scan}' for the bag label: refused")
    scanned = dataclasses.replace(record, audit=(long_line, *record.audit[1:]))
    assert missing_words(scanned, render_record_pdf(scanned, attachment, workers=1)) == []


def test_squeezing_forgets_only_whitespace_control_and_formatting_characters():
    assert squeezed("Batch\r\n A\u00ad1\u200b \x02\tﬁ\x0c") == "BatchA1-fi"
    assert squeezed("80.0 %") != squeezed("81.0 %")
