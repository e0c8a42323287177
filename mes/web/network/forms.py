"""Forms of the hub's network pages."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import StringField, TextAreaField
from wtforms.validators import DataRequired, Length

from mes.web.forms import FreeText, OneLine


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
