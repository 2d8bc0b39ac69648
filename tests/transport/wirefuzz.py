"""Seeded mutations of protobuf requests for fuzzing a node: wrong and extreme values, and damaged bytes."""

from __future__ import annotations

import random
import struct
from typing import Any

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

FLOATS = [0.0, -0.0, -1.0, 1e308, -1e308, float("nan"), float("inf"), float("-inf"), 5e-324, 0.5]
INTS = {
    FieldDescriptor.CPPTYPE_INT32: [0, -1, 2**31 - 1, -(2**31)],
    FieldDescriptor.CPPTYPE_INT64: [0, -1, 2**63 - 1, -(2**63), 1 << 40],
    FieldDescriptor.CPPTYPE_UINT32: [0, 1, 2, 3, 2**32 - 1, 10_000],
    FieldDescriptor.CPPTYPE_UINT64: [0, 1, 2**64 - 1, 2**63, 1 << 32],
}
STRINGS = ["", " ", "\x00", "\n\r\x1b[31m", "é" * 50, "../../etc/passwd", "%s%n{}", "A" * 201, "💥" * 100, "logreg", "raw", "*"]


def weird_string(rng: random.Random) -> str:
    r = rng.random()
    if r < 0.08:
        return "x" * rng.choice([10_000, 300_000, 1_000_000])
    if r < 0.3:
        return "".join(chr(rng.randrange(1, 0xD7FF)) for _ in range(rng.randrange(1, 300)))
    return rng.choice(STRINGS)


def weird_bytes(rng: random.Random) -> bytes:
    return rng.randbytes(rng.choice([0, 1, 31, 32, 33, 72, 500, 20_000, 300_000]))


def weird_scalar(f: FieldDescriptor, rng: random.Random, *, short: bool = False) -> Any:
    if f.cpp_type == FieldDescriptor.CPPTYPE_STRING:
        if f.type == FieldDescriptor.TYPE_BYTES:
            return rng.randbytes(rng.randrange(64)) if short else weird_bytes(rng)
        return rng.choice(STRINGS) if short else weird_string(rng)
    if f.cpp_type in (FieldDescriptor.CPPTYPE_DOUBLE, FieldDescriptor.CPPTYPE_FLOAT):
        return rng.choice(FLOATS)
    if f.cpp_type == FieldDescriptor.CPPTYPE_BOOL:
        return rng.random() < 0.5
    return rng.choice(INTS[f.cpp_type])


def weird_struct(target: Any, rng: random.Random) -> None:
    """Hyperparameters as no model takes them: nesting, nulls, non-finite numbers, huge lists and keys."""
    key = rng.choice(["hidden", "dropout", "x" * rng.choice([1, 100, 10_000]), "\n"])
    value: Any = rng.choice(
        [
            None,
            float("nan"),
            [1, [2, {"a": None}]],
            {"deep": {"er": [1.5]}},
            [4096] * rng.choice([8, 9, 100_000]),
            "s" * 500,
            True,
        ]
    )
    target.update({key: value})


def mutate_message(message: Message, rng: random.Random, depth: int = 0) -> None:
    """Set one field somewhere in `message` to a wrong or extreme value."""
    f = rng.choice(message.DESCRIPTOR.fields)
    if f.message_type is not None:
        if f.message_type.full_name == "google.protobuf.Struct":
            weird_struct(getattr(message, f.name), rng)
        elif f.is_repeated:
            items = getattr(message, f.name)
            if len(items) and rng.random() < 0.5:
                mutate_message(items[rng.randrange(len(items))], rng, depth + 1)
            else:
                template = items[0] if len(items) else None
                for _ in range(rng.choice([1, 2, 50, 3000])):
                    item = items.add()
                    if template is not None:
                        item.CopyFrom(template)  # duplicates: the same index, peer or tensor twice
        elif depth < 4 and rng.random() < 0.85:
            mutate_message(getattr(message, f.name), rng, depth + 1)
        else:
            message.ClearField(f.name)
    elif f.is_repeated:
        items = getattr(message, f.name)
        n = rng.choice([0, 1, 3, 1000, 20_000])
        del items[:]
        items.extend(weird_scalar(f, rng, short=n > 3) for _ in range(n))
    else:
        setattr(message, f.name, weird_scalar(f, rng))


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        out.append((n & 0x7F) | (0x80 if n > 0x7F else 0))
        n >>= 7
        if not n:
            return bytes(out)


def mutate_bytes(data: bytes, rng: random.Random) -> bytes:
    """Bit flips, truncation, insertions, overwrites, merges and forged fields of the serialized form."""
    b, op = bytearray(data), rng.randrange(8)
    if op == 0 and b:
        for _ in range(rng.randint(1, 8)):
            b[rng.randrange(len(b))] ^= 1 << rng.randrange(8)
    elif op == 1:
        del b[rng.randrange(len(b) + 1) :]
    elif op == 2:
        at = rng.randrange(len(b) + 1)
        b[at:at] = rng.randbytes(rng.randint(1, 16))
    elif op == 3 and b:
        at = rng.randrange(len(b))
        b[at : at + 8] = rng.randbytes(8)
    elif op == 4:
        return rng.randbytes(rng.randrange(256))
    elif op == 5:
        return bytes(b) * rng.choice([2, 3])  # a message merged with itself: repeated fields doubled
    elif op == 6:  # a length-delimited field, known or unknown, with a large payload
        number = rng.choice([1, 2, 3, 4, 12, 99, 536_870_911])
        payload = rng.randbytes(rng.choice([10, 1000, 100_000]))
        b += _varint(number << 3 | 2) + _varint(len(payload)) + payload
    else:  # a field of the wrong wire type, or a length that runs past the end
        b += rng.choice([b"\x0d" + struct.pack("<f", 1.0), b"\x0a\xff\xff\xff\xff\x0f", b"\x12\x05ab", b"\x08\x80\x80\x80"])
    return bytes(b)


def mutated(base: Message, rng: random.Random) -> bytes:
    """`base` serialized: as it is, mutated field by field, byte by byte, both, or replaced by random bytes."""
    r = rng.random()
    if r < 0.05:
        return base.SerializeToString()  # now and then the valid request itself
    if r < 0.15:
        return rng.randbytes(rng.randrange(512))
    if r < 0.4:
        return mutate_bytes(base.SerializeToString(), rng)
    message = type(base)()
    message.CopyFrom(base)
    for _ in range(rng.randint(1, 3)):
        mutate_message(message, rng)
    data = message.SerializeToString()
    return mutate_bytes(data, rng) if r > 0.9 else data


def mutated_stream(kind: type[Message], header: Message, chunks: list[bytes], rng: random.Random) -> list[bytes]:
    """A tensor stream of `kind` with its header and chunks: as sent, without its header, with two, garbage, cut short..."""
    good_header = kind(header=header).SerializeToString()
    good_chunks = [kind(chunk=c).SerializeToString() for c in chunks]
    shape = rng.randrange(9)
    if shape == 0:
        return [good_header, *good_chunks]
    if shape == 1:
        return good_chunks  # no header
    if shape == 2:
        return [good_header, good_header, *good_chunks]
    if shape == 3:
        return [
            good_header,
            *(kind(chunk=rng.randbytes(rng.choice([1, 60, 10_000]))).SerializeToString() for _ in range(rng.randint(1, 4))),
        ]
    if shape == 4:
        return [good_header, *good_chunks[: rng.randrange(len(good_chunks))]]  # cut short
    if shape == 5:
        return []
    if shape == 6:
        return [rng.randbytes(rng.randrange(200)) for _ in range(rng.randint(1, 5))]
    if shape == 7:
        return [mutated(kind(header=header), rng), *good_chunks]
    messages = [good_header, *good_chunks]
    at = rng.randrange(len(messages))
    messages[at] = mutate_bytes(messages[at], rng)
    return messages
