# -*- coding: utf-8 -*-
"""Concurrency: N processes, each M mixed calls (order, order_status, help,
task finish with the password on stdin) -> no acknowledged order lost, no id
handed out twice, the state parses at every moment, every task answers.
Fast: 4 x 15; BXPROVIDER_LONG_TESTS=1: 16 x 100. And the lock: a process
holding it for ever makes every writing command fail with N106, never hang."""

import fcntl
import json
import os
import subprocess
import threading
import time
import unittest

from helpers.robust_support import (BACKEND_CASES, figure, parse_state_file, run, scaled, seed,
                                    with_config)
from helpers.support import PYTHON, Home, error_message

WORKER = r"""
import json, random, subprocess, sys
start, calls, seed = json.loads(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
rng = random.Random(seed)
mine = []
def call(argv, stdin=b""):
    proc = subprocess.Popen(start + argv, stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = proc.communicate(stdin)
    print(json.dumps({"argv": argv, "code": proc.returncode, "out": out.decode("utf-8", "replace"),
                      "err": err.decode("utf-8", "replace")[-500:]}))
    sys.stdout.flush()
    return proc.returncode, out
for _ in range(calls):
    roll = rng.random()
    if roll < 0.4 or not mine:
        code, out = call(["order", "1"])
        if code == 0:
            mine.append(json.loads(out.decode("utf-8"))["task_id"])
    elif roll < 0.7:
        call(["order_status", rng.choice(mine)])
    elif roll < 0.8:
        call(["help"])
    else:
        task_id = rng.choice(mine)
        call(["task", "finish", task_id, "--server", "203.0.113.8", "--no-check"],
             ("Conc-pw-%s\n" % task_id).encode())
"""


class ConcurrencyTest(unittest.TestCase):
    def test_mixed_calls_from_many_processes(self):
        for case in BACKEND_CASES:
            self.run_case(case, scaled(4, 16), scaled(15, 100))

    def run_case(self, case, workers, calls):
        home = Home(with_config(case.config, lock_wait=120))
        self.addCleanup(home.cleanup)
        value = seed()
        started = time.time()
        procs = [subprocess.Popen([PYTHON, "-c", WORKER, json.dumps(home.command([])), str(calls),
                                   str(value + n)], stdout=subprocess.PIPE, env=home.env(),
                                  cwd=home.dir) for n in range(workers)]
        # Meanwhile, read the state over and over: it must parse every time.
        stop, reads, failures = [], [0], []

        def watch():
            while not stop:
                try:
                    parse_state_file(home.state_path)
                    reads[0] += 1
                except (IOError, OSError):
                    pass            # not created yet
                except Exception as exc:  # noqa: anything else is a torn read
                    failures.append(repr(exc))
                time.sleep(0.002)   # leave the CPUs to the workers (not a timing assertion)
        watcher = threading.Thread(target=watch)
        watcher.start()
        results = []
        try:
            for proc in procs:
                out, _ = proc.communicate(timeout=3600)
                self.assertEqual(proc.returncode, 0)
                results.extend(json.loads(line) for line in out.decode().splitlines())
        finally:
            stop.append(True)
            watcher.join()
        seconds = time.time() - started
        self.assertEqual(failures, [])
        acked, finished, counts = [], set(), {}
        for result in results:
            verb = result["argv"][0] if result["argv"][0] != "task" else "task finish"
            counts[verb] = counts.get(verb, 0) + 1
            self.assertNotIn("Traceback", result["err"], result)
            if verb == "task finish":
                # finishing a task another worker finished first is N111; both fine
                if result["code"] == 0:
                    finished.add(result["argv"][2])
                else:
                    self.assertIn("N111", result["err"], result)
                continue
            answer = json.loads(result["out"])
            self.assertEqual(result["code"], 0, result)
            self.assertNotIn("error", answer, result)
            if verb == "order":
                acked.append(answer["task_id"])
        self.assertEqual(len(acked), len(set(acked)), "an id was handed out twice")
        state = parse_state_file(home.state_path)
        self.assertEqual(sorted(state["tasks"], key=int), sorted(acked, key=int))
        for task_id in finished:
            self.assertEqual(state["tasks"][task_id]["status"], "finished")
            self.assertEqual(state["tasks"][task_id]["server_password"], "Conc-pw-%s" % task_id)
        for task_id in acked:          # every task answers
            self.assertIn(home.ok("order_status", task_id)["status"], ("in_progress", "finished"))
        figure("concurrency backend=%s workers=%d calls-each=%d calls=%d orders=%d "
               "finishes=%d statuses=%d helps=%d ids-unique=yes lost=0 state-reads=%d "
               "torn-reads=0 seconds=%.1f seed=%d" % (
                   case.name, workers, calls, len(results), len(acked), len(finished),
                   counts.get("order_status", 0), counts.get("help", 0), reads[0], seconds,
                   value))


WRITING = (["order", "1"], ["task", "finish", "1", "--server", "203.0.113.4", "--no-check"],
           ["task", "fail", "1", "--message", "x"], ["state", "repair"],
           ["state", "restore-backup"])


class HeldLockTest(unittest.TestCase):
    def test_every_writing_command_gives_n106_never_hangs(self):
        for case in BACKEND_CASES:
            home = Home(with_config(case.config, lock_wait=0.3))
            self.addCleanup(home.cleanup)
            home.ok("order", "1")
            home.ok("order", "1")
            with open(home.state_path, "ab") as handle:      # so repair has work to do
                handle.write(b" ")
            files = dict((p, home.read(p)) for p in (home.state_path, home.backup_path))
            with open(home.lock_path, "a") as held:
                fcntl.flock(held, fcntl.LOCK_EX)
                for argv in WRITING:
                    result = run(home, argv, stdin=b"Lock-pw\n", timeout=30)
                    message = error_message(result)
                    self.assertIn(" error N106, ", message, result)
                    self.assertIn("0.3 s", message)
                    self.assertIn("is held by process %d (" % os.getpid(), message)
                    self.assertEqual(result.code, 1)
                # readers do not wait for the lock
                self.assertEqual(home.ok("order_status", "2")["status"], "in_progress")
                self.assertEqual(home.ok("help")["status"], "enabled")
            for path, data in files.items():
                self.assertEqual(home.read(path), data, path)


if __name__ == "__main__":
    unittest.main()
