import base64
import io
import json

import numpy as np
import pytest

from searchlab.search_spaces.nasbench101 import table as T
from searchlab.search_spaces.nasbench101 import tfrecord as R
from searchlab.errors import DataError


def test_crc32c_known_vectors():
    assert R.crc32c(b"123456789") == 0xE3069283
    assert R.crc32c(b"") == 0
    chunks = [b"123456789", b"", b"a" * 300, bytes(range(256))]
    assert R.crc32c_many(chunks).tolist() == [R.crc32c(c) for c in chunks]


def test_protobuf_roundtrip():
    ev = [{"current_epoch": 0.0, "training_time": 0.0, "train_accuracy": 0.1, "validation_accuracy": 0.1,
           "test_accuracy": 0.1, "checkpoint_path": "gs://x/0"},
          {"current_epoch": 54.0, "training_time": 900.5, "train_accuracy": 0.8, "validation_accuracy": 0.78,
           "test_accuracy": 0.77},
          {"current_epoch": 108.0, "training_time": 1800.25, "train_accuracy": 1.0, "validation_accuracy": 0.93,
           "test_accuracy": 0.925}]
    m = R.decode_model_metrics(R.encode_model_metrics(ev, 2_694_282, 1900.0))
    assert m["trainable_parameters"] == 2_694_282 and m["total_time"] == 1900.0
    assert m["evaluation_data"] == ev


def make_release(rows, table, repeats=3, epochs=(12, 108)):
    """Release-format records for some bundled rows: 3 repeats, accuracies jittered around run 0."""
    rng = np.random.default_rng(0)
    payloads = []
    for i in rows:
        g = table.genome(int(i))
        n = len(g["ops"])
        adjacency = "".join(str(v) for r in g["matrix"] for v in r)
        for e in epochs:
            for _ in range(repeats):
                acc = float(table.test_accuracy[i]) + float(rng.normal(0, 0.002))
                ev = [{"current_epoch": 0.0, "training_time": 0.0, "train_accuracy": 0.1,
                       "validation_accuracy": 0.1, "test_accuracy": 0.1},
                      {"current_epoch": e / 2, "training_time": 10.0 * e, "train_accuracy": 0.7,
                       "validation_accuracy": 0.69, "test_accuracy": 0.68},
                      {"current_epoch": float(e), "training_time": 20.0 * e, "train_accuracy": 1.0,
                       "validation_accuracy": acc + 0.001, "test_accuracy": acc}]
                metrics = base64.b64encode(R.encode_model_metrics(ev, 1000 + n, 20.0 * e)).decode()
                payloads.append(json.dumps([str(table.hashes[i]), e, adjacency, ",".join(g["ops"]), metrics]).encode())
    return payloads


@pytest.fixture(scope="module")
def bundled():
    return T.load_table()


def test_import_and_query(tmp_path, bundled):
    rows = [0, 1, 6992, 200_000]
    path = tmp_path / "nasbench_mini.tfrecord"
    with open(path, "wb") as fh:
        R.write_records(fh, make_release(rows, bundled))
    out = R.import_tfrecord(path, tmp_path / "nb.sqlite", progress=False)
    assert out == {"records": 24, "cells": 4, "db": str(tmp_path / "nb.sqlite")}
    t = T.load_table(tmp_path / "nb.sqlite", seed=1)
    assert list(t.hashes) == [bundled.hashes[i] for i in rows]
    fixed, computed = t.get_metrics_from_hash(bundled.hashes[6992])
    assert sorted(computed) == [12, 108] and len(computed[108]) == 3
    assert fixed["trainable_parameters"] == 1002  # a 2-vertex cell
    assert fixed["flops"] == pytest.approx(float(bundled.flops[6992]))  # filled in from the bundled table
    g = t.genome(0)
    q = t.query(g, epochs=12, stop_halfway=True)
    assert q["training_time"] == 120.0 and q["test_accuracy"] == 0.68
    assert t.total_epochs_spent == 6 and t.total_time == 120.0
    q = t.query(g)
    assert q["test_accuracy"] in [r["final_test_accuracy"] for r in t.get_metrics_from_hash(t.hashes[0])[1][108]]
    assert t.total_epochs_spent == 114 and t.total_time == 120.0 + 2160.0
    runs = [r["final_test_accuracy"] for r in computed[108]]
    m2 = t.query_mean(t.genome(2))
    assert m2["repeats"] == 3 and m2["test_accuracy"] == pytest.approx(np.mean(runs))
    assert t.params.tolist() == [1000 + int(bundled.n_vertices[i]) for i in rows]
    assert t.test_accuracy[2] == pytest.approx(runs[0])  # the arrays hold the first repeat


def test_corrupt_and_truncated_files_name_the_offset(tmp_path, bundled):
    buf = io.BytesIO()
    payloads = make_release([0, 1], bundled, repeats=1, epochs=(108,))
    R.write_records(buf, payloads)
    data = bytearray(buf.getvalue())
    second = 12 + len(payloads[0]) + 4
    flipped = bytearray(data)
    flipped[second + 12 + 5] ^= 0xFF  # a payload byte of the second record
    with pytest.raises(DataError, match=f"byte offset {second}: payload CRC mismatch"):
        list(R.read_records(io.BytesIO(bytes(flipped))))
    with pytest.raises(DataError, match=f"truncated record at byte offset {second}"):
        list(R.read_records(io.BytesIO(bytes(data[:-3]))))
    bad = tmp_path / "bad.tfrecord"
    bad.write_bytes(bytes(data[:-3]))
    with pytest.raises(DataError, match="truncated"):
        R.import_tfrecord(bad, tmp_path / "x.sqlite", progress=False)
    assert not (tmp_path / "x.sqlite").exists()  # nothing half-written is left behind
    assert [p for _, p in R.read_records(io.BytesIO(bytes(data)))] == payloads


def _record(payload: bytes, length: int | None = None) -> bytes:
    """One TFRecord frame; `length` overrides the stated length (with a valid CRC for it)."""
    import struct

    head = struct.pack("<Q", len(payload) if length is None else length)
    return (head + struct.pack("<I", R.mask(R.crc32c(head))) + payload
            + struct.pack("<I", R.mask(R.crc32c(payload))))


def test_crafted_files_are_refused_in_bounded_memory(tmp_path, bundled):
    import subprocess
    import sys

    # a stated length of 2^40 with a valid length CRC: refused from the header, one line
    crafted = tmp_path / "huge.tfrecord"
    crafted.write_bytes(_record(b"x" * 16, length=2**40))
    with pytest.raises(DataError, match="claims 1,099,511,627,776 bytes"):
        R.import_tfrecord(crafted, tmp_path / "db.sqlite", progress=False)
    # one long record among many short ones: the CRC batches stay small (they used to pad every record
    # of a batch to the longest: 3,000 x 1 MB)
    mixed = tmp_path / "mixed.tfrecord"
    with open(mixed, "wb") as fh:
        fh.write(_record(b"y" * (2**20 - 64)))
        for i in range(3000):
            fh.write(_record(b"%08d" % i))
    probe = ("import resource, sys\nfrom search_spaces.nasbench101 import tfrecord as R\n"
             "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
             "n = sum(1 for _ in R.read_records(open(sys.argv[1], 'rb')))\n"
             "print(n, (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) // 1024)\n")
    out = subprocess.run([sys.executable, "-c", probe, str(mixed)], capture_output=True, text=True, timeout=300)
    count, grown_mb = map(int, out.stdout.split())
    assert count == 3001 and grown_mb < 200, out.stdout + out.stderr
    # a temporary database left by a killed import (its process gone) is removed by the next import
    stale = tmp_path / ".nb101-import-999999999-abc.sqlite.tmp"
    stale.write_bytes(b"half")
    good = tmp_path / "good.tfrecord"
    with open(good, "wb") as fh:
        R.write_records(fh, make_release([0, 1], bundled, repeats=1, epochs=(108,)))
    R.import_tfrecord(good, tmp_path / "good.sqlite", progress=False)
    assert not stale.exists() and not list(tmp_path.glob(".nb101-import-*"))


@pytest.mark.parametrize("change, message", [
    (lambda r: r.__setitem__(3, 5), "must be strings"),                       # ops as an integer
    (lambda r: r.__setitem__(1, "abc"), "epochs must be a whole number"),
    (lambda r: r.__setitem__(3, "input,conv9x9,output"), "ops must be 2 to 7 of"),
    (lambda r: r.__setitem__(2, "01x0"), "adjacency does not match the ops"),
    (lambda r: r.__setitem__(0, "z" * 32), "not 32 hex digits"),
    (None, "nested deeper than 64 levels"),                                  # 200,000 nested brackets
])
def test_records_with_valid_crcs_but_bad_contents_are_one_line(tmp_path, bundled, capsys, change, message):
    from searchlab.cli import main

    record = json.loads(make_release([0], bundled, repeats=1, epochs=(108,))[0])
    if change is None:
        payload = ("[" * 200_000 + "]" * 200_000).encode()
    else:
        change(record)
        payload = json.dumps(record).encode()
    path = tmp_path / "crafted.tfrecord"
    with open(path, "wb") as fh:
        R.write_records(fh, [payload])
    assert main(["nasbench101", "import", str(path), "--db", str(tmp_path / "nb.sqlite"), "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "byte offset 0" in err[0] and message in err[0], err
    assert not (tmp_path / "nb.sqlite").exists() and not list(tmp_path.glob(".nb101-import-*"))
