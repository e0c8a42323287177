"""Tables of the site database, one module per noun; every model is importable from here.

CHECK constraints are built from the core's enums (:func:`mes.store.models.base.known`);
triggers (in the migrations) make GMP tables append-only. The schema is created and changed only
by Alembic migrations, whose ``env.py`` reads ``Base.metadata`` from here (importing this package
imports every table).
"""

from __future__ import annotations

from mes.store.models.audit import AuditEntry, ChainHead
from mes.store.models.base import NAMING_CONVENTION, Base, UTCDateTime, known
from mes.store.models.batches import (
    Batch,
    BatchEntry,
    BatchEquipment,
    BatchMaterial,
    BatchPhase,
    BatchReview,
    BatchReviewEntry,
    BatchValue,
    Counter,
    Deviation,
    chain_body,
    chain_columns,
)
from mes.store.models.cpv import CpvBaseline, CpvDisposition, CpvMargin, CpvTrend
from mes.store.models.logger import LoggerFile
from mes.store.models.lookback import LookBack
from mes.store.models.masters import Equipment, EquipmentLogEntry, Material, MaterialLot
from mes.store.models.people import (
    Badge,
    PasswordHistory,
    PinHistory,
    Terminal,
    TrainingRecord,
    User,
    UserRole,
    WebSession,
)
from mes.store.models.read_models import (
    BatchMilestone,
    BatchSummary,
    BatchUsage,
    ParameterResult,
)
from mes.store.models.recipes import InstalledRecipe, RecipePublication, RecipeVersion
from mes.store.models.sync import (
    AnchoredHead,
    EnrollmentCode,
    HubLink,
    HubReceipt,
    RefusalWindow,
    Spoke,
    SyncEvent,
    SyncNonce,
    SyncOutbox,
)

__all__ = [
    "NAMING_CONVENTION",
    "AnchoredHead",
    "AuditEntry",
    "Badge",
    "Base",
    "Batch",
    "BatchEntry",
    "BatchEquipment",
    "BatchMaterial",
    "BatchMilestone",
    "BatchPhase",
    "BatchReview",
    "BatchReviewEntry",
    "BatchSummary",
    "BatchUsage",
    "BatchValue",
    "ChainHead",
    "Counter",
    "CpvBaseline",
    "CpvDisposition",
    "CpvMargin",
    "CpvTrend",
    "Deviation",
    "EnrollmentCode",
    "Equipment",
    "EquipmentLogEntry",
    "HubLink",
    "HubReceipt",
    "InstalledRecipe",
    "LoggerFile",
    "LookBack",
    "Material",
    "MaterialLot",
    "ParameterResult",
    "PasswordHistory",
    "PinHistory",
    "RecipePublication",
    "RecipeVersion",
    "RefusalWindow",
    "Spoke",
    "SyncEvent",
    "SyncNonce",
    "SyncOutbox",
    "Terminal",
    "TrainingRecord",
    "UTCDateTime",
    "User",
    "UserRole",
    "WebSession",
    "chain_body",
    "chain_columns",
    "known",
]
