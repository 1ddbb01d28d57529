"""Draw a NAS-Bench-101 cell as a labelled graph (networkx + matplotlib, Agg backend)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from searchlab.search_spaces.nasbench101 import spec as nb_spec

COLORS = {nb_spec.INPUT: "#9ecae1", nb_spec.OUTPUT: "#9ecae1", nb_spec.CONV3X3: "#fdae6b",
          nb_spec.CONV1X1: "#fdd0a2", nb_spec.MAXPOOL3X3: "#a1d99b"}
SHORT = {nb_spec.INPUT: "input", nb_spec.OUTPUT: "output", nb_spec.CONV3X3: "conv\n3x3",
         nb_spec.CONV1X1: "conv\n1x1", nb_spec.MAXPOOL3X3: "max-pool\n3x3"}


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


def draw_cell(genome: Any, out: str | Path, title: str = "") -> Path:
    """Write a PNG of the cell: vertices in columns by depth (longest path from the input)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import networkx as nx

    graph = to_networkx(genome)
    depth = {}
    for v in nx.topological_sort(graph):
        depth[v] = max((depth[u] + 1 for u in graph.predecessors(v)), default=0)
    columns: dict[int, list[int]] = {}
    for v, d in depth.items():
        columns.setdefault(d, []).append(v)
    pos = {v: (d, i - (len(vs) - 1) / 2) for d, vs in columns.items() for i, v in enumerate(vs)}
    ops = nx.get_node_attributes(graph, "op")
    fig, ax = plt.subplots(figsize=(1.9 * (max(depth.values()) + 1) + 1, 3.2))
    # edges to the next column go straight; longer ones bend around the vertices between
    for edges, style in ((
            [(u, v) for u, v in graph.edges if depth[v] - depth[u] == 1], "arc3,rad=0.0"),
            ([(u, v) for u, v in graph.edges if depth[v] - depth[u] > 1], "arc3,rad=-0.35")):
        if edges:
            nx.draw_networkx_edges(graph, pos, edgelist=edges, ax=ax, arrows=True, arrowsize=14, node_size=2600,
                                   connectionstyle=style, edge_color="#555555")
    nx.draw_networkx_nodes(graph, pos, ax=ax, node_size=2600, node_shape="s",
                           node_color=[COLORS[ops[v]] for v in graph.nodes], edgecolors="#333333")
    nx.draw_networkx_labels(graph, pos, ax=ax, labels={v: SHORT[ops[v]] for v in graph.nodes}, font_size=8)
    ax.set_title(title, fontsize=8)
    ax.axis("off")
    ax.margins(0.15)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp.png")
    fig.savefig(tmp, dpi=120, bbox_inches="tight")
    plt.close(fig)
    tmp.replace(out)
    return out
