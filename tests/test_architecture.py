"""The structure the code keeps (issue 9): layers, no import cycles, size limits, states.

- engine/ imports nothing above it (notifications/, workflows/, portal/, cli/, prefect):
  checked by importing every engine module in a subprocess where those are blocked.
- No import cycle between the project's modules (every import, also late ones inside
  functions, read from the source).
- No module over 600 lines under engine/, workflows/, notifications/, portal/; no
  function over 80 lines outside the migrations.
- State values are spelled only in engine/states.py (and the migrations).
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("engine", "workflows", "notifications", "portal", "cli")
SIZED = ("engine", "workflows", "notifications", "portal")
MAX_MODULE_LINES = 600
MAX_FUNCTION_LINES = 80


def _modules(packages: tuple[str, ...] = PACKAGES) -> dict[str, Path]:
    found: dict[str, Path] = {}
    for package in packages:
        base = ROOT / package
        if not base.is_dir():
            continue
        for path in sorted(base.rglob("*.py")):
            if "migrations" in path.parts:
                continue
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found[".".join(parts)] = path
    return found


def _imports(module: str, path: Path, known: set[str]) -> set[str]:
    """Project modules ``module`` imports (top level and inside functions)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    is_package = path.name == "__init__.py"
    out: set[str] = set()

    def add(name: str) -> None:
        while name and name not in known:
            name = name.rpartition(".")[0]
        if name and name != module:
            out.add(name)

    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                add(alias.name)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module if is_package else module.rpartition(".")[0]
                for _ in range(node.level - 1):
                    base = base.rpartition(".")[0]
                target = f"{base}.{node.module}" if node.module else base
            else:
                target = node.module or ""
            for alias in node.names:
                full = f"{target}.{alias.name}"
                add(full if full in known else target)
    return out


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = [0]

    def visit(node: str) -> None:
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    sys.setrecursionlimit(10_000)
    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    known = set(modules)
    graph = {}
    for name, path in modules.items():
        # A package's __init__ re-exporting its submodules is not a cycle with them.
        graph[name] = {
            target
            for target in _imports(name, path, known)
            if not (path.name == "__init__.py" and target.startswith(name + "."))
        }
    return graph


def test_no_import_cycles() -> None:
    cycles = _cycles(_graph())
    assert cycles == [], "import cycles: " + "; ".join(" ↔ ".join(c) for c in cycles)


# Each package may import only the packages below it (portal hands answers over through
# workflows.intake's trigger, so it stands above workflows).
LAYERS = ("engine", "notifications", "workflows", "portal", "cli")


def test_every_import_points_down_the_layers() -> None:
    upward = []
    for module, targets in _graph().items():
        level = LAYERS.index(module.split(".")[0])
        for target in sorted(targets):
            if LAYERS.index(target.split(".")[0]) > level:
                upward.append(f"{module} imports {target}")
    assert upward == [], "imports that point up: " + "; ".join(upward)


def test_engine_imports_nothing_above_it_in_source() -> None:
    above = ("notifications", "workflows", "portal", "cli", "prefect")
    offenders = []
    for name, path in _modules(("engine",)).items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and not node.level:
                names = [node.module or ""]
            for imported in names:
                if imported.split(".")[0] in above:
                    offenders.append(f"{name}:{node.lineno} imports {imported}")
    assert offenders == []


def test_engine_loads_with_the_layers_above_blocked() -> None:
    """Every engine module imports in a process where the packages above engine/ and
    Prefect cannot be imported at all."""
    names = sorted(_modules(("engine",)))
    code = (
        "import sys, importlib\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in {'notifications','workflows','portal','cli','prefect'}:\n"
        "            raise ImportError(f'blocked: {name}')\n"
        "sys.meta_path.insert(0, Block())\n"
        f"for name in {names!r}:\n"
        "    importlib.import_module(name)\n"
        "print('ok', len(sys.modules))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.startswith("ok")


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_module_sizes() -> None:
    big = {
        name: n
        for name, path in _modules(SIZED).items()
        if (n := len(path.read_text(encoding="utf-8").splitlines())) > MAX_MODULE_LINES
    }
    assert big == {}, f"modules over {MAX_MODULE_LINES} lines: {big}"


def _long_functions() -> dict[str, int]:
    long: dict[str, int] = {}
    for name, path in _modules().items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                assert node.end_lineno is not None
                start = min([node.lineno, *(d.lineno for d in node.decorator_list)])
                length = node.end_lineno - start + 1
                if length > MAX_FUNCTION_LINES:
                    long[f"{name}.{node.name}:{node.lineno}"] = length
    return long


def test_function_sizes() -> None:
    long = _long_functions()
    assert long == {}, f"functions over {MAX_FUNCTION_LINES} lines: {long}"


# Values of the stored states; spelled only in engine/states.py. The words can also be
# plain English in messages and keys, so only a quoted literal compared with, assigned
# to or passed as a state is looked for.
STATE_WORDS = (
    "pending|submitted|accepted|returned|waived|received|validated|open|consolidated"
    "|closed|active|sending|sent|failed|cancelled"
)
STATE_USE = re.compile(
    r"""(?:status|review_state|state)\s*(?:==|!=|=|\bin\b|\bis\b)\s*\(?\s*["'](?:"""
    + STATE_WORDS
    + r""")["']"""
    + r"""|\.(?:status|review_state)\.(?:in_|not_in)\(\s*\(?\s*["'](?:"""
    + STATE_WORDS
    + r""")["']"""
    + r"""|["'](?:"""
    + STATE_WORDS
    + r""")["']\s*:\s*["'][^"']*[ÀÁÂÃÈÉÊÌÍÒÓÔÕÙÚĂĐĨŨƠƯàáâãèéêìíòóôõùúăđĩũơưạ-ỹ]"""
)


def test_state_values_are_spelled_only_in_the_states_module() -> None:
    hits = []
    for name, path in _modules().items():
        if name == "engine.states":
            continue
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if STATE_USE.search(line):
                hits.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert hits == [], "state strings outside engine/states.py:\n" + "\n".join(hits)


def test_the_state_grep_finds_a_state_string() -> None:
    assert STATE_USE.search('if obligation.status == "pending":')
    assert STATE_USE.search("Obligation.status.in_(('submitted', 'accepted'))")
    assert STATE_USE.search('    "waived": "Được miễn",')
    assert STATE_USE.search('values(status="cancelled")')
    assert not STATE_USE.search('kind == "reminder"')


@pytest.mark.parametrize("package", SIZED)
def test_packages_exist(package: str) -> None:
    assert (ROOT / package / "__init__.py").is_file()
