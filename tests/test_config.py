# -*- coding: utf-8 -*-
"""Config validation: every problem named with its JSON path."""

import json
import unittest

from helpers.support import MANUAL_CONFIG, HomeTestCase, load_module

provider = load_module()


def with_changes(**top):
    config = json.loads(json.dumps(MANUAL_CONFIG))
    config.update(top)
    return config


class ValidateTest(unittest.TestCase):
    def problems(self, config):
        return provider.validate_config(config)

    def test_the_example_is_valid(self):
        self.assertEqual(self.problems(MANUAL_CONFIG), [])

    def test_not_an_object(self):
        self.assertEqual(self.problems([]), ["$: the config must be a JSON object, not array"])

    def test_missing_keys(self):
        self.assertEqual(self.problems({}), ["$: missing key 'enabled'",
                                             "$: missing key 'backend'",
                                             "$: missing key 'configurations'"])

    def test_wrong_types(self):
        problems = self.problems({"enabled": "yes", "backend": [], "configurations": {},
                                  "lock_wait": True})
        self.assertIn("$.enabled: must be a boolean, not string", problems)
        self.assertIn("$.backend: must be an object, not array", problems)
        self.assertIn("$.configurations: must be an array, not object", problems)
        self.assertIn("$.lock_wait: must be a number, not boolean", problems)

    def test_unknown_keys_are_named_but_comments_allowed(self):
        problems = self.problems(with_changes(enabeld=True, _comment="fine"))
        self.assertEqual(len(problems), 1)
        self.assertTrue(problems[0].startswith("$.enabeld: unknown key"))

    def test_backend_type(self):
        self.assertEqual(self.problems(with_changes(backend={})),
                         ["$.backend: missing key 'type' (one of: %s)"
                          % ", ".join(sorted(provider.BACKENDS))])
        problems = self.problems(with_changes(backend={"type": "aws"}))
        self.assertTrue(problems[0].startswith('$.backend.type: unknown backend "aws"'))
        problems = self.problems(with_changes(backend={"type": "manual", "extra": 1}))
        self.assertTrue(problems[0].startswith("$.backend.extra: unknown key"))

    def test_configuration_problems(self):
        configurations = [
            {"id": "1", "descr": "one"},
            {"id": "1", "descr": "again"},
            {"id": "bad id", "descr": "x"},
            {"id": "x" * 65, "descr": "x"},
            {"id": 7, "descr": "x"},
            {"descr": ""},
            "nope",
            {"id": "ok", "descr": "x", "cpu": 2},
            {"id": "-h", "descr": "would reach the plugin as `order -h`"},
            {"id": ".hidden", "descr": "x"},
        ]
        problems = self.problems(with_changes(configurations=configurations))
        expected = [
            '$.configurations[1].id: duplicate id "1" (also at $.configurations[0])',
            '$.configurations[2].id: "bad id" is not 1-64 letters, digits, \'.\', \'_\', \'-\' starting with a letter or digit',
            "$.configurations[4].id: must be a string, not integer",
            "$.configurations[5]: missing key 'id'",
            "$.configurations[5].descr: must not be empty",
            "$.configurations[6]: must be an object, not string",
            '$.configurations[8].id: "-h" is not 1-64 letters, digits, \'.\', \'_\', \'-\' starting with a letter or digit',
            '$.configurations[9].id: ".hidden" is not 1-64 letters, digits, \'.\', \'_\', \'-\' starting with a letter or digit',
        ]
        for line in expected:
            self.assertIn(line, problems)
        self.assertTrue(any(p.startswith("$.configurations[3].id: ") for p in problems))
        self.assertTrue(any(p.startswith("$.configurations[7].cpu: unknown key")
                            for p in problems))
        self.assertEqual(len(problems), 10, problems)

    def test_lock_wait_must_be_positive(self):
        self.assertEqual(self.problems(with_changes(lock_wait=0)),
                         ["$.lock_wait: must be greater than 0"])


class ConfigFileTest(HomeTestCase):
    in_process = True      # state/config/archive logic: main() in-process
    def test_all_problems_reach_the_error_message(self):
        self.home.write_config({"enabled": 1, "backend": {"type": "manual"},
                                "configurations": [{"id": "", "descr": "x"}]})
        message = self.assertError(self.home.run("configs"), 104, "configs")
        self.assertIn("2 problems", message)
        self.assertIn("$.enabled: must be a boolean", message)
        self.assertIn("$.configurations[0].id", message)

    def test_not_utf8(self):
        self.home.write_config(b'{"enabled": true, "x": "\xff"}')
        self.assertError(self.home.run("order", "1"), 104, "order")

    def test_a_trailing_comma_is_named_with_its_place(self):
        self.home.write_config(b'{"enabled": true, "backend": {"type": "manual"},\n'
                               b' "configurations": [{"id": "1", "descr": "x"},]}')
        message = self.assertError(self.home.run("configs"), 104, "configs")
        self.assertIn("a trailing comma at line 2 column 46, before ']': JSON allows none", message)
        self.home.write_config(b'{"enabled": true,\n "backend": {"type": "manual",},\n'
                               b' "configurations": []}')
        message = self.assertError(self.home.run("configs"), 104, "configs")
        self.assertIn("a trailing comma at line 2 column 30, before '}'", message)

    def test_a_comment_is_named_with_the_way_to_annotate(self):
        for comment in (b"// the backend", b"/* the backend */", b"# the backend"):
            self.home.write_config(b'{"enabled": true,\n  ' + comment + b'\n'
                                   b' "backend": {"type": "manual"}, "configurations": []}')
            message = self.assertError(self.home.run("configs"), 104, "configs")
            self.assertIn('a comment at line 2 column 3: JSON has no comments: use a "_comment" key',
                          message)

    def test_other_syntax_errors_keep_the_parser_s_words(self):
        self.home.write_config(b'{"enabled" true}')
        message = self.assertError(self.home.run("configs"), 104, "configs")
        self.assertIn("Expecting ':' delimiter: line 1 column 12", message)



class ExamplesTest(unittest.TestCase):
    def test_every_example_config_is_valid(self):
        import glob
        import os
        from helpers.support import ROOT
        paths = glob.glob(os.path.join(ROOT, "examples", "*.conf"))
        self.assertTrue(paths)
        for path in paths:
            with open(path, "rb") as handle:
                data = json.loads(handle.read().decode("utf-8"))
            self.assertEqual(provider.validate_config(data), [], path)


if __name__ == "__main__":
    unittest.main()
