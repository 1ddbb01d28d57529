"""`searchlab nasbench101 draw`: no edge passes through or touches a vertex it does not join, checked on
the drawn matplotlib objects (vertex boxes and edge arrows in display coordinates) for many random cells."""

import numpy as np
import pytest

from searchlab.errors import SearchlabError
from searchlab.search_spaces.nasbench101 import spec as nb_spec
from searchlab.search_spaces.nasbench101.draw import cell_figure

# the cell of the documentation's example (00005c14...), whose skip edges once ran through its vertices
DOC_CELL = {"matrix": [[0, 1, 0, 0, 1, 1, 0], [0, 0, 1, 0, 0, 0, 0], [0, 0, 0, 1, 0, 0, 1], [0, 0, 0, 0, 0, 1, 0],
                       [0, 0, 0, 0, 0, 1, 0], [0, 0, 0, 0, 0, 0, 1], [0, 0, 0, 0, 0, 0, 0]],
            "ops": ["input", "conv3x3-bn-relu", "maxpool3x3", "conv3x3-bn-relu", "conv3x3-bn-relu",
                    "conv1x1-bn-relu", "output"]}


def random_cells(n: int, seed: int = 0) -> list[dict]:
    rng = np.random.default_rng(seed)
    cells = []
    while len(cells) < n:
        m = np.triu(rng.random((7, 7)) < 0.45, 1).astype(int)
        ops = ["input"] + [nb_spec.OPS[i] for i in rng.integers(len(nb_spec.OPS), size=5)] + ["output"]
        try:
            cells.append(nb_spec.validate({"matrix": m.tolist(), "ops": ops}))
        except SearchlabError:  # disconnected, or more than 9 edges: not a cell of the space
            continue
    return cells


def drawn(genome):
    """({vertex: display bbox}, {(u, v): display points of the arrow, head included}) of the drawn cell."""
    import matplotlib.pyplot as plt
    from matplotlib.path import Path

    fig = cell_figure(genome)
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    ax = fig.axes[0]
    boxes = {int(p.get_gid().split()[1]): p.get_window_extent(renderer) for p in ax.patches
             if (p.get_gid() or "").startswith("vertex")}
    edges = {}
    for p in ax.patches:
        if (p.get_gid() or "").startswith("edge"):
            u, v = (int(x) for x in p.get_gid().split()[1].split("->"))
            path = p.get_path()  # in data coordinates, the head included
            keep = [c not in (Path.CLOSEPOLY, Path.STOP) for c in path.codes]
            edges[(u, v)] = p.get_transform().transform(path.vertices[keep])
    plt.close(fig)
    return boxes, edges


@pytest.mark.parametrize("genome", [DOC_CELL] + random_cells(30), ids=lambda g: nb_spec.spec_hash(g)[:8])
def test_no_edge_passes_through_or_touches_a_vertex_it_does_not_join(genome):
    g = nb_spec.validate(genome)
    boxes, edges = drawn(g)
    assert sorted(edges) == sorted((int(a), int(b)) for a, b in zip(*np.nonzero(np.asarray(g["matrix"]))))
    assert sorted(boxes) == list(range(len(g["ops"])))
    for (u, v), points in edges.items():
        for w, box in boxes.items():
            if w not in (u, v):  # 2 pixels around a box it does not join: not even touching
                assert not any(box.padded(2.0).contains(x, y) for x, y in points), f"edge {u}->{v} meets vertex {w}"
        # it runs from the border of u's box to the border of v's box
        assert any(boxes[u].padded(3.0).contains(x, y) for x, y in points)
        assert any(boxes[v].padded(3.0).contains(x, y) for x, y in points)
