"""Form pieces shared by blueprints: the e-signature fields every signing form carries."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import PasswordField, StringField
from wtforms.validators import DataRequired, Length


class SignatureForm(FlaskForm):
    """Base for any form that is submitted with an e-signature (the dialog fills these)."""

    esign_username = StringField("User ID", validators=[Length(max=32)])
    esign_password = PasswordField(
        "Password", validators=[DataRequired(message="Type your password to sign.")]
    )
