# -*- coding: utf-8 -*-
"""The commands for people: tasks, task show, check (and who owns what it
checks), -v, and every command's --help."""

import json
import os
import sys
import unittest
from unittest import mock

from helpers.support import MANUAL_CONFIG, HomeTestCase, call_main, python_folder

PASSWORD = "Adm1n-pw-for-show"


class TasksTest(HomeTestCase):
    in_process = True      # state/config/archive logic: main() in-process
    def test_empty(self):
        result = self.home.run("tasks")
        self.assertEqual(result.code, 0)
        self.assertIn(b"no tasks yet", result.out)

    def test_table_and_json(self):
        first = self.home.ok("order", "1")["task_id"]
        second = self.home.ok("order", "big")["task_id"]
        self.home.run("task", "finish", first, "--server", "10.9.9.9", "--no-check", stdin=PASSWORD)
        result = self.home.run("tasks")
        lines = result.text.splitlines()
        self.assertEqual(lines[0].split(), ["ID", "CONFIG", "STATUS", "SERVER", "AGE", "MESSAGE"])
        self.assertEqual(lines[1].split()[:4], [first, "1", "finished", "10.9.9.9"])
        self.assertEqual(lines[2].split()[:4], [second, "big", "in_progress", "-"])
        self.assertNotIn(PASSWORD, result.text)
        listing = json.loads(self.home.run("tasks", "--json").text)["tasks"]
        self.assertEqual([t["id"] for t in listing], [first, second])
        self.assertEqual(listing[0]["server_password"], "********")

    def test_status_filter(self):
        first = self.home.ok("order", "1")["task_id"]
        second = self.home.ok("order", "big")["task_id"]
        self.home.run("task", "finish", first, "--server", "10.9.9.9", "--no-check", stdin=PASSWORD)
        lines = self.home.run("tasks", "--status", "in_progress").text.splitlines()
        self.assertEqual([line.split()[0] for line in lines[1:]], [second])
        listing = json.loads(self.home.run("tasks", "--status", "finished", "--json").text)
        self.assertEqual([t["id"] for t in listing["tasks"]], [first])
        empty = self.home.run("tasks", "--status", "error").text
        self.assertIn("no error tasks", empty)
        self.assertNotIn("--all", empty)            # there is no archive to look in
        self.assertError(self.home.run("tasks", "--status", "done"), 100, "tasks", exit_code=2)

    def test_compact_names_the_tasks_still_holding_a_password(self):
        first = self.home.ok("order", "1")["task_id"]
        second = self.home.ok("order", "1")["task_id"]
        self.home.run("task", "finish", first, "--server", "10.9.9.9", "--no-check", stdin=PASSWORD)
        self.home.run("task", "fail", second, "--message", "no stock")
        result = self.home.run("state", "compact", "--days", "0")
        self.assertIn("moved 1 task(s)", result.text)
        self.assertIn("1 task(s) stay", result.text)
        self.assertIn("1 of them still hold a root password (%s)" % first, result.text)
        self.assertNotIn(PASSWORD, result.text)
        # the archive holds ended tasks only: no hint at it for in_progress
        third = self.home.ok("order", "1")["task_id"]
        self.assertIn("tasks --all", self.home.run("tasks").text)
        pending = self.home.run("tasks", "--status", "in_progress").text
        self.assertEqual(pending.splitlines()[1].split()[0], third)
        self.assertNotIn("--all", pending)

    def test_show_masks_the_password_unless_asked(self):
        task_id = self.home.ok("order", "1")["task_id"]
        self.home.run("task", "finish", task_id, "--server", "10.9.9.9",
                      "--no-check", stdin=PASSWORD)
        shown = self.home.run("task", "show", task_id).text
        self.assertIn("status:          finished", shown)
        self.assertNotIn(PASSWORD, shown)
        self.assertIn(PASSWORD, self.home.run("task", "show", task_id, "--show-password").text)
        as_json = json.loads(self.home.run("task", "show", task_id, "--json").text)
        self.assertEqual(as_json["server"], "10.9.9.9")
        self.assertError(self.home.run("task", "show", "77"), 102, "task show")

    def test_show_of_a_waiting_manual_task_names_what_finishes_or_fails_it(self):
        task_id = self.home.ok("order", "1")["task_id"]
        shown = self.home.run("task", "show", task_id).text
        self.assertIn("next:            `provider task finish %s --server ADDR` once the server "
                      "is ready (root password on stdin, or --no-password), or `provider task "
                      "fail %s --message TEXT` gives it up" % (task_id, task_id), shown)
        self.home.run("task", "fail", task_id, "--message", "no stock")
        self.assertNotIn("next:", self.home.run("task", "show", task_id).text)
        self.assertNotIn("next", json.loads(self.home.run("task", "show", task_id, "--json").text))


class CheckTest(HomeTestCase):
    in_process = True      # state/config/archive logic: main() in-process

    def setUp(self):
        super(CheckTest, self).setUp()
        patcher = mock.patch.dict(os.environ)     # python3 on PATH: this interpreter, as
        patcher.start()                           # bin/NAME's header would find it
        self.addCleanup(patcher.stop)
        os.environ.pop("PYENV_ROOT", None)
        os.environ["PATH"] = python_folder() + os.pathsep + os.environ.get("PATH", "")

    def test_a_good_setup(self):
        self.home.ok("order", "1")
        result = self.home.run("check")
        self.assertEqual(result.code, 0, result)
        self.assertIn("everything looks fine", result.text)
        self.assertNotIn("FAIL", result.text)

    def test_every_problem_is_reported(self):
        self.home.write_config(dict(MANUAL_CONFIG, enabled=False))
        os.chmod(self.home.config_path, 0o644)
        result = self.home.run("check")
        self.assertEqual(result.code, 1)
        self.assertIn("FAIL config permissions: mode 644 is more open than 600", result.text)
        self.assertIn("FAIL provider is DISABLED", result.text)
        self.assertIn("2 problems found", result.text)

    def test_json_gives_the_same_checks_with_their_levels(self):
        numbered = dict(MANUAL_CONFIG, configurations=[{"id": "1", "descr": "small"}])
        self.home.write_config(dict(numbered, enabled=False))
        os.chmod(self.home.config_path, 0o644)
        text = self.home.run("check").text.splitlines()
        result = self.home.run("check", "--json")
        self.assertEqual(result.code, 1, result)
        answer = json.loads(result.out.decode("utf-8"))
        self.assertEqual(answer["problems"], 2)
        self.assertEqual(["%s %s" % ({"ok": "ok  ", "warn": "WARN"}.get(c["level"], "FAIL"),
                                     c["text"]) for c in answer["checks"]], text[:-1])
        self.assertEqual(set(c["level"] for c in answer["checks"]), {"ok", "fail"})
        os.chmod(self.home.config_path, 0o600)
        self.home.write_config(numbered)
        result = self.home.run("check", "--json")
        self.assertEqual((result.code, json.loads(result.out.decode("utf-8"))["problems"]),
                         (0, 0), result)

    def test_one_line_per_problem_each_saying_what_to_do(self):
        self.home.ok("order", "1")
        var = os.path.dirname(self.home.state_path)
        os.chmod(var, 0o777)
        result = self.home.run("check")
        failed = [line for line in result.text.splitlines() if line.startswith("FAIL")]
        self.assertEqual(len(failed), 1, result.text)        # var/ once, not twice
        self.assertIn("fix: chmod 700 %s" % var, failed[0])
        self.assertIn("1 problem found: each FAIL line says what to do", result.text)
        os.chmod(var, 0o700)
        os.unlink(self.home.config_path)
        failed = [line for line in self.home.run("check").text.splitlines()
                  if line.startswith("FAIL")]
        self.assertEqual(failed, ["FAIL no config at %s (write one: ./install.sh --config FILE "
                                  "NAME, or start from examples/); until then `help` answers "
                                  "disabled and bx-provider refuses every call of this provider, "
                                  "order_status of orders in flight included"
                                  % self.home.config_path])

    def test_says_which_home_and_config_and_why(self):
        text = self.home.run("check").text
        self.assertIn("ok   home %s (the folder above bin/ of %s, the path the program was "
                      "called by)" % (self.home.dir, self.home.script), text)
        self.assertIn("ok   config %s (HOME/etc/provider.conf)" % self.home.config_path, text)
        self.assertNotIn("symbolic link", text)
        # a link in a PATH folder: the home silently moved to the link's folder, said now
        link = os.path.join(self.home.dir, "provider")
        os.symlink(self.home.script, link)
        result = call_main(["check"], link)
        self.assertIn("WARN the program %s is a symbolic link to %s: the home is taken from "
                      "the link's path" % (link, self.home.script), result.text)
        self.assertIn("home %s (the folder of %s" % (self.home.dir, link), result.text)
        result = call_main(["check", "--home", self.home.dir], self.home.script)
        self.assertIn("home %s (--home)" % self.home.dir, result.text)

    def test_descriptions_that_the_caller_would_mangle_are_warnings(self):
        self.home.write_config(dict(MANUAL_CONFIG, configurations=[
            {"id": "1", "descr": "2 CPU <b>fast</b> & cheap"},
            {"id": "2", "descr": "Tariff: small"}, {"id": "3", "descr": "plain"}]))
        result = self.home.run("check")
        self.assertEqual(result.code, 0, result)
        warned = [line for line in result.text.splitlines() if line.startswith("WARN")]
        self.assertEqual(len(warned), 2, result.text)
        self.assertIn("configuration 1: descr holds <, > or &: the web page inserts it as "
                      "raw HTML", warned[0])
        self.assertIn("configuration 2: descr holds \":\"", warned[1])
        self.assertIn("everything looks fine (2 warnings: read the WARN lines)", result.text)

    def test_an_id_that_is_not_a_number_is_a_warning(self):
        self.home.write_config(dict(MANUAL_CONFIG, configurations=[
            {"id": "1", "descr": "small"}, {"id": "cx42", "descr": "big"}]))
        result = self.home.run("check")
        self.assertEqual(result.code, 0, result)
        warned = [line for line in result.text.splitlines() if line.startswith("WARN")]
        self.assertEqual(warned, ["WARN configuration cx42: the id is not a number: bx-provider's "
                                  "plain (non-JSON) output sorts ids as numbers and prints Perl "
                                  "warnings for others (use \"1\", \"2\", ...)"], result.text)

    def wrapper_python3(self, folder):
        """folder/python3: a script that runs this interpreter, as a pyenv shim does."""
        os.mkdir(folder)
        path = os.path.join(folder, "python3")
        with open(path, "w") as handle:
            handle.write("#!/bin/sh\nexec %s \"$@\"\n" % sys.executable)
        os.chmod(path, 0o755)
        return path

    def test_a_python3_on_path_that_is_a_wrapper_script_is_a_warning(self):
        shim = self.wrapper_python3(os.path.join(self.home.dir, "shims"))
        os.environ["PATH"] = os.path.dirname(shim) + os.pathsep + os.environ["PATH"]
        result = self.home.run("check")
        self.assertEqual(result.code, 0, result)
        self.assertIn("WARN python3 on PATH, %s, is a script (a wrapper such as a pyenv shim), "
                      "not Python itself: bin/NAME starts it on every call" % shim, result.text)
        # run through pyenv's shim: pyenv put its own folders first, the shell had not
        root = os.path.join(self.home.dir, "pyenv")
        os.environ["PYENV_ROOT"] = root
        os.environ["PATH"] = os.pathsep.join((os.path.join(root, "versions", "3.x", "bin"),
                                              os.path.join(root, "libexec"), python_folder(),
                                              os.environ["PATH"]))
        self.assertIn("ok   python3 on PATH: %s" % os.path.join(python_folder(), "python3"),
                      self.home.run("check").text)
        os.environ["PATH"] = os.pathsep.join((os.path.join(root, "versions", "3.x", "bin"),
                                              os.path.dirname(shim), os.environ["PATH"]))
        self.assertIn("WARN python3 on PATH, %s, is a script" % shim, self.home.run("check").text)

    def test_a_broken_or_disabled_config_says_the_caller_refuses_orders_in_flight(self):
        self.home.write_config(b'{"enabled": true,}')
        failed = [line for line in self.home.run("check").text.splitlines()
                  if line.startswith("FAIL")]
        self.assertIn("a trailing comma at line 1 column 17", failed[0])
        self.assertTrue(failed[0].endswith("; until then `help` answers disabled and bx-provider "
                                           "refuses every call of this provider, order_status of "
                                           "orders in flight included"), failed[0])
        self.home.write_config(dict(MANUAL_CONFIG, enabled=False))
        self.assertIn("FAIL provider is DISABLED: the web interface hides it and bx-provider "
                      "refuses every call, order_status of orders in flight included",
                      self.home.run("check").text)

    def test_broken_config_and_damaged_state(self):
        self.home.write_config({"enabled": True})
        os.makedirs(os.path.dirname(self.home.state_path), 0o700)
        with open(self.home.state_path, "w") as handle:
            handle.write("{")
        result = self.home.run("check")
        self.assertEqual(result.code, 1)
        self.assertIn("$: missing key 'backend'", result.text)
        self.assertIn("is not valid JSON", result.text)


class VerboseTest(HomeTestCase):
    in_process = True      # state/config/archive logic: main() in-process

    def verbose(self, *argv):
        """stderr of `-v ARGV`, whose stdout must still be exactly one JSON object."""
        result = self.home.run("-v", *argv)
        result.json                                  # raises unless one object
        return result.err.decode("utf-8")

    def test_every_call_says_what_it_read_and_decided(self):
        err = self.verbose("help")
        self.assertIn("debug: help: home %s (the folder above bin/" % self.home.dir, err)
        self.assertIn("config %s (HOME/etc/provider.conf)" % self.home.config_path, err)
        self.assertIn("debug: config %s read: backend manual, 2 configuration(s), enabled"
                      % self.home.config_path, err)
        self.assertIn("debug: status: enabled", err)
        self.assertIn("debug: configs: home", self.verbose("configs"))
        task_id = self.home.ok("order", "1")["task_id"]
        err = self.verbose("order_status", task_id)
        self.assertIn("debug: task %s read from %s: status in_progress" % (
            task_id, self.home.state_path), err)
        self.assertIn("debug: task %s: the manual backend looked: no change" % task_id, err)
        self.home.run("task", "finish", task_id, "--server", "10.9.9.9",
                      "--no-check", stdin=PASSWORD)
        err = self.verbose("order_status", task_id)
        self.assertIn("task %s has ended: answered from the state" % task_id, err)
        self.assertNotIn(PASSWORD, err)
        err = self.verbose("order_status", "99")
        self.assertIn("task 99: in neither %s nor the archive" % self.home.state_path, err)
        self.assertIn("debug: order_status failed (exit 1): order_status error N102", err)
        self.home.write_config({"enabled": True})
        err = self.verbose("help")
        self.assertIn("not usable: the config %s has 2 problems: $: missing key 'backend'"
                      % self.home.config_path, err)
        self.assertIn("debug: status: disabled: ", err)


@unittest.skipUnless(os.geteuid() == 0, "needs root to chown")
class CheckOwnershipTest(HomeTestCase):
    in_process = True      # state/config/archive logic: main() in-process
    def test_check_uses_the_same_trusted_owners_as_the_state(self):
        # The home's owner (bitrix, after bx-provider's chown) is trusted...
        os.chown(self.home.dir, 65534, 65534)
        os.chown(self.home.config_path, 65534, 65534)
        result = self.home.run("check")
        self.assertIn("ok   config permissions", result.text)
        # ...another user is not, even for root.
        os.chown(self.home.dir, 0, 0)
        result = self.home.run("check")
        self.assertEqual(result.code, 1)
        self.assertIn("FAIL the config %s is owned by uid 65534" % self.home.config_path,
                      result.text)                  # refused, not only reported


class HelpTest(HomeTestCase):
    in_process = True

    def parsers(self):
        """(command words, parser) of every command and subcommand argparse knows."""
        import argparse
        from helpers.support import load_module
        pending = [((), load_module().build_parser("provider"))]
        while pending:
            words, parser = pending.pop()
            yield words, parser
            for action in parser._actions:
                if isinstance(action, argparse._SubParsersAction):
                    for name, sub in action.choices.items():
                        pending.append((words + (name,), sub))

    def test_every_command_has_a_description_and_explains_each_argument(self):
        seen = []
        for words, parser in self.parsers():
            seen.append(" ".join(words))
            self.assertTrue(parser.description, words)
            for action in parser._actions:
                if action.option_strings or action.dest == "help":
                    self.assertTrue(action.help, (words, action.option_strings))
                else:
                    self.assertTrue(action.help, (words, action.dest))
        for command in ("servers", "task show", "task finish", "state repair", "order_status"):
            self.assertIn(command, seen)

    def test_task_show_help_says_what_the_id_is(self):
        result = self.home.run("task", "show", "--help")
        self.assertEqual(result.code, 0)
        self.assertIn("the task's id, as `tasks` lists it", " ".join(result.out.decode().split()))

    def test_the_command_table_is_the_one_list_of_commands(self):
        """COMMANDS gives the parser its commands; refuse_old_python (which runs before the
        table exists, on any Python) and the protocol's options name the same ones."""
        from helpers.support import load_module
        module = load_module()
        seen = set(" ".join(words) for words, parser in self.parsers()) - {""}
        shown = set(name for name, caller, handler, text, args in module.COMMANDS
                    if caller != module.HIDDEN)
        self.assertEqual(seen, shown)
        self.assertEqual(list(module.PROTOCOL_OPTIONS), [
            name for name, caller, handler, text, args in module.COMMANDS
            if caller == module.PROTOCOL])
        self.assertEqual(module.COMMAND_WORDS, module.PEOPLE_COMMANDS | {"_worker"} |
                         set(module.PROTOCOL_OPTIONS))
        import io
        import contextlib
        for name in module.HANDLERS:        # every command, as refuse_old_python names it
            out, err = io.StringIO(), io.StringIO()
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                self.assertEqual(module.refuse_old_python(name.split() + ["7"]), 1)
            said = err.getvalue() or json.loads(out.getvalue())["error_message"]
            self.assertTrue(said.startswith(name + " error N120"), said)


if __name__ == "__main__":
    unittest.main()
