# -*- coding: utf-8 -*-
"""Write failures: a file-size limit (RLIMIT_FSIZE, always) or a full tmpfs
(root only, skipped when mount is not permitted) during the save -> the error
object N107, the state file and its backup byte-identical, no temp left."""

import os
import shutil
import subprocess
import tempfile
import unittest

from helpers.robust_support import BACKEND_CASES, fsize_limit, run, snapshot, temp_leftovers
from helpers.support import Home, HomeTestCase, error_message


class FileSizeLimitTest(unittest.TestCase):
    def test_every_writing_call_under_a_size_limit(self):
        for case in BACKEND_CASES:
            home = Home(case.config)
            self.addCleanup(home.cleanup)
            for _ in range(3):
                home.ok("order", "1")
            size = os.path.getsize(home.state_path)
            files = (home.state_path, home.backup_path)
            for limit in (0, 1, size // 2, size):
                before = snapshot(home, files)
                for argv, stdin in ((["order", "1"], None),
                                    (["task", "finish", "1", "--server", "203.0.113.3",
                                      "--no-check"],
                                     b"Disk-pw\n"),
                                    (["task", "fail", "2", "--message", "the disk is full " * 8], None)):
                    result = run(home, argv, stdin=stdin, preexec_fn=fsize_limit(limit))
                    message = error_message(result, argv[0])
                    self.assertIn(" error N107, ", message, result)
                    self.assertIn("nothing was changed", message)
                    self.assertEqual(result.code, 1, result)
                    self.assertNotIn(b"Traceback", result.err)
                    self.assertEqual(snapshot(home, files), before, (limit, argv))
                    self.assertEqual(temp_leftovers(home), [])
            # and with room again, it works
            self.assertEqual(home.ok("order", "1")["task_id"], "4")


class StateCommandsUnderASizeLimitTest(unittest.TestCase):
    # Regression: restore-backup and repair renamed the state file away before
    # saving; a failed save answered "nothing was changed" with no state left.
    def test_restore_backup_and_repair_change_nothing_when_the_save_fails(self):
        home = Home(BACKEND_CASES[0].config)
        self.addCleanup(home.cleanup)
        for _ in range(3):
            home.ok("order", "1")
        with open(home.state_path, "ab") as handle:
            handle.write(b"garbage")                 # a damaged state, a good backup
        files = (home.state_path, home.backup_path)
        before = snapshot(home, files)
        for argv in (["state", "restore-backup"], ["state", "repair"]):
            result = run(home, argv, preexec_fn=fsize_limit(0))
            message = error_message(result, "state")
            self.assertIn(" error N107, ", message, result)
            self.assertIn("nothing was changed", message)
            self.assertEqual(snapshot(home, files), before, argv)
            self.assertEqual(temp_leftovers(home), [])
            self.assertEqual([n for n in os.listdir(os.path.dirname(home.state_path))
                              if ".damaged-" in n], [], argv)
        result = home.run("state", "restore-backup")     # with room again, it works
        self.assertEqual(result.code, 0, result)
        self.assertEqual(home.ok("order_status", "2")["status"], "in_progress")


class FullTmpfsTest(HomeTestCase):
    def setUp(self):
        HomeTestCase.setUp(self)
        if os.geteuid() != 0 or not shutil.which("mount"):
            self.skipTest("mounting a tmpfs needs root")
        self.var = os.path.dirname(self.home.state_path)
        os.mkdir(self.var, 0o700)
        proc = subprocess.Popen(["mount", "-t", "tmpfs", "-o", "size=64k,mode=0700", "tmpfs",
                                 self.var], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        _, err = proc.communicate()
        if proc.returncode != 0:
            self.skipTest("mount not permitted here: %s" % err.decode("utf-8", "replace").strip())
        self.addCleanup(subprocess.call, ["umount", "-l", self.var])

    def test_a_full_disk(self):
        for _ in range(3):
            self.home.ok("order", "1")
        filler = os.path.join(self.var, "filler")
        fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            while os.write(fd, b"x" * 512):
                pass
        except OSError:
            pass
        finally:
            os.close(fd)
        files = (self.home.state_path, self.home.backup_path)
        before = snapshot(self.home, files)
        result = self.home.run("order", "1")
        self.assertError(result, 107, "order")
        self.assertEqual(snapshot(self.home, files), before)
        self.assertEqual(temp_leftovers(self.home), [])
        os.unlink(filler)
        self.assertEqual(self.home.ok("order", "1")["task_id"], "4")


if __name__ == "__main__":
    unittest.main()
