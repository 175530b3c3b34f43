"""roles/airflow/files/pack.py, the deterministic archive of a synced folder
(tasks/sync.yml): the same content gives the same bytes, and the top-level
names given after the folder are left out (the collection's Ansible plugin
folders when the plugin source is the collection's own plugins/)."""

from __future__ import annotations

import importlib.util
import io
import tarfile
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
