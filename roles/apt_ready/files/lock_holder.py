"""Print who holds the dpkg/apt locks, one line per process: "<command> (pid <pid>: <locks>)".

apt and dpkg take fcntl (POSIX) locks on these files, so the holders are in /proc/locks,
matched by device and inode. Prints nothing when no lock is held. Read-only.
"""

import os

LOCKS = ("/var/lib/dpkg/lock-frontend", "/var/lib/dpkg/lock", "/var/lib/apt/lists/lock",
         "/var/cache/apt/archives/lock")


def main() -> None:
    wanted = {}
    for path in LOCKS:
        try:
            st = os.stat(path)
        except OSError:
            continue
        wanted[(os.major(st.st_dev), os.minor(st.st_dev), st.st_ino)] = path
    try:
        with open("/proc/locks") as f:
            lines = f.read().splitlines()
    except OSError:
        return
    holders = {}
    for line in lines:
        words = line.split()
        if "->" in words:  # a waiter, not a holder
            continue
        if len(words) < 6 or words[1] not in ("POSIX", "OFDLCK"):
            continue
        try:
            major, minor, inode = words[5].split(":")
            key = (int(major, 16), int(minor, 16), int(inode))
        except ValueError:
            continue
        if key in wanted:
            locks = holders.setdefault(words[4], [])
            if wanted[key] not in locks:
                locks.append(wanted[key])
    for pid, locks in holders.items():
        try:
            with open(f"/proc/{pid}/comm") as f:
                comm = f.read().strip()
        except OSError:
            comm = "?"
        print(f"{comm} (pid {pid}: {', '.join(locks)})")


main()
