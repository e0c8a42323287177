"""The fixed forms of the operator's pages (the phase form itself is built from the recipe).

Fields only declare what a form carries and its size: whether a reason is long enough or a value
is well-formed is the core's rule, reported in its words (:mod:`mes.core.batch`,
:mod:`mes.core.limits`). The phase page's fields are named ``value:ID``, ``comment:ID``,
``lot:CODE``, ``equipment:SLOT`` and ``identity:CHECK`` after the recipe (see ``views._phase_data``).
"""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import HiddenField, PasswordField, StringField, TextAreaField
from wtforms.validators import Length, Optional

from mes.web.forms import FreeText, OneLine, SignatureForm

TEXT = [Optional(), FreeText()]


class ReasonForm(FlaskForm):
    """Hold or resume a batch: the reason."""

    reason = StringField("Reason", validators=TEXT)


class SignedReasonForm(SignatureForm):
    """Abort a batch: the reason, signed."""

    reason = StringField("Reason", validators=TEXT)


class CommentForm(FlaskForm):
    """Say what happened in a deviation."""

    comment = TextAreaField("What happened, and what you did", validators=TEXT)
    phase_id = HiddenField(validators=[Optional(), Length(max=48)])


class DeviationReportForm(FlaskForm):
    """Report a deviation by hand."""

    description = TextAreaField("What happened", validators=TEXT)
    phase_id = HiddenField(validators=[Optional(), Length(max=48)])


class CorrectionForm(SignatureForm):
    """Correct a signed value: which, the new value, why."""

    value_id = StringField("Value", validators=[Optional(), Length(max=48), OneLine()])
    new_value = StringField("Corrected value", validators=TEXT)
    reason = StringField("Reason for the correction", validators=TEXT)


class CustodyForm(SignatureForm):
    """A custody transfer: the material, both sides, where, the container; signed by each side.

    The logged-in user signs with the dialog (``esign_*``); the other side, when a user, signs
    in place with their own badge and PIN or user ID and password (``other_*``); when not a
    user, is typed (``other_name``, ``other_organisation``). The logger fields are the hook for
    a shipment's temperature logger file (its SHA-256 and summary, bound into the record).
    """

    side = HiddenField(validators=[Optional(), Length(max=16)])
    material = StringField("Material", validators=[Optional(), Length(max=32), OneLine()])
    container = StringField("Shipper or container ID", validators=[Optional(), OneLine()])
    place = StringField("Where", validators=[Optional(), OneLine()])
    own_organisation = StringField("Your organisation", validators=[Optional(), OneLine()])
    other_name = StringField("Their name", validators=[Optional(), OneLine()])
    other_organisation = StringField("Their organisation", validators=[Optional(), OneLine()])
    other_badge = StringField("Their badge", validators=[Optional(), Length(max=128), OneLine()])
    other_username = StringField("Their user ID", validators=[Optional(), Length(max=32)])
    other_secret = PasswordField("Their PIN or password", validators=[Optional()])
    logger_sha256 = StringField("Logger file SHA-256", validators=[Optional(), Length(max=64)])
    logger_summary = StringField("Logger summary", validators=[Optional(), OneLine()])
