# -*- coding: utf-8 -*-
"""Damaged or foreign state: refused with a clear message, left untouched;
`state restore-backup` and `state repair` put it right and never delete."""

import json
import os
import pwd
import stat
import unittest

from helpers.robust_support import BACKEND_CASES, parse_state_file, run
from helpers.support import HomeTestCase

IS_ROOT = os.geteuid() == 0


def nobody():
    try:
        return pwd.getpwnam("nobody").pw_uid
    except KeyError:
        return 65534


def fingerprint(path):
    """What must not change: the kind of thing at path and its bytes."""
    if os.path.islink(path):
        return ("link", os.readlink(path))
    if os.path.isdir(path):
        return ("dir", sorted(os.listdir(path)))
    if not os.path.exists(path):
        return None
    with open(path, "rb") as handle:
        info = os.stat(path)
        return ("file", handle.read(), info.st_uid, stat.S_IMODE(info.st_mode))


WRITERS = (["order", "1"], ["task", "finish", "1", "--server", "203.0.113.5",
                            "--no-check", "--no-password"])
READERS = (["order_status", "1"],)


class DamagedStateTest(HomeTestCase):
    in_process = True      # state/config/archive logic: main() in-process
    config = BACKEND_CASES[0].config

    def setUp(self):
        HomeTestCase.setUp(self)
        self.home.ok("order", "1")
        self.home.ok("order", "1")
        self.var = os.path.dirname(self.home.state_path)
        self.other = os.path.join(self.home.dir, "other.json")
        with open(self.other, "wb") as handle:
            handle.write(self.home.read(self.home.state_path))

    def assertRefused(self, code, what):
        before = fingerprint(self.home.state_path), fingerprint(self.other), \
            fingerprint(self.home.backup_path)
        for argv in WRITERS + READERS:
            message = self.assertError(run(self.home, argv), code, " ".join(argv[:2])
                                       if argv[0] == "task" else argv[0])
            self.assertIn(self.home.state_path if code != 110 or "folder" not in what
                          else self.var, message, what)
        after = fingerprint(self.home.state_path), fingerprint(self.other), \
            fingerprint(self.home.backup_path)
        self.assertEqual(after, before, what)
        self.assertEqual([n for n in os.listdir(self.var) if n.endswith(".tmp")], [])
        self.assertEqual(self.home.ok("help")["status"], "enabled")

    def damage(self, data):
        with open(self.home.state_path, "wb") as handle:
            handle.write(data)

    def test_truncated_garbage_other_schema_empty(self):
        good = self.home.read(self.home.state_path)
        for what, data in (("truncated", good[:len(good) // 2]), ("garbage", b"\x00\xff\xfe" * 9),
                           ("schema 3", good.replace(b'"schema":2', b'"schema":3')),
                           ("empty", b""), ("a list", b"[]"), ("not utf-8", b'{"a": "\xff"}')):
            self.damage(data)
            self.assertRefused(105, what)

    def test_a_directory(self):
        os.unlink(self.home.state_path)
        os.mkdir(self.home.state_path)
        self.assertRefused(105, "directory")

    def test_a_symlink_to_another_file(self):
        # Regression: the state was read through a symlink (another provider's state, any
        # file); a save then replaced the link by a file.
        os.unlink(self.home.state_path)
        os.symlink(self.other, self.home.state_path)
        self.assertRefused(110, "symlink")

    @unittest.skipUnless(IS_ROOT, "chown needs root")
    def test_owned_by_another_user(self):
        os.chown(self.home.state_path, nobody(), -1)
        self.assertRefused(110, "foreign owner")

    def test_a_world_writable_state_folder(self):
        os.chmod(self.var, 0o777)
        self.assertRefused(110, "world-writable folder")
        os.chmod(self.var, 0o770)
        self.assertRefused(110, "group-writable folder")
        os.chmod(self.var, 0o700)
        self.home.ok("order", "1")

    @unittest.skipUnless(IS_ROOT, "chown needs root")
    def test_a_state_folder_of_another_user(self):
        os.chown(self.var, nobody(), -1)
        self.assertRefused(110, "foreign folder")

    @unittest.skipUnless(IS_ROOT, "chown needs root")
    def test_the_home_owner_is_trusted_as_bx_provider_chowns_it(self):
        # bx-provider runs `chown -R bitrix.bitrix HOME` and the plugin as root.
        for root, dirs, files in os.walk(self.home.dir):
            for name in dirs + files:
                os.lchown(os.path.join(root, name), nobody(), -1)
        os.lchown(self.home.dir, nobody(), -1)
        self.assertEqual(self.home.ok("order", "1")["task_id"], "3")
        self.assertEqual(self.home.ok("order_status", "3")["status"], "in_progress")


class RepairTest(HomeTestCase):
    in_process = True      # state/config/archive logic: main() in-process
    config = BACKEND_CASES[0].config

    def setUp(self):
        HomeTestCase.setUp(self)
        for _ in range(3):
            self.home.ok("order", "1")
        self.home.run("task", "finish", "2", "--server", "203.0.113.5",
                      "--no-check", stdin="Pw-2\n")
        self.var = os.path.dirname(self.home.state_path)

    def aside(self):
        return sorted(n for n in os.listdir(self.var) if ".damaged-" in n)

    def test_restore_backup_keeps_the_damaged_file_and_bumps_next_id(self):
        damaged = b'{"schema": 1, "next_id": 9, "tasks": {"8": {"id": "8", "sta'
        with open(self.home.state_path, "wb") as handle:
            handle.write(damaged)
        backup = parse_state_file(self.home.backup_path)
        result = self.home.run("state", "restore-backup")
        self.assertEqual(result.code, 0, result)
        self.assertIn(b"kept aside as", result.out)
        [kept] = self.aside()
        self.assertEqual(self.home.read(os.path.join(self.var, kept)), damaged)
        state = self.home.state()
        self.assertEqual(state["tasks"], backup["tasks"])
        self.assertEqual(state["next_id"], 9)           # id 8 was named in the damaged file
        self.assertEqual(self.home.ok("order", "1")["task_id"], "9")
        self.assertIn("state-restore-backup", self.home.read(self.home.log_path).decode())

    def test_restore_backup_refuses_a_damaged_backup(self):
        before = self.home.read(self.home.state_path)
        with open(self.home.backup_path, "wb") as handle:
            handle.write(b"garbage")
        message = self.assertError(self.home.run("state", "restore-backup"), 105,
                                   "state restore-backup")
        self.assertIn("too; nothing was changed", message)
        self.assertEqual(self.home.read(self.home.state_path), before)
        self.assertEqual(self.aside(), [])

    def test_repair_merges_backup_and_readable_records(self):
        good = self.home.read(self.home.state_path)
        # cut inside task 3: tasks 1 and 2 are whole in the damaged file
        cut = good.index(b'"3":{')
        self.damage = good[:cut + 20]
        with open(self.home.state_path, "wb") as handle:
            handle.write(self.damage)
        os.unlink(self.home.backup_path)
        self.home.caller_marks("7")       # the caller knows an id above ours
        result = self.home.run("state", "repair")
        self.assertEqual(result.code, 0, result)
        text = result.text
        self.assertIn("starting from an empty state", text)
        self.assertIn("2 complete task record(s)", text)
        state = self.home.state()
        self.assertEqual(sorted(state["tasks"]), ["1", "2"])
        self.assertEqual(state["tasks"]["2"]["status"], "finished")
        self.assertEqual(state["next_id"], 8)
        [kept] = self.aside()
        self.assertEqual(self.home.read(os.path.join(self.var, kept)), self.damage)
        self.assertEqual(stat.S_IMODE(os.stat(os.path.join(self.var, kept)).st_mode), 0o600)
        self.assertEqual(self.home.ok("order", "1")["task_id"], "8")
        # the installation is the same: its servers' owner tag and its workers go on
        self.assertIn("kept the damaged file's installation id", text)
        self.assertEqual(state["installation"], json.loads(good.decode())["installation"])

    def test_repair_of_a_directory_and_of_a_valid_state(self):
        result = self.home.run("state", "repair")
        self.assertIn(b"is valid", result.out)
        self.assertIn(b"nothing changed", result.out)
        self.assertEqual(self.aside(), [])
        os.rename(self.home.state_path, self.home.state_path + ".x")
        os.mkdir(self.home.state_path)
        result = self.home.run("state", "repair")
        self.assertEqual(result.code, 0, result)
        [kept] = self.aside()
        self.assertTrue(os.path.isdir(os.path.join(self.var, kept)))
        # the backup is the state before the last write (the finish of task 2)
        self.assertEqual(self.home.ok("order_status", "2")["status"], "in_progress")
        self.assertEqual(self.home.state()["next_id"], 4)

    def test_a_missing_home_is_not_created(self):
        # Regression: `state repair --home /mistyped` created /mistyped/var (makedirs),
        # found by the hostile-argv suite.
        missing = os.path.join(self.home.dir, "no", "such", "home")
        result = self.home.run("state", "repair", "--home", missing)
        self.assertError(result, 107, "state repair")
        self.assertFalse(os.path.exists(os.path.join(self.home.dir, "no")))

    def test_state_commands_need_an_action(self):
        self.assertError(self.home.run("state"), 100, exit_code=2)
        self.assertError(self.home.run("state", "destroy"), 100, exit_code=2)


class ArchiveSafetyTest(HomeTestCase):
    """The archive (var/archive/) gets the state file's safety and repair rules."""

    in_process = True      # state/config/archive logic: main() in-process
    config = dict(BACKEND_CASES[0].config, retention_days=0)

    def setUp(self):
        HomeTestCase.setUp(self)
        for _ in range(3):
            self.home.ok("order", "1")
        # retention 0: a failed task leaves the state in the write that fails it
        self.home.run("task", "fail", "1", "--message", "no")
        self.home.run("task", "fail", "2", "--message", "no")
        self.var = os.path.dirname(self.home.state_path)
        self.archive = os.path.join(self.var, "archive")
        self.file = os.path.join(self.archive, "provider.1-100.json")
        self.assertEqual(sorted(self.home.state()["tasks"]), ["3"])
        self.assertEqual(self.home.ok("order_status", "1")["status"], "error")

    def assertRefused(self, code, what, path):
        before = fingerprint(path)
        message = self.assertError(self.home.run("order_status", "1"), code, "order_status")
        self.assertIn(path, message, what)
        self.assertEqual(fingerprint(path), before, what)

    def test_a_symlinked_archive_file_is_refused(self):
        other = os.path.join(self.home.dir, "other.json")
        os.rename(self.file, other)
        os.symlink(other, self.file)
        self.assertRefused(110, "symlink", self.file)
        self.assertEqual(self.home.ok("order_status", "3")["status"], "in_progress")

    def test_a_non_file_archive_file_is_refused(self):
        os.rename(self.file, self.file + ".x")
        os.mkdir(self.file)
        self.assertRefused(105, "directory", self.file)

    @unittest.skipUnless(IS_ROOT, "chown needs root")
    def test_an_archive_file_of_another_user_is_refused(self):
        os.chown(self.file, nobody(), -1)
        self.assertRefused(110, "foreign owner", self.file)

    def test_a_world_writable_archive_folder_is_refused(self):
        os.chmod(self.archive, 0o777)
        self.assertRefused(110, "world-writable folder", self.archive)
        os.chmod(self.archive, 0o700)
        self.assertEqual(self.home.ok("order_status", "1")["status"], "error")

    def test_stale_archive_temps_are_swept_by_the_next_write(self):
        stale = [".provider.1-100.json.4242.1700000000000000.tmp",
                 "provider.1-100.json.bak.4242.tmp"]
        for name in stale + ["notes.tmp"]:
            open(os.path.join(self.archive, name), "w").close()
        def temps():
            return sorted(n for n in os.listdir(self.archive) if n.endswith(".tmp"))
        self.home.ok("order_status", "1")                 # a read does not touch them
        self.home.ok("order", "1")                        # nor a write that does not archive
        self.assertEqual(len(temps()), 3)
        self.home.run("task", "fail", "3", "--message", "no")    # archives task 3
        self.assertEqual(temps(), ["notes.tmp"])                 # only our own patterns
        for name in stale:
            open(os.path.join(self.archive, name), "w").close()
        self.assertEqual(self.home.run("state", "compact").code, 0)   # the commands for people
        self.assertEqual(temps(), ["notes.tmp"])
        self.assertIn("3", self.home.run("tasks", "--all", "--json").text)

    def test_repair_keeps_the_archive_and_counts_above_it(self):
        with open(self.home.state_path, "wb") as handle:
            handle.write(b"garbage")
        os.unlink(self.home.backup_path)
        os.unlink(self.home.log_path)                    # only the archive remembers ids
        before = fingerprint(self.archive)
        result = self.home.run("state", "repair")
        self.assertEqual(result.code, 0, result)
        self.assertEqual(fingerprint(self.archive), before)
        state = self.home.state()
        self.assertEqual(state["archived_max_id"], 2)
        self.assertGreaterEqual(state["next_id"], 3)
        self.assertEqual(self.home.ok("order_status", "2")["status"], "error")
        self.assertEqual(self.home.run("tasks", "--all", "--json").json["tasks"][0]["id"], "1")

    def test_restore_backup_does_not_bring_back_an_older_copy_of_an_archived_task(self):
        # The backup is the state before task 2 failed (and was archived): in_progress.
        self.assertEqual(parse_state_file(self.home.backup_path)["tasks"]["2"]["status"],
                         "in_progress")
        result = self.home.run("state", "restore-backup", "--force")   # the state is valid
        self.assertEqual(result.code, 0, result)
        self.assertIn(b"left to the archive, which holds them newer: 2", result.out)
        self.assertEqual(sorted(self.home.state()["tasks"]), ["3"])
        self.assertEqual(self.home.ok("order_status", "2")["status"], "error")
        self.assertEqual(self.home.ok("order", "1")["task_id"], "4")


if __name__ == "__main__":
    unittest.main()
