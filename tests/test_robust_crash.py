# -*- coding: utf-8 -*-
"""Crashes: SIGKILL the plugin at random moments inside order and task finish.

After every kill: the state parses, every id a completed call acknowledged is
there (and every acknowledged finish is finished), the backup parses and is an
earlier (or the same) state, and the next writing call removes the temp files
the killed one left. Seeded: BXPROVIDER_SEED=N replays; the seed is printed.
"""

import os
import random
import signal
import time
import unittest

from helpers.robust_support import (BACKEND_CASES, figure, parse_state_file, popen, scaled,
                                    seed, temp_leftovers)
from helpers.support import Home, caller_parse


class CrashTest(unittest.TestCase):
    def check_invariants(self, home, acked, finished):
        state = parse_state_file(home.state_path)
        for task_id in acked:
            self.assertIn(task_id, state["tasks"])
        for task_id in finished:
            self.assertEqual(state["tasks"][task_id]["status"], "finished", task_id)
        if os.path.exists(home.backup_path):
            backup = parse_state_file(home.backup_path)
            self.assertLessEqual(backup["next_id"], state["next_id"])
            self.assertLessEqual(set(backup["tasks"]), set(state["tasks"]))
            for task_id, task in backup["tasks"].items():
                if task["status"] != "in_progress":
                    self.assertEqual(state["tasks"][task_id]["status"], task["status"])
        ids = [int(i) for i in state["tasks"]]
        self.assertLess(max(ids or [0]), state["next_id"])
        return state

    def test_sigkill_inside_order_and_finish(self):
        for case in BACKEND_CASES:
            self.run_case(case)

    def run_case(self, case):
        value = seed()
        rng = random.Random(value)
        rounds = scaled(20, 300)
        figure("crash backend=%s seed=%d rounds=%d (replay: BXPROVIDER_SEED=%d)"
               % (case.name, value, rounds, value))
        home = Home(case.config)
        self.addCleanup(home.cleanup)
        # How long a call takes here: kills land uniformly over 0..1.5 of it.
        acked, finished, spans = [], [], []
        for _ in range(3):
            started = time.time()
            acked.append(home.ok("order", "1")["task_id"])
            spans.append(time.time() - started)
        span = sorted(spans)[1]
        killed = completed = temps_seen = swept = 0
        for _ in range(rounds):
            # pending in the state: a killed finish may have been saved all the same
            tasks = parse_state_file(home.state_path)["tasks"]
            pending = [t for t in acked if tasks.get(t, {}).get("status") == "in_progress"]
            if pending and rng.random() < 0.4:
                task_id = rng.choice(pending)
                argv = ["task", "finish", task_id, "--server", "203.0.113.7", "--no-check"]
                stdin = b"Crash-pw-1\n"
            else:
                task_id, argv, stdin = None, ["order", "1"], None
            proc = popen(home, argv, stdin=stdin)
            if stdin is not None:
                proc.stdin.write(stdin)
                proc.stdin.close()
            time.sleep(rng.uniform(0, span * 1.5))
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
            out, err = proc.stdout.read(), proc.stderr.read()
            proc.wait(timeout=60)
            proc.stdout.close()
            proc.stderr.close()
            if proc.returncode == -signal.SIGKILL:
                killed += 1
            else:
                self.assertEqual(proc.returncode, 0, (argv, out, err))
                completed += 1
                if task_id is None:
                    acked.append(caller_parse(out)["task_id"])
                else:
                    finished.append(task_id)
                # a completed writing call leaves no temp file behind
                self.assertEqual(temp_leftovers(home), [])
            leftovers = temp_leftovers(home)
            if leftovers:
                temps_seen += 1
            if os.path.exists(home.state_path):
                self.check_invariants(home, acked, finished)
            if leftovers:
                # the next writing call sweeps them
                acked.append(home.ok("order", "1")["task_id"])
                self.assertEqual(temp_leftovers(home), [])
                swept += 1
        state = self.check_invariants(home, acked, finished)
        self.assertEqual(len(set(acked)), len(acked))
        figure("crash backend=%s rounds=%d killed=%d completed=%d kills-leaving-temps=%d "
               "swept=%d acked-orders=%d acked-finishes=%d lost=0 state-parse-failures=0 "
               "tasks-in-state=%d" % (case.name, rounds, killed, completed, temps_seen, swept,
                                      len(acked), len(finished), len(state["tasks"])))


class SweepTest(unittest.TestCase):
    def test_stale_temp_files_are_removed_by_the_next_write(self):
        # Regression: a writer killed between creating its temp file and the rename
        # (or between linking and renaming the backup) left the temp in var/ for ever,
        # and a reused pid then silently kept an older backup (os.link: EEXIST).
        home = Home(BACKEND_CASES[0].config)
        self.addCleanup(home.cleanup)
        home.ok("order", "1")
        var = os.path.dirname(home.state_path)
        base = os.path.basename(home.state_path)
        stale = [".%s.4242.1700000000000000.tmp" % base, "%s.bak.4242.tmp" % base]
        for name in stale:
            with open(os.path.join(var, name), "wb") as handle:
                handle.write(b'{"secret": "Stale-pw"}')
        unrelated = os.path.join(var, "notes.tmp")
        open(unrelated, "w").close()
        home.ok("order_status", "1")                 # a read does not touch them
        self.assertEqual(len(temp_leftovers(home)), 3)
        home.ok("order", "1")
        self.assertEqual(temp_leftovers(home), ["notes.tmp"])   # only our own patterns
        self.assertEqual(parse_state_file(home.backup_path)["next_id"], 2)

    def test_a_backup_that_is_the_state_itself_leaves_no_temp(self):
        # Regression: a writer killed between renaming the backup link and renaming its
        # state temp leaves the backup and the state as one file; rename() of a hard link
        # onto itself does nothing, so every later save left NAME.state.json.bak.PID.tmp.
        home = Home(BACKEND_CASES[0].config)
        self.addCleanup(home.cleanup)
        home.ok("order", "1")
        os.link(home.state_path, home.backup_path)
        before = home.read(home.state_path)
        home.ok("order", "1")
        self.assertEqual(temp_leftovers(home), [])
        self.assertEqual(home.read(home.backup_path), before)


if __name__ == "__main__":
    unittest.main()
