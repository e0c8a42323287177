"""The bedside page's forms: the bag's label, the wristband, the clinician's badge and PIN.

Fields only say what a form carries and its size; whether a scan matches the batch, or a DIN's
check character is right, is the core's rule (:mod:`mes.core.batch.bedside`).
"""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import StringField
from wtforms.validators import Length, Optional

from mes.web.forms import OneLine, SignatureForm

SCAN = [Optional(), Length(max=100), OneLine()]


class BagForm(FlaskForm):
    """The first scan: the bag's label names the product (its DIN or chain-of-identity code)."""

    bag = StringField("Scan the bag label (DIN)", validators=SCAN)


class CheckForm(SignatureForm):
    """The identity check: the bag's label and the wristband, signed with badge and PIN."""

    bag_din = StringField("DIN on the bag label", validators=SCAN)
    bag_coi = StringField("Chain of identity code on the bag label", validators=SCAN)
    wristband = StringField("Patient identifier on the wristband", validators=SCAN)
    thawed_at = StringField("Thaw finished at", validators=SCAN)


class InfusionForm(SignatureForm):
    """The infusion's start or end, signed with badge and PIN."""
