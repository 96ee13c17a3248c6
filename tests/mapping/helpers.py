"""Shared builders for the mapping tests: canonical instances and a hypothesis strategy."""

from __future__ import annotations

import math

from hypothesis import strategies as st

from jupiter.mapping import Edge, LinkCost, Problem

# Topcuoglu, Hariri and Wu (IEEE TPDS 2002), Fig. 2: 10 tasks, 3 processors.
# Communication costs are the same for every pair of distinct processors.
TOPCUOGLU_EXEC = [
    [14, 16, 9],
    [13, 19, 18],
    [11, 13, 19],
    [13, 8, 17],
    [12, 13, 10],
    [13, 16, 9],
    [7, 15, 11],
    [5, 11, 14],
    [18, 12, 20],
    [21, 7, 16],
]
TOPCUOGLU_EDGES = [
    (1, 2, 18),
    (1, 3, 12),
    (1, 4, 9),
    (1, 5, 11),
    (1, 6, 14),
    (2, 8, 19),
    (2, 9, 16),
    (3, 7, 23),
    (4, 8, 27),
    (4, 9, 23),
    (5, 9, 13),
    (6, 8, 15),
    (7, 10, 17),
    (8, 10, 11),
    (9, 10, 13),
]


def full_links(nodes: list[str], a: float = 0.0, b: float = 1.0, c: float = 0.0) -> dict[tuple[str, str], LinkCost]:
    """The same quadratic link between every ordered pair of distinct nodes."""
    return {(u, v): LinkCost(a, b, c) for u in nodes for v in nodes if u != v}


def topcuoglu() -> Problem:
    """The paper's example with data size = communication cost and 1 s/byte links."""
    nodes = ["P1", "P2", "P3"]
    return Problem(
        tasks=[f"n{i}" for i in range(1, 11)],
        nodes=nodes,
        exec_times=TOPCUOGLU_EXEC,
        edges=[Edge(f"n{p}", f"n{c}", s) for p, c, s in TOPCUOGLU_EDGES],
        links=full_links(nodes),
    )


def chain(exec_times: list[list[float]], sizes: list[float], b: float = 1.0) -> Problem:
    """A chain t0 -> t1 -> ... with the given execution rows and edge sizes."""
    n_nodes = len(exec_times[0])
    nodes = [f"n{k}" for k in range(n_nodes)]
    tasks = [f"t{i}" for i in range(len(exec_times))]
    edges = [Edge(tasks[i], tasks[i + 1], s) for i, s in enumerate(sizes)]
    return Problem(tasks, nodes, exec_times, edges, full_links(nodes, b=b))


@st.composite
def problems(draw: st.DrawFn, max_tasks: int = 12, max_nodes: int = 4) -> Problem:
    """Small random problems: any DAG shape, unrelated machines, quadratic links,
    some inf execution times, zero-cost tasks and zero-byte edges included."""
    n_tasks = draw(st.integers(1, max_tasks))
    n_nodes = draw(st.integers(1, max_nodes))
    nodes = [f"n{k}" for k in range(n_nodes)]
    tasks = [f"t{i}" for i in range(n_tasks)]
    cost = st.one_of(st.just(0.0), st.floats(0.1, 20.0), st.just(math.inf))
    rows = []
    for _ in tasks:
        row = draw(st.lists(cost, min_size=n_nodes, max_size=n_nodes))
        if all(math.isinf(x) for x in row):
            row[draw(st.integers(0, n_nodes - 1))] = draw(st.floats(0.1, 20.0))
        rows.append(row)
    edges = []
    for j in range(1, n_tasks):
        for i in range(j):
            if draw(st.booleans()) and draw(st.booleans()):
                edges.append(Edge(tasks[i], tasks[j], draw(st.one_of(st.just(0.0), st.floats(0.0, 50.0)))))
    coef = st.floats(0.0, 0.01)
    links = {
        (u, v): LinkCost(draw(coef), draw(st.floats(0.0, 1.0)), draw(st.floats(0.0, 2.0)))
        for u in nodes
        for v in nodes
        if u != v
    }
    return Problem(tasks, nodes, rows, edges, links)
