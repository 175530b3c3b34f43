"""Where a deploy's CPU goes, task by task: at every task start, the CPU
seconds each bench container (its cgroup) and this ansible-playbook (with
its forks and the docker CLI of its connection) used since the previous
start; written as JSON to $BENCH_TASK_CPU (else ./task-cpu.json) at the end. Enabled by
`bench.py --task-cpu`. With the linear strategy, a task's row holds its
own work on every host (plus what runs in the background meanwhile, such
as the release build)."""
import json
import os
import resource
import subprocess
import sys

from ansible.plugins.callback import CallbackBase

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import cgroup_cpu  # noqa: E402  (bench/cgroup_cpu.py)

DOCUMENTATION = """
name: task_cpu
type: aggregate
short_description: CPU seconds per task of each bench container and of the controller
description: Writes them as JSON to the file named by the BENCH_TASK_CPU environment variable.
requirements: [enable in callbacks_enabled]
"""


def controller_seconds():
    return sum(getattr(resource.getrusage(who), field)
               for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN) for field in ("ru_utime", "ru_stime"))


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "task_cpu"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self):
        super().__init__()
        self.files, self.rows, self.task, self.last = None, [], None, None

    def mark(self, task):
        if self.files is None:  # the containers exist once the play runs
            names = subprocess.run(["docker", "ps", "--filter", "label=airflow-bench=true", "--format", "{{.Names}}"],
                                   capture_output=True, text=True).stdout.split()
            self.files = cgroup_cpu.cgroup_files(names) if names else {}
        now = (cgroup_cpu.read(self.files), controller_seconds())
        if self.last is not None:
            self.rows.append({"task": self.task, "controller": round(now[1] - self.last[1], 2),
                              "hosts": {h: round(v - self.last[0].get(h, 0), 2) for h, v in now[0].items()}})
        self.task, self.last = task, now

    def v2_playbook_on_task_start(self, task, is_conditional):
        self.mark(task.get_name())

    def v2_playbook_on_handler_task_start(self, task):
        self.mark(f"handler: {task.get_name()}")

    def v2_playbook_on_stats(self, stats):
        self.mark(None)
        with open(os.environ.get("BENCH_TASK_CPU", "task-cpu.json"), "w") as out:
            json.dump(self.rows, out, indent=1)
