"""Build a msgspec Struct tree from defaults < TOML file < ``STREAMREC_*`` variables < ``--set`` overrides.

Kept apart from :mod:`stream.config` so that module holds only the fields and their descriptions. A
setting is named by its dotted path at any depth (``serving.blend.student``); its variable joins the
path's parts with ``__`` (``STREAMREC_SERVING__BLEND__STUDENT``): field names never contain two
underscores in a row, so the split cannot be confused with one. Variable and ``--set`` values are read
as TOML values (``2000``, ``true``, ``[1.0, 2.0]``, ``{student = 2.0}``); one that is not valid TOML is
taken as a plain string, so ``kafka:9092`` needs no quotes.
"""

from __future__ import annotations

import difflib
import functools
import os
import re
import tomllib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import msgspec
import msgspec.inspect as mi

ENV_PREFIX = "STREAMREC_"
ENV_SEPARATOR = "__"
S = TypeVar("S", bound=msgspec.Struct)


class ConfigError(ValueError):
    """A one-line, user-facing message that names the fix."""


@dataclass(frozen=True)
class Setting:
    """One field of the tree: its dotted path, its type (unwrapped), default and description."""

    path: str
    type: mi.Type
    default: Any
    description: str

    @property
    def is_table(self) -> bool:
        return isinstance(self.type, mi.StructType)


def env_var(path: str) -> str:
    """The variable the loader reads for a dotted setting path."""
    return ENV_PREFIX + path.replace(".", ENV_SEPARATOR).upper()


def _unwrap(t: mi.Type) -> tuple[mi.Type, str]:
    if isinstance(t, mi.Metadata):
        return t.type, (t.extra_json_schema or {}).get("description", "")
    return t, ""


def setting_paths(cls: type[msgspec.Struct]) -> list[Setting]:
    """Every field of ``cls`` depth-first: a table (a nested Struct) comes before its members."""
    return list(_walk(mi.type_info(cls), msgspec.to_builtins(cls()), ""))


def _walk(struct: mi.Type, defaults: dict[str, Any], prefix: str) -> Iterator[Setting]:
    assert isinstance(struct, mi.StructType)
    for f in struct.fields:
        t, description = _unwrap(f.type)
        setting = Setting(prefix + f.name, t, defaults[f.name], " ".join(description.split()))
        yield setting
        if setting.is_table:
            yield from _walk(t, defaults[f.name], setting.path + ".")


@functools.cache
def _settings(cls: type[msgspec.Struct]) -> dict[str, Setting]:
    return {s.path: s for s in setting_paths(cls)}


def _parse_value(raw: str) -> Any:
    try:
        return tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        return raw


def _known_parent(settings: Mapping[str, Setting], path: str) -> str:
    """The deepest enclosing name of ``path`` that is a setting ("" for the top level)."""
    parent = path.rpartition(".")[0]
    while parent and parent not in settings:
        parent = parent.rpartition(".")[0]
    return parent


def _unknown(cls: type[msgspec.Struct], path: str, origin: str, as_env: bool) -> ConfigError:
    """A miss names the nearest setting at the same depth, else the names the deepest known table has."""
    settings = _settings(cls)
    parent = _known_parent(settings, path)
    level = [k for k in settings if k.rpartition(".")[0] == parent]
    show = env_var if as_env else str
    if parent == path.rpartition(".")[0]:  # a misspelt member of a known table: compare the names alone
        names = {k.rpartition(".")[2]: k for k in level}
        close = [names[n] for n in difflib.get_close_matches(path.rpartition(".")[2], names, n=1, cutoff=0.6)]
    else:
        same_depth = [k for k in settings if k.count(".") == path.count(".")]
        close = difflib.get_close_matches(path, same_depth, n=1, cutoff=0.6)
    if close:
        return ConfigError(f"{origin}: no setting {show(path)}; did you mean {show(close[0])}?")
    members = ", ".join(k.rpartition(".")[2] for k in level)
    return ConfigError(
        f"{origin}: no setting {show(path)}; {f'{parent} has' if parent else 'the sections are'} {members}"
    )


def _resolve(tree_type: type[msgspec.Struct], path: str, origin: str, as_env: bool = False) -> Setting:
    """The setting ``path`` names, or a one-line error naming the nearest valid one."""
    settings = _settings(tree_type)
    if path in settings:
        return settings[path]
    parent = _known_parent(settings, path)
    if parent and not settings[parent].is_table:
        raise ConfigError(f"{origin}: {parent} has no members; set it whole, e.g. --set {parent}=VALUE")
    raise _unknown(tree_type, path, origin, as_env)


def _assign(tree: dict[str, Any], setting: Setting, value: Any) -> None:
    *parents, last = setting.path.split(".")
    node = tree
    for part in parents:
        child = node.get(part)
        if not isinstance(child, dict):
            child = node[part] = {}
        node = child
    old = node.get(last)
    if setting.is_table and isinstance(old, dict) and isinstance(value, dict):
        value = {**old, **value}
    node[last] = value


def _check_file(cls: type[msgspec.Struct], tree: Mapping[str, Any], origin: str, prefix: str = "") -> None:
    for key, value in tree.items():
        setting = _resolve(cls, prefix + key, origin)
        if setting.is_table and isinstance(value, Mapping):
            _check_file(cls, value, origin, setting.path + ".")


def _read_file(file: str | os.PathLike[str]) -> dict[str, Any]:
    path = Path(file)
    try:
        return tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist; fix --config or STREAMREC_CONFIG") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML ({exc}); fix the file") from None


def _env_overrides(cls: type[msgspec.Struct], env: Mapping[str, str]) -> list[tuple[Setting, Any]]:
    """Settings named by variables, shallow ones first so a member's variable beats its table's."""
    found = []
    for name, raw in env.items():
        if not name.startswith(ENV_PREFIX) or ENV_SEPARATOR not in name:
            continue
        path = ".".join(name[len(ENV_PREFIX) :].lower().split(ENV_SEPARATOR))
        found.append((_resolve(cls, path, f"variable {name}", as_env=True), _parse_value(raw)))
    return sorted(found, key=lambda item: item[0].path.count("."))


def _set_overrides(cls: type[msgspec.Struct], overrides: Sequence[str]) -> list[tuple[Setting, Any]]:
    found = []
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set {item!r}: expected NAME=VALUE, e.g. --set serving.blend.student=2")
        found.append((_resolve(cls, key.strip(), f"--set {item}"), _parse_value(raw.strip())))
    return found


def load(
    cls: type[S],
    file: str | os.PathLike[str] | None = None,
    overrides: Sequence[str] = (),
    env: Mapping[str, str] | None = None,
) -> S:
    """Merge the file, the variables and ``NAME=VALUE`` overrides (in rising priority) into ``cls``."""
    env = os.environ if env is None else env
    file = file or env.get(f"{ENV_PREFIX}CONFIG") or None
    tree: dict[str, Any] = _read_file(file) if file else {}
    _check_file(cls, tree, f"config file {file}")
    for setting, value in _env_overrides(cls, env) + _set_overrides(cls, overrides):
        _assign(tree, setting, value)
    try:
        return msgspec.convert(tree, cls, strict=False)
    except msgspec.ValidationError as exc:
        raise ConfigError(_explain(cls, str(exc))) from None


def _explain(cls: type[msgspec.Struct], text: str) -> str:
    """Turn msgspec's "<problem> - at `$.serving.blend.student`" into a line that names the fix."""
    problem, _, at = text.partition(" - at `$.")
    setting = re.sub(r"\[[^\]]*\]", "", at.rstrip("`")) or "config"
    if setting not in _settings(cls) or _settings(cls)[setting].is_table:  # a check that names its own fix
        return f"config {setting}: {problem}"
    return f"config {setting}: {problem}; fix it with --set {setting}=..., {env_var(setting)} or the config file"
