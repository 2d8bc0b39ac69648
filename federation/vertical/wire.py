"""Named ring arrays to bytes and back: the payload of a sealed letter (uint64 only, so no pickle and no dtype games)."""

from __future__ import annotations

import struct
from collections.abc import Mapping

import numpy as np

from federation.errors import InvalidRequest
from federation.vertical.ring import RING

MAX_NAME = 200
MAX_DIMS = 3


def pack(items: Mapping[str, np.ndarray]) -> bytes:
    parts = [struct.pack(">I", len(items))]
    for name, value in items.items():
        raw = name.encode()
        array = np.ascontiguousarray(value, dtype=RING)
        parts.append(
            struct.pack(">H", len(raw)) + raw + struct.pack(">B", array.ndim) + struct.pack(f">{array.ndim}Q", *array.shape)
        )
        parts.append(array.astype("<u8", copy=False).tobytes())
    return b"".join(parts)


def unpack(data: bytes) -> dict[str, np.ndarray]:
    """The arrays of `pack`; a payload that is cut short, too long or malformed is refused whole."""
    view = memoryview(data)
    try:
        (count,) = struct.unpack_from(">I", view, 0)
        offset, out = 4, {}
        for _ in range(count):
            (length,) = struct.unpack_from(">H", view, offset)
            if length > MAX_NAME:
                raise InvalidRequest(f"an array name of {length} bytes is longer than {MAX_NAME}")
            name = bytes(view[offset + 2 : offset + 2 + length]).decode()
            offset += 2 + length
            (ndim,) = struct.unpack_from(">B", view, offset)
            if ndim > MAX_DIMS:
                raise InvalidRequest(f"array {name[:64]!r} has {ndim} dimensions, more than {MAX_DIMS}")
            shape = struct.unpack_from(f">{ndim}Q", view, offset + 1)
            offset += 1 + 8 * ndim
            size = 8 * int(np.prod(shape, dtype=np.uint64)) if ndim else 8
            if offset + size > len(view) or name in out:
                raise InvalidRequest(f"array {name[:64]!r} is cut short or repeated")
            out[name] = np.frombuffer(view[offset : offset + size], dtype="<u8").astype(RING).reshape(shape)
            offset += size
    except (struct.error, UnicodeDecodeError, OverflowError, ValueError) as error:
        raise InvalidRequest(f"a vertical payload is malformed: {error}") from None
    if offset != len(view):
        raise InvalidRequest(f"a vertical payload has {len(view) - offset} bytes after its last array")
    return out
