"""A strict checker for objects against a CRD's published openAPIV3Schema (structural schema):
type, properties (unknown fields refused: kubectl's default --validate=strict), required,
enum, items, min/max items, lengths and numbers, pattern, int-or-string and preserve-unknown
subtrees. Not checked: CEL rules (x-kubernetes-validations), formats, defaults - the real API
server does those; the tests that use this say so."""

from __future__ import annotations

import re
from typing import Any

TYPES = {"object": dict, "array": list, "string": str, "boolean": bool}


def _type_ok(value: Any, kind: str) -> bool:
    if kind == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    return isinstance(value, TYPES[kind])


def check(value: Any, schema: dict, path: str) -> list[str]:
    where = path or "(root)"
    if schema.get("x-kubernetes-int-or-string"):
        if not (isinstance(value, str) or _type_ok(value, "integer")):
            return [f"{where}: expected an integer or a string"]
        return []
    kind = schema.get("type")
    if kind and not _type_ok(value, kind):
        return [f"{where}: expected {kind}, got {type(value).__name__}"]
    problems: list[str] = []
    if "enum" in schema and value not in schema["enum"]:
        problems.append(f"{where}: {value!r} is not one of {schema['enum']}")
    if isinstance(value, str):
        if "maxLength" in schema and len(value) > schema["maxLength"]:
            problems.append(f"{where}: longer than {schema['maxLength']}")
        if "minLength" in schema and len(value) < schema["minLength"]:
            problems.append(f"{where}: shorter than {schema['minLength']}")
        if "pattern" in schema and not re.search(schema["pattern"], value):
            problems.append(f"{where}: {value!r} does not match {schema['pattern']}")
    if _type_ok(value, "number"):
        if "minimum" in schema and value < schema["minimum"]:
            problems.append(f"{where}: {value} is below the minimum {schema['minimum']}")
        if "maximum" in schema and value > schema["maximum"]:
            problems.append(f"{where}: {value} is above the maximum {schema['maximum']}")
    if isinstance(value, list):
        if "maxItems" in schema and len(value) > schema["maxItems"]:
            problems.append(f"{where}: more than {schema['maxItems']} items")
        if "minItems" in schema and len(value) < schema["minItems"]:
            problems.append(f"{where}: fewer than {schema['minItems']} items")
        for i, item in enumerate(value):
            problems += check(item, schema.get("items") or {}, f"{path}[{i}]")
    if isinstance(value, dict) and not schema.get("x-kubernetes-preserve-unknown-fields"):
        props = schema.get("properties")
        extra = schema.get("additionalProperties")
        for key in schema.get("required") or []:
            if key not in value:
                problems.append(f"{where}: required field {key!r} is missing")
        for key, sub in value.items():
            child = f"{path}.{key}" if path else key
            if props is not None and key in props:
                problems += check(sub, props[key], child)
            elif isinstance(extra, dict):
                problems += check(sub, extra, child)
            elif props is not None or extra is False:
                problems.append(f"{where}: unknown field {key!r}")
    return problems


def validate(obj: dict, schemas: dict[str, dict]) -> list[str]:
    """Problems of one object against ``schemas`` ("<apiVersion> <kind>" -> {namespaced,
    schema}); apiVersion, kind and metadata are the API server's own."""
    key = f"{obj.get('apiVersion')} {obj.get('kind')}"
    if key not in schemas:
        return [f"no schema for {key}"]
    entry = schemas[key]
    body = {k: v for k, v in obj.items() if k not in ("apiVersion", "kind", "metadata")}
    schema = {**entry["schema"], "properties": {
        k: v for k, v in entry["schema"].get("properties", {}).items()
        if k not in ("apiVersion", "kind", "metadata")}}
    problems = check(body, schema, "")
    meta = obj.get("metadata") or {}
    if entry["namespaced"] != ("namespace" in meta):
        problems.append(f"metadata.namespace: {key} is "
                        f"{'namespaced' if entry['namespaced'] else 'cluster-scoped'}")
    return problems
