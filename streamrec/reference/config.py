"""The configuration reference, generated from :class:`stream.config.Config` and its field descriptions.

One Markdown table per section: each setting's dotted name, type (with the bounds the loader enforces),
default written as the TOML value a file, ``--set`` or a variable takes, its ``STREAMREC_*`` variable,
and the description given in code. ``streamrec config reference`` prints it; the docs build writes it
to reference/config.md.
"""

from __future__ import annotations

import inspect
import json
import re
from typing import Any

import msgspec
import msgspec.inspect as mi

from stream.config import ENV_SEPARATOR, Config, Setting, env_var, setting_paths

_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")

INTRO = f"""# Configuration

Every process takes one configuration object, merged in this order, each overriding the one before:

1. the defaults below;
2. a TOML file: `--config FILE` or the variable `STREAMREC_CONFIG`;
3. environment variables, one per setting: the dotted name upper-cased, `STREAMREC_` in front and
   `{ENV_SEPARATOR}` (two underscores, which no field name contains) for each dot, e.g.
   `STREAMREC_SERVING__BLEND__STUDENT=2`;
4. `--set NAME=VALUE` on any command that takes configuration, repeatable, e.g.
   `--set serving.blend.student=2`.

Variable and `--set` values are read as TOML values (`2000`, `true`, `[1.0, 2.0]`, `{{student = 2.0}}`);
one that is not valid TOML is taken as a plain string, so `kafka:9092` needs no quotes. A table
(`serving.blend`) can be set whole or member by member; members it leaves out keep their values. A
misspelt name is refused with the nearest valid one."""


def toml_value(value: Any) -> str:
    """``value`` (msgspec builtins) as a TOML value: what a config file, ``--set`` or a variable takes."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        items = (f"{k if _BARE_KEY.fullmatch(k) else json.dumps(k)} = {toml_value(v)}" for k, v in value.items())
        return "{" + ", ".join(items) + "}"
    raise TypeError(f"no TOML form for {type(value).__name__}")


def to_toml(cfg: Config) -> str:
    """``cfg`` as a TOML file: each table's own settings, then its subtables (``[serving.blend]``)."""
    values = msgspec.to_builtins(cfg)
    settings = setting_paths(Config)

    def value(path: str) -> Any:
        node = values
        for part in path.split("."):
            node = node[part]
        return node

    def table(prefix: str) -> list[str]:
        members = [s for s in settings if s.path.rpartition(".")[0] == prefix]
        out = [f"[{prefix}]"] if prefix else []
        out += [f"{s.path.rpartition('.')[2]} = {toml_value(value(s.path))}" for s in members if not s.is_table]
        for s in members:
            if s.is_table:
                out += ["", *table(s.path)] if out else table(s.path)
        return out

    return "\n".join(table("")) + "\n"


def _bounds(t: mi.IntType | mi.FloatType) -> str:
    kind = "int" if isinstance(t, mi.IntType) else "float"
    low = (">", t.gt) if t.gt is not None else (">=", t.ge) if t.ge is not None else None
    high = ("<", t.lt) if t.lt is not None else ("<=", t.le) if t.le is not None else None
    if low and high:
        return f"{kind}, {low[1]!r} {'<' if low[0] == '>' else '<='} x {high[0]} {high[1]!r}"
    bound = low or high
    return f"{kind}, {bound[0]} {bound[1]!r}" if bound else kind


def type_name(t: mi.Type) -> str:
    """A field's type as a reader needs it: the kind, and the bounds the loader enforces."""
    if isinstance(t, mi.Metadata):
        return type_name(t.type)
    if isinstance(t, mi.IntType | mi.FloatType):
        return _bounds(t)
    simple = {mi.BoolType: "bool", mi.StrType: "str"}
    if type(t) in simple:
        return simple[type(t)]
    if isinstance(t, mi.LiteralType):
        return " / ".join(json.dumps(v) for v in t.values)
    if isinstance(t, mi.ListType):
        item = type_name(t.item_type)
        return f"list of ({item})" if "," in item else f"list of {item}"
    if isinstance(t, mi.DictType):
        return f"table of {type_name(t.key_type)} to {type_name(t.value_type)}"
    if isinstance(t, mi.StructType):
        return "table: " + ", ".join(f.name for f in t.fields)
    raise TypeError(f"no reference form for {t!r}")


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def row(setting: Setting) -> str:
    """One table row: name, type, default, variable, description."""
    default = _cell(toml_value(setting.default))
    return (
        f"| `{setting.path}` | {_cell(type_name(setting.type))} | `{default}` "
        f"| `{env_var(setting.path)}` | {_cell(setting.description)} |"
    )


def _derived(section: str) -> str:
    """Read-only properties of a section (e.g. kafka.dlq_topic), with their value under the defaults."""
    instance = getattr(Config(), section)
    names = [name for name, member in inspect.getmembers(type(instance)) if isinstance(member, property)]
    found = ", ".join(f"`{section}.{name}` = `{toml_value(getattr(instance, name))}`" for name in names)
    return f"\n\nDerived, not settable: {found}." if found else ""


def render() -> str:
    """The Markdown reference of every configuration setting."""
    out = [INTRO]
    for setting in setting_paths(Config):
        if "." not in setting.path:
            out += [
                f"\n## `[{setting.path}]`\n\n{setting.description}{_derived(setting.path)}\n",
                "| setting | type | default | variable | description |",
                "|---|---|---|---|---|",
            ]
        else:
            out.append(row(setting))
    return "\n".join(out) + "\n"
