"""Strict validation of Kubernetes objects against the schemas in this directory.

A schema file (YAML) names its release and sources and holds ``kinds`` (``"<apiVersion>
<Kind>"`` -> the object's top-level fields besides apiVersion/kind/metadata) and ``types``
(named object types, shared between files through ``$ref``). A field schema is a mapping:

    type: string | integer | boolean | object | array | map | int-or-string | quantity | empty
          | any (a known field whose content these schemas do not spell out)
    properties: {name: field}      (object: any other key is refused)
    required: [names]              (object)
    items: field                   (array)
    values: field                  (map: string keys, every value checked)
    $ref: TypeName                 (a named type; merged under the field's own keys)
    enum: [values]                 pattern: regex     format: see FORMATS
    minimum / maximum              (integer)          minItems (array)
    one_of: [[names], ...]         (object: exactly one of each group is set)
    read_only: true                (set by the server: refused in a manifest)

``validate(obj)`` returns a list of problems, each naming the path ("spec.acme.email: ...");
an empty list means valid.
"""

from __future__ import annotations

import ipaddress
import re
from functools import cache
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).resolve().parent

_DNS1123_LABEL = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_DNS1123_SUBDOMAIN = rf"{_DNS1123_LABEL}(\.{_DNS1123_LABEL})*"
_QUALIFIED_NAME = r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"


def _ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def _cidr(value: str) -> bool:
    try:
        ipaddress.ip_network(value, strict=False)
    except ValueError:
        return False
    return "/" in value


def _pool_entry(value: str) -> bool:
    """MetalLB IPAddressPool address: a CIDR or "first-last" of the same family, first <= last."""
    if "-" in value:
        first, _, last = (p.strip() for p in value.partition("-"))
        if not (_ip(first) and _ip(last)):
            return False
        a, b = ipaddress.ip_address(first), ipaddress.ip_address(last)
        return a.version == b.version and a <= b
    return _cidr(value)


def _label_key(value: str) -> bool:
    prefix, _, name = value.rpartition("/")
    if prefix and (len(prefix) > 253 or not re.fullmatch(_DNS1123_SUBDOMAIN, prefix)):
        return False
    return len(name) <= 63 and re.fullmatch(_QUALIFIED_NAME, name) is not None


FORMATS = {
    "ip": _ip,
    "cidr": _cidr,
    "metallb-address": _pool_entry,
    "dns1123-label": lambda v: len(v) <= 63 and re.fullmatch(_DNS1123_LABEL, v) is not None,
    "dns1123-subdomain": lambda v: len(v) <= 253 and re.fullmatch(_DNS1123_SUBDOMAIN, v)
    is not None,
    "dns1035-label": lambda v: len(v) <= 63 and re.fullmatch(r"[a-z]([-a-z0-9]*[a-z0-9])?", v)
    is not None,
    "label-key": _label_key,
    "label-value": lambda v: len(v) <= 63 and re.fullmatch(rf"({_QUALIFIED_NAME})?", v)
    is not None,
    "duration": lambda v: re.fullmatch(r"(\d+(\.\d+)?(ns|us|µs|ms|s|m|h))+", v) is not None,
    "url": lambda v: re.fullmatch(r"https?://[^\s/]+(/\S*)?", v) is not None,
    "email": lambda v: re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", v) is not None,
    "dns-name": lambda v: re.fullmatch(rf"(\*\.)?{_DNS1123_SUBDOMAIN}", v) is not None,
    "port-name": lambda v: len(v) <= 15 and re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", v)
    is not None and re.search("[a-z]", v) is not None and "--" not in v,
}
_QUANTITY = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)"
                       r"([eE][+-]?\d+|Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E)?")


@cache
def schemas() -> tuple[dict[str, dict], dict[str, dict], dict[str, str]]:
    """(kinds, types, release of each kind) from every *.yaml here."""
    kinds: dict[str, dict] = {}
    types: dict[str, dict] = {}
    release: dict[str, str] = {}
    for path in sorted(HERE.glob("*.yaml")):
        data = yaml.safe_load(path.read_text()) or {}
        for name, schema in (data.get("types") or {}).items():
            if name in types:
                raise ValueError(f"{path.name}: type {name} is defined twice")
            types[name] = schema
        for key, schema in (data.get("kinds") or {}).items():
            if key in kinds:
                raise ValueError(f"{path.name}: kind {key} is defined twice")
            kinds[key] = schema
            release[key] = data["release"]
    return kinds, types, release


def known_kinds() -> set[str]:
    return set(schemas()[0])


def _resolve(schema: dict) -> dict:
    _, types, _ = schemas()
    while "$ref" in schema:
        ref = schema["$ref"]
        if ref not in types:
            raise KeyError(f"schema refers to unknown type {ref}")
        schema = {**types[ref], **{k: v for k, v in schema.items() if k != "$ref"}}
    return schema


def _type_name(value: Any) -> str:
    return {bool: "boolean", int: "integer", float: "number", str: "string", list: "array",
            dict: "object", type(None): "null"}.get(type(value), type(value).__name__)


def check(value: Any, schema: dict, path: str) -> list[str]:
    """Problems of ``value`` against a field schema (path names the field)."""
    schema = _resolve(schema)
    where = path or "<object>"
    if schema.get("read_only"):
        return [f"{where}: is set by the server and may not be given in a manifest"]
    kind = schema.get("type", "object")
    problems: list[str] = []
    if kind == "string":
        if not isinstance(value, str):
            return [f"{where}: expected string, got {_type_name(value)} {value!r}"]
    elif kind == "integer":
        if isinstance(value, bool) or not isinstance(value, int):
            return [f"{where}: expected integer, got {_type_name(value)} {value!r}"]
        if "minimum" in schema and value < schema["minimum"]:
            problems.append(f"{where}: {value} is below the minimum {schema['minimum']}")
        if "maximum" in schema and value > schema["maximum"]:
            problems.append(f"{where}: {value} is above the maximum {schema['maximum']}")
    elif kind == "boolean":
        if not isinstance(value, bool):
            return [f"{where}: expected boolean, got {_type_name(value)} {value!r}"]
    elif kind == "int-or-string":
        if isinstance(value, bool) or not isinstance(value, (int, str)):
            return [f"{where}: expected integer or string, got {_type_name(value)} {value!r}"]
        if isinstance(value, int):
            return [f"{where}: {value} is not a port number"] if schema.get("port") and \
                not 1 <= value <= 65535 else []
        if schema.get("port") and not FORMATS["port-name"](value):
            return [f"{where}: {value!r} is not a port name (IANA_SVC_NAME)"]
        return []
    elif kind == "quantity":
        if isinstance(value, bool) or not isinstance(value, (int, float, str)) or \
                not _QUANTITY.fullmatch(str(value)):
            return [f"{where}: expected a quantity like 100m or 90Mi, got {value!r}"]
        return []
    elif kind == "array":
        if not isinstance(value, list):
            return [f"{where}: expected array, got {_type_name(value)}"]
        if len(value) < schema.get("minItems", 0):
            problems.append(f"{where}: needs at least {schema['minItems']} item(s)")
        for i, item in enumerate(value):
            problems += check(item, schema.get("items", {"type": "string"}), f"{path}[{i}]")
        return problems
    elif kind == "map":
        if not isinstance(value, dict):
            return [f"{where}: expected a map, got {_type_name(value)}"]
        for key, item in value.items():
            if not isinstance(key, str):
                problems.append(f"{where}: key {key!r} is not a string")
                continue
            if schema.get("keys") and not FORMATS[schema["keys"]](key):
                problems.append(f"{where}: key {key!r} is not a valid {schema['keys']}")
            problems += check(item, schema.get("values", {"type": "string"}), f"{path}.{key}")
        return problems
    elif kind == "any":
        return []
    elif kind == "empty":
        if value not in ({}, None):
            return [f"{where}: expected an empty object {{}}, got {value!r}"]
        return []
    elif kind == "object":
        if not isinstance(value, dict):
            return [f"{where}: expected object, got {_type_name(value)}"]
        props = schema.get("properties") or {}
        for key in value:
            if key not in props:
                problems.append(f"{where}: unknown field {key!r} (known: "
                                f"{', '.join(sorted(props)) or 'none'})")
        for key in schema.get("required") or []:
            if key not in value:
                problems.append(f"{where}: required field {key!r} is missing")
        for group in schema.get("one_of") or []:
            given = [k for k in group if k in value]
            if len(given) != 1:
                problems.append(f"{where}: exactly one of {group} must be set, got {given}")
        for key, item in value.items():
            if key in props:
                problems += check(item, props[key], f"{path}.{key}" if path else key)
        return problems
    else:
        raise ValueError(f"unknown schema type {kind!r} at {where}")
    if "enum" in schema and value not in schema["enum"]:
        problems.append(f"{where}: {value!r} is not one of {schema['enum']}")
    if "pattern" in schema and isinstance(value, str) and \
            not re.fullmatch(schema["pattern"], value):
        problems.append(f"{where}: {value!r} does not match {schema['pattern']}")
    if "format" in schema and isinstance(value, str) and not FORMATS[schema["format"]](value):
        problems.append(f"{where}: {value!r} is not a valid {schema['format']}")
    return problems


def validate(obj: Any) -> list[str]:
    """Problems of one manifest document (apiVersion + kind select the schema)."""
    if not isinstance(obj, dict):
        return [f"<document>: expected an object, got {_type_name(obj)}"]
    kinds, _, _ = schemas()
    key = f"{obj.get('apiVersion')} {obj.get('kind')}"
    if key not in kinds:
        return [f"<document>: no schema for {key} (known: {', '.join(sorted(kinds))})"]
    spec = kinds[key]
    top = {"apiVersion": {"type": "string"}, "kind": {"type": "string"},
           "metadata": {"$ref": "ObjectMeta"}, **(spec.get("properties") or {})}
    schema = {"type": "object", "properties": top,
              "required": ["apiVersion", "kind", "metadata", *(spec.get("required") or [])]}
    problems = check(obj, schema, "")
    meta = obj.get("metadata") if isinstance(obj.get("metadata"), dict) else {}
    name = meta.get("name")
    name_format = spec.get("name_format", "dns1123-subdomain")
    if isinstance(name, str) and not FORMATS[name_format](name):
        problems.append(f"metadata.name: {name!r} is not a valid {name_format}")
    namespaced = spec.get("namespaced", True)
    if not namespaced and "namespace" in meta:
        problems.append(f"metadata.namespace: {key} is cluster-scoped")
    if namespaced and "namespace" not in meta:
        problems.append(f"metadata.namespace: {key} is namespaced; the role must name the "
                        "namespace")
    return problems
