"""Who a node accepts as a fellow party: certificates, pins, revocation, signatures.

Pure (no gRPC). Secure aggregation counts a participant only when its keys
are signed by the holder of a certificate this package accepts, so a
coordinator cannot invent cohort members (see `PeerTrust`).
"""

from federation.trust.certificates import Credentials, PeerTrust, Revocations, fingerprint, load_pins

__all__ = ["Credentials", "PeerTrust", "Revocations", "fingerprint", "load_pins"]
