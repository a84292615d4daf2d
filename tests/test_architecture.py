"""Dependencies point one way between the top-level packages, dada <- reproduce <- analysis, and imports are inert."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("dada", "reproduce", "analysis")
ALLOWED = {"dada": set(), "reproduce": {"dada"}, "analysis": {"dada", "reproduce"}}


def _imported_packages(path: Path) -> set[str]:
    """The project's top-level packages that ``path`` imports, at any depth of its code."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        found |= {name.split(".")[0] for name in names} & set(PACKAGES)
    return found


def package_graph() -> dict[str, set[str]]:
    """Which top-level packages each one imports (itself excluded)."""
    return {
        package: set().union(*(_imported_packages(path) for path in (ROOT / package).rglob("*.py"))) - {package}
        for package in PACKAGES
    }


def test_dependencies_point_one_way():
    graph = package_graph()
    for package, imports in graph.items():
        assert imports <= ALLOWED[package], f"{package} imports {sorted(imports - ALLOWED[package])}"


def test_the_walk_sees_an_upward_import(tmp_path):
    module = tmp_path / "bad.py"
    module.write_text("def late():\n    from analysis.report import write_results\n")
    assert _imported_packages(module) == {"analysis"}


@pytest.mark.parametrize("module", ["dada.search.loop", "analysis.figures", "analysis.estimators"])
def test_import_selects_no_matplotlib_backend(module):
    """No ``matplotlib.use`` on import: the backend is still unresolved after importing the module."""
    code = (
        f"import {module}, matplotlib; "
        "print(matplotlib.rcParams._get_backend_or_none())"
    )  # None until something resolves it
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={"MPLBACKEND": "", "PATH": ""},
        check=True,
    )
    assert result.stdout.strip() == "None"


def test_import_registers_no_config_schema():
    """The apps' schemas reach Hydra's ConfigStore by an explicit call (register_app_schemas), not by importing."""
    code = (
        "import dada.search.loop, dada.train.loop; from hydra.core.config_store import ConfigStore; "
        "print(sorted(name for name in ConfigStore.instance().repo if name.endswith('_schema.yaml')))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert result.stdout.strip() == "[]"


def test_a_search_or_evaluation_never_imports_the_detection_stack():
    code = (
        "import sys; from dada.config import compose_app_config; compose_app_config('search'); "
        "compose_app_config('train'); "
        "print(sorted(m for m in sys.modules if m.startswith(('dada.detect', 'pycocotools'))))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert result.stdout.strip() == "[]"
