#!/usr/bin/env python3
"""A minimal ``crictl info``: the same CRI call crictl makes, for hosts without crictl.

Debian 12 has no cri-tools package and nothing else can be downloaded here, so the containerd
tests copy this file to the host and run it with Debian's python3-grpcio. It does what
``crictl info`` does (cri-tools' cmd/crictl/info.go): read ``runtime-endpoint`` from
/etc/crictl.yaml (the file the containerd role writes), call
``runtime.v1.RuntimeService/Status`` with ``verbose: true`` on that socket, and print
``{"status": {"conditions": [...]}, <each info key>: <its JSON value>}``. The answer comes from
the real containerd CRI plugin; only the client is small. The protobuf messages are decoded by
hand (k8s.io/cri-api api.proto field numbers), so no generated code is needed.

Exit codes: 0 answered, 1 the call failed (message on stderr), 2 no endpoint configured.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

METHOD = "/runtime.v1.RuntimeService/Status"
VERBOSE_REQUEST = b"\x08\x01"  # StatusRequest{verbose (field 1, varint) = true}


def varint(buf: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7


def fields(buf: bytes) -> list[tuple[int, int | bytes]]:
    """(field number, value) of one protobuf message: varints as int, the rest as bytes."""
    out: list[tuple[int, int | bytes]] = []
    pos = 0
    while pos < len(buf):
        key, pos = varint(buf, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = varint(buf, pos)
            out.append((number, value))
        elif wire == 2:
            size, pos = varint(buf, pos)
            out.append((number, buf[pos:pos + size]))
            pos += size
        elif wire in (1, 5):
            size = 8 if wire == 1 else 4
            out.append((number, buf[pos:pos + size]))
            pos += size
        else:
            raise ValueError(f"unsupported protobuf wire type {wire}")
    return out


def text(value: int | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def condition(buf: bytes) -> dict[str, object]:
    """RuntimeCondition{type = 1, status = 2, reason = 3, message = 4}."""
    cond: dict[str, object] = {"type": "", "status": False, "reason": "", "message": ""}
    names = {1: "type", 3: "reason", 4: "message"}
    for number, value in fields(buf):
        if number == 2:
            cond["status"] = bool(value)
        elif number in names:
            cond[names[number]] = text(value)
    return cond


def decode_status_response(buf: bytes) -> dict[str, object]:
    """StatusResponse{RuntimeStatus status = 1; map<string, string> info = 2}."""
    result: dict[str, object] = {"status": {"conditions": []}}
    for number, value in fields(buf):
        if number == 1 and isinstance(value, bytes):
            result["status"] = {"conditions": [condition(c) for n, c in fields(value)
                                               if n == 1 and isinstance(c, bytes)]}
        elif number == 2 and isinstance(value, bytes):
            entry = dict(fields(value))
            key, raw = text(entry.get(1, b"")), text(entry.get(2, b""))
            try:
                result[key] = json.loads(raw)
            except ValueError:
                result[key] = raw
    return result


def endpoint(config: Path) -> str | None:
    if not config.exists():
        return None
    match = re.search(r"^runtime-endpoint:\s*['\"]?([^'\"\s]+)", config.read_text(), re.M)
    return match.group(1) if match else None


def main() -> int:
    target = endpoint(Path(sys.argv[1] if len(sys.argv) > 1 else "/etc/crictl.yaml"))
    if not target:
        print("no runtime-endpoint in the crictl config", file=sys.stderr)
        return 2
    import grpc  # Debian: python3-grpcio

    with grpc.insecure_channel(target) as channel:
        status = channel.unary_unary(METHOD)  # raw bytes in and out
        try:
            answer = status(VERBOSE_REQUEST, timeout=10)
        except grpc.RpcError as err:
            print(f"{METHOD} on {target}: {err.code().name}: {err.details()}", file=sys.stderr)
            return 1
    print(json.dumps(decode_status_response(answer), indent=2, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
