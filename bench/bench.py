#!/usr/bin/env python3
"""Deploy benchmark of the airflow-vm collection on the local test bed.

Figures, each the median of --runs N runs (every run is kept in the JSON):

  single   fresh single-node deploy: the clock starts before the container
           is created and stops when `playbooks/site.yml` (which ends with
           the cluster health gate) has finished OK. One cold run first
           (package caches emptied; a single run, not a median), then N warm
           runs. --keep-cache skips the cold run and keeps the caches.
  rerun    site.yml again on the deployed single node: seconds and the sum
           of `changed=` over the PLAY RECAP (failed=0 is required).
  cluster  fresh cluster deploy: `playbooks/site.yml` on new containers (their
           creation, one after another by the test bed, is recorded apart as
           testbed_seconds): a data host (postgresql, redis), a core host
           (api-server, scheduler, dag-processor, triggerer) and 1 or 4
           worker hosts; ratio 4/1. Each run also records the machine's busy
           CPU seconds (all its cores: hosts, docker, controller), the
           controller's and each host's own (its container's cgroup); the wall
           ratio nears their ratio 4/1 (the median of the paired runs' ratios)
           as both deploys keep this machine's cores busy (the hosts share
           them), and what one more worker host costs tells why.
  config   a config-only change re-deployed with site.yml on a cluster with
           two core hosts (data, core1, core2, worker1; deployed once, not
           timed): wall seconds, and the seconds in which neither api-server
           answered /api/v2/monitor/health healthy (probed once a second).
           `config`: core.parallelism, which only the schedulers read (they
           alone restart); `config_all`: core.max_active_tasks_per_dag too,
           which several kinds of component read (every component restarts,
           host by host).
  upgrade  the same layout deployed with Airflow 3.0.2 (not timed), then
           site.yml with airflow_version 3.3.2: wall seconds, seconds with no
           healthy api-server, and the migration's own seconds (switch.json).
  dags     one DAG file changed (bench_dag_change.py with a new marker in a
           temp copy of dags/, passed as -e airflow_dags_src=<dir>/) and
           shipped with playbooks/dags.yml (`make dags`); the file is read back
           from the host (docker exec) and must hold the marker.

Test bed: systemd containers named bench-* on the docker network
airflow-bench, made by bench/testbed.yml (molecule/shared/tasks/vm.yml), with
/var/cache/airflow-bench/{uv,pip,apt} as warm package caches. Inventories are
generated under bench/.work/<layout>/ (secrets: molecule/shared/group_vars),
one log per ansible-playbook run under bench/.work/logs/ (profile_tasks
output: the slowest tasks). Bench containers are removed at start and at the
end, also on failure; no other container is touched.

  .venv/bin/python bench/bench.py [--runs 3] [--only single|rerun|cluster|dags|config|upgrade]... [--json PATH]
                                  [--keep-cache] [--task-cpu]
"""
import argparse
import datetime
import json
import os
import platform
import re
import resource
import shutil
import statistics
import subprocess
import sys
import time
import traceback
import uuid
from pathlib import Path

import yaml

import cgroup_cpu  # bench/cgroup_cpu.py

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
WORK = BENCH / ".work"
LOGS = WORK / "logs"
CACHE = Path("/var/cache/airflow-bench")
SHARED = ROOT / "molecule" / "shared"
VAULT_PASS = SHARED / ".vault_pass"
BIN = Path(sys.executable).parent
PLAYBOOK = str(BIN / "ansible-playbook")
DAGS_FOLDER = "/var/lib/airflow/dags"  # the role's airflow_dags_folder default
DAG_FILE = "bench_dag_change.py"
TASK_CPU = False  # --task-cpu
FIGURES = ["single", "rerun", "dags", "cluster", "config", "upgrade"]

AIRFLOW = ["airflow_api_server", "airflow_scheduler", "airflow_dag_processor",
           "airflow_triggerer", "airflow_worker", "airflow_flower"]
CORE = AIRFLOW[:4]
# the same groups as molecule/default/molecule.yml
LAYOUTS = {
    "single": {"bench-single": ["postgresql", "redis"] + AIRFLOW},
    "cluster1": {"bench-c1-data": ["postgresql", "redis"], "bench-c1-core": CORE,
                 "bench-c1-worker1": ["airflow_worker"]},
    "cluster4": {"bench-c4-data": ["postgresql", "redis"], "bench-c4-core": CORE,
                 **{f"bench-c4-worker{i}": ["airflow_worker"] for i in range(1, 5)}},
    "core2": {"bench-k2-data": ["postgresql", "redis"], "bench-k2-core1": CORE, "bench-k2-core2": CORE,
              "bench-k2-worker1": ["airflow_worker"]},
}
# targets: seconds, except the cluster ratio
TARGETS = {"single_cold": 150, "single_warm": 90, "rerun": 15, "cluster_ratio": 1.3, "dags": 10, "config": 30}
RECAP = re.compile(r"^(\S+)\s*:\s*ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", re.M)
PROFILE = re.compile(r"^(.+?) -+ (\d+\.\d+)s$", re.M)  # a long name leaves 1-2 dashes
ANSI = re.compile(r"\x1b\[[0-9;]*m")


class BenchError(RuntimeError):
    pass


def log_path(name):
    return LOGS / f"{datetime.datetime.now():%Y%m%d-%H%M%S}-{name}.log"


def busy_cpu_seconds():
    """CPU seconds this machine spent busy since boot, all cores (user, nice,
    system, irq, softirq of /proc/stat): the test bed's hosts, the docker
    daemon and the controller share them."""
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()
    return sum(int(fields[i]) for i in (1, 2, 3, 6, 7)) / os.sysconf("SC_CLK_TCK")


def host_cpu_seconds(names):
    """CPU seconds each test-bed container has used since it was created
    (bench/cgroup_cpu.py); None when this machine exposes no cgroup of them."""
    return {name: round(v, 1) for name, v in cgroup_cpu.read(cgroup_cpu.cgroup_files(names)).items()} or None


def children_cpu_seconds():
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def ansible(args, log, check=True, task_cpu=None):
    """Run ansible-playbook from the repo root; output into log. Returns (seconds, text, rc).
    task_cpu: a path for the task_cpu callback's JSON (bench/callback_plugins)."""
    callbacks = {"ANSIBLE_CALLBACKS_ENABLED": "ansible.posix.profile_tasks"}
    if task_cpu:
        callbacks = {"ANSIBLE_CALLBACKS_ENABLED": "ansible.posix.profile_tasks,task_cpu",
                     "ANSIBLE_CALLBACK_PLUGINS": str(BENCH / "callback_plugins"), "BENCH_TASK_CPU": str(task_cpu)}
    env = dict(os.environ, **callbacks,
               ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"),
               PROFILE_TASKS_TASK_OUTPUT_LIMIT="30",
               ANSIBLE_FORCE_COLOR="0", ANSIBLE_NOCOLOR="1",
               # facts survive between runs: `--tags` runs skip site.yml's fact play
               ANSIBLE_CACHE_PLUGIN="jsonfile",
               ANSIBLE_CACHE_PLUGIN_CONNECTION=str(WORK / "facts"))
    start = time.monotonic()
    with open(log, "w") as out:
        rc = subprocess.run([PLAYBOOK, *map(str, args)], cwd=ROOT, env=env,
                            stdout=out, stderr=subprocess.STDOUT).returncode
    seconds = time.monotonic() - start
    text = ANSI.sub("", Path(log).read_text(errors="replace"))
    if check and rc != 0:
        lines = text.splitlines()
        hits = [i for i, line in enumerate(lines) if line.startswith(("fatal:", "ERROR", "[ERROR]"))]
        tail = "\n".join(lines[hits[0]:hits[0] + 12] if hits else lines[-25:])
        raise BenchError(f"ansible-playbook {' '.join(map(str, args))} failed (rc={rc}), log {log}:\n{tail}")
    return seconds, text, rc


def testbed(names, state, name):
    if names:
        ansible(["-i", "localhost,", BENCH / "testbed.yml",
                 "-e", json.dumps({"bench_vms": names, "bench_state": state})], log_path(f"testbed-{state}-{name}"))


def bench_containers():
    out = subprocess.run(["docker", "ps", "-a", "--filter", "label=airflow-bench=true",
                          "--format", "{{.Names}}"], check=True, capture_output=True, text=True).stdout
    return [n for n in out.split() if n.startswith("bench-")]


def cleanup():
    testbed(bench_containers(), "absent", "cleanup")


def write_inventory(layout):
    """bench/.work/<layout>/: hosts.yml + group_vars/all (molecule's secrets)."""
    inv = WORK / layout
    children = {"postgresql": {"hosts": {}}, "redis": {"hosts": {}},
                "airflow": {"children": {g: {"hosts": {}} for g in AIRFLOW}}}
    for host, groups in LAYOUTS[layout].items():
        for group in groups:
            node = children[group] if group in children else children["airflow"]["children"][group]
            node["hosts"][host] = None
    hosts = {"all": {"vars": {"ansible_connection": "community.docker.docker", "ansible_user": "root"},
                     "hosts": {h: {"ansible_host": h} for h in LAYOUTS[layout]},
                     "children": children}}
    gv = inv / "group_vars" / "all"
    gv.mkdir(parents=True, exist_ok=True)
    (inv / "hosts.yml").write_text("---\n" + yaml.safe_dump(hosts, sort_keys=False))
    for name in ("main.yml", "vault.yml"):
        link = gv / name
        if not link.is_symlink():
            link.symlink_to(SHARED / "group_vars" / "all" / name)
    # as inventories/local: the VMs trust this machine's extra CAs (TLS proxy)
    (gv / "bench.yml").write_text(
        "---\nairflow_ca_certificates: >-\n  {{ query('ansible.builtin.file', "
        "*query('ansible.builtin.fileglob', '/usr/local/share/ca-certificates/*.crt')) }}\n")
    return inv


def deploy(layout, playbook, name, extra=()):
    """One playbook run against a layout; fails unless rc=0 and failed=unreachable=0."""
    log = log_path(name)
    task_cpu = log.with_suffix(".task-cpu.json") if TASK_CPU else None
    busy, controller = busy_cpu_seconds(), children_cpu_seconds()
    seconds, text, _ = ansible(["-i", WORK / layout, "--vault-password-file", VAULT_PASS,
                                ROOT / "playbooks" / playbook, *extra], log, task_cpu=task_cpu)
    busy, controller = busy_cpu_seconds() - busy, children_cpu_seconds() - controller
    recap = text[text.rfind("PLAY RECAP"):]
    hosts = {m[0]: dict(zip(("ok", "changed", "unreachable", "failed"), map(int, m[1:])))
             for m in RECAP.findall(recap)}
    if not hosts or any(h["failed"] or h["unreachable"] for h in hosts.values()):
        raise BenchError(f"{playbook} on {layout}: failed/unreachable hosts {hosts}, log {log}")
    # cpu_seconds: the whole machine's busy CPU during the run (the hosts,
    # docker, the controller); controller_cpu_seconds: ansible-playbook's own
    # processes and the docker CLI calls of its connection
    return {"seconds": round(seconds, 1), "changed": sum(h["changed"] for h in hosts.values()),
            "cpu_seconds": round(busy, 1), "controller_cpu_seconds": round(controller, 1),
            "recap": hosts, "log": str(log.relative_to(ROOT)),
            **({"task_cpu": str(task_cpu.relative_to(ROOT))} if task_cpu else {})}


def top_tasks(run, host, n=8):
    """The n tasks that took most CPU on host (--task-cpu), as text."""
    rows = json.loads((ROOT / run["task_cpu"]).read_text()) if "task_cpu" in run else []
    rows = sorted(rows, key=lambda r: -r["hosts"].get(host, 0))[:n]
    return ", ".join(f"{r['task']} {r['hosts'][host]:.1f}" for r in rows if r["hosts"].get(host))


def cache_state():
    uv = CACHE / "uv"
    return "warm" if uv.is_dir() and any(uv.iterdir()) else "cold"


def fresh_deploy(layout, name, extra=()):
    """Clock from container creation to site.yml OK on fresh containers. The
    controller's release cache is new for each deploy: the release is built
    once (on the first Airflow host) and shipped, as on a first install."""
    names = list(LAYOUTS[layout])
    cleanup()
    write_inventory(layout)
    cache = cache_state()
    releases = WORK / "release-cache"
    shutil.rmtree(releases, ignore_errors=True)
    start = time.monotonic()
    testbed(names, "present", name)
    created = time.monotonic()
    run = deploy(layout, "site.yml", name, ["-e", f"airflow_release_cache_dir={releases}", *extra])
    run.update(seconds=round(time.monotonic() - start, 1), testbed_seconds=round(created - start, 1),
               deploy_seconds=run["seconds"], cache=cache, host_cpu_seconds=host_cpu_seconds(names))
    testbed(names, "harvest", name)
    return run


def api_addresses(layout):
    hosts = [h for h, groups in LAYOUTS[layout].items() if "airflow_api_server" in groups]
    return [subprocess.run(["docker", "inspect", "--format", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}",
                            h], check=True, capture_output=True, text=True).stdout.strip() for h in hosts]


class HealthProbe:
    """/api/v2/monitor/health of every api-server once a second (bench containers
    only); counts the seconds in which none answered with a healthy
    metadatabase within 5 s (a slow answer on a busy CPU is still an answer),
    and keeps when each such second began (CLOCK_MONOTONIC, the clock of the
    containers' systemd timestamps too)."""

    def __init__(self, addresses):
        import threading
        self.urls = [f"http://{a}:8080/api/v2/monitor/health" for a in addresses]
        self.gap, self.samples, self.stop = 0, 0, threading.Event()
        self.away = []  # start of each second without a healthy api-server
        self.thread = threading.Thread(target=self.run, daemon=True)

    def healthy(self, url):
        import urllib.request
        try:
            with urllib.request.urlopen(url, timeout=5) as resp:
                return json.load(resp)["metadatabase"]["status"] == "healthy"
        except (OSError, ValueError, KeyError):
            return False

    def run(self):
        while not self.stop.is_set():
            tick = time.monotonic()
            self.samples += 1
            if not any(self.healthy(u) for u in self.urls):
                self.gap += 1
                self.away.append(tick)
            self.stop.wait(max(0.0, 1 - (time.monotonic() - tick)))

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join(timeout=5)


def probed_deploy(layout, name, extra):
    with HealthProbe(api_addresses(layout)) as probe:
        run = deploy(layout, "site.yml", name, ["-e", json.dumps(extra)])
    run.update(gap_seconds=probe.gap, probe_samples=probe.samples, away=probe.away)
    return run


def figure(runs, target, unit="s", key="seconds", **extra):
    values = [r[key] for r in runs]
    median = statistics.median_low(values)
    return {"median": median, "runs": runs, "values": values, "target": target,
            "pass": None if target is None else median <= target, "unit": unit, **extra}


class Bench:
    def __init__(self, args):
        self.args, self.results, self.single_ready = args, {}, False

    def single(self):
        if not self.args.keep_cache:
            for sub in ("uv", "pip", "apt"):
                shutil.rmtree(CACHE / sub, ignore_errors=True)
        if cache_state() == "cold":
            run = fresh_deploy("single", "single-cold")
            self.results["single_cold"] = figure([run], TARGETS["single_cold"], note="1 run, caches emptied")
            print(f"single cold: {run['seconds']} s")
        runs = []
        for i in range(self.args.runs):
            runs.append(fresh_deploy("single", f"single-warm{i + 1}"))
            print(f"single warm {i + 1}: {runs[-1]['seconds']} s ({runs[-1]['cache']})")
        self.results["single_warm"] = figure(runs, TARGETS["single_warm"])
        self.single_ready = True

    def need_single(self):
        if not self.single_ready or "bench-single" not in bench_containers():
            print("setup: fresh single-node deploy (not timed)")
            fresh_deploy("single", "single-setup")
            self.single_ready = True

    def rerun(self):
        self.need_single()
        runs = []
        for i in range(self.args.runs):
            runs.append(deploy("single", "site.yml", f"rerun{i + 1}"))
            print(f"rerun {i + 1}: {runs[-1]['seconds']} s, changed={runs[-1]['changed']}")
        fig = figure(runs, TARGETS["rerun"], changed=[r["changed"] for r in runs])
        fig["pass"] = fig["pass"] and not any(fig["changed"])
        self.results["rerun"] = fig

    def dags(self):
        self.need_single()
        runs = []
        for i in range(self.args.runs):
            src = WORK / "dags-src" / f"run{i + 1}"
            shutil.rmtree(src, ignore_errors=True)
            shutil.copytree(ROOT / "dags", src)
            marker = f"bench-marker-{uuid.uuid4().hex}"
            (src / DAG_FILE).write_text(
                f'"""Benchmark DAG change {marker}."""\nimport pendulum\nfrom airflow.sdk import dag, task\n\n\n'
                f'@dag(schedule=None, start_date=pendulum.datetime(2024, 1, 1), catchup=False)\n'
                f'def bench_dag_change():\n    @task\n    def noop():\n        return "{marker}"\n\n'
                f'    noop()\n\n\nbench_dag_change()\n')
            run = deploy("single", "dags.yml", f"dags{i + 1}", ["-e", f"airflow_dags_src={src}/"])
            shipped = subprocess.run(["docker", "exec", "bench-single", "cat", f"{DAGS_FOLDER}/{DAG_FILE}"],
                                     capture_output=True, text=True).stdout
            if marker not in shipped:
                raise BenchError(f"{DAG_FILE} with {marker} did not reach bench-single:{DAGS_FOLDER}")
            run["verified"] = True
            runs.append(run)
            print(f"dags {i + 1}: {run['seconds']} s, changed={run['changed']}, file verified on host")
        self.results["dags"] = figure(runs, TARGETS["dags"], playbook="dags.yml")

    def cluster(self):
        by = {"cluster1": [], "cluster4": []}
        for i in range(self.args.runs):
            for layout in by:  # interleaved: load changes hit both alike
                by[layout].append(fresh_deploy(layout, f"{layout}-{i + 1}"))
                run = by[layout][-1]
                print(f"{layout} {i + 1}: site.yml {run['deploy_seconds']} s ({run['cpu_seconds']} CPU-s busy, controller"
                      f" {run['controller_cpu_seconds']}), containers {run['testbed_seconds']} s ({run['cache']})"
                      f"; CPU-s by host: {run['host_cpu_seconds']}")
                if TASK_CPU:
                    worker = next(h for h in LAYOUTS[layout] if "worker" in h)
                    print(f"  CPU-s of {worker} by task: {top_tasks(run, worker)} ({run['task_cpu']})")
        cleanup()
        c1, c4 = (figure(by[k], None, key="deploy_seconds") for k in by)
        ratio = round(c4["median"] / c1["median"], 2)
        # All the hosts share this machine's cores: once they are busy, three
        # more worker hosts add their CPU seconds to the wall time, as
        # separate VMs would not: the wall ratio nears the CPU ratio as both
        # deploys keep the cores busy.
        cpu = [round(b["cpu_seconds"] / a["cpu_seconds"], 2) for a, b in zip(by["cluster1"], by["cluster4"])]
        # What one more worker host costs (median over the paired runs): the
        # machine's busy CPU-s, the controller's, and the host's own (its
        # container's cgroup; the rest is docker's). On a machine with nproc
        # cores they add about extra * busy / nproc s to the wall time.
        extra = len(LAYOUTS["cluster4"]) - len(LAYOUTS["cluster1"])
        per_worker = {key: statistics.median_low(round((b[key] - a[key]) / extra, 1)
                                                 for a, b in zip(by["cluster1"], by["cluster4"]))
                      for key in ("cpu_seconds", "controller_cpu_seconds")}
        workers = [v for r in by["cluster4"] for h, v in (r["host_cpu_seconds"] or {}).items() if "worker" in h]
        per_worker["host_cpu_seconds"] = statistics.median_low(workers) if workers else None
        self.results.update(cluster1=c1, cluster4=c4, cluster_ratio={
            "median": ratio, "target": TARGETS["cluster_ratio"], "pass": ratio <= TARGETS["cluster_ratio"],
            "unit": "x", "values": [round(b["deploy_seconds"] / a["deploy_seconds"], 2)
                                    for a, b in zip(by["cluster1"], by["cluster4"])],
            "cpu_ratio": statistics.median_low(cpu), "cpu_ratios": cpu, "per_extra_worker": per_worker})


    def config(self):
        fresh_deploy("core2", "config-setup")
        for key, extra in (("config", {}), ("config_all", {"max_active_tasks_per_dag": 20})):
            runs = []
            for i in range(self.args.runs):
                core = {"parallelism": 40 + i, **{k: v + i for k, v in extra.items()}}
                runs.append(probed_deploy("core2", f"{key}{i + 1}", {"airflow_config": {"core": core}}))
                print(f"{key} {i + 1}: {runs[-1]['seconds']} s, {runs[-1]['gap_seconds']} s without a healthy api-server")
            fig = figure(runs, TARGETS["config"], gap=[r["gap_seconds"] for r in runs])
            fig["pass"] = fig["pass"] and not any(fig["gap"])
            self.results[key] = fig
        cleanup()

    def upgrade(self):
        runs = []
        for i in range(self.args.runs):
            fresh_deploy("core2", f"upgrade-setup{i + 1}", ["-e", "airflow_version=3.0.2"])
            run = probed_deploy("core2", f"upgrade{i + 1}", {"airflow_version": "3.3.2"})
            switch = json.loads(subprocess.run(["docker", "exec", "bench-k2-core1", "cat", "/opt/airflow/switch.json"],
                                               check=True, capture_output=True, text=True).stdout)
            if switch.get("to_version") != "3.3.2" or not switch.get("migrated"):
                raise BenchError(f"upgrade {i + 1}: switch.json says {switch}")
            run["migration_seconds"] = switch["migration_seconds"]
            # the window ends with the first new api-server's cold start
            started = min(float(subprocess.run(
                ["docker", "exec", h, "systemctl", "show", "-p", "ActiveEnterTimestampMonotonic", "--value",
                 "airflow-api-server"], check=True, capture_output=True, text=True).stdout) / 1e6
                for h, groups in LAYOUTS["core2"].items() if "airflow_api_server" in groups)
            run["api_cold_start_seconds"] = round(max((t + 1 for t in run.pop("away")), default=started) - started, 1)
            runs.append(run)
            print(f"upgrade {i + 1}: {run['seconds']} s, {run['gap_seconds']} s without a healthy api-server,"
                  f" migration {run['migration_seconds']} s, api-server cold start {run['api_cold_start_seconds']} s")
        cleanup()
        self.results["upgrade"] = figure(runs, None, gap=[r["gap_seconds"] for r in runs],
                                         migration=[r["migration_seconds"] for r in runs],
                                         api_cold_start=[r["api_cold_start_seconds"] for r in runs])


def slowest(run, n=10):
    text = ANSI.sub("", (ROOT / run["log"]).read_text(errors="replace"))
    return [(name.strip(), float(s)) for name, s in PROFILE.findall(text)][:n]


def machine():
    def sh(*cmd):
        try:
            return subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT).stdout.strip()
        except OSError:
            return ""
    cpuinfo = Path("/proc/cpuinfo").read_text()
    model = re.search(r"^model name\s*:\s*(.+)$", cpuinfo, re.M)
    mem = re.search(r"^MemTotal:\s*(\d+) kB", Path("/proc/meminfo").read_text(), re.M)
    return {"nproc": int(sh("nproc") or os.cpu_count()), "cpu_model": model[1] if model else "unknown",
            "ram_gib": round(int(mem[1]) / 2**20, 1) if mem else None, "kernel": platform.release(),
            "docker": sh("docker", "version", "--format", "{{.Server.Version}}"),
            "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
            "git_commit": sh("git", "rev-parse", "HEAD"), "git_dirty": bool(sh("git", "status", "--porcelain")),
            # its apt lists date from the build: older than the roles' apt
            # cache_valid_time (1 h), each fresh host runs `apt-get update` first
            "image_created": sh("docker", "image", "inspect", "--format", "{{.Created}}", "airflow-vm:bookworm")}


LABELS = [("single_cold", "fresh single-node deploy, cold cache", "<= 150 s"),
          ("single_warm", "fresh single-node deploy, warm cache", "<= 90 s"),
          ("rerun", "site.yml re-run, same node (changed)", "<= 15 s, changed=0"),
          ("cluster1", "cluster deploy (site.yml), 1 worker host", "-"),
          ("cluster4", "cluster deploy (site.yml), 4 worker hosts", "-"),
          ("cluster_ratio", "cluster ratio 4 workers / 1 worker", "<= 1.3"),
          ("dags", "DAG change shipped (verified on host)", "<= 10 s"),
          ("config", "config-only change read by the schedulers, cluster of 2 core hosts (s without healthy API)",
           "<= 30 s, 0 s gap"),
          ("config_all", "config-only change read by all components, same cluster (s without healthy API)",
           "<= 30 s, 0 s gap"),
          ("upgrade", "upgrade 3.0.2 -> 3.3.2, same cluster (s without healthy API / migration s / api-server cold start s)",
           "gap ~ migration + cold start")]


def table(results):
    rows = ["| figure | median | runs | target | result |", "| --- | ---: | --- | --- | --- |"]
    for key, label, target in LABELS:
        fig = results.get(key)
        if not fig:
            continue
        unit = fig.get("unit", "s")
        runs = ", ".join(f"{v}" for v in fig["values"])
        if key in ("rerun", "dags"):
            runs += f" (changed: {', '.join(str(r['changed']) for r in fig['runs'])})"
        if key == "dags":
            runs += f" [{fig['playbook']}]"
        if key.startswith("config"):
            runs += f" (gap: {', '.join(map(str, fig['gap']))})"
        if key == "upgrade":
            runs += " (gap/migration/cold start: " + ", ".join(
                f"{g}/{m}/{c}" for g, m, c in zip(fig["gap"], fig["migration"], fig.get("api_cold_start", fig["gap"]))) + ")"
        if key.startswith(("single", "cluster1", "cluster4")):
            runs += f" [{'/'.join(sorted({r['cache'] for r in fig['runs']}))} cache]"
        if key in ("cluster1", "cluster4") and all("cpu_seconds" in r for r in fig["runs"]):
            runs += f" (busy CPU-s: {', '.join(str(r['cpu_seconds']) for r in fig['runs'])})"
        if key == "cluster_ratio" and "cpu_ratios" in fig:
            runs += f" (CPU-s ratio: {', '.join(map(str, fig['cpu_ratios']))})"
            if "per_extra_worker" in fig:
                w = fig["per_extra_worker"]
                runs += (f" (per extra worker host: {w['cpu_seconds']} busy CPU-s, {w['host_cpu_seconds']} on the host,"
                         f" {w['controller_cpu_seconds']} controller)")
        result = "-" if fig.get("target") is None else ("PASS" if fig["pass"] else "MISS")
        rows.append(f"| {label} | {fig['median']} {unit} | {runs} | {target} | {result} |")
    return "\n".join(rows)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=3, help="runs per figure (median), default 3")
    parser.add_argument("--only", action="append", choices=FIGURES, help="figure to measure (repeatable)")
    parser.add_argument("--json", type=Path, default=BENCH / "results.json", help="results file")
    parser.add_argument("--keep-cache", action="store_true",
                        help="do not empty the package caches (no cold run when they are warm)")
    parser.add_argument("--task-cpu", action="store_true",
                        help="record each deploy's CPU seconds per task and host (bench/callback_plugins/task_cpu.py)"
                             " in <log>.task-cpu.json; it costs the controller a little CPU itself")
    args = parser.parse_args()
    global TASK_CPU
    TASK_CPU = args.task_cpu
    only = [f for f in FIGURES if f in (args.only or FIGURES)]
    LOGS.mkdir(parents=True, exist_ok=True)
    bench, error = Bench(args), None
    # the secrets of the test beds (idempotent: never overwrites)
    ansible(["-i", "localhost,", ROOT / "playbooks" / "bootstrap.yml", "-e", f"bootstrap_dir={SHARED}"],
            log_path("bootstrap"))
    try:
        cleanup()
        for name in only:
            print(f"== {name}", flush=True)
            getattr(bench, name)()
    except (BenchError, KeyboardInterrupt) as exc:
        error = str(exc) or type(exc).__name__
    except Exception as exc:  # a bug here: still clean up and keep what was measured
        traceback.print_exc()
        error = f"{type(exc).__name__}: {exc}"
    finally:
        cleanup()
    report = {"machine": machine(), "runs": args.runs, "figures": only, "results": bench.results}
    med = bench.results.get("rerun")
    if med:
        report["rerun_slowest_tasks"] = slowest(next(r for r in med["runs"] if r["seconds"] == med["median"]))
    single = bench.results.get("single_warm")
    if single:
        report["single_warm_slowest_tasks"] = slowest(
            next(r for r in single["runs"] if r["seconds"] == single["median"]))
    if error:
        report["error"] = error
    args.json.write_text(json.dumps(report, indent=2) + "\n")
    m = report["machine"]
    print(f"\n{m['nproc']} CPUs ({m['cpu_model']}), {m['ram_gib']} GiB, kernel {m['kernel']}, "
          f"docker {m['docker']}, {m['date']}, commit {m['git_commit'][:10]}{' (dirty)' if m['git_dirty'] else ''}, "
          f"{args.runs} run(s) per figure\n")
    print(table(bench.results))
    for key, title in (("single_warm_slowest_tasks", "fresh single-node deploy (median warm run)"),
                       ("rerun_slowest_tasks", "re-run (median run)")):
        if key in report:
            print(f"\n10 slowest tasks, {title}:")
            for name, seconds in report[key]:
                print(f"  {seconds:7.2f} s  {name}")
    print(f"\nresults: {args.json}; logs: {LOGS}")
    if error:
        sys.exit(f"\nBENCH FAILED: {error}")


if __name__ == "__main__":
    main()
