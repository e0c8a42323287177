"""The hub signs only what it has read back, and a record's words cannot bend what it signs.

A real batch is made at spoke SPK1 (a value corrected after signing raises a deviation, which
the supervisor acknowledges), sent to the hub, and its record issued there
(:func:`mes.pdf.issue.issue_record`), on SQLite and on PostgreSQL:

* with the product name carrying what broke out of the old running header's CSS string
  (``\\r}}``, ``\\f``, ``url(...)`` of a recording server on 127.0.0.1 and of a file outside
  the package), the signed record still shows the deviation, the payload only as words, and
  nothing was fetched;
* with a tampered print template that hides the deviations, or a value, the hub refuses to
  sign (:class:`RecordPrintIncomplete`), names what is missing, and keeps no file.
"""

from __future__ import annotations

import dataclasses

import pytest
from request_recorder import recording_server
from sync_sites import net
from test_issued_record import one_line, page_texts, qa, sent_to_the_hub, written

from mes.core.certificate import load_certificate
from mes.pdf import issue, render
from mes.pdf.issue import issue_record, records_folder
from mes.pdf.sign import verify_pdf
from mes.services.record import RecordPackage


def test_record_text_that_broke_out_of_the_old_header_is_printed_as_words_in_the_signed_record(
    net, tmp_path, monkeypatch
):
    runtime, certificate, batch_id, deviation = sent_to_the_hub(net)
    with recording_server(tmp_path) as server:
        outside = tmp_path / "outside.svg"
        outside.write_text(
            '<svg xmlns="http://www.w3.org/2000/svg" width="9" height="9">'
            f'<image href="{server.base}/through-a-file" width="9" height="9"/></svg>',
            encoding="utf-8",
        )
        product = (
            f"Cells\r}}}} .deviation{{display:none}} body{{background:url({server.base}/x)}} "
            f".sig{{background:url({outside.as_uri()})}} @page{{\f"
        )
        package_of = issue.batch_record
        read: list[RecordPackage] = []

        def bent(*args, **kwargs) -> RecordPackage:
            """The record as the hub reads it, with the product name an author could write."""
            package = package_of(*args, **kwargs)
            cover = dataclasses.replace(package.record.cover, product=product)
            read.append(
                dataclasses.replace(
                    package, record=dataclasses.replace(package.record, cover=cover)
                )
            )
            return read[-1]

        monkeypatch.setattr(issue, "batch_record", bent)
        issued = issue_record(runtime, qa(net), batch_id)
        assert server.requests() == []
    (section,) = read[-1].record.deviations
    assert section.id == deviation
    text = one_line(" ".join(page_texts(written(tmp_path, "issued.pdf", issued.pdf))))
    assert f"{section.id} — {section.category} — {section.status}" in text
    assert ".deviation{display:none}" in text  # the words, in the header
    check = verify_pdf(issued.pdf, [load_certificate(certificate)])
    assert check.problems == ()


@pytest.mark.parametrize(
    ("rule", "named"),
    [
        (".deviation { display: none }", ("deviation ", "the signature ")),
        (".row.st-action { display: none }", ("the value ",)),
    ],
    ids=["deviations-hidden", "action-value-hidden"],
)
def test_the_hub_does_not_sign_a_print_that_leaves_out_part_of_the_record_and_names_it(
    net, monkeypatch, rule, named
):
    runtime, _certificate, batch_id, deviation = sent_to_the_hub(net)
    stylesheet = render._css() + "\n" + rule  # a tampered print template
    monkeypatch.setattr(render, "_css", lambda: stylesheet)
    with pytest.raises(issue.RecordPrintIncomplete) as refused:
        issue_record(runtime, qa(net), batch_id)
    assert refused.value.http_status == 409
    missing = refused.value.missing
    assert missing and all(m.startswith(named) for m in missing), missing
    if named[0] == "deviation ":
        assert missing[0] == f"deviation {deviation}"
    assert missing[0] in refused.value.message
    assert "does not sign" in refused.value.message
    assert not list(records_folder(runtime.settings).glob("*.pdf"))
    monkeypatch.undo()
    whole = issue_record(runtime, qa(net), batch_id)  # the genuine template: signed
    assert whole.made_now


__all__ = ["net"]  # the fixture, imported from sync_sites
