"""The registry finds searchlab's own plug-ins through the same entry points as anyone else's."""

import ast
import json
import importlib.util
import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path

import pytest

from searchlab import registry
from searchlab.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]
ROOMS = {"searchlab": "searchlab", "search_spaces": "searchlab.search_spaces",
         "predictors": "searchlab.predictors", "evolvers": "searchlab.evolvers"}


def _modules_that_register() -> set[str]:
    """Every module of the tree whose top level calls registry.register_* (a plug-in module)."""
    found = set()
    for folder, package in ROOMS.items():
        for path in (ROOT / folder).rglob("*.py"):
            tree = ast.parse(path.read_text())
            for node in tree.body:
                call = node.value if isinstance(node, ast.Expr) else None
                if isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute) \
                        and call.func.attr.startswith("register_"):
                    rel = path.relative_to(ROOT / folder).with_suffix("")
                    found.add(".".join([package, *rel.parts]))
                    break
    return found


def test_every_module_that_registers_is_a_declared_entry_point():
    assert _modules_that_register() == set(registry.builtin_plugins())


def test_the_installed_package_has_one_top_level_name(tmp_path):
    code = ("import importlib.util as u; print([n for n in ('cli', 'evolvers', 'predictors', 'search_spaces') "
            "if u.find_spec(n)]); import searchlab.cli, searchlab.search_spaces.nasbench101.table")
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_runs_stored_with_the_old_module_names_still_resume():
    assert registry.trusted_plugins(["evolvers.filter_pruning", "search_spaces.nasbench101.plugin"]) == \
        ["searchlab.evolvers.filter_pruning.plugin", "searchlab.search_spaces.nasbench101.plugin"]
    searches = ["filter_pruning", "binary_channel_search", "gan_coevolution", "sr_block_search"]
    assert registry.trusted_plugins([f"searchlab.evolvers.{s}" for s in searches]) == \
        [f"searchlab.evolvers.{s}.plugin" for s in searches]
    assert registry.trusted_plugins(["searchlab.training.train_evaluator"]) == ["searchlab.training.train_evaluator"]


def test_a_module_that_is_not_a_plugin_is_refused():
    with pytest.raises(ConfigError, match="SEARCHLAB_PLUGINS=os"):
        registry.trusted_plugins(["os"])


def test_each_builtin_entry_point_is_named_after_what_its_module_registers():
    """A lookup imports the module of the entry point with its name: searchlab declares one per name."""
    code = ("import importlib, json; from searchlab import registry as r\n"
            "tables = (r._SPACES, r._STRATEGIES, r._EVALUATORS, r._PREDICTORS)\n"
            "out = {}\n"
            "for m in r.builtin_plugins():\n"
            "    before = [set(t) for t in tables]; importlib.import_module(m)\n"
            "    out[m] = sorted({n for t, b in zip(tables, before) for n in t if n not in b})\n"
            "print(json.dumps(out))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    declared = {}
    for ep in entry_points(group=registry.PLUGIN_GROUP):
        if ep.dist is not None and ep.dist.name == "searchlab":
            declared.setdefault(ep.value, []).append(ep.name)
    assert json.loads(done.stdout) == {m: sorted(names) for m, names in declared.items()}


def test_a_search_imports_only_the_plugins_it_names(tmp_path):
    """A table-space search (and its resume) never imports torch: the command starts in under a second.
    (`--device cpu`: on a machine with a GPU driver, `auto` asks torch how many GPUs there are.)"""
    code = ("import sys, cli\n"
            f"assert cli.main(['search', 'nasbench101', '--strategy', 'random', '--max-evals', '3', '--quiet', "
            f"'--device', 'cpu', '--run', {str(tmp_path / 'r')!r}]) == 0\n"
            f"assert cli.main(['resume', {str(tmp_path / 'r')!r}, '--max-evals', '4', '--quiet']) == 0\n"
            "print(sorted(m for m in ('torch', 'searchlab.predictors.plugin', 'searchlab.evolvers.aging_evolution',"
            " 'searchlab.evolvers.random_search') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split("\n")[-2] == "['searchlab.evolvers.random_search']"
