"""Who may call a node, and when: expiry read at every call, revoked and nameless certificates, policy summaries."""

from __future__ import annotations

import datetime as dt
import uuid
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from fedkit import COORDINATOR, PURPOSE, City, small_task

from federation.coordinator.client import NodeClient
from federation.errors import PolicyDenied, UnknownPeer
from federation.node.serve import start_node
from federation.task import RunContext
from federation.transport.tls import Identity, revoke_certificate
from federation.trust.authority import cert_pem, key_pem, new_certificate


def test_a_rule_that_expires_while_the_node_runs_stops_releasing_at_once(fresh_city: City) -> None:
    server, port, runtime = start_node(fresh_city.manifest("central-district"), listen="127.0.0.1:0")
    try:
        client = NodeClient("central-district", f"127.0.0.1:{port}", fresh_city.identity(COORDINATOR), timeout=30)
        task = small_task(rounds=1)
        run_id = f"raw-{uuid.uuid4().hex[:6]}"
        assert client.propose(RunContext(run_id, PURPOSE), task, cohort_size=3, release="raw").accepted
        assert client.export(RunContext(run_id, PURPOSE), task).num_rows > 0
        runtime.clock = lambda: dt.date(2028, 1, 1)  # the rule expires 2027-12-31; the process keeps running
        with pytest.raises(PolicyDenied, match="expired on 2027-12-31"):
            client.export(RunContext(run_id, PURPOSE), task)
        later = client.propose(RunContext(f"raw-{uuid.uuid4().hex[:6]}", PURPOSE), task, cohort_size=3, release="raw")
        assert not later.accepted and any("expired" in r for r in later.reasons)
    finally:
        server.stop(0)


def test_a_revoked_coordinator_certificate_is_unauthenticated(fresh_city: City) -> None:
    server, port, _ = start_node(fresh_city.manifest("north-district"), listen="127.0.0.1:0")
    try:
        client = NodeClient("north-district", f"127.0.0.1:{port}", fresh_city.identity(COORDINATOR), timeout=30)
        client.describe(RunContext("before", PURPOSE))
        revoke_certificate(fresh_city.pki, COORDINATOR)  # the node re-reads ca.crl when it changes
        with pytest.raises(UnknownPeer, match="revoked"):
            client.describe(RunContext("after", PURPOSE))
    finally:
        server.stop(0)


def test_a_damaged_revocation_list_refuses_callers_rather_than_forgetting_revocations(fresh_city: City) -> None:
    server, port, _ = start_node(fresh_city.manifest("north-district"), listen="127.0.0.1:0")
    try:
        (fresh_city.pki / "ca.crl").write_text("not a revocation list")
        client = NodeClient("north-district", f"127.0.0.1:{port}", fresh_city.identity(COORDINATOR), timeout=30)
        with pytest.raises(UnknownPeer, match="revocation list"):
            client.describe(RunContext("d", PURPOSE))
    finally:
        server.stop(0)


def test_a_certificate_without_a_common_name_is_unauthenticated(fresh_city: City) -> None:
    ca = x509.load_pem_x509_certificate((fresh_city.pki / "ca.crt").read_bytes())
    ca_key = serialization.load_pem_private_key((fresh_city.pki / "ca.key").read_bytes(), password=None)
    assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    nameless = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "no common name")]))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    (fresh_city.pki / "nameless.crt").write_bytes(cert_pem(nameless))
    (fresh_city.pki / "nameless.key").write_bytes(key_pem(key))
    server, port, _ = start_node(fresh_city.manifest("north-district"), listen="127.0.0.1:0")
    try:
        client = NodeClient("north-district", f"127.0.0.1:{port}", Identity.in_directory(fresh_city.pki, "nameless"), timeout=30)
        with pytest.raises(UnknownPeer, match="common name"):
            client.describe(RunContext("d", PURPOSE))
    finally:
        server.stop(0)


def test_the_policy_summary_names_no_other_recipient(fresh_city: City) -> None:
    text = fresh_city.policy("central-district").read_text()
    fresh_city.policy("central-district").write_text(text.replace('["city-platform"]', '["city-platform", "tax-office"]', 1))
    server, port, _ = start_node(fresh_city.manifest("central-district"), listen="127.0.0.1:0")
    try:
        client = NodeClient("central-district", f"127.0.0.1:{port}", fresh_city.identity(COORDINATOR), timeout=30)
        summary = client.describe(RunContext("d", PURPOSE)).policy_summary
        assert "city-platform" in summary and "tax-office" not in summary
    finally:
        server.stop(0)


def test_a_second_certificate_in_the_coordinators_name_is_unauthenticated(fresh_city: City, tmp_path: Path) -> None:
    """Whoever holds the CA key can mint 'city-platform' again; the pinned recipient certificate tells them apart."""
    ca = x509.load_pem_x509_certificate((fresh_city.pki / "ca.crt").read_bytes())
    ca_key = serialization.load_pem_private_key((fresh_city.pki / "ca.key").read_bytes(), password=None)
    assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
    certificate, key = new_certificate(ca, ca_key, COORDINATOR, days=1)
    rogue = tmp_path / "rogue"
    rogue.mkdir()
    (rogue / "ca.crt").write_bytes((fresh_city.pki / "ca.crt").read_bytes())
    (rogue / f"{COORDINATOR}.crt").write_bytes(cert_pem(certificate))
    (rogue / f"{COORDINATOR}.key").write_bytes(key_pem(key))
    server, port, _ = start_node(fresh_city.manifest("north-district"), listen="127.0.0.1:0")
    try:
        address = f"127.0.0.1:{port}"
        NodeClient("north-district", address, fresh_city.identity(COORDINATOR), timeout=30).describe(RunContext("d", PURPOSE))
        impostor = NodeClient("north-district", address, Identity.in_directory(rogue, COORDINATOR), timeout=30)
        with pytest.raises(UnknownPeer, match="not the one pinned"):
            impostor.describe(RunContext("d", PURPOSE))
    finally:
        server.stop(0)
