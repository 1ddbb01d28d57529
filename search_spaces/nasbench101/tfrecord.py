"""Read the official NAS-Bench-101 release files (`nasbench_only108.tfrecord`, `nasbench_full.tfrecord`)
without TensorFlow, and import them into a table database.

TFRecord framing: uint64 little-endian payload length, uint32 masked CRC32C of those 8 bytes, the
payload, uint32 masked CRC32C of the payload. Each payload is UTF-8 JSON
`[module_hash, epochs, adjacency ('0'/'1' x n*n, row-major), "op,op,...", base64(ModelMetrics)]` where

    ModelMetrics   { repeated EvaluationData evaluation_data = 1; int32 trainable_parameters = 2;
                     double total_time = 3; }
    EvaluationData { double current_epoch = 1; double training_time = 2; double train_accuracy = 3;
                     double validation_accuracy = 4; double test_accuracy = 5; string checkpoint_path = 6; }

`evaluation_data[1]` is the halfway point and `[2]` the end of training; each (hash, epochs) appears
once per repeat (3 repeats). Reading streams record by record in bounded memory whatever a file
claims: a record longer than any NAS-Bench-101 record is refused from its header, and CRCs are checked
in batches with numpy whose padded size is capped. A bad CRC, a truncated record or an impossible length
raises DataError naming its byte offset.
"""

from __future__ import annotations

import base64
import os
import struct
import tempfile
from pathlib import Path
from typing import BinaryIO, Iterator

import numpy as np

from searchlab import io
from searchlab.errors import DataError
from searchlab.search_spaces.nasbench101.spec import CONV1X1, CONV3X3, INPUT, MAX_VERTICES, MAXPOOL3X3, OUTPUT

KNOWN_OPS = {INPUT, OUTPUT, CONV3X3, CONV1X1, MAXPOOL3X3}
MAX_EPOCHS = 10_000  # the release trains for 4, 12, 36 or 108 epochs


def _crc_table() -> np.ndarray:
    poly = 0x82F63B78  # CRC-32C (Castagnoli), reflected
    table = np.arange(256, dtype=np.uint32)
    for _ in range(8):
        table = np.where(table & 1, (table >> 1) ^ np.uint32(poly), table >> 1).astype(np.uint32)
    return table


_TABLE = _crc_table()
_TABLE_LIST = _TABLE.tolist()


def crc32c(data: bytes) -> int:
    """CRC-32C of a short byte string (plain Python; used for the 8-byte length headers)."""
    crc = 0xFFFFFFFF
    table = _TABLE_LIST
    for b in data:
        crc = table[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def crc32c_many(chunks: list[bytes]) -> np.ndarray:
    """CRC-32C of many byte strings at once: one numpy step per byte position across all strings."""
    if not chunks:
        return np.zeros(0, np.uint32)
    lens = np.fromiter((len(c) for c in chunks), np.int64, len(chunks))
    order = np.argsort(-lens, kind="stable")
    width = int(lens.max())
    buf = np.zeros((len(chunks), width), np.uint8)
    for row, i in enumerate(order):
        buf[row, :lens[i]] = np.frombuffer(chunks[i], np.uint8)
    sorted_lens = lens[order]
    crc = np.full(len(chunks), 0xFFFFFFFF, np.uint32)
    active = len(chunks)
    for pos in range(width):
        while active and sorted_lens[active - 1] <= pos:
            active -= 1
        c = crc[:active]
        crc[:active] = _TABLE[(c ^ buf[:active, pos]) & 0xFF] ^ (c >> 8)
    out = np.empty_like(crc)
    out[order] = crc ^ np.uint32(0xFFFFFFFF)
    return out


def mask(crc: int | np.ndarray):
    """TFRecord's masked CRC: rotate right by 15 and add a constant."""
    if isinstance(crc, np.ndarray):
        c = crc.astype(np.uint64)
        return ((((c >> 15) | (c << 17)) + 0xA282EAD8) & 0xFFFFFFFF).astype(np.uint32)
    return ((((crc >> 15) | (crc << 17)) & 0xFFFFFFFF) + 0xA282EAD8) & 0xFFFFFFFF


MAX_RECORD_BYTES = 2**20  # a NAS-Bench-101 record is about a kilobyte: this leaves a thousandfold margin
MAX_BATCH_BYTES = 64 * 2**20  # CRC batches are padded to their longest record: this caps batch x longest


def read_records(fh: BinaryIO, batch: int = 2048) -> Iterator[tuple[int, bytes]]:
    """Yield (byte offset, payload) of each record, verifying both CRCs; DataError names a bad offset."""
    pending: list[tuple[int, bytes, int]] = []
    longest = 0
    offset = 0

    def flush():
        crcs = mask(crc32c_many([p for _, p, _ in pending]))
        for (off, payload, want), got in zip(pending, crcs.tolist()):
            if want != got:
                raise DataError(f"record at byte offset {off}: payload CRC mismatch (the file is corrupt; "
                                "download it again)")
            yield off, payload
        pending.clear()

    while True:
        header = fh.read(12)
        if not header:
            break
        if len(header) < 12:
            raise DataError(f"truncated record at byte offset {offset}: {len(header)} of 12 header bytes "
                            "(the file is cut short; download it again)")
        length, length_crc = struct.unpack("<QI", header)
        if mask(crc32c(header[:8])) != length_crc:
            raise DataError(f"record at byte offset {offset}: length CRC mismatch (not a TFRecord file, "
                            "or corrupt)")
        if length > MAX_RECORD_BYTES:
            raise DataError(f"record at byte offset {offset} claims {length:,} bytes, more than any NAS-Bench-101 "
                            f"record ({MAX_RECORD_BYTES:,}); this is not a NAS-Bench-101 release file")
        if pending and (len(pending) + 1) * max(longest, length) > MAX_BATCH_BYTES:
            yield from flush()
            longest = 0
        body = fh.read(length + 4)
        if len(body) < length + 4:
            raise DataError(f"truncated record at byte offset {offset}: {len(body)} of {length + 4} bytes "
                            "(the file is cut short; download it again)")
        pending.append((offset, body[:length], struct.unpack("<I", body[length:])[0]))
        longest = max(longest, length)
        offset += 12 + length + 4
        if len(pending) >= batch:
            yield from flush()
            longest = 0
    if pending:
        yield from flush()


def write_records(fh: BinaryIO, payloads: list[bytes]) -> None:
    """Write payloads with TFRecord framing (used to build test files)."""
    crcs = mask(crc32c_many(list(payloads))).tolist()
    for payload, crc in zip(payloads, crcs):
        head = struct.pack("<Q", len(payload))
        fh.write(head + struct.pack("<I", mask(crc32c(head))) + payload + struct.pack("<I", crc))


# ---- protobuf wire format (just the two messages of the release) ---------------------------------

EVAL_FIELDS = {1: "current_epoch", 2: "training_time", 3: "train_accuracy", 4: "validation_accuracy",
               5: "test_accuracy"}


def _varint(buf: bytes, i: int) -> tuple[int, int]:
    shift = result = 0
    while True:
        b = buf[i]
        i += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, i
        shift += 7


def _fields(buf: bytes) -> Iterator[tuple[int, int, object]]:
    i = 0
    while i < len(buf):
        key, i = _varint(buf, i)
        field, wire = key >> 3, key & 7
        if wire == 0:
            value, i = _varint(buf, i)
        elif wire == 1:
            value = struct.unpack_from("<d", buf, i)[0]
            i += 8
        elif wire == 2:
            size, i = _varint(buf, i)
            value = buf[i:i + size]
            i += size
        elif wire == 5:
            value = struct.unpack_from("<f", buf, i)[0]
            i += 4
        else:
            raise ValueError(f"unsupported protobuf wire type {wire}")
        yield field, wire, value


def decode_model_metrics(buf: bytes) -> dict:
    """ModelMetrics bytes -> {"evaluation_data": [dict, ...], "trainable_parameters", "total_time"}."""
    out: dict = {"evaluation_data": [], "trainable_parameters": None, "total_time": None}
    for field, _, value in _fields(buf):
        if field == 1:
            ev = {}
            for f, _, v in _fields(value):
                if f in EVAL_FIELDS:
                    ev[EVAL_FIELDS[f]] = float(v)
                elif f == 6:
                    ev["checkpoint_path"] = bytes(v).decode("utf-8", "replace")
            out["evaluation_data"].append(ev)
        elif field == 2:
            out["trainable_parameters"] = int(value)
        elif field == 3:
            out["total_time"] = float(value)
    return out


def _key(field: int, wire: int) -> bytes:
    return _encode_varint((field << 3) | wire)


def _encode_varint(v: int) -> bytes:
    out = bytearray()
    while True:
        b = v & 0x7F
        v >>= 7
        out.append(b | (0x80 if v else 0))
        if not v:
            return bytes(out)


def encode_model_metrics(evaluation_data: list[dict], trainable_parameters: int, total_time: float) -> bytes:
    """The inverse of `decode_model_metrics` (for writing test files)."""
    out = bytearray()
    for ev in evaluation_data:
        msg = bytearray()
        for f, name in EVAL_FIELDS.items():
            if ev.get(name) is not None:
                msg += _key(f, 1) + struct.pack("<d", float(ev[name]))
        if ev.get("checkpoint_path"):
            path = ev["checkpoint_path"].encode()
            msg += _key(6, 2) + _encode_varint(len(path)) + path
        out += _key(1, 2) + _encode_varint(len(msg)) + msg
    out += _key(2, 0) + _encode_varint(int(trainable_parameters))
    out += _key(3, 1) + struct.pack("<d", float(total_time))
    return bytes(out)


def parse_payload(payload: bytes, offset: int) -> tuple[str, int, str, str, dict]:
    """(hash, epochs, adjacency string, ops string, metrics) of one record, each field checked for its type
    and range (a hash of 32 hex digits, epochs up to MAX_EPOCHS, an n x n 0/1 matrix for n <= 7 known ops)."""
    try:
        record = io.parse_json(payload)
        if not isinstance(record, list) or len(record) != 5:
            raise ValueError("expected [hash, epochs, adjacency, ops, metrics]")
        h, epochs, adjacency, ops, metrics_b64 = record
        if not all(isinstance(v, str) for v in (h, adjacency, ops, metrics_b64)):
            raise TypeError("hash, adjacency, ops and metrics must be strings")
        if len(h) != 32 or set(h) - set("0123456789abcdef"):
            raise ValueError("the hash is not 32 hex digits")
        if type(epochs) is not int or not 0 < epochs <= MAX_EPOCHS:
            raise ValueError(f"epochs must be a whole number from 1 to {MAX_EPOCHS}, got {epochs!r:.20}")
        names = ops.split(",")
        if not 2 <= len(names) <= MAX_VERTICES or set(names) - KNOWN_OPS:
            raise ValueError(f"ops must be 2 to {MAX_VERTICES} of {', '.join(sorted(KNOWN_OPS))}")
        if len(adjacency) != len(names) ** 2 or set(adjacency) - {"0", "1"}:
            raise ValueError("adjacency does not match the ops")
        metrics = decode_model_metrics(base64.b64decode(metrics_b64))
        params = metrics["trainable_parameters"]
        if params is not None and not 0 <= params < 2**63:
            raise ValueError("trainable_parameters is out of range")
    except (ValueError, TypeError, IndexError, OverflowError, struct.error) as exc:
        raise DataError(f"record at byte offset {offset} is not a NAS-Bench-101 record: {exc}") from None
    return h, epochs, adjacency, ops, metrics


def _remove_stale_imports(folder: Path) -> None:
    """Delete temporary databases of imports whose process is gone (killed before it could clean up)."""
    for tmp in folder.glob(".nb101-import-*.sqlite.tmp"):
        pid = tmp.name.split("-")[2]
        if not pid.isdigit():
            continue
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            tmp.unlink(missing_ok=True)
        except PermissionError:  # alive, another user's
            pass


def import_tfrecord(path: str | Path, db: str | Path, *, progress: bool = True) -> dict:
    """Stream a release file into a new table database at `db` (written to a temporary file, then renamed)."""
    from searchlab.search_spaces.nasbench101 import table as nb_table

    src = Path(path)
    if not src.is_file():
        raise DataError(f"{path} does not exist; give the path of nasbench_only108.tfrecord or nasbench_full.tfrecord")
    dest = Path(db)
    dest.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_imports(dest.parent)
    fd, tmp_name = tempfile.mkstemp(prefix=f".nb101-import-{os.getpid()}-", suffix=".sqlite.tmp", dir=dest.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    size = src.stat().st_size
    bar = None
    if progress:
        from searchlab import progress as progress_lines
        bar = progress_lines.bar(total=size, unit="B", desc=f"importing {src.name}", show=True, unit_scale=True,
                                 leave=True)
    records = 0
    try:
        conn = nb_table.create_db(tmp)
        conn.execute("INSERT OR REPLACE INTO meta VALUES ('source', ?)", (src.name,))
        done = 0
        with open(src, "rb") as fh:
            for offset, payload in read_records(fh):
                h, epochs, adjacency, ops, m = parse_payload(payload, offset)
                ev = m["evaluation_data"]
                if len(ev) < 3:
                    raise DataError(f"record at byte offset {offset} has {len(ev)} evaluation points, expected 3")
                conn.execute("INSERT OR IGNORE INTO cells VALUES (?, ?, ?, ?, ?, NULL)",
                             (h, len(ops.split(",")), adjacency, ops, m["trainable_parameters"]))
                half, final = ev[1], ev[2]
                conn.execute(
                    "INSERT INTO runs VALUES (?, ?, (SELECT COUNT(*) FROM runs WHERE hash = ? AND epochs = ?), "
                    "?, ?, ?, ?, ?, ?, ?, ?)",
                    (h, epochs, h, epochs, half.get("training_time"), half.get("train_accuracy"),
                     half.get("validation_accuracy"), half.get("test_accuracy"), final.get("training_time"),
                     final.get("train_accuracy"), final.get("validation_accuracy"), final.get("test_accuracy")))
                records += 1
                if bar is not None and records % 2048 == 0:
                    bar.update(offset - done)
                    done = offset
        if records == 0:
            raise DataError(f"{path} holds no records")
        # FLOPs are not in the release: take them from the bundled table where the hash is known
        bundled = nb_table.load_table()
        present = [r[0] for r in conn.execute("SELECT hash FROM cells")]
        rows = bundled.index_of(np.array(present, dtype="S32"))
        conn.executemany("UPDATE cells SET flops = ? WHERE hash = ?",
                         [(float(bundled.flops[r]), h) for h, r in zip(present, rows.tolist()) if r >= 0])
        cells = conn.execute("SELECT COUNT(*) FROM cells").fetchone()[0]
        nb_table.finish_db(conn, tmp, dest)
        if bar is not None:
            bar.update(size - done)
    finally:
        if bar is not None:
            bar.close()
        tmp.unlink(missing_ok=True)
    return {"records": records, "cells": cells, "db": str(dest)}
