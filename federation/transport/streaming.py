"""Chunked tensor streams: a header announces the tensors, raw bytes follow.

The sender copies one chunk at a time out of each array; the receiver
preallocates every array from the header and fills it in place, so moving a
model costs one copy plus a chunk, whatever its size. The header is checked
before anything is allocated: a peer cannot make a node allocate more than
`max_bytes` or send bytes that do not fit the announced shapes.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence

import numpy as np

from federation.errors import InvalidRequest
from federation.proto.v1 import node_pb2 as pb
from federation.task import MAX_NAME

CHUNK_BYTES = 1 << 20
MAX_TENSOR_BYTES = 4 << 30
MAX_TENSORS = 256  # a header announcing more is refused before anything is allocated
MAX_DIMS = 8
ALLOWED_DTYPES = frozenset({"<f4", "<f8", "<i4", "<i8", "<u4", "|u1", "|b1"})

NamedArrays = list[tuple[str, np.ndarray]]


def tensor_header(arrays: Sequence[tuple[str, np.ndarray]]) -> pb.TensorHeader:
    """Describe `arrays` (name, dtype, shape) without their values."""
    header = pb.TensorHeader()
    total = 0
    for name, array in arrays:
        dtype = array.dtype.newbyteorder("<") if array.dtype.byteorder == ">" else array.dtype
        header.tensors.add(name=name, dtype=dtype.str, shape=list(array.shape))
        total += array.nbytes
    header.total_bytes = total
    return header


def iter_chunks(arrays: Sequence[tuple[str, np.ndarray]], *, chunk_bytes: int = CHUNK_BYTES) -> Iterator[bytes]:
    """Yield the arrays' little-endian bytes, one bounded chunk at a time."""
    for _, array in arrays:
        contiguous = np.ascontiguousarray(array.astype(array.dtype.newbyteorder("<"), copy=False))
        flat = memoryview(contiguous.reshape(-1).view(np.uint8))  # type: ignore[arg-type]
        for start in range(0, len(flat), chunk_bytes):
            yield bytes(flat[start : start + chunk_bytes])


class TensorAssembler:
    """Fills preallocated arrays from a stream of chunks announced by a header."""

    def __init__(self, header: pb.TensorHeader, *, max_bytes: int = MAX_TENSOR_BYTES) -> None:
        self._names: list[str] = []
        self._arrays: list[np.ndarray] = []
        total = 0
        if len(header.tensors) > MAX_TENSORS:
            raise InvalidRequest(f"{len(header.tensors)} tensors announced; at most {MAX_TENSORS} are allowed")
        for spec in header.tensors:
            if len(spec.name) > MAX_NAME or not spec.name.isprintable():
                raise InvalidRequest(f"a tensor name must be at most {MAX_NAME} printable characters")
            if spec.dtype not in ALLOWED_DTYPES:
                raise InvalidRequest(f"tensor {spec.name!r}: dtype {spec.dtype[:16]!r} is not one of {sorted(ALLOWED_DTYPES)}")
            if len(spec.shape) > MAX_DIMS or any(d < 0 for d in spec.shape):
                raise InvalidRequest(f"tensor {spec.name!r}: invalid shape {list(spec.shape)[: MAX_DIMS + 1]}")
            dtype = np.dtype(spec.dtype)
            size = math.prod(spec.shape) * dtype.itemsize  # Python ints: no wrap-around
            total += size
            if total > max_bytes:
                raise InvalidRequest(f"tensors exceed the limit of {max_bytes} bytes")
            self._names.append(spec.name)
            self._arrays.append(np.empty(tuple(spec.shape), dtype=dtype))
        if total != header.total_bytes:
            raise InvalidRequest(f"tensor header announces {header.total_bytes} bytes but its shapes need {total}")
        self._views = [a.reshape(-1).view(np.uint8) for a in self._arrays]
        self._index = 0
        self._offset = 0
        self.received = 0

    def feed(self, chunk: bytes) -> None:
        """Copy one chunk into place; more bytes than announced is an error."""
        data = memoryview(chunk)
        while data:
            while self._index < len(self._views) and self._offset == len(self._views[self._index]):
                self._index, self._offset = self._index + 1, 0
            if self._index == len(self._views):
                raise InvalidRequest("the stream carries more bytes than its tensor header announced")
            view = self._views[self._index]
            take = min(len(data), len(view) - self._offset)
            view[self._offset : self._offset + take] = np.frombuffer(data[:take], dtype=np.uint8)
            self._offset += take
            self.received += take
            data = data[take:]

    def finish(self) -> NamedArrays:
        """Return the completed arrays; a short stream is an error."""
        expected = sum(len(v) for v in self._views)
        if self.received != expected:
            raise InvalidRequest(f"the stream ended after {self.received} of {expected} announced bytes")
        return list(zip(self._names, self._arrays, strict=True))
