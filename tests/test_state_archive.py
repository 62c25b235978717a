# -*- coding: utf-8 -*-
"""The state store's archive: retention moves old terminal tasks out of the
state file, bounded per write; archived tasks still answer; `state compact`;
migration from schema 1; ids stay unique; a damaged archive file is refused
untouched."""

import json
import os
import unittest

from helpers.support import MANUAL_CONFIG, HomeTestCase, load_module

MODULE = load_module()
SPAN = MODULE.ARCHIVE_SPAN
BATCH = MODULE.ARCHIVE_BATCH
DAY = 86400


def task_record(task_id, status="finished", age_days=400, **extra):
    stamp = int(MODULE.now() - age_days * DAY)
    task = {"id": str(task_id), "config_id": "1", "backend": "manual", "status": status,
            "phase": "done" if status == "finished" else "waiting",
            "message": "finished by the operator" if status == "finished" else "waiting",
            "server": "10.0.%d.%d" % (task_id // 256 % 256, task_id % 256)
            if status == "finished" else "",
            # a root password is kept password_ttl_days (7) at most: older ones are gone
            "server_password": "pw%d" % task_id if status == "finished" and age_days < 7
            else "",
            "created": stamp, "updated": stamp, "data": {}}
    task.update(extra)
    return task


class ArchiveCase(HomeTestCase):
    in_process = True      # state/config/archive logic: main() in-process

    def write_state(self, tasks, schema=MODULE.STATE_SCHEMA, next_id=None):
        """A state file as provider.py would have saved it (schema 1: the old core's)."""
        state = {"schema": schema, "provider": self.home.name,
                 "next_id": next_id or max([int(t["id"]) for t in tasks] + [0]) + 1,
                 "tasks": dict((t["id"], t) for t in tasks)}
        if schema >= 2:
            state["archived_max_id"] = 0
        os.makedirs(os.path.dirname(self.home.state_path), 0o700, exist_ok=True)
        with open(self.home.state_path, "wb") as handle:
            handle.write(json.dumps(state, sort_keys=True).encode("utf-8"))
        os.chmod(self.home.state_path, 0o600)

    def archive_dir(self):
        return os.path.join(self.home.dir, "var", "archive")

    def archive_file(self, task_id):
        start = MODULE.archive_start(task_id)
        return os.path.join(self.archive_dir(), "%s.%d-%d.json" % (
            self.home.name, start, start + SPAN - 1))

    def archived_ids(self):
        ids = set()
        if os.path.isdir(self.archive_dir()):
            for name in os.listdir(self.archive_dir()):
                if name.endswith(".json"):
                    with open(os.path.join(self.archive_dir(), name), "rb") as handle:
                        ids.update(json.loads(handle.read().decode("utf-8"))["tasks"])
        return ids

    def hot_ids(self):
        return set(self.home.state()["tasks"])


class RetentionTest(ArchiveCase):

    def test_order_moves_a_bounded_batch_and_never_pending_tasks(self):
        total = BATCH + 150
        old = [task_record(i, "error" if i % 5 == 0 else "finished") for i in range(1, total + 1)]
        pending = [task_record(total + 1, "in_progress", age_days=1000),
                   task_record(total + 2, "in_progress", age_days=1000)]
        recent = [task_record(total + 3, age_days=1)]
        self.write_state(old + pending + recent, schema=1)
        self.home.ok("order", "1")
        hot = self.hot_ids()
        self.assertEqual(len(self.archived_ids()), BATCH)            # bounded per write
        self.assertEqual(self.archived_ids(), set(str(i) for i in range(1, BATCH + 1)))
        self.assertEqual(hot & self.archived_ids(), set())
        self.home.ok("order", "1")                                   # the rest goes next
        self.assertEqual(self.archived_ids(), set(str(i) for i in range(1, total + 1)))
        hot = self.hot_ids()
        for task in pending + recent:
            self.assertIn(task["id"], hot)                           # never moved
        state = self.home.state()
        self.assertEqual(state["schema"], MODULE.STATE_SCHEMA)
        self.assertEqual(state["archived_max_id"], total)
        for name in os.listdir(self.archive_dir()):
            path = os.path.join(self.archive_dir(), name)
            self.assertEqual(os.stat(path).st_mode & 0o777, 0o600, name)
        self.assertEqual(os.stat(self.archive_dir()).st_mode & 0o777, 0o700)

    def test_archived_tasks_answer_everywhere(self):
        tasks = [task_record(i) for i in range(1, 6)] + [task_record(6, "error")]
        self.write_state(tasks + [task_record(7, "in_progress")])
        self.home.ok("order", "1")
        self.assertEqual(self.hot_ids(), {"7", "8"})
        answer = self.home.ok("order_status", "3")
        self.assertEqual(answer, {"task_id": "3", "status": "finished", "server": "10.0.0.3",
                                  "server_password": "",
                                  "message": "finished by the operator"})
        self.assertEqual(self.home.ok("order_status", "6")["status"], "error")
        shown = self.home.run("task", "show", "3", "--json")
        self.assertEqual(shown.code, 0, shown)
        self.assertEqual(shown.json["server"], "10.0.0.3")
        self.assertEqual(shown.json["server_password"], "")
        listed = self.home.run("tasks", "--all", "--json")
        self.assertEqual([t["id"] for t in listed.json["tasks"]],
                         [str(i) for i in range(1, 9)])
        hot_only = self.home.run("tasks", "--json")
        self.assertEqual([t["id"] for t in hot_only.json["tasks"]], ["7", "8"])
        table = self.home.run("tasks", "--all")
        self.assertEqual(table.code, 0, table)
        self.assertIn(b"10.0.0.3", table.out)
        self.assertIn(b"tasks --all", self.home.run("tasks").out)
        missing = self.home.run("order_status", "250")
        self.assertError(missing, 102, "order_status")
        # an archived (terminal) task cannot be finished again
        refused = self.home.run("task", "fail", "3", "--message", "again")
        self.assertError(refused, 111, "task fail")

    def test_task_in_both_files_after_a_crash_the_state_copy_wins(self):
        self.write_state([task_record(1), task_record(2)])
        store = MODULE.StateStore(MODULE.Paths(self.home.script))
        stale = task_record(1, message="archive copy")
        store.archive({"1": stale})            # as if the crash came before the state save
        self.assertEqual(self.home.ok("order_status", "1")["message"],
                         "finished by the operator")
        listed = self.home.run("tasks", "--all", "--json").json["tasks"]
        self.assertEqual([t["message"] for t in listed if t["id"] == "1"],
                         ["finished by the operator"])
        self.home.ok("order", "1")             # the next write moves it again: one copy
        self.assertNotIn("1", self.hot_ids())
        self.assertEqual(self.home.ok("order_status", "1")["message"],
                         "finished by the operator")

    def test_tasks_holding_a_pool_server_or_a_rented_server_stay(self):
        rented = task_record(2, "error", data={"server_id": 77})
        deleted = task_record(3, "error", data={"server_id": 78, "server_deleted": 1})
        self.write_state([task_record(1), rented, deleted, task_record(4)])
        state = self.home.state()
        state["pool"] = {"10.0.0.4": "4"}
        with open(self.home.state_path, "wb") as handle:
            handle.write(json.dumps(state).encode("utf-8"))
        self.assertEqual(self.home.run("state", "compact").code, 0)
        self.assertEqual(self.archived_ids(), {"1", "3"})
        self.assertEqual(self.hot_ids(), {"2", "4"})
        self.assertEqual(self.home.state()["pool"], {"10.0.0.4": "4"})

    def test_retention_days_from_the_config(self):
        config = dict(MANUAL_CONFIG, retention_days=10)
        self.home.write_config(config)
        self.write_state([task_record(1, age_days=11), task_record(2, age_days=9)])
        self.home.ok("order", "1")
        self.assertEqual(self.archived_ids(), {"1"})
        self.assertEqual(self.hot_ids(), {"2", "3"})

    def test_retention_days_is_validated(self):
        for bad, text in ((-1, "must be a finite number, 0 to 1000000000"),
                          (10 ** 400, "must be a finite number, 0 to 1000000000"),
                          ("30", "must be a number, not string"),
                          (True, "must be a number, not boolean")):
            self.home.write_config(dict(MANUAL_CONFIG, retention_days=bad))
            message = self.assertError(self.home.run("configs"), 104, "configs")
            self.assertIn("$.retention_days: " + text, message)
        self.home.write_config(dict(MANUAL_CONFIG, retention_days=0.5))
        self.home.ok("configs")


class CompactTest(ArchiveCase):

    def test_compact_moves_everything_old_and_migrates_schema_1(self):
        total = 3 * BATCH + 17
        tasks = [task_record(i, "error" if i % 3 == 0 else "finished") for i in range(1, total + 1)]
        tasks.append(task_record(total + 1, "in_progress", age_days=900))
        tasks.append(task_record(total + 2, age_days=2))
        self.write_state(tasks, schema=1)
        before = dict((t["id"], t) for t in tasks)
        result = self.home.run("state", "compact")
        self.assertEqual(result.code, 0, result)
        self.assertIn(b"moved %d task(s)" % total, result.out)
        state = self.home.state()
        self.assertEqual(state["schema"], MODULE.STATE_SCHEMA)
        self.assertEqual(set(state["tasks"]), {str(total + 1), str(total + 2)})
        self.assertEqual(self.archived_ids(), set(str(i) for i in range(1, total + 1)))
        listed = self.home.run("tasks", "--all", "--json").json["tasks"]
        after = dict((t["id"], t) for t in listed)
        for task_id, task in before.items():          # nothing lost, nothing changed
            if task["server_password"]:
                task = dict(task, server_password="********")
            self.assertEqual(after[task_id], task)
        # every archive file holds only its own range
        for name in os.listdir(self.archive_dir()):
            start, end = name.split(".")[1].split("-")
            with open(os.path.join(self.archive_dir(), name), "rb") as handle:
                ids = json.loads(handle.read().decode("utf-8"))["tasks"]
            self.assertTrue(all(int(start) <= int(i) <= int(end) for i in ids), name)
        self.assertEqual(self.home.run("state", "compact").out.split(b";")[0],
                         b"moved 0 task(s) to " + self.archive_dir().encode())

    def test_compact_days_option(self):
        # (no password: a task holding one stays until it is removed, test_robust_secrets)
        self.write_state([task_record(1, age_days=3, server_password=""),
                          task_record(2, age_days=1, server_password="")])
        result = self.home.run("state", "compact", "--days", "2")
        self.assertEqual(result.code, 0, result)
        self.assertEqual(self.archived_ids(), {"1"})
        self.assertError(self.home.run("state", "compact", "--days", "-1"), 100,
                         "state compact", exit_code=2)

    def test_new_code_reads_an_unmigrated_schema_1_file(self):
        self.write_state([task_record(1), task_record(2, "in_progress")], schema=1)
        raw = self.home.read(self.home.state_path)
        self.assertEqual(self.home.ok("order_status", "1")["server"], "10.0.0.1")
        self.assertEqual(self.home.ok("order_status", "2")["status"], "in_progress")
        self.assertEqual(len(self.home.run("tasks", "--json").json["tasks"]), 2)
        self.assertEqual(self.home.read(self.home.state_path), raw)   # reads never write


class IdsTest(ArchiveCase):

    def test_ids_stay_above_the_archive_when_the_state_file_is_lost(self):
        self.write_state([task_record(i) for i in range(1, 2 * SPAN + 31)])
        self.assertEqual(self.home.run("state", "compact").code, 0)
        self.assertIn(str(2 * SPAN + 30), self.archived_ids())
        os.unlink(self.home.state_path)
        os.unlink(self.home.backup_path)
        task_id = self.home.ok("order", "1")["task_id"]
        self.assertEqual(int(task_id), 2 * SPAN + 31)
        self.assertEqual(self.home.ok("order_status", "5")["status"], "finished")

    def test_ids_stay_above_a_damaged_highest_archive_file(self):
        self.write_state([task_record(i) for i in range(1, 8)])
        self.home.run("state", "compact")
        with open(self.archive_file(3), "wb") as handle:
            handle.write(b"{garbage")
        os.unlink(self.home.state_path)
        os.unlink(self.home.backup_path)
        task_id = int(self.home.ok("order", "1")["task_id"])
        self.assertGreater(task_id, SPAN)         # the file name's range counts

    def test_ids_stay_above_the_callers_tasks_when_the_state_is_older(self):
        self.home.ok("order", "1")
        old_state = self.home.read(self.home.state_path)
        for _ in range(3):
            self.home.caller_marks(self.home.ok("order", "1")["task_id"])
        with open(self.home.state_path, "wb") as handle:       # restored from an old copy
            handle.write(old_state)
        os.unlink(self.home.backup_path)        # only the caller's tasks/ knows
        self.assertEqual(self.home.ok("order", "1")["task_id"], "5")


class DamagedArchiveTest(ArchiveCase):

    def test_damaged_archive_file_is_refused_and_left_untouched(self):
        self.write_state([task_record(i) for i in range(1, 4)] + [task_record(4, age_days=0)])
        self.home.run("state", "compact")
        path = self.archive_file(2)
        with open(path, "rb") as handle:
            good = handle.read()
        damaged = good[:len(good) // 2]
        with open(path, "wb") as handle:
            handle.write(damaged)
        message = self.assertError(self.home.run("order_status", "2"), 105, "order_status")
        self.assertIn(path, message)
        self.assertIn("left untouched", message)
        self.assertError(self.home.run("task", "show", "2"), 105, "task show")
        self.assertError(self.home.run("tasks", "--all"), 105, "tasks")
        self.assertEqual(self.home.ok("order_status", "4")["status"], "finished")  # hot: fine
        # new old tasks for the same file: an order still works, they stay in the state
        self.home.write_config(dict(MANUAL_CONFIG, retention_days=0))
        task_id = self.home.ok("order", "1")["task_id"]
        self.assertIn("4", self.hot_ids())
        self.assertError(self.home.run("state", "compact"), 105, "state compact")
        self.assertEqual(self.home.read(path), damaged)
        self.assertEqual(self.home.ok("order_status", task_id)["status"], "in_progress")

    def test_one_damaged_file_holds_back_only_its_own_tasks(self):
        # Regression: the first damaged file stopped all archiving, and a file
        # written before it was written again on every call.
        self.write_state([task_record(1)])
        self.home.run("state", "compact")
        path = self.archive_file(1)
        with open(path, "wb") as handle:
            handle.write(b"{garbage")
        self.write_state([task_record(2), task_record(SPAN + 1), task_record(2 * SPAN + 1)],
                         next_id=2 * SPAN + 2)
        result = self.home.run("order", "1")
        self.assertEqual(result.code, 0, result)
        self.assertIn(b"warning: old tasks stay in the state file", result.err)
        self.assertEqual(self.hot_ids(), {"2", str(2 * SPAN + 2)})
        for task_id in (SPAN + 1, 2 * SPAN + 1):
            with open(self.archive_file(task_id), "rb") as handle:
                self.assertIn(str(task_id), json.loads(handle.read().decode("utf-8"))["tasks"])
        self.assertEqual(self.home.read(path), b"{garbage")

    def test_unknown_archive_schema_is_refused(self):
        self.write_state([task_record(1)])
        self.home.run("state", "compact")
        path = self.archive_file(1)
        with open(path, "rb") as handle:
            data = json.loads(handle.read().decode("utf-8"))
        data["schema"] = 99
        raw = json.dumps(data).encode("utf-8")
        with open(path, "wb") as handle:
            handle.write(raw)
        message = self.assertError(self.home.run("order_status", "1"), 105, "order_status")
        self.assertIn("schema version 99", message)
        self.assertEqual(self.home.read(path), raw)


class StateLayoutTest(ArchiveCase):

    def test_one_task_per_line_lookup_is_exact(self):
        tricky = task_record(1, "error", age_days=0, message='x\n"2":{"id":"2"} \u2028 end')
        self.write_state([tricky, task_record(2, age_days=0), task_record(12, "in_progress")])
        self.home.ok("order", "1")                      # saved in the one-task-per-line layout
        raw = self.home.read(self.home.state_path)
        self.assertEqual(raw.count(b"\n"), 6)           # head, 4 tasks, end
        self.assertEqual(self.home.ok("order_status", "1")["message"], tricky["message"])
        self.assertEqual(self.home.ok("order_status", "2")["server"], "10.0.0.2")
        self.assertEqual(self.home.ok("order_status", "12")["status"], "in_progress")
        self.assertError(self.home.run("order_status", "3"), 102, "order_status")

    def test_truncated_state_is_refused_by_a_lookup_too(self):
        self.write_state([task_record(i, age_days=0) for i in range(1, 6)])
        self.home.ok("order", "1")
        raw = self.home.read(self.home.state_path)
        with open(self.home.state_path, "wb") as handle:
            handle.write(raw[:len(raw) * 2 // 3])
        self.assertError(self.home.run("order_status", "1"), 105, "order_status")
        self.assertEqual(self.home.read(self.home.state_path), raw[:len(raw) * 2 // 3])


if __name__ == "__main__":
    unittest.main()
