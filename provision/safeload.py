"""Bounded reading and parsing of every file a user hands to provision.

Inventories, group_vars/host_vars files, ``upgrade --state`` files and the lab state file are
read through here so that no input can hang the tool, exhaust its memory or end in a
traceback: a file must be a regular file (checked with ``os.stat`` before it is opened, and
again on the open descriptor, which is opened non-blocking) of at most ``MAX_BYTES``; it must
be UTF-8 text; YAML and JSON are nested at most ``MAX_DEPTH`` levels, YAML aliases may not
expand the document by more than ``MAX_ALIAS_NODES`` nodes (no "billion laughs") or refer to
themselves, and integers have at most ``MAX_DIGITS`` digits (Python refuses to print ints of
more than 4,300). Every refusal is an ``InputError`` (exit 2) whose message starts with the
file, and the line where one is known.
"""

from __future__ import annotations

import json
import os
import re
import stat
from typing import Any

import yaml
from yaml.composer import Composer
from yaml.constructor import SafeConstructor
from yaml.error import MarkedYAMLError
from yaml.events import AliasEvent
from yaml.nodes import MappingNode, Node, SequenceNode
from yaml.resolver import Resolver

from provision.errors import UsageError

MAX_BYTES = 8 * 1024 * 1024
MAX_DEPTH = 64
MAX_ALIAS_NODES = 1_000_000
MAX_DIGITS = 64


class InputError(UsageError):
    """A user-supplied file that cannot be read or parsed safely; exit 2."""

    def __init__(self, message: str) -> None:
        self.problems = [message]
        super().__init__(message)


def _kind(mode: int) -> str:
    for test, name in ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO (named pipe)"),
                       (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
                       (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return name
    return "not a regular file"


def read_bytes(path: str | os.PathLike[str], what: str, limit: int = MAX_BYTES) -> bytes:
    """The bytes of the regular file ``path``; ``what`` names it in errors ("inventory")."""
    name = os.fspath(path)
    try:
        st = os.stat(name)  # before open(): opening a FIFO for reading blocks
    except FileNotFoundError:
        raise InputError(f"{name}: {what} not found") from None
    except OSError as exc:
        raise InputError(f"{name}: cannot read {what}: {exc.strerror}") from None
    if not stat.S_ISREG(st.st_mode):
        raise InputError(f"{name}: {what} must be a regular file, this is {_kind(st.st_mode)}")
    if st.st_size > limit:
        raise InputError(f"{name}: {what} is {st.st_size} bytes, more than the "
                         f"{limit // (1024 * 1024)} MiB provision reads")
    flags = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(name, flags)
    except OSError as exc:
        raise InputError(f"{name}: cannot read {what}: {exc.strerror}") from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):  # replaced between stat() and open()
            raise InputError(f"{name}: {what} must be a regular file")
        chunks: list[bytes] = []
        size = 0
        while size <= limit:
            chunk = os.read(fd, min(1 << 20, limit + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    except OSError as exc:
        raise InputError(f"{name}: cannot read {what}: {exc.strerror}") from None
    finally:
        os.close(fd)
    if size > limit:
        raise InputError(f"{name}: {what} grew past the {limit // (1024 * 1024)} MiB "
                         "provision reads while it was read")
    return b"".join(chunks)


def decode(data: bytes, name: str, what: str) -> str:
    """UTF-8 text (a UTF-8 BOM is dropped); other encodings and binary data are refused."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise InputError(f"{name}: {what} is UTF-16 (or UTF-32) text: save it as UTF-8")
    nul = data.find(b"\0")
    if nul >= 0:
        line = data.count(b"\n", 0, nul) + 1
        raise InputError(f"{name}:{line}: {what} contains a NUL byte: binary data or UTF-16 "
                         "text, not UTF-8 text")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise InputError(f"{name}:{line}: {what} is not UTF-8 text (byte 0x{data[exc.start]:02x} "
                         f"at offset {exc.start}): save it as UTF-8") from None
    return text[1:] if text.startswith("\ufeff") else text


def read_text(path: str | os.PathLike[str], what: str, limit: int = MAX_BYTES) -> str:
    """``read_bytes`` + ``decode``."""
    return decode(read_bytes(path, what, limit), os.fspath(path), what)


# ------------------------------------------------------------------------------------ YAML

class YAMLLimitError(MarkedYAMLError):
    """A YAML document over one of the bounds (depth, aliases, digits)."""

    def __init__(self, problem: str, mark: Any) -> None:
        super().__init__(problem=problem, problem_mark=mark)


try:  # libyaml's parser (as Ansible uses when it is there), composed in Python below
    from yaml._yaml import CParser as _CParser
except ImportError:  # pragma: no cover - PyYAML built without libyaml
    _CParser = None

if _CParser is not None:
    class _SafeLoaderBase(_CParser, Composer, SafeConstructor, Resolver):  # type: ignore[misc]
        """libyaml's parser (events) with PyYAML's Python composer and safe constructor:
        the composer must be the Python one so that its nesting can be bounded."""

        def __init__(self, stream: Any) -> None:
            _CParser.__init__(self, stream)
            Composer.__init__(self)
            SafeConstructor.__init__(self)
            Resolver.__init__(self)

        check_node = Composer.check_node
        get_node = Composer.get_node
        get_single_node = Composer.get_single_node
        compose_document = Composer.compose_document
        compose_node = Composer.compose_node
        compose_scalar_node = Composer.compose_scalar_node
        compose_sequence_node = Composer.compose_sequence_node
        compose_mapping_node = Composer.compose_mapping_node
else:  # pragma: no cover
    _SafeLoaderBase = yaml.SafeLoader  # type: ignore[misc,assignment]


class _Bounds:
    """Mixin for a SafeLoader: bounded nesting, alias expansion and integer size."""

    max_depth = MAX_DEPTH
    max_alias_nodes = MAX_ALIAS_NODES

    def __init__(self, stream: Any) -> None:
        super().__init__(stream)  # type: ignore[call-arg]
        self._depth = 0
        self._aliases = False  # any alias in the document: then its expansion is measured

    def compose_node(self, parent: Node | None, index: Any) -> Node:  # type: ignore[override]
        self._depth += 1
        try:
            if self._depth > self.max_depth:
                raise YAMLLimitError(f"nested more than {self.max_depth} levels deep",
                                     self.peek_event().start_mark)
            if not self._aliases and self.check_event(AliasEvent):  # type: ignore[attr-defined]
                self._aliases = True
            return super().compose_node(parent, index)  # type: ignore[misc]
        finally:
            self._depth -= 1

    def compose_document(self) -> Node | None:  # type: ignore[override]
        node = super().compose_document()  # type: ignore[misc]
        if node is not None and self._aliases:
            _check_aliases(node, self.max_alias_nodes)
        return node

    def construct_yaml_int(self, node: yaml.ScalarNode) -> int:
        text = str(node.value)
        digits = sum(c.isalnum() for c in text)
        if digits > MAX_DIGITS:
            raise YAMLLimitError(f"a number with {digits} digits (at most {MAX_DIGITS}; "
                                 "quote it if it is text)", node.start_mark)
        return super().construct_yaml_int(node)  # type: ignore[misc]


class BoundedSafeLoader(_Bounds, _SafeLoaderBase):
    """A safe YAML loader (libyaml's parser when available) with the bounds of ``_Bounds``."""


class _PureBoundedLoader(_Bounds, yaml.SafeLoader):
    """The same in pure Python: only re-run on a syntax error, for PyYAML's messages (which
    say what was expected and what was found)."""


for _cls in (BoundedSafeLoader, _PureBoundedLoader):
    _cls.add_constructor("tag:yaml.org,2002:int", _Bounds.construct_yaml_int)


def _check_aliases(root: Node, limit: int) -> None:
    """Refuse a node graph whose aliases expand it by more than ``limit`` nodes, or that
    contains itself. Linear in the composed nodes (sizes are memoised per node)."""
    size: dict[int, int] = {}
    on_path: set[int] = set()
    seen_once: set[int] = set()
    added = 0
    stack: list[tuple[Node, bool]] = [(root, False)]
    while stack:
        node, done = stack.pop()
        key = id(node)
        if done:
            on_path.discard(key)
            size[key] = 1 + sum(size[id(c)] for c in _children(node))
            continue
        if key in on_path:
            raise YAMLLimitError("an alias refers to a node that contains it", node.start_mark)
        if key in seen_once:  # a second reference: an alias expanding the whole subtree
            if key in size:
                added += size[key]
                if added > limit:
                    raise YAMLLimitError(f"aliases expand the document by more than {limit} "
                                         "nodes (a YAML alias bomb?)", node.start_mark)
            continue
        seen_once.add(key)
        on_path.add(key)
        stack.append((node, True))
        stack.extend((c, False) for c in reversed(_children(node)))


def _children(node: Node) -> list[Node]:
    if isinstance(node, SequenceNode):
        return list(node.value)
    if isinstance(node, MappingNode):
        return [n for pair in node.value for n in pair]
    return []


def yaml_problem(exc: yaml.YAMLError, name: str) -> str:
    """'FILE:LINE:COL: YAML syntax error: PROBLEM' for a PyYAML error."""
    mark = getattr(exc, "problem_mark", None)
    where = f"{name}:{mark.line + 1}:{mark.column + 1}" if mark else name
    problem = getattr(exc, "problem", None) or str(exc)
    if isinstance(exc, YAMLLimitError):
        return f"{where}: YAML refused: {problem}"
    return f"{where}: YAML syntax error: {problem}"


def load_yaml(path: str | os.PathLike[str], what: str,
              loader: type[BoundedSafeLoader] = BoundedSafeLoader) -> Any:
    """Read and parse a YAML file with ``loader`` (a ``BoundedSafeLoader`` subclass)."""
    name = os.fspath(path)
    return loads_yaml(read_text(path, what), name, loader)


def loads_yaml(text: str, name: str,
               loader: type[BoundedSafeLoader] = BoundedSafeLoader) -> Any:
    """Parse YAML text; ``name`` (the file) starts every message."""
    try:
        return yaml.load(text, Loader=loader)  # noqa: S506 - a SafeLoader subclass
    except YAMLLimitError as exc:
        raise InputError(yaml_problem(exc, name)) from None
    except yaml.YAMLError as exc:
        problem = exc
    except RecursionError:  # not expected with MAX_DEPTH; never a traceback all the same
        raise InputError(f"{name}: nested too deeply") from None
    try:  # PyYAML's own wording for the syntax error
        yaml.load(text, Loader=_PureBoundedLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        problem = exc
    except RecursionError:  # pragma: no cover
        pass
    raise InputError(yaml_problem(problem, name))


# ------------------------------------------------------------------------------------ JSON

_JSON_TOKEN = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{}]')


def json_depth_ok(text: str, max_depth: int = MAX_DEPTH) -> bool:
    """Whether the brackets outside strings nest at most ``max_depth`` levels (linear)."""
    depth = 0
    for m in _JSON_TOKEN.finditer(text):
        c = m.group()
        if c in "[{":
            depth += 1
            if depth > max_depth:
                return False
        elif c in "]}":
            depth -= 1
    return True


def _json_int(text: str) -> int:
    digits = len(text.lstrip("-"))
    if digits > MAX_DIGITS:
        raise ValueError(f"a number with {digits} digits (at most {MAX_DIGITS})")
    return int(text)


def loads_json(text: str, name: str) -> Any:
    """Parse JSON text with bounded nesting and integer size; ``name`` starts each message."""
    if not json_depth_ok(text):
        raise InputError(f"{name}: JSON nested more than {MAX_DEPTH} levels deep")
    try:
        return json.loads(text, parse_int=_json_int)
    except json.JSONDecodeError as exc:
        raise InputError(f"{name}: not valid JSON: line {exc.lineno} column {exc.colno}: "
                         f"{exc.msg}") from None
    except (ValueError, RecursionError) as exc:
        raise InputError(f"{name}: not valid JSON: {exc}") from None


def load_json(path: str | os.PathLike[str], what: str) -> Any:
    """Read and parse a JSON file (bounded like ``loads_json``)."""
    return loads_json(read_text(path, what), os.fspath(path))


# --------------------------------------------------------------------------------- numbers

_DIGITS = re.compile(r"[0-9]{1,18}")


def ascii_int(text: str, max_digits: int = 9) -> int | None:
    """The value of ``text`` if it is 1..max_digits ASCII digits, else None (never raises:
    no 5000-digit ints, no Unicode digits like '３' or '²')."""
    if not isinstance(text, str) or len(text) > max_digits or not _DIGITS.fullmatch(text):
        return None
    return int(text)
