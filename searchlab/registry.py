"""Names -> spaces, strategies, evaluators and predictors.

The engine knows no particular space or strategy: plug-in modules register themselves here when
imported. Every plug-in, searchlab's own included, is declared as an entry point of the
`searchlab.plugins` group (each names a module to import; searchlab's are in pyproject.toml), and a user can
name extra modules, comma-separated, in the environment variable SEARCHLAB_PLUGINS. An entry point
named after a name its module registers lets a lookup import that module alone; a name no entry point
carries imports them all. A run folder records the modules its run used, but is never what decides
that a module gets imported (`trusted_plugins`).
"""

from __future__ import annotations

import difflib
import importlib
import os
import sys
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any, Callable, Iterable

from searchlab.errors import ConfigError

PLUGIN_GROUP = "searchlab.plugins"
_ROOMS = ("evolvers", "predictors", "search_spaces")  # where built-in modules lived before the one top-level name


@dataclass(frozen=True)
class SpaceEntry:
    name: str
    factory: Callable[..., Any]  # (config, ctx: Context) -> SearchSpace
    config: type | None
    default_strategy: str
    default_evaluator: str
    finalize: Callable[..., dict] | None  # (space, evaluator, best_trial, ctx) -> summary dict
    help: str
    module: str = ""  # the plug-in module that registered it (recorded in a run, named when missing)
    table: Callable[[], Any] | None = None  # a table space's every cell's accuracy (what `compare` ranks against)


@dataclass(frozen=True)
class StrategyEntry:
    name: str
    factory: Callable[..., Any]  # (space, config, *, seed: int, objectives: dict[str, str]) -> Strategy
    config: type | None
    help: str
    spaces: tuple[str, ...] | None  # None: works on any space with sample/mutate
    module: str = ""


@dataclass(frozen=True)
class EvaluatorEntry:
    name: str
    factory: Callable[..., Any]  # (space, config, ctx: Context) -> Evaluator
    config: type | None
    help: str
    spaces: tuple[str, ...] | None
    module: str = ""
    finalize: Callable[..., dict] | None = None  # (space, evaluator, best_trial, ctx) -> summary: the run's final step


@dataclass(frozen=True)
class PredictorEntry:
    name: str
    cls: type
    help: str


_SPACES: dict[str, SpaceEntry] = {}
_STRATEGIES: dict[str, StrategyEntry] = {}
_EVALUATORS: dict[str, EvaluatorEntry] = {}
_PREDICTORS: dict[str, PredictorEntry] = {}
_LOADED: set[str] = set()


def _caller_module() -> str:
    """The module calling a register_* function: the plug-in a run using the name must load again."""
    return sys._getframe(2).f_globals.get("__name__", "")


def register_space(name: str, *, factory: Callable, config: type | None = None, default_strategy: str,
                   default_evaluator: str, finalize: Callable | None = None, help: str = "",
                   table: Callable | None = None) -> None:
    _SPACES[name] = SpaceEntry(name, factory, config, default_strategy, default_evaluator, finalize, help,
                               _caller_module(), table)


def register_strategy(name: str, *, factory: Callable, config: type | None = None, help: str = "",
                      spaces: Iterable[str] | None = None) -> None:
    _STRATEGIES[name] = StrategyEntry(name, factory, config, help, tuple(spaces) if spaces else None,
                                      _caller_module())


def register_evaluator(name: str, *, factory: Callable, config: type | None = None, help: str = "",
                       spaces: Iterable[str] | None = None, finalize: Callable | None = None) -> None:
    """`finalize`: the final step of a run scored by this evaluator (it uses what the evaluator holds: data,
    training recipe); without one, the space's own finalize hook runs, if any."""
    _EVALUATORS[name] = EvaluatorEntry(name, factory, config, help, tuple(spaces) if spaces else None,
                                       _caller_module(), finalize)


def modules_of(space_name: str, strategy_name: str, evaluator_name: str) -> list[str]:
    """The plug-in modules behind the names a run uses, for its record (what `resume` must load)."""
    entries = (space(space_name), strategy(strategy_name), evaluator(evaluator_name))
    return list(dict.fromkeys(e.module for e in entries if e.module and e.module != "__main__"))


def register_predictor(name: str, *, cls: type, help: str = "") -> None:
    _PREDICTORS[name] = PredictorEntry(name, cls, help)


def builtin_plugins() -> list[str]:
    """searchlab's own plug-in modules: the `searchlab.plugins` entry points its package declares."""
    found = list(dict.fromkeys(ep.value for ep in entry_points(group=PLUGIN_GROUP)
                               if ep.dist is not None and ep.dist.name == "searchlab"))
    if not found:
        raise ConfigError("searchlab's plug-ins are not registered (the package is not installed); "
                          "install it with `pip install -e .` in the checkout, or `make install`")
    return found


def load_builtins() -> None:
    """Import every installed plug-in (searchlab's own included) and $SEARCHLAB_PLUGINS, for listings; a
    lookup imports only the module of the entry point named after what it looks for."""
    load_plugins()
    for ep in entry_points(group=PLUGIN_GROUP):
        _import(ep.value)


def _lookup(table: dict, kind: str, name: str):
    if name not in table:
        load_plugins()
        for ep in entry_points(group=PLUGIN_GROUP, name=name):
            _import(ep.value)
    if name not in table:
        load_builtins()
    if name not in table:
        close = difflib.get_close_matches(str(name), list(table), n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        known = ", ".join(sorted(table)) or "none registered"
        raise ConfigError(f"unknown {kind} {name!r}; {hint}choose one of: {known}")
    return table[name]


def space(name: str) -> SpaceEntry:
    return _lookup(_SPACES, "space", name)


def strategy(name: str) -> StrategyEntry:
    return _lookup(_STRATEGIES, "strategy", name)


def evaluator(name: str) -> EvaluatorEntry:
    return _lookup(_EVALUATORS, "evaluator", name)


def predictor(name: str) -> PredictorEntry:
    return _lookup(_PREDICTORS, "predictor", name)


def check_compatible(space_name: str, entry: StrategyEntry | EvaluatorEntry, kind: str) -> None:
    if entry.spaces is not None and space_name not in entry.spaces:
        raise ConfigError(f"{kind} {entry.name!r} works on {', '.join(entry.spaces)}, not on space "
                          f"{space_name!r}; run `searchlab list` to see what fits")


def spaces() -> dict[str, SpaceEntry]:
    load_builtins()
    return dict(_SPACES)


def strategies() -> dict[str, StrategyEntry]:
    load_builtins()
    return dict(_STRATEGIES)


def evaluators() -> dict[str, EvaluatorEntry]:
    load_builtins()
    return dict(_EVALUATORS)


def predictors() -> dict[str, PredictorEntry]:
    load_builtins()
    return dict(_PREDICTORS)


def _named() -> list[str]:
    """Modules the user named in $SEARCHLAB_PLUGINS (comma-separated)."""
    return [m.strip() for m in os.environ.get("SEARCHLAB_PLUGINS", "").split(",") if m.strip()]


def _installed_and_named() -> list[str]:
    """Modules of the `searchlab.plugins` entry points and of $SEARCHLAB_PLUGINS."""
    return [ep.value for ep in entry_points(group=PLUGIN_GROUP)] + _named()


# built-in plug-in modules that became packages: a stored run names the module, the plug-in is now its `plugin`
_MOVED = {f"searchlab.evolvers.{search}": f"searchlab.evolvers.{search}.plugin"
          for search in ("filter_pruning", "binary_channel_search", "gan_coevolution", "sr_block_search")}
_MOVED["searchlab.training.train_evaluator"] = "searchlab.training.train_evaluator"


def _current_name(module: str) -> str:
    """Runs stored before the package had one top-level name list built-ins as `evolvers.x`, etc.; runs
    stored before a search became a package (or before the engine's modules were grouped) list the
    module's old name."""
    module = f"searchlab.{module}" if module.split(".")[0] in _ROOMS else module
    return _MOVED.get(module, module)


def trusted_plugins(stored: Any, given: Iterable[str] = ()) -> list[str]:
    """The plug-in modules a stored run lists, checked: each must be built in, passed by the caller,
    installed as an entry point, named in $SEARCHLAB_PLUGINS or one that already registered names in
    this process. A crafted run folder cannot make searchlab import a module the user did not choose."""
    if not isinstance(stored, (list, tuple)) or not all(isinstance(m, str) for m in stored):
        raise ConfigError("the run's list of plug-in modules is damaged; restore the run folder from a copy")
    stored = [_current_name(m) for m in stored]
    # a module of this process that already registered names (the caller's own) is imported again by no one
    registered = {e.module for table in (_SPACES, _STRATEGIES, _EVALUATORS) for e in table.values()}
    allowed = set(given) | set(_installed_and_named()) | registered
    unknown = [m for m in stored if m not in allowed]
    if unknown:
        raise ConfigError(f"the run lists plug-in module {unknown[0]!r}, which is neither built in nor installed as a "
                          f"searchlab plug-in; searchlab does not import modules a run folder names: if you trust "
                          f"it, set SEARCHLAB_PLUGINS={unknown[0]}")
    return list(stored)


def load_plugins(modules: Iterable[str] = ()) -> None:
    """Import the given modules and $SEARCHLAB_PLUGINS (each once). Modules of `searchlab.plugins` entry
    points wait until a name they register is looked up: an entry point is named after one (most import
    torch, seconds each, so a command pays only for the plug-ins it uses)."""
    declared = {ep.value for ep in entry_points(group=PLUGIN_GROUP)}
    for module in [*modules, *_named()]:
        if module not in declared:
            _import(module)


def _import(module: str) -> None:
    if module in _LOADED:
        return
    try:
        importlib.import_module(module)
    except ImportError as exc:
        if module in _named():
            raise ConfigError(f"plug-in module {module!r} from SEARCHLAB_PLUGINS cannot be imported: {exc}") from None
        raise
    _LOADED.add(module)
