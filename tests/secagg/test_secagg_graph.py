"""Who masks with whom: the complete graph, and the SecAgg+ Harary graph drawn from the session seed."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from federation.secagg.graph import default_degree, neighbours


def complete(n: int) -> list[frozenset[int]]:
    return [frozenset(range(n)) - {i} for i in range(n)]


@pytest.mark.parametrize("n", [1, 2, 3, 7])
def test_degree_none_is_the_complete_graph(n: int) -> None:
    assert neighbours(n, degree=None, seed=b"s") == complete(n)


@pytest.mark.parametrize(("n", "degree"), [(3, 2), (4, 3), (5, 4), (5, 9), (4, 5), (2, 1), (2, 2)])
def test_degree_at_least_n_minus_1_is_the_complete_graph(n: int, degree: int) -> None:
    """Including odd degrees: at n - 1 or more there is nothing to choose."""
    assert neighbours(n, degree=degree, seed=b"s") == complete(n)


@st.composite
def sparse(draw: st.DrawFn) -> tuple[int, int]:
    n = draw(st.integers(4, 80))
    degree = 2 * draw(st.integers(1, (n - 2) // 2))  # even, 2 <= degree < n - 1
    return n, degree


@settings(max_examples=60, deadline=None)
@given(sparse(), st.binary(min_size=0, max_size=40))
def test_secagg_plus_graph_is_symmetric_and_regular(case: tuple[int, int], seed: bytes) -> None:
    n, degree = case
    graph = neighbours(n, degree=degree, seed=seed)
    assert len(graph) == n
    for i, adjacent in enumerate(graph):
        assert i not in adjacent
        assert len(adjacent) == degree
        assert adjacent <= set(range(n))
        for j in adjacent:
            assert i in graph[j]


@settings(max_examples=30, deadline=None)
@given(sparse(), st.binary(min_size=0, max_size=40))
def test_secagg_plus_graph_is_connected(case: tuple[int, int], seed: bytes) -> None:
    """A Harary graph is connected, so no group of nodes masks only among itself."""
    n, degree = case
    graph = neighbours(n, degree=degree, seed=seed)
    reached, frontier = {0}, [0]
    while frontier:
        for j in graph[frontier.pop()] - reached:
            reached.add(j)
            frontier.append(j)
    assert reached == set(range(n))


def test_secagg_plus_graph_is_a_function_of_the_seed() -> None:
    assert neighbours(40, degree=6, seed=b"session-a") == neighbours(40, degree=6, seed=b"session-a")
    assert neighbours(40, degree=6, seed=b"session-a") != neighbours(40, degree=6, seed=b"session-b")


def test_secagg_plus_graph_is_not_the_plain_ring() -> None:
    """The ring runs over a seeded permutation: index order alone must not decide neighbours."""
    ring = [frozenset({(i - 1) % 40, (i + 1) % 40}) for i in range(40)]
    assert neighbours(40, degree=2, seed=b"session-a") != ring


@pytest.mark.parametrize(("n", "degree"), [(10, 3), (10, 5), (10, 7), (6, 1)])
def test_odd_degree_below_n_minus_1_is_refused(n: int, degree: int) -> None:
    with pytest.raises(ValueError, match="even"):
        neighbours(n, degree=degree, seed=b"s")


@pytest.mark.parametrize("degree", [0, -2])
def test_degree_below_two_is_refused(degree: int) -> None:
    with pytest.raises(ValueError, match=">= 2"):
        neighbours(10, degree=degree, seed=b"s")


@pytest.mark.parametrize("n", [0, -1])
def test_a_graph_needs_a_node(n: int) -> None:
    with pytest.raises(ValueError, match="at least one node"):
        neighbours(n, degree=None, seed=b"s")


@pytest.mark.parametrize("n", [3, 4, 5, 16, 17, 33, 100, 1000])
def test_default_degree_is_a_usable_even_degree(n: int) -> None:
    degree = default_degree(n)
    assert degree % 2 == 0 and 2 <= degree <= n - 1
    graph = neighbours(n, degree=degree, seed=b"s")
    assert all(len(adjacent) == degree for adjacent in graph)


def test_default_degree_grows_like_2_log2_n() -> None:
    assert default_degree(1000) == 20
    assert default_degree(1024) == 20
    assert default_degree(1025) == 22


def test_default_degree_for_two_nodes_is_usable() -> None:
    assert neighbours(2, degree=default_degree(2), seed=b"s") == complete(2)
