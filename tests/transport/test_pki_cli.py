"""`federation pki`: validity, several names at once, pin files and revocation, as a department's IT staff runs it."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from cryptography import x509
from fedkit import federation_cli

from federation.trust.certificates import load_pins


def test_issue_pin_and_revoke_from_the_command_line(tmp_path: Path) -> None:
    pki = tmp_path / "pki"
    assert federation_cli("pki", "init", "--dir", str(pki), "--days", "30", cwd=tmp_path).returncode == 0
    issued = federation_cli("pki", "issue", "north-district", "city-platform", "--dir", str(pki), "--days", "7", cwd=tmp_path)
    assert issued.returncode == 0, issued.stderr
    certificate = x509.load_pem_x509_certificate((pki / "north-district.crt").read_bytes())
    lifetime = certificate.not_valid_after_utc - certificate.not_valid_before_utc
    assert dt.timedelta(days=7) <= lifetime <= dt.timedelta(days=7, minutes=10)

    pinned = federation_cli(
        "pki", "pin", "north-district", "--dir", str(pki), "--out", str(tmp_path / "peers.toml"), cwd=tmp_path
    )
    assert pinned.returncode == 0, pinned.stderr
    assert list(load_pins(tmp_path / "peers.toml")) == ["north-district"]

    revoked = federation_cli("pki", "revoke", "city-platform", "--dir", str(pki), cwd=tmp_path)
    assert revoked.returncode == 0, revoked.stderr
    crl = x509.load_pem_x509_crl((pki / "ca.crl").read_bytes())
    serial = x509.load_pem_x509_certificate((pki / "city-platform.crt").read_bytes()).serial_number
    assert crl.get_revoked_certificate_by_serial_number(serial) is not None


def test_bad_validity_and_unknown_names_are_clear_errors(tmp_path: Path) -> None:
    pki = tmp_path / "pki"
    bad_days = federation_cli("pki", "init", "--dir", str(pki), "--days", "0", cwd=tmp_path)
    assert bad_days.returncode == 2 and "1 to 36500 days" in bad_days.stderr
    assert not (pki / "ca.key").exists()
    assert federation_cli("pki", "init", "--dir", str(pki), cwd=tmp_path).returncode == 0
    missing = federation_cli("pki", "revoke", "nobody", "--dir", str(pki), cwd=tmp_path)
    assert missing.returncode == 2 and "no certificate nobody.crt" in missing.stderr
    unpinnable = federation_cli("pki", "pin", "nobody", "--dir", str(pki), cwd=tmp_path)
    assert unpinnable.returncode == 2 and "no certificate nobody.crt to pin" in unpinnable.stderr


def test_issue_for_every_party_of_an_experiment_at_once(tmp_path: Path) -> None:
    from fedkit import load_script

    load_script(Path(__file__).resolve().parents[2] / "examples" / "many_parties" / "generate.py", "many_parties_pki").generate(
        tmp_path, parties=12
    )
    pki = tmp_path / ".pki"
    assert federation_cli("pki", "init", "--dir", str(pki), cwd=tmp_path).returncode == 0
    issued = federation_cli("pki", "issue", "--experiment", "experiment.toml", cwd=tmp_path)  # into the experiment's PKI
    assert issued.returncode == 0, issued.stderr
    assert {p.stem for p in pki.glob("*.crt")} == {"ca", "city-platform", *(f"authority-{i:03d}" for i in range(12))}
    nothing = federation_cli("pki", "issue", "--dir", str(pki), cwd=tmp_path)
    assert nothing.returncode == 2 and "--experiment" in nothing.stderr
