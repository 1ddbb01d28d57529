import time

import numpy as np
import pytest

from searchlab.search_spaces.nasbench101 import spec as nb_spec
from searchlab.search_spaces.nasbench101 import table as T
from searchlab.errors import ConfigError, InvalidArchitecture


@pytest.fixture(scope="module")
def table():
    return T.load_table()


def test_bundled_table_facts(table):
    assert len(table) == T.N_CELLS == 423_624
    assert table.hashes[0] == "00005c142e6f48ac74fdcf73e3439874"
    assert np.all(table.hashes[1:] > table.hashes[:-1])
    assert abs(float(table.test_accuracy.max()) - 0.94661) < 1e-5
    assert np.bincount(table.n_vertices).tolist() == [0, 0, 1, 6, 84, 2441, 62010, 359082]
    i = 12345
    assert table.hash_of(table.genome(i)) == table.hashes[i]


def test_index_of_all_hashes_and_missing(table):
    idx = table.index_of(table.hashes)
    assert np.array_equal(idx, np.arange(len(table)))
    assert table.index_of(np.array(["f" * 32, table.hashes[7]])).tolist() == [-1, 7]
    assert table.index_of(table.hashes[99]) == 99
    with pytest.raises(InvalidArchitecture, match="not in NAS-Bench-101"):
        table.index_of("f" * 32)
    with pytest.raises(ConfigError, match="32 hex"):
        table.index_of("abc")


def test_padded_layout_puts_output_last(table):
    small = np.flatnonzero(table.n_vertices == 5)[:50]
    pm, po = table.padded_matrices()[small], table.padded_ops()[small]
    assert (po[:, 6] == -2).all() and (po[:, 4:6] == -3).all()
    raw = table.matrices[small]
    assert np.array_equal(pm[:, :4, 6], raw[:, :4, 4])        # edges into the output moved to column 6
    assert np.array_equal(pm[:, :4, :4], raw[:, :4, :4])
    assert pm[:, 4:6].sum() == 0 and pm[:, :, 4:6].sum() == 0  # padding vertices are isolated


def test_sqlite_queries_official_shape(tmp_path):
    arrays = T.read_package_file()
    rows = np.arange(0, T.N_CELLS, 997)
    sub = {k: v[rows] for k, v in arrays.items()}
    db = T.build_bundled_db(tmp_path / "small.sqlite", sub)
    t = T.load_table(db, seed=3)
    assert len(t) == len(rows)
    h = t.hashes[5]
    fixed, computed = t.get_metrics_from_hash(h)
    assert list(computed) == [108] and len(computed[108]) == 1
    assert computed[108][0]["final_test_accuracy"] == pytest.approx(float(sub["test_accuracy"][5]))
    assert fixed["flops"] == pytest.approx(float(sub["flops"][5]))
    g = t.genome(5)
    assert np.array_equal(fixed["module_adjacency"], np.asarray(g["matrix"]))
    q = t.query(g)
    assert q["test_accuracy"] == pytest.approx(float(sub["test_accuracy"][5]))
    assert t.total_epochs_spent == 108
    assert t.query_mean(g)["repeats"] == 1
    assert t.is_valid(g) and list(iter(t))[:2] == list(t.hashes[:2])
    with pytest.raises(ConfigError, match="no results at 12 epochs"):
        t.query(g, epochs=12)
    # read-only: the database cannot be written through the table's connection
    import sqlite3
    with pytest.raises(sqlite3.OperationalError):
        t.conn.execute("DELETE FROM cells")


def test_bad_db_is_one_line_error(tmp_path):
    bad = tmp_path / "x.sqlite"
    bad.write_bytes(b"not a database at all" * 10)
    with pytest.raises(ConfigError, match="not a NAS-Bench-101 table"):
        T.load_table(bad)
    with pytest.raises(ConfigError, match="does not exist"):
        T.load_table(tmp_path / "missing.sqlite")


def test_package_file_is_compact_and_fast():
    assert T.PACKAGE_FILE.stat().st_size < 12 * 2**20
    start = time.perf_counter()
    T.load_table()
    assert time.perf_counter() - start < 5  # well under 1 s on an idle machine (see docs/benchmarks.md)


def test_bits_roundtrip(table):
    m = table.matrices[:1000]
    assert np.array_equal(T.matrices_to_bits(m), table.adj_bits[:1000])
    assert nb_spec.validate(table.genome(0))["ops"][0] == "input"
