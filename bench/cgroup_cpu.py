"""CPU seconds of the test bed's containers, read from their cgroups
(v1 or v2, docker's cgroupfs or systemd driver), for bench.py and its
task_cpu callback. One `docker inspect` finds the files; reading them is
cheap enough to do at every task start."""
import re
import subprocess
from pathlib import Path


def cgroup_files(names):
    """{name: (usage file, units per second)} of the running containers named; {} when none is found."""
    ids = subprocess.run(["docker", "inspect", "--format", "{{.Id}}", *names],
                         capture_output=True, text=True).stdout.split()
    files = {}
    for name, cid in zip(names, ids):
        for path, scale in ((f"/sys/fs/cgroup/cpuacct/docker/{cid}/cpuacct.usage", 1e9),
                            (f"/sys/fs/cgroup/cpuacct/system.slice/docker-{cid}.scope/cpuacct.usage", 1e9),
                            (f"/sys/fs/cgroup/docker/{cid}/cpu.stat", 1e6),
                            (f"/sys/fs/cgroup/system.slice/docker-{cid}.scope/cpu.stat", 1e6)):
            if Path(path).is_file():
                files[name] = (path, scale)
                break
    return files


def read(files):
    """{name: CPU seconds since the container was created}."""
    out = {}
    for name, (path, scale) in files.items():
        try:
            text = Path(path).read_text()
        except OSError:  # the container is gone
            continue
        usage = re.search(r"^usage_usec (\d+)", text, re.M) if path.endswith("cpu.stat") else re.match(r"\d+", text)
        out[name] = int(usage[1] if path.endswith("cpu.stat") else usage[0]) / scale
    return out
