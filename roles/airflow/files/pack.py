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

With --inline-max BYTES, an archive whose gzip is at most that size is
written gzip-compressed and base64-encoded instead ("inline": its path,
"path": ""): tasks/sync_swap.yml hands it to the host on the unpacking
command's stdin instead of copying the archive first (one round trip
instead of several). Otherwise the tar is written ("path", "inline": "").

Every run also removes what the cache holds that no run has written or
reused for PRUNE_AFTER seconds (a day): an archive is only ever needed
between its packing and its transfer in the same run, so the cache stays
the size of the folders synced lately, not of every version ever shipped.

usage: python3 pack.py [--inline-max BYTES] FOLDER [SKIP...]
  ->  prints {"id": "<sha1>", "path": "<sha1>.tar" or "", "inline": "<sha1>.tar.gz.b64" or ""}
"""

import argparse
import base64
import gzip
import hashlib
import io
import json
import os
import tarfile
import tempfile
import time

SKIP_DIRS = {"__pycache__", ".git"}
PRUNE_AFTER = 24 * 3600


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


def cached(path, data, valid):
    """Write data to path (0600, atomic rename) unless path already holds
    valid content; a reused file's time is renewed (prune() keeps it)."""
    try:
        with open(path, "rb") as f:
            if valid(f.read()):
                os.utime(path)
                return
    except (OSError, ValueError, EOFError, gzip.BadGzipFile):
        pass  # missing or damaged: written again
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path))
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


def prune(cache):
    """Remove the cache's files (and leftovers of interrupted runs) untouched
    for PRUNE_AFTER seconds. A parallel run may remove the same file first:
    that is fine."""
    now = time.time()
    for entry in os.scandir(cache):
        try:
            if entry.is_file(follow_symlinks=False) and now - entry.stat(follow_symlinks=False).st_mtime > PRUNE_AFTER:
                os.unlink(entry.path)
        except FileNotFoundError:
            pass


def main():
    parser = argparse.ArgumentParser(description="Pack a folder for tasks/sync.yml.")
    parser.add_argument("--inline-max", type=int, default=0, metavar="BYTES")
    parser.add_argument("folder")
    parser.add_argument("skip", nargs="*")
    args = parser.parse_args()
    if not os.path.isdir(args.folder):
        parser.exit(1, f"{args.folder} is not a folder\n")
    data = pack(args.folder, args.skip)
    digest = hashlib.sha1(data).hexdigest()
    cache = os.path.join(os.path.expanduser("~"), ".cache", "airflow-vm", "sync")
    os.makedirs(cache, mode=0o700, exist_ok=True)
    os.chmod(cache, 0o700)
    path = os.path.join(cache, f"{digest}.tar")
    inline = ""
    packed = gzip.compress(data, mtime=0) if args.inline_max > 0 else None
    if packed is not None and len(packed) <= args.inline_max:
        path, inline = "", f"{path}.gz.b64"
        cached(inline, base64.b64encode(packed), lambda old: hashlib.sha1(gzip.decompress(base64.b64decode(old))).hexdigest() == digest)
    else:
        cached(path, data, lambda old: hashlib.sha1(old).hexdigest() == digest)
    prune(cache)
    print(json.dumps({"id": digest, "path": path, "inline": inline}))


if __name__ == "__main__":
    main()
