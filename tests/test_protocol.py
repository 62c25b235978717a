# -*- coding: utf-8 -*-
"""The four options the caller uses: help, configs, order, order_status; the
command line around them, and the paths (the home found from bin/, --home,
--config and their environment variables)."""

import json
import os
import subprocess
import unittest

from helpers.support import MANUAL_CONFIG, PYTHON, SCRIPT, Home, HomeTestCase, caller_parse


class ProtocolCase(HomeTestCase):
    plain = True           # the protocol suite execs a fresh bin/NAME itself, as the caller does


class HelpTest(ProtocolCase):
    def test_enabled(self):
        answer = self.home.ok("help")
        self.assertEqual(answer, {"options": ["help", "configs", "order", "order_status"],
                                  "status": "enabled"})

    def test_disabled_without_config_says_where_it_looked(self):
        os.unlink(self.home.config_path)
        answer = self.home.ok("help")
        self.assertEqual(answer["status"], "disabled")
        self.assertIn(self.home.config_path, answer["message"])
        self.assertIn("no config", answer["message"])

    def test_disabled_in_config(self):
        config = dict(MANUAL_CONFIG, enabled=False)
        self.home.write_config(config)
        answer = self.home.ok("help")
        self.assertEqual(answer["status"], "disabled")
        self.assertIn("disabled in", answer["message"])

    def test_broken_config_names_the_json_path(self):
        config = json.loads(json.dumps(MANUAL_CONFIG))
        config["configurations"][1]["id"] = "1"
        self.home.write_config(config)
        answer = self.home.ok("help")
        self.assertEqual(answer["status"], "disabled")
        self.assertIn('$.configurations[1].id: duplicate id "1"', answer["message"])

    def test_invalid_json_config(self):
        self.home.write_config(b'{"enabled": true,')
        answer = self.home.ok("help")
        self.assertEqual(answer["status"], "disabled")
        self.assertIn("not valid JSON", answer["message"])

    def test_help_never_touches_the_state(self):
        self.home.ok("help")
        self.assertFalse(os.path.exists(os.path.dirname(self.home.state_path)))
        self.assertFalse(os.path.exists(self.home.log_path))


class ConfigsTest(ProtocolCase):
    def test_lists_ids_and_descriptions(self):
        answer = self.home.ok("configs")
        self.assertEqual(answer["status"], "enabled")
        self.assertEqual(answer["configurations"],
                         [{"id": c["id"], "descr": c["descr"]}
                          for c in MANUAL_CONFIG["configurations"]])

    def test_cyrillic_is_raw_utf8_under_the_c_locale(self):
        result = self.home.run("configs", env={"LANG": "C", "LC_ALL": "C",
                                               "PYTHONIOENCODING": ""})
        self.assertIn(u"1 месяц".encode("utf-8"), result.out)
        self.assertNotIn(b"\\u", result.out)
        self.assertEqual(result.json["configurations"][0]["descr"],
                         MANUAL_CONFIG["configurations"][0]["descr"])

    def test_disabled_is_an_error(self):
        self.home.write_config(dict(MANUAL_CONFIG, enabled=False))
        self.assertError(self.home.run("configs"), 103, "configs")

    def test_no_config_is_an_error(self):
        os.unlink(self.home.config_path)
        message = self.assertError(self.home.run("configs"), 103, "configs")
        self.assertIn(self.home.config_path, message)

    def test_broken_config_is_an_error(self):
        self.home.write_config({"enabled": True, "backend": {"type": "nope"},
                                "configurations": []})
        message = self.assertError(self.home.run("configs"), 104, "configs")
        self.assertIn("$.backend.type: unknown backend", message)


class OrderTest(ProtocolCase):
    def test_answers_a_decimal_task_id(self):
        answer = self.home.ok("order", "1")
        self.assertEqual(list(answer), ["task_id"])
        self.assertTrue(answer["task_id"].isdigit())

    def test_ids_increase(self):
        first = int(self.home.ok("order", "1")["task_id"])
        second = int(self.home.ok("order", "big")["task_id"])
        self.assertGreater(second, first)

    def test_unknown_configuration_changes_nothing(self):
        self.home.ok("order", "1")
        before = self.home.read(self.home.state_path)
        message = self.assertError(self.home.run("order", "42"), 101, "order")
        self.assertIn("no configuration 42", message)
        self.assertEqual(self.home.read(self.home.state_path), before)

    def test_disabled_provider_takes_no_order(self):
        self.home.write_config(dict(MANUAL_CONFIG, enabled=False))
        self.assertError(self.home.run("order", "1"), 103, "order")
        self.assertFalse(os.path.exists(self.home.state_path))

    def test_missing_and_extra_arguments(self):
        self.assertError(self.home.run("order"), 100, "order", exit_code=2)
        self.assertError(self.home.run("order", "1", "2"), 100, "order", exit_code=2)
        self.assertFalse(os.path.exists(self.home.state_path))


class OrderStatusTest(ProtocolCase):
    def test_pending_task(self):
        task_id = self.home.ok("order", "1")["task_id"]
        answer = self.home.ok("order_status", task_id)
        self.assertEqual(answer, {"task_id": task_id, "status": "in_progress", "server": "",
                                  "server_password": "",
                                  "message": "waiting for the operator"})

    def test_unknown_task(self):
        message = self.assertError(self.home.run("order_status", "24"), 102, "order_status")
        self.assertEqual(message, "order_status error N102, no task 24")

    def test_ids_that_are_not_canonical_decimals(self):
        task_id = self.home.ok("order", "1")["task_id"]
        for bad in ("0" + task_id, "-" + task_id, task_id + ".0", "", " " + task_id, "x",
                    u"١", "1" * 30):
            self.assertError(self.home.run("order_status", bad), 102, "order_status")

    def test_missing_argument(self):
        self.assertError(self.home.run("order_status"), 100, "order_status", exit_code=2)


class CommandLineTest(ProtocolCase):
    def test_unknown_option(self):
        for argv in (["bogus"], ["init"], ["--bogus"], ["help", "extra"]):
            self.assertError(self.home.run(*argv), 100, exit_code=2)

    def test_no_arguments_print_the_usage(self):
        result = self.home.run()
        self.assertEqual(result.code, 2, result)
        self.assertIn("order_status", result.text)
        self.assertIn("usage: provider", result.text)

    def test_peoples_errors_are_text_on_stderr_unless_json(self):
        for argv, code, action in ((["tasks", "--status", "bogus"], 2, "tasks"),
                                   (["task", "show", "99"], 1, "task show"),
                                   (["task"], 2, "task"), (["state"], 2, "state"),
                                   (["pool"], 2, "pool")):
            result = self.home.run(*argv)
            self.assertEqual(result.out, b"", result)
            self.assertEqual(result.code, code, result)
            self.assertTrue(result.err.decode().startswith(action + " error N"), result)
        result = self.home.run("task", "show", "99", "--json")
        self.assertIn("task show error N102, ", result.json["error_message"])

    def test_pretty_is_still_one_object(self):
        result = self.home.run("--pretty", "configs")
        self.assertIn(b"\n  ", result.out)
        self.assertEqual(result.json["status"], "enabled")

    def test_human_help_and_version(self):
        result = self.home.run("--help")
        self.assertEqual(result.code, 0)
        self.assertIn(b"order_status", result.out)
        result = self.home.run("--version")
        self.assertEqual(result.code, 0)
        self.assertTrue(result.out.startswith(b"provider.py "))

    def test_a_bug_in_a_handler_is_still_one_json_object(self):
        self.home.ok("order", "1")
        code = ("import importlib.util, sys\n"
                "spec = importlib.util.spec_from_file_location('p', %r)\n"
                "m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m)\n"
                "def boom(provider, args):\n"
                "    print('stray output')\n"
                "    raise KeyError('surprise')\n"
                "m.HANDLERS['order_status'] = boom\n"
                "sys.exit(m.main(sys.argv[1:], prog=%r))\n" % (SCRIPT, self.home.script))
        for extra in ([], ["-v"]):
            proc = subprocess.Popen([PYTHON, "-c", code] + extra + ["order_status", "1"],
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                    env=self.home.env())
            out, err = proc.communicate(timeout=60)
            answer = caller_parse(out)
            self.assertEqual(answer["error"], 1)
            self.assertIn("N199", answer["error_message"])
            self.assertIn("KeyError", answer["error_message"])
            self.assertEqual(proc.returncode, 1)
            self.assertIn(b"stray output", err)
            self.assertEqual(b"Traceback" in err, bool(extra))
        with open(self.home.log_path) as handle:
            self.assertIn("surprise", handle.read())

    def run_patched(self, patch, *argv):
        """Run main() in a child whose module got `patch` (code using `m`) applied."""
        code = ("import importlib.util, sys\n"
                "spec = importlib.util.spec_from_file_location('p', %r)\n"
                "m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m)\n"
                "%s\n"
                "sys.exit(m.main(sys.argv[1:], prog=%r))\n" % (SCRIPT, patch, self.home.script))
        proc = subprocess.Popen([PYTHON, "-c", code] + list(argv), stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, env=self.home.env())
        out, err = proc.communicate(timeout=60)
        return proc.returncode, caller_parse(out), err

    def test_a_bug_in_launch_fails_the_task_it_made(self):
        patch = ("def launch(self, task, configuration):\n"
                 "    raise ValueError('launch bug')\n"
                 "m.ManualBackend.launch = launch")
        code, answer, err = self.run_patched(patch, "order", "1")
        self.assertEqual(code, 1)
        self.assertIn("N199", answer["error_message"])
        task = self.home.state()["tasks"]["1"]
        self.assertEqual(task["status"], "error")
        self.assertIn("ValueError", task["message"])

    def test_an_error_with_an_odd_code_is_still_one_json_object(self):
        patch = ("def boom(provider, args):\n"
                 "    raise m.ProviderError('E-odd', 'odd code')\n"
                 "m.HANDLERS['help'] = boom")
        code, answer, err = self.run_patched(patch, "help")
        self.assertEqual(code, 1)
        self.assertEqual(answer["error_message"], "help error NE-odd, odd code")


class PathsTest(unittest.TestCase):
    def test_home_from_bin_folder_and_overrides(self):
        home = Home()
        self.addCleanup(home.cleanup)
        other = Home(dict(MANUAL_CONFIG, configurations=[{"id": "x", "descr": "other"}]))
        self.addCleanup(other.cleanup)
        self.assertEqual(home.ok("configs")["configurations"][0]["id"], "1")
        by_flag = home.ok("--config", other.config_path, "configs")
        self.assertEqual(by_flag["configurations"][0]["id"], "x")
        by_env = home.ok("configs", env={"BXPROVIDER_CONFIG": other.config_path})
        self.assertEqual(by_env["configurations"][0]["id"], "x")
        by_home = home.ok("configs", env={"BXPROVIDER_HOME": other.dir})
        self.assertEqual(by_home["configurations"][0]["id"], "x")
        home.ok("--home", other.dir, "order", "x")
        self.assertTrue(os.path.exists(other.state_path))
        self.assertFalse(os.path.exists(home.state_path))

    def test_a_home_path_that_is_not_ascii_under_the_c_locale(self):
        # Regression: Python 3.6 under LANG=C answered "no config at /tmp/??????/..."
        import shutil
        import tempfile
        base = tempfile.mkdtemp(prefix="bxprov-")
        self.addCleanup(shutil.rmtree, base)
        home = os.path.join(base.encode(), "провайдер".encode("utf-8"))
        os.makedirs(os.path.join(home, b"bin"))
        script = os.path.join(home, b"bin", b"demo")
        shutil.copy(SCRIPT.encode(), script)
        env = dict(os.environ, LANG="C", LC_ALL="C", PYTHONIOENCODING="")
        for key in ("BXPROVIDER_HOME", "BXPROVIDER_CONFIG"):
            env.pop(key, None)
        out = subprocess.check_output([PYTHON.encode(), script, b"help"], env=env)
        answer = caller_parse(out)
        self.assertEqual(answer["message"],
                         "no config at %s/etc/demo.conf" % home.decode("utf-8"))

    def test_name_comes_from_the_invoked_path_not_the_link_target(self):
        home = Home(name="hoster")
        self.addCleanup(home.cleanup)
        link_home = Home(config=MANUAL_CONFIG, name="linked", copy_script=False)
        self.addCleanup(link_home.cleanup)
        os.symlink(home.script, link_home.script)
        link_home.ok("order", "1")
        self.assertTrue(os.path.exists(link_home.state_path))
        self.assertFalse(os.path.exists(home.state_path))


if __name__ == "__main__":
    unittest.main()
