"""mkdocs hooks: the reference pages are generated from the code at build time.

Every module of ``streamrec.reference`` (found with pkgutil, so a new one needs no change here) has
``render() -> str``; its Markdown becomes ``reference/<module>.md``. Generated pages are never
written into docs/, so the site cannot serve a stale copy. A generated page missing from ``nav`` is
appended to the Reference section.
"""

from __future__ import annotations

import importlib
import logging
import pkgutil
from typing import Any

from mkdocs.config.defaults import MkDocsConfig
from mkdocs.exceptions import PluginError
from mkdocs.structure.files import File, Files

import streamrec.reference

log = logging.getLogger("mkdocs.hooks.reference")
SECTION = "Reference"


def reference_modules() -> list[str]:
    """Names of the modules in streamrec/reference/, sorted."""
    return sorted(m.name for m in pkgutil.iter_modules(streamrec.reference.__path__) if not m.name.startswith("_"))


def _nav_paths(nav: Any) -> set[str]:
    if isinstance(nav, str):
        return {nav}
    if isinstance(nav, dict):
        return set().union(*(_nav_paths(v) for v in nav.values()))
    if isinstance(nav, list):
        return set().union(*(_nav_paths(v) for v in nav)) if nav else set()
    return set()


def on_config(config: MkDocsConfig) -> MkDocsConfig:
    listed = _nav_paths(config.nav)
    missing = [f"reference/{name}.md" for name in reference_modules() if f"reference/{name}.md" not in listed]
    if missing and config.nav is not None:
        section = next((item for item in config.nav if isinstance(item, dict) and SECTION in item), None)
        if section is None:
            raise PluginError(f"mkdocs.yml's nav needs a '{SECTION}' section for the generated pages")
        section[SECTION].extend(missing)
    return config


def on_files(files: Files, config: MkDocsConfig) -> Files:
    for name in reference_modules():
        path = f"reference/{name}.md"
        if files.get_file_from_path(path) is not None:
            raise PluginError(f"docs/{path} is generated from streamrec/reference/{name}.py: delete the file")
        try:
            content = importlib.import_module(f"streamrec.reference.{name}").render()
        except Exception as exc:
            raise PluginError(f"streamrec.reference.{name}.render() failed: {exc}") from exc
        files.append(File.generated(config, path, content=content))
        log.debug("generated %s", path)
    return files
