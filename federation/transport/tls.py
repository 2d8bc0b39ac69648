"""A small certificate authority for a federation, built on `cryptography`.

Every node and coordinator holds a certificate signed by the federation's CA;
its common name is the party's identity, which nodes' policies name as
recipients. Certificates carry both server and client usage so one identity
can serve (a node) and dial (a coordinator, or a node's own tooling).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import re
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from federation.errors import ConfigError

CA_NAME = "ca"
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


def _check_name(name: str) -> None:
    if not _VALID_NAME.fullmatch(name):
        raise ConfigError(name, ["a party name must be 1-63 characters of a-z, 0-9, '.', '_' or '-'"])


def _write_private(path: Path, data: bytes) -> None:
    path.write_bytes(data)
    path.chmod(0o600)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())


def init_ca(directory: Path, *, common_name: str = "federation-ca", days: int = 3650) -> Path:
    """Create a CA key and self-signed certificate; refuse to overwrite one."""
    directory.mkdir(parents=True, exist_ok=True)
    cert_path, key_path = directory / f"{CA_NAME}.crt", directory / f"{CA_NAME}.key"
    if cert_path.exists() or key_path.exists():
        raise ConfigError(str(directory), [f"a CA already exists here ({cert_path.name}); refusing to overwrite it"])
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(key, hashes.SHA256())
    )
    _write_private(key_path, _key_pem(key))
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return cert_path


def issue_certificate(directory: Path, name: str, *, days: int = 825, hosts: tuple[str, ...] = ()) -> Identity:
    """Issue a certificate for party `name`, signed by the CA in `directory`.

    The subject alternative names always include `localhost` and 127.0.0.1 so
    nodes on one machine work; pass `hosts` for a node served elsewhere.
    """
    _check_name(name)
    ca_cert_path, ca_key_path = directory / f"{CA_NAME}.crt", directory / f"{CA_NAME}.key"
    if not ca_cert_path.is_file() or not ca_key_path.is_file():
        raise ConfigError(str(directory), [f"no CA here; create one with `federation pki init --dir {directory}`"])
    ca_cert = x509.load_pem_x509_certificate(ca_cert_path.read_bytes())
    ca_key = serialization.load_pem_private_key(ca_key_path.read_bytes(), password=None)
    if not isinstance(ca_key, ec.EllipticCurvePrivateKey):
        raise ConfigError(str(ca_key_path), ["expected an elliptic-curve CA key"])
    key = ec.generate_private_key(ec.SECP256R1())
    alt_names: list[x509.GeneralName] = [x509.DNSName(name), x509.DNSName("localhost")]
    alt_names.append(x509.IPAddress(ipaddress.ip_address("127.0.0.1")))
    for host in hosts:
        try:
            alt_names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            alt_names.append(x509.DNSName(host))
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
        .add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    identity = Identity(ca_cert_path, directory / f"{name}.crt", directory / f"{name}.key")
    _write_private(identity.key, _key_pem(key))
    identity.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return identity


def ensure_identities(directory: Path, names: list[str]) -> None:
    """Create the CA and any missing certificates (used by the demo and tests)."""
    if not (directory / f"{CA_NAME}.crt").is_file():
        init_ca(directory)
    for name in names:
        if not (directory / f"{name}.crt").is_file():
            issue_certificate(directory, name)
