"""Secure aggregation (Bonawitz et al. 2017, with the SecAgg+ graph of Bell et al. 2020).

The coordinator learns only the sum of the surviving nodes' inputs. Pure:
no gRPC here; `node` and `coordinator` carry the four phases over the wire.
"""

from federation.secagg.client import SecAggClient
from federation.secagg.config import SecAggConfig
from federation.secagg.server import SecAggServer

__all__ = ["SecAggClient", "SecAggConfig", "SecAggServer"]
