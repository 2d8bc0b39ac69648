"""Whom a node accepts as a fellow party: federation.trust (certificates, authority) and the PKI files of transport.tls."""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from federation.errors import CohortRejected, ConfigError
from federation.transport.tls import (
    CRL_NAME,
    PINS_NAME,
    Identity,
    init_ca,
    issue_certificate,
    revoke_certificate,
    write_pins,
)
from federation.trust import Credentials, PeerTrust, fingerprint, load_pins
from federation.trust.authority import throwaway_cohort

NORTH, SOUTH = "north-district", "south-district"


def credentials_of(identity: Identity) -> Credentials:
    _, cert, key = identity.read()
    return Credentials.from_pem(cert, key)


def der_of(path: Path) -> bytes:
    return x509.load_pem_x509_certificate(path.read_bytes()).public_bytes(serialization.Encoding.DER)


def trust_in(directory: Path, *, pins: dict[str, str] | None = None, clock: Callable[[], dt.datetime] | None = None) -> PeerTrust:
    ca_pem = (directory / "ca.crt").read_bytes()
    if clock is None:
        return PeerTrust(ca_pem, pins=pins, crl_path=directory / CRL_NAME)
    return PeerTrust(ca_pem, pins=pins, crl_path=directory / CRL_NAME, clock=clock)


@pytest.fixture()
def pki(tmp_path: Path) -> Path:
    """A CA with two parties, written as `federation pki` writes it."""
    directory = tmp_path / "pki"
    init_ca(directory)
    issue_certificate(directory, NORTH)
    issue_certificate(directory, SOUTH)
    return directory


# -- fingerprints and pin files ------------------------------------------------------------------


def test_fingerprint_is_sha256_of_the_der_in_lower_hex(pki: Path) -> None:
    der = der_of(pki / f"{NORTH}.crt")
    print_ = fingerprint(der)
    assert re.fullmatch(r"sha256:[0-9a-f]{64}", print_)
    assert print_ == "sha256:" + hashlib.sha256(der).hexdigest()
    assert fingerprint(der_of(pki / f"{SOUTH}.crt")) != print_


def test_load_pins_reads_what_write_pins_wrote(pki: Path) -> None:
    path = write_pins(pki, [SOUTH, NORTH, NORTH])
    assert path == pki / PINS_NAME
    assert load_pins(path) == {NORTH: fingerprint(der_of(pki / f"{NORTH}.crt")), SOUTH: fingerprint(der_of(pki / f"{SOUTH}.crt"))}


def test_write_pins_to_another_path(pki: Path, tmp_path: Path) -> None:
    path = write_pins(pki, [NORTH], path=tmp_path / "elsewhere.toml")
    assert path == tmp_path / "elsewhere.toml" and not (pki / PINS_NAME).exists()
    assert set(load_pins(path)) == {NORTH}


def test_write_pins_refuses_a_party_without_a_certificate(pki: Path) -> None:
    with pytest.raises(ConfigError, match=r"no certificate east-district\.crt to pin"):
        write_pins(pki, [NORTH, "east-district"])
    assert not (pki / PINS_NAME).exists()


def test_write_pins_refuses_an_invalid_name(pki: Path) -> None:
    with pytest.raises(ConfigError, match="party name"):
        write_pins(pki, ["../ca"])


def test_load_pins_refuses_a_file_without_a_pins_table(tmp_path: Path) -> None:
    path = tmp_path / "peers.toml"
    path.write_text('[pinned]\n"north-district" = "sha256:00"\n')
    with pytest.raises(ConfigError):
        load_pins(path)


# -- what PeerTrust accepts and rejects --------------------------------------------------------------


@pytest.mark.parametrize("pinned", [True, False], ids=["pinned", "ca"])
def test_a_good_certificate_is_accepted(pki: Path, pinned: bool) -> None:
    pins = load_pins(write_pins(pki, [NORTH, SOUTH])) if pinned else None
    trust = trust_in(pki, pins=pins)
    assert trust.mode == ("pinned" if pinned else "ca")
    der = der_of(pki / f"{NORTH}.crt")
    certificate, print_ = trust.check_certificate(NORTH, der)
    assert print_ == fingerprint(der)
    assert certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == NORTH


def test_a_wrong_common_name_is_rejected(pki: Path) -> None:
    with pytest.raises(CohortRejected, match=f"participant '{SOUTH}': its certificate is for '{NORTH}'"):
        trust_in(pki).check_certificate(SOUTH, der_of(pki / f"{NORTH}.crt"))


def test_a_certificate_from_a_foreign_ca_with_the_same_ca_name_is_rejected(pki: Path, tmp_path: Path) -> None:
    foreign = tmp_path / "foreign"
    init_ca(foreign)  # the same default common name "federation-ca", another key
    issue_certificate(foreign, NORTH)
    with pytest.raises(CohortRejected, match="signature does not verify against this federation's CA"):
        trust_in(pki).check_certificate(NORTH, der_of(foreign / f"{NORTH}.crt"))


def test_a_certificate_from_a_foreign_ca_with_another_name_is_rejected(pki: Path, tmp_path: Path) -> None:
    foreign = tmp_path / "foreign"
    init_ca(foreign, common_name="coordinator-ca")
    issue_certificate(foreign, NORTH)
    with pytest.raises(CohortRejected, match="not issued by this federation's CA"):
        trust_in(pki).check_certificate(NORTH, der_of(foreign / f"{NORTH}.crt"))


@pytest.mark.parametrize(
    "offset", [pytest.param(dt.timedelta(days=826), id="expired"), pytest.param(dt.timedelta(days=-1), id="not-yet-valid")]
)
def test_a_certificate_outside_its_validity_is_rejected(pki: Path, offset: dt.timedelta) -> None:
    """The default validity is 825 days; the clock is the trust's own, so no waiting."""
    later = dt.datetime.now(dt.UTC) + offset
    trust = trust_in(pki, clock=lambda: later)
    with pytest.raises(CohortRejected, match="its certificate is not valid now"):
        trust.check_certificate(NORTH, der_of(pki / f"{NORTH}.crt"))


def test_a_short_lived_certificate_expires_after_its_days(pki: Path) -> None:
    issue_certificate(pki, "east-district", days=1)
    der = der_of(pki / "east-district.crt")
    trust_in(pki, clock=lambda: dt.datetime.now(dt.UTC) + dt.timedelta(hours=23)).check_certificate("east-district", der)
    with pytest.raises(CohortRejected, match="not valid now"):
        trust_in(pki, clock=lambda: dt.datetime.now(dt.UTC) + dt.timedelta(days=2)).check_certificate("east-district", der)


def test_a_revoked_certificate_is_rejected_and_the_others_still_accepted(pki: Path) -> None:
    trust = trust_in(pki)  # built before the revocation: the CRL is re-read when it changes
    trust.check_certificate(NORTH, der_of(pki / f"{NORTH}.crt"))
    assert revoke_certificate(pki, NORTH) == pki / CRL_NAME
    with pytest.raises(CohortRejected, match=f"participant '{NORTH}': its certificate has been revoked"):
        trust.check_certificate(NORTH, der_of(pki / f"{NORTH}.crt"))
    trust.check_certificate(SOUTH, der_of(pki / f"{SOUTH}.crt"))


def test_revocations_accumulate(pki: Path) -> None:
    revoke_certificate(pki, NORTH)
    revoke_certificate(pki, SOUTH)
    trust = trust_in(pki)
    for name in (NORTH, SOUTH):
        with pytest.raises(CohortRejected, match="revoked"):
            trust.check_certificate(name, der_of(pki / f"{name}.crt"))
    crl = x509.load_pem_x509_crl((pki / CRL_NAME).read_bytes())
    assert len(list(crl)) == 2


def test_a_reissued_certificate_is_not_revoked_with_the_old_one(pki: Path) -> None:
    revoke_certificate(pki, NORTH)
    issue_certificate(pki, NORTH)
    trust_in(pki).check_certificate(NORTH, der_of(pki / f"{NORTH}.crt"))


@pytest.mark.parametrize("content", [pytest.param(b"not a revocation list", id="garbage"), pytest.param(b"", id="empty")])
def test_an_unusable_revocation_list_rejects_everyone(pki: Path, content: bytes) -> None:
    (pki / CRL_NAME).write_bytes(content)
    with pytest.raises(CohortRejected, match=f"the revocation list {CRL_NAME} is unusable"):
        trust_in(pki).check_certificate(SOUTH, der_of(pki / f"{SOUTH}.crt"))


def test_a_revocation_list_signed_by_another_ca_rejects_everyone(pki: Path, tmp_path: Path) -> None:
    """A forged CRL could otherwise un-revoke a certificate."""
    foreign = tmp_path / "foreign"
    init_ca(foreign)
    issue_certificate(foreign, NORTH)
    (pki / CRL_NAME).write_bytes(revoke_certificate(foreign, NORTH).read_bytes())
    with pytest.raises(CohortRejected, match=r"revocation list .* signature does not verify against the CA"):
        trust_in(pki).check_certificate(SOUTH, der_of(pki / f"{SOUTH}.crt"))


def test_a_repaired_revocation_list_is_used_again(pki: Path) -> None:
    trust = trust_in(pki)
    (pki / CRL_NAME).write_bytes(b"garbage")
    with pytest.raises(CohortRejected, match="revocation list"):
        trust.check_certificate(SOUTH, der_of(pki / f"{SOUTH}.crt"))
    (pki / CRL_NAME).unlink()
    revoke_certificate(pki, NORTH)
    trust.check_certificate(SOUTH, der_of(pki / f"{SOUTH}.crt"))


def test_an_unpinned_name_is_rejected(pki: Path) -> None:
    trust = trust_in(pki, pins=load_pins(write_pins(pki, [NORTH])))
    with pytest.raises(CohortRejected, match=f"participant '{SOUTH}': it is not among the parties this node accepts"):
        trust.check_certificate(SOUTH, der_of(pki / f"{SOUTH}.crt"))


def test_a_pinned_name_with_another_certificate_is_rejected(pki: Path) -> None:
    trust = trust_in(pki, pins=load_pins(write_pins(pki, [NORTH, SOUTH])))
    issue_certificate(pki, NORTH)  # the same CA, the same name, a new key: not the pinned one
    with pytest.raises(CohortRejected, match="its certificate is not the one pinned for it"):
        trust.check_certificate(NORTH, der_of(pki / f"{NORTH}.crt"))


def test_an_unparsable_certificate_is_rejected(pki: Path) -> None:
    with pytest.raises(CohortRejected, match="cannot be parsed"):
        trust_in(pki).check_certificate(NORTH, b"\x30\x03junk")


# -- signatures ---------------------------------------------------------------------------------------


def test_credentials_sign_and_peer_trust_verifies(pki: Path) -> None:
    north = credentials_of(Identity.in_directory(pki, NORTH))
    assert north.name == NORTH and north.certificate == der_of(pki / f"{NORTH}.crt")
    signature = north.sign(b"keys for round 1")
    assert trust_in(pki).verify(NORTH, north.certificate, b"keys for round 1", signature) == fingerprint(north.certificate)


def test_a_bad_signature_is_rejected(pki: Path) -> None:
    north = credentials_of(Identity.in_directory(pki, NORTH))
    south = credentials_of(Identity.in_directory(pki, SOUTH))
    trust = trust_in(pki)
    signature = north.sign(b"keys for round 1")
    bad = [
        (b"keys for round 2", signature),  # another message
        (b"keys for round 1", signature[:-1] + bytes([signature[-1] ^ 1])),  # tampered
        (b"keys for round 1", south.sign(b"keys for round 1")),  # another party's key
        (b"keys for round 1", b""),
    ]
    for message, sig in bad:
        with pytest.raises(CohortRejected, match=f"participant '{NORTH}': its signature does not verify"):
            trust.verify(NORTH, north.certificate, message, sig)


def test_a_valid_signature_does_not_save_a_rejected_certificate(pki: Path) -> None:
    north = credentials_of(Identity.in_directory(pki, NORTH))
    signature = north.sign(b"m")
    revoke_certificate(pki, NORTH)
    with pytest.raises(CohortRejected, match="revoked"):
        trust_in(pki).verify(NORTH, north.certificate, b"m", signature)
    with pytest.raises(CohortRejected, match="its certificate is for"):
        trust_in(pki).verify(SOUTH, north.certificate, b"m", signature)


def test_credentials_need_an_elliptic_curve_key(pki: Path) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, NORTH)])
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    with pytest.raises(ValueError, match="elliptic-curve"):
        Credentials.from_pem(certificate.public_bytes(serialization.Encoding.PEM), key_pem)


# -- the caller check for TLS connections ------------------------------------------------------------


def test_caller_refusal_names_revoked_callers_only(pki: Path) -> None:
    revoke_certificate(pki, NORTH)
    trust = trust_in(pki)
    assert trust.caller_refusal((pki / f"{NORTH}.crt").read_bytes()) == "its certificate has been revoked"
    assert trust.caller_refusal((pki / f"{SOUTH}.crt").read_bytes()) is None
    assert trust.caller_refusal(b"garbage") == "the caller's certificate cannot be parsed"


# -- the PKI directory: validity and revocation ---------------------------------------------------------


@pytest.mark.parametrize("days", [0, -1, 36501])
def test_issue_certificate_refuses_a_validity_out_of_range(pki: Path, days: int) -> None:
    with pytest.raises(ConfigError, match="validity must be 1 to 36500 days"):
        issue_certificate(pki, "east-district", days=days)
    assert not (pki / "east-district.crt").exists() and not (pki / "east-district.key").exists()


@pytest.mark.parametrize("days", [0, 36501])
def test_init_ca_refuses_a_validity_out_of_range(tmp_path: Path, days: int) -> None:
    with pytest.raises(ConfigError, match="validity"):
        init_ca(tmp_path / "ca", days=days)
    assert not (tmp_path / "ca" / "ca.key").exists()


@pytest.mark.parametrize("days", [1, 36500])
def test_issue_certificate_honours_the_days(pki: Path, days: int) -> None:
    certificate = x509.load_pem_x509_certificate(issue_certificate(pki, "east-district", days=days).cert.read_bytes())
    validity = certificate.not_valid_after_utc - certificate.not_valid_before_utc
    assert dt.timedelta(days=days) <= validity <= dt.timedelta(days=days, minutes=10)


def test_revoke_without_a_certificate_or_a_ca_is_a_config_error(pki: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"no certificate east-district\.crt to revoke"):
        revoke_certificate(pki, "east-district")
    with pytest.raises(ConfigError, match="no CA here"):
        revoke_certificate(tmp_path / "empty", NORTH)
    with pytest.raises(ConfigError, match="party name"):
        revoke_certificate(pki, "North District")
    assert not (pki / CRL_NAME).exists()


def test_the_crl_is_signed_by_the_ca_and_lists_the_serial(pki: Path) -> None:
    crl = x509.load_pem_x509_crl(revoke_certificate(pki, NORTH).read_bytes())
    ca = x509.load_pem_x509_certificate((pki / "ca.crt").read_bytes())
    assert crl.is_signature_valid(ca.public_key())  # type: ignore[arg-type]
    serial = x509.load_pem_x509_certificate((pki / f"{NORTH}.crt").read_bytes()).serial_number
    assert crl.get_revoked_certificate_by_serial_number(serial) is not None


# -- throwaway cohorts (in memory) ----------------------------------------------------------------------


def test_throwaway_cohort_pins_exactly_its_members() -> None:
    credentials, trust = throwaway_cohort(["a", "b"])
    assert trust.mode == "pinned"
    assert trust.pins == {name: fingerprint(c.certificate) for name, c in credentials.items()}
    for name, c in credentials.items():
        assert c.name == name
        assert trust.verify(name, c.certificate, b"m", c.sign(b"m")) == fingerprint(c.certificate)


def test_throwaway_cohort_without_pins_trusts_its_ca() -> None:
    credentials, trust = throwaway_cohort(["a"], pinned=False)
    assert trust.mode == "ca" and trust.pins is None
    trust.check_certificate("a", credentials["a"].certificate)


def test_two_throwaway_cohorts_do_not_trust_each_other() -> None:
    ours, our_trust = throwaway_cohort(["a"], pinned=False)
    theirs, their_trust = throwaway_cohort(["a"], pinned=False)
    with pytest.raises(CohortRejected, match="federation's CA"):
        our_trust.check_certificate("a", theirs["a"].certificate)
    with pytest.raises(CohortRejected, match="federation's CA"):
        their_trust.check_certificate("a", ours["a"].certificate)
