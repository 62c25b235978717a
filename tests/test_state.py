# -*- coding: utf-8 -*-
"""The state store: locking, atomic saves, backup, damaged files, unique ids."""

import fcntl
import json
import os
import stat
import subprocess
import unittest

from helpers.support import MANUAL_CONFIG, PYTHON, HomeTestCase


class ConcurrencyTest(HomeTestCase):
    def test_racing_processes_get_distinct_ids_that_all_answer(self):
        # Each worker process orders several times through the real script.
        code = ("import json, subprocess, sys\n"
                "for _ in range(int(sys.argv[2])):\n"
                "    out = subprocess.check_output(json.loads(sys.argv[1]) + ['order', '1'])\n"
                "    sys.stdout.write(out.decode('utf-8'))\n")
        workers = [subprocess.Popen([PYTHON, "-c", code, json.dumps(self.home.command([])), "10"],
                                    stdout=subprocess.PIPE, env=self.home.env())
                   for _ in range(4)]
        ids = []
        for worker in workers:
            out, _ = worker.communicate(timeout=300)
            self.assertEqual(worker.returncode, 0)
            ids.extend(json.loads(line)["task_id"] for line in out.decode().splitlines())
        self.assertEqual(len(ids), 40)
        self.assertEqual(len(set(ids)), 40)
        state = self.home.state()
        self.assertEqual(sorted(state["tasks"], key=int), sorted(ids, key=int))
        for task_id in ids[::7]:
            self.assertEqual(self.home.ok("order_status", task_id)["task_id"], task_id)

    def test_a_held_lock_gives_the_lock_error_in_bounded_time(self):
        self.home.write_config(dict(MANUAL_CONFIG, lock_wait=0.3))
        self.home.ok("order", "1")
        before = self.home.read(self.home.state_path)
        with open(self.home.lock_path, "a") as held:
            fcntl.flock(held, fcntl.LOCK_EX)
            result = self.home.run("order", "1", timeout=30)
            # Reading needs no lock: order_status still answers meanwhile.
            self.assertEqual(self.home.ok("order_status", "1")["status"], "in_progress")
        message = self.assertError(result, 106, "order")
        self.assertIn("0.3 s", message)
        self.assertEqual(self.home.read(self.home.state_path), before)
        self.assertEqual(self.home.ok("order", "1")["task_id"], "2")


class DurabilityTest(HomeTestCase):
    in_process = True      # state/config/archive logic: main() in-process
    def test_files_are_private(self):
        self.home.ok("order", "1")
        var = os.path.dirname(self.home.state_path)
        self.assertEqual(stat.S_IMODE(os.stat(var).st_mode), 0o700)
        for path in (self.home.state_path, self.home.lock_path, self.home.log_path):
            self.assertEqual(stat.S_IMODE(os.stat(path).st_mode), 0o600, path)
        self.assertEqual(stat.S_IMODE(os.stat(os.path.dirname(self.home.log_path)).st_mode),
                         0o700)

    def test_the_previous_state_is_kept_as_backup(self):
        self.home.ok("order", "1")
        first = self.home.read(self.home.state_path)
        self.home.ok("order", "1")
        self.assertEqual(self.home.read(self.home.backup_path), first)
        self.assertEqual(len(self.home.state()["tasks"]), 2)
        leftovers = [n for n in os.listdir(os.path.dirname(self.home.state_path))
                     if n.endswith(".tmp")]
        self.assertEqual(leftovers, [])

    def test_a_damaged_state_file_is_refused_and_left_byte_identical(self):
        self.home.ok("order", "1")
        for damage in (b'{"schema": 1, "next_id": 2, "tas', b"\x00\xff garbage", b"",
                       b"[]", b'{"schema": 99, "next_id": 2, "tasks": {}}'):
            with open(self.home.state_path, "wb") as handle:
                handle.write(damage)
            for argv in (["order", "1"], ["order_status", "1"]):
                message = self.assertError(self.home.run(*argv), 105, argv[0])
                self.assertIn(self.home.state_path, message)
                self.assertIn(self.home.backup_path, message)
            self.assertEqual(self.home.read(self.home.state_path), damage)
        # help and configs do not depend on the state at all
        self.assertEqual(self.home.ok("help")["status"], "enabled")

    def test_ids_stay_unique_after_the_state_is_lost(self):
        for _ in range(3):
            task_id = self.home.ok("order", "1")["task_id"]
            self.home.caller_marks(task_id, "complete: added")
        os.unlink(self.home.state_path)
        os.unlink(self.home.backup_path)
        self.assertEqual(self.home.ok("order", "1")["task_id"], "4")

    def test_a_lost_state_with_its_backup_left_is_refused_until_restored(self):
        # Regression: an order went on with an empty state; its second write
        # replaced the backup, and the tasks only the backup held were gone.
        for _ in range(3):
            self.home.ok("order", "1")
        os.unlink(self.home.state_path)
        os.unlink(self.home.log_path)
        backup = self.home.read(self.home.backup_path)
        for args in (("order", "1"), ("order_status", "1"), ("tasks",)):
            message = self.assertError(self.home.run(*args), 105, args[0])
            self.assertIn("is missing but its backup", message)
            self.assertIn("state restore-backup", message)
        self.assertFalse(os.path.exists(self.home.state_path))
        self.assertEqual(self.home.read(self.home.backup_path), backup)
        self.assertEqual(self.home.run("state", "restore-backup").code, 0)
        # The backup is one save behind: it knows ids up to 2.
        self.assertEqual(self.home.ok("order_status", "2")["status"], "in_progress")
        self.assertEqual(self.home.ok("order", "1")["task_id"], "3")

    def test_state_repair_starts_from_the_backup_when_the_state_is_lost(self):
        for _ in range(3):
            self.home.ok("order", "1")
        os.unlink(self.home.state_path)
        result = self.home.run("state", "repair")
        self.assertEqual(result.code, 0, result)
        self.assertIn("started from the backup", result.text)
        self.assertEqual(self.home.ok("order_status", "2")["status"], "in_progress")
        self.assertEqual(self.home.ok("order", "1")["task_id"], "4")     # the log knew 3

    def test_only_the_logs_own_order_events_count_for_ids(self):
        # Regression: a message quoting "order task=<24 digits>" pushed the next id
        # past what order_status accepts (and 5,000 digits crashed int()).
        task_id = self.home.ok("order", "1")["task_id"]
        self.home.run("task", "fail", task_id, "--message",
                      "dup of order task=123456789012345678901234 and order task=" + "9" * 5000)
        os.unlink(self.home.state_path)
        os.unlink(self.home.backup_path)
        self.assertEqual(self.home.ok("order", "1")["task_id"], "2")

    def test_names_in_the_callers_folder_that_are_no_ids_are_ignored(self):
        self.home.caller_marks("0")
        for name in ("\u00b2", "\u0663", "007", "1" * 21):      # ², an Arabic 3, ...
            path = os.path.join(self.home.tasks_dir.encode(), name.encode("utf-8"))
            open(path, "wb").close()
        self.assertEqual(self.home.ok("order", "1")["task_id"], "1")

    def test_ids_stay_unique_when_only_the_log_survives(self):
        for _ in range(3):
            self.home.ok("order", "1")
        os.unlink(self.home.state_path)
        os.unlink(self.home.backup_path)
        self.assertEqual(self.home.ok("order", "1")["task_id"], "4")

    def test_caller_ids_above_ours_are_skipped(self):
        self.home.caller_marks("41")
        self.home.caller_marks("not-a-number")
        self.assertEqual(self.home.ok("order", "1")["task_id"], "42")


class EncodeTest(unittest.TestCase):
    def test_a_lone_surrogate_is_saved_as_a_json_escape(self):
        # Regression: a "\\ud800" escape in text from an API or a program could
        # not be encoded as UTF-8, and the save failed (N199, a temp file left).
        from helpers.support import load_module
        module = load_module()
        document = {"schema": 2, "next_id": 3, "tasks": {
            "1": {"id": "1", "message": "x\ud800y"}, "2": {"id": "2", "message": "ok ✓"}}}
        data = b"".join(module.encode_tasks_file(document))
        self.assertEqual(json.loads(data.decode("utf-8")), document)
        self.assertIn("ok ✓".encode("utf-8"), data)          # the rest stays raw UTF-8
        self.assertEqual(data.count(b"\n"), 4)               # still one task per line


class ApplyTest(HomeTestCase):
    in_process = True      # state/config/archive logic: main() in-process
    def test_backend_changes_merge_into_the_task_data(self):
        from helpers.support import load_module
        module = load_module()
        self.home.ok("order", "1")
        provider = module.Provider(module.Paths(self.home.script))
        provider.apply("1", {"data": {"a": 1, "b": 2}, "message": "first"})
        task = provider.apply("1", {"data": {"b": 3}, "phase": "next"})
        self.assertEqual(task["data"], {"a": 1, "b": 3})
        self.assertEqual(self.home.state()["tasks"]["1"]["data"], {"a": 1, "b": 3})
        self.assertEqual((task["message"], task["phase"]), ("first", "next"))


if __name__ == "__main__":
    unittest.main()
