"""The forms of the materials and equipment pages.

Fields declare what each form carries; the services judge the values (codes, units, dates,
reasons) and say what is wrong in their words.
"""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import StringField
from wtforms.validators import Length, Optional

from mes.web.forms import FreeText, OneLine, SignatureForm

SHORT = [Optional(), Length(max=200), OneLine()]


class MaterialForm(FlaskForm):
    """Register a material."""

    code = StringField("Code", validators=SHORT)
    name = StringField("Name", validators=SHORT)
    unit = StringField("Unit", validators=SHORT)


class LotForm(FlaskForm):
    """Receive a lot."""

    material_code = StringField("Material", validators=SHORT)
    lot_number = StringField("Lot number", validators=SHORT)
    expiry = StringField("Expiry", validators=SHORT)


class LotDecisionForm(SignatureForm):
    """QA's decision on a lot, signed."""

    status = StringField("Status", validators=SHORT)
    reason = StringField("Reason", validators=[Optional(), FreeText()])


class EquipmentForm(FlaskForm):
    """Register an instrument."""

    equipment_id = StringField("ID", validators=SHORT)
    equipment_class = StringField("Class", validators=SHORT)
    name = StringField("Name", validators=SHORT)
    location = StringField("Location", validators=SHORT)
    calibration_due = StringField("Calibration due", validators=SHORT)


class LotCustodyForm(SignatureForm):
    """A lot from the hub (a vector lot) received into custody, signed "received".

    Who handed it over (typed: not a user here), where, and the shipper it came in.
    """

    lot_number = StringField("Lot number", validators=SHORT)
    container = StringField("Shipper or container ID", validators=SHORT)
    from_name = StringField("Handed over by", validators=SHORT)
    from_organisation = StringField("Their organisation", validators=SHORT)
    place = StringField("Where", validators=SHORT)
