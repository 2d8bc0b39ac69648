"""federation.transport.tls: a small CA whose certificates carry the party's identity."""

from __future__ import annotations

import ipaddress
import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from federation.errors import ConfigError
from federation.transport.tls import Identity, ensure_identities, init_ca, issue_certificate


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("pki")
    init_ca(directory)
    issue_certificate(directory, "north-district", hosts=("10.0.0.7", "node.example.org"))
    return directory


def load(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def test_init_ca_writes_a_self_signed_ca(tmp_path: Path) -> None:
    cert_path = init_ca(tmp_path / "new", common_name="test-ca")
    ca = load(cert_path)
    assert ca.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "test-ca"
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    ca.verify_directly_issued_by(ca)
    key_path = cert_path.with_suffix(".key")
    assert stat.S_IMODE(key_path.stat().st_mode) == 0o600


def test_init_ca_refuses_to_overwrite(pki: Path) -> None:
    before = (pki / "ca.crt").read_bytes(), (pki / "ca.key").read_bytes()
    with pytest.raises(ConfigError, match="refusing to overwrite"):
        init_ca(pki)
    assert ((pki / "ca.crt").read_bytes(), (pki / "ca.key").read_bytes()) == before


def test_init_ca_refuses_when_only_the_key_exists(tmp_path: Path) -> None:
    (tmp_path / "ca.key").write_bytes(b"an old key")
    with pytest.raises(ConfigError, match="refusing to overwrite"):
        init_ca(tmp_path)
    assert (tmp_path / "ca.key").read_bytes() == b"an old key"


def test_issue_without_a_ca_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        issue_certificate(tmp_path, "north-district")
    assert caught.value.path == str(tmp_path)
    assert "no CA here" in caught.value.problems[0]
    assert not (tmp_path / "north-district.key").exists()


def test_the_common_name_is_the_party_name(pki: Path) -> None:
    cert = load(pki / "north-district.crt")
    assert [a.value for a in cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)] == ["north-district"]


def test_the_certificate_is_signed_by_the_ca(pki: Path) -> None:
    cert, ca = load(pki / "north-district.crt"), load(pki / "ca.crt")
    cert.verify_directly_issued_by(ca)
    assert cert.issuer == ca.subject


def test_a_certificate_from_another_ca_does_not_verify(pki: Path, tmp_path: Path) -> None:
    init_ca(tmp_path)
    foreign = load(issue_certificate(tmp_path, "north-district").cert)
    with pytest.raises(InvalidSignature):
        foreign.verify_directly_issued_by(load(pki / "ca.crt"))


def test_the_san_includes_localhost_loopback_and_extra_hosts(pki: Path) -> None:
    san = load(pki / "north-district.crt").extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    dns = san.get_values_for_type(x509.DNSName)
    ips = san.get_values_for_type(x509.IPAddress)
    assert {"north-district", "localhost", "node.example.org"} <= set(dns)
    assert ipaddress.ip_address("127.0.0.1") in ips
    assert ipaddress.ip_address("10.0.0.7") in ips


def test_the_certificate_serves_and_dials_but_is_no_ca(pki: Path) -> None:
    cert = load(pki / "north-district.crt")
    usage = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert ExtendedKeyUsageOID.SERVER_AUTH in usage and ExtendedKeyUsageOID.CLIENT_AUTH in usage
    assert not cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca


def test_the_private_key_matches_and_is_private(pki: Path) -> None:
    key_path = pki / "north-district.key"
    assert stat.S_IMODE(key_path.stat().st_mode) == 0o600
    key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    assert key.public_key() == load(pki / "north-district.crt").public_key()


@pytest.mark.parametrize("name", ["", "North", "-lead", ".hidden", "a/b", "../ca", "a b", "x" * 64, "ü"])
def test_invalid_names_are_refused(tmp_path: Path, name: str) -> None:
    init_ca(tmp_path)
    with pytest.raises(ConfigError, match="party name"):
        issue_certificate(tmp_path, name)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ca.crt", "ca.key"]


def test_a_name_with_a_trailing_newline_is_refused(tmp_path: Path) -> None:
    init_ca(tmp_path)
    with pytest.raises(ConfigError, match="party name"):
        issue_certificate(tmp_path, "alice\n")


def test_identity_in_directory_finds_the_files(pki: Path) -> None:
    identity = Identity.in_directory(pki, "north-district")
    ca, cert, key = identity.read()
    assert ca == (pki / "ca.crt").read_bytes()
    assert cert == (pki / "north-district.crt").read_bytes()
    assert key == (pki / "north-district.key").read_bytes()


def test_identity_in_directory_reports_every_missing_file(tmp_path: Path) -> None:
    (tmp_path / "south.crt").write_bytes(b"cert")
    with pytest.raises(ConfigError) as caught:
        Identity.in_directory(tmp_path, "south")
    assert caught.value.path == str(tmp_path)
    assert len(caught.value.problems) == 2
    assert str(tmp_path / "ca.crt") in caught.value.problems[0]
    assert str(tmp_path / "south.key") in caught.value.problems[1]


def test_ensure_identities_creates_only_what_is_missing(pki: Path, tmp_path: Path) -> None:
    before = (pki / "north-district.crt").read_bytes()
    ensure_identities(pki, ["north-district", "city-platform"])
    assert (pki / "north-district.crt").read_bytes() == before
    load(pki / "city-platform.crt").verify_directly_issued_by(load(pki / "ca.crt"))
    ensure_identities(tmp_path / "fresh", ["a"])
    load(tmp_path / "fresh" / "a.crt").verify_directly_issued_by(load(tmp_path / "fresh" / "ca.crt"))
