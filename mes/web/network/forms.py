"""Forms of the hub's network pages."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import HiddenField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length, Optional

from mes.web.forms import FreeText, OneLine, SignatureForm


class SpokeForm(FlaskForm):
    """Register a spoke site (it then enrolls with a one-time code)."""

    code = StringField(
        "Site code (2-12 capitals or digits, e.g. LDN1)",
        validators=[DataRequired(), Length(max=12), OneLine()],
    )
    name = StringField("Site name", validators=[DataRequired(), Length(max=200), OneLine()])
    time_zone = StringField(
        "Time zone (IANA, e.g. Europe/London)",
        default="UTC",
        validators=[DataRequired(), Length(max=64), OneLine()],
    )


class SpokeActionForm(FlaskForm):
    """Suspend, reinstate or revoke a spoke: a reason is required."""

    reason = TextAreaField("Reason", validators=[DataRequired(), FreeText(500)])


class PlainForm(FlaskForm):
    """An action with nothing to type (CSRF only)."""


# --- continued process verification (the comparability page) -------------------------------------


class BaselineForm(SignatureForm):
    """QA freezes the control limits of a parameter: the first N batches of a period (signed)."""

    parameter = HiddenField(validators=[Length(max=200)])
    period_from = StringField("Period from", validators=[Length(max=40), OneLine()])
    period_to = StringField("Period to", validators=[Length(max=40), OneLine()])
    batches = StringField("Number of batches (N)", validators=[Length(max=6), OneLine()])
    reason = TextAreaField("Reason (optional)", validators=[Optional(), FreeText(2000)])


class MarginForm(SignatureForm):
    """QA sets the equivalence margin of a parameter, with a reason (signed)."""

    parameter = HiddenField(validators=[Length(max=200)])
    margin = StringField(
        "Margin (±, in the parameter's unit)", validators=[Length(max=30), OneLine()]
    )
    reason = TextAreaField("Reason", validators=[Optional(), FreeText(2000)])


class TrendForm(SignatureForm):
    """QA assesses a trend: a disposition, its reference where due, and a comment (signed)."""

    disposition = StringField("Disposition", validators=[Length(max=20), OneLine()])
    reference = StringField(
        "Reference (deviation or CAPA)", validators=[Optional(), Length(max=200), OneLine()]
    )
    comment = TextAreaField("Comment", validators=[Optional(), FreeText(4000)])


# --- look-back -------------------------------------------------------------------------------------


class OpenLookBackForm(FlaskForm):
    """Open a look-back on the subject searched for, with QA's reason."""

    kind = HiddenField(validators=[Length(max=16)])
    subject = HiddenField(validators=[Length(max=64)])
    reason = TextAreaField(
        "Why look back (e.g. the supplier's recall notice)", validators=[FreeText()]
    )


class DispositionForm(SignatureForm):
    """QA's disposition of one batch in a look-back (signed "reviewed")."""

    batch_id = HiddenField(validators=[Length(max=36)])
    disposition = HiddenField(validators=[Length(max=16)])
    reason = TextAreaField("Reason (required for no action)", validators=[Optional(), FreeText()])
