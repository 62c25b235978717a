# -*- coding: utf-8 -*-
"""The notify hook (issue 27): the config's `notify` program runs once per
transition of a task (finished, error, a failed order's server deleted or given
up on, an orphan `servers` found), detached, with one JSON object on stdin and
never a secret; its output and exit status go to the task's log; a hook that
fails or hangs changes nothing else.

The hooks append what they read to a file: a test counts the lines there once
the task log says the hook has ended (the hook's own end, never a wait)."""

import json
import os
import signal
import subprocess
import unittest

from helpers.cloudbase import TOKEN, CloudHome, closed_port
from helpers.fakecloud import FakeHetzner
from helpers.support import ROOT, HomeTestCase, SSHBanner, pid_alive, wait_for
from test_backend_command import RESULT, WAIT_FOR_GO, command_config

PASSWORD = "Pa55-w0rd-xyz"          # the command program's result (RESULT)
KEYS = ["config_id", "event", "message", "provider", "server", "server_id", "status",
        "task_id"]


class HookFiles(object):
    """A hook script in a folder: it appends its stdin to events.jsonl there."""

    def write_hook(self, folder, body=""):
        self.events_path = os.path.join(folder, "events.jsonl")
        self.hook_path = os.path.join(folder, "hook.sh")
        with open(self.hook_path, "w") as handle:
            handle.write("#!/bin/sh\ncat >> '%s'\necho \"hook says hello\"\n"
                         "echo \"hook complains\" >&2\n%s" % (self.events_path, body))
        os.chmod(self.hook_path, 0o755)
        return self.hook_path

    def events(self):
        try:
            with open(self.events_path) as handle:
                return [json.loads(line) for line in handle.read().splitlines()]
        except IOError:
            return []

    def log_text(self, home, task_id):
        try:
            with open(os.path.join(home.dir, "log", "tasks", task_id + ".log")) as handle:
                return handle.read()
        except IOError:
            return ""

    def hook_ended(self, home, task_id, event, count=1):
        """Wait until the task log says the hook ran `count` times for event."""
        note = "notify %s: the hook exited with status" % event
        wait_for(lambda: self.log_text(home, task_id).count(note) >= count,
                 what="the hook for %s of task %s to end" % (event, task_id))

    def assertEvent(self, event, name, task_id, status):
        self.assertEqual(sorted(event), KEYS)
        self.assertEqual((event["event"], event["task_id"], event["status"]),
                         (name, task_id, status))


class CommandNotifyTest(HomeTestCase, HookFiles):
    def setUp(self):
        self.ssh = SSHBanner().start()
        self.addCleanup(self.ssh.stop)
        HomeTestCase.setUp(self)
        self.write_hook(self.home.dir, "exit 3\n")
        self.configure()

    def configure(self, **top):
        config = command_config(self.ssh.port)
        config.update(notify=["./hook.sh", "an-arg"])
        config.update(top)
        self.home.write_config(config)

    def program(self, body):
        path = os.path.join(self.home.dir, "prog.sh")
        with open(path, "w") as handle:
            handle.write("#!/bin/sh\n" + body)
        os.chmod(path, 0o755)

    def go(self):
        open(os.path.join(self.home.dir, "go"), "w").close()

    def task(self, task_id):
        return self.home.state()["tasks"][task_id]

    def test_a_finished_order_is_told_once_with_no_secret(self):
        self.program(WAIT_FOR_GO + RESULT)
        task_id = self.home.ok("order", "vm2")["task_id"]
        self.assertEqual(self.events(), [])
        self.go()
        wait_for(lambda: self.task(task_id)["status"] == "finished", what="the order to end")
        # the callers ask at once, many times: the hook still runs once
        procs = [subprocess.Popen(self.home.command(["order_status", task_id]),
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  env=self.home.env()) for _ in range(4)]
        for proc in procs:
            out, _ = proc.communicate(timeout=60)
            self.assertEqual(json.loads(out.decode("utf-8"))["server_password"], PASSWORD)
        self.hook_ended(self.home, task_id, "finished")
        [event] = self.events()
        self.assertEvent(event, "finished", task_id, "finished")
        self.assertEqual((event["server"], event["config_id"], event["provider"]),
                         ("127.0.0.1", "vm2", "provider"))
        self.assertEqual(self.task(task_id)["notified"], ["finished"])
        with open(self.events_path, "rb") as handle:
            told = handle.read()
        for secret in (PASSWORD, "t-123"):         # the program's env: HOSTER_TOKEN t-123
            self.assertNotIn(secret.encode(), told)
        log = self.log_text(self.home, task_id)
        self.assertIn("notify out: hook says hello", log)
        self.assertIn("notify err: hook complains", log)
        self.assertIn("notify finished: the hook exited with status 3", log)
        self.assertEqual(self.home.ok("order_status", task_id)["status"], "finished")
        self.assertEqual(len(self.events()), 1)

    def test_a_failed_program_and_a_task_failed_by_hand_are_told(self):
        self.program("echo 'no capacity left' >&2\nexit 4\n")
        task_id = self.home.ok("order", "vm2")["task_id"]
        wait_for(lambda: self.task(task_id)["status"] == "error", what="the order to fail")
        self.hook_ended(self.home, task_id, "error")
        [event] = self.events()
        self.assertEvent(event, "error", task_id, "error")
        self.assertIn("no capacity left", event["message"])
        self.program(WAIT_FOR_GO + RESULT)
        second = self.home.ok("order", "vm2")["task_id"]
        result = self.home.run("task", "fail", second, "--message", "not needed after all")
        self.assertEqual(result.code, 0, result)
        self.go()
        self.hook_ended(self.home, second, "error")
        self.assertEqual([(e["task_id"], e["event"], e["message"]) for e in self.events()],
                         [(task_id, "error", event["message"]),
                          (second, "error", "not needed after all")])

    def test_a_hanging_hook_is_killed_and_holds_nobody(self):
        self.write_hook(self.home.dir, "echo $$ > hook.pid\nexec sleep 600\n")
        self.configure(notify_timeout=300)
        self.program(RESULT)
        task_id = self.home.ok("order", "vm2")["task_id"]
        wait_for(lambda: self.task(task_id)["status"] == "finished", what="the order to end")
        pid_path = os.path.join(self.home.dir, "hook.pid")
        pid = wait_for(lambda: os.path.exists(pid_path) and open(pid_path).read().strip(),
                       what="the hook to start")
        self.addCleanup(lambda: pid_alive(int(pid)) and os.kill(int(pid), signal.SIGKILL))
        # the hook runs on: the caller's calls answer all the same (its stdout is not held)
        answer = self.home.ok("order_status", task_id)
        self.assertEqual((answer["status"], answer["server_password"]), ("finished", PASSWORD))
        self.assertTrue(pid_alive(int(pid)))
        self.assertEqual(len(self.events()), 1)

        os.unlink(pid_path)
        self.configure(notify_timeout=0.5)
        second = self.home.ok("order", "vm2")["task_id"]
        wait_for(lambda: self.task(second)["status"] == "finished", what="the order to end")
        wait_for(lambda: "ran over notify_timeout (0.5 s): its process group was killed"
                 in self.log_text(self.home, second), what="the hook to be killed")
        killed = int(open(pid_path).read())
        wait_for(lambda: not pid_alive(killed), what="the hook's process to end")
        self.assertEqual(self.home.ok("order_status", second)["status"], "finished")

    def test_a_hook_others_could_change_is_never_run(self):
        os.chmod(self.hook_path, 0o777)
        self.program(RESULT)
        task_id = self.home.ok("order", "vm2")["task_id"]
        wait_for(lambda: "refusing to run the hook as root" in self.log_text(self.home, task_id),
                 what="the refusal in the task log")
        self.assertEqual(self.task(task_id)["status"], "finished")
        self.assertEqual(self.events(), [])

    def test_a_missing_hook_changes_nothing(self):
        os.unlink(self.hook_path)
        self.program(RESULT)
        task_id = self.home.ok("order", "vm2")["task_id"]
        wait_for(lambda: "notify finished: cannot run" in self.log_text(self.home, task_id),
                 what="the failure in the task log")
        self.assertEqual(self.home.ok("order_status", task_id)["status"], "finished")

    def test_the_settings_are_checked(self):
        self.configure(notify=[], notify_timeout=0)
        message = self.home.run("configs").json["error_message"]
        self.assertIn("$.notify: must name a program", message)
        self.assertIn("$.notify_timeout: ", message)
        self.configure(notify=["./hook.sh", "a\u0000b"])
        self.assertIn("$.notify[1]: must not contain a NUL character",
                      self.home.run("configs").json["error_message"])
        self.configure(notify="./hook.sh")
        self.assertIn("$.notify: ", self.home.run("configs").json["error_message"])

    def test_without_notify_no_task_is_marked(self):
        config = command_config(self.ssh.port)
        self.home.write_config(config)
        self.program(RESULT)
        task_id = self.home.ok("order", "vm2")["task_id"]
        wait_for(lambda: self.task(task_id)["status"] == "finished", what="the order to end")
        self.assertNotIn("notified", self.task(task_id))
        self.assertNotIn("notify", self.log_text(self.home, task_id))


class ExampleHooksTest(unittest.TestCase):
    """examples/notify-*.sh with stand-ins for mail and curl that record what they got."""

    def setUp(self):
        import shutil
        import tempfile
        self.dir = tempfile.mkdtemp(prefix="bxnotify-")
        self.addCleanup(shutil.rmtree, self.dir, True)
        os.mkdir(os.path.join(self.dir, "bin"))
        os.mkdir(os.path.join(self.dir, "etc"))
        for name in ("mail", "curl"):
            path = os.path.join(self.dir, "bin", name)
            with open(path, "w") as handle:
                handle.write('#!/bin/sh\nprintf "%%s\\n" "$@" > %s.args\ncat > %s.stdin\n'
                             % (name, name))
            os.chmod(path, 0o755)
        self.event = {"event": "finished", "provider": "hetzner", "task_id": "12",
                      "config_id": "web", "status": "finished", "message": "ready",
                      "server": "10.0.0.3", "server_id": "77"}

    def run_example(self, name, *args):
        env = dict(os.environ, PATH=os.path.join(self.dir, "bin") + os.pathsep
                   + os.environ.get("PATH", ""))
        proc = subprocess.Popen([os.path.join(ROOT, "examples", name)] + list(args),
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, cwd=self.dir, env=env)
        out, err = proc.communicate(json.dumps(self.event).encode("utf-8"), timeout=60)
        self.assertEqual(proc.returncode, 0, (out, err))
        return out

    def read(self, name):
        with open(os.path.join(self.dir, name)) as handle:
            return handle.read()

    def test_mail(self):
        self.run_example("notify-mail.sh", "admin@example.com")
        self.assertEqual(self.read("mail.args").splitlines(),
                         ["-s", "provider.py task 12: finished", "admin@example.com"])
        self.assertEqual(json.loads(self.read("mail.stdin")), self.event)

    def test_telegram_keeps_the_token_off_the_command_line(self):
        for name, text in (("telegram.token", "123:secret-bot-token"), ("telegram.chat", "42")):
            with open(os.path.join(self.dir, "etc", name), "w") as handle:
                handle.write(text + "\n")
        self.run_example("notify-telegram.sh")
        args = self.read("curl.args")
        self.assertNotIn("secret-bot-token", args)
        self.assertIn("chat_id=42", args)
        self.assertIn("text=" + json.dumps(self.event), args)
        self.assertEqual(self.read("curl.stdin"), 'url = "https://api.telegram.org/'
                         'bot123:secret-bot-token/sendMessage"\n')


class HetznerNotifyTest(CloudHome, HookFiles, unittest.TestCase):
    FAKE = FakeHetzner
    TYPE = "hetzner"
    LABEL = "Hetzner"
    CONFIGURATION = {"server_type": "cx22", "image": "ubuntu-24.04", "location": "fsn1"}

    def setUp(self):
        CloudHome.setUp(self)
        self.write_hook(self.tmp)
        self.top = {"notify": [self.hook_path]}
        self.configure(top=self.top)

    def test_an_order_refused_at_once_is_told_with_its_task_id(self):
        self.api.resource_limit_next()
        result = self.run_plugin("order", "1")
        self.assertIn("error N108, task 1 could not be started", result.json["error_message"])
        self.hook_ended(self.home, "1", "error")
        [event] = self.events()
        self.assertEvent(event, "error", "1", "error")
        self.assertIn("resource_limit_exceeded", event["message"])

    def test_a_failed_orders_server_deleted_is_told_after_its_error(self):
        self.configure(top=self.top, ssh_port=closed_port(), ready_timeout=0.3)
        task_id = self.order()
        self.poll(task_id, limit=100)
        wait_for(lambda: not self.api.servers, what="the cleanup worker's delete")
        self.hook_ended(self.home, task_id, "server_deleted")
        events = self.events()
        self.assertEqual([e["event"] for e in events], ["error", "server_deleted"])
        server_id = self.home.state()["tasks"][task_id]["data"]["server_id"]
        self.assertEqual(events[1]["server_id"], str(server_id))
        self.assertIn("deleted (on_failure: delete)", events[1]["message"])
        self.ok("order_status", task_id)
        with open(self.events_path, "rb") as handle:
            self.assertNotIn(TOKEN.encode(), handle.read())
        self.assertEqual(len(self.events()), 2)

    def test_a_server_left_when_on_failure_becomes_keep_is_told_as_given_up(self):
        self.configure(top=self.top, ssh_port=closed_port(), ready_timeout=0.3)
        self.api.fail_next(403, count=1000, method="DELETE")    # no delete gets through
        task_id = self.order()
        self.poll(task_id, limit=100)
        self.hook_ended(self.home, task_id, "error")
        self.configure(top=self.top, ssh_port=closed_port(), ready_timeout=0.3,
                       on_failure="keep")
        wait_for(lambda: self.ok("order_status", task_id) and
                 "server_given_up" in self.home.state()["tasks"][task_id].get("notified", []),
                 what="the cleanup worker to give the server up")
        self.hook_ended(self.home, task_id, "server_given_up")
        events = self.events()
        self.assertEqual([e["event"] for e in events], ["error", "server_given_up"])
        self.assertIn('on_failure is now "keep"', events[1]["message"])
        self.assertEqual(len(self.api.servers), 1)

    def test_delete_server_by_hand_tells_the_error_and_the_deletion(self):
        task_id = self.order()
        self.finished(task_id)
        self.hook_ended(self.home, task_id, "finished")
        result = self.run_plugin("task", "delete-server", task_id, "--yes")
        self.assertEqual(result.code, 0, result)
        self.hook_ended(self.home, task_id, "server_deleted")
        self.hook_ended(self.home, task_id, "error")
        self.assertEqual(sorted(e["event"] for e in self.events()),
                         ["error", "finished", "server_deleted"])
        self.assertEqual(self.home.state()["tasks"][task_id]["notified"],
                         ["finished", "error", "server_deleted"])

    def test_an_orphan_is_told_once(self):
        held = self.order()
        self.finished(held)
        self.hook_ended(self.home, held, "finished")
        tag = self.home.state()["tasks"][held]["data"]["owner"]
        self.api.add_server("provider-%s-%s" % (held, tag), labels={
            "managed-by": "provider.py", "bx-owner": tag, "bx-task": held})
        orphan_id = max(self.api.servers)
        for _ in range(2):
            self.assertIn("ORPHAN", self.run_plugin("servers").text)
        self.hook_ended(self.home, held, "orphan")
        events = self.events()
        self.assertEqual([e["event"] for e in events], ["finished", "orphan"])
        self.assertEqual(events[1]["server_id"], str(orphan_id))
        self.assertIn("an orphan: no task holds Hetzner server %s" % orphan_id,
                      events[1]["message"])
        self.run_plugin("servers")
        self.assertEqual(len(self.events()), 2)
        self.assertEqual(self.home.state()["tasks"][held]["notified"],
                         ["finished", "orphan %s" % orphan_id])


if __name__ == "__main__":
    unittest.main()
