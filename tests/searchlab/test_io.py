"""searchlab.io: atomic writes keep the last good file, state dicts are read weights-only with one-line errors."""

import json
from pathlib import Path

import pytest
import torch

from searchlab import io
from searchlab.errors import ConfigError


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    path = tmp_path / "report.json"
    io.write_json(path, {"a": 1})

    def half_then_fail(tmp):
        tmp.write_text('{"a": 2')
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        io.atomic_write(path, half_then_fail)
    assert json.loads(path.read_text()) == {"a": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.json"]


def test_state_dicts_round_trip_in_both_formats(tmp_path):
    net = torch.nn.Linear(3, 2)
    io.save_safetensors(net.state_dict(), tmp_path / "w.safetensors")
    io.save_torch({"state_dict": net.state_dict()}, tmp_path / "w.pt")
    for name in ("w.safetensors", "w.pt"):
        other = torch.nn.Linear(3, 2)
        io.load_into(other, tmp_path / name)
        assert torch.equal(other.weight, net.weight) and torch.equal(other.bias, net.bias)


@pytest.mark.parametrize("content, message", [
    (None, "does not exist"),
    (b"not a checkpoint", "not a state dict readable weights-only"),
    ({"w": [1, 2]}, r"not a state dict \(a mapping of names to tensors\)"),
])
def test_bad_state_dict_files_are_one_line_config_errors(tmp_path, content, message):
    path = tmp_path / "w.pt"
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        torch.save(content, path)
    with pytest.raises(ConfigError, match=message) as err:
        io.read_state_dict(path, "--weights")
    assert "\n" not in str(err.value) and str(err.value).startswith(f"--weights {path}")


def test_a_pickled_object_is_not_loaded(tmp_path):
    path = tmp_path / "w.pt"
    torch.save({"w": torch.zeros(1), "obj": ConfigError("x")}, path)
    with pytest.raises(ConfigError, match="weights-only"):
        io.read_state_dict(path)


def test_weights_of_another_model_name_the_first_mismatch(tmp_path):
    io.save_safetensors(torch.nn.Linear(3, 4).state_dict(), tmp_path / "w.safetensors")
    with pytest.raises(ConfigError, match=r"size mismatch for weight: file \(4, 3\) vs model \(2, 3\)"):
        io.load_into(torch.nn.Linear(3, 2), tmp_path / "w.safetensors")


def test_resolve_device():
    assert io.resolve_device("cpu") == torch.device("cpu")
    assert io.resolve_device(torch.device("cpu")) == torch.device("cpu")
    with pytest.raises(ConfigError, match="not supported"):
        io.resolve_device("meta")
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="CUDA is not available"):
            io.resolve_device("cuda")


def test_a_full_disk_is_one_storage_error_that_says_what_was_kept(tmp_path):
    import errno

    from searchlab.errors import StorageError

    path = tmp_path / "report.json"
    io.write_json(path, {"a": 1})

    def full(tmp):
        tmp.write_text('{"a": 2')
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(StorageError, match="No space left on device; the previous report.json is kept as it was"):
        io.atomic_write(path, full)
    with pytest.raises(StorageError, match="no fresh.json was written"):
        io.atomic_write(tmp_path / "fresh.json", full)
    assert json.loads(path.read_text()) == {"a": 1} and sorted(p.name for p in tmp_path.iterdir()) == ["report.json"]
    try:  # still an OSError, so a cache that may fail to write keeps ignoring it
        io.atomic_write(path, full)
    except OSError as exc:
        assert exc.errno == errno.ENOSPC


def test_json_nesting_is_bounded_without_recursion():
    assert io.parse_json('[["]]]]\\"[[[", {"a": [1]}]]') == [["]]]]\"[[[", {"a": [1]}]]
    assert len(io.parse_json("[" * io.MAX_JSON_DEPTH + "]" * io.MAX_JSON_DEPTH)) == 1
    for text in ("[" * 200_000, "[" * (io.MAX_JSON_DEPTH + 1) + "]" * (io.MAX_JSON_DEPTH + 1), '{"a": ' * 70 + "1"):
        with pytest.raises(ValueError, match="nested deeper than 64 levels"):
            io.parse_json(text)
    with pytest.raises(ValueError):
        io.parse_json(b"[\xff]")  # not UTF-8


def test_disk_full_while_a_prune_search_saves_its_pretrained_weights(tmp_path):
    """The real command under a 100 kB file-size limit: the LeNet-5 weights (247 kB) cannot be written."""
    import os

    from bounded import one_line_error, run_cli

    mnist = Path(__file__).resolve().parents[1] / "data" / "mnist_mini"
    run = tmp_path / "run"
    proc = run_cli("search", "prune", "--data", f"mnist:{mnist}", "--test-size", "200", "--val-size", "200",
                   "--pretrain-epochs", "1", "--batch-size", "64", "--population", "4", "--generations", "1",
                   "--seed", "2", "--run", run, "--quiet", "--no-finalize", file_bytes=100_000,
                   env={**os.environ, "SEARCHLAB_CACHE_DIR": str(tmp_path / "cache")})
    err = one_line_error(proc)
    assert f"cannot write {run / 'pretrained.safetensors'}" in err and "no pretrained.safetensors was written" in err
    assert not run.exists()  # no run was created, and no empty folder is left
