# -*- coding: utf-8 -*-
"""The test command: every tests/test_*.py, in parallel worker processes.

    python3 tests/run.py [-j N] [--durations N] [-v] [NAME ...]

Each test class is one unit of work (a class of more than SLICE tests, several:
Class[0/3] runs its tests 0, 3, 6, ...). Worker processes (tests/run.py --worker),
four per core and 32 at most (most of a test's wall time is spent waiting on the
plugin's processes, its workers and sockets: fewer leave a core idle), take units
longest first (the durations measured by
the last run, kept in tests/.durations.json, else a static guess) and run
them with unittest; a worker keeps its imports between units, so each test
module is imported once per worker. The closing line is "N passed, N failed"
(", N skipped" when some were); the exit status is 0 only if every test
passed and at least one ran. NAMEs (test_state, test_state.DurabilityTest) run
only those modules or classes.

The run keeps its temp files in one folder, bxprov-run-PID-*, under the
system temp folder (TMPDIR of every worker and of every program a test
starts); it is removed at the end, and a later run removes one whose runner
died (support.TestRoot).
"""

import json
import os
import signal
import subprocess
import sys
import threading
import time
import traceback

TESTS = os.path.dirname(os.path.abspath(__file__))
DURATIONS = os.path.join(TESTS, ".durations.json")
SLICE = 6                   # a class of more tests is run as several units

# Before any durations were measured: the slow ones first (seconds, rough).
STATIC_ORDER = {
    "test_install": 70, "test_cloud_guardrails": 40, "test_backend_hetzner": 20,
    "test_backend_timeweb": 20, "test_backend_command": 15, "test_backend_pool": 12,
    "test_robust_state": 10, "test_robust_argv": 8, "test_robust_concurrency": 8,
    "test_first_contact": 6, "test_state": 6, "test_state_archive": 6, "test_caller_contract": 5,
}


# ---------------------------------------------------------------------------
# The worker: runs the units it is sent, one JSON line back for each
# ---------------------------------------------------------------------------

class OutcomeResult(object):
    """Mixed into unittest.TextTestResult: one outcome and duration per test."""

    def startTest(self, test):
        self._started = time.time(), cpu_seconds()
        super(OutcomeResult, self).startTest(test)

    def stopTest(self, test):
        super(OutcomeResult, self).stopTest(test)
        # 3.12 stops a test of a skipped class it never started
        wall, cpu = getattr(self, "_started", None) or (time.time(), cpu_seconds())
        self._started = None
        self.timings.append((test.id(), time.time() - wall, cpu_seconds() - cpu))

    def mark(self, test, outcome):
        test = getattr(test, "test_case", test)     # a failing subTest fails its test
        if test.id() not in self.outcomes or outcome == "failed":
            self.outcomes[test.id()] = outcome

    def addSuccess(self, test):
        super(OutcomeResult, self).addSuccess(test)
        self.mark(test, "passed")

    def addExpectedFailure(self, test, err):
        super(OutcomeResult, self).addExpectedFailure(test, err)
        self.mark(test, "passed")

    def addSkip(self, test, reason):
        super(OutcomeResult, self).addSkip(test, reason)
        self.mark(test, "skipped")

    def addFailure(self, test, err):
        super(OutcomeResult, self).addFailure(test, err)
        self.mark(test, "failed")

    def addError(self, test, err):
        super(OutcomeResult, self).addError(test, err)
        self.mark(test, "failed")

    def addUnexpectedSuccess(self, test):
        super(OutcomeResult, self).addUnexpectedSuccess(test)
        self.mark(test, "failed")

    def addSubTest(self, test, subtest, err):
        super(OutcomeResult, self).addSubTest(test, subtest, err)
        if err is not None:
            self.mark(test, "failed")


def cpu_seconds():
    """CPU time of this process and of the children it has waited for."""
    import resource
    return sum(sum(resource.getrusage(who)[:2])
               for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN))


def run_unit(name, verbose):
    """Run one module or class by name; a dict for the parent."""
    import io
    import unittest

    class Result(OutcomeResult, unittest.TextTestResult):
        outcomes = None
        timings = None

    stream = io.StringIO()
    started = time.time()
    suite = load_unit(name)
    runner = unittest.TextTestRunner(stream=stream, verbosity=2 if verbose else 1,
                                     resultclass=Result)
    Result.outcomes, Result.timings = {}, []
    result = runner.run(suite)
    problems = [(test.id() if hasattr(test, "id") else str(test), text)
                for test, text in result.errors + result.failures]
    problems += [(test.id(), "unexpected success") for test in result.unexpectedSuccesses]
    counts = {"passed": 0, "failed": 0, "skipped": 0}
    for outcome in result.outcomes.values():
        counts[outcome] += 1
    if problems and not counts["failed"]:
        counts["failed"] = 1                 # a fixture (setUpClass, import) failed
    return {"unit": name, "seconds": time.time() - started, "counts": counts,
            "problems": problems, "timings": result.timings,
            "output": stream.getvalue() if verbose else ""}


def load_unit(name):
    """The tests of a module, or of one class of it as the module's own loading
    (load_tests) gives them, or of one slice of a class (Class[i/n]: every
    n-th test from the i-th), or of any other name unittest understands."""
    import importlib
    import re
    import unittest
    loader = unittest.defaultTestLoader
    sliced = re.match(r"^(.*)\[(\d+)/(\d+)\]$", name)
    if sliced:
        tests = list(iterate(load_unit(sliced.group(1))))
        number, slices = int(sliced.group(2)), int(sliced.group(3))
        return unittest.TestSuite(tests[number::slices])
    module_name, _, class_name = name.partition(".")
    try:
        module = importlib.import_module(module_name)
    except ImportError:
        return loader.loadTestsFromName(name)            # reports the import error
    if not class_name:
        return loader.loadTestsFromModule(module)
    if "." in class_name or not isinstance(getattr(module, class_name, None), type):
        return loader.loadTestsFromName(name)
    return unittest.TestSuite(test for test in iterate(loader.loadTestsFromModule(module))
                              if type(test).__name__ == class_name)


def die_with_parent():
    """Linux: this worker gets SIGTERM when the runner dies, even by SIGKILL."""
    try:
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)        # PR_SET_PDEATHSIG
    except (OSError, AttributeError, ImportError):
        pass


def worker(verbose):
    die_with_parent()
    signal.signal(signal.SIGTERM, lambda *_: os._exit(143))
    replies = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)                            # a test's print() cannot garble the replies
    sys.stdout = sys.stderr
    sys.path.insert(0, TESTS)
    for line in sys.stdin:
        name = line.strip()
        try:
            reply = run_unit(name, verbose)
        except Exception:
            reply = {"unit": name, "seconds": 0, "counts": {"passed": 0, "failed": 1,
                                                              "skipped": 0},
                     "problems": [(name, traceback.format_exc())], "timings": [],
                     "output": ""}
        replies.write(json.dumps(reply) + "\n")
        replies.flush()


# ---------------------------------------------------------------------------
# The parent: finds the units, hands them out, sums up
# ---------------------------------------------------------------------------

def find_units(names):
    """["test_x.SomeTest", ...] for the named modules/classes, else every module's."""
    import unittest
    sys.path.insert(0, TESTS)
    if not names:
        names = sorted(n[:-3] for n in os.listdir(TESTS)
                       if n.startswith("test_") and n.endswith(".py"))
    units = []
    for name in names:
        name = name[:-3] if name.endswith(".py") else name
        name = name.replace("tests.", "", 1) if name.startswith("tests.") else name
        if "." in name:
            units.append(name)
            continue
        try:
            suite = unittest.defaultTestLoader.loadTestsFromName(name)
        except Exception:
            units.append(name)               # the worker reports the import error
            continue
        classes = {}
        for test in iterate(suite):
            if type(test).__module__ == name:
                classes.setdefault(type(test), []).append(test)
        if not classes:
            units.append(name)
        for cls, tests in sorted(classes.items(), key=lambda item: item[0].__name__):
            units.extend(class_units(name, cls, len(tests)))
    return units


def class_units(module, cls, count):
    """module.Class, or module.Class[i/n] for the n slices of a big class whose
    tests need no shared set-up (setUpClass), so the workers share its time."""
    import unittest
    unit = "%s.%s" % (module, cls.__name__)
    own_setup = getattr(cls.setUpClass, "__func__", None) is not \
        unittest.TestCase.setUpClass.__func__
    slices = 1 if own_setup else (count + SLICE - 1) // SLICE
    if slices <= 1:
        return [unit]
    return ["%s[%d/%d]" % (unit, number, slices) for number in range(slices)]


def iterate(suite):
    for item in suite:
        if hasattr(item, "__iter__"):
            for test in iterate(item):
                yield test
        else:
            yield item


def load_durations():
    try:
        with open(DURATIONS) as handle:
            value = json.load(handle)
        return value if isinstance(value, dict) else {}
    except (IOError, OSError, ValueError):
        return {}


def guess(unit, durations):
    if unit in durations:
        return durations[unit]
    slices = int(unit[unit.rindex("/") + 1:-1]) if unit.endswith("]") else 1
    return STATIC_ORDER.get(unit.split(".")[0], 5) / 4.0 / slices  # ~4 classes a module


def save_durations(durations, replies):
    for reply in replies:
        durations[reply["unit"]] = round(reply["seconds"], 2)
    for unit in list(durations):             # forget modules that are gone
        if not os.path.exists(os.path.join(TESTS, unit.split(".")[0] + ".py")):
            del durations[unit]
    try:
        temp = DURATIONS + ".%d.tmp" % os.getpid()
        with open(temp, "w") as handle:
            json.dump(durations, handle, indent=0, sort_keys=True)
        os.rename(temp, DURATIONS)
    except (IOError, OSError):
        pass                                 # a read-only checkout: order by the guess


class Workers(object):
    """N worker processes fed from one queue of units, longest first."""

    def __init__(self, count, units, env, verbose):
        self.units = list(units)
        self.env = env
        self.verbose = verbose
        self.lock = threading.Lock()
        self.replies = []
        self.procs = []
        self.threads = [threading.Thread(target=self.feed) for _ in range(count)]

    def run(self, show):
        self.show = show
        for thread in self.threads:
            thread.daemon = True
            thread.start()
        for thread in self.threads:
            while thread.is_alive():
                thread.join(0.5)
        return self.replies

    def next_unit(self):
        with self.lock:
            return self.units.pop(0) if self.units else None

    def start(self):
        argv = [sys.executable, os.path.abspath(__file__), "--worker"]
        proc = subprocess.Popen(argv + (["-v"] if self.verbose else []), stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, env=self.env, cwd=os.path.dirname(TESTS),
                                universal_newlines=True)
        with self.lock:
            self.procs.append(proc)
        return proc

    def feed(self):
        proc = None
        while True:
            unit = self.next_unit()
            if unit is None:
                break
            proc = proc or self.start()
            proc.stdin.write(unit + "\n")
            proc.stdin.flush()
            line = proc.stdout.readline()
            if not line:                     # the worker died with the unit
                proc.wait()
                reply = {"unit": unit, "seconds": 0, "timings": [], "output": "",
                         "counts": {"passed": 0, "failed": 1, "skipped": 0},
                         "problems": [(unit, "the worker died (exit status %s)"
                                       % proc.returncode)]}
                proc = None
            else:
                reply = json.loads(line)
            with self.lock:
                self.replies.append(reply)
                self.show(reply)
        if proc:
            proc.stdin.close()
            proc.wait()

    def stop(self):
        with self.lock:
            for proc in self.procs:
                if proc.poll() is None:
                    proc.kill()


def summary(replies, durations_to_show):
    totals = {"passed": 0, "failed": 0, "skipped": 0}
    for reply in replies:
        for key in totals:
            totals[key] += reply["counts"][key]
    for reply in replies:
        for test, text in reply["problems"]:
            sys.stdout.write("=" * 70 + "\nFAIL: %s\n" % test + "-" * 70 + "\n" + text + "\n")
    if durations_to_show:
        timings = sorted((t for r in replies for t in r["timings"]), key=lambda t: -t[1])
        sys.stdout.write("\nslowest tests (wall, CPU with the programs they started):\n")
        for test, seconds, cpu in timings[:durations_to_show]:
            sys.stdout.write("%7.2fs %6.2fs CPU  %s\n" % (seconds, cpu, test))
    line = "%d passed, %d failed" % (totals["passed"], totals["failed"])
    if totals["skipped"]:
        line += ", %d skipped" % totals["skipped"]
    return totals, line


def parse_args(argv):
    import argparse
    parser = argparse.ArgumentParser(prog="tests/run.py", description=__doc__.split("\n")[0])
    parser.add_argument("-j", "--jobs", type=int, default=min(32, 4 * (os.cpu_count() or 1)))
    parser.add_argument("--durations", type=int, default=0, metavar="N",
                        help="list the N slowest tests")
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="print each unit's unittest output")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("names", nargs="*", help="test modules or classes (default: all)")
    return parser.parse_args(argv)


def main(argv):
    args = parse_args(argv)
    if args.worker:
        return worker(args.verbose)
    sys.path.insert(0, TESTS)
    from helpers import support              # sets TMPDIR and BXPROVIDER_TEST_ROOT
    root = support.RUN_ROOT
    started = time.time()
    env = dict(os.environ)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    durations = load_durations()
    units = sorted(find_units(args.names), key=lambda u: -guess(u, durations))
    workers = Workers(max(1, args.jobs), units, env, args.verbose)

    def show(reply):
        counts = reply["counts"]
        sys.stdout.write("%-60s %6.1fs  %d passed%s%s\n" % (
            reply["unit"], reply["seconds"], counts["passed"],
            ", %d FAILED" % counts["failed"] if counts["failed"] else "",
            ", %d skipped" % counts["skipped"] if counts["skipped"] else ""))
        sys.stdout.write(reply["output"])
        sys.stdout.flush()

    try:
        replies = workers.run(show)
    finally:
        workers.stop()
        root.remove()
    save_durations(durations, replies)
    totals, line = summary(replies, args.durations)
    sys.stdout.write("\n%d units on %d workers in %.1fs\n%s\n" % (
        len(units), args.jobs, time.time() - started, line))
    ok = totals["failed"] == 0 and totals["passed"] > 0
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
