"""The HTTP API page, read from ``serving/openapi.json``.

That file is the app's own OpenAPI document (a test keeps it equal to what FastAPI serves), so the
page lists exactly the routes, parameters and responses the code declares.
"""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

METHODS = ("get", "post", "put", "patch", "delete")
BOUNDS = (
    ("minimum", "≥"),
    ("exclusiveMinimum", ">"),
    ("maximum", "≤"),
    ("exclusiveMaximum", "<"),
    ("minLength", "length ≥"),
    ("maxLength", "length ≤"),
    ("maxItems", "items ≤"),
    ("maxProperties", "entries ≤"),
)


def spec() -> dict[str, Any]:
    """The committed OpenAPI document."""
    doc: dict[str, Any] = json.loads(resources.files("serving").joinpath("openapi.json").read_text())
    return doc


def schema_type(schema: dict[str, Any]) -> str:
    """A short type name: `string`, `array of string`, `Recommendation`, `integer or null`."""
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        return f"[{name}](#{name.lower()})"
    if "anyOf" in schema:
        return " or ".join(schema_type(s) for s in schema["anyOf"])
    if "enum" in schema:
        return "one of " + ", ".join(f"`{v}`" for v in schema["enum"])
    if schema.get("type") == "array":
        return "array of " + schema_type(schema.get("items", {}))
    return str(schema.get("type", "any"))


def bounds(schema: dict[str, Any]) -> str:
    """The validation bounds of a schema (and of each member of an anyOf)."""
    own = [f"{symbol} {schema[key]:,}" for key, symbol in BOUNDS if key in schema]
    members = [bounds(s) for s in schema.get("anyOf", [])]
    return ", ".join(own + [m for m in members if m])


def _parameters(operation: dict[str, Any]) -> list[str]:
    params = operation.get("parameters", [])
    if not params:
        return []
    rows = ["| parameter | in | type | required | default | bounds | description |", "|---|---|---|---|---|---|---|"]
    for p in params:
        s = p.get("schema", {})
        default = f"`{json.dumps(s['default'])}`" if "default" in s else ""
        rows.append(
            f"| `{p['name']}` | {p['in']} | {schema_type(s)} | {'yes' if p.get('required') else 'no'} | {default} "
            f"| {bounds(s)} | {p.get('description', '')} |"
        )
    return [*rows, ""]


def _responses(operation: dict[str, Any]) -> list[str]:
    rows = ["| status | meaning | body |", "|---|---|---|"]
    for status, response in operation["responses"].items():
        body = response.get("content", {}).get("application/json", {}).get("schema")
        rows.append(f"| {status} | {response.get('description', '')} | {schema_type(body) if body else ''} |")
    return [*rows, ""]


def _operation(path: str, method: str, operation: dict[str, Any]) -> list[str]:
    lines = [f"### `{method.upper()} {path}`", "", operation.get("summary", ""), ""]
    if operation.get("security"):
        lines += ["Needs `Authorization: Bearer <serving.api_token>` when a token is configured.", ""]
    body = operation.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema")
    if body:
        lines += [f"Request body: {schema_type(body)}.", ""]
    return lines + _parameters(operation) + _responses(operation)


def _schema(name: str, schema: dict[str, Any]) -> list[str]:
    lines = [f"### {name}", ""]
    if schema.get("description"):
        lines += [schema["description"], ""]
    required = set(schema.get("required", []))
    lines += ["| field | type | required | default | bounds |", "|---|---|---|---|---|"]
    for field, s in schema.get("properties", {}).items():
        default = f"`{json.dumps(s['default'])}`" if "default" in s else ""
        lines.append(
            f"| `{field}` | {schema_type(s)} | {'yes' if field in required else 'no'} | {default} | {bounds(s)} |"
        )
    if schema.get("additionalProperties") is False:
        lines += ["", "Unknown fields are refused."]
    return [*lines, ""]


def render() -> str:
    """Every route with its parameters and responses, then every body schema, as Markdown."""
    doc = spec()
    lines = [
        "# HTTP API",
        "",
        f"Generated from `serving/openapi.json` (OpenAPI {doc['openapi']}, API version {doc['info']['version']}): "
        f"{doc['info'].get('description', '')} A running worker serves the same document at `/openapi.json` and "
        'an interactive page at `/docs`. Every rejection is a 4xx whose JSON body is `{"error": "<one line>"}`.',
        "",
        "## Routes",
        "",
    ]
    for path, item in doc["paths"].items():
        for method in METHODS:
            if method in item:
                lines += _operation(path, method, item[method])
    lines += ["## Bodies", ""]
    for name, schema in doc.get("components", {}).get("schemas", {}).items():
        lines += _schema(name, schema)
    return "\n".join(lines)
