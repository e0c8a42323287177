"""Forms of the spoke's recipe pages: install a bundle published by the hub."""

from __future__ import annotations

from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired


class InstallForm(FlaskForm):
    """A recipe bundle file (.jws) from the hub; the service verifies it."""

    bundle = FileField(
        "Recipe bundle from the hub (.jws)",
        validators=[FileRequired(message="Choose the bundle file to install.")],
        render_kw={"accept": ".jws", "required": True},
    )
