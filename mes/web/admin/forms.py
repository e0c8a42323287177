"""Forms of the administration pages."""

from __future__ import annotations

from typing import Any

from flask_wtf import FlaskForm
from wtforms import PasswordField, SelectMultipleField, StringField, TextAreaField
from wtforms.fields.choices import SelectChoice  # (value, label) tuples are deprecated in 3.3
from wtforms.validators import DataRequired, Length, Optional
from wtforms.widgets import CheckboxInput, ListWidget

from mes.core.access import ROLE_TITLES
from mes.core.esign import SIGNING_METHOD_TITLES, SigningMethod
from mes.web.forms import DateField, FreeText, OneLine


class RoleChoices(SelectMultipleField):
    """Roles as large check boxes."""

    widget = ListWidget(prefix_label=False)
    option_widget = CheckboxInput()


def _role_choices() -> list[Any]:
    return [SelectChoice(role.value, title) for role, title in ROLE_TITLES.items()]


class NewUserForm(FlaskForm):
    """Create a user."""

    username = StringField("User ID", validators=[DataRequired(), Length(max=32), OneLine()])
    full_name = StringField(
        "Full name (as printed with signatures)",
        validators=[DataRequired(), Length(max=200), OneLine()],
    )
    roles = RoleChoices("Roles", choices=_role_choices())
    password = PasswordField(
        "Initial password (the user must change it at first login)", validators=[DataRequired()]
    )


class RolesForm(FlaskForm):
    """Change a user's roles, with the reason."""

    roles = RoleChoices("Roles", choices=_role_choices())
    reason = StringField("Reason for the change", validators=[DataRequired(), FreeText(500)])


class AdministratorsMaySignForm(FlaskForm):
    """Allow or forbid administration together with a GMP signing role, with the reason."""

    allowed = RoleChoices(  # one check box: ticked allows the combination
        "Allow", choices=[SelectChoice("yes", "Administrators may also hold a signing role")]
    )
    reason = StringField("Reason for the change", validators=[DataRequired(), Length(max=500)])


class SigningMethodsForm(FlaskForm):
    """Choose the ways to sign (and log in at a panel) the site allows, with the reason."""

    methods = RoleChoices(
        "Ways to sign",
        choices=[SelectChoice(m.value, SIGNING_METHOD_TITLES[m]) for m in SigningMethod],
    )
    reason = StringField("Reason for the change", validators=[DataRequired(), Length(max=500)])


class BadgeForm(FlaskForm):
    """Enroll a badge: scan it into the field."""

    badge = PasswordField(
        "Badge (scan it)",
        validators=[DataRequired(message="Scan the badge into the field."), Length(max=128)],
        render_kw={"autocomplete": "off"},
    )


class ReasonForm(FlaskForm):
    """An action that needs a reason (deactivate, unlock)."""

    reason = TextAreaField("Reason", validators=[Optional(), FreeText(500)])


class PlainForm(FlaskForm):
    """An action with nothing to type (CSRF only)."""


class TerminalForm(FlaskForm):
    """Register this browser as a terminal."""

    name = StringField(
        "Terminal name (as labelled on the device)",
        validators=[DataRequired(), Length(max=64), OneLine()],
    )
    location = StringField("Location", validators=[Optional(), Length(max=200), OneLine()])


class TrainingForm(FlaskForm):
    """Record a qualification."""

    username = StringField("User ID", validators=[DataRequired(), Length(max=32), OneLine()])
    procedure = StringField(
        "Procedure (SOP or recipe)", validators=[DataRequired(), Length(max=200), OneLine()]
    )
    qualified_on = DateField("Qualified on", validators=[DataRequired()])
    expires_on = DateField("Expires on (empty: no expiry)", validators=[Optional()])


class AuditFilterForm(FlaskForm):
    """Filter the audit trail (GET, no CSRF needed)."""

    class Meta:
        csrf = False

    record_type = StringField("Record type", validators=[Optional(), Length(max=64), OneLine()])
    record_id = StringField(
        "Record (ID, batch number, CODE vN or lot)",
        validators=[Optional(), Length(max=200), OneLine()],
    )
    username = StringField("User ID", validators=[Optional(), Length(max=32), OneLine()])
    since = DateField("From (date)", validators=[Optional()])
    until = DateField("To (date, inclusive)", validators=[Optional()])
