"""roles/airflow/files/pack.py, the deterministic archive of a synced folder
(tasks/sync.yml): the same content gives the same bytes, and the top-level
names given after the folder are left out (the collection's Ansible plugin
folders when the plugin source is the collection's own plugins/)."""

from __future__ import annotations

import base64
import gzip
import hashlib
import importlib.util
import io
import json
import os
import subprocess
import sys
import tarfile
import time
from pathlib import Path

PACK = Path(__file__).resolve().parents[3] / "roles" / "airflow" / "files" / "pack.py"
spec = importlib.util.spec_from_file_location("pack", PACK)
pack = importlib.util.module_from_spec(spec)
spec.loader.exec_module(pack)


def names(data: bytes) -> list[str]:
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        return tar.getnames()


def tree(root: Path) -> Path:
    for rel, text in {"plugin.py": "p", "modules/m.py": "m", "action/a.py": "a", "lib/modules/keep.py": "k",
                      "lib/__pycache__/x.pyc": "c", "action.py": "f"}.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return root


def test_top_level_names_are_skipped_and_nothing_else(tmp_path):
    src = tree(tmp_path / "plugins")
    everything = names(pack.pack(str(src)))
    assert everything == [".", "action", "lib", "modules", "action.py", "plugin.py", "action/a.py", "lib/modules",
                          "lib/modules/keep.py", "modules/m.py"]
    skipped = names(pack.pack(str(src), ["action", "modules"]))
    # a deeper folder of the same name, and a file whose name only starts the same, stay
    assert skipped == [".", "lib", "action.py", "plugin.py", "lib/modules", "lib/modules/keep.py"]


def test_same_content_same_bytes(tmp_path):
    first, second = tree(tmp_path / "a"), tree(tmp_path / "b")
    assert pack.pack(str(first), ["action"]) == pack.pack(str(second), ["action"])
    (second / "action" / "a.py").write_text("changed")
    assert pack.pack(str(first), ["action"]) == pack.pack(str(second), ["action"])
    (second / "plugin.py").write_text("changed")
    assert pack.pack(str(first), ["action"]) != pack.pack(str(second), ["action"])


def run_pack(home: Path, *args: str) -> dict:
    out = subprocess.run([sys.executable, str(PACK), *args], env={**os.environ, "HOME": str(home)},
                         capture_output=True, text=True, check=True).stdout
    return json.loads(out)


def test_a_small_archive_is_written_inline_and_a_big_one_as_tar(tmp_path):
    src = tree(tmp_path / "plugins")
    data = pack.pack(str(src), ["action"])
    small = run_pack(tmp_path / "home", "--inline-max", "100000", str(src), "action")
    assert small["id"] == hashlib.sha1(data).hexdigest() and small["path"] == ""
    # what tasks/sync_swap.yml pipes through `base64 -d | tar -xz`
    assert gzip.decompress(base64.b64decode(Path(small["inline"]).read_bytes())) == data
    assert oct(Path(small["inline"]).stat().st_mode & 0o777) == "0o600"
    cache = Path(small["inline"]).parent
    assert sorted(p.name for p in cache.iterdir()) == [f"{small['id']}.tar.gz.b64"]

    # a damaged inline file is written again
    Path(small["inline"]).write_bytes(b"damaged")
    assert run_pack(tmp_path / "home", "--inline-max", "100000", str(src), "action") == small
    assert gzip.decompress(base64.b64decode(Path(small["inline"]).read_bytes())) == data

    # over the limit, or without one: the tar, to be copied
    big = run_pack(tmp_path / "home", "--inline-max", "10", str(src), "action")
    assert big == {"id": small["id"], "path": str(cache / f"{small['id']}.tar"), "inline": ""}
    assert Path(big["path"]).read_bytes() == data
    assert run_pack(tmp_path / "home", str(src), "action") == big


def test_the_cache_keeps_what_was_used_within_a_day(tmp_path):
    src = tree(tmp_path / "plugins")
    first = run_pack(tmp_path / "home", str(src))
    cache = Path(first["path"]).parent
    leftover = cache / "tmpabc123"  # an interrupted write
    leftover.write_bytes(b"x")
    old = time.time() - pack.PRUNE_AFTER - 60
    for path in (Path(first["path"]), leftover):
        os.utime(path, (old, old))
    (src / "plugin.py").write_text("changed")
    second = run_pack(tmp_path / "home", str(src))
    assert second["id"] != first["id"]
    assert sorted(cache.iterdir()) == [Path(second["path"])]

    # an archive reused by a run is renewed, and so kept
    os.utime(second["path"], (old, old))
    assert run_pack(tmp_path / "home", str(src)) == second
    assert time.time() - Path(second["path"]).stat().st_mtime < 60
