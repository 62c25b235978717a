#!/usr/bin/env python3
# -*- coding: utf-8 -*-
"""Start-up benchmark of provider.py against the floor of any Python plugin.

Run by hand (not part of the unit tests):

    python3 tests/bench.py [--quick] [--python PATH ...] [--sizes 10,1000,...]

The floor is a plugin that only imports json and prints a constant object,
run the same way (a new process of the same interpreter). Every measurement
is a pair, floor and command, run back to back in alternating order, and the
figure is the median of the per-pair ratios (spread: half the interquartile
range). Peak memory is each child's own ru_maxrss (os.wait4), as a ratio of
the medians. HOME/bin/provider is provider.py copied as is (what install.sh
installs), exec'd directly as the caller does, so its sh header runs and finds
the interpreter under test first on PATH. Layouts, measured in the same loop:

  bare       after its first call: the bytecode cached in bin/__pycache__
  first      its first call: bin/__pycache__ removed before every run (it
             compiles and writes the cache)
  plain      `python3 HOME/bin/provider`: the header skipped, compiled on every
             run (not measured unless named in --layouts)
  cloud      bare, with a hetzner config: the boot loads the cloud section
             too. Only the calls that ask no API: help, configs, st-term,
             st-arch (not measured unless named in --layouts)

History of N tasks: the newest min(N/2, 1000) are in the state file (recent;
one in ten still pending), the older ones in the archive; the caller's tasks/
folder holds a file for each of the N ids, as on a real host. It is written
through provider.py's own functions (imported with importlib).

Interpreters run from a fresh venv (python -m venv --without-pip) of each one,
so that site-packages .pth files installed on this machine (which import
whole packages at every start) do not inflate the floor; --no-venv runs the
interpreter as it is.
"""

from __future__ import print_function

import argparse
import importlib.util
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(ROOT, "provider.py")
NAME = "provider"
DAY = 86400

CONFIG = {
    "enabled": True,
    "backend": {"type": "manual"},
    "configurations": [
        {"id": "1", "descr": "Bitrix-env, 1 месяц, CentOS 7, 2 CPU, 2 ГБ RAM"},
        {"id": "2", "descr": "Bitrix-env, 8 CPU, 16 GB"},
    ],
}

FLOOR = ('import json, sys\n'
         'sys.stdout.write(json.dumps({"options": ["help", "configs", "order", '
         '"order_status"], "status": "enabled"}) + "\\n")\n')

COLUMNS = ["help", "configs", "order", "st-pend", "st-term", "st-arch", "list100"]
NO_API = ["help", "configs", "st-term", "st-arch"]     # the columns of the cloud layout
GOALS = {"bare": (1.25, 2.0)}      # (protocol reads, order); the other layouts: figures only
MEMORY_GOAL = 1.5


def load_module():
    spec = importlib.util.spec_from_file_location("provider_bench", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# -- building a home with a history ----------------------------------------

def make_task(task_id, status, stamp):
    finished = status == "finished"
    return {"id": str(task_id), "config_id": "1", "backend": "manual", "status": status,
            "phase": {"finished": "done", "error": "failed"}.get(status, "waiting"),
            "message": {"finished": "finished by the operator",
                        "error": "the hoster refused: quota exceeded"}.get(
                            status, "waiting for the operator"),
            "server": "10.%d.%d.%d" % (task_id // 65536 % 256, task_id // 256 % 256,
                                       task_id % 256) if finished else "",
            "server_password": "Xk3%08dqZ" % task_id if finished else "",
            "created": stamp - 600, "updated": stamp, "data": {}}


def build_history(home, size):
    """Write the history through provider.py's own StateStore (run in a child)."""
    module = load_module()
    paths = module.Paths(os.path.join(home, "bin", NAME))
    store = module.StateStore(paths)
    hot = min(size // 2, 1000)
    archived = size - hot
    clock = int(time.time())
    old = {}
    for task_id in range(1, archived + 1):
        status = "error" if task_id % 7 == 0 else "finished"
        old[str(task_id)] = make_task(task_id, status, clock - 400 * DAY + task_id * 60)
    live = {}
    for task_id in range(archived + 1, size + 1):
        status = "in_progress" if task_id % 10 == 0 else "finished"
        live[str(task_id)] = make_task(task_id, status, clock - (size - task_id) * 60)
    lock = store._acquire()
    try:
        store.archive(old)
        state = module.empty_state(paths.name)
        state.update(tasks=live, next_id=size + 1, archived_max_id=archived)
        store._save(state)
    finally:
        os.close(lock)
    tasks_dir = paths.caller_tasks
    os.makedirs(tasks_dir, 0o770)
    for task_id in range(1, size + 1):
        os.close(os.open(os.path.join(tasks_dir, str(task_id)), os.O_CREAT | os.O_WRONLY, 0o660))


def cloud_config(home):
    """CONFIG on the hetzner backend, its token in etc/token. Its API (the default
    api_url, as most configs have it) is never asked: the calls measured need none."""
    token = os.path.join(home, "etc", "token")
    with open(token, "w") as handle:
        handle.write("bench-token-0123456789\n")
    os.chmod(token, 0o600)
    backend = {"type": "hetzner", "token_file": token, "pool_key": token}
    return dict(CONFIG, backend=backend, configurations=[
        dict(c, server_type="cx22", image="ubuntu-24.04", location="fsn1")
        for c in CONFIG["configurations"]])


def make_home(base, layout, size, python):
    home = os.path.join(base, "%s-%d" % (layout, size))
    for folder in ("bin", "etc"):
        os.makedirs(os.path.join(home, folder))
    config = cloud_config(home) if layout == "cloud" else CONFIG
    with open(os.path.join(home, "etc", NAME + ".conf"), "wb") as handle:
        handle.write(json.dumps(config, ensure_ascii=False, indent=2).encode("utf-8"))
    os.chmod(os.path.join(home, "etc", NAME + ".conf"), 0o600)
    script = os.path.join(home, "bin", NAME)
    shutil.copy(SCRIPT, script)
    os.chmod(script, 0o755)
    subprocess.check_call([sys.executable, os.path.abspath(__file__), "--_build", home,
                           str(size)])
    return home, script


def child_env(python):
    """The children's environment: the interpreter under test is the python3 on PATH."""
    env = dict((k, v) for k, v in os.environ.items() if not k.startswith("PYTHON"))
    env["PATH"] = os.path.dirname(python) + os.pathsep + "/usr/bin:/bin"
    return env


# -- running children --------------------------------------------------------

# Children are started by a small spawner process (the measured interpreter
# with -S -E, importing nothing), not by this one: Linux carries a process's
# peak RSS across fork and exec, so a child forked from this bigger process
# would report at least this process's size as its own ru_maxrss.
SPAWNER = r"""
import os, sys, time
CPU = sys.argv[1] == "cpu"          # the child's CPU time (user + system) instead of wall time
null = os.open(os.devnull, os.O_RDWR)
while True:
    line = sys.stdin.readline()
    if not line:
        break
    argv = line.rstrip("\n").split("\0")
    if argv[0] == "clear":          # clear DIR ARGV...: empty DIR first, untimed
        folder = argv[1]
        argv = argv[2:]
        if os.path.isdir(folder):
            for name in os.listdir(folder):
                os.unlink(os.path.join(folder, name))
            os.rmdir(folder)
    if argv == ["rss"]:
        with open("/proc/self/status") as handle:
            rss = [l.split()[1] for l in handle if l.startswith("VmRSS:")]
        sys.stdout.write("%s\n" % (rss[0] if rss else 0))
        sys.stdout.flush()
        continue
    start = time.perf_counter()
    pid = os.fork()
    if pid == 0:
        try:
            os.dup2(null, 0)
            os.dup2(null, 1)
            os.dup2(null, 2)
            os.execv(argv[0], argv)
        finally:
            os._exit(127)
    _, status, usage = os.wait4(pid, 0)
    elapsed = time.perf_counter() - start
    if CPU:
        elapsed = usage.ru_utime + usage.ru_stime
    sys.stdout.write("%r %d %d\n" % (elapsed, usage.ru_maxrss, status))
    sys.stdout.flush()
"""


class Spawner(object):
    def __init__(self, python, clock):
        self.proc = subprocess.Popen([python, "-S", "-E", "-c", SPAWNER, clock],
                                     stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, universal_newlines=True,
                                     env=child_env(python))

    def ask(self, argv):
        self.proc.stdin.write("\0".join(argv) + "\n")
        self.proc.stdin.flush()
        return self.proc.stdout.readline().split()

    def rss(self):
        return int(self.ask(["rss"])[0])

    def close(self):
        self.proc.stdin.close()
        self.proc.wait()


SPAWN = []
CLOCK = ["wall"]


def run_child(argv):
    """(seconds, peak RSS in KiB) of one child; its output goes to /dev/null."""
    elapsed, maxrss, status = SPAWN[0].ask(argv)
    status = int(status)
    if status != 0 and not (os.WIFEXITED(status) and os.WEXITSTATUS(status) in (0, 1)):
        raise SystemExit("child failed (%r): %s" % (status, " ".join(argv)))
    return float(elapsed), int(maxrss)


def run_many(argvs):
    total, peak = 0.0, 0
    for argv in argvs:
        seconds, rss = run_child(argv)
        total += seconds
        peak = max(peak, rss)
    return total, peak


def answer(argv, python):
    out = subprocess.check_output(argv, stderr=subprocess.STDOUT, env=child_env(python))
    return json.loads(out.decode("utf-8"))


def command_line(layout, python, script, args):
    """How one layout runs the plugin (see the module docstring)."""
    if layout == "plain":
        return [python, script] + args
    if layout == "first":
        return ["clear", os.path.join(os.path.dirname(script), "__pycache__"), script] + args
    return [script] + args


def median(values):
    values = sorted(values)
    middle = len(values) // 2
    return values[middle] if len(values) % 2 else (values[middle - 1] + values[middle]) / 2.0


def quartiles(values):
    values = sorted(values)
    return values[len(values) // 4], values[(3 * len(values)) // 4]


# -- the measurement ----------------------------------------------------------

def measure_size(python, base, size, reps, list_reps, results, layouts):
    floor_path = os.path.join(base, "floor.py")
    hot = min(size // 2, 1000)
    archived = size - hot
    first_hot = archived + 1
    pending = str(max(i for i in range(first_hot, size + 1) if i % 10 == 0)
                  if size >= 20 else size)   # size 10: task 10 is the pending one
    terminal = str(first_hot if first_hot % 10 else first_hot + 1)
    old = str(max(1, archived // 2) if archived % 7 else archived // 2 + 1)
    listed = [str(1 + (i * size) // 100) for i in range(100)]
    homes = {}
    for layout in layouts:
        homes[layout] = make_home(base, layout, size, [python])
    cases = []
    for layout in layouts:
        script = homes[layout][1]
        commands = {"help": ["help"], "configs": ["configs"], "order": ["order", "1"],
                    "st-pend": ["order_status", pending],
                    "st-term": ["order_status", terminal],
                    "st-arch": ["order_status", old]}
        if layout == "cloud":
            commands = dict((column, commands[column]) for column in NO_API)
        # sanity: every command answers as the caller expects
        for column, args in sorted(commands.items()):
            got = answer([python, script] + args, python)
            want = {"st-pend": "in_progress", "st-term": "finished",
                    "st-arch": ("finished", "error")}.get(column)
            if "error" in got or (want and got.get("status") not in want):
                raise SystemExit("%s %s: unexpected answer %r" % (layout, args, got))
        answer([script, "help"], python)        # the first call: the cache is written
        for column, args in commands.items():
            cases.append((layout, column, command_line(layout, python, script, args)))
    floor = [python, floor_path]
    pairs = dict(((layout, column), []) for layout in layouts for column in COLUMNS)
    memory = dict(((layout, column), []) for layout in layouts for column in COLUMNS)
    floor_memory = []
    floor_times = []
    for rep in range(reps):
        random.shuffle(cases)
        for index, (layout, column, argv) in enumerate(cases):
            if (rep + index) % 2:
                f, fm = run_child(floor)
                t, tm = run_child(argv)
            else:
                t, tm = run_child(argv)
                f, fm = run_child(floor)
            pairs[layout, column].append(t / f)
            memory[layout, column].append(tm)
            floor_memory.append(fm)
            floor_times.append(f)
    for rep in range(list_reps):
        for index, layout in enumerate(l for l in layouts if l != "cloud"):
            script = homes[layout][1]
            statuses = [command_line(layout, python, script, ["order_status", i])
                        for i in listed]
            floors = [floor] * len(listed)
            if (rep + index) % 2:
                f, fm = run_many(floors)
                t, tm = run_many(statuses)
            else:
                t, tm = run_many(statuses)
                f, fm = run_many(floors)
            pairs[layout, "list100"].append(t / f)
            memory[layout, "list100"].append(tm)
            floor_memory.append(fm)
    floor_rss = median(floor_memory)
    for layout in layouts:
        row = {"floor_ms": median(floor_times) * 1000, "floor_rss": floor_rss}
        measured = [column for column in COLUMNS if pairs[layout, column]]
        for column in measured:                 # a column not measured: no key
            low, high = quartiles(pairs[layout, column])
            row[column] = (median(pairs[layout, column]), (high - low) / 2.0)
        row["mem"] = max(median(memory[layout, column]) for column in measured) / floor_rss
        results[layout, size] = row
    for layout in layouts:
        shutil.rmtree(homes[layout][0], ignore_errors=True)


def imported_modules(python, argv, env=None):
    """Module names a run imports beyond what the floor imports (-X importtime, 3.7+)."""
    def names(command):
        proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                env=env)
        _, err = proc.communicate()
        found = set()
        for line in err.decode("utf-8", "replace").splitlines():
            if line.startswith("import time:") and "|" in line:
                name = line.rsplit("|", 1)[1].strip()
                if name != "imported package":
                    found.add(name)
        return found
    return names([python, "-X", "importtime"] + argv)


def print_table(python, version, results, layouts, sizes):
    print()
    print("provider.py start-up, ratio to the floor (median of paired runs, +- half IQR; "
          "%s time)" % CLOCK[0])
    print("python %s (%s)" % (version, python))
    header = "%-9s %7s %6s" % ("layout", "tasks", "floor") + "".join(
        "%11s" % c for c in COLUMNS) + "%7s" % "mem"
    print(header)
    print("-" * len(header))
    failures = []
    for layout in layouts:
        reads, order = GOALS.get(layout, (float("inf"), float("inf")))
        for size in sizes:
            row = results[layout, size]
            cells = []
            for column in COLUMNS:
                if column not in row:
                    cells.append("-")
                    continue
                value, spread = row[column]
                goal = order if column == "order" else reads
                mark = " " if value <= goal else "!"
                if value > goal:
                    failures.append("%s %s at %d tasks: %.2f > %.2f"
                                    % (layout, column, size, value, goal))
                cells.append("%5.2f±%.2f%s" % (value, spread, mark))
            mem_goal = MEMORY_GOAL if layout in GOALS else float("inf")
            mem_mark = " " if row["mem"] <= mem_goal else "!"
            if row["mem"] > mem_goal:
                failures.append("%s memory at %d tasks: %.2f" % (layout, size, row["mem"]))
            print("%-9s %7d %4.0fms" % (layout, size, row["floor_ms"]) + "".join(
                "%11s" % c for c in cells) + "%6.2f%s" % (row["mem"], mem_mark))
    print("goals (bare): reads <= %.2f, order <= %.2f, memory <= %.1f x the floor (%.1f MiB)"
          % (GOALS["bare"][0], GOALS["bare"][1], MEMORY_GOAL, row["floor_rss"] / 1024.0))
    print("all goals met" if not failures else "NOT met: " + "; ".join(failures))
    return failures


def prepare_python(python, base, use_venv):
    if not use_venv:
        return python
    venv = os.path.join(base, "venv-%d" % abs(hash(python)))
    subprocess.check_call([python, "-m", "venv", "--without-pip", venv])
    return os.path.join(venv, "bin", "python3")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer repetitions")
    parser.add_argument("--python", action="append", metavar="PATH",
                        help="interpreter to measure (repeatable; default: this one)")
    parser.add_argument("--sizes", default="10,1000,10000,100000",
                        help="history sizes, comma-separated")
    parser.add_argument("--reps", type=int, help="pairs per command and size")
    parser.add_argument("--layouts", default="bare,first")
    parser.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                        help="time each child by the wall clock, or by its CPU time (user + "
                             "system: steadier on a busy machine)")
    parser.add_argument("--no-venv", action="store_true",
                        help="run the interpreter as it is (with its site-packages)")
    parser.add_argument("--_build", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    import signal
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(143))   # clean up on kill
    if args._build:
        build_history(args._build[0], int(args._build[1]))
        return 0
    sizes = [int(s) for s in args.sizes.split(",")]
    layouts = args.layouts.split(",")
    CLOCK[0] = args.clock
    reps = args.reps or (9 if args.quick else 31)
    list_reps = 3 if args.quick else 5
    pythons = args.python or [os.path.realpath(sys.executable)]
    failed = False
    summary = []
    for python in pythons:
        base = tempfile.mkdtemp(prefix="bxbench-")
        try:
            with open(os.path.join(base, "floor.py"), "w") as handle:
                handle.write(FLOOR)
            interpreter = prepare_python(python, base, not args.no_venv)
            version = subprocess.check_output(
                [interpreter, "-c", "import sys; print(sys.version.split()[0])"]
            ).decode().strip()
            results = {}
            SPAWN[:] = [Spawner(interpreter, args.clock)]
            spawner_rss = SPAWN[0].rss()
            for size in sizes:
                started = time.time()
                measure_size(interpreter, base, size, reps, list_reps, results, layouts)
                sys.stderr.write("python %s, %d tasks: %.0f s\n"
                                 % (version, size, time.time() - started))
            if tuple(int(p) for p in version.split(".")[:2]) >= (3, 7):
                home, script = make_home(base, "imports", 10, [interpreter])
                floor_mods = imported_modules(interpreter, [os.path.join(base, "floor.py")])
                for argv in (["help"], ["configs"], ["order_status", "10"], ["order", "1"]):
                    extra = imported_modules(interpreter, [script] + argv) - floor_mods
                    print("imports beyond the floor, %s: %s" % (
                        " ".join(argv), ", ".join(sorted(extra)) or "none"))
            failed = bool(print_table(interpreter, version, results, layouts, sizes)) or failed
            summary.append((version, results))
            print("(children are started by a spawner of %.1f MiB; a child's peak memory "
                  "counts at least that)" % (spawner_rss / 1024.0))
            SPAWN[0].close()
        finally:
            shutil.rmtree(base, ignore_errors=True)
    if len(summary) > 1:
        print_summary(summary, layouts, sizes)
    return 1 if failed else 0


def print_summary(summary, layouts, sizes):
    """One row per interpreter, layout and size: the medians of the tables above."""
    print()
    print("summary: ratio to the floor, one row per interpreter (cells marked ! miss a goal)")
    header = "%-8s %-6s %6s %6s" % ("python", "layout", "tasks", "floor") + "".join(
        "%8s" % c for c in COLUMNS) + "%6s" % "mem"
    print(header)
    print("-" * len(header))
    for version, results in summary:
        for layout in layouts:
            reads, order = GOALS.get(layout, (float("inf"), float("inf")))
            for size in sizes:
                row = results[layout, size]
                cells = "".join("%7.2f%s" % (row[c][0], "!" if row[c][0] > (
                    order if c == "order" else reads) else " ") if c in row else "%7s " % "-"
                    for c in COLUMNS)
                mark = "!" if layout in GOALS and row["mem"] > MEMORY_GOAL else " "
                print("%-8s %-6s %6d %4.0fms" % (version, layout, size, row["floor_ms"])
                      + cells + "%5.2f%s" % (row["mem"], mark))


if __name__ == "__main__":
    sys.exit(main())
