"""Form pieces shared by blueprints.

The e-signature fields every signing form carries, and the fields that bound what a person can
type (dates, whole numbers) before it reaches a service.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from flask_wtf import FlaskForm
from wtforms import DateField as _WTFormsDateField
from wtforms import PasswordField, StringField
from wtforms.validators import DataRequired, Length, ValidationError

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


def whole_number(text: str | None, *, most: int = 10**9) -> int | None:
    """``text`` as a whole number from 0 to ``most`` written in ASCII digits, else None.

    ``str.isdigit()`` is not enough: it accepts ``²`` (which ``int()`` refuses) and 5,000
    digits (past ``int()``'s limit, and every database's integer).
    """
    text = (text or "").strip()
    if not (text.isascii() and text.isdigit()) or len(text) > len(str(most)):
        return None
    number = int(text)
    return number if number <= most else None


class SignatureForm(FlaskForm):
    """Base for any form that is submitted with an e-signature (the dialog fills these)."""

    esign_username = StringField("User ID", validators=[Length(max=32)])
    esign_password = PasswordField(
        "Password", validators=[DataRequired(message="Type your password to sign.")]
    )
