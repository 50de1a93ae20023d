"""The package's shape, checked from its source: no import cycle, small modules and functions.

Read with ``ast`` (nothing is imported), so these run in a second and fail with the offending
module, line and size. Limits (docs/architecture.md): a module of ``kequireg/`` under
``MAX_MODULE_LINES`` lines, a function under ``MAX_FUNCTION_LINES`` (Numba kernels excepted), a
constructor with at most ``MAX_INIT_PARAMS`` parameters besides ``self``; an import of the
project's own modules inside a function carries a ``# lazy: <why>`` comment (an optional
dependency or import time).
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "kequireg"
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 80
MAX_INIT_PARAMS = 10


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def imported_modules(node: ast.AST, current: str, known: set[str]) -> set[str]:
    """The project modules one import statement loads (``from a import b`` may name module ``a.b``)."""
    out = set()
    if isinstance(node, ast.Import):
        names = [alias.name for alias in node.names]
    elif isinstance(node, ast.ImportFrom):
        if node.level:
            base = current.split(".")[: len(current.split(".")) - node.level + (current in _packages(known))]
            prefix = ".".join(base + ([node.module] if node.module else []))
        else:
            prefix = node.module or ""
        names = [prefix] + [f"{prefix}.{alias.name}" for alias in node.names]
    else:
        return out
    for name in names:
        while name and name not in known:
            name = name.rpartition(".")[0]
        if name and name.startswith("kequireg"):
            out.add(name)
    return out


def _packages(known: set[str]) -> set[str]:
    return {name for name, path in modules().items() if path.name == "__init__.py"}


def import_graph() -> dict[str, set[str]]:
    """Module -> project modules it imports, at module level or inside functions (parents included:
    importing ``a.b.c`` runs ``a/__init__`` and ``a/b/__init__`` first)."""
    mods = modules()
    known = set(mods)
    graph = {}
    for name, path in mods.items():
        edges = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            for target in imported_modules(node, name, known):
                parts = target.split(".")
                edges |= {".".join(parts[:i]) for i in range(2, len(parts) + 1)}
        edges.discard(name)
        # a package's own parents always run before it: not an edge of its own making
        graph[name] = {e for e in edges if not name.startswith(e + ".")}
    return graph


def strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's algorithm: the components of more than one module (each one is a cycle)."""
    index, low, stack, on_stack, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_import_graph_of_kequireg_has_no_cycle():
    cycles = strongly_connected(import_graph())
    assert not cycles, "import cycles (function-level imports included):\n" + "\n".join(" <-> ".join(c) for c in cycles)


def test_cycle_finder_finds_a_planted_cycle():
    assert strongly_connected({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert strongly_connected({"a": {"b"}, "b": set()}) == []


def test_modules_of_kequireg_are_small():
    long = {name: n for name, path in modules().items() if (n := len(path.read_text().splitlines())) > MAX_MODULE_LINES}
    assert not long, f"modules over {MAX_MODULE_LINES} lines (split them by job): {long}"


def _is_numba_kernel(node) -> bool:
    for decorator in node.decorator_list:
        target = decorator.func if isinstance(decorator, ast.Call) else decorator
        if (target.attr if isinstance(target, ast.Attribute) else getattr(target, "id", "")) in ("njit", "jit", "vectorize"):
            return True
    return False


def test_functions_are_short_and_constructors_take_few_parameters():
    long, wide = [], []
    for name, path in modules().items():
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) or _is_numba_kernel(node):
                continue
            size = node.end_lineno - node.lineno + 1
            if size > MAX_FUNCTION_LINES:
                long.append(f"{name}.{node.name} ({size} lines)")
            if node.name == "__init__":
                args = node.args
                count = len(args.posonlyargs) + len(args.args) - 1 + len(args.kwonlyargs)
                if count > MAX_INIT_PARAMS:
                    wide.append(f"{name} line {node.lineno} ({count} parameters)")
    assert not long, f"functions over {MAX_FUNCTION_LINES} lines: {long}"
    assert not wide, f"constructors over {MAX_INIT_PARAMS} parameters (pass an options object): {wide}"


def test_function_level_imports_of_the_project_say_why():
    unexplained = []
    known = set(modules())
    for name, path in modules().items():
        lines = path.read_text().splitlines()
        tree = ast.parse("\n".join(lines), str(path))
        for func in ast.walk(tree):
            if not isinstance(func, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            for node in ast.walk(func):
                if isinstance(node, (ast.Import, ast.ImportFrom)) and imported_modules(node, name, known):
                    here = lines[node.lineno - 1] + (lines[node.lineno - 2] if node.lineno > 1 else "")
                    if "# lazy:" not in here:
                        unexplained.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert not unexplained, ("imports of kequireg modules inside functions without a '# lazy: <why>' comment "
                             f"(move them to the top, or say why: optional dependency / import time): {unexplained}")
