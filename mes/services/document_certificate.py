"""The hub's document-signing key and certificate on disk (see mes.core.certificate).

Written once, at ``mes init --role hub`` or by ``mes site certificate`` for a hub made before
certificates existed; never overwritten (a new certificate would leave every record signed with
the old one untrusted by whoever pinned it). Both files have mode 0600 (mes.store.files).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from mes.core.audit import EntryKind
from mes.core.certificate import DocumentSigningKey, fingerprint, load_certificate
from mes.core.errors import ConfigurationError
from mes.services.audit import record_entry
from mes.services.context import Context, system_actor
from mes.services.runtime import Runtime
from mes.settings import Settings
from mes.store.files import write_private

DOCUMENT_KEY_FILE = "keys/document_signing_p256.pem"
DOCUMENT_CERTIFICATE_FILE = "keys/document_signing_cert.pem"


def key_path(instance_path: Path) -> Path:
    """Where the hub's document-signing private key lives (mode 0600)."""
    return instance_path / DOCUMENT_KEY_FILE


def certificate_path(instance_path: Path) -> Path:
    """Where the hub's document-signing certificate lives (public)."""
    return instance_path / DOCUMENT_CERTIFICATE_FILE


def write_document_key(instance_path: Path, signing_key: DocumentSigningKey) -> list[Path]:
    """Write the key (0600, refusing to overwrite) and its certificate; the paths written."""
    key_file, cert_file = key_path(instance_path), certificate_path(instance_path)
    write_private(key_file, signing_key.private_pem(), exclusive=True)
    try:
        write_private(cert_file, signing_key.certificate_pem(), exclusive=True)
    except BaseException:
        key_file.unlink(missing_ok=True)
        raise
    return [key_file, cert_file]


def _hub_only(settings: Settings) -> None:
    if settings.role != "hub":
        raise ConfigurationError(
            "Only the hub signs PDF documents (batch records, comparability reports); this "
            "instance is a spoke.",
            what_to_do="Issue and verify signed documents at the hub.",
        )


def document_certificate_pem(settings: Settings) -> bytes | None:
    """The hub's certificate in PEM form, or None when it has none (or this is a spoke)."""
    if settings.role != "hub":
        return None
    try:
        pem = certificate_path(settings.instance_path).read_bytes()
    except FileNotFoundError:
        return None
    try:
        load_certificate(pem)
    except ValueError:
        raise ConfigurationError(
            f"The document-signing certificate {certificate_path(settings.instance_path)} "
            "is unreadable.",
            what_to_do="Restore the instance's keys folder from backup.",
        ) from None
    return pem


def load_document_key(settings: Settings) -> DocumentSigningKey:
    """The hub's document-signing key and certificate; refused with what to do when missing."""
    _hub_only(settings)
    key_file, cert_file = key_path(settings.instance_path), certificate_path(settings.instance_path)
    try:
        key_pem, cert_pem = key_file.read_bytes(), cert_file.read_bytes()
    except FileNotFoundError:
        raise ConfigurationError(
            "This hub has no document-signing certificate, so it cannot sign PDF records.",
            what_to_do="Create it once with 'mes site certificate' (or restore keys/ from backup).",
        ) from None
    try:
        return DocumentSigningKey.from_pem(key_pem, cert_pem)
    except ValueError as err:
        raise ConfigurationError(
            f"The document-signing key or certificate in {key_file.parent} is unreadable: {err}.",
            what_to_do="Restore the instance's keys folder from backup.",
        ) from None


@dataclass(frozen=True)
class CertificateInfo:
    """What ``mes site certificate`` reports."""

    pem: bytes
    fingerprint: str
    subject: str
    not_after: str
    created: bool


def ensure_document_certificate(runtime: Runtime, ctx: Context) -> CertificateInfo:
    """The hub's document-signing certificate, created (and audited) only if it is missing.

    An existing key or certificate is never replaced; a key without its certificate (or the
    reverse) is refused, since it means the keys folder is damaged.
    """
    settings = runtime.settings
    _hub_only(settings)
    key_file = key_path(settings.instance_path)
    cert_file = certificate_path(settings.instance_path)
    created = False
    if not key_file.exists() and not cert_file.exists():
        signing_key = DocumentSigningKey.generate(settings.site_code, settings.site_name, ctx.at)
        written = write_document_key(settings.instance_path, signing_key)
        try:
            with runtime.uow() as uow:
                record_entry(
                    uow,
                    ctx,
                    system_actor(ctx),
                    "document-signing certificate created",
                    "site",
                    settings.site_code,
                    kind=EntryKind.SECURITY,
                    new={"certificate_sha256": fingerprint(signing_key.certificate)},
                )
                uow.commit()
        except BaseException:
            for path in written:
                path.unlink(missing_ok=True)
            raise
        created = True
    elif not (key_file.exists() and cert_file.exists()):
        present, missing = (key_file, cert_file) if key_file.exists() else (cert_file, key_file)
        raise ConfigurationError(
            f"{present} is there but {missing} is missing; nothing was changed.",
            what_to_do="Restore the instance's keys folder from backup.",
        )
    certificate = load_document_key(settings).certificate
    return CertificateInfo(
        pem=certificate_path(settings.instance_path).read_bytes(),
        fingerprint=fingerprint(certificate),
        subject=certificate.subject.rfc4514_string(),
        not_after=certificate.not_valid_after_utc.date().isoformat(),
        created=created,
    )
