"""Forms of the common pages."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import HiddenField, PasswordField, StringField
from wtforms.validators import DataRequired, EqualTo, Length

from mes.web.forms import OneLine, SignatureForm


class LoginForm(FlaskForm):
    """User ID and password (21 CFR 11.10(d))."""

    username = StringField("User ID", validators=[DataRequired(), Length(max=64), OneLine()])
    password = PasswordField("Password", validators=[DataRequired()])
    next = HiddenField()


class UnlockForm(FlaskForm):
    """The password again, after the inactivity lock."""

    password = PasswordField("Password", validators=[DataRequired()])
    next = HiddenField()


class ChangePasswordForm(FlaskForm):
    """The user's own password change."""

    current_password = PasswordField("Current password", validators=[DataRequired()])
    new_password = PasswordField("New password", validators=[DataRequired(), Length(max=256)])
    confirm = PasswordField(
        "New password again",
        validators=[
            DataRequired(),
            EqualTo("new_password", message="The two new passwords differ."),
        ],
    )
    next = HiddenField()


class AttestationForm(SignatureForm):
    """Acknowledging the e-signature accountability statement (11.10(j))."""


class LogoutForm(FlaskForm):
    """Log out (a POST, so that a link cannot log someone out)."""


class LockForm(FlaskForm):
    """Lock the session now (a POST, so that a link or an image cannot lock it)."""

    next = HiddenField()
