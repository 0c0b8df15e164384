"""Guards the layout: platform/ is a source root (never a package) and imports run one way,
workers -> loupe -> ml."""

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _imported_modules(folder: Path):
    for path in folder.rglob("*.py"):
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    yield path, alias.name.split(".")[0]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                yield path, node.module.split(".")[0]


def test_platform_folder_is_not_a_package():
    assert not (ROOT / "platform" / "__init__.py").exists()


def test_packages_import_from_anywhere_and_platform_stays_stdlib(tmp_path):
    code = (
        "import platform, config, loupe, workers, ml;"
        "assert platform.system() and platform.python_version();"
        "print(platform.__file__)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, check=True
    )
    assert "platform.py" in out.stdout and "/work" not in out.stdout.split("platform.py")[0][-8:]


def test_ml_imports_nothing_of_the_platform():
    forbidden = {
        "django",
        "celery",
        "rest_framework",
        "label_studio_sdk",
        "loupe",
        "workers",
        "config",
    }
    offenders = [
        f"{path.relative_to(ROOT)} imports {module}"
        for path, module in _imported_modules(ROOT / "ml")
        if module in forbidden
    ]
    assert offenders == []


def test_loupe_never_imports_workers():
    offenders = [
        f"{path.relative_to(ROOT)} imports workers"
        for path, module in _imported_modules(ROOT / "platform")
        if module == "workers"
    ]
    assert offenders == []


def test_label_studio_sdk_is_imported_by_one_adapter_only():
    importers = {
        str(path.relative_to(ROOT))
        for path, module in _imported_modules(ROOT / "platform")
        if module == "label_studio_sdk"
    }
    assert importers <= {"platform/loupe/labeling/adapter.py"}


def _loupe_modules(platform: Path) -> dict[str, Path]:
    """{dotted name: file} of every module inside <platform>/loupe (migrations left out)."""
    modules = {}
    for path in (platform / "loupe").rglob("*.py"):
        if "migrations" in path.parts:
            continue
        parts = list(path.relative_to(platform).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        modules[".".join(parts)] = path
    return modules


def loupe_import_graph(platform: Path = ROOT / "platform") -> dict[str, set[str]]:
    """{module: the loupe modules it imports}, counting every import statement anywhere in
    the file (inside functions too: a lazy import is an edge all the same), relative imports
    resolved, `from package import module` as an import of that module. A module's own
    packages are left out: importing them is no dependency on another module."""
    modules = _loupe_modules(platform)

    def resolve(name: str) -> str:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name

    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                    base = ".".join(anchor + ([node.module] if node.module else []))
                targets = [base] + [f"{base}.{alias.name}" for alias in node.names]
            else:
                continue
            for target in map(resolve, targets):
                if target and target != name and not name.startswith(target + "."):
                    graph[name].add(target)
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str]:
    """One cycle of the graph as [a, b, ..., a], or [] when it has none."""
    done: set[str] = set()
    path: list[str] = []

    def visit(node: str) -> list[str]:
        path.append(node)
        for nxt in sorted(graph[node]):
            if nxt in path:
                return path[path.index(nxt) :] + [nxt]
            if nxt not in done:
                cycle = visit(nxt)
                if cycle:
                    return cycle
        path.pop()
        done.add(node)
        return []

    for node in sorted(graph):
        if node not in done:
            cycle = visit(node)
            if cycle:
                return cycle
    return []


def test_the_cycle_finder_sees_lazy_and_relative_imports(tmp_path):
    app = tmp_path / "loupe" / "app"
    app.mkdir(parents=True)
    for folder in (tmp_path / "loupe", app):
        (folder / "__init__.py").write_text("")
    (app / "steps.py").write_text("def run():\n    from .loop import after\n")
    (app / "loop.py").write_text("from loupe.app import steps\nfrom loupe import jobs\n")
    (tmp_path / "loupe" / "jobs.py").write_text("")

    graph = loupe_import_graph(tmp_path)

    assert graph["loupe.app.steps"] == {"loupe.app.loop"}
    assert graph["loupe.app.loop"] == {"loupe.app.steps", "loupe.jobs"}
    assert find_cycle(graph) == ["loupe.app.loop", "loupe.app.steps", "loupe.app.loop"]
    assert find_cycle({"a": {"b"}, "b": set()}) == []


def test_loupe_has_no_import_cycle():
    """The loop module drives the steps; the steps, labeling and imports never import it
    back (they return their outcome, or enqueue a task by name through loupe.jobs)."""
    cycle = find_cycle(loupe_import_graph())
    assert cycle == [], "import cycle inside loupe: " + " -> ".join(cycle)


def test_the_steps_labeling_and_imports_never_import_the_loop():
    importers = {
        name for name, imported in loupe_import_graph().items() if "loupe.learning.loop" in imported
    }
    steps = {"loupe.learning.training", "loupe.learning.scoring", "loupe.learning.selection"}
    assert importers & steps == set()
    assert [
        name for name in importers if name.startswith(("loupe.labeling", "loupe.datasets"))
    ] == []
