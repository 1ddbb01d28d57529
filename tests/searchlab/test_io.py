"""searchlab.io: atomic writes keep the last good file, state dicts are read weights-only with one-line errors."""

import json

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
