"""Make a tiny `docker save` archive offline, on the host that will load it.

Packs /usr/bin/true and /usr/bin/echo with their shared libraries (found by ldd, so any
architecture works) plus /true and /echo at the root. Environment: OUT (archive path), TAG
(image name:tag). No registry is involved: used by tests/test_bootstrap_*.py, the molecule
docker scenario and benchmarks/bootstrap.py to prove `docker run` on hosts without internet.
Runs with the host's python3 (standard library only).
"""

import hashlib
import io
import json
import os
import subprocess
import tarfile

OUT, TAG = os.environ["OUT"], os.environ["TAG"]


def add_file(t: tarfile.TarFile, path: str, arcname: str) -> None:
    real = os.path.realpath(path)
    info = t.gettarinfo(real, arcname=arcname)
    with open(real, "rb") as f:
        t.addfile(info, f)


files = set()
for exe in ("/usr/bin/true", "/usr/bin/echo"):
    files.add(exe)
    ldd = subprocess.run(["ldd", exe], capture_output=True, text=True).stdout
    files.update(word for word in ldd.split() if word.startswith("/"))
layer = io.BytesIO()
with tarfile.open(fileobj=layer, mode="w") as t:
    for path in sorted(files):
        add_file(t, path, path.lstrip("/"))
    for name in ("true", "echo"):  # /true and /echo at the root for short commands
        add_file(t, "/usr/bin/" + name, name)
data = layer.getvalue()
diff = hashlib.sha256(data).hexdigest()
arch = subprocess.run(["dpkg", "--print-architecture"], capture_output=True,
                      text=True).stdout.strip()
config = json.dumps({"architecture": arch, "os": "linux", "created": "1970-01-01T00:00:00Z",
                     "config": {"Cmd": ["/true"]},
                     "rootfs": {"type": "layers", "diff_ids": ["sha256:" + diff]}}).encode()
cid = hashlib.sha256(config).hexdigest()
manifest = json.dumps([{"Config": cid + ".json", "RepoTags": [TAG],
                        "Layers": [diff + "/layer.tar"]}]).encode()
with tarfile.open(OUT, "w") as t:
    for name, blob in ((diff + "/layer.tar", data), (cid + ".json", config),
                       ("manifest.json", manifest)):
        info = tarfile.TarInfo(name)
        info.size, info.mode = len(blob), 0o644
        t.addfile(info, io.BytesIO(blob))
print(OUT)
