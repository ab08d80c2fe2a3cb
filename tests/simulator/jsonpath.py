"""The subset of kubectl's JSONPath templates that provisioning code uses (stdlib only).

Supported: literal text, {.a.b}, {.a[0]}, {.a[*].b}, {.a[?(@.k=="v")].b}, escaped dots
({.metadata.labels.kubernetes\\.io/hostname}), {range EXPR}...{end}, {"\\n"} literals, {@}.
"""

from __future__ import annotations

import contextlib
import json
import re
from typing import Any


class JsonPathError(Exception):
    pass


def _split_path(expr: str) -> list[str]:
    expr = expr.strip()
    if expr in ("@", "$", ".", ""):
        return []
    if expr.startswith("$"):
        expr = expr[1:]
    if expr.startswith("@"):
        expr = expr[1:]
    tokens: list[str] = []
    i, cur = 0, ""
    while i < len(expr):
        ch = expr[i]
        if ch == "\\" and i + 1 < len(expr):
            cur += expr[i + 1]
            i += 2
            continue
        if ch == ".":
            if cur:
                tokens.append(cur)
            cur = ""
        elif ch == "[":
            if cur:
                tokens.append(cur)
            end = expr.index("]", i) if not expr.startswith("[?(", i) else expr.index(")]", i) + 1
            tokens.append(expr[i : end + 1])
            i, cur = end + 1, ""
            continue
        else:
            cur += ch
        i += 1
    if cur:
        tokens.append(cur)
    return tokens


def _apply(values: list[Any], token: str) -> list[Any]:
    out: list[Any] = []
    for v in values:
        if token.startswith("[?("):
            m = re.match(r"\[\?\(@\.([\w.\\/-]+)\s*(==|!=)\s*['\"]?([^'\"]*)['\"]?\)\]", token)
            if not m or not isinstance(v, list):
                continue
            key, op, want = m.groups()
            for item in v:
                got = evaluate(item, key)
                hit = bool(got) and str(got[0]) == want
                if (op == "==") == hit:
                    out.append(item)
        elif token.startswith("["):
            idx = token[1:-1]
            if not isinstance(v, list):
                if idx == "*" and isinstance(v, dict):
                    out.extend(v.values())
                continue
            if idx == "*":
                out.extend(v)
            elif ":" in idx:
                a, _, b = idx.partition(":")
                out.extend(v[int(a) if a else None : int(b) if b else None])
            else:
                with contextlib.suppress(IndexError):
                    out.append(v[int(idx)])
        elif token == "*":
            out.extend(v.values() if isinstance(v, dict) else v if isinstance(v, list) else [])
        elif isinstance(v, dict) and token in v:
            out.append(v[token])
    return out


def evaluate(data: Any, expr: str) -> list[Any]:
    values = [data]
    for token in _split_path(expr):
        values = _apply(values, token)
    return values


def _fmt(v: Any) -> str:
    if isinstance(v, dict | list):
        return json.dumps(v)
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


def _blocks(template: str) -> list[tuple[str, str]]:
    out, i = [], 0
    while i < len(template):
        j = template.find("{", i)
        if j < 0:
            out.append(("text", template[i:]))
            break
        if j > i:
            out.append(("text", template[i:j]))
        k = template.find("}", j)
        if k < 0:
            raise JsonPathError(f"unclosed action in template {template!r}")
        out.append(("expr", template[j + 1 : k]))
        i = k + 1
    return out


def render(template: str, data: Any) -> str:
    template = template.strip()
    if template.startswith(("'", '"')) and template.endswith(template[0]):
        template = template[1:-1]
    blocks = _blocks(template)
    result, _ = _render(blocks, 0, data)
    return result


def _render(blocks: list[tuple[str, str]], i: int, data: Any) -> tuple[str, int]:
    out = []
    while i < len(blocks):
        kind, text = blocks[i]
        if kind == "text":
            out.append(text)
        elif text.strip() == "end":
            return "".join(out), i
        elif text.strip().startswith("range "):
            items = evaluate(data, text.strip()[6:])
            body_end = i
            pieces = []
            for item in items:
                piece, body_end = _render(blocks, i + 1, item)
                pieces.append(piece)
            if not items:
                _, body_end = _render(blocks, i + 1, {})
            out.extend(pieces)
            i = body_end
        else:
            t = text.strip()
            if t.startswith('"') and t.endswith('"'):
                out.append(json.loads(t))
            else:
                out.append(" ".join(_fmt(v) for v in evaluate(data, t)))
        i += 1
    return "".join(out), i
