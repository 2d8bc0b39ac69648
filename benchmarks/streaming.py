"""Memory and speed of moving a large model as a chunked stream.

Compares, in one run and one process, the chunked path a node uses
(`iter_chunks` on the sender, `TensorAssembler` on the receiver) with the
naive path (serialise the whole model to one bytes object, parse it back).
Peak memory is traced with tracemalloc (numpy reports its buffers to it) and
shown as a multiple of the payload: the chunked path should stay near 1x
(the received copy) plus one chunk, the naive one near 3x.

    python benchmarks/streaming.py [--mb 128]
"""

from __future__ import annotations

import argparse
import time
import tracemalloc
from collections.abc import Callable

import numpy as np

from federation.transport.streaming import TensorAssembler, iter_chunks, tensor_header

Arrays = list[tuple[str, np.ndarray]]


def model_of(megabytes: int) -> Arrays:
    rng = np.random.default_rng(0)
    per_layer = megabytes * 2**20 // 4 // 4
    return [(f"layer{i}.weight", rng.standard_normal(per_layer, dtype=np.float32)) for i in range(4)]


def chunked(arrays: Arrays) -> Arrays:
    assembler = TensorAssembler(tensor_header(arrays))
    for chunk in iter_chunks(arrays):
        assembler.feed(chunk)
    return assembler.finish()


def naive(arrays: Arrays) -> Arrays:
    payload = b"".join(a.tobytes() for _, a in arrays)
    result, offset = [], 0
    for name, a in arrays:
        result.append((name, np.frombuffer(payload[offset : offset + a.nbytes], dtype=a.dtype).reshape(a.shape).copy()))
        offset += a.nbytes
    return result


def measure(fn: Callable[[Arrays], Arrays], arrays: Arrays) -> tuple[float, int]:
    tracemalloc.start()
    tracemalloc.reset_peak()
    start = time.perf_counter()
    received = fn(arrays)
    seconds = time.perf_counter() - start
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert all(np.array_equal(a, b) for (_, a), (_, b) in zip(arrays, received, strict=True))
    del received
    return seconds, peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=128, help="model size in MiB")
    args = parser.parse_args()
    arrays = model_of(args.mb)
    payload = sum(a.nbytes for _, a in arrays)
    print(f"payload: {payload / 2**20:.0f} MiB in {len(arrays)} tensors")
    print(f"{'path':<10} {'seconds':>8} {'MiB/s':>8} {'peak MiB':>9} {'peak / payload':>15}")
    results = {}
    for name, fn in (("naive", naive), ("chunked", chunked)):
        seconds, peak = measure(fn, arrays)
        results[name] = (seconds, peak)
        print(f"{name:<10} {seconds:>8.3f} {payload / 2**20 / seconds:>8.0f} {peak / 2**20:>9.0f} {peak / payload:>15.2f}")
    print(f"chunked peak memory is {results['chunked'][1] / results['naive'][1]:.2f}x the naive path's")


if __name__ == "__main__":
    main()
