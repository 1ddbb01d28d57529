"""Draw a NAS-Bench-101 cell as a labelled graph (networkx for the graph, matplotlib with Agg).

Vertices stand in columns by depth (longest path from the input). An edge to the next column is a
straight line; a longer edge, or one a straight line would take through another vertex, is routed as a
curve above or below every vertex it passes, and each route is checked against every box it does not
connect before it is drawn, so no edge passes through or touches a vertex it does not join.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from searchlab.search_spaces.nasbench101 import spec as nb_spec

COLORS = {nb_spec.INPUT: "#9ecae1", nb_spec.OUTPUT: "#9ecae1", nb_spec.CONV3X3: "#fdae6b",
          nb_spec.CONV1X1: "#fdd0a2", nb_spec.MAXPOOL3X3: "#a1d99b"}
SHORT = {nb_spec.INPUT: "input", nb_spec.OUTPUT: "output", nb_spec.CONV3X3: "conv\n3x3",
         nb_spec.CONV1X1: "conv\n1x1", nb_spec.MAXPOOL3X3: "max-pool\n3x3"}
COLUMN = 1.6          # distance between columns (depths), in data units
ROW = 1.0             # distance between vertices of one column
BOX = (0.72, 0.5)     # vertex box width, height
CLEARANCE = 0.08      # the least gap between an edge and a box it does not connect


def to_networkx(genome: Any):
    """The pruned cell as a networkx DiGraph with an `op` attribute per vertex."""
    import networkx as nx

    g = nb_spec.validate(genome)
    graph = nx.DiGraph()
    for v, op in enumerate(g["ops"]):
        graph.add_node(v, op=op)
    m = np.asarray(g["matrix"])
    graph.add_edges_from(zip(*np.nonzero(m)))
    return graph


def layout(graph) -> dict[int, tuple[float, float]]:
    """Vertex centres: x by depth, the vertices of one depth spread evenly around y = 0."""
    import networkx as nx

    depth: dict[int, int] = {}
    for v in nx.topological_sort(graph):
        depth[v] = max((depth[u] + 1 for u in graph.predecessors(v)), default=0)
    columns: dict[int, list[int]] = {}
    for v, d in depth.items():
        columns.setdefault(d, []).append(v)
    return {v: (d * COLUMN, (i - (len(vs) - 1) / 2) * ROW) for d, vs in columns.items() for i, v in enumerate(vs)}


def inside(points: np.ndarray, centre: tuple[float, float], pad: float = 0.0) -> np.ndarray:
    """Which of the points lie in the vertex box at `centre` grown by `pad` on every side."""
    return (np.abs(points[:, 0] - centre[0]) <= BOX[0] / 2 + pad) & \
        (np.abs(points[:, 1] - centre[1]) <= BOX[1] / 2 + pad)


def _curve(a: tuple[float, float], b: tuple[float, float], level: float, n: int = 120) -> np.ndarray:
    """From a, bend to height `level` within half a column, run level, bend down to b within half a column."""
    half = COLUMN / 2
    t = np.linspace(0.0, 1.0, n)[:, None]

    def quad(p0, p1, p2):
        return (1 - t) ** 2 * np.asarray(p0) + 2 * (1 - t) * t * np.asarray(p1) + t ** 2 * np.asarray(p2)

    rise = quad(a, (a[0] + half / 2, level), (a[0] + half, level))
    fall = quad((b[0] - half, level), (b[0] - half / 2, level), b)
    return np.vstack([rise, fall])


def route(u: int, v: int, pos: dict[int, tuple[float, float]], taken: set[float]) -> np.ndarray:
    """Points of the edge u -> v: straight when that is clear of every other box, else the lowest clear
    curve above or below the vertices in between (heights in `taken` are left to other edges)."""
    a, b = pos[u], pos[v]
    others = [c for w, c in pos.items() if w not in (u, v)]

    def clear(points: np.ndarray) -> bool:
        return not any(inside(points, c, CLEARANCE).any() for c in others)

    straight = np.linspace(a, b, 120)
    if clear(straight):
        return straight
    between = [c[1] for c in others if a[0] - COLUMN / 2 < c[0] < b[0] + COLUMN / 2] or [max(a[1], b[1])]
    for extra in np.arange(0.0, 6.0, 0.25):
        for level in (max(between) + ROW * 0.55 + extra, min(between) - ROW * 0.55 - extra):
            if round(level, 3) in taken:
                continue
            points = _curve(a, b, level)
            if clear(points):
                taken.add(round(level, 3))
                return points
    raise AssertionError(f"no clear route for the edge {u} -> {v}")  # a layout bug: the arcs rise without bound


def edge_routes(graph) -> tuple[dict[int, tuple[float, float]], dict[tuple[int, int], np.ndarray]]:
    """The layout and every edge's route, the edges between neighbouring columns first."""
    pos = layout(graph)
    taken: set[float] = set()
    edges = sorted(graph.edges, key=lambda e: (pos[e[1]][0] - pos[e[0]][0], e))
    return pos, {(u, v): route(u, v, pos, taken) for u, v in edges}


def cell_figure(genome: Any, title: str = ""):
    """The matplotlib figure of the cell: one Rectangle per vertex, one FancyArrowPatch per edge."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import FancyArrowPatch, Rectangle
    from matplotlib.path import Path as MplPath

    graph = to_networkx(genome)
    ops = dict(graph.nodes(data="op"))
    pos, routes = edge_routes(graph)
    xs = [p[0] for p in pos.values()]
    ys = [p[1] for p in pos.values()] + [float(r[:, 1].min()) for r in routes.values()] + \
        [float(r[:, 1].max()) for r in routes.values()]
    x0, x1 = min(xs) - BOX[0], max(xs) + BOX[0]
    y0, y1 = min(ys) - BOX[1], max(ys) + BOX[1]
    scale = 1.25  # inches per data unit: the box labels fit at font size 8
    fig, ax = plt.subplots(figsize=((x1 - x0) * scale, (y1 - y0) * scale + 0.3))
    for (u, v), points in routes.items():
        # the route from the border of u's box to the border of v's box (one sample step inside each)
        start = np.flatnonzero(inside(points, pos[u]))[-1]
        end = np.flatnonzero(inside(points, pos[v]))[0]
        arrow = FancyArrowPatch(path=MplPath(points[start:end + 1]), arrowstyle="-|>", mutation_scale=12,
                                shrinkA=0, shrinkB=0, color="#555555", linewidth=1.1, zorder=1)
        arrow.set_gid(f"edge {u}->{v}")
        ax.add_patch(arrow)
    for v, (x, y) in pos.items():
        box = Rectangle((x - BOX[0] / 2, y - BOX[1] / 2), BOX[0], BOX[1], facecolor=COLORS[ops[v]],
                        edgecolor="#333333", zorder=2)
        box.set_gid(f"vertex {v}")
        ax.add_patch(box)
        ax.text(x, y, SHORT[ops[v]], ha="center", va="center", fontsize=8, zorder=3)
    ax.set_xlim(x0, x1)
    ax.set_ylim(y0, y1)
    ax.set_aspect("equal")
    ax.set_title(title, fontsize=8)
    ax.axis("off")
    return fig


def draw_cell(genome: Any, out: str | Path, title: str = "") -> Path:
    """Write a PNG of the cell (written whole or not at all)."""
    import matplotlib.pyplot as plt

    fig = cell_figure(genome, title)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp.png")
    fig.savefig(tmp, dpi=120, bbox_inches="tight")
    plt.close(fig)
    tmp.replace(out)
    return out
