"""Form pieces shared by blueprints: e-signature fields, typed-text validators, bounded fields.

Dates and whole numbers are bounded before they reach a service.

:class:`OneLine` and :class:`FreeText` ask the core's text rules (:mod:`mes.core.text`): a
one-line field holds no control character; a free-text field may hold line breaks and tabs and
is refused, naming the limit, when longer than allowed (never cut).
"""

from __future__ import annotations

from datetime import date
from typing import Any

from flask_wtf import FlaskForm
from wtforms import BooleanField, Field, HiddenField, PasswordField, StringField
from wtforms import DateField as _WTFormsDateField
from wtforms.validators import DataRequired, Length, Optional, ValidationError

from mes.core.text import MAX_FREE_TEXT, free_text_problem, line_problem
from mes.core.text import whole_number as whole_number  # re-exported: views parse numbers here


class OneLine:
    """The field is one line of text: no line break, tab or other control character."""

    field_flags = {"one_line": True}

    def __call__(self, form: Any, field: Field) -> None:
        problem = line_problem((field.data or "").strip())
        if problem is not None:
            raise ValidationError(f"{field.label.text} {problem}.")


class FreeText:
    """The field is free text of at most ``max_length`` characters (line breaks allowed)."""

    def __init__(self, max_length: int = MAX_FREE_TEXT) -> None:
        self.max_length = max_length
        self.field_flags = {"maxlength": max_length}

    def __call__(self, form: Any, field: Field) -> None:
        text = (field.data or "").replace("\r\n", "\n").replace("\r", "\n").strip()
        problem = free_text_problem(text, self.max_length)
        if problem is not None:
            raise ValidationError(f"{field.label.text} {problem}.")


# Dates a person types are between these (a far date such as 9999-12-31 overflows date
# arithmetic and the databases' timestamps; nothing in a batch record is dated outside them).
FIRST_DATE = date(1900, 1, 1)
LAST_DATE = date(2999, 12, 31)


class DateField(_WTFormsDateField):
    """A date between 1900-01-01 and 2999-12-31; any other is refused in words."""

    def pre_validate(self, form: Any) -> None:
        if self.data is not None and not FIRST_DATE <= self.data <= LAST_DATE:
            self.data = None
            raise ValidationError(
                f"Give a date from {FIRST_DATE.isoformat()} to {LAST_DATE.isoformat()}."
            )


class SignatureForm(FlaskForm):
    """Base for any form that is submitted with an e-signature (the dialog fills these)."""

    esign_username = StringField("User ID", validators=[Length(max=32), OneLine()])
    esign_badge = StringField("Badge", validators=[Length(max=128), OneLine()])
    esign_password = PasswordField(
        "Password", validators=[DataRequired(message="Type your password to sign.")]
    )
    # "Sign as another person": the user ID and password are a witness's, who signs in place.
    esign_witness = BooleanField("Sign as another person")


# --- after release (mes.core.after_release) -------------------------------------------------------

WITHIN_CHOICES = [("", "— as the recipe judges it —"), ("yes", "Within specification"),
                  ("no", "Out of specification")]  # fmt: skip


class ResultForm(FlaskForm):
    """A result the recipe declared pending at release, entered by QC (no signature)."""

    result = HiddenField(validators=[Length(max=48)])
    value = StringField("Result", validators=[Length(max=200), OneLine()])
    reference = StringField("Lab report or sample", validators=[Length(max=100), OneLine()])
    within = StringField("Meets the specification", validators=[Optional(), Length(max=3)])
    method = StringField("Method", validators=[Optional(), Length(max=200), OneLine()])
    corrects = HiddenField(validators=[Optional(), Length(max=20)])
    reason = StringField("Reason for the correction", validators=[Optional(), FreeText()])
    seen_review_seq = HiddenField()


def result_fields(form: ResultForm) -> dict[str, object]:
    """What QC typed, as the services take it (the rules are the core's)."""
    fields: dict[str, object] = {
        "result": form.result.data or "",
        "value": form.value.data or "",
        "reference": form.reference.data or "",
        "method": form.method.data or None,
    }
    if form.within.data in ("yes", "no"):
        fields["within_specification"] = form.within.data == "yes"
    if form.corrects.data:
        fields["corrects"], fields["reason"] = form.corrects.data, form.reason.data or ""
    return fields


class NotificationForm(SignatureForm):
    """The treating physician told of a result out of specification (signed "notified")."""

    result = HiddenField(validators=[Length(max=48)])
    physician = StringField("Physician told", validators=[Length(max=200), OneLine()])
    how = StringField("How", validators=[Length(max=20)])
    told_at = StringField("When", validators=[Length(max=40), OneLine()])
    seen_review_seq = HiddenField()


def notification_fields(form: NotificationForm) -> dict[str, str]:
    """Who was told, how and when (by whom is the signer)."""
    return {
        "result": form.result.data or "",
        "physician": form.physician.data or "",
        "how": form.how.data or "",
        "told_at": form.told_at.data or "",
    }


class CertificationForm(SignatureForm):
    """QA's final certification (signed "certified final")."""

    seen_review_seq = HiddenField()
