"""The hub's document-signing certificate: the X.509 identity PDF readers check on a record.

The site's Ed25519 key signs ledgers and JWS; PDF readers (poppler/NSS, Acrobat) and PAdES
validators need an algorithm they all support, so the hub has a second key for documents only:
ECDSA P-256 with SHA-256, in a self-signed certificate that names the hub (site name and code).
It is its own trust anchor: an auditor trusts it by pinning the certificate (``mes verify
--trust``), the spokes receive it when they enroll. Self-signed, so it carries ``keyCertSign``
and ``cA`` besides ``digitalSignature`` and ``nonRepudiation`` (validators accept it as a root).
(21 CFR 11.10(a): altered records are detected; 11.70: the signature is bound to the file.)
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

VALIDITY = timedelta(days=3653)  # about ten years: longer than a batch record is looked at


def _name(site_code: str, site_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, f"{site_name} ({site_code}) batch records"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, site_name),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, f"MES site {site_code}"),
        ]
    )


@dataclass(frozen=True)
class DocumentSigningKey:
    """The hub's document-signing private key with its certificate."""

    private: ec.EllipticCurvePrivateKey
    certificate: x509.Certificate

    @classmethod
    def generate(cls, site_code: str, site_name: str, at: datetime) -> DocumentSigningKey:
        """A fresh P-256 key and its self-signed certificate, valid from ``at`` for ten years."""
        private = ec.generate_private_key(ec.SECP256R1())
        public = private.public_key()
        name = _name(site_code, site_name)
        certificate = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(public)
            .serial_number(x509.random_serial_number())
            .not_valid_before(at)
            .not_valid_after(at + VALIDITY)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=True,  # nonRepudiation
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=False,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(public), critical=False
            )
            .sign(private, hashes.SHA256())
        )
        return cls(private, certificate)

    @classmethod
    def from_pem(cls, key_pem: bytes, certificate_pem: bytes) -> DocumentSigningKey:
        """Load the pair as written by :meth:`private_pem` and :meth:`certificate_pem`.

        Raises ``ValueError`` when either is unreadable or they do not belong together.
        """
        private = serialization.load_pem_private_key(key_pem, password=None)
        if not isinstance(private, ec.EllipticCurvePrivateKey):
            raise ValueError("the document-signing key is not an ECDSA key")
        certificate = load_certificate(certificate_pem)
        if certificate.public_key() != private.public_key():
            raise ValueError("the document-signing key does not match its certificate")
        return cls(private, certificate)

    def private_pem(self) -> bytes:
        """PKCS#8 PEM of the private key (to be written with mode 0600, never shown)."""
        return self.private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    def certificate_pem(self) -> bytes:
        """The certificate in PEM form, safe to publish."""
        return self.certificate.public_bytes(serialization.Encoding.PEM)


def load_certificate(pem: bytes) -> x509.Certificate:
    """One X.509 certificate from PEM (or DER); ``ValueError`` when it is not one."""
    if b"-----BEGIN" in pem:
        return x509.load_pem_x509_certificate(pem)
    return x509.load_der_x509_certificate(pem)


def fingerprint(certificate: x509.Certificate) -> str:
    """SHA-256 fingerprint as PDF readers show it: upper-case hex pairs joined by colons."""
    return certificate.fingerprint(hashes.SHA256()).hex(":").upper()


def subject_text(certificate: x509.Certificate) -> str:
    """The certificate's common name (or its whole subject when it has none)."""
    names = certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    if names:
        return str(names[0].value)
    return certificate.subject.rfc4514_string()
