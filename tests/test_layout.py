"""The layering rules of the README's Architecture section, checked on the code's own imports (ast, not text):

- `schemas/` imports nothing of the project;
- `sciqag/` (the domain) imports only `schemas/`;
- `processors/pipeline/` (what `sciqag worker` runs) imports nothing from `processors/cli`, `jobs` or `ingest`;
- the jobs reach the worker only through `processors.pipeline.worker` (its `Running` handle and `run_worker`).

A test of the checker breaks each rule in a tree it writes, so a checker that finds nothing cannot pass unseen.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PROJECT = ("schemas", "sciqag", "processors")

# (importer prefix, imported prefix that is forbidden, unless it starts with one of the allowed prefixes)
RULES: list[tuple[str, str, tuple[str, ...]]] = [
    ("schemas", "sciqag", ()),
    ("schemas", "processors", ()),
    ("sciqag", "processors", ()),
    ("processors.pipeline", "processors.cli", ()),
    ("processors.pipeline", "processors.jobs", ()),
    ("processors.pipeline", "processors.ingest", ()),
    ("processors.jobs", "processors.pipeline", ("processors.pipeline.worker",)),
]


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(path: Path, root: Path) -> list[tuple[int, str]]:
    """(line, absolute module) for every import in the file, relative imports resolved; `from x import y` also
    yields `x.y`, so importing a submodule by name is seen."""
    name = module_name(path, root)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            found.append((node.lineno, module))
            found += [(node.lineno, f"{module}.{alias.name}") for alias in node.names]
    return found


def _within(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


def import_violations(root: Path) -> list[str]:
    violations = []
    for top in PROJECT:
        for path in sorted((root / top).rglob("*.py")):
            importer = module_name(path, root)
            for line, module in imports_of(path, root):
                for source, forbidden, allowed in RULES:
                    if _within(importer, source) and _within(module, forbidden):
                        if not any(_within(module, a) for a in allowed):
                            violations.append(f"{path.relative_to(root)}:{line}: {importer} imports {module}")
    return sorted(set(violations))


def test_the_code_keeps_the_layering_rules():
    assert import_violations(ROOT) == []


@pytest.mark.parametrize(
    ("file", "source", "expected"),
    [
        ("schemas/bad.py", "from sciqag import ids\n", "schemas.bad imports sciqag"),
        ("sciqag/bad.py", "from processors.settings import Settings\n", "sciqag.bad imports processors.settings"),
        ("sciqag/bad2.py", "import processors\n", "sciqag.bad2 imports processors"),
        ("processors/pipeline/bad.py", "from ..jobs.run import RunReport\n", "imports processors.jobs.run"),
        ("processors/pipeline/bad2.py", "from ..cli import main\n", "imports processors.cli"),
        ("processors/pipeline/bad3.py", "from processors import ingest\n", "imports processors.ingest"),
        ("processors/jobs/bad.py", "from ..pipeline.judge import Judge\n", "imports processors.pipeline.judge"),
    ],
)
def test_the_checker_finds_each_broken_rule(tmp_path, file, source, expected):
    for folder in ("schemas", "sciqag", "processors/pipeline", "processors/jobs"):
        (tmp_path / folder).mkdir(parents=True, exist_ok=True)
        (tmp_path / folder / "__init__.py").write_text("")
    (tmp_path / "processors/jobs/fine.py").write_text("from ..pipeline.worker import Running\nfrom schemas import x\n")
    assert import_violations(tmp_path) == []
    (tmp_path / file).write_text(source)
    found = import_violations(tmp_path)
    assert any(expected in v for v in found), found


@pytest.mark.parametrize("command", [["check", "."], ["format", "--check", "."]], ids=["lint", "format"])
def test_ruff_finds_nothing(command):
    """ruff as configured in pyproject.toml (`make lint` runs the same)."""
    import shutil
    import subprocess
    import sys

    ruff = Path(sys.executable).parent / "ruff"
    exe = str(ruff) if ruff.exists() else shutil.which("ruff")
    assert exe, "ruff is not installed (pip install -e .[test])"
    result = subprocess.run([exe, *command], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
