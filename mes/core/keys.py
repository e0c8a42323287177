"""A site's Ed25519 key pair: it signs every chain entry and, later, bundles and sync chunks.

The private key lives in the instance folder (file mode 0600) and is never printed.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from functools import cached_property

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from nacl.exceptions import BadSignatureError
from nacl.signing import VerifyKey


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True)
class SiteKey:
    """A site's signing key (private part) with its public key id."""

    private: Ed25519PrivateKey

    @classmethod
    def generate(cls) -> SiteKey:
        """A fresh random key pair."""
        return cls(Ed25519PrivateKey.generate())

    @classmethod
    def from_pem(cls, pem: bytes) -> SiteKey:
        """Load a PKCS#8 PEM private key as written by :meth:`private_pem`."""
        key = serialization.load_pem_private_key(pem, password=None)
        if not isinstance(key, Ed25519PrivateKey):
            raise ValueError("the site key is not an Ed25519 key")
        return cls(key)

    def private_pem(self) -> bytes:
        """PKCS#8 PEM of the private key (to be written with mode 0600, never shown)."""
        return self.private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    @property
    def public(self) -> SitePublicKey:
        """The public half, safe to print and share."""
        return SitePublicKey(self.private.public_key())

    def sign(self, message: bytes) -> str:
        """Ed25519 signature of ``message``, base64url without padding."""
        return _b64url(self.private.sign(message))


@dataclass(frozen=True)
class SitePublicKey:
    """A site's public key: verifies what the site signed."""

    key: Ed25519PublicKey

    @classmethod
    def from_pem(cls, pem: bytes) -> SitePublicKey:
        """Load a SubjectPublicKeyInfo PEM."""
        key = serialization.load_pem_public_key(pem)
        if not isinstance(key, Ed25519PublicKey):
            raise ValueError("not an Ed25519 public key")
        return cls(key)

    def pem(self) -> bytes:
        """SubjectPublicKeyInfo PEM."""
        return self.key.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    @cached_property
    def raw(self) -> bytes:
        """The raw 32-byte public key."""
        return self.key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)

    @property
    def key_id(self) -> str:
        """Short stable identifier: base64url of the raw 32-byte public key."""
        return _b64url(self.raw)

    @cached_property
    def _verifier(self) -> VerifyKey:
        # libsodium (PyNaCl) verifies Ed25519 about twice as fast as OpenSSL here; the hub
        # checks every entry of every chunk it receives, so this is the ingest's main cost.
        return VerifyKey(self.raw)

    def verifies(self, message: bytes, signature: str) -> bool:
        """True when ``signature`` is this key's Ed25519 signature of ``message``."""
        try:
            self._verifier.verify(message, _unb64url(signature))
        except (BadSignatureError, InvalidSignature, ValueError, TypeError):
            return False
        return True
