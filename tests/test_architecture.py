"""The package's structure, read from its source: imports run one way, from the command lines
down to the kernels (README.md's layout table), with no cycle; facts kept in one home agree."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from intriguing_fast.engine.status import Status

PACKAGE = Path(__file__).resolve().parents[1] / "intriguing_fast"
ROOT = PACKAGE.parent

# Lowest first; a module may import only from its own layer's part and the layers below.
LAYERS = (
    ("errors",),
    ("_version", "seeds", "storage", "threads"),
    ("analysis",),
    ("engine",),
    ("attack", "data"),
    ("models", "distributed"),
    ("experiments",),
    ("report",),
    ("cli", "bulk"),
    ("reproduce", "bulk_attack"),
)
RANK = {part: rank for rank, parts in enumerate(LAYERS) for part in parts}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> set[str]:
    """The modules of the package that `path` imports at run time (not under TYPE_CHECKING)."""
    tree = ast.parse(path.read_text())
    package = module_name(path) if path.name == "__init__.py" else module_name(path).rpartition(".")[0]
    skipped = {
        id(n)
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
        for child in node.body
        for n in ast.walk(child)
    }
    found = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("intriguing_fast")}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.startswith("intriguing_fast"):
                for alias in node.names:  # `from X import m` imports the module X.m if there is one, else X
                    sub = ROOT / f"{target}.{alias.name}".replace(".", "/")
                    if sub.is_dir() or sub.with_suffix(".py").exists():
                        found.add(f"{target}.{alias.name}")
                    elif alias.name != "_C":  # the compiled core (csrc/) is below everything
                        found.add(target)
    return found


def graph() -> dict[str, set[str]]:
    modules = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    return {name: {m for m in imports(path) if m in modules and m != name} for name, path in modules.items()}


def part(module: str) -> str:
    return module.split(".")[1] if "." in module else ""


def test_layers_import_only_downwards():
    wrong = []
    for module, targets in graph().items():
        if module == "intriguing_fast":
            continue  # the package face re-exports the public API
        for target in targets:
            if target == "intriguing_fast":
                wrong.append(f"{module} imports the package face (it imports everything)")
            elif part(module) != part(target) and RANK[part(target)] > RANK[part(module)]:
                wrong.append(f"{module} -> {target}")
            elif part(module) != part(target) and RANK[part(target)] == RANK[part(module)]:
                wrong.append(f"{module} -> {target} (parts of one layer are independent)")
    assert not wrong, "imports running up or sideways:\n" + "\n".join(sorted(wrong))


def test_every_part_has_a_layer():
    assert {part(m) for m in graph() if m != "intriguing_fast"} <= set(RANK)


def test_no_import_cycle():
    edges = graph()
    state: dict[str, int] = {}

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(edges[node]):
            if state.get(nxt) == 1:
                raise AssertionError("import cycle: " + " -> ".join(path[path.index(nxt) :] + [nxt]))
            if nxt not in state:
                visit(nxt, path + [nxt])
        state[node] = 2

    for node in sorted(edges):
        if node not in state:
            visit(node, [node])


def test_a_subpackage_imports_alone():
    """Each subpackage imports in a fresh interpreter without the package face having run first."""
    import subprocess
    import sys

    code = (
        "import sys, types, pathlib; pkg = types.ModuleType('intriguing_fast'); "
        f"pkg.__path__ = [{str(PACKAGE)!r}]; sys.modules['intriguing_fast'] = pkg; "
        "import importlib; [importlib.import_module('intriguing_fast.' + m) for m in sys.argv[1:]]"
    )
    parts = ["engine.backends", "engine", "attack", "data", "models", "experiments", "report"]
    for name in parts:
        done = subprocess.run([sys.executable, "-c", code, name], capture_output=True, text=True)
        assert done.returncode == 0, (name, done.stderr[-2000:])


def test_cpp_status_codes_match_python():
    header = (ROOT / "csrc" / "batch.h").read_text()
    enum = re.search(r"enum Status : int64_t \{([^}]*)\}", header).group(1)
    codes = {name: int(value) for name, value in re.findall(r"(\w+)\s*=\s*(-?\d+)", enum)}
    assert codes == {s.name: int(s) for s in Status}


# Size by meaning: a module holds one job, whatever its length; a function reads top to bottom in
# one screen. Lines of code as ruff formats them, its docstring left out; the backends' kernels
# (one fused loop each) are excepted.
FUNCTION_LINES = 70


def code_lines(function: ast.FunctionDef | ast.AsyncFunctionDef) -> int:
    body = function.body
    if (
        isinstance(body[0], ast.Expr)
        and isinstance(body[0].value, ast.Constant)
        and isinstance(body[0].value.value, str)
    ):
        body = body[1:]
    return body[-1].end_lineno - body[0].lineno + 1 if body else 0


def test_no_function_is_long():
    long = {
        f"{path.relative_to(ROOT)}:{node.name}": n
        for path in PACKAGE.rglob("*.py")
        if "backends" not in path.parts
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and (n := code_lines(node)) > FUNCTION_LINES
    }
    assert not long, long
