"""roles/airflow/files/gate.py, the health gate of every start and restart,
without hosts: how it reads its components, and its URL probe against a real
HTTP server on this machine. (Its systemd and Airflow probes run in every
molecule scenario: each start and restart there goes through it.)"""

from __future__ import annotations

import http.server
import importlib.util
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

GATE = Path(__file__).resolve().parents[3] / "roles" / "airflow" / "files" / "gate.py"
spec = importlib.util.spec_from_file_location("gate", GATE)
gate = importlib.util.module_from_spec(spec)
spec.loader.exec_module(gate)


def test_specs_are_name_unit_probe():
    assert gate.parse_specs(["api_server=airflow-api-server=url http://127.0.0.1:8080/x?a=b", "triggerer=airflow-triggerer=job TriggererJob"]) == [
        ("api_server", "airflow-api-server", "url", "http://127.0.0.1:8080/x?a=b"),
        ("triggerer", "airflow-triggerer", "job", "TriggererJob"),
    ]


@pytest.mark.parametrize("spec", ["api_server", "api_server=airflow-api-server", "x=unit=ping host", "x=unit=job "])
def test_bad_specs_are_refused_naming_them(spec):
    with pytest.raises(SystemExit, match="bad component"):
        gate.parse_specs([spec])


def test_a_check_clears_no_pending_restart(capsys):
    """`--state checked` (make status) restarts nothing, so it may not clear
    a pending restart: refused before it probes anything."""
    with pytest.raises(SystemExit) as refused:
        gate.main(["--state", "checked", "--timeout", "0", "--user", "airflow", "--clear", "/tmp/x",
                   "scheduler=airflow-scheduler=url http://127.0.0.1:8974/health"])
    assert refused.value.code == 2
    assert "--clear: a check restarts nothing" in capsys.readouterr().err


def test_the_results_have_stdout_alone():
    """make status shows the gate's stdout: what Airflow's import logs to
    stdout (a handler on sys.stdout, set up after the gate's start) and a
    library's print go to stderr instead."""
    code = (
        "import logging, sys; sys.path.insert(0, sys.argv[1]); import gate; gate.results_on_stdout(); "
        "logging.basicConfig(stream=sys.stdout, level=logging.INFO); logging.info('import logs this'); "
        "print('a library prints this'); gate.say('scheduler: healthy after 0.1 s (alive)')"
    )
    done = subprocess.run([sys.executable, "-c", code, str(GATE.parent)], capture_output=True, text=True, check=True)
    assert done.stdout == "scheduler: healthy after 0.1 s (alive)\n"
    assert "import logs this" in done.stderr and "a library prints this" in done.stderr


class Answer(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 - the handler's API
        self.send_response(200 if self.path == "/ok" else 503)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture()
def server():
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Answer)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()


def test_url_probe(server):
    assert gate.probe_url(f"{server}/ok", 0) == (True, "HTTP 200")
    healthy, why = gate.probe_url(f"{server}/starting", 0)
    assert not healthy and "503" in why
    with socket.socket() as closed:  # a port nothing listens on
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    healthy, why = gate.probe_url(f"http://127.0.0.1:{port}/ok", 0)
    assert not healthy and "refused" in why


BROKER = "redis://:p%%w@10.0.0.5:6379/0"  # as airflow.cfg.j2 writes a '%'


@pytest.mark.parametrize(
    ("cfg", "environ", "bare"),
    [
        ("[core]\nexecutor = CeleryExecutor\n[celery]\nbroker_url = " + BROKER + "\n", {}, True),
        ("[celery]\nbroker_url = " + BROKER + "\nssl_active = False\n"
         "[celery_broker_transport_options]\nvisibility_timeout = 21600\n", {}, True),
        ("[celery]\nbroker_url = " + BROKER + "\n", {"AIRFLOW__CELERY__BROKER_URL": "redis://other:6379/0"}, False),
        ("[celery]\nbroker_url = " + BROKER + "\nssl_active = True\n", {}, False),
        ("[celery]\nbroker_url = rediss://:pw@10.0.0.5:6380/0\n", {}, False),
        ("[celery]\nbroker_url = " + BROKER + "\ncelery_config_options = my_company.celery.CONFIG\n", {}, False),
        ("[celery]\nbroker_url = " + BROKER + "\n[celery_broker_transport_options]\nglobal_keyprefix = af_\n", {}, False),
        ("[core]\nexecutor = CeleryExecutor\n", {}, False),
        ("[celery]\nbroker_url = " + BROKER + "\nbroker_url = redis://other:6379/0\n", {}, False),
        ("[celery]\nbroker_url = " + BROKER + "\nssl_active = %(tls)s\n", {}, False),
    ],
    ids=["plain", "visibility timeout", "environment override", "TLS", "rediss", "own celery config", "key prefix", "no broker",
         "unreadable here", "interpolation error"],
)
def test_bare_celery_ping_only_where_it_reaches_the_same_workers(tmp_path, cfg, environ, bare):
    path = tmp_path / "airflow.cfg"
    path.write_text(cfg)
    assert gate.bare_broker_url(str(path), environ) == ("redis://:p%w@10.0.0.5:6379/0" if bare else None)


def test_bare_celery_ping_needs_the_config_file(tmp_path):
    assert gate.bare_broker_url(str(tmp_path / "missing.cfg"), {}) is None
