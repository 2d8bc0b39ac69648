"""A small certificate authority for a federation, built on `cryptography`.

Every node and coordinator holds a certificate signed by the federation's CA;
its common name is the party's identity, which nodes' policies name as
recipients. Certificates carry both server and client usage so one identity
can serve (a node) and dial (a coordinator, or a node's own tooling).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from federation.errors import ConfigError
from federation.trust.authority import cert_pem, key_pem, new_ca, new_certificate, revocation_list
from federation.trust.certificates import common_name, fingerprint

CA_NAME = "ca"
CRL_NAME = "ca.crl"
PINS_NAME = "peers.toml"
_VALID_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,62}$")


@dataclass(frozen=True)
class Identity:
    """Paths of one party's key material inside a PKI directory."""

    ca_cert: Path
    cert: Path
    key: Path

    @classmethod
    def in_directory(cls, directory: Path, name: str) -> Identity:
        """Locate `name`'s certificate and key; fail with every missing file."""
        identity = cls(directory / f"{CA_NAME}.crt", directory / f"{name}.crt", directory / f"{name}.key")
        missing = [str(p) for p in (identity.ca_cert, identity.cert, identity.key) if not p.is_file()]
        if missing:
            raise ConfigError(
                str(directory),
                [f"missing {m} (create it with `federation pki issue {name} --dir {directory}`)" for m in missing],
            )
        return identity

    def read(self) -> tuple[bytes, bytes, bytes]:
        """Return (CA certificate, certificate, private key) as PEM bytes."""
        return self.ca_cert.read_bytes(), self.cert.read_bytes(), self.key.read_bytes()


def certificate_name(certificate_pem: bytes) -> str:
    """The common name of a PEM certificate (a party's identity), or "" if it has none."""
    return common_name(x509.load_pem_x509_certificate(certificate_pem)) or ""


def _check_name(name: str) -> None:
    if not _VALID_NAME.fullmatch(name):
        raise ConfigError(name, ["a party name must be 1-63 characters of a-z, 0-9, '.', '_' or '-'"])


def _write_private(path: Path, data: bytes) -> None:
    path.write_bytes(data)
    path.chmod(0o600)


def init_ca(directory: Path, *, common_name: str = "federation-ca", days: int = 3650) -> Path:
    """Create a CA key and self-signed certificate; refuse to overwrite one."""
    directory.mkdir(parents=True, exist_ok=True)
    cert_path, key_path = directory / f"{CA_NAME}.crt", directory / f"{CA_NAME}.key"
    if cert_path.exists() or key_path.exists():
        raise ConfigError(str(directory), [f"a CA already exists here ({cert_path.name}); refusing to overwrite it"])
    _check_days(days)
    certificate, key = new_ca(common_name, days=days)
    _write_private(key_path, key_pem(key))
    cert_path.write_bytes(cert_pem(certificate))
    return cert_path


def _check_days(days: int) -> None:
    if not 1 <= days <= 36500:
        raise ConfigError("--days", [f"a certificate's validity must be 1 to 36500 days, got {days}"])


def _load_ca(directory: Path) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    ca_cert_path, ca_key_path = directory / f"{CA_NAME}.crt", directory / f"{CA_NAME}.key"
    if not ca_cert_path.is_file() or not ca_key_path.is_file():
        raise ConfigError(str(directory), [f"no CA here; create one with `federation pki init --dir {directory}`"])
    ca_cert = x509.load_pem_x509_certificate(ca_cert_path.read_bytes())
    ca_key = serialization.load_pem_private_key(ca_key_path.read_bytes(), password=None)
    if not isinstance(ca_key, ec.EllipticCurvePrivateKey):
        raise ConfigError(str(ca_key_path), ["expected an elliptic-curve CA key"])
    return ca_cert, ca_key


def issue_certificate(directory: Path, name: str, *, days: int = 825, hosts: tuple[str, ...] = ()) -> Identity:
    """Issue a certificate for party `name`, signed by the CA in `directory`.

    The subject alternative names always include `localhost` and 127.0.0.1 so
    nodes on one machine work; pass `hosts` for a node served elsewhere.
    """
    _check_name(name)
    ca_cert, ca_key = _load_ca(directory)
    _check_days(days)
    certificate, key = new_certificate(ca_cert, ca_key, name, days=days, hosts=hosts)
    identity = Identity(directory / f"{CA_NAME}.crt", directory / f"{name}.crt", directory / f"{name}.key")
    _write_private(identity.key, key_pem(key))
    identity.cert.write_bytes(cert_pem(certificate))
    return identity


def revoke_certificate(directory: Path, name: str) -> Path:
    """Add `name`'s current certificate to the CA's revocation list (`ca.crl`); nodes refuse it from then on."""
    _check_name(name)
    ca_cert, ca_key = _load_ca(directory)
    cert_path = directory / f"{name}.crt"
    if not cert_path.is_file():
        raise ConfigError(str(directory), [f"no certificate {cert_path.name} to revoke"])
    serial = x509.load_pem_x509_certificate(cert_path.read_bytes()).serial_number
    crl_path = directory / CRL_NAME
    serials = {serial}
    if crl_path.is_file():
        serials |= {r.serial_number for r in x509.load_pem_x509_crl(crl_path.read_bytes())}
    crl = revocation_list(ca_cert, ca_key, serials)
    crl_path.write_bytes(crl.public_bytes(serialization.Encoding.PEM))
    return crl_path


def write_pins(directory: Path, names: list[str], *, path: Path | None = None, recipients: list[str] | None = None) -> Path:
    """A pin file for the certificates in `directory`: `[pins]` for fellow parties, `[recipients]` for callers."""
    target = path or directory / PINS_NAME
    lines = ["# Certificates accepted as fellow parties in secure aggregation (name = SHA-256 fingerprint).", "[pins]"]
    lines += _pin_lines(directory, names)
    if recipients:
        lines += ["", "# Callers whose certificate must be exactly this one (a CA holder cannot mint another).", "[recipients]"]
        lines += _pin_lines(directory, recipients)
    target.write_text("\n".join(lines) + "\n")
    return target


def _pin_lines(directory: Path, names: list[str]) -> list[str]:
    lines = []
    for name in sorted(set(names)):
        _check_name(name)
        cert_path = directory / f"{name}.crt"
        if not cert_path.is_file():
            raise ConfigError(str(directory), [f"no certificate {cert_path.name} to pin"])
        der = x509.load_pem_x509_certificate(cert_path.read_bytes()).public_bytes(serialization.Encoding.DER)
        lines.append(f'"{name}" = "{fingerprint(der)}"')
    return lines


def ensure_identities(directory: Path, names: list[str], *, pin: list[str] | None = None) -> None:
    """Create the CA and any missing certificates, and pin the certificates of `pin` (used by the demo and tests)."""
    if not (directory / f"{CA_NAME}.crt").is_file():
        init_ca(directory)
    for name in names:
        if not (directory / f"{name}.crt").is_file():
            issue_certificate(directory, name)
    if pin is not None:
        write_pins(directory, pin)
