# -*- coding: utf-8 -*-
"""install.sh --uninstall / --purge with a cloud provider (issue 20, 8; issue 23, 5): the
provider's workers are stopped first, and the removal is refused while a task still rents
a server, unless --delete-servers (deleted through the plugin first) or --keep-servers
(listed, left rented). Run against the fake Hetzner, the home laid out as install.sh
knows it: PREFIX/provider/bin/provider."""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

from helpers.cloudbase import CloudHome, provider
from helpers.fakecloud import FakeHetzner
from helpers.support import ROOT, wait_for
from test_backend_command import RESULT, WAIT_FOR_GO, CommandTestCase

INSTALL_SH = os.path.join(ROOT, "install.sh")


def relocate(home, folder):
    """Move a support.Home (nothing run in it yet) to folder, its paths with it."""
    os.rename(home.dir, folder)
    old, home.dir = home.dir, folder
    for key in ("script", "config_path", "state_path", "backup_path", "lock_path",
                "log_path", "tasks_dir"):
        setattr(home, key, folder + getattr(home, key)[len(old):])


def run_install_sh(test, prefix, env, *args):
    proc = subprocess.Popen(["sh", INSTALL_SH, "--prefix", prefix] + list(args) + ["provider"],
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=env, cwd=prefix)
    out, err = proc.communicate(timeout=120)
    return proc.returncode, out.decode("utf-8", "replace"), err.decode("utf-8", "replace")


def pid_alive(pid):
    try:
        with open("/proc/%d/stat" % pid, "rb") as handle:
            return handle.read().rsplit(b")", 1)[1].split()[0] not in (b"Z", b"X")
    except (IOError, OSError):
        return False


class UninstallTest(CloudHome, unittest.TestCase):
    FAKE = FakeHetzner
    TYPE = "hetzner"
    LABEL = "Hetzner"
    CONFIGURATION = {"server_type": "cx22", "image": "ubuntu-24.04", "location": "fsn1"}

    def setUp(self):
        CloudHome.setUp(self)
        self.prefix = os.path.join(self.tmp, "providers")
        os.mkdir(self.prefix)
        relocate(self.home, os.path.join(self.prefix, "provider"))
        pybin = os.path.join(self.tmp, "pybin")      # the header's python3: this one
        os.mkdir(pybin)
        os.symlink(sys.executable, os.path.join(pybin, "python3"))
        self.env["PATH"] = pybin + os.pathsep + self.env["PATH"]

    def install_sh(self, *args):
        proc = subprocess.Popen(["sh", INSTALL_SH, "--prefix", self.prefix] + list(args) +
                                ["provider"], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, env=self.env, cwd=self.tmp)
        out, err = proc.communicate(timeout=120)
        return proc.returncode, out.decode("utf-8", "replace"), err.decode("utf-8", "replace")

    def rented(self):
        """A finished order: task 1 rents a server at the fake. (task id, server)"""
        task_id = self.order()
        self.finished(task_id)
        [server] = self.api.servers.values()
        return task_id, server

    def kept(self):
        removed = self.prefix + "-removed"
        [kept] = os.listdir(removed)
        return os.path.join(removed, kept)

    def test_removal_is_refused_while_a_task_rents_a_server(self):
        # Regression (issue 20, 8): exit 0, not a word, and nothing would delete the server
        task_id, server = self.rented()
        line = "task %s (hetzner): server %s, name %s" % (task_id, server["id"], server["name"])
        for action in (["--uninstall"], ["--purge", "--yes"]):
            code, out, err = self.install_sh(*action)
            self.assertEqual(code, 1, (out, err))
            self.assertIn(line, err)
            self.assertIn("nothing removed", err)
            self.assertIn("--delete-servers", err)
            self.assertTrue(os.path.isfile(self.home.script), "nothing was removed")
            self.assertTrue(os.path.isfile(self.home.state_path))
        self.assertEqual(len(self.api.servers), 1)

    def test_keep_servers_goes_on_and_lists_them(self):
        task_id, server = self.rented()
        code, out, err = self.install_sh("--uninstall", "--keep-servers")
        self.assertEqual(code, 0, (out, err))
        self.assertIn("Kept rented", out)
        self.assertIn("task %s (hetzner): server %s" % (task_id, server["id"]), out)
        self.assertFalse(os.path.exists(self.home.dir))
        self.assertEqual(len(self.api.servers), 1)

    def test_delete_servers_deletes_them_through_the_plugin_first(self):
        task_id, server = self.rented()
        code, out, err = self.install_sh("--purge", "--yes", "--delete-servers")
        self.assertEqual(code, 0, (out, err))
        self.assertIn("Deleting server %s of task %s" % (server["id"], task_id), out)
        self.assertIn("no task rents one now", out)
        self.assertEqual(self.api.servers, {})
        for sub in ("bin", "etc", "var", "log"):
            self.assertIn("Deleted %s/" % os.path.join(self.home.dir, sub), out)
        self.assertFalse(os.path.exists(self.home.dir))

    def waiting_worker(self):
        """An order whose worker waits for its create's answer (held): (task id, its worker
        lock, the pids holding that lock open)."""
        self.configure(request_timeout=120)             # the worker waits for the answer
        release = self.api.hold_next(method="POST")     # the create is made, its answer held
        self.addCleanup(release.set)
        task_id = self.order(wait=False)
        lock = os.path.join(self.home.dir, "var", "workers", task_id + ".lock")
        wait_for(lambda: provider.lock_is_held(lock), what="the worker to hold its lock")
        holders = [int(pid) for pid in os.listdir("/proc") if pid.isdigit()
                   and self.holds(int(pid), lock)]
        self.assertTrue(holders, "the worker holds its lock file open")
        return task_id, lock, holders

    def assert_stopped(self, out, task_id, holders):
        for pid in holders:
            self.assertIn("Stopping the worker of task %s (pid %d)" % (task_id, pid), out)
            wait_for(lambda: not pid_alive(pid), what="worker %d to end" % pid)

    def test_the_workers_are_stopped_first_and_only_they(self):
        # Regression (issue 23, 5): a detached worker outlived its provider
        task_id, lock, holders = self.waiting_worker()
        bystander = subprocess.Popen(        # holds the lock file open too, but is no worker
            [sys.executable, "-c", "import os, sys, time; os.open(sys.argv[1], os.O_RDONLY); "
             "time.sleep(120)", lock])
        self.addCleanup(bystander.wait)
        self.addCleanup(bystander.kill)
        wait_for(lambda: self.holds(bystander.pid, lock), what="the bystander to open the lock")
        code, out, err = self.install_sh("--uninstall")
        self.assertEqual(code, 1, (out, err))   # refused: a create is under way, nothing done
        self.assertIn("task %s (hetzner): no server id yet, a create may be under way" % task_id,
                      err)
        self.assertTrue(all(pid_alive(pid) for pid in holders))
        code, out, err = self.install_sh("--uninstall", "--keep-servers")
        self.assertEqual(code, 0, (out, err))
        self.assert_stopped(out, task_id, holders)
        self.assertTrue(pid_alive(bystander.pid), "a process that is no worker is left alone")
        self.assertIn("Kept rented", out)
        self.assertFalse(provider.lock_is_held(os.path.join(self.kept(), "var", "workers",
                                                            task_id + ".lock")))

    def test_purge_stops_the_workers_before_it_deletes_the_files(self):
        task_id, _, holders = self.waiting_worker()
        code, out, err = self.install_sh("--purge", "--yes", "--keep-servers")
        self.assertEqual(code, 0, (out, err))
        self.assert_stopped(out, task_id, holders)
        self.assertFalse(os.path.exists(os.path.join(self.home.dir, "var")))
        self.assertFalse(os.path.exists(os.path.join(self.home.dir, "bin")))

    def test_tasks_holding_lists_what_uninstalling_would_leave_billed(self):
        self.assertEqual(self.ok("tasks", "--holding", "--json"), {"holding": []})
        task_id, server = self.rented()
        answer = self.ok("tasks", "--holding", "--json")
        self.assertEqual(answer["holding"], [{
            "task_id": task_id, "backend": "hetzner", "server_id": str(server["id"]),
            "name": server["name"], "status": "finished", "server": "127.0.0.1"}])
        result = self.run_plugin("tasks", "--holding")
        self.assertEqual(result.code, 0, result)
        self.assertEqual(result.text.splitlines()[1].split(),
                         [task_id, "hetzner", str(server["id"]), server["name"], "finished"])
        result = self.run_plugin("tasks", "--holding", "--all")
        self.assertEqual(result.code, 2, result)
        self.run_plugin("task", "delete-server", task_id, "--yes")
        self.assertEqual(self.ok("tasks", "--holding", "--json"), {"holding": []})

    def test_server_options_only_with_uninstall_or_purge(self):
        for args in (["--delete-servers"], ["--keep-servers"],
                     ["--uninstall", "--keep-servers", "--delete-servers"]):
            code, out, err = self.install_sh(*args)
            self.assertEqual(code, 2, (args, out, err))
        self.assertTrue(os.path.isfile(self.home.script))

    def holds(self, pid, path):
        target = os.stat(path)
        try:
            fds = os.listdir("/proc/%d/fd" % pid)
        except OSError:
            return False
        for fd in fds:
            try:
                found = os.stat("/proc/%d/fd/%s" % (pid, fd))
            except OSError:
                continue
            if (found.st_dev, found.st_ino) == (target.st_dev, target.st_ino):
                return True
        return False


class CommandWorkerTest(CommandTestCase):
    """A command backend's worker running a program, at --uninstall."""

    def setUp(self):
        CommandTestCase.setUp(self)
        self.prefix = tempfile.mkdtemp(prefix="bxuninstall-")
        self.addCleanup(shutil.rmtree, self.prefix, True)
        relocate(self.home, os.path.join(self.prefix, "provider"))
        pybin = os.path.join(self.prefix, "pybin")      # the header's python3: this one
        os.mkdir(pybin)
        os.symlink(sys.executable, os.path.join(pybin, "python3"))
        self.env = dict((k, v) for k, v in os.environ.items() if not k.startswith("BXPROVIDER_"))
        self.env["PATH"] = pybin + os.pathsep + os.environ.get("PATH", "")

    def release_programs(self):
        if os.path.isdir(self.home.dir):        # else moved aside: the program was stopped
            CommandTestCase.release_programs(self)

    def test_the_worker_stops_its_program_and_saves_before_the_files_go(self):
        self.program('echo $$ > started\n' + WAIT_FOR_GO + RESULT)
        task_id, program, worker = self.running_order()
        code, out, err = run_install_sh(self, self.prefix, self.env, "--uninstall")
        self.assertEqual(code, 0, (out, err))
        self.assertIn("Stopping the worker of task %s (pid %d)" % (task_id, worker), out)
        self.assertIn("Stopped 1 worker(s).", out)
        wait_for(lambda: not pid_alive(worker), what="the worker to end")
        wait_for(lambda: not pid_alive(program), what="the program to be stopped")
        [kept] = os.listdir(self.prefix + "-removed")
        with open(os.path.join(self.prefix + "-removed", kept, "var", "provider.state.json")) \
                as handle:
            task = json.load(handle)["tasks"][task_id]
        self.assertEqual((task["status"], task["message"]),
                         ("error", "the worker was stopped by signal 15"))


if __name__ == "__main__":
    unittest.main()
