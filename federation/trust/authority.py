"""Building the federation's certificates and revocation list, in memory.

`transport.tls` writes them to a PKI directory; tests and in-process rounds
use `throwaway_cohort` for a CA that never touches disk.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from collections.abc import Iterable, Sequence

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from federation.trust.certificates import Credentials, PeerTrust, fingerprint

_BACKDATE = dt.timedelta(minutes=5)


def key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())


def cert_pem(certificate: x509.Certificate) -> bytes:
    return certificate.public_bytes(serialization.Encoding.PEM)


def new_ca(common_name: str, *, days: int) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """A self-signed CA certificate and its key."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _BACKDATE)
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
    return certificate, key


def new_certificate(
    ca: x509.Certificate, ca_key: ec.EllipticCurvePrivateKey, name: str, *, days: int, hosts: Sequence[str] = ()
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """A party's certificate (common name = `name`, server and client use) and its key.

    The subject alternative names always include `localhost` and 127.0.0.1 so
    nodes on one machine work; `hosts` adds names or addresses for a node served elsewhere.
    """
    key = ec.generate_private_key(ec.SECP256R1())
    alt_names: list[x509.GeneralName] = [x509.DNSName(name), x509.DNSName("localhost")]
    alt_names.append(x509.IPAddress(ipaddress.ip_address("127.0.0.1")))
    for host in hosts:
        try:
            alt_names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            alt_names.append(x509.DNSName(host))
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _BACKDATE)
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
        .add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    return certificate, key


def revocation_list(
    ca: x509.Certificate, ca_key: ec.EllipticCurvePrivateKey, serials: Iterable[int], *, days: int = 30
) -> x509.CertificateRevocationList:
    """A CRL signed by the CA that revokes `serials`."""
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(ca.subject)
        .last_update(now - _BACKDATE)
        .next_update(now + dt.timedelta(days=days))
    )
    for serial in sorted(set(serials)):
        builder = builder.add_revoked_certificate(
            x509.RevokedCertificateBuilder().serial_number(serial).revocation_date(now - _BACKDATE).build()
        )
    return builder.sign(ca_key, hashes.SHA256())


def throwaway_cohort(names: Sequence[str], *, pinned: bool = True) -> tuple[dict[str, Credentials], PeerTrust]:
    """Credentials for `names` under a fresh in-memory CA, and a trust that accepts exactly them."""
    ca, ca_key = new_ca("throwaway-ca", days=1)
    credentials = {}
    for name in names:
        certificate, key = new_certificate(ca, ca_key, name, days=1)
        credentials[name] = Credentials.from_pem(cert_pem(certificate), key_pem(key))
    pins = {name: fingerprint(c.certificate) for name, c in credentials.items()} if pinned else None
    return credentials, PeerTrust(cert_pem(ca), pins=pins)
