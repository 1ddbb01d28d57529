"""Config dataclasses <-> flags/JSON, durations, and Result's NaN rule."""

import argparse
import math
from dataclasses import dataclass

import pytest

from searchlab import options
from searchlab.errors import ConfigError
from searchlab.options import opt, parse_duration
from searchlab.protocols import Result
from searchlab.engine.seeding import trial_seed


@dataclass(frozen=True)
class Demo:
    """demo options"""

    lam: float = opt(0.5, help="trade-off")
    layers: list[str] = opt([], help="layer names")
    weights: str | None = opt(None, help="a file")
    mode: str = opt("acc", help="metric", choices=["acc", "loss"])
    fast: bool = opt(False, help="go fast")


def test_flags_from_dataclass():
    parser = argparse.ArgumentParser()
    options.add_flags(parser, [Demo])
    ns = vars(parser.parse_args(["--lam", "0.25", "--layers", "a", "b", "--fast"]))
    assert ns == {"lam": 0.25, "layers": ["a", "b"], "fast": True}      # only the given flags
    cfg = options.build(Demo, ns)
    assert cfg == Demo(lam=0.25, layers=["a", "b"], fast=True)
    assert options.to_dict(cfg) == {"lam": 0.25, "layers": ["a", "b"], "weights": None, "mode": "acc", "fast": True}


@dataclass(frozen=True)
class Renamed:
    """options with old names"""

    elite: int = opt(2, help="kept", aliases={"elites": None})
    share: str = opt("", help="a ratio", aliases={"times": lambda n: f"{1 / float(n):.3g}"})


def test_old_flag_names_parse_like_the_new_ones():
    parser = argparse.ArgumentParser()
    options.add_flags(parser, [Renamed])
    ns = vars(parser.parse_args(["--elites", "1", "--times", "4"]))
    assert options.build(Renamed, ns) == Renamed(elite=1, share="0.25")


@dataclass(frozen=True)
class Added:
    """options with a field added later"""

    steps: int = opt(1200, help="new", old_default=0)


def test_a_field_added_later_keeps_its_old_value_in_stored_configs():
    assert options.build(Added, {}).steps == 1200  # flags, config files: the default
    assert options.build(Added, {}, stored=True).steps == 0  # a run stored before the field existed
    assert options.build(Added, {"steps": 7}, stored=True).steps == 7
    assert options.build(Added, options.to_dict(options.build(Added, {})), stored=True).steps == 1200


def test_build_checks_types_and_choices():
    with pytest.raises(ConfigError, match="lam should be float"):
        options.build(Demo, {"lam": "much"})
    with pytest.raises(ConfigError, match="mode must be one of acc, loss"):
        options.build(Demo, {"mode": "speed"})
    with pytest.raises(ConfigError, match="fast should be bool"):
        options.build(Demo, {"fast": "yes"})


@pytest.mark.parametrize("text,seconds", [("90s", 90), ("20m", 1200), ("2h", 7200), ("1.5h", 5400), ("45", 45)])
def test_durations(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["ten", "5 minutes", "-3s", "2hh", ""])
def test_malformed_durations(text):
    with pytest.raises(ConfigError, match="malformed duration"):
        parse_duration(text)


def test_nan_objective_is_a_failure():
    r = Result("ok", {"accuracy": math.nan})
    assert r.status == "failed" and "accuracy" in r.error
    assert Result.from_json(Result("ok", {"a": 1.0}, {"seconds": 2.0}).to_json()) == Result("ok", {"a": 1.0}, {"seconds": 2.0})


def test_trial_seeds_are_stable_and_distinct():
    assert trial_seed(0, 1) == trial_seed(0, 1)
    assert len({trial_seed(s, t) for s in range(5) for t in range(200)}) == 1000
