"""Functions fit on a screen where the issue asks it: the CLI and composition (streamrec/) and the
HTTP layer (serving/api*). A long function there is a sign that a job wants its own module."""

import ast
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
MAX_LINES = 60
CHECKED = ["streamrec/**/*.py", "serving/api*.py", "serving/api/**/*.py"]


def long_functions(path: pathlib.Path) -> list[str]:
    """`name (n lines)` of every function or method in ``path`` longer than MAX_LINES, decorators
    excluded, its docstring included."""
    tree = ast.parse(path.read_text(), filename=str(path))
    return [
        f"{node.name} ({node.end_lineno - node.lineno + 1} lines)"
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and node.end_lineno is not None
        and node.end_lineno - node.lineno + 1 > MAX_LINES
    ]


def checked_files() -> list[pathlib.Path]:
    return sorted({p for pattern in CHECKED for p in ROOT.glob(pattern)})


def test_the_check_finds_a_long_function(tmp_path):
    body = "\n".join(f"    x{i} = {i}" for i in range(MAX_LINES))
    (tmp_path / "long.py").write_text(f"def short():\n    return 1\n\n\ndef long():\n{body}\n")
    assert long_functions(tmp_path / "long.py") == [f"long ({MAX_LINES + 1} lines)"]


@pytest.mark.parametrize("path", checked_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_no_function_is_longer_than_a_screen(path):
    assert not long_functions(path), f"split these into functions of <= {MAX_LINES} lines"
