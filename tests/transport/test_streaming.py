"""federation.transport.streaming: tensors cross the wire in bounded chunks and arrive exactly as sent."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from federation.errors import InvalidRequest
from federation.proto.v1 import node_pb2 as pb
from federation.transport.streaming import ALLOWED_DTYPES, TensorAssembler, iter_chunks, tensor_header

DTYPES = [np.dtype(d) for d in sorted(ALLOWED_DTYPES)] + [np.dtype(">f4"), np.dtype(">i8")]


def named_arrays() -> st.SearchStrategy[list[tuple[str, np.ndarray]]]:
    array = st.sampled_from(DTYPES).flatmap(
        lambda dtype: hnp.arrays(dtype, hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=5))
    )
    return st.lists(array, min_size=1, max_size=5).map(lambda arrays: [(f"t{i}", a) for i, a in enumerate(arrays)])


def receive(header: pb.TensorHeader, chunks: list[bytes], *, max_bytes: int = 1 << 20) -> list[tuple[str, np.ndarray]]:
    assembler = TensorAssembler(header, max_bytes=max_bytes)
    for chunk in chunks:
        assembler.feed(chunk)
    return assembler.finish()


def header_of(*specs: tuple[str, str, list[int]], total: int) -> pb.TensorHeader:
    header = pb.TensorHeader(total_bytes=total)
    for name, dtype, shape in specs:
        header.tensors.add(name=name, dtype=dtype, shape=shape)
    return header


@settings(max_examples=60, deadline=None)
@given(named_arrays(), st.integers(1, 17))
def test_arrays_round_trip_through_small_chunks(arrays: list[tuple[str, np.ndarray]], chunk_bytes: int) -> None:
    header = tensor_header(arrays)
    chunks = list(iter_chunks(arrays, chunk_bytes=chunk_bytes))
    received = receive(header, chunks)
    assert [n for n, _ in received] == [n for n, _ in arrays]
    for (_, sent), (_, got) in zip(arrays, received, strict=True):
        assert got.shape == sent.shape
        assert got.dtype == (sent.dtype.newbyteorder("<") if sent.dtype.byteorder == ">" else sent.dtype)
        np.testing.assert_array_equal(got, sent)


@settings(deadline=None)
@given(named_arrays(), st.integers(1, 64))
def test_no_chunk_exceeds_chunk_bytes_and_none_is_wasted(arrays: list[tuple[str, np.ndarray]], chunk_bytes: int) -> None:
    chunks = list(iter_chunks(arrays, chunk_bytes=chunk_bytes))
    assert all(0 < len(c) <= chunk_bytes for c in chunks)
    assert sum(len(c) for c in chunks) == sum(a.nbytes for _, a in arrays)
    assert len(chunks) == sum(-(-a.nbytes // chunk_bytes) for _, a in arrays)


def test_the_header_announces_names_dtypes_shapes_and_total() -> None:
    arrays = [("w", np.zeros((2, 3), dtype=np.float32)), ("b", np.zeros(4, dtype=">i8"))]
    header = tensor_header(arrays)
    assert [(t.name, t.dtype, list(t.shape)) for t in header.tensors] == [("w", "<f4", [2, 3]), ("b", "<i8", [4])]
    assert header.total_bytes == 24 + 32


def test_a_non_contiguous_array_is_sent_in_logical_order() -> None:
    base = np.arange(12, dtype=np.int32).reshape(3, 4)
    arrays = [("t", base.T)]
    [(_, got)] = receive(tensor_header(arrays), list(iter_chunks(arrays, chunk_bytes=5)))
    np.testing.assert_array_equal(got, base.T)


def test_a_chunk_may_span_several_tensors() -> None:
    arrays = [("a", np.arange(3, dtype=np.uint8)), ("b", np.arange(2, dtype=np.uint8)), ("c", np.ones(1, dtype=bool))]
    payload = b"".join(iter_chunks(arrays))
    received = receive(tensor_header(arrays), [payload[:4], payload[4:]])
    for (_, sent), (_, got) in zip(arrays, received, strict=True):
        np.testing.assert_array_equal(got, sent)


def test_too_many_bytes_are_refused() -> None:
    arrays = [("w", np.ones(4, dtype=np.float32))]
    assembler = TensorAssembler(tensor_header(arrays))
    for chunk in iter_chunks(arrays):
        assembler.feed(chunk)
    with pytest.raises(InvalidRequest, match="more bytes than its tensor header announced"):
        assembler.feed(b"\x00")


def test_too_few_bytes_are_refused() -> None:
    arrays = [("w", np.ones(4, dtype=np.float32))]
    assembler = TensorAssembler(tensor_header(arrays))
    assembler.feed(b"".join(iter_chunks(arrays))[:-1])
    with pytest.raises(InvalidRequest, match="ended after 15 of 16"):
        assembler.finish()


def test_a_header_whose_total_disagrees_with_its_shapes_is_refused() -> None:
    with pytest.raises(InvalidRequest, match="announces 100 bytes but its shapes need 24"):
        TensorAssembler(header_of(("w", "<f4", [2, 3]), total=100))


@pytest.mark.parametrize("dtype", ["<f2", "|O", "<c16", "<U4", ">f4", "not-a-dtype"])
def test_a_disallowed_dtype_is_refused(dtype: str) -> None:
    with pytest.raises(InvalidRequest, match="is not one of"):
        TensorAssembler(header_of(("w", dtype, [2]), total=8))


def test_the_sender_does_not_check_dtypes_but_the_receiver_does() -> None:
    arrays = [("w", np.zeros(2, dtype=np.float16))]
    with pytest.raises(InvalidRequest):
        TensorAssembler(tensor_header(arrays))


def test_a_negative_dimension_is_refused() -> None:
    with pytest.raises(InvalidRequest, match="invalid shape"):
        TensorAssembler(header_of(("w", "<f4", [3, -1]), total=0))


def test_more_than_eight_dimensions_are_refused() -> None:
    with pytest.raises(InvalidRequest, match="invalid shape"):
        TensorAssembler(header_of(("w", "|u1", [1] * 9), total=1))


def test_a_header_over_max_bytes_is_refused_before_allocating() -> None:
    with pytest.raises(InvalidRequest, match="exceed the limit of 1000 bytes"):
        TensorAssembler(header_of(("a", "<f8", [100]), ("b", "<f8", [100]), total=1600), max_bytes=1000)
    with pytest.raises(InvalidRequest, match="exceed the limit"):
        TensorAssembler(header_of(("huge", "<f8", [1 << 40]), total=8 << 40), max_bytes=1 << 30)


def test_a_header_exactly_at_max_bytes_is_accepted() -> None:
    assembler = TensorAssembler(header_of(("a", "<f8", [125]), total=1000), max_bytes=1000)
    assembler.feed(bytes(1000))
    [(_, array)] = assembler.finish()
    assert array.shape == (125,)


def test_an_empty_stream_of_empty_tensors_finishes() -> None:
    arrays = [("empty", np.zeros((0, 3), dtype=np.float32))]
    assert list(iter_chunks(arrays)) == []
    [(name, array)] = receive(tensor_header(arrays), [])
    assert name == "empty" and array.shape == (0, 3)


def test_a_shape_whose_size_overflows_is_an_invalid_request() -> None:
    with pytest.raises(InvalidRequest):
        TensorAssembler(header_of(("w", "|u1", [2**62, 4]), total=0), max_bytes=1 << 20)
