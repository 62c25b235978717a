# -*- coding: utf-8 -*-
"""Hostile config: every known key given every wrong JSON type, every required
key missing -> a problem naming its JSON path; never a crash, never a hang."""

import json
import time
import unittest

from helpers.robust_support import BACKEND_CASES, figure, with_config
from helpers.support import MANUAL_CONFIG, Home, HomeTestCase, load_module

provider = load_module()

SAMPLES = {"null": None, "boolean": True, "integer": 7, "number": 1.5, "string": "x",
           "array": [], "object": {}}
ACCEPTS = {"string": ("string",), "boolean": ("boolean",), "object": ("object",),
           "array": ("array",), "integer": ("integer",), "number": ("integer", "number")}


def known_paths(case):
    """(json path, setter, kind) for every key the config may hold with this backend."""
    backend = provider.backend_class(case.config["backend"]["type"])
    out = []
    for key, (kind, _) in provider.Config.TOP_FIELDS.items():
        out.append(("$.%s" % key, lambda c, v, k=key: c.__setitem__(k, v), kind))
    for key, (kind, _) in dict(backend.SETTINGS, type=("string", None)).items():
        out.append(("$.backend.%s" % key, lambda c, v, k=key: c["backend"].__setitem__(k, v),
                    kind))
    item = dict(backend.PARAMETERS, id=("string", None), descr=("string", None))
    for key, (kind, _) in item.items():
        out.append(("$.configurations[0].%s" % key,
                    lambda c, v, k=key: c["configurations"][0].__setitem__(k, v), kind))
    return out


class HostileConfigTest(unittest.TestCase):
    def test_every_key_with_every_wrong_type_is_named_by_path(self):
        checked = 0
        for case in BACKEND_CASES:
            for path, setter, kind in known_paths(case):
                for sample_kind, sample in SAMPLES.items():
                    if sample_kind in ACCEPTS[kind]:
                        continue
                    config = with_config(case.config)
                    setter(config, sample)
                    problems = provider.validate_config(config)
                    where = "%s=%r" % (path, sample)
                    self.assertTrue(problems, where)
                    if path == "$.backend.type":
                        self.assertTrue(problems[0].startswith(path + ": unknown backend"), where)
                    else:
                        self.assertIn(path, " ".join(problems), where)
                    checked += 1
        figure("hostile-config wrong-type cases=%d failures=0" % checked)

    def test_every_required_key_missing_is_named(self):
        for case in BACKEND_CASES:
            for key in ("enabled", "backend", "configurations"):
                config = with_config(case.config)
                del config[key]
                self.assertIn("$: missing key %r" % key, provider.validate_config(config))
            for key in ("id", "descr"):
                config = with_config(case.config)
                del config["configurations"][0][key]
                self.assertIn("$.configurations[0]: missing key %r" % key,
                              provider.validate_config(config))
            config = with_config(case.config)
            del config["backend"]["type"]
            self.assertTrue(provider.validate_config(config)[0].startswith("$.backend: missing"))

    def test_non_finite_numbers_are_refused(self):
        # Regression: "lock_wait": NaN (or Infinity) passed validation - Python's json
        # reads both - and a NaN deadline made a writer wait for the lock for ever.
        for key in ("lock_wait",):
            for raw in ("NaN", "Infinity", "-Infinity", "1e999"):
                text = json.dumps(BACKEND_CASES[0].config)[:-1] + ', "%s": %s}' % (key, raw)
                problems = provider.validate_config(json.loads(text))
                self.assertEqual(len(problems), 1, (raw, problems))
                self.assertTrue(problems[0].startswith("$.%s: must be" % key), problems)


class HostileConfigProcessTest(HomeTestCase):
    def test_the_real_process_names_the_path(self):
        self.home.write_config(with_config(BACKEND_CASES[0].config, lock_wait="soon"))
        result = self.home.run("order", "1")
        self.assertIn("$.lock_wait: must be a number, not string",
                      result.json["error_message"])
        self.assertIn("$.lock_wait", self.home.ok("help")["message"])
        self.home.write_config(b"{\"enabled\": true, \"backend\": {\"type\": \"manual\"}, "
                               b"\"configurations\": [], \"lock_wait\": NaN}")
        self.assertIn("$.lock_wait: must be a finite number",
                      self.home.run("order", "1").json["error_message"])
        # Regression: a huge integer passed, then float() overflowed: N199 even for help.
        for key in ("lock_wait", "password_ttl_days", "retention_days"):
            self.home.write_config(dict(MANUAL_CONFIG, **{key: 10 ** 400}))
            answer = self.home.ok("help")
            self.assertEqual(answer["status"], "disabled")
            self.assertIn("$.%s: must be a finite number" % key, answer["message"])


if __name__ == "__main__":
    unittest.main()
