"""Form pieces shared by blueprints: the e-signature fields and the validators of typed text.

:class:`OneLine` and :class:`FreeText` ask the core's text rules (:mod:`mes.core.text`): a
one-line field holds no control character; a free-text field may hold line breaks and tabs and
is refused, naming the limit, when longer than allowed (never cut).
"""

from __future__ import annotations

from typing import Any

from flask_wtf import FlaskForm
from wtforms import Field, PasswordField, StringField
from wtforms.validators import DataRequired, Length, ValidationError

from mes.core.text import MAX_FREE_TEXT, free_text_problem, line_problem


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


class SignatureForm(FlaskForm):
    """Base for any form that is submitted with an e-signature (the dialog fills these)."""

    esign_username = StringField("User ID", validators=[Length(max=32), OneLine()])
    esign_password = PasswordField(
        "Password", validators=[DataRequired(message="Type your password to sign.")]
    )
