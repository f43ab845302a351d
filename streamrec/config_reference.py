"""The configuration reference, generated from :class:`stream.config.Config` itself.

One Markdown table per section: each field's type (with its bounds), its default written as the TOML
value a config file, ``--set`` or the environment takes, its environment variable, and the comment
written above the field in ``stream/config.py`` (msgspec keeps no field docs, so the comment lines
are read from the class source). ``streamrec config reference`` prints it; the README holds a copy
between ``<!-- config-reference:start -->`` and ``<!-- config-reference:end -->`` that
``tests/test_config_reference.py`` keeps equal to it.
"""

from __future__ import annotations

import inspect
import json
import re
from typing import Any

import msgspec
import msgspec.inspect as mi

from stream.config import ENV_PREFIX, Config

_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")
_FIELD_LINE = re.compile(r"^ {4}([A-Za-z_]\w*)\s*:")

INTRO = (
    "Generated from `stream/config.py` by `streamrec config reference` "
    "(`tests/test_config_reference.py` keeps this copy current).\n\n"
    "Precedence: defaults < TOML file (`--config FILE` or `STREAMREC_CONFIG`) < environment "
    "`STREAMREC_<SECTION>__<FIELD>` < `--set SECTION.FIELD=VALUE`. Environment and `--set` values "
    "are read as TOML values (`2000`, `true`, `[1.0, 2.0]`, `{student = 2.0}`); one that is not "
    "valid TOML is taken as a plain string, so `kafka:9092` needs no quotes. A table-valued field "
    "(`serving.blend`) is set whole, and members it leaves out keep their defaults. A comment in "
    "`stream/config.py` describes the field right below it; the fields that follow it in the same "
    "group may share it."
)


def env_var(section: str, field: str) -> str:
    """The variable the loader reads for ``section.field``: ``STREAMREC_<SECTION>__<FIELD>``."""
    return f"{ENV_PREFIX}{section.upper()}__{field.upper()}"


def toml_value(value: Any) -> str:
    """``value`` (msgspec builtins) as a TOML value: what a config file, ``--set`` or an env var takes."""
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


def field_comments(cls: type) -> dict[str, str]:
    """The ``# ...`` lines directly above each field of ``cls``, joined into one sentence.

    A comment block documents the field right below it only; a field without one gets nothing.
    """
    fields = set(cls.__struct_fields__)
    docs: dict[str, str] = {}
    pending: list[str] = []
    for line in inspect.getsource(cls).splitlines()[1:]:
        stripped = line.strip()
        if stripped.startswith("#"):
            pending.append(stripped.lstrip("#").strip())
            continue
        match = _FIELD_LINE.match(line)
        if match and pending and match[1] in fields:
            docs[match[1]] = " ".join(pending)
        pending = []
    return docs


def type_name(t: mi.Type) -> str:
    """A field's type as a reader needs it: the kind, and the bounds the loader enforces."""
    if isinstance(t, mi.IntType | mi.FloatType):
        kind = "int" if isinstance(t, mi.IntType) else "float"
        low = (">", t.gt) if t.gt is not None else (">=", t.ge) if t.ge is not None else None
        high = ("<", t.lt) if t.lt is not None else ("<=", t.le) if t.le is not None else None
        if low and high:
            return f"{kind}, {low[1]!r} {'<' if low[0] == '>' else '<='} x {high[0]} {high[1]!r}"
        bound = low or high
        return f"{kind}, {bound[0]} {bound[1]!r}" if bound else kind
    if isinstance(t, mi.BoolType):
        return "bool"
    if isinstance(t, mi.StrType):
        return "str"
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


def _code(text: str) -> str:
    return f"`{text}`" if text else ""


def _derived(cls: type, instance: Any) -> list[str]:
    """Read-only properties of a section (e.g. kafka.dlq_topic), with their value under the defaults."""
    return [
        f"`{name}` = `{toml_value(getattr(instance, name))}`"
        for name, member in inspect.getmembers(cls)
        if isinstance(member, property)
    ]


def section_rows(section: str, struct: mi.StructType, defaults: dict[str, Any]) -> list[str]:
    docs = field_comments(struct.cls)
    rows = []
    for f in struct.fields:
        doc = docs.get(f.name, "")
        if isinstance(f.type, mi.StructType):  # a nested table (serving.blend): its class docstring
            doc = " ".join(filter(None, [doc, (inspect.getdoc(f.type.cls) or "").split("\n\n")[0]]))
        rows.append(
            f"| `{f.name}` | {_cell(type_name(f.type))} | {_code(_cell(toml_value(defaults[f.name])))} "
            f"| `{env_var(section, f.name)}` | {_cell(doc)} |"
        )
        if isinstance(f.type, mi.StructType):  # then one row per member
            nested_docs = field_comments(f.type.cls)
            for g in f.type.fields:
                rows.append(
                    f"| `{f.name}.{g.name}` | {_cell(type_name(g.type))} "
                    f"| {_code(_cell(toml_value(defaults[f.name][g.name])))} "
                    f"| in `{env_var(section, f.name)}` | {_cell(nested_docs.get(g.name, ''))} |"
                )
    return rows


def render_reference() -> str:
    """The Markdown reference of every configuration field."""
    info = mi.type_info(Config)
    defaults = msgspec.to_builtins(Config())
    instance = Config()
    out = [INTRO]
    for section in info.fields:
        struct = section.type
        assert isinstance(struct, mi.StructType)
        out += [
            "",
            f"#### `[{section.name}]`",
            "",
            "| field | type | default | environment variable | description |",
            "|---|---|---|---|---|",
        ]
        out += section_rows(section.name, struct, defaults[section.name])
        derived = _derived(struct.cls, getattr(instance, section.name))
        if derived:
            out += ["", "Derived, not settable: " + ", ".join(derived) + "."]
    return "\n".join(out) + "\n"
