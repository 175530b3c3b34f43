"""Metrics (role monitoring, this host is in group `monitoring`): after a DAG
run, Prometheus' HTTP API answers the queries that the README's "Metrics"
section gives operators (each must return a series), the StatsD bridge
carries the scheduler's heartbeat and the DAG's task successes, every host's
node exporter and the data stores' exporters are up, every one of these
services listens on the node address only, and the role's alerting rules
are loaded, evaluate without error, and raise an alert for a stopped exporter
that goes once it is back. (Taken out of the inventory, the metrics stop,
and put back, they start again: test_day2's run of changes at once.)"""

from __future__ import annotations

import re

import pytest
import requests
import testinfra.utils.ansible_runner
import yaml

from airflow_testlib import (
    INVENTORY,
    PROMETHEUS_PORT,
    ROOT,
    address,
    inventory_groups,
    prometheus_query,
    wait_for_series,
    wait_until,
)

testinfra_hosts = testinfra.utils.ansible_runner.AnsibleRunner(INVENTORY).get_hosts("monitoring")

# port -> protocol of every service the role runs on this single host
LISTENERS = {9090: "tcp", 9103: "tcp", 8125: "udp", 9100: "tcp", 9187: "tcp", 9121: "tcp"}


def readme_queries() -> list[str]:
    """The PromQL of the README's "Metrics" table (second column, in backticks)."""
    section = ROOT.joinpath("README.md").read_text().split("\n## Metrics\n", 1)[1].split("\n## ", 1)[0]
    queries = re.findall(r"^\|[^|]+\| `([^`]+)` \|", section, re.MULTILINE)
    assert len(queries) >= 6, f"the README's Metrics table lists {len(queries)} queries"
    return queries


@pytest.fixture(scope="module")
def prometheus(host) -> str:
    return f"http://{address(host)}:{PROMETHEUS_PORT}"


@pytest.fixture(scope="module")
def dag_ran(api) -> str:
    run, _ = api.run_dag("smoke_celery")
    assert run["state"] == "success", run
    return run["dag_run_id"]


def test_every_target_is_up(prometheus):
    """node on every host, postgres, redis, the StatsD bridge and Prometheus."""
    groups = inventory_groups()
    expected = {("node", h) for h in sorted({*groups["airflow"], *groups["postgresql"], *groups["redis"]})}
    expected |= {("postgres", h) for h in groups["postgresql"]} | {("redis", h) for h in groups["redis"]}
    targets = requests.get(f"{prometheus}/api/v1/targets", timeout=10).json()["data"]["activeTargets"]
    jobs = {(t["labels"]["job"], t["labels"]["host"]) for t in targets}
    assert expected <= jobs, f"missing targets: {expected - jobs}"

    def all_up() -> bool:
        return all(s["value"][1] == "1" for s in prometheus_query(prometheus, "up")) and len(prometheus_query(prometheus, "up")) == len(targets)

    wait_until(all_up, 90, "every target up")
    assert prometheus_query(prometheus, "pg_up == 1") and prometheus_query(prometheus, "redis_up == 1")
    for job, name in expected:
        assert prometheus_query(prometheus, f'up{{job="{job}",host="{name}"}} == 1'), f"{job} of {name} is not up"


def test_airflow_statsd_reaches_prometheus(prometheus, dag_ran):
    heartbeat = wait_for_series(prometheus, 'collectd_statsd_derive_total{statsd="airflow.scheduler_heartbeat"}')
    assert float(heartbeat[0]["value"][1]) > 0
    successes = wait_for_series(prometheus, 'collectd_statsd_derive_total{statsd=~"airflow.ti.finish.smoke_celery.*.success"}')
    assert sum(float(s["value"][1]) for s in successes) >= 1, successes


@pytest.mark.parametrize("promql", readme_queries())
def test_the_readme_queries_answer(prometheus, dag_ran, promql):
    assert wait_for_series(prometheus, promql), promql


def test_every_listener_is_on_the_node_address_only(host):
    node = address(host)
    for port, protocol in LISTENERS.items():
        flag = "t" if protocol == "tcp" else "u"
        local = host.check_output(f"ss -Hln{flag} 'sport = :{port}' | awk '{{print $4}}'").split()
        assert local == [f"{node}:{port}"], f"{protocol}/{port} listens on {local}, not only {node}"


def test_the_redis_exporter_keeps_its_password_private(host, secrets):
    """The password is in the exporter's 0600 settings file, not on its command line."""
    settings = host.file("/etc/default/prometheus-redis-exporter")
    assert (settings.user, settings.group, settings.mode) == ("root", "root", 0o600)
    assert settings.contains("^REDIS_PASSWORD=")
    args = host.check_output("ps -o args= -C prometheus-redis-exporter")
    assert args and secrets["vault_redis_password"] not in args


def alerts(prometheus: str, name: str, **labels: str) -> list[dict]:
    """The pending or firing alerts of that name whose labels include `labels`."""
    found = requests.get(f"{prometheus}/api/v1/alerts", timeout=10).json()["data"]["alerts"]
    return [a for a in found if a["labels"]["alertname"] == name and labels.items() <= a["labels"].items()]


def test_the_alerting_rules_are_loaded_and_evaluate(prometheus):
    """Each rule of the role's default monitoring_alert_rules, in Prometheus,
    evaluated without error (health ok) with its severity."""
    wanted = yaml.safe_load(ROOT.joinpath("roles/monitoring/defaults/main.yml").read_text())["monitoring_alert_rules"]
    loaded: dict[str, dict] = {}

    def evaluated() -> bool:
        groups = requests.get(f"{prometheus}/api/v1/rules", params={"type": "alert"}, timeout=10).json()["data"]["groups"]
        loaded.clear()
        loaded.update({rule["name"]: rule for group in groups for rule in group["rules"]})
        return all(loaded.get(rule["alert"], {}).get("health") == "ok" for rule in wanted)

    wait_until(evaluated, 60, "every alerting rule evaluated")
    assert sorted(loaded) == sorted(rule["alert"] for rule in wanted), loaded.keys()
    for rule in wanted:
        assert loaded[rule["alert"]]["labels"]["severity"] == rule["severity"], loaded[rule["alert"]]


def test_a_stopped_exporter_raises_an_alert_that_goes_when_it_is_back(host, prometheus):
    """The Redis exporter stopped: ScrapeTargetDown for job redis turns
    pending (it would fire after its `for`); started again, the alert goes."""
    wait_until(lambda: not alerts(prometheus, "ScrapeTargetDown"), 60, "no ScrapeTargetDown before the test")
    host.run_test("systemctl stop prometheus-redis-exporter")
    try:
        took = wait_until(lambda: alerts(prometheus, "ScrapeTargetDown", job="redis"), 90, "ScrapeTargetDown for job redis")
        print(f"\nScrapeTargetDown pending {took:.0f} s after the Redis exporter stopped")
    finally:
        host.run_test("systemctl start prometheus-redis-exporter")
    wait_until(lambda: not alerts(prometheus, "ScrapeTargetDown"), 90, "ScrapeTargetDown gone")
