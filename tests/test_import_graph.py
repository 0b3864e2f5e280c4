"""The package's import graph has no cycle, counting imports inside functions as edges.

Every module of ``arch_gpt`` (all subpackages, wherever setup.cfg maps them) is parsed with ``ast``; each
``import``/``from … import`` of another ``arch_gpt`` module anywhere in its body is an edge, except under
``if TYPE_CHECKING:`` (annotations only, never executed). The dependency direction of ``shared/design.md``
is checked too: the language never imports training/search, search never imports training/studies/cli.
"""
from __future__ import annotations

import ast
import configparser
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def package_dirs() -> dict[str, Path]:
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    dirs = {}
    for line in cfg["options"]["package_dir"].strip().splitlines():
        name, _, path = (part.strip() for part in line.partition("="))
        dirs[name] = ROOT / path
    return dirs


def module_files() -> dict[str, Path]:
    """Dotted module name → source file, for every module of the installed layout."""
    dirs = package_dirs()
    mods: dict[str, Path] = {}
    for top, folder in sorted(dirs.items(), key=lambda kv: len(kv[0])):
        for path in folder.rglob("*.py"):
            rel = path.relative_to(folder).with_suffix("")
            parts = list(rel.parts)
            if any(p in dirs and f"{top}.{p}" in dirs and dirs[f"{top}.{p}"] != folder / p for p in parts[:1]):
                continue
            if "pretrained" in parts:
                continue
            if parts[-1] == "__init__":
                parts = parts[:-1]
            name = ".".join([top, *parts])
            mods.setdefault(name, path)
    return mods


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def imports_of(name: str, path: Path, known: set[str]) -> set[str]:
    """The ``arch_gpt`` modules ``name`` imports anywhere (functions included, TYPE_CHECKING excluded)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    is_pkg = path.name == "__init__.py"
    out: set[str] = set()

    def resolve(module: str | None, level: int) -> str:
        if level == 0:
            return module or ""
        base = name.split(".") if is_pkg else name.split(".")[:-1]
        base = base[:len(base) - (level - 1)]
        return ".".join(base + ([module] if module else []))

    def add(target: str) -> None:
        while target and target not in known:
            target = target.rpartition(".")[0]
        if target and target != name:
            out.add(target)

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child):
                for sub in child.orelse:
                    visit(sub)
                continue
            if isinstance(child, ast.Import):
                for alias in child.names:
                    add(alias.name)
            elif isinstance(child, ast.ImportFrom):
                base = resolve(child.module, child.level)
                for alias in child.names:
                    full = f"{base}.{alias.name}"
                    add(full if full in known else base)
            elif isinstance(child, ast.Call) and isinstance(child.func, ast.Attribute) \
                    and child.func.attr == "import_module" and child.args \
                    and isinstance(child.args[0], ast.Constant) and isinstance(child.args[0].value, str):
                add(child.args[0].value)
            visit(child)

    visit(tree)
    return out


def import_graph() -> dict[str, set[str]]:
    mods = module_files()
    known = set(mods)
    return {name: imports_of(name, path, known) for name, path in mods.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle as a list of modules (first == last), or None."""
    color: dict[str, int] = {}
    stack: list[str] = []

    def dfs(node: str) -> list[str] | None:
        color[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if color.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in color:
                found = dfs(nxt)
                if found:
                    return found
        stack.pop()
        color[node] = 2
        return None

    for node in sorted(graph):
        if node not in color:
            found = dfs(node)
            if found:
                return found
    return None


def test_walker_sees_function_level_imports(tmp_path):
    """The walker itself: an import inside a function closes a cycle it must report."""
    a, b = tmp_path / "a.py", tmp_path / "b.py"
    a.write_text("import arch_gpt.b\n")
    b.write_text("def f():\n    from arch_gpt import a\n")
    known = {"arch_gpt.a", "arch_gpt.b"}
    graph = {"arch_gpt.a": imports_of("arch_gpt.a", a, known), "arch_gpt.b": imports_of("arch_gpt.b", b, known)}
    assert find_cycle(graph) == ["arch_gpt.a", "arch_gpt.b", "arch_gpt.a"]


def test_walker_covers_every_subpackage():
    mods = module_files()
    for pkg in ("arch_gpt.zoo", "arch_gpt.tokenizer", "arch_gpt.training", "arch_gpt.search",
                "arch_gpt.search.strategies", "arch_gpt.cli", "arch_gpt.studies"):
        assert pkg in mods, pkg


def test_no_import_cycle():
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


LANGUAGE = ("arch_gpt.encoding", "arch_gpt.layers", "arch_gpt.shapes", "arch_gpt.torch_io", "arch_gpt.torch_trace",
            "arch_gpt.torch_build", "arch_gpt.zoo", "arch_gpt.io", "arch_gpt.errors")


@pytest.mark.parametrize("source, forbidden, allowed", [
    (LANGUAGE, ("arch_gpt.tokenizer", "arch_gpt.modeling", "arch_gpt.training", "arch_gpt.search",
                "arch_gpt.studies", "arch_gpt.cli"), ()),
    (("arch_gpt.tokenizer",), ("arch_gpt.modeling", "arch_gpt.training", "arch_gpt.search", "arch_gpt.studies",
                               "arch_gpt.cli"), ()),
    # the all-spaces corpus expands every space's cells, so training may read the spaces (never the rest of search)
    (("arch_gpt.training",), ("arch_gpt.search", "arch_gpt.studies", "arch_gpt.cli"), ("arch_gpt.search.spaces",)),
    (("arch_gpt.search",), ("arch_gpt.training", "arch_gpt.studies", "arch_gpt.cli"), ()),
    (("arch_gpt.studies",), ("arch_gpt.cli",), ()),
])
def test_dependencies_run_one_way(source, forbidden, allowed):
    bad = [f"{mod} imports {dep}" for mod, deps in import_graph().items()
           if mod.startswith(source) for dep in deps if dep.startswith(forbidden)
           and not (allowed and dep.startswith(allowed))]
    assert not bad, "; ".join(bad)


def test_search_has_no_argparse_and_one_plotting_module():
    search = package_dirs()["arch_gpt.search"]
    for path in search.rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        tree = ast.parse(text)
        names = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        names |= {(n.module or "").split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
        assert "argparse" not in names, path
        if path.name != "plotting.py":
            assert "matplotlib" not in names, path
