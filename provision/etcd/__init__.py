"""etcd snapshots: pure planning (names, sidecars, retention, schedules).

``naming``, ``sidecar`` and ``retention`` use only the standard library and never import each
other or anything from ``provision``: the node-side backup tool (``roles/etcd_snapshot/files/
etcd-backup/``) ships these very files (symlinks) and imports them as top-level modules.
"""
