"""The rooms of the house import downwards only (DESIGN.md, "The house"), and no two modules import each
other: searchlab/ (the engine) knows no space, predictor or search; search_spaces/ uses the engine;
predictors/ may use spaces; evolvers/ may use both."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ROOMS = {"searchlab": ("searchlab",), "search_spaces": ("searchlab", "search_spaces"),
         "predictors": ("searchlab", "search_spaces", "predictors"),
         "evolvers": ("searchlab", "search_spaces", "predictors", "evolvers")}
FACADES = {"searchlab.api"}  # the Python API sits on top of every room, as the command line does
PACKAGES = {"searchlab.search_spaces": "search_spaces", "searchlab.predictors": "predictors",
            "searchlab.evolvers": "evolvers"}


def modules():
    for room in ROOMS:
        for path in sorted((ROOT / room).rglob("*.py")):
            if path.is_symlink():  # searchlab/cli.py is the top-level cli.py
                continue
            rel = path.relative_to(ROOT).with_suffix("")
            parts = list(rel.parts[1:] if room == "searchlab" else rel.parts)
            name = ".".join(["searchlab", *parts]).removesuffix(".__init__")
            yield room, name, path


def room_of(module: str) -> str | None:
    for prefix, room in PACKAGES.items():
        if module == prefix or module.startswith(prefix + "."):
            return room
    return "searchlab" if module.split(".")[0] == "searchlab" else None


def imports(path: Path) -> set[str]:
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.add(node.module)
            out.update(f"{node.module}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
    return out


def test_rooms_import_downwards_only():
    wrong = []
    for room, name, path in modules():
        if name in FACADES:
            continue
        for target in imports(path):
            other = room_of(target)
            if other is not None and other not in ROOMS[room]:
                wrong.append(f"{path.relative_to(ROOT)} imports {target} ({room} -> {other})")
    assert not wrong, "\n".join(wrong)


def test_no_two_modules_import_each_other():
    known = {name: path for _, name, path in modules()}
    edges = {name: {t for t in imports(path) if t in known and t not in (name, "searchlab")}
             for name, path in known.items()}
    circles = sorted({tuple(sorted((a, b))) for a, targets in edges.items() for b in targets if a in edges.get(b, ())})
    assert not circles, circles
