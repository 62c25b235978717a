# -*- coding: utf-8 -*-
"""Helpers for the tests/test_robust_*.py suites (issue 5: cannot lose or leak).

BACKEND_CASES is the list the concurrency, crash, disk, hostile-input (argv,
config) and secret suites run against (the damaged-state suite takes its first). A backend joins them by adding one BackendCase:
its config, the secrets its config holds (tokens: they may live only in the
config and the state), and how a test drives one of its tasks to `finished`
without the network (finish).

The long versions run with BXPROVIDER_LONG_TESTS=1 and print their figures
on stderr, one line each starting with "FIGURE".
"""

import json
import os
import random
import signal
import subprocess
import sys

from .support import MANUAL_CONFIG, Home

LONG = os.environ.get("BXPROVIDER_LONG_TESTS", "") not in ("", "0")


def scaled(fast, long):
    return long if LONG else fast


def seed(default=None):
    """The seed of the random suites: BXPROVIDER_SEED, or a fresh one (printed)."""
    value = os.environ.get("BXPROVIDER_SEED")
    if value:
        return int(value)
    return default if default is not None else random.SystemRandom().randrange(1, 10 ** 9)


def figure(text):
    sys.stderr.write("FIGURE %s\n" % text)
    sys.stderr.flush()


class BackendCase(object):
    """One backend as the robustness suites use it."""

    def __init__(self, name, config, secrets=(), finish=None):
        self.name = name
        self.config = config
        self.secrets = tuple(secrets)        # strings that may appear only in config/state
        self._finish = finish

    def finish(self, home, task_id, password, timeout=60):
        """Drive a pending task to finished with this root password; a Result."""
        return self._finish(home, task_id, password, timeout)


def manual_finish(home, task_id, password, timeout=60):
    return home.run("task", "finish", str(task_id), "--server", "203.0.113.7", "--no-check",
                    stdin=password + "\n", timeout=timeout)


BACKEND_CASES = [
    BackendCase("manual", MANUAL_CONFIG, finish=manual_finish),
]


def with_config(config, **changes):
    config = json.loads(json.dumps(config))
    config.update(changes)
    return config


# ---------------------------------------------------------------------------
# Running the real script with extras: bytes argv, limits, umask, no wait
# ---------------------------------------------------------------------------

def popen(home, argv, stdin=None, preexec_fn=None, env=None):
    """Start HOME/bin/NAME with argv (str or bytes items); stdin bytes or None."""
    command = home.command([a if isinstance(a, bytes) else a.encode("utf-8", "surrogateescape")
                            for a in argv])
    return subprocess.Popen(command, stdin=subprocess.PIPE if stdin is not None
                            else subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=home.env(env), cwd=home.dir,
                            preexec_fn=preexec_fn)


def run(home, argv, stdin=None, preexec_fn=None, env=None, timeout=60):
    from .support import Result
    proc = popen(home, argv, stdin, preexec_fn, env)
    out, err = proc.communicate(stdin, timeout=timeout)
    return Result(proc.returncode, out, err)


def fsize_limit(limit):
    """A preexec_fn: RLIMIT_FSIZE=limit, and SIGXFSZ ignored so write() fails with EFBIG."""
    def apply():
        import resource
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return apply


def umask_000():
    os.umask(0)


# ---------------------------------------------------------------------------
# In-process calls: module.main(argv) with BytesIO-backed stdio
# ---------------------------------------------------------------------------

class InProcess(object):
    """Calls module.main(argv, prog=home.script) in this process."""

    def __init__(self, module, home):
        self.module = module
        self.home = home

    def call(self, argv, stdin=b""):
        from .support import call_main
        return call_main(argv, self.home.script, stdin, module=self.module)


def snapshot(home, names=None):
    """Bytes of every file the plugin keeps (state, backup, log), None when missing."""
    paths = names or (home.state_path, home.backup_path, home.log_path)
    result = {}
    for path in paths:
        try:
            result[path] = home.read(path)
        except (IOError, OSError):
            result[path] = None
    return result


def var_listing(home):
    var = os.path.dirname(home.state_path)
    try:
        return sorted(os.listdir(var))
    except OSError:
        return []


def temp_leftovers(home):
    return [n for n in var_listing(home) if n.endswith(".tmp")]


def parse_state_file(path):
    with open(path, "rb") as handle:
        state = json.loads(handle.read().decode("utf-8"))
    assert isinstance(state, dict) and isinstance(state["tasks"], dict), path
    assert isinstance(state["next_id"], int), path
    return state


__all__ = ["LONG", "scaled", "seed", "figure", "BackendCase", "BACKEND_CASES", "with_config",
           "popen", "run", "fsize_limit", "umask_000", "InProcess", "snapshot", "var_listing",
           "temp_leftovers", "parse_state_file", "Home"]
