"""The install contract: `pip install streamrec` serves without torch, and every import is declared.

A fresh virtual environment per CI run would take minutes; these checks run in the test environment
instead, with torch and onnx made unimportable in a subprocess, and pyproject.toml read as declared.
"""

from __future__ import annotations

import ast
import importlib.metadata
import os
import re
import subprocess
import sys
import textwrap
import tomllib
import zipfile
from collections.abc import Iterator
from pathlib import Path

from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]
LOCAL = {"stream", "offline", "serving", "streamrec", "tests"}
# Declared but never imported by name; each with the reason it is needed anyway.
NOT_IMPORTED = {"onnx": "torch.onnx.export loads it"}
# Scripts that run in another environment, never imported by the project; each with the one it runs in.
OTHER_ENVIRONMENT = {
    "streamrec/quality/recbole_runner.py": ".venv-recbole (requirements/recbole.txt), started by ./run recbole",
}

# Makes torch and onnx unimportable (as in an environment with only the runtime dependencies), then
# runs the command given after `-c CODE`.
WITHOUT_TRAINING = textwrap.dedent(
    """
    import importlib.abc, runpy, sys

    class WithoutTraining(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.partition(".")[0] in ("torch", "onnx"):
                raise ModuleNotFoundError(f"No module named {name!r} (blocked by the test)", name=name)
            return None

    sys.meta_path.insert(0, WithoutTraining())
    sys.argv = sys.argv[1:]
    runpy.run_module(sys.argv[0], run_name="__main__", alter_sys=True)
    """
)


def without_training(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", WITHOUT_TRAINING, *argv], capture_output=True, text=True, timeout=120, cwd=ROOT
    )


def test_serve_help_runs_without_torch_and_onnx():
    done = without_training("streamrec", "serve", "--help")
    assert done.returncode == 0, done.stderr
    assert "Usage: streamrec serve" in done.stdout


def test_every_module_of_the_served_path_imports_without_torch_and_onnx(tmp_path):
    modules = sorted(_modules("stream") + _modules("serving"))
    script = tmp_path / "import_all.py"
    script.write_text("import importlib\n" + "".join(f"importlib.import_module({m!r})\n" for m in modules))
    done = subprocess.run(
        [sys.executable, "-c", WITHOUT_TRAINING, "import_all"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": f"{tmp_path}:{ROOT}"},
    )
    assert done.returncode == 0, done.stderr[-3000:]


def test_python_dash_m_streamrec_is_the_cli():
    done = subprocess.run(
        [sys.executable, "-m", "streamrec", "no-such-command"], capture_output=True, text=True, timeout=120, cwd=ROOT
    )
    assert done.returncode == 2
    assert "no-such-command" in done.stderr


def test_the_version_is_the_distributions():
    import streamrec

    assert streamrec.__version__ == importlib.metadata.version("streamrec")


def test_every_imported_distribution_is_declared_where_it_is_used():
    extras = _declared()
    runtime, train, dev = extras[""], extras["train"], extras["dev"]
    allowed = {
        "stream": runtime,
        "serving": runtime,
        "streamrec": runtime,  # a module-level import runs with every command, `serve` included
        "streamrec (inside a function)": runtime | train,
        "offline": runtime | train,
        "tests": runtime | train | dev,
    }
    wrong = [
        f"{where}: {file} imports {module} ({', '.join(dists)}), not in {_extra_names(extras, allowed[where])}"
        for where, file, module, dists in _imported_distributions()
        if not set(dists) & allowed[where]
    ]
    assert not wrong, "\n".join(wrong)


def test_scripts_of_another_environment_import_nothing_of_the_project():
    local_modules = {script.removesuffix(".py").replace("/", ".") for script in OTHER_ENVIRONMENT}
    for script in OTHER_ENVIRONMENT:
        imported = {module for module, _ in _imports(ROOT / script)}
        assert not imported & LOCAL, f"{script} runs in another environment, where the project is not installed"
    for package in sorted(LOCAL - {"tests"}):
        for path in sorted((ROOT / package).rglob("*.py")):
            tree = ast.parse(path.read_text())
            names = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
            names |= {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
            assert not names & local_modules, f"{path.relative_to(ROOT)} imports a script of another environment"


def test_every_runtime_and_training_dependency_is_imported():
    extras = _declared()
    imported = {dist for *_, dists in _imported_distributions() for dist in dists}
    unused = (extras[""] | extras["train"]) - imported - set(NOT_IMPORTED)
    assert not unused, f"declared in pyproject.toml but imported nowhere: {sorted(unused)}"


def test_the_locks_pin_the_cpu_torch_for_training_and_no_torch_for_the_worker():
    runtime, train, dev = (_pins(ROOT / "requirements" / f"{name}.txt") for name in ("runtime", "train", "dev"))
    assert "torch" not in runtime and "onnx" not in runtime
    assert train["torch"].endswith("+cpu"), "an unpinned or plain torch is the multi-GB CUDA build"
    assert runtime.items() <= train.items() <= dev.items(), "the locks disagree on a shared pin"


def test_the_locks_are_compiled_from_the_declared_ranges():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    locks = {"runtime": project["dependencies"], "train": extras["train"], "dev": extras["dev"]}
    stale = []
    for lock, specs in locks.items():
        pins = _pins(ROOT / "requirements" / f"{lock}.txt")
        for requirement in map(Requirement, specs):
            pinned = pins.get(_canonical(requirement.name))
            if pinned is None or not requirement.specifier.contains(pinned, prereleases=True):
                found = f"pins {requirement.name}=={pinned}" if pinned else f"has no {requirement.name}"
                stale.append(f"requirements/{lock}.txt {found}; pyproject.toml asks {requirement}")
    assert not stale, "pyproject.toml changed since the locks were compiled; run ./run lock:\n" + "\n".join(stale)


def test_run_adds_pytorchs_cpu_index_only_where_no_local_wheel_has_the_pinned_torch(tmp_path):
    pin = re.search(r"^torch==(\S+)", (ROOT / "requirements" / "train.in").read_text(), re.MULTILINE)[1]
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    assert _torch_source(find_links="") == "--extra-index-url=https://index.invalid/cpu"
    _fake_wheel(wheels, "torch", pin)
    assert _torch_source(find_links=str(wheels)) == ""


# -- helpers ---------------------------------------------------------------------------------------


def _modules(package: str) -> list[str]:
    return [
        ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
        for path in (ROOT / package).rglob("*.py")
        if path.name != "__main__.py"
    ]


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _declared() -> dict[str, set[str]]:
    """Distribution names per extra ("" for the runtime dependencies), from pyproject.toml."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    groups = {"": project["dependencies"], **project["optional-dependencies"]}
    return {
        extra: {_canonical(re.match(r"[A-Za-z0-9._-]+", spec)[0]) for spec in specs} for extra, specs in groups.items()
    }


def _extra_names(extras: dict[str, set[str]], allowed: set[str]) -> str:
    names = [f"[{extra}]" if extra else "dependencies" for extra, dists in extras.items() if dists <= allowed]
    return " or ".join(names)


def _imports(path: Path) -> Iterator[tuple[str, bool]]:
    """Top-level names of the absolute imports in ``path``, each with whether it is inside a function."""
    tree = ast.parse(path.read_text(), filename=str(path))
    nested = {
        id(node)
        for func in ast.walk(tree)
        if isinstance(func, ast.FunctionDef | ast.AsyncFunctionDef)
        for node in ast.walk(func)
    }
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        for name in names:
            yield name.partition(".")[0], id(node) in nested


def _imported_distributions() -> Iterator[tuple[str, str, str, list[str]]]:
    """(where, file, module, distributions) for every third-party import in the project's code."""
    providers = importlib.metadata.packages_distributions()
    local = LOCAL | {path.stem for path in (ROOT / "tests").rglob("*.py")}
    for package in sorted(LOCAL):
        for path in sorted((ROOT / package).rglob("*.py")):
            if str(path.relative_to(ROOT)) in OTHER_ENVIRONMENT:
                continue
            for module, in_function in _imports(path):
                if module in local or module in sys.stdlib_module_names:
                    continue
                where = f"{package} (inside a function)" if package == "streamrec" and in_function else package
                dists = [_canonical(d) for d in providers.get(module, [])]
                assert dists, f"{path.relative_to(ROOT)} imports {module}, which no installed distribution provides"
                yield where, str(path.relative_to(ROOT)), module, dists


def _pins(lock: Path) -> dict[str, str]:
    pins = re.findall(r"^([A-Za-z0-9._-]+)==(\S+)", lock.read_text(), flags=re.MULTILINE)
    return {_canonical(name): version for name, version in pins}


def _torch_source(find_links: str) -> str:
    """What ./run's torch_source prints under pip's configuration of only this find-links folder."""
    script = 'eval "$(sed -n "/^torch_source() {/,/^}/p" run)"; torch_source "$1"'
    env = {**os.environ, "PIP_CONFIG_FILE": os.devnull, "PIP_FIND_LINKS": find_links}
    env["TORCH_INDEX"] = "https://index.invalid/cpu"
    done = subprocess.run(
        ["bash", "-c", script, "_", sys.executable], capture_output=True, text=True, timeout=120, cwd=ROOT, env=env
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def _fake_wheel(folder: Path, name: str, version: str) -> None:
    """A minimal valid wheel: enough for pip to resolve ``name==version`` from a find-links folder."""
    dist_info = f"{name}-{version}.dist-info"
    files = {
        f"{name}/__init__.py": "",
        f"{dist_info}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n",
        f"{dist_info}/WHEEL": "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    with zipfile.ZipFile(folder / f"{name}-{version}-py3-none-any.whl", "w") as wheel:
        for path, text in files.items():
            wheel.writestr(path, text)
        wheel.writestr(f"{dist_info}/RECORD", "".join(f"{path},,\n" for path in [*files, f"{dist_info}/RECORD"]))
