"""Pack a controller folder for tasks/sync.yml: a deterministic tar.

Same content -> same bytes, on any controller: names sorted, no timestamps,
owners or umask (files 0640, folders 0750), symlinks followed, __pycache__,
*.pyc and .git left out; the folder itself is the first entry, so an empty
folder packs into a valid archive. The archive is named after its SHA-1 in
the controller user's private cache (~/.cache/airflow-vm/sync, 0700), so
hosts compare one short ID instead of every file, and parallel forks
packing the same folder write the same file (atomic rename). An archive
found there is reused only when its content has that SHA-1.

Names given after the folder are top-level entries left out (tasks/code.yml:
the collection's own Ansible plugin folders when the plugin source is the
collection's plugins/ folder).

usage: python3 pack.py FOLDER [SKIP...]  ->  prints {"id": "<sha1>", "path": "<archive>"}
"""

import hashlib
import io
import json
import os
import sys
import tarfile
import tempfile

SKIP_DIRS = {"__pycache__", ".git"}


def entries(src, skip=()):
    yield ".", None
    for root, dirs, files in os.walk(src, followlinks=True):
        rel = os.path.relpath(root, src)
        left_out = SKIP_DIRS | (set(skip) if rel == "." else set())
        dirs[:] = sorted(d for d in dirs if d not in left_out)
        for name in dirs:
            yield os.path.normpath(os.path.join(rel, name)), None
        for name in sorted(files):
            if not name.endswith(".pyc") and name not in left_out:
                yield os.path.normpath(os.path.join(rel, name)), os.path.join(root, name)


def pack(src, skip=()):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for arcname, path in entries(src, skip):
            info = tarfile.TarInfo(arcname)
            info.mtime = 0
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            if path is None:
                info.type, info.mode = tarfile.DIRTYPE, 0o750
                tar.addfile(info)
            else:
                with open(path, "rb") as f:
                    data = f.read()
                info.size, info.mode = len(data), 0o640
                tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def main():
    src = sys.argv[1]
    if not os.path.isdir(src):
        sys.exit(f"{src} is not a folder")
    data = pack(src, sys.argv[2:])
    digest = hashlib.sha1(data).hexdigest()
    cache = os.path.join(os.path.expanduser("~"), ".cache", "airflow-vm", "sync")
    os.makedirs(cache, mode=0o700, exist_ok=True)
    os.chmod(cache, 0o700)
    path = os.path.join(cache, f"{digest}.tar")
    if not os.path.exists(path) or hashlib.sha1(open(path, "rb").read()).hexdigest() != digest:
        fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path))
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    print(json.dumps({"id": digest, "path": path}))


if __name__ == "__main__":
    main()
