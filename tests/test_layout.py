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
