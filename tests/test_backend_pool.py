# -*- coding: utf-8 -*-
"""The pool backend: ready servers handed out one per order."""

import json
import os
import signal
import subprocess
import unittest

from helpers.support import HomeTestCase, SSHBanner, caller_parse, pid_alive, wait_for


def pool_config(port, servers=None, **settings):
    # probe_timeout: a silent server stays claimed as long as a test needs (SetAsideTest
    # sets it low)
    backend = {"type": "pool", "ssh_port": port, "ssh_timeout": 0.2, "allow_loopback": True,
               "probe_timeout": 3600}
    backend.update(settings)
    return {
        "enabled": True,
        "backend": backend,
        "configurations": [
            {"id": "small", "descr": "Bitrix-env, 2 CPU, 4 ГБ",
             "servers": servers if servers is not None else [
                 {"server": "127.0.0.1", "password": "pw-one"},
                 {"server": "127.0.0.2"}]},
            {"id": "big", "descr": "Bitrix-env, 8 CPU",
             "servers": [{"server": "127.0.1.3", "password": "pw-big"}]},
        ],
    }


class PoolTestCase(HomeTestCase):
    def setUp(self):
        self.ssh = SSHBanner().start()
        self.addCleanup(self.ssh.stop)
        HomeTestCase.setUp(self)
        self.home.write_config(pool_config(self.ssh.port))

    def order(self, config_id):
        return self.home.ok("order", config_id)["task_id"]

    def status(self, task_id):
        return self.home.ok("order_status", task_id)

    def settled(self, task_id):
        """order_status once the worker has ended the wait (finished or error)."""
        wait_for(lambda: self.home.state()["tasks"][task_id]["status"] != "in_progress",
                 what="task %s to leave in_progress" % task_id)
        return self.status(task_id)


class ClaimTest(PoolTestCase):
    def test_order_claims_the_first_free_server_and_finishes(self):
        task_id = self.order("small")
        answer = self.settled(task_id)
        self.assertEqual(answer["status"], "finished", answer)
        self.assertEqual(answer["server"], "127.0.0.1")
        self.assertEqual(answer["server_password"], "pw-one")
        self.assertEqual(self.home.state()["pool"], {"127.0.0.1": task_id})
        second = self.settled(self.order("small"))
        self.assertEqual((second["status"], second["server"], second["server_password"]),
                         ("finished", "127.0.0.2", ""))

    def test_sold_out_is_an_error_and_creates_no_task(self):
        self.order("big")
        before = self.home.state()
        result = self.home.run("order", "big")
        message = self.assertError(result, 109, "order")
        self.assertIn("no free server for configuration big", message)
        after = self.home.state()
        self.assertEqual(sorted(after["tasks"]), sorted(before["tasks"]))
        self.assertEqual(after["next_id"], before["next_id"])

    def test_password_is_never_logged(self):
        self.status(self.order("small"))
        log = self.home.read(self.home.log_path).decode("utf-8")
        self.assertIn("claim", log)
        self.assertIn("127.0.0.1", log)
        self.assertNotIn("pw-one", log)

    def test_eight_concurrent_orders_against_five_servers(self):
        servers = [{"server": "127.0.0.%d" % n, "password": "pw%d" % n} for n in range(1, 6)]
        self.home.write_config(pool_config(self.ssh.port, servers))
        procs = [subprocess.Popen(self.home.command(["order", "small"]),
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  env=self.home.env()) for _ in range(8)]
        answers = [caller_parse(p.communicate(timeout=60)[0]) for p in procs]
        ids = [a["task_id"] for a in answers if "task_id" in a]
        errors = [a for a in answers if "error" in a]
        self.assertEqual(len(ids), 5, answers)
        self.assertEqual(len(set(ids)), 5)
        self.assertEqual(len(errors), 3, answers)
        for error in errors:
            self.assertIn("N109, no free server for configuration small", error["error_message"])
        state = self.home.state()
        self.assertEqual(sorted(state["pool"]), ["127.0.0.%d" % n for n in range(1, 6)])
        self.assertEqual(sorted(state["pool"].values()), sorted(ids))
        got = [self.settled(i) for i in ids]
        self.assertEqual(sorted(a["server"] for a in got), sorted(state["pool"]))
        self.assertEqual(set(a["status"] for a in got), set(["finished"]))
        for answer in got:
            self.assertEqual(answer["server_password"], "pw" + answer["server"][-1])


class ConfigsTest(PoolTestCase):
    def test_sold_out_stays_listed_by_default(self):
        self.order("big")
        ids = [c["id"] for c in self.home.ok("configs")["configurations"]]
        self.assertEqual(ids, ["small", "big"])

    def test_hide_when_empty(self):
        self.home.write_config(pool_config(self.ssh.port, hide_when_empty=True))
        self.assertEqual([c["id"] for c in self.home.ok("configs")["configurations"]],
                         ["small", "big"])
        task_id = self.order("big")
        self.assertEqual([c["id"] for c in self.home.ok("configs")["configurations"]],
                         ["small"])
        self.assertEqual(self.home.run("task", "release", task_id, "--force").code, 0)
        self.assertEqual([c["id"] for c in self.home.ok("configs")["configurations"]],
                         ["small", "big"])


class ReleaseTest(PoolTestCase):
    def test_release_a_failed_task(self):
        self.ssh.silent = True
        task_id = self.order("big")
        self.assertEqual(self.home.run("task", "fail", task_id, "--message", "broken disk")
                         .code, 0)
        self.assertError(self.home.run("order", "big"), 109)
        result = self.home.run("task", "release", task_id)
        self.assertEqual(result.code, 0, result)
        self.assertIn("127.0.1.3", result.text)
        self.assertEqual(self.home.state()["pool"], {})
        self.assertEqual(self.status(task_id)["message"], "broken disk")
        self.ssh.silent = False
        again = self.settled(self.order("big"))
        self.assertEqual(again["server"], "127.0.1.3")
        log = self.home.read(self.home.log_path).decode("utf-8")
        self.assertIn(" release task=%s " % task_id, log)

    def test_release_a_pending_task_makes_it_error(self):
        self.ssh.silent = True
        task_id = self.order("big")
        self.assertEqual(self.status(task_id)["status"], "in_progress")
        self.assertEqual(self.home.run("task", "release", task_id).code, 0)
        self.ssh.silent = False
        answer = self.status(task_id)
        self.assertEqual(answer["status"], "error")
        self.assertEqual(answer["server_password"], "")
        self.assertIn("went back to the pool", answer["message"])

    def test_task_fail_keeps_the_server_taken_and_says_how_to_release_it(self):
        self.ssh.silent = True
        task_id = self.order("big")
        result = self.home.run("task", "fail", task_id, "--message", "wrong disk")
        self.assertEqual(result.code, 0, result)
        self.assertIn("it still holds pool server 127.0.1.3: `provider task release %s`"
                      % task_id, result.text)
        self.assertEqual(self.home.state()["pool"], {"127.0.1.3": task_id})
        self.assertEqual(self.home.run("task", "release", task_id).code, 0)
        self.assertEqual(self.home.state()["pool"], {})

    def test_a_password_no_file_can_hold_is_a_config_error(self):
        # Regression: "\\ud800" passed the check, then every order crashed (N199).
        servers = [{"server": "127.0.0.1", "password": "ab\ud800cd"}]
        self.home.write_config(json.dumps(pool_config(self.ssh.port, servers)))   # \ud800 escaped
        answer = self.home.ok("help")
        self.assertEqual(answer["status"], "disabled")
        self.assertIn("$.configurations[0].servers[0].password: is not valid Unicode",
                      answer["message"])
        self.assertError(self.home.run("order", "small"), 104, "order")
        self.assertEqual(os.listdir(self.home.dir + "/var") if os.path.isdir(
            self.home.dir + "/var") else [], [])

    def test_a_failed_task_keeps_no_password(self):
        # Regression: only finished tasks had their password removed; a failed
        # one kept it in the state (and out of the archive) for ever.
        self.ssh.silent = True
        task_id = self.order("big")
        self.assertIn(b"pw-big", self.home.read(self.home.state_path))
        self.assertEqual(self.home.run("task", "fail", task_id, "--message", "no").code, 0)
        for path in (self.home.state_path, self.home.backup_path):
            self.assertNotIn(b"pw-big", self.home.read(path), path)
        self.assertEqual(self.status(task_id)["status"], "error")
        self.assertEqual(self.home.run("task", "release", task_id).code, 0)
        result = self.home.run("state", "compact", "--days", "0")   # nothing holds it back now
        self.assertIn("moved 1 task(s)", result.text)

    def test_finished_needs_force(self):
        task_id = self.order("big")
        self.assertEqual(self.settled(task_id)["status"], "finished")
        message = self.assertError(self.home.run("task", "release", task_id), 111,
                                   "task release")
        self.assertIn("--force", message)
        self.assertEqual(self.home.state()["pool"], {"127.0.1.3": task_id})
        self.assertEqual(self.home.run("task", "release", task_id, "--force").code, 0)
        self.assertEqual(self.home.state()["pool"], {})
        row = self.home.run("tasks").text.splitlines()[1]
        self.assertNotIn("127.0.1.3", row)          # the server is back in the pool
        self.assertIn("(released)", row)
        self.assertEqual(self.status(task_id)["status"], "error")
        self.assertError(self.home.run("task", "release", task_id), 111)

    def test_a_sold_out_pool_is_a_warning_in_check(self):
        self.ssh.silent = True
        self.order("big")
        result = self.home.run("check")
        self.assertIn("WARN pool: configuration big has 0 of 1 server(s) free: its orders "
                      "fail with N109", result.text)
        self.assertNotIn("FAIL pool: configuration", result.text)

    def test_finish_by_hand_with_another_server_needs_force(self):
        self.ssh.silent = True            # the worker keeps waiting: the task stays pending
        task_id = self.order("big")
        message = self.assertError(self.home.run("task", "finish", task_id, "--server",
                                                 "203.0.113.9", "--no-check", "--no-password"),
                                   111, "task finish")
        self.assertIn("claimed pool server 127.0.1.3, not 203.0.113.9", message)
        self.assertEqual(self.status(task_id)["status"], "in_progress")
        result = self.home.run("task", "finish", task_id, "--server", "203.0.113.9", "--no-check",
                               "--no-password", "--force")
        self.assertEqual(result.code, 0, result)
        self.assertEqual(self.status(task_id)["server"], "203.0.113.9")

    def test_release_needs_the_pool_backend(self):
        self.home.write_config(dict(json.loads(json.dumps(pool_config(1))),
                                    backend={"type": "manual"},
                                    configurations=[{"id": "1", "descr": "x"}]))
        task_id = self.order("1")
        self.assertError(self.home.run("task", "release", task_id), 111)
        self.assertError(self.home.run("pool"), 100, exit_code=2)


class PasswordFileTest(PoolTestCase):
    def setUp(self):
        PoolTestCase.setUp(self)
        servers = [{"server": "127.0.0.1", "password_file": "etc/secret.txt"},
                   {"server": "127.0.0.2", "password_file": "/nonexistent/pw"}]
        self.home.write_config(pool_config(self.ssh.port, servers))
        self.secret = os.path.join(os.path.dirname(self.home.config_path), "secret.txt")

    def test_read_at_order_time(self):
        with open(self.secret, "w") as handle:
            handle.write("from-file\n")
        os.chmod(self.secret, 0o600)
        answer = self.settled(self.order("small"))
        self.assertEqual((answer["server"], answer["server_password"]),
                         ("127.0.0.1", "from-file"))

    def test_missing_file_claims_nothing(self):
        message = self.assertError(self.home.run("order", "small"), 104, "order")
        self.assertIn(self.secret, message)
        self.assertIn("no server was claimed", message)
        self.assertFalse(os.path.exists(self.home.state_path))
        check = self.home.run("check")
        self.assertEqual(check.code, 1)
        self.assertIn("does not exist (create it, or name another file in the config)", check.text)


class ProbeTest(PoolTestCase):
    def reason(self, task_id, start):
        """order_status once its message gives the worker's reason (starting with start)."""
        return wait_for(lambda: (lambda a: a["message"].startswith(start) and a)(
            self.status(task_id)), what="the message %r" % start)

    def order_with_dead_worker(self):
        """An order whose worker was waiting for a silent server, then killed."""
        self.ssh.silent = True
        task_id = self.order("small")
        self.reason(task_id, "waiting for SSH on 127.0.0.1: no SSH banner")
        pid = self.home.state()["tasks"][task_id]["data"]["worker_pid"]
        os.kill(pid, signal.SIGKILL)
        wait_for(lambda: not pid_alive(pid), what="the worker to die")
        return task_id

    def test_waits_for_ssh_then_finishes(self):
        self.home.clock = os.path.join(self.home.dir, "sleeps")   # its pauses: recorded
        self.ssh.silent = True
        task_id = self.order("small")
        answer = self.reason(task_id, "waiting for SSH on 127.0.0.1: no SSH banner within 0.2 s")
        self.assertEqual((answer["status"], answer["server_password"]), ("in_progress", ""))
        self.ssh.silent = False
        answer = self.settled(task_id)
        self.assertEqual(answer["status"], "finished")
        self.assertEqual(answer["server_password"], "pw-one")
        self.assertEqual(self.home.sleeps()[0], 1.0)      # a second before the next probe

    def test_the_task_log_says_each_step_and_each_probe_as_it_happens(self):
        self.home.clock = os.path.join(self.home.dir, "sleeps")   # its pauses: recorded
        self.ssh.silent = True              # no banner (a refusal would set it aside at once)
        task_id = self.order("small")
        path = os.path.join(self.home.dir, "log", "tasks", task_id + ".log")

        def probes():
            try:
                with open(path) as handle:
                    text = handle.read()
            except IOError:
                return None
            return text.count(" provider: still waiting for SSH on 127.0.0.1: ") >= 3 and text
        text = wait_for(probes, what="three probes in the task log")
        lines = text.splitlines()
        self.assertIn(" provider: worker pid ", lines[0])
        self.assertIn(" provider: saved: in_progress (waiting_ssh): waiting for SSH on "
                      "127.0.0.1: ", lines[1])

    def test_order_and_order_status_do_not_wait_for_the_server(self):
        # A server that accepts and never answers: a probe takes its whole 5 s
        # ssh_timeout. Had order or order_status waited for one, the message
        # would say so; the wait is the worker's.
        self.home.write_config(pool_config(self.ssh.port, ssh_timeout=5))
        self.ssh.silent = True
        task_id = self.order("small")
        self.assertTrue(lock_held(os.path.join(self.home.dir, "var", "workers",
                                               task_id + ".lock")))
        answer = self.status(task_id)
        self.assertEqual(answer["status"], "in_progress")
        self.assertEqual(answer["message"], "claimed 127.0.0.1, checking SSH")
        self.assertNotIn("no SSH banner", self.home.state()["tasks"][task_id]["message"])

    def test_nothing_listening_sets_each_server_aside_and_fails_with_every_reason(self):
        self.ssh.stop()
        answer = self.settled(self.order("small"))
        self.assertEqual((answer["status"], answer["message"]), (
            "error", "no server of configuration small answers SSH: 127.0.0.1: connection "
                     "refused; 127.0.0.2: connection refused"))
        self.assertEqual(self.home.state()["pool"], {})
        self.assertEqual(sorted(self.home.state()["pool_unavailable"]),
                         ["127.0.0.1", "127.0.0.2"])

    def test_ready_timeout_ends_the_wait_with_its_reason(self):
        self.ssh.silent = True
        self.home.write_config(pool_config(self.ssh.port, ready_timeout=0.3))
        answer = self.settled(self.order("small"))
        self.assertEqual((answer["status"], answer["message"]), (
            "error", "no SSH within ready_timeout 0.3 s: 127.0.0.1: no SSH banner within 0.2 s"))

    def test_a_dead_worker_is_replaced(self):
        task_id = self.order_with_dead_worker()
        self.ssh.silent = False
        self.status(task_id)                    # starts a new worker
        self.assertEqual(self.settled(task_id)["status"], "finished")

    def test_a_dead_workers_task_fails_after_ready_timeout_with_the_last_reason(self):
        self.home.write_config(pool_config(self.ssh.port, ready_timeout=1000))
        task_id = self.order_with_dead_worker()
        state = self.home.state()
        state["tasks"][task_id]["data"]["ssh_wait_since"] -= 2000
        with open(self.home.state_path, "w") as handle:
            json.dump(state, handle)
        answer = self.status(task_id)
        self.assertEqual((answer["status"], answer["message"]), (
            "error", "no SSH within ready_timeout 1000 s: 127.0.0.1: no SSH banner within 0.2 s"))

    def test_probe_off(self):
        self.ssh.stop()
        self.home.write_config(pool_config(self.ssh.port, ssh_probe=False))
        self.assertEqual(self.status(self.order("small"))["status"], "finished")


class WaitScheduleTest(unittest.TestCase):
    """The worker's SSH wait, in-process with a recorded clock: its pauses,
    one save per new reason, and the end at ready_timeout with the reason."""

    def test_pauses_grow_to_10_s_and_ready_timeout_ends_the_wait(self):
        from helpers.cloudbase import closed_port
        from helpers.support import load_module
        provider = load_module()
        # (the command backend's wait: a pool sets a refusing server aside at once)
        backend = provider.CommandBackend({"ssh_port": closed_port(), "ssh_timeout": 0.2,
                                           "ready_timeout": 30}, None, None)
        backend.follow_config = lambda caller, log: None        # no config file here
        clock, sleeps, saves = [0.0], [], []

        def sleep(seconds):
            sleeps.append(seconds)
            clock[0] += seconds

        class Store(object):
            def find(self, task_id):
                return {"status": "in_progress"}

            def same_installation(self):
                return True

        class Caller(object):
            store = Store()

            def apply(self, task_id, changes):
                saves.append(changes["message"])
                return {"status": "in_progress"}

        class Log(object):
            notes = []

            def note(self, text):
                self.notes.append(text)

        task = {"id": "7", "server": "127.0.0.1"}
        changes = backend.wait_for_ssh(Caller(), task, Log(), {}, clock=lambda: clock[0],
                                       sleep=sleep)
        self.assertEqual(sleeps, [1, 1, 2, 2, 3, 5, 5, 10, 1])
        self.assertEqual(saves, ["waiting for SSH on 127.0.0.1: connection refused"])
        # every later probe (the same reason) is a line of the task log, not a save
        self.assertEqual(Log.notes, ["still waiting for SSH on 127.0.0.1: connection refused"]
                         * (len(sleeps) - 1))
        self.assertEqual((changes["status"], changes["message"]), (
            "error", "no SSH within ready_timeout 30 s: 127.0.0.1: connection refused"))


class BannerAt(SSHBanner):
    """An SSH banner on one address and a given port (beside another listener)."""

    def __init__(self, address, port, silent=False):
        SSHBanner.__init__(self, silent, also=[])
        self.address, self.fixed = address, port

    def _listen_all(self, socket):
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socks.append(sock)
        sock.bind((self.address, self.fixed))
        sock.listen(64)
        self.port = self.fixed


class SetAsideTest(PoolTestCase):
    """A claimed server that shows no SSH banner is set aside for the next one."""

    def test_a_silent_server_is_set_aside_after_probe_timeout(self):
        self.ssh.stop()
        self.ssh = SSHBanner(silent=True, also=[]).start()      # 127.0.0.1 only, silent
        live = BannerAt("127.0.0.2", self.ssh.port).start()
        self.addCleanup(live.stop)
        self.home.write_config(pool_config(self.ssh.port, probe_timeout=2))
        task_id = self.order("small")
        answer = self.settled(task_id)
        self.assertEqual((answer["status"], answer["server"]), ("finished", "127.0.0.2"))
        record = self.home.state()["pool_unavailable"]["127.0.0.1"]
        self.assertEqual((record["reason"], record["task"]), (
            "no SSH banner within probe_timeout 2 s (no SSH banner within 0.2 s)", task_id))
        log = self.home.read(self.home.log_path).decode()
        self.assertIn("set_aside task=%s reason=\"no SSH banner within probe_timeout" % task_id,
                      log)
        self.assertIn("claim task=%s config=\"small\" server=\"127.0.0.2\"" % task_id, log)

    def test_retry_after_and_pool_reset_bring_it_back(self):
        self.ssh.stop()
        self.home.write_config(pool_config(self.ssh.port, retry_after=0))
        self.assertEqual(self.settled(self.order("small"))["status"], "error")
        self.assertIn("127.0.0.1", self.home.state()["pool_unavailable"])
        self.assertEqual(self.home.ok("pool", "--json")["configurations"][0]["free"],
                         ["127.0.0.1", "127.0.0.2"])      # retry_after 0: due again at once
        self.home.write_config(pool_config(self.ssh.port))
        message = self.assertError(self.home.run("order", "small"), 109, "order")
        self.assertIn("no free server for configuration small; set aside as unavailable: "
                      "127.0.0.1, 127.0.0.2 (`provider pool` says why, `provider pool reset "
                      "SERVER` puts one back)", message)
        result = self.home.run("pool", "reset", "127.0.0.2")
        self.assertEqual(result.code, 0, result)
        self.assertIn("127.0.0.2 is free again for the next order (it was set aside: "
                      "connection refused)", result.text)
        self.assertError(self.home.run("pool", "reset", "127.0.0.2"), 100, "pool reset",
                         exit_code=2)
        self.assertIn(" pool_reset by=", self.home.read(self.home.log_path).decode())
        self.assertIn(' server="127.0.0.2"\n', self.home.read(self.home.log_path).decode())
        self.ssh = SSHBanner().start()
        self.addCleanup(self.ssh.stop)
        self.home.write_config(pool_config(self.ssh.port))
        answer = self.settled(self.order("small"))
        self.assertEqual((answer["status"], answer["server"]), ("finished", "127.0.0.2"))
        self.assertNotIn("127.0.0.2", self.home.state()["pool_unavailable"])


class FollowConfigTest(PoolTestCase):
    """A waiting worker takes a config changed meanwhile: the test changes the
    file and waits for what the worker does (no sleeps, a generous bound)."""

    def waiting(self, task_id):
        wait_for(lambda: self.status(task_id)["message"].startswith(
            "waiting for SSH on 127.0.0.1: no SSH banner"), timeout=60, what="the wait")

    def task_log(self, task_id):
        with open(os.path.join(self.home.dir, "log", "tasks", task_id + ".log")) as handle:
            return handle.read()

    def test_a_lowered_ready_timeout_ends_a_waiting_task(self):
        self.ssh.silent = True
        task_id = self.order("small")
        self.waiting(task_id)
        self.home.write_config(pool_config(self.ssh.port, ready_timeout=1))
        answer = wait_for(lambda: (lambda a: a["status"] != "in_progress" and a)(
            self.status(task_id)), timeout=60, what="the task to end")
        self.assertEqual((answer["status"], answer["message"]), (
            "error", "no SSH within ready_timeout 1 s: 127.0.0.1: no SSH banner within 0.2 s"))
        self.assertIn("the config changed: read again (changed: ready_timeout)",
                      self.task_log(task_id))

    def test_an_unusable_config_keeps_the_old_values_and_a_fixed_port_applies(self):
        self.ssh.silent = True
        live = SSHBanner().start()
        self.addCleanup(live.stop)
        task_id = self.order("small")
        self.waiting(task_id)
        self.home.write_config(b'{"enabled": true,')
        wait_for(lambda: "the config changed but cannot be used" in self.task_log(task_id),
                 timeout=60, what="the worker to see the broken config")
        self.assertIn("this worker keeps the values it read before", self.task_log(task_id))
        self.home.write_config(pool_config(live.port))
        answer = wait_for(lambda: (lambda a: a["status"] != "in_progress" and a)(
            self.status(task_id)), timeout=60, what="the task to end")
        self.assertEqual((answer["status"], answer["server"]), ("finished", "127.0.0.1"))
        self.assertIn("port %d answers" % live.port, answer["message"])
        self.assertIn("(changed: ssh_port)", self.task_log(task_id))

    def test_a_server_taken_out_of_the_config_is_given_back_for_the_next(self):
        self.ssh.stop()
        self.ssh = SSHBanner(silent=True, also=[]).start()      # 127.0.0.1 only, silent
        live = BannerAt("127.0.0.3", self.ssh.port).start()
        self.addCleanup(live.stop)
        self.home.write_config(pool_config(self.ssh.port))
        task_id = self.order("small")
        self.waiting(task_id)
        config = pool_config(self.ssh.port, [{"server": "127.0.0.3"}])
        self.home.write_config(config)
        answer = wait_for(lambda: (lambda a: a["status"] != "in_progress" and a)(
            self.status(task_id)), timeout=60, what="the task to end")
        self.assertEqual((answer["status"], answer["server"]), ("finished", "127.0.0.3"))
        self.assertEqual(self.home.state()["pool"], {"127.0.0.3": task_id})
        self.assertNotIn("pool_unavailable", self.home.state())
        self.assertIn("127.0.0.1: no longer in the config: given back", self.task_log(task_id))


class ReinstalledTest(PoolTestCase):
    def test_a_worker_of_the_old_installation_writes_nothing_into_the_new_state(self):
        self.ssh.silent = True                      # the claimed server shows no banner yet
        task_id = self.order("small")
        wait_for(lambda: self.home.state()["tasks"][task_id]["message"].startswith(
            "waiting for SSH"), timeout=60, what="the wait")
        # purged and installed again under the same name: its own order got the same id
        old = self.home.state()["tasks"][task_id]
        state = self.home.new_state("b" * 32)
        state["tasks"][task_id] = dict(old, message="the new installation's order", data={})
        state["next_id"] = int(task_id) + 1
        with open(self.home.state_path, "w") as handle:
            json.dump(state, handle)
        self.ssh.silent = False                     # the old worker's server answers now
        lock = os.path.join(self.home.dir, "var", "workers", task_id + ".lock")
        wait_for(lambda: not os.path.exists(lock) or not lock_held(lock), timeout=60,
                 what="the old worker gone")
        self.assertEqual(self.home.state(), state)  # nothing written: no status, no claim
        with open(os.path.join(self.home.dir, "log", "tasks", task_id + ".log")) as handle:
            self.assertIn("the state now belongs to another installation", handle.read())


def lock_held(path):
    import fcntl
    fd = os.open(path, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return False
    except OSError:
        return True
    finally:
        os.close(fd)


class ValidationTest(HomeTestCase):
    def problems(self, config):
        self.home.write_config(config)
        return self.home.ok("help")["message"]

    def test_duplicate_server_across_configurations(self):
        config = pool_config(22)
        config["configurations"][1]["servers"][0]["server"] = "127.0.0.1"
        self.assertIn("$.configurations[1].servers[0].server: duplicate server 127.0.0.1 "
                      "(also at $.configurations[0].servers[0].server)", self.problems(config))

    def test_loopback_refused_unless_allowed(self):
        config = pool_config(22)
        del config["backend"]["allow_loopback"]
        self.assertIn("$.configurations[0].servers[0].server: 127.0.0.1 is a loopback address",
                      self.problems(config))

    def test_entries(self):
        config = pool_config(0, [{"server": "10.0.0.1", "password": "a", "password_file": "b"},
                                 {"password": ""}, "x", {"server": "bad host!", "pwd": 1}])
        config["backend"]["hide_when_empty"] = "yes"
        message = self.problems(config)
        for text in ("$.backend.ssh_port: must be a TCP port",
                     "$.backend.hide_when_empty: must be a boolean",
                     "$.configurations[0].servers[0]: give password or password_file, not both",
                     "$.configurations[0].servers[1]: missing key 'server'",
                     "$.configurations[0].servers[1].password: must not be empty",
                     "$.configurations[0].servers[2]: must be an object",
                     "$.configurations[0].servers[3].pwd: unknown key"):
            self.assertIn(text, message)
        config = pool_config(22, [{"server": "bad host!"}])
        self.assertIn('$.configurations[0].servers[0].server: "bad host!" is not an IP '
                      'address or host name', self.problems(config))

    def test_servers_required(self):
        config = pool_config(22)
        del config["configurations"][0]["servers"]
        self.assertIn("$.configurations[0]: missing key 'servers'", self.problems(config))


class PoolCommandTest(PoolTestCase):
    def test_lists_free_and_taken_without_passwords(self):
        task_id = self.order("small")
        self.settled(task_id)
        result = self.home.run("pool")
        self.assertEqual(result.code, 0, result)
        self.assertNotIn("pw-", result.text)
        self.assertIn("small: 1 free, 1 taken", result.text)
        answer = self.home.ok("pool", "--json")
        self.assertEqual(answer["configurations"][0], {
            "id": "small", "free": ["127.0.0.2"], "unavailable": [],
            "taken": [{"server": "127.0.0.1", "task_id": task_id, "status": "finished"}]})
        self.assertEqual(answer["configurations"][1]["free"], ["127.0.1.3"])
        self.assertNotIn("pw-", json.dumps(answer))


if __name__ == "__main__":
    unittest.main()
