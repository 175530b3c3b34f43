"""airflow_ops.airflow_vm.managed_files, run by ansible-playbook on this machine
(connection local, paths under a temporary folder): no hosts needed, the real
copy action and file module underneath. Run with each ansible-core the
collection claims: ANSIBLE_PLAYBOOK=<path> picks one (default: on PATH)."""

from __future__ import annotations

import grp
import json
import os
import pwd
import subprocess
import textwrap
from pathlib import Path

import pytest
from conftest import ansible_playbook, link_collection

USER = pwd.getpwuid(os.getuid()).pw_name
GROUP = grp.getgrgid(os.getgid()).gr_name


@pytest.fixture
def bed(tmp_path):
    """A collection path holding this repo, a role with a template and a file,
    and the folder the files go to."""
    link_collection(tmp_path)
    role = tmp_path / "roles/probe"
    (role / "templates").mkdir(parents=True)
    (role / "files").mkdir()
    (role / "tasks").mkdir()
    (role / "templates/app.conf.j2").write_text("greeting = {{ greeting }}\nsecret = {{ token }}\n")
    (role / "templates/vars.conf.j2").write_text("who = {{ who }}\n")
    (role / "files/static.txt").write_text("static\n")
    (role / "tasks/main.yml").write_text(
        textwrap.dedent(
            """
            - name: Manage
              airflow_ops.airflow_vm.managed_files:
                files: "{{ files }}"
                restart_intent_dir: "{{ intent_dir }}"
              register: managed
            - name: Keep the result for the test
              ansible.builtin.copy:
                content: "{{ managed | to_json }}"
                dest: "{{ result_file }}"
                mode: "0600"
              check_mode: false
            """
        )
    )
    (role / "tasks/refuse.yml").write_text(
        textwrap.dedent(
            """
            - name: Each bad list, on its own
              airflow_ops.airflow_vm.managed_files:
                files: "{{ item }}"
              loop: "{{ bad }}"
              register: managed
              ignore_errors: true
            - name: Keep the results for the test
              ansible.builtin.copy:
                content: "{{ managed.results | to_json }}"
                dest: "{{ result_file }}"
                mode: "0600"
            """
        )
    )
    (tmp_path / "site.yml").write_text(
        textwrap.dedent(
            """
            - hosts: localhost
              gather_facts: false
              tasks:
                - ansible.builtin.include_role: {name: probe, tasks_from: "{{ entry | default('main') }}"}
            """
        )
    )
    (tmp_path / "intents").mkdir()
    out = tmp_path / "out"
    return tmp_path, out


def files(out: Path) -> list[dict]:
    base = {"owner": USER, "group": GROUP}
    return [
        dict(base, dest=str(out), state="directory", mode="0750"),
        dict(base, dest=str(out / "app.conf"), template="app.conf.j2", mode="0640"),
        dict(base, dest=str(out / "static.txt"), src="static.txt", mode="0644"),
        dict(base, dest=str(out / "inline.txt"), content="inline\n", mode="0600"),
        dict(base, dest=str(out / "vault.conf"), content="token = {{ token }}\n", mode="0600", secret=True),
        dict(base, dest=str(out / "vars.conf"), template="vars.conf.j2", vars={"who": "{{ greeting }} item"}, id="svc", mode="0644",
             restarts=["svc"]),
    ]


def run(bed, extra: dict, *options: str) -> tuple[subprocess.CompletedProcess, dict | None]:
    tmp_path, _ = bed
    variables = {"greeting": "hello", "token": "s3cret-value",
                 "result_file": str(tmp_path / "result.json"), "intent_dir": str(tmp_path / "intents")} | extra
    result = ansible_playbook(tmp_path, tmp_path / "site.yml", variables, *options)
    kept = tmp_path / "result.json"
    managed = json.loads(kept.read_text()) if result.returncode == 0 else None
    kept.unlink(missing_ok=True)
    return result, managed


def test_writes_what_differs_puts_drift_right_and_checks_with_a_diff(bed):
    """A first run writes every path; the same run again changes nothing; what
    was edited, re-moded or (as root) re-owned by hand is put right, and only
    that; --check --diff reports the changed template with its diff, never a
    secret file's content, and writes nothing."""
    _, out = bed
    first, managed = run(bed, {"files": files(out)})
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-2000:]
    everything = [item["dest"] for item in files(out)]
    assert managed["changed_paths"] == everything
    assert (out / "app.conf").read_text() == "greeting = hello\nsecret = s3cret-value\n"
    assert (out / "static.txt").read_text() == "static\n"
    assert (out / "inline.txt").read_text() == "inline\n"
    assert (out / "vault.conf").read_text() == "token = s3cret-value\n"
    assert (out / "vars.conf").read_text() == "who = hello item\n"
    assert [entry.get("id") for entry in managed["results"]] == [None] * 5 + ["svc"]
    # the restart intent of the changed item was recorded (the caller clears it once restarted)
    intent = bed[0] / "intents/svc"
    assert managed["restarts"] == ["svc"] and intent.exists()
    intent.unlink()
    modes = {p.name: oct(p.stat().st_mode & 0o777) for p in [out, *out.iterdir()]}
    assert modes == {"out": "0o750", "app.conf": "0o640", "static.txt": "0o644", "inline.txt": "0o600", "vault.conf": "0o600",
                     "vars.conf": "0o644"}

    again, managed = run(bed, {"files": files(out)})
    assert again.returncode == 0, again.stdout[-3000:]
    assert managed["changed_paths"] == [] and not managed["changed"]
    assert managed["restarts"] == [] and not intent.exists()
    assert [entry["changed"] for entry in managed["results"]] == [False] * len(everything)

    (out / "static.txt").write_text("edited by hand\n")
    (out / "inline.txt").chmod(0o644)
    out.chmod(0o755)
    drifted = [str(out), str(out / "static.txt"), str(out / "inline.txt")]
    if os.getuid() == 0:  # changing an owner needs root (CI runs as root)
        os.chown(out / "app.conf", pwd.getpwnam("nobody").pw_uid, -1)
        drifted.insert(1, str(out / "app.conf"))
    fixed, managed = run(bed, {"files": files(out)})
    assert fixed.returncode == 0, fixed.stdout[-3000:]
    assert managed["changed_paths"] == drifted
    assert (out / "static.txt").read_text() == "static\n"
    assert oct((out / "inline.txt").stat().st_mode & 0o777) == "0o600"
    assert oct(out.stat().st_mode & 0o777) == "0o750"
    assert (out / "app.conf").owner() == USER

    checked, managed = run(bed, {"files": files(out), "greeting": "changed", "token": "n3w-value"}, "--check", "--diff")
    assert checked.returncode == 0, checked.stdout[-3000:]
    assert managed["changed_paths"] == [str(out / "app.conf"), str(out / "vault.conf"), str(out / "vars.conf")]
    assert [d["after"] for d in managed["diff"]] == ["greeting = changed\nsecret = n3w-value\n", "who = changed item\n"], managed["diff"]
    assert "+greeting = changed" in checked.stdout, checked.stdout[-3000:]
    assert "token = " not in checked.stdout and "token = " not in json.dumps(managed)
    assert managed["restarts"] == ["svc"] and not intent.exists()  # check mode records nothing
    assert (out / "app.conf").read_text().startswith("greeting = hello\n")
    assert (out / "vault.conf").read_text() == "token = s3cret-value\n"

    # a path that must go: removed once (in check mode only reported), then nothing to do
    gone = [item | {"state": "absent"} if item["dest"] == str(out / "inline.txt") else item for item in files(out)]
    checked, managed = run(bed, {"files": gone}, "--check")
    assert checked.returncode == 0 and managed["changed_paths"] == [str(out / "inline.txt")], checked.stdout[-3000:]
    assert (out / "inline.txt").exists()
    removed, managed = run(bed, {"files": gone})
    assert removed.returncode == 0 and managed["changed_paths"] == [str(out / "inline.txt")], removed.stdout[-3000:]
    assert not (out / "inline.txt").exists()
    again, managed = run(bed, {"files": gone})
    assert again.returncode == 0 and managed["changed_paths"] == [], again.stdout[-3000:]


BAD = [
    ({"dest": "relative/path", "content": "x"}, "files[0] (relative/path): dest must be an absolute path"),
    ({"dest": "/tmp/x", "content": "x", "mode": 416}, "files[0] (/tmp/x): mode must be an octal string such as '0640', not 416"),
    ({"dest": "/tmp/x", "content": "x", "template": "app.conf.j2"}, "files[0] (/tmp/x): give exactly one of template, content, src"),
    ({"dest": "/tmp/x", "content": "x", "colour": "red"}, "files[0]: unknown key(s) ['colour']; allowed: ['content', 'dest', 'group', 'id', 'mode', 'owner', 'restarts', 'restarts_by_option', 'secret', 'src', 'state', 'template', 'vars']"),
    ({"dest": "/tmp/x", "state": "directory", "content": "x"}, "files[0] (/tmp/x): a directory takes no content"),
    ({"dest": "/tmp/x", "state": "link", "content": "x"}, "files[0] (/tmp/x): state must be file, directory or absent, not 'link'"),
    ({"dest": "/tmp/x", "content": "x", "vars": {"a": 1}}, "files[0] (/tmp/x): vars are for a template"),
    ({"dest": "/tmp/x", "content": "x", "restarts": "svc"}, "files[0] (/tmp/x): restarts must be a list of names (files of restart_intent_dir)"),
    ({"dest": "/tmp/x", "content": "x", "restarts": ["svc"]}, "restart_intent_dir: needed when an item lists restarts"),
    ({"dest": "/tmp/x", "content": "x", "restarts_by_option": {"Core.parallelism": ["svc"]}},
     "files[0] (/tmp/x): restarts_by_option must map 'section.option' (lower case) to a list of names"),
    ({"dest": "/tmp/x", "content": "x", "restarts_by_option": {"core.parallelism": "svc"}},
     "files[0] (/tmp/x): restarts_by_option must map 'section.option' (lower case) to a list of names"),
    ({"dest": "/tmp/x", "template": "app.conf.j2", "vars": [1]}, "files[0] (/tmp/x): vars must be a dict (the template's extra variables)"),
    ({"dest": "/tmp/x", "content": "x", "owner": ""}, "files[0] (/tmp/x): owner must be a user or group name"),
]


def test_bad_items_are_refused_naming_the_item(bed):
    """Each bad list is refused before the host is read, naming the item, its
    path and what to fix; a path listed twice too."""
    _, out = bed
    lists = [[{"owner": USER, "group": GROUP, "mode": "0644"} | item] for item, _ in BAD]
    twice = {"dest": str(out / "x"), "content": "x", "owner": USER, "group": GROUP, "mode": "0644"}
    lists.append([twice, twice])
    ran, results = run(bed, {"entry": "refuse", "bad": lists})
    assert ran.returncode == 0, ran.stdout[-3000:]
    said = [result.get("msg", "") for result in results]
    expected = [says for _, says in BAD] + [f"files: a path is listed twice: ['{out / 'x'}']"]
    assert all(result.get("failed") for result in results), results
    assert said == expected
    assert not (out / "x").exists()


def test_a_user_or_group_missing_on_the_host_is_named_and_nothing_is_written(bed):
    """The owner and group are looked up on the host before the first write:
    an unknown one fails the task naming the path and the name, and the
    items before it are not written either."""
    _, out = bed
    items = files(out)[:2] + [dict(files(out)[3], owner="no-such-user-here")]
    failed, _ = run(bed, {"files": items})
    assert failed.returncode != 0
    assert f"{out / 'inline.txt'}: owner 'no-such-user-here' is not a user on this host" in failed.stdout, failed.stdout[-3000:]
    assert not out.exists()


def test_a_dry_run_counts_a_missing_user_or_group_as_a_change(bed):
    """--check on a new host: the user and group that an earlier task would
    create do not exist yet; the items that name them are reported as
    changes, and nothing is written."""
    _, out = bed
    items = [dict(files(out)[0], owner="no-such-user-here"), dict(files(out)[3], group="no-such-group-here")]
    checked, managed = run(bed, {"files": items}, "--check")
    assert checked.returncode == 0, checked.stdout[-3000:]
    assert managed["changed_paths"] == [str(out), str(out / "inline.txt")], managed
    said = " ".join((checked.stdout + checked.stderr).split())
    assert f"{out}: owner 'no-such-user-here' is not a user on this host (yet: a dry run)" in said, said[-3000:]
    assert not out.exists()


def test_an_ini_change_restarts_only_the_readers_of_its_options(bed):
    """With restarts_by_option, a change of only listed options records only
    their readers (those also in restarts); an unlisted option, a change of
    only the mode, or a file written for the first time records all of
    restarts; check mode reports without recording."""
    tmp_path, out = bed
    intents = tmp_path / "intents"
    readers = {"core.parallelism": ["scheduler"], "core.capacity": ["triggerer", "not-on-this-host"]}

    def ini(mode="0640", **options):
        body = "[core]\n" + "".join(f"{key} = {value}\n" for key, value in options.items())
        return [{"dest": str(out), "state": "directory", "owner": USER, "group": GROUP, "mode": "0750"},
                {"dest": str(out / "airflow.cfg"), "content": body, "owner": USER, "group": GROUP, "mode": mode,
                 "secret": True, "restarts": ["api", "scheduler", "triggerer"], "restarts_by_option": readers}]

    def recorded(*options, **settings):
        result, managed = run(bed, {"files": ini(**settings)}, *options)
        assert result.returncode == 0, result.stdout[-3000:]
        names = sorted(p.name for p in intents.iterdir())
        for p in intents.iterdir():
            p.unlink()
        return managed["restarts"], names

    everything = ["api", "scheduler", "triggerer"]
    assert recorded(parallelism=32, capacity=1000) == (everything, everything)  # the first write
    assert recorded(parallelism=32, capacity=1000) == ([], [])
    assert recorded(parallelism=64, capacity=1000) == (["scheduler"], ["scheduler"])
    assert recorded(parallelism=64, capacity=500) == (["triggerer"], ["triggerer"])
    assert recorded(parallelism=32, capacity=1000) == (["scheduler", "triggerer"], ["scheduler", "triggerer"])
    assert recorded(parallelism=32) == (["triggerer"], ["triggerer"])  # a listed option taken out
    assert recorded(parallelism=32, load_examples=False) == (everything, everything)  # an option nobody listed
    assert recorded(parallelism=32, Load_Examples=False) == ([], [])  # option names fold to lower case, as in Airflow
    assert recorded(mode="0600", parallelism=32, Load_Examples=False) == (everything, everything)  # only the mode
    assert recorded("--check", mode="0600", parallelism=16, load_examples=False) == (["scheduler"], [])
    assert "parallelism = 32" in (out / "airflow.cfg").read_text()
    (out / "airflow.cfg").write_text("not an INI file\n")
    assert recorded(mode="0600", parallelism=32, Load_Examples=False) == (everything, everything)  # the old file does not parse
