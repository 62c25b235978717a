# -*- coding: utf-8 -*-
"""The manual backend and the operator's task finish / task fail."""

import os
import unittest

from helpers.support import HomeTestCase

PASSWORD = "S3cret-manual-pw!"


class ManualTest(HomeTestCase):
    in_process = True      # state/config/archive logic: main() in-process
    def setUp(self):
        HomeTestCase.setUp(self)
        self.task_id = self.home.ok("order", "1")["task_id"]

    def test_waits_for_the_operator(self):
        answer = self.home.ok("order_status", self.task_id)
        self.assertEqual(answer["status"], "in_progress")
        self.assertEqual(answer["message"], "waiting for the operator")

    def test_finish_with_a_password_from_stdin(self):
        result = self.home.run("task", "finish", self.task_id, "--server", "203.0.113.7",
                               "--no-check",
                               stdin=PASSWORD + "\n")
        self.assertEqual(result.code, 0, result)
        self.assertNotIn(PASSWORD.encode(), result.out + result.err)
        answer = self.home.ok("order_status", self.task_id)
        self.assertEqual(answer["status"], "finished")
        self.assertEqual(answer["server"], "203.0.113.7")
        self.assertEqual(answer["server_password"], PASSWORD)
        with open(self.home.log_path, "rb") as handle:
            log = handle.read()
        self.assertIn(b"finish task=" + self.task_id.encode(), log)
        self.assertNotIn(PASSWORD.encode(), log)

    def test_finish_without_password(self):
        self.home.run("task", "finish", self.task_id, "--server", "node7.example.com", "--no-check",
                      "--no-password")
        answer = self.home.ok("order_status", self.task_id)
        self.assertEqual((answer["status"], answer["server"], answer["server_password"]),
                         ("finished", "node7.example.com", ""))

    def test_finish_refuses_bad_input_and_changes_nothing(self):
        before = self.home.read(self.home.state_path)
        cases = [
            (["--server", "127.0.0.1", "--no-password"], 100),
            (["--server", "localhost", "--no-password"], 100),
            (["--server", "a b", "--no-password"], 100),
            (["--server", "-oProxyCommand=x", "--no-password"], 100),
            (["--server", "10.1.1.1", "--no-check"], 100),    # empty stdin: no password
        ]
        for extra, code in cases:
            result = self.home.run("task", "finish", self.task_id, *extra)
            self.assertError(result, code, "task finish", exit_code=2)
        self.assertError(self.home.run("task", "finish", "999", "--server", "10.1.1.1",
                                       "--no-check",
                                       "--no-password"), 102, "task finish")
        self.assertEqual(self.home.read(self.home.state_path), before)

    def test_the_task_is_checked_before_the_password_is_read(self):
        # no stdin at all: the missing or ended task is the error, not "no password"
        self.assertError(self.home.run("task", "finish", "999", "--server", "10.1.1.1",
                                       "--no-check"),
                         102, "task finish")
        self.home.run("task", "fail", self.task_id, "--message", "gone")
        self.assertError(self.home.run("task", "finish", self.task_id, "--server", "10.1.1.1",
                                       "--no-check"),
                         111, "task finish")

    def test_several_lines_on_stdin_are_refused(self):
        before = self.home.read(self.home.state_path)
        result = self.home.run("task", "finish", self.task_id, "--server", "203.0.113.7",
                               "--no-check",
                               stdin="first-pw\n\nsecond-pw\n")
        message = self.assertError(result, 100, "task finish", exit_code=2)
        self.assertIn("2 non-empty lines on stdin", message)
        self.assertNotIn(b"first-pw", result.err)
        self.assertEqual(self.home.read(self.home.state_path), before)
        result = self.home.run("task", "finish", self.task_id, "--server", "203.0.113.7",
                               "--no-check",
                               stdin="\r\nonly-pw\r\n\n")      # blank lines do not count
        self.assertEqual(result.code, 0, result)
        self.assertEqual(self.home.ok("order_status", self.task_id)["server_password"],
                         "only-pw")

    def test_a_utf8_password_under_any_locale(self):
        # Regression: under LANG=C, Python 3.6 read a Cyrillic password as
        # surrogates, and the save crashed (N199).
        password = "пароль-Ω-1"
        result = self.home.run("task", "finish", self.task_id, "--server", "203.0.113.7",
                               "--no-check",
                               stdin=password + "\n",
                               env={"LANG": "C", "LC_ALL": "C", "PYTHONIOENCODING": ""})
        self.assertEqual(result.code, 0, result)
        self.assertEqual(self.home.ok("order_status", self.task_id)["server_password"], password)

    def test_a_password_that_is_not_utf8_is_refused(self):
        before = self.home.read(self.home.state_path)
        result = self.home.run("task", "finish", self.task_id, "--server", "203.0.113.7",
                               "--no-check",
                               stdin=b"pass\xe9word\n")
        message = self.assertError(result, 100, "task finish", exit_code=2)
        self.assertIn("not UTF-8", message)
        self.assertEqual(self.home.read(self.home.state_path), before)

    def test_a_finished_task_cannot_be_finished_or_failed_again(self):
        self.home.run("task", "finish", self.task_id, "--server", "10.1.1.1",
                      "--no-check", "--no-password")
        before = self.home.read(self.home.state_path)
        self.assertError(self.home.run("task", "fail", self.task_id, "--message", "x"),
                         111, "task fail")
        self.assertError(self.home.run("task", "finish", self.task_id, "--server", "10.2.2.2",
                                       "--no-check",
                                       "--no-password"), 111, "task finish")
        self.assertEqual(self.home.read(self.home.state_path), before)

    def test_fail(self):
        result = self.home.run("task", "fail", self.task_id, "--message", "нет в наличии")
        self.assertEqual(result.code, 0, result)
        answer = self.home.ok("order_status", self.task_id)
        self.assertEqual(answer["status"], "error")
        self.assertEqual(answer["message"], "нет в наличии")
        self.assertError(self.home.run("task", "fail", self.task_id, "--message", " "),
                         100, "task fail", exit_code=2)

    def test_password_is_never_an_argument(self):
        result = self.home.run("task", "finish", self.task_id, "--server", "10.1.1.1", "--no-check",
                               "--password", PASSWORD)
        self.assertError(result, 100, "task finish", exit_code=2)
        self.assertFalse(os.path.exists(self.home.log_path) and
                         PASSWORD.encode() in self.home.read(self.home.log_path))


if __name__ == "__main__":
    unittest.main()
