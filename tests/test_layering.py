"""Dependency direction: stream imports neither offline nor serving; the served path never torch."""

import ast
import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]


def imported_modules(package: str) -> set[str]:
    names = set()
    for path in (ROOT / package).rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module:
                names.add(node.module.split(".")[0])
    return names


def test_stream_imports_neither_offline_nor_serving():
    assert not imported_modules("stream") & {"offline", "serving", "streamrec", "torch"}


def test_serving_reads_models_only_through_the_registrys_files():
    assert not imported_modules("serving") & {"offline", "streamrec", "torch"}


def test_served_path_does_not_load_torch():
    code = (
        "import sys, stream.worker, stream.processor, stream.bench, serving.api, serving.model_updates, "
        "serving.publish, serving.freshness, streamrec.stack\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)
