"""Forms of the hub's recipe pages: upload a draft, sign a lifecycle step, publish a bundle."""

from __future__ import annotations

import re

from flask_wtf import FlaskForm
from flask_wtf.file import FileAllowed, FileField, FileRequired
from wtforms import StringField, TextAreaField
from wtforms.validators import DataRequired, Length, Optional

from mes.web.forms import DateField, FreeText, OneLine, SignatureForm


class UploadForm(FlaskForm):
    """A recipe file (YAML) to import as a draft version."""

    recipe = FileField(
        "Recipe file (.yaml)",
        validators=[
            FileRequired(message="Choose the recipe file to upload."),
            FileAllowed(["yaml", "yml"], message="A recipe is a .yaml file."),
        ],
        render_kw={"accept": ".yaml,.yml", "required": True},
    )


class StepForm(SignatureForm):
    """A lifecycle step signed in the dialog; making effective needs a date, retiring a reason."""

    effective_from = DateField(
        "Effective from (site date)",
        validators=[Optional()],
        render_kw={"required": True},
    )
    reason = TextAreaField(
        "Reason for retiring this version",
        validators=[Optional(), FreeText()],
        render_kw={"required": True, "rows": 3},
    )


class PublishForm(FlaskForm):
    """The sites an effective version's bundle is for."""

    sites = StringField(
        "Site codes (separated by commas or spaces)",
        validators=[
            DataRequired(message="Name at least one site code."),
            Length(max=500),
            OneLine(),
        ],
        render_kw={"autocapitalize": "characters", "required": True},
    )

    def site_codes(self) -> list[str]:
        """'LDN1, man2 BRS1' → ['LDN1', 'man2', 'BRS1'] (the service checks each code)."""
        return [code for code in re.split(r"[\s,;]+", self.sites.data or "") if code]
