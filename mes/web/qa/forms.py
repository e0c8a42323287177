"""The forms of the hub's QA pages.

Every form carries the review chain's last entry number as QA saw it (``seen_review_seq``): when
someone else recorded in the batch's review since the page was opened, the service refuses and
says who acted and when, instead of acting on a stale page. Fields only declare what a form
carries and its size; whether an investigation is complete or a batch may be released is the
core's rule (:mod:`mes.core.review`), reported in its words.
"""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import HiddenField, StringField, TextAreaField
from wtforms.validators import Length, Optional

from mes.core.text import MAX_LONG_TEXT
from mes.web.forms import FreeText, OneLine, SignatureForm, whole_number

TEXT = [Optional(), FreeText(MAX_LONG_TEXT)]


def seen_state(form: FlaskForm) -> dict[str, int]:
    """What the page showed: the review chain's and the spoke's record's last entry numbers.

    The hidden field holds both as ``REVIEW.RECORD``; a form without them (or garbled) is taken
    as out of date, so the service refuses it as a stale page rather than act on unknown state.
    """
    text = (form.seen_review_seq.data or "").strip()
    review, _, record = text.partition(".")
    seen_review, seen_record = whole_number(review), whole_number(record)
    if seen_review is None or seen_record is None:
        return {"seen_review_seq": -1, "seen_record_seq": -1}
    return {"seen_review_seq": seen_review, "seen_record_seq": seen_record}


class ReviewExceptionForm(SignatureForm):
    """Mark one exception reviewed (signed "reviewed"), with an optional note."""

    exception = HiddenField(validators=[Length(max=200)])
    note = TextAreaField("Note (optional)", validators=[Optional(), FreeText()])
    seen_review_seq = HiddenField()


class BulkReviewForm(SignatureForm):
    """Mark several exceptions reviewed under one signature (signed "reviewed").

    Each chosen exception is an ``exception`` field holding ``KEY@DIGEST``: its key and the
    digest of its content as the page showed it (:func:`chosen_exceptions` reads them).
    """

    note = TextAreaField("Note (optional)", validators=[Optional(), FreeText()])
    seen_review_seq = HiddenField()


def chosen_exceptions(values: list[str]) -> dict[str, str]:
    """The ticked exceptions: key → the digest of its content as shown (in the page's order)."""
    chosen: dict[str, str] = {}
    for value in values[:1000]:
        key, _, digest = value.strip().rpartition("@")
        if key and len(key) <= 200:
            chosen.setdefault(key, digest[:64])
    return chosen


class AssessmentForm(FlaskForm):
    """QA's investigation of a deviation; saved without a signature, each change kept."""

    classification = StringField(  # a select of CLASSIFICATION_CHOICES; the core checks it
        "Classification", validators=[Optional(), Length(max=20), OneLine()]
    )
    description = TextAreaField("Description", validators=TEXT)
    impact = TextAreaField("Impact assessment", validators=TEXT)
    root_cause = TextAreaField("Root cause", validators=TEXT)
    capa = StringField("CAPA reference", validators=[Optional(), Length(max=200), OneLine()])
    seen_review_seq = HiddenField()


class CloseDeviationForm(SignatureForm):
    """Close a deviation whose investigation is complete (signed "closed")."""

    seen_review_seq = HiddenField()


class DecisionForm(SignatureForm):
    """Release or reject the batch (signed "released" / "rejected"); rejection needs a reason."""

    reason = TextAreaField("Reason", validators=[Optional(), FreeText()])
    seen_review_seq = HiddenField()
