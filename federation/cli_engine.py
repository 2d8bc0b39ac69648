"""`--engine`: our gRPC nodes, or every node a virtual node on Flower's Simulation Engine."""

from __future__ import annotations

from dataclasses import dataclass

from federation.errors import ConfigError

ENGINES = ("grpc", "flower-simulation")
ENGINE_HELP = "grpc: our node processes (default); flower-simulation: every node a virtual node on Flower's Simulation Engine."
WORKERS_HELP = "flower-simulation: Ray workers on this machine, one CPU each (default: every core)."
RAY_HELP = "flower-simulation: the address of a Ray cluster to run the virtual nodes on."


@dataclass(frozen=True)
class Engine:
    name: str
    workers: int | None = None
    ray_address: str | None = None

    @classmethod
    def parse(cls, name: str, *, workers: int | None, ray_address: str | None) -> Engine:
        if name not in ENGINES:
            raise ConfigError("--engine", [f"{name!r} is not an engine; choose one of {list(ENGINES)}"])
        if name == "grpc" and (workers is not None or ray_address is not None):
            raise ConfigError("--engine", ["--workers and --ray-address go with --engine flower-simulation"])
        return cls(name, workers, ray_address)
