"""Lazy package exports (PEP 562): a package re-exports its submodules' public names without importing
them until first use, so importing the package for its command-line module (every `searchlab` command
builds its parser from all of them) does not import torch."""

from __future__ import annotations

import importlib
import pkgutil
import sys
from typing import Callable


def lazy_exports(package: str, modules: dict[str, list[str]]) -> tuple[Callable, Callable, list[str]]:
    """(`__getattr__`, `__dir__`, `__all__`) for `package`, whose names live in `modules` (submodule -> names)."""
    where = {name: module for module, names in modules.items() for name in names}
    # importing a submodule binds its name on the package, which would hide an export of the same name
    clash = sorted(set(where) & {m.name for m in pkgutil.iter_modules(sys.modules[package].__path__)})
    if clash:
        raise ImportError(f"{package} exports {clash[0]!r}, which is also a submodule's name; rename one")

    def __getattr__(name: str):
        if name not in where:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(f"{package}.{where[name]}"), name)

    def __dir__() -> list[str]:
        return sorted(where)

    return __getattr__, __dir__, sorted(where)
