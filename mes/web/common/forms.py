"""Forms of the common pages."""

from __future__ import annotations

from typing import Any

from flask_wtf import FlaskForm
from wtforms import HiddenField, PasswordField, StringField
from wtforms.validators import DataRequired, EqualTo, Length, Optional

from mes.web.forms import OneLine, SignatureForm


class LoginForm(FlaskForm):
    """User ID and password, or badge (scanned) and PIN (21 CFR 11.10(d), 11.200(a)(1))."""

    badge = StringField("Badge (scan it)", validators=[Optional(), Length(max=128), OneLine()])
    pin = PasswordField(
        "PIN", validators=[Optional(), Length(max=8)], render_kw={"inputmode": "numeric"}
    )
    username = StringField("User ID", validators=[Optional(), Length(max=64), OneLine()])
    password = PasswordField("Password", validators=[Optional()])
    next = HiddenField()

    def validate(self, extra_validators: Any = None) -> bool:
        """One of the two pairs, complete: badge and PIN, or user ID and password."""
        if not super().validate(extra_validators):
            return False
        if (self.badge.data or "").strip():
            if not (self.pin.data or "").strip():
                self.pin.errors = ["Type your PIN after scanning your badge."]
                return False
            return True
        missing = [f for f in (self.username, self.password) if not (f.data or "").strip()]
        for f in missing:
            f.errors = ["This field is required."]
        return not missing


class PinForm(FlaskForm):
    """Set or change one's PIN, confirmed with the password (11.300(b))."""

    password = PasswordField("Your password", validators=[DataRequired()])
    pin = PasswordField(
        "New PIN (6 to 8 digits)",
        validators=[DataRequired(), Length(max=8)],
        render_kw={"inputmode": "numeric", "autocomplete": "new-password"},
    )
    confirm = PasswordField(
        "New PIN again",
        validators=[DataRequired(), EqualTo("pin", message="The two PINs differ.")],
    )


class UnlockForm(FlaskForm):
    """The password (or the PIN, where the user has one) again, after the inactivity lock."""

    method = StringField("Unlock with", validators=[Optional(), Length(max=16)])
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
