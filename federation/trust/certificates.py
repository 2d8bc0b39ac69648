"""Certificates a node accepts from its fellow parties, and the signatures they make.

Trust model. The federation's CA signs every party's certificate, and the
certificate's common name is the party's identity. If the CA is held by
someone other than the coordinator (the departments jointly, or an
independent office), `accept = "ca"` is enough: the coordinator cannot obtain
a certificate in another party's name. If the coordinator also holds the CA,
it could mint certificates for parties that do not exist; `accept = "pinned"`
closes that door: a node then accepts only the certificates whose SHA-256
fingerprints its own staff listed in a pin file, exchanged out of band with
the other departments. Either way a revoked certificate (in the CA's CRL) is
refused, and every check raises `CohortRejected` naming what failed.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from pydantic import Field

from federation.config import StrictModel, load_toml
from federation.errors import CohortRejected

FINGERPRINT_PREFIX = "sha256:"
_CACHE_LIMIT = 4096  # certificates whose CA signature a node remembers having checked


def fingerprint(certificate_der: bytes) -> str:
    """The SHA-256 fingerprint of a DER certificate, as `sha256:<hex>`."""
    return FINGERPRINT_PREFIX + hashlib.sha256(certificate_der).hexdigest()


def common_name(certificate: x509.Certificate) -> str | None:
    """The single common name of a certificate's subject, or None if there is not exactly one."""
    names = certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    if len(names) != 1:
        return None
    value = names[0].value
    return value.decode() if isinstance(value, bytes) else str(value)


@dataclass(frozen=True)
class Credentials:
    """This party's certificate and the private key that signs its protocol messages."""

    name: str
    certificate: bytes  # DER
    _key: ec.EllipticCurvePrivateKey

    @classmethod
    def from_pem(cls, certificate_pem: bytes, key_pem: bytes) -> Credentials:
        certificate = x509.load_pem_x509_certificate(certificate_pem)
        key = serialization.load_pem_private_key(key_pem, password=None)
        name = common_name(certificate)
        if not isinstance(key, ec.EllipticCurvePrivateKey) or name is None:
            raise ValueError("credentials need an elliptic-curve key and a certificate with one common name")
        return cls(name, certificate.public_bytes(serialization.Encoding.DER), key)

    def sign(self, message: bytes) -> bytes:
        return self._key.sign(message, ec.ECDSA(hashes.SHA256()))


class Revocations:
    """The serial numbers the CA has revoked, from its CRL; re-read when the file changes.

    A CRL that does not verify against the CA is refused outright (every peer
    is rejected), so a forged or damaged file can never un-revoke a certificate.
    """

    def __init__(self, path: Path | None, ca: x509.Certificate) -> None:
        self.path = path
        self._ca = ca
        self._lock = threading.Lock()
        self._stamp: tuple[int, int] | None = None
        self._serials: frozenset[int] = frozenset()
        self._problem: str | None = None

    def _reload(self) -> None:
        if self.path is None or not self.path.is_file():
            self._stamp, self._serials, self._problem = None, frozenset(), None
            return
        stat = self.path.stat()
        stamp = (stat.st_mtime_ns, stat.st_size)
        if stamp == self._stamp:
            return
        try:
            crl = x509.load_pem_x509_crl(self.path.read_bytes())
            ca_key = self._ca.public_key()
            if not isinstance(ca_key, ec.EllipticCurvePublicKey) or not crl.is_signature_valid(ca_key):
                raise ValueError("its signature does not verify against the CA")
            self._serials, self._problem = frozenset(r.serial_number for r in crl), None
        except ValueError as error:
            self._serials, self._problem = frozenset(), f"the revocation list {self.path.name} is unusable: {error}"
        self._stamp = stamp

    def check(self, certificate: x509.Certificate) -> str | None:
        """Why the certificate must be refused (revoked, or the CRL unusable), or None."""
        with self._lock:
            self._reload()
            if self._problem is not None:
                return self._problem
            if certificate.serial_number in self._serials:
                return "its certificate has been revoked"
        return None


class PinFile(StrictModel):
    pins: dict[str, str]  # fellow parties in secure aggregation
    recipients: dict[str, str] = Field(default_factory=dict)  # callers (coordinators) whose certificate is pinned too


def load_pins(path: Path) -> dict[str, str]:
    """Party name -> certificate fingerprint, from a TOML file with a `[pins]` table."""
    return dict(load_toml(path, PinFile).pins)


def load_recipient_pins(path: Path) -> dict[str, str]:
    """Caller name -> certificate fingerprint, from the pin file's optional `[recipients]` table."""
    return dict(load_toml(path, PinFile).recipients)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class PeerTrust:
    """Decides whether a participant is a real party, and checks what it signed."""

    def __init__(
        self,
        ca_pem: bytes,
        *,
        pins: Mapping[str, str] | None,
        recipients: Mapping[str, str] | None = None,
        crl_path: Path | None = None,
        clock: Callable[[], dt.datetime] = _now,
    ) -> None:
        self._ca = x509.load_pem_x509_certificate(ca_pem)
        self.pins = dict(pins) if pins is not None else None
        self.recipients = dict(recipients or {})
        self.revocations = Revocations(crl_path, self._ca)
        self._clock = clock
        self._issued_by_ca: dict[bytes, x509.Certificate] = {}  # DER -> parsed, CA signature checked
        self._cache_lock = threading.Lock()

    @property
    def mode(self) -> str:
        return "pinned" if self.pins is not None else "ca"

    def check_certificate(self, name: str, certificate_der: bytes) -> tuple[x509.Certificate, str]:
        """The parsed certificate of participant `name` and its fingerprint, or CohortRejected."""
        certificate, why = self._issued(certificate_der)
        if certificate is not None and why is None:
            why = self._refusal(name, certificate, certificate_der)
        if why is not None or certificate is None:
            raise CohortRejected(f"participant {name!r}: {why}")
        return certificate, fingerprint(certificate_der)

    def _issued(self, certificate_der: bytes) -> tuple[x509.Certificate | None, str | None]:
        """Parse and check the CA's signature once per certificate (cached); validity, revocation and pins every time."""
        with self._cache_lock:
            cached = self._issued_by_ca.get(certificate_der)
        if cached is not None:
            return cached, None
        try:
            certificate = x509.load_der_x509_certificate(certificate_der)
        except ValueError:
            return None, "its certificate cannot be parsed"
        if certificate.issuer != self._ca.subject:
            return certificate, "its certificate is not issued by this federation's CA"
        try:
            certificate.verify_directly_issued_by(self._ca)
        except (ValueError, TypeError, InvalidSignature):
            return certificate, "its certificate's signature does not verify against this federation's CA"
        with self._cache_lock:
            if len(self._issued_by_ca) >= _CACHE_LIMIT:
                self._issued_by_ca.clear()
            self._issued_by_ca[certificate_der] = certificate
        return certificate, None

    def _refusal(self, name: str, certificate: x509.Certificate, certificate_der: bytes) -> str | None:
        if common_name(certificate) != name:
            return f"its certificate is for {common_name(certificate)!r}"
        now = self._clock()
        if not certificate.not_valid_before_utc <= now <= certificate.not_valid_after_utc:
            start, end = certificate.not_valid_before_utc, certificate.not_valid_after_utc
            return f"its certificate is not valid now (valid {start:%Y-%m-%d} to {end:%Y-%m-%d})"
        revoked = self.revocations.check(certificate)
        if revoked is not None:
            return revoked
        if self.pins is not None:
            pinned = self.pins.get(name)
            if pinned is None:
                return "it is not among the parties this node accepts (pin file)"
            if pinned != fingerprint(certificate_der):
                return "its certificate is not the one pinned for it"
        return None

    def verify(self, name: str, certificate_der: bytes, message: bytes, signature: bytes) -> str:
        """Check that `name`'s accepted certificate signed `message`; returns its fingerprint."""
        certificate, print_ = self.check_certificate(name, certificate_der)
        key = certificate.public_key()
        if not isinstance(key, ec.EllipticCurvePublicKey):
            raise CohortRejected(f"participant {name!r}: its certificate has no elliptic-curve key")
        try:
            key.verify(signature, message, ec.ECDSA(hashes.SHA256()))
        except InvalidSignature:
            raise CohortRejected(f"participant {name!r}: its signature does not verify") from None
        return print_

    def caller_refusal(self, certificate_pem: bytes) -> str | None:
        """For a TLS caller gRPC already verified: why it must be refused (revoked, or not its pinned certificate)."""
        try:
            certificate = x509.load_pem_x509_certificate(certificate_pem)
        except ValueError:
            return "the caller's certificate cannot be parsed"
        pinned = self.recipients.get(common_name(certificate) or "")
        if pinned is not None and pinned != fingerprint(certificate.public_bytes(serialization.Encoding.DER)):
            return "its certificate is not the one pinned for this recipient"
        return self.revocations.check(certificate)
