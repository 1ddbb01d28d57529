"""A predictor directory from elsewhere: predictor.json is read bounded and typed, so a crafted or damaged
one is one line (exit 2) in bounded memory, and the directory is left as it was."""

from __future__ import annotations

import json
import shutil

import pytest

from searchlab.cli import main
from searchlab.predictors.configs import MAX_ORDERS

HASH = "00005c142e6f48ac74fdcf73e3439874"


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("pred") / "renas"
    assert main(["predictor", "train", "--kind", "renas", "--labels", "40", "--seed", "1", "--renas-epochs", "2",
                 "--out", str(out), "--json"]) == 0
    return out


def _crafted(trained, tmp_path, change) -> tuple:
    folder = tmp_path / "crafted"
    shutil.copytree(trained, folder)
    info = json.loads((folder / "predictor.json").read_text())
    change(info)
    (folder / "predictor.json").write_text(json.dumps(info))
    return folder, {p.name: p.read_bytes() for p in folder.iterdir()}


def test_a_million_vertex_orders_is_refused_in_bounded_memory(trained, tmp_path):
    from bounded import one_line_error, run_cli

    folder, before = _crafted(trained, tmp_path, lambda info: info["config"].update(renas_orders=1_000_000))
    err = one_line_error(run_cli("predict", folder, "--hash", HASH, timeout=120))  # 2 GB address space
    assert f"--renas-orders must be from 1 to {MAX_ORDERS}" in err and "predictor.json" in err
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before


@pytest.mark.parametrize("change, message", [
    (lambda info: info.update(seed="abc"), "'seed' must be a whole number"),
    (lambda info: info.update(meta=[1, 2]), "'meta' must be an object"),
    (lambda info: info.update(version="1"), "'version' must be the whole number 1, found '1'"),
    (lambda info: info.update(kind=["renas"]), "'kind' must name a predictor"),
    (lambda info: info["meta"].update(train_rows=["x"]), "'train_rows' must be table rows"),
    (lambda info: info["config"].update(renas_orders="many"), "renas_orders"),
])
def test_wrong_typed_fields_are_one_line(trained, tmp_path, capsys, change, message):
    folder, before = _crafted(trained, tmp_path, change)
    for argv in (["predict", str(folder), "--hash", HASH], ["predictor", "eval", str(folder), "--test", "20"]):
        assert main(argv) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and message in err[0], err
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before


def test_deeply_nested_predictor_json_is_one_line(trained, tmp_path, capsys):
    folder, _ = _crafted(trained, tmp_path, lambda info: None)
    (folder / "predictor.json").write_text('{"format": "searchlab-predictor", "meta": ' + "[" * 200_000
                                          + "]" * 200_000 + "}")
    assert main(["predict", str(folder), "--hash", HASH]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "nested deeper than 64 levels" in err[0]


def test_the_vertex_order_bound_is_the_same_for_flags():
    from searchlab.errors import ConfigError
    from searchlab.predictors.configs import ReNASConfig

    assert ReNASConfig(renas_orders=MAX_ORDERS).renas_orders == 720
    with pytest.raises(ConfigError, match="at most 720 vertex orders"):
        ReNASConfig(renas_orders=MAX_ORDERS + 1)
