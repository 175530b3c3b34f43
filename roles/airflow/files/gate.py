"""(Re)start Airflow components and wait until each is healthy (tasks/cycle.yml).

  python gate.py --state restarted|started|checked --timeout SECONDS --user USER
                 [--clear DIR] NAME=UNIT=PROBE...

Run as root with the release's python (ansible.builtin.script). It asks
systemd for all the units in one call without waiting for the stops (a
triggerer takes up to ~10 s to stop while the others already start again),
then a child process of USER polls every POLL seconds (0.25: a restart's
end is seen within a quarter second, at the cost of a local HTTP request or
one indexed query each time) until every component is healthy:

- its unit is active (after a restart: became so after this call, never
  the process that was stopping), and
- its PROBE passes: `url URL` answers 200 (loopback liveness: the
  certificate is the clients' to check), `job JOB_TYPE` finds an alive job
  of this host (`airflow jobs check --job-type JOB_TYPE --local`, the seed's
  healthcheck; after a restart one started since), or `celery NODE` gets
  NODE's answer to a Celery ping.

Airflow is imported once, by the first probe that needs it: a CLI process
per attempt cost ~3 s of CPU each while the components it waits for
started on the same CPUs. The Celery ping needs no Airflow when airflow.cfg
($AIRFLOW_CONFIG) sets only what a bare Celery app reproduces (a redis://
broker_url, Airflow's own Celery config, no TLS, no transport option that
changes the broker's keys): then the gate costs ~0.4 s of CPU instead of
~2.2 s (Airflow's import), on each worker host while its worker starts; anything
else pings with Airflow's own Celery app. Prints each component when healthy;
each has SECONDS from the (re)start. Its stdout carries these lines alone
(what Airflow or a library prints there goes to stderr). Then removes DIR/NAME (the pending
restart, tasks/pending.yml) of each; exits 1 naming those not healthy in
time, and what their probe said last.

`--state checked` starts nothing: it probes what runs, the same way, until
healthy or SECONDS (0: one round), for `make status` (tasks/status.yml).
"""

from __future__ import annotations

import argparse
import configparser
import datetime
import http.client
import os
import pwd
import signal
import ssl
import subprocess
import sys
import time
import traceback
import urllib.request


def parse_specs(specs):
    """NAME=UNIT=PROBE -> [(name, unit, kind, target)], refusing what it cannot run."""
    parsed = []
    for spec in specs:
        name, _, rest = spec.partition("=")
        unit, _, probe = rest.partition("=")
        kind, _, target = probe.partition(" ")
        if not (name and unit and target) or kind not in PROBES:
            raise SystemExit(f"bad component {spec!r}: NAME=UNIT=PROBE, PROBE one of {', '.join(f'{k} ...' for k in PROBES)}")
        parsed.append((name, unit, kind, target))
    return parsed


def probe_url(url, since):
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    try:
        with urllib.request.urlopen(url, timeout=2, context=context) as resp:
            return resp.status == 200, f"HTTP {resp.status}"
    except (OSError, http.client.HTTPException) as exc:
        return False, str(exc)


_airflow = {}


def probe_job(job_type, since):
    if not _airflow.get("job"):
        from sqlalchemy import select

        from airflow.jobs.job import Job
        from airflow.utils.net import get_hostname
        from airflow.utils.session import create_session

        def alive(job_type, since):
            started = datetime.datetime.fromtimestamp(since, tz=datetime.timezone.utc)
            with create_session() as session:
                jobs = session.scalars(
                    select(Job).where(
                        Job.job_type == job_type, Job.hostname == get_hostname(), Job.state == "running",
                        Job.start_date >= started)
                ).all()
                return any(job.is_alive() for job in jobs)

        _airflow["job"] = alive
    if _airflow["job"](job_type, since):
        return True, "alive"
    return False, f"no {job_type} of this host alive" + (" started since the restart" if since else "")


# What airflow.cfg may set and the bare Celery app of celery_app() still
# pings the same workers with: Airflow's default Celery config, and transport
# options that do not touch the broker's keys or connection.
_AIRFLOW_CELERY_CONFIG = "airflow.providers.celery.executors.default_celery.DEFAULT_CELERY_CONFIG"
_BARE_TRANSPORT_OPTIONS = {"visibility_timeout"}


def bare_broker_url(cfg, environ):
    """The broker URL when a bare Celery app pings like Airflow's, else None."""
    if any(name.startswith("AIRFLOW__CELERY") for name in environ):
        return None
    parser = configparser.ConfigParser()  # Airflow's interpolation: '%%' is '%'
    try:  # what this parser reads otherwise than Airflow's leaves the ping to Airflow's app
        if not parser.read(cfg) or not parser.has_section("celery"):
            return None
        celery = parser["celery"]
        url = celery.get("broker_url", "")
        bare = (url.startswith("redis://")
                and celery.get("celery_config_options", _AIRFLOW_CELERY_CONFIG) == _AIRFLOW_CELERY_CONFIG
                and celery.get("ssl_active", "false").strip().lower() in ("false", "0", "")
                and not set(parser["celery_broker_transport_options"] if parser.has_section("celery_broker_transport_options") else ())
                - _BARE_TRANSPORT_OPTIONS)
    except configparser.Error:
        return None
    return url if bare else None


def celery_app():
    url = bare_broker_url(os.environ.get("AIRFLOW_CONFIG", ""), os.environ)
    if url:
        from celery import Celery

        return Celery("airflow-gate", broker=url, set_as_current=False)
    from airflow.providers.celery.executors.celery_executor import app

    return app


def probe_celery(node, since):
    if not _airflow.get("celery"):
        _airflow["celery"] = celery_app()
    replies = _airflow["celery"].control.ping(destination=[node], timeout=1.0)
    if any(node in reply for reply in replies):
        return True, "pong"
    return False, f"no answer from {node} to a Celery ping"


PROBES = {"url": probe_url, "job": probe_job, "celery": probe_celery}
POLL = 0.25  # seconds between two rounds of probes
RESULTS = sys.stdout  # the gate's lines (results_on_stdout gives them stdout alone)


def active_since(units):
    """unit -> CLOCK_MONOTONIC seconds since which it is active (None: not active)."""
    out = subprocess.run(
        ["systemctl", "show", "--property", "Id,ActiveState,ActiveEnterTimestampMonotonic", "--", *units],
        check=True, capture_output=True, text=True).stdout
    state = {}
    for block in out.strip().split("\n\n"):
        props = dict(line.split("=", 1) for line in block.splitlines() if "=" in line)
        if props.get("ActiveState") == "active":
            state[props["Id"][: -len(".service")]] = int(props["ActiveEnterTimestampMonotonic"]) / 1e6
    return state


def wait(components, timeout, start, since_mono, since_wall):
    """Poll from start (CLOCK_MONOTONIC) until every component is healthy, its
    unit active since since_mono and a job started since since_wall (0: any),
    or timeout seconds passed; return those that are not, with why."""
    pending = {name: (unit, kind, target) for name, unit, kind, target in components}
    last = dict.fromkeys(pending, "its unit is not active")
    while True:
        running = active_since([unit for unit, _, _ in pending.values()])
        for name, (unit, kind, target) in list(pending.items()):
            if unit not in running or running[unit] < since_mono:
                last[name] = f"{unit} not active" + (" since the restart" if since_mono else "")
                continue
            try:
                healthy, last[name] = PROBES[kind](target, since_wall)
            except Exception as exc:  # a database or broker that does not answer yet: try again
                healthy, last[name] = False, f"{type(exc).__name__}: {exc}"
            if healthy:
                say(f"{name}: healthy after {time.monotonic() - start:.1f} s ({last[name]})")
                del pending[name]
        if not pending or time.monotonic() - start >= timeout:
            return {name: last[name] for name in pending}
        time.sleep(POLL)


def probe_as(user, components, timeout, start, since):
    """In a child process of USER (Airflow code never runs as root): wait, report, exit."""
    rc = 2
    try:
        os.setgroups([])
        os.setgid(user.pw_gid)
        os.setuid(user.pw_uid)
        os.environ.update(HOME=user.pw_dir, USER=user.pw_name, LOGNAME=user.pw_name)
        os.chdir("/")
        signal.alarm(int(timeout) + 60)  # a probe that hangs (each has its own timeout) ends the gate
        failed = wait(components, timeout, start, *since)
        for name, why in failed.items():
            say(f"{name}: not healthy" + (f" within {timeout:g} s" if timeout else "") + f" ({why})")
        rc = 1 if failed else 0
    except BaseException:  # noqa: B036 - the child must end here, whatever happened
        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(rc)


def results_on_stdout():
    """Keep stdout for the gate's results: from here on what anything else
    prints there (Airflow's import logs to it) goes to stderr."""
    global RESULTS
    sys.stdout.flush()
    RESULTS = os.fdopen(os.dup(sys.stdout.fileno()), "w", buffering=1)
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())


def say(line):
    print(line, file=RESULTS, flush=True)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--state", choices=["restarted", "started", "checked"], required=True)
    parser.add_argument("--timeout", type=float, required=True)
    parser.add_argument("--user", required=True, help="probe as this user")
    parser.add_argument("--clear", help="folder of the pending restarts to clear when healthy")
    parser.add_argument("components", nargs="+", metavar="NAME=UNIT=PROBE")
    args = parser.parse_args(argv)
    if args.state == "checked" and args.clear:
        parser.error("--clear: a check restarts nothing, so it clears no pending restart")
    components = parse_specs(args.components)
    user = pwd.getpwnam(args.user)
    results_on_stdout()
    start = time.monotonic()
    # A restart must show the new process. A start takes what runs: a unit
    # that systemd itself restarted after the caller read it as stopped is
    # not started again by this call.
    since = (start, time.time()) if args.state == "restarted" else (0.0, 0.0)
    verb = args.state[: -len("ed")]
    units = [unit for _, unit, _, _ in components]
    if args.state != "checked" and subprocess.run(["systemctl", verb, "--no-block", "--", *units]).returncode != 0:
        say(f"systemctl {verb} failed for one of {', '.join(units)}")
        return 1
    child = os.fork()
    if child == 0:
        probe_as(user, components, args.timeout, start, since)
    rc = os.waitstatus_to_exitcode(os.waitpid(child, 0)[1])
    if rc == 0 and args.clear:
        for name, _, _, _ in components:
            try:
                os.remove(os.path.join(args.clear, name))
            except FileNotFoundError:
                pass
    return rc


if __name__ == "__main__":
    sys.exit(main())
