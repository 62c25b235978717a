# -*- coding: utf-8 -*-
"""Secrets: private modes whatever the umask; passwords only in the state (and
its backup) and only until the caller added the server or password_ttl_days
passed; nothing else the plugin writes ever holds one."""

import json
import os
import stat
import time
import unittest

from helpers.robust_support import BACKEND_CASES, run, umask_000, with_config
from helpers.support import Home

PASSWORDS = ("Secret-pw-Alpha-1", "Secret-pw-Bravo-2", "Secret-pw-Charlie-3")


def files_under(folder):
    for root, dirs, files in os.walk(folder):
        for name in files:
            yield os.path.join(root, name)


class SecretsTest(unittest.TestCase):
    def home_for(self, case, **changes):
        home = Home(with_config(case.config, **changes))
        self.addCleanup(home.cleanup)
        return home

    def holders(self, home, secrets):
        """The files under home (but the config and the script) holding any secret."""
        found = []
        for path in files_under(home.dir):
            if path in (home.config_path, home.script):
                continue
            data = home.read(path)
            if any(s.encode("utf-8") in data for s in secrets):
                found.append(os.path.relpath(path, home.dir))
        return sorted(found)

    def test_modes_are_private_with_umask_000(self):
        for case in BACKEND_CASES:
            home = self.home_for(case)
            for argv in (["order", "1"], ["order", "1"],
                         ["task", "fail", "2", "--message", "no"]):
                self.assertEqual(run(home, argv, preexec_fn=umask_000).code, 0)
            case.finish(home, "1", PASSWORDS[0])
            with open(home.state_path, "ab") as handle:
                handle.write(b"damage")
            self.assertEqual(run(home, ["state", "repair"], preexec_fn=umask_000).code, 0)
            var = os.path.dirname(home.state_path)
            for folder in (var, os.path.dirname(home.log_path)):
                self.assertEqual(stat.S_IMODE(os.stat(folder).st_mode), 0o700, folder)
            for path in list(files_under(var)) + [home.log_path]:
                self.assertEqual(stat.S_IMODE(os.stat(path).st_mode), 0o600, path)

    def test_only_the_state_holds_passwords_and_only_until_needed(self):
        for case in BACKEND_CASES:
            home = self.home_for(case)
            secrets = PASSWORDS + case.secrets
            outputs = []
            for _ in range(4):
                outputs.append(home.run("order", "1"))
            for task_id, password in zip(("1", "2", "3"), PASSWORDS):
                outputs.append(case.finish(home, task_id, password))
            for argv in (["tasks"], ["tasks", "--json"], ["task", "show", "1"], ["check"],
                         ["task", "show", "2", "--json"], ["help"], ["configs"],
                         ["task", "finish", "1", "--server", "203.0.113.9", "--no-check"]):
                outputs.append(run(home, argv, stdin=PASSWORDS[0].encode() + b"\n"))
            for result in outputs:
                for secret in secrets:
                    self.assertNotIn(secret.encode(), result.out + result.err, result)
            self.assertEqual(home.ok("order_status", "1")["server_password"], PASSWORDS[0])
            self.assertEqual(self.holders(home, secrets),
                             ["var/provider.state.json", "var/provider.state.json.bak"])

            # The caller added task 1 to its pool: the next read removes the password,
            # from the state and from the backup.
            home.caller_marks("1", "complete: added to the pool")
            answer = home.ok("order_status", "1")
            self.assertEqual(answer["status"], "finished")
            self.assertEqual(answer["server_password"], "")
            self.assertTrue(answer["message"].endswith(
                "; root password removed because the server was added to the pool"), answer)
            self.assertEqual(home.ok("order_status", "1")["message"], answer["message"])
            for path in (home.state_path, home.backup_path):
                self.assertNotIn(PASSWORDS[0].encode(), home.read(path), path)

            # Task 2 finished 8 days ago: a writing call (any order) removes it.
            state = home.state()
            state["tasks"]["2"]["updated"] -= 8 * 86400
            with open(home.state_path, "w") as handle:
                json.dump(state, handle)
            home.ok("order", "1")
            self.assertEqual(self.holders(home, secrets), ["var/provider.state.json",
                                                           "var/provider.state.json.bak"])
            for path in (home.state_path, home.backup_path):
                self.assertNotIn(PASSWORDS[1].encode(), home.read(path), path)
                self.assertIn(PASSWORDS[2].encode(), home.read(path), path)
            answer = home.ok("order_status", "2")
            self.assertEqual(answer["server_password"], "")
            self.assertIn("after 7 days (password_ttl_days)", answer["message"])
            log = home.read(home.log_path).decode("utf-8")
            self.assertIn(" scrub task=1 ", log)
            self.assertIn(" scrub task=2 ", log)

    def test_password_ttl_days_is_configurable(self):
        case = BACKEND_CASES[0]
        home = self.home_for(case, password_ttl_days=30)
        home.ok("order", "1")
        case.finish(home, "1", PASSWORDS[0])
        state = home.state()
        state["tasks"]["1"]["updated"] -= 8 * 86400
        with open(home.state_path, "w") as handle:
            json.dump(state, handle)
        home.ok("order", "1")
        self.assertEqual(home.ok("order_status", "1")["server_password"], PASSWORDS[0])
        state = home.state()
        state["tasks"]["1"]["updated"] -= 30 * 86400
        with open(home.state_path, "w") as handle:
            json.dump(state, handle)
        answer = home.ok("order_status", "1")          # a read due to scrub does it itself
        self.assertEqual(answer["server_password"], "")
        self.assertIn("after 30 days", answer["message"])
        self.assertEqual(self.holders(home, PASSWORDS), [])

    def test_an_expired_password_is_never_answered_even_if_the_write_fails(self):
        import fcntl
        case = BACKEND_CASES[0]
        home = self.home_for(case, lock_wait=0.2)
        home.ok("order", "1")
        case.finish(home, "1", PASSWORDS[0])
        home.caller_marks("1", "complete")
        with open(home.lock_path, "a") as held:
            fcntl.flock(held, fcntl.LOCK_EX)
            answer = home.ok("order_status", "1")
        self.assertEqual(answer["server_password"], "")
        self.assertIn(PASSWORDS[0].encode(), home.read(home.state_path))   # not yet written
        home.ok("order_status", "1")
        self.assertNotIn(PASSWORDS[0].encode(), home.read(home.state_path))

    def archive_dir(self, home):
        return os.path.join(home.dir, "var", "archive")

    def test_no_archive_file_ever_holds_a_password(self):
        # Retention 0: a finished task would be archived by the next write. It stays in
        # the state while it holds its root password (the caller may not have read it),
        # and moves, without it, in the write that removes it.
        case = BACKEND_CASES[0]
        home = self.home_for(case, retention_days=0)
        home.ok("order", "1")
        home.ok("order", "1")
        case.finish(home, "1", PASSWORDS[0])
        home.run("task", "fail", "2", "--message", "no")
        home.ok("order", "1")
        self.assertEqual(sorted(home.state()["tasks"]), ["1", "3"])   # 2 archived, 1 not
        self.assertTrue(os.listdir(self.archive_dir(home)))
        self.assertEqual(self.holders(home, PASSWORDS),
                         ["var/provider.state.json", "var/provider.state.json.bak"])
        self.assertEqual(home.ok("order_status", "1")["server_password"], PASSWORDS[0])
        home.caller_marks("1", "complete: added to the pool")
        home.ok("order", "1")
        self.assertNotIn("1", home.state()["tasks"])                  # archived now
        answer = home.ok("order_status", "1")
        self.assertEqual(answer["server_password"], "")
        self.assertIn("added to the pool", answer["message"])
        self.assertEqual(self.holders(home, PASSWORDS), [])

    def test_passwords_archived_by_an_older_version_are_removed(self):
        # perf's first archive moved finished tasks with their passwords. An expired one is
        # never answered; order_status removes it from its archive file and that file's
        # .bak, `state compact` from every archive file.
        from helpers.support import load_module
        module = load_module()
        case = BACKEND_CASES[0]
        home = self.home_for(case)
        home.ok("order", "1")
        old = int(time.time()) - 10 * 86400
        store = module.StateStore(module.Paths(home.script))          # no tidy: as before
        for task_id, password in (("150", PASSWORDS[1]), ("250", PASSWORDS[2])):
            task = module.new_task(task_id, "1", "manual")
            task.update(status="finished", server="203.0.113.8", server_password=password,
                        message="finished by the operator", created=old, updated=old)
            store.archive({task_id: task})
            store.archive({task_id: task})                           # the .bak holds it too
        self.assertEqual(len(self.holders(home, PASSWORDS)), 4)
        answer = home.ok("order_status", "150")
        self.assertEqual(answer["server_password"], "")
        self.assertIn("after 7 days (password_ttl_days)", answer["message"])
        self.assertEqual(home.ok("order_status", "150")["message"], answer["message"])
        self.assertEqual(self.holders(home, PASSWORDS[1:2]), [])
        self.assertEqual(len(self.holders(home, PASSWORDS[2:])), 2)
        self.assertEqual(home.run("state", "compact").code, 0)
        self.assertEqual(self.holders(home, PASSWORDS), [])
        self.assertEqual(home.ok("order_status", "250")["server"], "203.0.113.8")


if __name__ == "__main__":
    unittest.main()
