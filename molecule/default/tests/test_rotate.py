"""make rotate on the running host: new secrets, no failed task, no unreadable data.

Runs last in this scenario (it changes the test bed's vault, which the
later scenarios then deploy with). `rotate_secret=all` rotates the Fernet
key, the Redis password, the api secret key and the admin password in one
run, and the JWT secret and the database password (the cluster quiesced
for them), while a task sleeps through it; afterwards a task reads the
Variable and the Connection stored before, the old values are refused or
gone, the vault is still encrypted and a re-deploy changes nothing.
"""

from __future__ import annotations

import time

import requests
import testinfra.utils.ansible_runner

from airflow_testlib import (
    CFG,
    INVENTORY,
    SHARED,
    USERS_ACL,
    address,
    admin_api,
    api_url,
    assert_no_secret_in_sudo_log,
    assert_ok,
    assert_refused_unchanged,
    assert_task_reads,
    assert_unchanged,
    redis_answers,
    run_playbook,
    store_secrets,
    unit_active_since,
    vault,
    wait_task_running,
)

testinfra_hosts = testinfra.utils.ansible_runner.AnsibleRunner(INVENTORY).get_hosts("airflow_api_server")
VAULT_FILE = SHARED / "group_vars/all/vault.yml"
ROTATED = [
    "vault_airflow_fernet_key",
    "vault_redis_password",
    "vault_airflow_api_secret_key",
    "vault_airflow_admin_password",
    "vault_airflow_jwt_secret",
    "vault_postgresql_airflow_password",
]


def test_rotate_refuses_bad_input_before_any_change():
    before = VAULT_FILE.read_bytes()
    assert_refused_unchanged(run_playbook("playbooks/rotate.yml", {"rotate_secret": "everything"}), "SECRET=everything", "fernet")
    assert_refused_unchanged(
        run_playbook("playbooks/rotate.yml", {"rotate_secret": "api", "rotate_vault_password_file": "/nonexistent"}),
        "rotate_vault_password_file",
    )
    assert VAULT_FILE.read_bytes() == before, "the vault changed"


def test_rotate_all_while_a_task_runs(host, api, secrets):
    old = vault()
    stored = store_secrets(api, "rotate")
    long_run = api.trigger("smoke_celery", {"linger": 60})
    wait_task_running(api, "smoke_celery", long_run, "where")

    redis_since = unit_active_since(host, "redis-server")
    start = time.monotonic()
    result = run_playbook("playbooks/rotate.yml", {"rotate_secret": "all"})
    print(f"\nmake rotate SECRET=all: {time.monotonic() - start:.0f} s")
    assert_ok(result)
    output = result.stdout + result.stderr
    for name, secret in old.items():
        assert secret not in output, f"{name} appears in the output"

    new = vault()
    secrets.update(new)  # the session's later tests use the new values
    # the new Redis password went to the users' reload and the health gate.
    # (Only the new values tell: the earlier tests' own commands, which
    # testinfra runs through sudo, held the old ones on their command lines.)
    assert_no_secret_in_sudo_log(host, new)
    assert VAULT_FILE.read_bytes().startswith(b"$ANSIBLE_VAULT;"), "the vault is no longer encrypted"
    assert oct(VAULT_FILE.stat().st_mode & 0o777) == "0o600"
    for name in ROTATED:
        assert new[name] != old[name], f"{name} was not rotated"
    assert not [key for key in new if key.endswith(("_next", "_previous"))], sorted(new)

    # the task that slept through the rotation ended well, first try (the
    # session's token was signed with the old JWT secret: a new client)
    client = admin_api(host, new["vault_airflow_admin_password"])
    run, tis = client.wait_run("smoke_celery", long_run, timeout=400)
    assert run["state"] == "success", [(ti["task_id"], ti["state"], ti["try_number"]) for ti in tis]
    assert {ti["try_number"] for ti in tis} == {1}, [(ti["task_id"], ti["try_number"]) for ti in tis]

    # the Fernet key: only the new one on the host, and the stored secrets still decrypt in a task
    cfg = host.file(CFG).content_string
    assert f"fernet_key = {new['vault_airflow_fernet_key']}\n" in cfg
    for name in ROTATED:
        assert old[name] not in cfg, f"the old {name} is still in airflow.cfg"
    assert f"jwt_secret = {new['vault_airflow_jwt_secret']}\n" in cfg
    assert_task_reads(client, stored)

    # the admin's old password and the old Redis password are refused
    resp = requests.post(
        f"{api_url(host)}/auth/token",
        json={"username": "admin", "password": old["vault_airflow_admin_password"]},
        timeout=15,
    )
    assert resp.status_code in (401, 403), f"the old admin password still works: {resp.status_code}"
    assert redis_answers(host, new["vault_redis_password"]) == "PONG"
    assert "PONG" not in redis_answers(host, old["vault_redis_password"]), "Redis still accepts the old password"
    assert unit_active_since(host, "redis-server") == redis_since, "the broker restarted (ACL LOAD loads the users live)"
    ip = address(host)
    pg_passwords = ((new["vault_postgresql_airflow_password"], True), (old["vault_postgresql_airflow_password"], False))
    for pg_password, works in pg_passwords:
        result = host.run(f"PGPASSWORD=%s psql -h {ip} -U airflow -d airflow -tAc 'select 1'", pg_password)
        assert (result.rc == 0) == works, f"PostgreSQL {'refused the new' if works else 'accepted the old'} password: {result.stderr}"
    resp = requests.get(f"{api_url(host)}/api/v2/dags?limit=1", headers={"Authorization": f"Bearer {api.token}"}, timeout=15)
    # Airflow answers 403 to a token whose signature does not verify
    assert resp.status_code in (401, 403), f"a token signed with the old JWT secret still works: {resp.status_code}"
    acl = host.file(USERS_ACL)
    assert (acl.user, acl.group, acl.mode) == ("redis", "redis", 0o640)
    assert new["vault_redis_password"] not in acl.content_string, "the users file holds the password itself"
    assert acl.content_string.count("#") == 1, "the users file still accepts a second password"

    # a deploy afterwards has nothing to do
    again = run_playbook("playbooks/site.yml", {})
    assert_unchanged(again)

