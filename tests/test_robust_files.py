# -*- coding: utf-8 -*-
"""Files another user could have written, and files that are not what they
seem: the config, password and token files, the programs the config names,
the folders root runs from (issue 11). Mostly in-process: few plugin starts."""

import contextlib
import fcntl
import io
import json
import os
import time
import unittest

from helpers.support import MANUAL_CONFIG, HomeTestCase, load_module

provider = load_module()
OTHER_UID = 65534                       # nobody: neither root nor the home's owner


class InProcessHomeTestCase(HomeTestCase):
    def paths(self):
        return provider.Paths(self.home.script)

    def load_config(self):
        return provider.Config.load(self.paths(), provider.AuditLog(os.devnull))

    def assertRefused(self, call, code, *fragments):
        with self.assertRaises(provider.ProviderError) as caught:
            call()
        self.assertEqual(caught.exception.code, code, caught.exception.message)
        for fragment in fragments:
            self.assertIn(fragment, caught.exception.message)
        return caught.exception.message


class ConfigTrustTest(InProcessHomeTestCase):
    """Regression: a config writable by others, or another user's, was obeyed
    (its `command` ran as root)."""

    def test_a_config_others_can_write_disables_the_plugin_and_says_why(self):
        os.chmod(self.home.config_path, 0o666)
        answer = self.home.ok("help")
        self.assertEqual(answer["status"], "disabled")
        self.assertIn("writable by other users (mode 666)", answer["message"])
        self.assertIn("chmod go-w %s" % self.home.config_path, answer["message"])
        self.assertError(self.home.run("order", "1"), 110, "order")
        self.assertFalse(os.path.exists(self.home.state_path))

    def test_a_config_of_another_user_is_refused(self):
        os.chown(self.home.config_path, OTHER_UID, -1)
        self.assertRefused(self.load_config, 110, "owned by uid %d" % OTHER_UID, "chown root")

    def test_a_fifo_as_config_is_refused_without_hanging(self):
        os.unlink(self.home.config_path)
        os.mkfifo(self.home.config_path, 0o600)
        self.assertRefused(self.load_config, 104, "not a regular file")

    def test_a_password_file_others_can_write_claims_no_server(self):
        secret = os.path.join(self.home.dir, "etc", "pw")
        with open(secret, "w") as handle:
            handle.write("Pw-123456789\n")
        os.chmod(secret, 0o622)
        self.home.write_config({"enabled": True, "backend": {"type": "pool"},
                                "configurations": [{"id": "p", "descr": "pool", "servers": [
                                    {"server": "203.0.113.5", "password_file": "etc/pw"}]}]})
        config = self.load_config()
        entry = config.configurations[0]["servers"][0]
        self.assertRefused(lambda: config.backend.read_password(entry, config.configurations[0]),
                           110, "writable by other users", "no server was claimed")
        os.chmod(secret, 0o600)
        self.assertEqual(config.backend.read_password(entry, config.configurations[0]),
                         "Pw-123456789")

    def test_a_token_file_of_another_user_is_refused(self):
        token = os.path.join(self.home.dir, "etc", "token")
        with open(token, "w") as handle:
            handle.write("tok\n")
        os.chmod(token, 0o600)
        os.chown(token, OTHER_UID, -1)
        self.home.write_config({"enabled": True, "configurations": [], "backend": {
            "type": "hetzner", "token_file": token}})
        self.assertRefused(self.load_config().backend.auth.token, 110, "owned by uid %d" % OTHER_UID)

    def test_a_pool_key_others_can_write_is_never_handed_to_a_server(self):
        key = os.path.join(self.home.dir, "etc", "pool")
        with open(key + ".pub", "w") as handle:
            handle.write("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDummy pool\n")
        open(key, "w").close()
        os.chmod(key + ".pub", 0o666)
        self.home.write_config({"enabled": True, "configurations": [], "backend": {
            "type": "hetzner", "token_env": "T", "pool_key": key}})
        backend = self.load_config().backend
        self.assertRefused(backend.cloud_init.pool_key, 110, "the pool key %s.pub is writable" % key)
        os.chmod(key + ".pub", 0o644)
        self.assertTrue(backend.cloud_init.pool_key()[1].startswith("ssh-ed25519 "))

    def test_a_program_in_a_folder_others_can_write_is_not_run(self):
        folder = os.path.join(self.home.dir, "prog")
        os.mkdir(folder, 0o755)
        program = os.path.join(folder, "make-vm")
        with open(program, "w") as handle:
            handle.write("#!/bin/sh\nexit 0\n")
        os.chmod(program, 0o755)
        self.home.write_config({"enabled": True, "configurations": [{"id": "c", "descr": "c"}],
                                "backend": {"type": "command", "command": [program]}})
        config = self.load_config()
        task = provider.new_task("1", "c", "command")
        config.backend.place(task, config.configurations[0], {})     # trusted: placed
        os.chmod(folder, 0o777)
        self.assertRefused(lambda: config.backend.place(task, config.configurations[0], {}),
                           110, "%s is writable by other users" % folder, "chmod go-w")
        os.chmod(folder, 0o755)
        os.chown(program, OTHER_UID, -1)
        self.assertRefused(lambda: config.backend.place(task, config.configurations[0], {}),
                           110, "%s is owned by uid %d" % (program, OTHER_UID))
        self.home.write_config({"enabled": True, "configurations": [{"id": "c", "descr": "c"}],
                                "backend": {"type": "command",
                                            "command": ["/bin/sh", "prog/make-vm", "x/y"]}})
        config = self.load_config()                         # the script an interpreter runs
        self.assertRefused(lambda: config.backend.place(task, config.configurations[0], {}),
                           110, "%s is owned by uid %d" % (program, OTHER_UID))
        report = provider.cmd_check(provider.Provider(self.paths()), None)
        self.assertIn("FAIL command: root must not run it: %s" % program, report)
        os.chown(program, 0, -1)
        config.backend.place(task, config.configurations[0], {})


class CheckFoldersTest(InProcessHomeTestCase):
    def test_check_fails_loudly_on_a_home_bin_or_etc_others_can_write(self):
        report = provider.cmd_check(provider.Provider(self.paths()), None)
        self.assertIn("ok   home, program and config folder", report)
        for folder in (self.home.dir, os.path.join(self.home.dir, "bin"),
                       os.path.join(self.home.dir, "etc")):
            os.chmod(folder, 0o777)
        report = provider.cmd_check(provider.Provider(self.paths()), None)
        for label, folder in (("home", self.home.dir),
                              ("program folder", os.path.join(self.home.dir, "bin")),
                              ("config folder", os.path.join(self.home.dir, "etc"))):
            self.assertIn("FAIL %s %s is writable by other users (mode 777)" % (label, folder),
                          report)
            self.assertIn("chmod go-w %s" % folder, report)
        self.assertNotIn("everything looks fine", report)


class ConfigParsingTest(InProcessHomeTestCase):
    def test_a_byte_order_mark_is_accepted(self):
        self.home.write_config(b"\xef\xbb\xbf" + json.dumps(MANUAL_CONFIG).encode("utf-8"))
        self.assertEqual(self.load_config().configurations[0]["id"], "1")

    def test_a_config_not_in_utf8_is_named_as_such(self):
        self.home.write_config(json.dumps({"enabled": True, "backend": {"type": "manual"},
                                           "configurations": [{"id": "1", "descr": "\u00e9t\u00e9"}]},
                                          ensure_ascii=False).encode("latin-1"))
        self.assertRefused(self.load_config, 104, "is not UTF-8", "save it as UTF-8")

    def test_duplicate_keys_are_named_by_their_path(self):
        self.home.write_config(b'{"enabled": false, "backend": {"type": "manual"}, '
                               b'"configurations": [{"id": "1", "descr": "a", "descr": "b"}], '
                               b'"enabled": true}')
        message = self.assertRefused(self.load_config, 104)
        self.assertIn("$.enabled: duplicate key", message)
        self.assertIn("$.configurations[0].descr: duplicate key", message)

    def test_deep_nesting_is_one_clear_error_and_help_still_answers(self):
        for depth in (40, 100000):
            self.home.write_config(b'{"enabled": true, "backend": {"type": "manual"}, '
                                   b'"configurations": [], "_x": ' + b"[" * depth
                                   + b"]" * depth + b"}")
            self.assertRefused(self.load_config, 104, "nested")
        answer = self.home.ok("help")
        self.assertEqual(answer["status"], "disabled")
        self.assertIn("nested too deeply", answer["message"])


class FakeClock(object):
    """Stands in for the module's `time`: the wall clock steps back an hour at
    every look, the monotonic clock moves only by the (recorded) sleeps."""

    def __init__(self):
        self.elapsed, self.sleeps = 0.0, []

    def __getattr__(self, name):
        return getattr(time, name)

    def time(self):
        return 2e9 - 3600 * len(self.sleeps)

    def monotonic(self):
        return self.elapsed

    def sleep(self, seconds):
        self.sleeps.append(seconds)
        if len(self.sleeps) > 10000:
            raise AssertionError("the lock wait never ends")
        self.elapsed += seconds


class StateEdgeTest(InProcessHomeTestCase):
    def store(self, **kwargs):
        return provider.StateStore(self.paths(), **kwargs)

    def add_task(self, store, descr="x"):
        def change(state):
            task = provider.new_task(store.allocate_id(state), "1", "manual")
            task["message"] = descr
            state["tasks"][task["id"]] = task
            return task["id"]
        return store.update(change)

    def test_the_lock_wait_is_bounded_by_the_monotonic_clock(self):
        # Regression: a wall clock stepping back kept a 2 s lock wait going.
        store = self.store(lock_wait=2)
        self.add_task(store)
        holder = os.open(self.home.lock_path, os.O_RDWR)
        self.addCleanup(os.close, holder)
        fcntl.flock(holder, fcntl.LOCK_EX)
        clock = FakeClock()
        provider.time, real = clock, provider.time
        try:
            with self.assertRaises(provider.ProviderError) as caught:
                self.add_task(store)
        finally:
            provider.time = real
        self.assertEqual(caught.exception.code, 106)
        self.assertGreaterEqual(sum(clock.sleeps), 2)
        self.assertLess(sum(clock.sleeps), 2.1)

    def test_deep_nesting_in_the_state_is_n105_and_repair_copes(self):
        deep = b"[" * 100000 + b"]" * 100000
        os.makedirs(os.path.dirname(self.home.state_path), 0o700, exist_ok=True)
        good = b'{"id": "7", "status": "in_progress", "config_id": "1", "created": 1}'
        with open(self.home.state_path, "wb") as handle:
            handle.write(b'{"schema": 2, "next_id": 9, "tasks": {"7": ' + good
                         + b', "8": {"x": ' + deep + b'}}}')
        message = self.assertError(self.home.run("order_status", "8"), 105, "order_status")
        self.assertIn("nested too deeply", message)
        self.assertIn("nested too deeply", self.home.run("state", "repair").text)
        state = self.home.state()
        self.assertEqual(sorted(state["tasks"]), ["7"])       # the whole record survived
        self.assertEqual(state["next_id"], 9)

    def test_a_deeply_nested_program_result_is_refused_not_a_worker_bug(self):
        deep = "[" * 100000 + "]" * 100000
        self.assertEqual(provider.parse_result(deep, False), "not JSON (or nested too deeply)")
        self.assertEqual(provider.redact_result(deep), deep)

    def test_a_stray_caller_file_blocks_nothing_and_check_notices(self):
        # Regression: tasks/99999999999999999999 blocked every order, and repair
        # then saved next_id 10^20 for ever.
        os.mkdir(self.home.tasks_dir)
        for name in ("99999999999999999999", "1000000000000000", "007"):
            open(os.path.join(self.home.tasks_dir, name), "w").close()
        store = self.store()
        self.assertEqual([self.add_task(store), self.add_task(store)], ["1", "2"])
        self.assertIn("next id 3", " ".join(store.repair()))
        report = provider.cmd_check(provider.Provider(self.paths()), None)
        self.assertIn("FAIL caller's tasks folder: 3 file name(s) that are not ids", report)
        # a next_id an older version saved from such a name: repair brings it down
        state = self.home.state()
        state["next_id"] = 10 ** 20
        with open(self.home.state_path, "wb") as handle:
            handle.write(json.dumps(state).encode("utf-8"))
        self.assertRaises(provider.ProviderError, self.add_task, store)
        self.assertIn("next id 100000000000000000000 -> 3", "\n".join(store.repair()))
        self.assertEqual(self.add_task(store), "3")

    def test_the_writer_refuses_a_state_the_reader_would_refuse(self):
        # Regression: one big `task fail` pushed the state over the limit and
        # every later call answered N105.
        store = self.store()
        self.add_task(store)
        before = self.home.read(self.home.state_path)
        real = provider.MAX_STATE_BYTES
        provider.MAX_STATE_BYTES = len(before) + 500
        try:
            with self.assertRaises(provider.ProviderError) as caught:
                self.add_task(store, "y" * 1000)
            self.assertEqual(caught.exception.code, 107)
            self.assertIn("larger than %d bytes" % (len(before) + 500),
                          caught.exception.message)
            self.assertEqual(self.home.read(self.home.state_path), before)
            self.assertEqual(sorted(store.load()["tasks"]), ["1"])
        finally:
            provider.MAX_STATE_BYTES = real

    def test_restore_backup_on_a_valid_state_needs_force_and_says_what_is_lost(self):
        store = self.store()
        self.add_task(store)
        self.add_task(store)
        before = self.home.read(self.home.state_path)
        message = self.assertError(self.home.run("state", "restore-backup"), 111,
                                   "state restore-backup")
        self.assertIn("would lose task(s) 2, which the backup does not know", message)
        self.assertIn("--force", message)
        self.assertEqual(self.home.read(self.home.state_path), before)
        store.restore_backup(force=True)
        self.assertEqual(sorted(store.load()["tasks"]), ["1"])


class OwnFilesTest(InProcessHomeTestCase):
    """Regression: another user's log/ with symlinks made root append to any
    file; a FIFO at tasks/ID hung order_status, and order holding the lock."""

    def target(self):
        path = os.path.join(self.home.dir, "etc", "shadow-like")
        with open(path, "wb") as handle:
            handle.write(b"root:x\n")
        return path

    def test_the_audit_log_never_follows_a_symlink_nor_uses_an_open_log_folder(self):
        target = self.target()
        log_dir = os.path.dirname(self.home.log_path)
        os.mkdir(log_dir, 0o700)
        os.symlink(target, self.home.log_path)
        log = provider.AuditLog(self.home.log_path)
        warnings = io.StringIO()
        with contextlib.redirect_stderr(warnings):
            log.write("order", "1")                          # a private log/, a symlink
            os.chmod(log_dir, 0o777)
            os.unlink(self.home.log_path)
            log.write("order", "2")                          # a log/ others can write
        self.assertIn("cannot write the log %s" % self.home.log_path, warnings.getvalue())
        self.assertIn("the log folder %s is writable by other users" % log_dir,
                      warnings.getvalue())
        self.assertFalse(os.path.lexists(self.home.log_path))
        with open(target, "rb") as handle:
            self.assertEqual(handle.read(), b"root:x\n")
        os.chmod(log_dir, 0o700)
        log.write("order", "3")
        self.assertIn(b"order task=3", self.home.read(self.home.log_path))

    def test_task_logs_and_workers_refuse_an_open_log_tasks_folder(self):
        tasks_log = os.path.join(self.home.dir, "log", "tasks")
        os.makedirs(tasks_log, 0o700)
        os.chmod(tasks_log, 0o777)
        warnings = io.StringIO()
        with contextlib.redirect_stderr(warnings):
            provider.TaskLog(os.path.join(tasks_log, "1.log")).note("hello")
        self.assertIn("refusing to use it", warnings.getvalue())
        self.assertEqual(os.listdir(tasks_log), [])
        report = provider.cmd_check(provider.Provider(self.paths()), None)
        self.assertIn("FAIL task log folder %s: mode 777 is more open than 700" % tasks_log,
                      report)
        self.home.write_config({"enabled": True, "configurations": [{"id": "c", "descr": "c"}],
                                "backend": {"type": "command", "command": ["/bin/true"]}})
        self.assertRefused(lambda: provider.fork_worker(provider.Provider(self.paths()), "1",
                                                        os.path.join(tasks_log, "1.log")),
                           110, "task log folder %s is writable by other users" % tasks_log)

    def test_a_fifo_at_the_callers_tasks_id_blocks_nothing(self):
        store = provider.StateStore(self.paths())

        def finished(state):
            task = provider.new_task(store.allocate_id(state), "1", "manual")
            task.update(status="finished", server="203.0.113.4", server_password="Pw-1234567",
                        updated=int(time.time()))
            state["tasks"][task["id"]] = task
        store.update(finished)
        os.mkdir(self.home.tasks_dir)
        os.mkfifo(os.path.join(self.home.tasks_dir, "1"))
        self.assertEqual(self.home.ok("order_status", "1", timeout=20)["status"], "finished")
        self.assertEqual(self.home.ok("order", "1", timeout=20)["task_id"], "2")
        self.assertEqual(provider.caller_mark(self.paths(), "1"), b"")


class ValuesForPeopleTest(InProcessHomeTestCase):
    def test_passwords_the_callers_shell_would_mangle_are_refused_everywhere(self):
        # Regression: "~x" or "a*b" passed and "add to pool" then failed for good.
        for password in ("~root-1", "ab*cd", "ab?cd", "ab[cd"):
            self.assertIn("starts with ~ or holds * ? [", provider.password_problem(password))
            config = {"enabled": True, "backend": {"type": "pool"}, "configurations": [
                {"id": "p", "descr": "p", "servers": [{"server": "203.0.113.5",
                                                        "password": password}]}]}
            self.assertIn("$.configurations[0].servers[0].password: starts with ~",
                          " ".join(provider.validate_config(config)))
        for password in ("a~b", "Pw-1'x $y", "пароль"):
            self.assertIsNone(provider.password_problem(password), password)
        self.assertFalse(set(provider.PASSWORD_ALPHABET) & set("~*?[") )
        for _ in range(50):
            self.assertIsNone(provider.password_problem(provider.generate_password()))
        task_id = self.home.ok("order", "1")["task_id"]      # the task is checked first
        result = self.home.run("task", "finish", task_id, "--server", "203.0.113.7", "--no-check",
                               stdin="a*b\n")
        self.assertIn("starts with ~ or holds * ? [", self.assertError(result, 100, exit_code=2))

    def test_terminal_escapes_never_reach_a_persons_terminal(self):
        # Regression: `task show` printed API text with escape sequences.
        store = provider.StateStore(self.paths())
        hostile_text = "boom\x1b]0;pwned\x07\x1b[2J\x9b31m\r\u202edone"

        def hostile(state):
            task = provider.new_task(store.allocate_id(state), "1", "manual")
            task["message"] = "boom\x1b]0;pwned\x07\x1b[2J\x9b31m\rdone"
            task["data"] = {"note": "\x1b[31mred"}
            state["tasks"][task["id"]] = task
        store.update(hostile)
        out = self.home.run("task", "show", "1").out.decode("utf-8")
        self.assertIn("boom?]0;pwned??[2J?31m?done", out)
        self.assertFalse([ch for ch in out if not ch.isprintable() and ch not in "\n\t"])
        self.assertIn("\\u001b[31mred", out)           # JSON data: escaped, as before
        provider.AuditLog(self.home.log_path).write("status", "1", message=hostile_text)
        line = self.home.read(self.home.log_path).decode("utf-8").splitlines()[-1]
        self.assertIn("\\u001b]0;pwned\\u0007\\u001b[2J\\u009b31m\\r\\u202edone", line)
        self.assertTrue(line.isprintable(), line)

    def test_a_password_in_another_spelling_leaves_the_task_log(self):
        # Regression: set -x quoting and JSON \u escapes kept the password in log/tasks/ID.log.
        password = "Pw 1'x$y"
        path = os.path.join(self.home.dir, "log", "tasks", "1.log")
        log = provider.TaskLog(path)
        for line in ("+ chpasswd <<< 'root:Pw 1'\\''x$y'", '{"password": "Pw 1\'x$y"}',
                     '{"p": "\\u0050w 1\'x$y", "o": 1}', "Pw\\ 1\\'x\\$y",
                     '"Pw 1\'x\\$y"', "kept: Pw-other", "\x1b[31mcolour\x9b"):
            log.line("err", line)
        log.scrub(password)
        data = self.home.read(path)
        self.assertEqual(data.count(b"********"), 5, data)
        for fragment in (b"1'x", b"1\\'x", b"0050w", b"x$y", b"x\\$y"):
            self.assertNotIn(fragment, data)
        self.assertIn(b"kept: Pw-other", data)
        self.assertIn(b"?[31mcolour?", data)         # a program's escapes: text, not actions


if __name__ == "__main__":
    unittest.main()
