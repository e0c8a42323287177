"""A shipment's temperature logger at a spoke: the file imported in its phase, and its curve.

:func:`import_logger_file` is one permission check and one transaction: the file is read and
checked by the core (:mod:`mes.core.logger`, :class:`mes.core.phases.temperature_log.TemperatureLogs`),
kept byte for byte under its SHA-256 (:mod:`mes.store.logger_files`), and its ledger entry, the
phase's values and, beyond the window, the TEMPERATURE_EXCURSION deviation are written with it —
or, refused, nothing is. :func:`logger_chart` draws the curve of a kept file with its window
(for the phase and deviation pages, and for the printed record).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

from mes.core.access import Permission
from mes.core.batch import Batch
from mes.core.errors import NotFound
from mes.core.logger import Window, parse_logger_csv
from mes.core.phases import KINDS
from mes.services.batches import _acting_on, _committed, _require_spoke
from mes.services.context import Context, authorise
from mes.services.logger_chart import logger_curve_svg
from mes.store import logger_files
from mes.store.uow import UnitOfWork

__all__ = ["import_logger_file", "logger_chart", "logger_file_content"]


def import_logger_file(
    uow: UnitOfWork,
    ctx: Context,
    batch_id: str,
    phase_id: str,
    log_id: str,
    file_name: str,
    content: bytes,
    *,
    seen_seq: int | None = None,
) -> Batch:
    """Import a logger file into a phase in progress (a ready phase starts with it).

    Refused with nothing written (:class:`~mes.core.errors.LoggerFileRefused` names the line):
    see :func:`mes.core.logger.parse_logger_csv` and ``TemperatureLogs.import_file``. The file is
    kept as received (SHA-256 in the entry); ALCOA+ original: the evidence, not a summary of it.
    """
    _require_spoke(uow)
    loaded, who = _acting_on(uow, ctx, batch_id)
    batch = loaded.batch
    batch.check_current(phase_id, seen_seq)
    kind = KINDS["temperature_log"]
    kind.import_file(batch, phase_id, log_id, file_name, content, who, ctx.at, ctx.terminal)  # type: ignore[attr-defined]
    logger_files.keep_file(uow.session, hashlib.sha256(content).hexdigest(), content, ctx.at)
    return _committed(uow, ctx, loaded)


def logger_file_content(uow: UnitOfWork, ctx: Context, sha256: str) -> bytes:
    """The logger file kept under ``sha256``, byte for byte (NotFound when not kept here)."""
    authorise(uow, ctx, Permission.READ_BATCHES)
    content = logger_files.file_content(uow.session, sha256)
    if content is None:
        raise NotFound(
            f"No logger file with SHA-256 {sha256[:16]}… is kept at this site.",
            what_to_do="The file is kept where it was imported (the spoke).",
        )
    return content


def logger_chart(
    uow: UnitOfWork, ctx: Context, sha256: str, window: Mapping[str, Any] | None = None
) -> str:
    """The curve of the kept logger file ``sha256`` as SVG, with ``window`` drawn if given.

    ``window``: as a ``logger_imported`` entry carries it (``{low, high, unit,
    max_minutes_outside}``). For the printed record: ``logger_chart(uow, ctx, payload["sha256"],
    payload["window"])``.
    """
    series = parse_logger_csv(logger_file_content(uow, ctx, sha256))
    return logger_curve_svg(series, None if window is None else Window.from_recipe(window))
