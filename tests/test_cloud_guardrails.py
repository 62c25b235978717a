# -*- coding: utf-8 -*-
"""The cloud layer's guardrails against the fake APIs: max_servers and
max_orders_per_hour, on_failure cleanup, fallback zones and types, `order
--dry-run`, the `servers` orphan sweep, and every rented server accounted for
whatever fails. GuardrailTests runs here on Hetzner and Timeweb
(tests/helpers/fakecloud.py), and in test_backend_openstack, test_backend_yandex and
test_backend_proxmox on theirs.
"""

import json
import os
import random
import signal
import subprocess
import time
import unittest
from unittest import mock

from helpers.cloudbase import TOKEN, CloudHome, closed_port, provider
from helpers.fakecloud import FakeHetzner, FakeTimeweb
from helpers.robust_support import figure, seed
from helpers.support import caller_parse, wait_for


class GuardrailTests(CloudHome):
    """What every cloud backend's guardrails do; mixed into a unittest.TestCase."""

    ZONE = None            # the configuration's zone / location parameter
    ZONES = None           # three of the provider's zone names
    CAPACITY = None        # (status, code, message) of a "none left here" refusal
    TOKEN_HEADER = "Authorization"     # the request header that carries the token
    BODY_ZONE = None       # the create request's key for the zone (default: ZONE)
    FORBIDDEN = "forbidden"    # how a message names the API's code of a plain 403

    def concurrent_orders(self, count):
        """`order 1` run `count` times at once; the parsed answers."""
        self.home.clock = None          # real time: they wait for each other's lock
        procs = [subprocess.Popen(self.home.command(["order", "1"]),
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  env=self.home.env(self.env), cwd=self.home.dir)
                 for _ in range(count)]
        results = []
        for proc in procs:
            out, err = proc.communicate(timeout=60)
            results.append((out, err))
        return [caller_parse(out) for out, _ in results]

    def refuse_for_capacity(self):
        status, code, message = self.CAPACITY
        self.api.error_next(status, code, message, method="POST", path=self.create_path())

    def create_path(self):
        return "^%s/?$" % self.CREATE_PATH

    def servers_url(self):
        """The base URL the creates go to."""
        return self.api.url

    def zones_asked(self):
        return [r["body"].get(self.BODY_ZONE or self.ZONE) for r in self.api.create_requests()]

    # -- max_servers, max_orders_per_hour ------------------------------------------------

    def test_max_servers_holds_under_concurrent_orders(self):
        self.configure(max_servers=4)
        answers = self.concurrent_orders(8)
        created = [a["task_id"] for a in answers if "task_id" in a]
        refused = [a["error_message"] for a in answers if "error" in a]
        self.assertEqual(len(created), 4, answers)
        self.assertEqual(len(refused), 4, answers)
        for message in refused:
            self.assertIn("order error N109, ", message)
            self.assertIn("backend.max_servers is 4 and 4 %s servers held" % self.LABEL,
                          message)
        # `order` waits about a second for its worker's create: a loaded machine may take more
        wait_for(lambda: len(self.api.create_requests()) >= 4, what="the four creates")
        for task_id in created:
            self.worker_done(task_id)
        self.assertEqual(len(self.api.create_requests()), 4)
        self.assertEqual(len(self.api.servers), 4)

    def test_the_cap_counts_servers_held_and_frees_deleted_ones(self):
        self.configure({"max_servers": 1}, max_orders_per_hour=2, hide_when_full=True)
        first = self.order()
        self.finished(first)
        self.assertErrorCode(self.run_plugin("order", "1"), 109)  # finished: still held
        self.assertEqual(self.ok("configs")["configurations"], [])   # hide_when_full
        self.assertIn("guardrails: 1 %s server(s) held now, max_orders_per_hour 2; "
                      "on_failure delete" % self.LABEL, self.run_plugin("check").text)
        self.home.caller_marks(first, "complete: added to the pool")
        self.assertErrorCode(self.run_plugin("task", "delete-server", first, "--yes"), 111)
        result = self.run_plugin("task", "delete-server", first, "--yes", "--force")
        self.assertEqual(result.code, 0, result)
        self.assertEqual([c["id"] for c in self.ok("configs")["configurations"]], ["1"])
        self.order()
        self.configure({"max_servers": 5}, max_orders_per_hour=2)
        message = self.assertErrorCode(self.run_plugin("order", "1"), 109)
        self.assertIn("backend.max_orders_per_hour is 2 and 2 orders came in the last hour",
                      message)
        self.assertEqual(len(self.api.create_requests()), 2)

    # -- on_failure -------------------------------------------------------------------

    def test_a_failed_readiness_deletes_the_server_retrying_a_failed_delete(self):
        self.configure(ssh_port=closed_port(), ready_timeout=0.3)   # SSH never answers
        task_id = self.order()
        self.api.fail_next(403, method="DELETE")   # the first delete is refused
        answer = self.poll(task_id, limit=100)[-1]
        server_id = self.home.state()["tasks"][task_id]["data"]["server_id"]
        self.assertEqual(answer["status"], "error")
        self.assertIn("no SSH within ready_timeout 0.3 s", answer["message"])
        # the failure was saved saying so (the cleanup worker, on the test's virtual
        # clock, may have deleted the server by the time the answer was read)
        with open(self.home.log_path) as handle:
            self.assertIn("deleting %s server %s (on_failure: delete)" % (self.LABEL, server_id),
                          handle.read())
        wait_for(lambda: not self.api.servers, what="the cleanup worker's delete")
        self.assertEqual(len(self.api.requests_for("DELETE")), 2)
        answer = wait_for(lambda: "deleted" in self.ok("order_status", task_id)["message"]
                          and self.ok("order_status", task_id), what="the task's message")
        self.assertIn("%s server %s deleted (on_failure: delete)" % (self.LABEL, server_id),
                      answer["message"])
        data = self.home.state()["tasks"][task_id]["data"]
        self.assertEqual((data["cleanup"], data["cleanup_tries"]), ("done", 1))
        self.assertIn("server_deleted", data)
        self.ok("order_status", task_id)           # nothing more to do: no new worker
        self.assertEqual(len(self.api.requests_for("DELETE")), 2)

    def test_the_cleanup_worker_pauses_1_2_4_seconds_between_failed_deletes(self):
        # in-process, with the worker's sleeps recorded instead of waited
        task_id = self.order()
        self.finished(task_id)
        plugin = provider.Provider(provider.Paths(self.home.script))
        plugin.store.update(lambda state: state["tasks"][task_id].update(
            status="error", data=dict(state["tasks"][task_id]["data"], cleanup="pending",
                                      failed_because="given up")))
        backend = plugin.config.backend
        [(ok, text)] = backend.cleanup.cleanup_report(plugin.store.load())     # for `check`
        self.assertTrue(ok)
        self.api.fail_next(403, count=4, method="DELETE")    # refused: not retried at once

        def stop(seconds):
            raise KeyboardInterrupt          # the first worker stops at its first pause
        with mock.patch.object(provider.time, "sleep", stop):
            self.assertRaises(KeyboardInterrupt, backend.supervise, plugin, task_id)
        [(ok, text)] = backend.cleanup.cleanup_report(plugin.store.load())
        self.assertFalse(ok)
        self.assertIn("(1 tries failed, the last: %s: %s" % (self.LABEL, self.FORBIDDEN), text)
        waits = []
        with mock.patch.object(provider.time, "sleep", waits.append):
            text = backend.supervise(plugin, task_id)
        self.assertEqual(waits, [1.0, 2.0, 4.0])
        self.assertIn("deleted", text)
        self.assertEqual(self.api.servers, {})
        task = plugin.store.find(task_id)
        self.assertEqual((task["data"]["cleanup"], task["data"]["cleanup_tries"]), ("done", 4))
        self.assertEqual(backend.cleanup.cleanup_report(plugin.store.load()), [])

    def test_a_server_an_unconfirmed_create_made_late_is_found_and_deleted(self):
        self.api.fail_next(500, method="POST", path=self.create_path())   # nothing made
        task_id = self.order()
        self.worker_done(task_id)                   # its look-up after the create found none
        self.age_task(task_id, 3601)                                    # past `timeout`
        data = self.home.state()["tasks"][task_id]["data"]
        self.api.add_server(data["name"], **self.marks(data["owner"], task_id))  # shows late
        # the cleanup worker's first look-up fails (it runs on the test's virtual clock:
        # its next one comes at once)
        self.api.server_error_next(method="GET", path=self.SERVERS_PATH)
        answer = self.ok("order_status", task_id)
        self.assertEqual(answer["status"], "error")
        self.assertTrue(answer["message"].startswith("timed out after 1h"), answer)
        wait_for(lambda: not self.api.servers, what="the late server's deletion")
        self.assertEqual(self.home.state()["tasks"][task_id]["data"]["cleanup_tries"], 1)
        answer = wait_for(lambda: "deleted" in self.ok("order_status", task_id)["message"]
                          and self.ok("order_status", task_id), what="the task's message")
        self.assertRegex(answer["message"], r"; %s server \S+ deleted \(on_failure: delete\)$"
                         % self.LABEL)

    def test_task_fail_deletes_the_server_at_once(self):
        self.ssh_answers(1)
        task_id = self.order()
        self.ok("order_status", task_id)
        [server_id] = [str(i) for i in self.api.servers]
        result = self.run_plugin("task", "fail", task_id, "--message", "not needed")
        self.assertEqual(result.code, 0, result)
        self.assertIn("%s server %s deleted" % (self.LABEL, server_id), result.text)
        self.assertEqual(self.api.servers, {})
        answer = self.ok("order_status", task_id)
        self.assertEqual(answer["message"], "not needed; %s server %s deleted "
                         "(on_failure: delete)" % (self.LABEL, server_id))

    # -- money: every rented server accounted for, whatever fails ----------------------
    # Each test counts the servers at the fake: one per order while it lives, none once a
    # failed order's cleanup is over, never one of another installation touched.

    def worker_pid(self, task_id):
        lock = os.path.join(self.home.dir, "var", "workers", task_id + ".lock")
        return wait_for(lambda: (provider.WorkerReport.read(lock) or provider.WorkerReport()).pid,
                        what="task %s's worker pid" % task_id)

    def kill_worker(self, task_id):
        pid = self.worker_pid(task_id)
        os.kill(pid, signal.SIGKILL)
        lock = os.path.join(self.home.dir, "var", "workers", task_id + ".lock")
        wait_for(lambda: not provider.lock_is_held(lock), what="the killed worker gone")

    def test_task_fail_while_a_lost_create_lands_late_deletes_the_server(self):
        self.configure(request_timeout=30)           # a paused look-up is waited for
        late = self.api.late_next_create(status=504)  # a gateway gave up; made when released
        task_id = self.order()
        self.assertEqual(self.api.servers, {})
        # the cleanup's second look-up (after `task fail`'s own) waits for the late server
        look = self.api.pause_next(method="GET", path=self.SERVERS_PATH, skip=1)
        result = self.run_plugin("task", "fail", task_id, "--message", "not needed")
        self.assertEqual(result.code, 0, result)
        self.assertIn("looking for the server a create the plugin sent may have made",
                      result.text)
        self.assertTrue(look.reached.wait(30), "the cleanup's look-up never came")
        late.set()                                   # the cloud makes it only now
        wait_for(lambda: self.api.servers, what="the late server")
        look.release()
        wait_for(lambda: not self.api.servers, what="the late server's deletion")
        task = wait_for(lambda: self.home.state()["tasks"][task_id]["data"].get(
            "server_deleted") and self.home.state()["tasks"][task_id], what="the task noting it")
        self.assertEqual((task["status"], task["data"]["cleanup"]), ("error", "done"))
        self.assertRegex(task["message"], r"^not needed; %s server \S+ deleted" % self.LABEL)
        self.assertEqual(len(self.api.create_requests()), 1)

    def test_with_on_failure_keep_a_lost_create_landing_late_is_found_and_kept(self):
        self.configure(request_timeout=30, on_failure="keep")
        late = self.api.late_next_create(status=504)
        task_id = self.order()
        look = self.api.pause_next(method="GET", path=self.SERVERS_PATH, skip=1)
        result = self.run_plugin("task", "fail", task_id, "--message", "not needed")
        self.assertEqual(result.code, 0, result)
        self.assertIn("may have made (%s), to keep it" % self.home.state()["tasks"][task_id][
            "data"]["name"], result.text)
        self.assertTrue(look.reached.wait(30), "the cleanup's look-up never came")
        late.set()
        wait_for(lambda: self.api.servers, what="the late server")
        look.release()
        task = wait_for(lambda: self.home.state()["tasks"][task_id]["data"].get(
            "cleanup") == "kept" and self.home.state()["tasks"][task_id], what="the server kept")
        self.assertEqual([str(key) for key in self.api.servers], [task["data"]["server_id"]])
        self.assertTrue(provider.may_rent(task))      # billed: counted, and deleted by hand
        self.assertIn("task delete-server %s --yes" % task_id, task["message"])
        self.assertIn(task_id, self.run_plugin("tasks", "--holding").text)
        self.worker_gone(task_id)
        self.assertEqual((len(self.api.servers), len(self.api.create_requests())), (1, 1))

    def test_a_lost_create_never_made_is_settled_after_its_look_ups_whatever_on_failure(self):
        for count, on_failure in enumerate(("delete", "keep"), 1):
            self.configure(on_failure=on_failure)
            self.api.hang_next(0, method="POST", path=self.create_path(), apply=False)
            task_id = self.order()                   # its create's answer never came
            self.assertTrue(provider.may_rent(self.home.state()["tasks"][task_id]))
            result = self.run_plugin("task", "fail", task_id, "--message", "not needed")
            self.assertIn("to %s it" % on_failure, result.text)
            task = wait_for(lambda: self.home.state()["tasks"][task_id]["data"].get(
                "cleanup") == "done" and self.home.state()["tasks"][task_id],
                what="the look-ups' end")                # their pauses: the virtual clock's
            self.assertRegex(task["message"], r"^not needed; no server was found in \d+ "
                             r"look-ups over .* \(on_failure: %s\)$" % on_failure)
            self.assertFalse(provider.may_rent(task))
            self.assertNotIn(task_id, self.run_plugin("tasks", "--holding").text)
            self.assertEqual((self.api.servers, len(self.api.create_requests())), ({}, count))

    def test_a_failed_1x_order_whose_create_went_unanswered_is_looked_up_after_the_upgrade(self):
        self.configure(request_timeout=120)          # the worker waits for the answer held
        held = self.api.hold_next_create()           # made; its answer never reaches us
        task_id = self.order(wait=False)
        wait_for(lambda: self.api.servers, what="the server made")
        self.kill_worker(task_id)
        held.set()
        state = self.home.state()                    # as provider.py 1.x left it
        self.assertNotIn("server_id", state["tasks"][task_id]["data"])   # never learnt
        for key in ("installation", "workers"):
            state.pop(key, None)
        state["tasks"][task_id].update(status="error", phase="failed", message="timed out")
        with open(self.home.state_path, "w") as handle:
            json.dump(state, handle)
        self.assertIn(task_id, self.run_plugin("tasks", "--holding").text)
        second = self.order()                        # the first write after the upgrade
        try:
            wait_for(lambda: len(self.api.servers) == 1, what="the 1.x order's server deleted")
        except AssertionError:
            log = os.path.join(self.home.dir, "log", "tasks", task_id + ".log")
            raise AssertionError("the 1.x order's server is not deleted: %r\n%s\n%s" % (
                self.home.state()["tasks"][task_id], open(log).read() if os.path.exists(log)
                else "(no task log)", open(self.home.log_path).read()[-3000:]))
        task = self.worker_gone(task_id) or self.home.state()["tasks"][task_id]
        self.assertEqual((task["status"], task["data"]["cleanup"]), ("error", "done"))
        self.assertRegex(task["message"], r"^timed out; %s server \S+ deleted" % self.LABEL)
        self.assertRegex(" ".join(self.home.state()["legacy_owner_tags"]), "^[0-9a-f]{8}$")
        self.assertEqual(self.home.state()["tasks"][second]["status"], "in_progress")

    def test_sigkill_of_orders_and_workers_at_random_moments_leaves_no_server_unaccounted(self):
        # every `order` call is killed at a random moment, and often its worker too (a
        # create on its way, its answer lost, nothing saved yet...); then every order still
        # pending is failed: each server at the fake is held by a finished task, every
        # other one deleted, and no task may still rent one (replay: BXPROVIDER_SEED=N)
        value = seed()
        rng = random.Random(value)
        figure("cloud crash seed=%d (replay: BXPROVIDER_SEED=%d)" % (value, value))
        self.configure(poll_interval=0.2)           # the workers go on without a call
        self.home.clock = None                      # kills land in real time
        started = time.time()
        self.finished(self.order())
        span = time.time() - started
        for _ in range(6):
            proc = subprocess.Popen(self.home.command(["order", "1"]), stdin=subprocess.DEVNULL,
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                    env=self.home.env(self.env), cwd=self.home.dir)
            time.sleep(rng.uniform(0, span))
            proc.kill()
            proc.wait()
            state = self.home.state()
            for task_id, task in state["tasks"].items():
                lock = os.path.join(self.home.dir, "var", "workers", task_id + ".lock")
                report = provider.WorkerReport.read(lock)
                if report is not None and report.pid and rng.random() < 0.5:
                    try:
                        os.kill(report.pid, signal.SIGKILL)
                    except OSError:
                        pass                        # it had ended
        for task_id in self.home.state()["tasks"]:  # no worker left: the rest is replayed
            lock = os.path.join(self.home.dir, "var", "workers", task_id + ".lock")
            report = provider.WorkerReport.read(lock)
            if report is not None and report.pid:
                try:
                    os.kill(report.pid, signal.SIGKILL)
                except OSError:
                    pass
            wait_for(lambda: not provider.lock_is_held(lock), what="worker %s gone" % task_id)
        self.home.clock = os.path.join(self.tmp, "sleeps")     # the look-ups' pauses pass
        self.configure(poll_interval=3600)
        for task_id, task in self.home.state()["tasks"].items():
            if task["status"] == "in_progress":
                self.run_plugin("task", "fail", task_id, "--message", "crash test")
        self.run_plugin("tasks")                    # a worker for each that needs one
        for task_id in self.home.state()["tasks"]:
            self.worker_gone(task_id)
        tasks = list(self.home.state()["tasks"].values())
        held = sorted(provider.rented_server(t) for t in tasks if t["status"] == "finished")
        figure("cloud crash seed=%d: %d orders made a task, %d finished, %d failed (%d of them "
               "after a create: their servers %s), %d servers made" % (
                   value, len(tasks), len(held), len(tasks) - len(held),
                   sum(1 for t in tasks if t["status"] != "finished" and t["data"].get("creates")),
                   "deleted or never made", len(self.api.create_requests())))
        self.assertEqual(sorted(str(key) for key in self.api.servers), held)
        self.assertEqual([t["id"] for t in tasks if t["status"] != "finished"
                          and provider.may_rent(t)], [])

    def test_a_killed_worker_and_nobody_polling_past_timeout_still_deletes_the_server(self):
        held = self.api.hold_next_create()           # made; its answer never reaches us
        task_id = self.order(wait=False)
        wait_for(lambda: self.api.servers, what="the server made")
        self.kill_worker(task_id)                    # a reboot, say
        held.set()
        self.age_task(task_id, 3601)                 # past `timeout`; nobody asked
        self.assertEqual(len(self.api.servers), 1)
        result = self.run_plugin("tasks")            # any call: it starts a worker again
        self.assertEqual(result.code, 0, result)
        wait_for(lambda: not self.api.servers, what="the server's deletion")
        task = self.worker_gone(task_id) or self.home.state()["tasks"][task_id]
        self.assertEqual(task["status"], "error")
        self.assertRegex(task["message"], r"^timed out after 1h.*; %s server \S+ deleted "
                         r"\(on_failure: delete\)$" % self.LABEL)
        self.assertEqual(len(self.api.create_requests()), 1)

    def test_an_order_whose_worker_died_ends_when_another_task_is_asked(self):
        held = self.api.hold_next_create()
        task_id = self.order(wait=False)
        wait_for(lambda: self.api.servers, what="the server made")
        self.kill_worker(task_id)                    # `order` killed before it answered
        held.set()
        self.configure(poll_interval=0.1)            # no call will ask for this task
        other = self.order()
        self.assertNotEqual(other, task_id)
        self.ok("order_status", other)               # it starts task_id's worker again
        wait_for(lambda: self.home.state()["tasks"][task_id]["status"] == "finished",
                 what="the order finished by its own worker")
        self.assertEqual(len(self.api.servers), 2)   # one each: the lost answer was found
        self.assertEqual(len(self.api.create_requests()), 2)

    def test_an_order_nobody_polls_ends_by_itself(self):
        self.configure(poll_interval=0.1)
        task_id = self.order()
        task = wait_for(lambda: self.home.state()["tasks"][task_id]["status"] == "finished"
                        and self.home.state()["tasks"][task_id], what="the order finished")
        self.assertTrue(task["message"].startswith("ready: "), task)
        self.assertEqual(len(self.api.servers), 1)
        self.worker_gone(task_id)                    # and its worker ends with it
        with open(os.path.join(self.home.dir, "log", "tasks", task_id + ".log")) as handle:
            steps = handle.read()
        self.assertIn("finished: ready: ", steps)    # the task log tells each step

    def test_a_create_that_lands_late_is_never_made_twice(self):
        # a gateway answers 504 at once; the cloud carries the create out 40 s later
        late = self.api.late_next_create(status=504)
        task_id = self.order()
        self.age_task(task_id, 40)
        answer = self.ok("order_status", task_id)
        self.assertEqual(answer["status"], "in_progress", answer)
        self.assertIn("may land for", answer["message"])
        late.set()
        wait_for(lambda: self.api.servers, what="the late server")
        self.finished(task_id)
        self.assertEqual(len(self.api.create_requests()), 1)
        self.assertEqual(len(self.api.servers), 1)

    def test_two_servers_found_for_one_task_keep_one(self):
        self.api.server_error_next(method="POST")    # nothing made, not confirmed
        task_id = self.order()
        data = self.home.state()["tasks"][task_id]["data"]
        for _ in range(2):                           # a late create and its retry landed
            self.api.add_server(data["name"], **self.marks(data["owner"], task_id))
        kept, extra = sorted(self.api.servers)
        self.finished(task_id)
        self.assertEqual(sorted(self.api.servers), [kept])
        self.assertEqual(str(self.home.state()["tasks"][task_id]["data"]["server_id"]),
                         str(self.api.server(kept)["id"]) if isinstance(kept, int) else kept)
        with open(os.path.join(self.home.dir, "log", "tasks", task_id + ".log")) as handle:
            self.assertIn("shows two servers named %s: kept %s, deleting %s" % (
                data["name"], kept, extra), handle.read())

    def test_another_installations_server_of_the_same_task_is_never_touched(self):
        # two masters with one host name at the standard path: each has its own tag
        foreign = provider.owner_tag(dict(installation="f" * 32))
        self.api.add_server("provider-1-%s" % foreign, **self.marks(foreign, "1"))
        [theirs] = list(self.api.servers)
        task_id = self.order()
        self.assertEqual(task_id, "1")
        self.finished(task_id)
        self.assertNotEqual(str(self.home.state()["tasks"][task_id]["data"]["server_id"]),
                            str(theirs))
        self.run_plugin("servers", "--delete-orphans", "--yes")
        self.run_plugin("task", "fail", task_id, "--message", "no")     # finished: refused
        self.assertIn(theirs, self.api.servers)
        self.assertEqual(len(self.api.servers), 2)

    def test_a_full_disk_while_the_create_is_saved_is_named(self):
        import resource
        self.configure(request_timeout=30)          # the held answer is waited for
        held = self.api.hold_next_create()
        task_id = self.order(wait=False)
        wait_for(lambda: self.api.servers, what="the server made")
        pid = self.worker_pid(task_id)
        # its disk is full: no state (1 KB and more) can be written any more; its report
        # (512 bytes in place, like a full disk's file that needs no new block) still can
        unlimited = resource.RLIM_INFINITY
        resource.prlimit(pid, resource.RLIMIT_FSIZE, (600, unlimited))
        held.set()
        self.worker_done(task_id)
        answer = self.ok("order_status", task_id)
        self.assertIn("the task's worker cannot save its progress: N107, cannot save the "
                      "state in ", answer["message"])
        self.assertNotIn("has not answered", answer["message"])
        resource.prlimit(pid, resource.RLIMIT_FSIZE, (unlimited, unlimited))  # room again
        self.finished(task_id)
        self.assertEqual(len(self.api.servers), 1)
        self.assertEqual(len(self.api.create_requests()), 1)

    # -- fallbacks -------------------------------------------------------------------

    def test_a_zone_without_capacity_falls_through_to_the_next(self):
        self.configure({self.ZONE: self.ZONES})
        self.refuse_for_capacity()
        self.refuse_for_capacity()
        task_id = self.order()
        self.assertEqual(self.zones_asked(), self.ZONES)
        answer = self.finished(task_id)
        self.assertIn("%s %s" % (self.ZONE, self.ZONES[2]), answer["message"])
        self.assertEqual(self.home.state()["tasks"][task_id]["data"]["got"][self.ZONE],
                         self.ZONES[2])

    def test_other_refusals_never_fall_through(self):
        self.configure({self.ZONE: self.ZONES})
        self.api.error_next(403, "forbidden", "token may not create servers", method="POST",
                            path=self.create_path())
        self.assertErrorCode(self.run_plugin("order", "1"), 108)
        self.assertEqual(self.zones_asked(), self.ZONES[:1])
        for _ in range(3):
            self.refuse_for_capacity()
        message = self.assertErrorCode(self.run_plugin("order", "1"), 108)
        self.assertIn("also tried: ", message)
        self.assertEqual(self.zones_asked(), self.ZONES[:1] + self.ZONES)


    # -- order --dry-run -------------------------------------------------------------

    def test_dry_run_prints_the_request_and_creates_nothing(self):
        self.configure({self.ZONE: self.ZONES}, max_servers=3)
        result = self.run_plugin("order", "1", "--dry-run")
        self.assertEqual(result.code, 0, result)
        text = result.text
        self.assertEqual(self.api.create_requests(), [])
        # no task (a state file may only hold the token a login got: OpenStack)
        self.assertFalse(os.path.exists(self.home.state_path) and self.home.state()["tasks"])
        self.assertIn("POST %s%s\n" % (self.servers_url(), self.CREATE_PATH), text)
        self.assertIn("%s: <masked>" % self.TOKEN_HEADER, text)
        self.assertIn("ok: caps: 0 %s server(s) held now, backend.max_servers 3" % self.LABEL,
                      text)
        self.assertIn('"%s": "%s"' % (self.BODY_ZONE or self.ZONE, self.ZONES[0]), text)
        self.assertIn("has no capacity for the one before: %s %s" % (self.ZONE, self.ZONES[2]),
                      text)
        self.assertIn("<sha512-crypt hash of the root password>", text)
        self.assertIn('ed25519_private: "<masked: ', text)     # made only by a real order
        for secret in (TOKEN, "$6$"):
            self.assertNotIn(secret, text + result.err.decode("utf-8", "replace"))
        for line in self.RESOLVED:
            self.assertIn(line, text)
        self.assertEqual(self.order(), "1")      # the dry run used no task id

    UNRESOLVED = ()         # lines of a dry run without the cloud: names not looked up

    def test_dry_run_without_the_cloud_shows_the_request_all_the_same(self):
        self.api.stop()                    # nothing listens: every connection is refused
        result = self.run_plugin("order", "1", "--dry-run")
        self.assertEqual(result.code, 0, result)
        text = result.text
        self.assertIn("note: could not reach %s (" % self.LABEL, text)
        self.assertIn("no connection to ", text)
        self.assertIn("the create it would send (as task 1):\nPOST ", text)
        self.assertIn("<sha512-crypt hash of the root password>", text)
        self.assertNotIn("FAIL", text)
        for line in self.UNRESOLVED:
            self.assertIn(line, text)

    # -- servers, orphans --------------------------------------------------------------

    def test_orphans_are_found_and_deleted_and_others_servers_never(self):
        held = self.order()
        self.finished(held)
        tag = self.home.state()["tasks"][held]["data"]["owner"]
        # a second server with task 1's marks (its create landed twice): an orphan of ours
        self.api.add_server("provider-%s-%s" % (held, tag), **self.marks(tag, held))
        # task 99 is beyond this state's tasks: a lost or restored state's, another master's
        self.api.add_server("provider-99-%s" % tag, **self.marks(tag, "99"))
        # another installation's task 1 (two masters with one host name): never ours
        self.api.add_server("provider-1-00000000", **self.marks("00000000", "1"))
        self.api.ignore_filters = True      # an API ignoring the filter: still only ours
        [held_id, orphan_id, lost_id, foreign_id] = sorted(self.api.servers)
        table = self.run_plugin("servers").text
        self.assertIn("task %s (finished)" % held, table)
        self.assertRegex(table, r"\n%s +provider-1-%s .*ORPHAN" % (orphan_id, tag))
        self.assertRegex(table, r"\n%s +provider-99-%s .*NOT OURS\? its task 99 is newer "
                                r"than this state's tasks" % (lost_id, tag))
        self.assertRegex(table, r"\n%s +provider-1-00000000 .*NOT OURS\? task 1 here carries "
                                r"owner tag %s, the server 00000000" % (foreign_id, tag))
        self.assertIn("1 orphan(s)", table)
        self.assertIn("2 server(s) NOT OURS?", table)
        self.assertErrorCode(self.run_plugin("servers", "--delete-orphans"), 100, exit_code=2)
        result = self.run_plugin("servers", "--delete-orphans", "--yes")
        self.assertEqual(result.code, 0, result)
        self.assertEqual(sorted(self.api.servers), [held_id, lost_id, foreign_id])
        self.assertErrorCode(self.run_plugin("pool"), 100, exit_code=2)   # not a pool
        answer = self.run_plugin("servers", "--json").json
        self.assertEqual([(s["id"], s["orphan"], s["ours"]) for s in answer["servers"]],
                         [(str(held_id), False, True), (str(lost_id), False, False),
                          (str(foreign_id), False, False)])


class HetznerGuardrails(GuardrailTests, unittest.TestCase):
    FAKE = FakeHetzner
    TYPE = "hetzner"
    LABEL = "Hetzner"
    CONFIGURATION = {"server_type": "cx22", "image": "ubuntu-24.04", "location": "fsn1"}
    ZONE = "location"
    ZONES = ["fsn1", "nbg1", "hel1"]
    CAPACITY = (412, "resource_unavailable", "server type cx22 is unavailable in this location")
    RESOLVED = ["ok: server_type cx22: known to Hetzner", "ok: image ubuntu-24.04: known to "
                "Hetzner", "ok: location hel1: known to Hetzner"]
    UNRESOLVED = ['"server_type": "cx22"']      # sent as written: nothing to look up

    def user_data(self, request):
        return request["body"]["user_data"]

    def marks(self, tag, task_id):
        return {"labels": {"managed-by": "provider.py", "bx-owner": tag, "bx-task": task_id}}

    def test_a_deletion_counts_only_once_the_server_is_no_longer_listed(self):
        task_id = self.order()
        self.finished(task_id)
        [server_id] = [str(key) for key in self.api.servers]
        self.api.delete_lag = 6                 # its delete action outlasts the plugin's looks
        result = self.run_plugin("task", "delete-server", task_id, "--yes")
        self.assertNotEqual(result.code, 0, result)
        self.assertIn("Hetzner still lists server %s as running after its DELETE" % server_id,
                      result.text + result.err.decode())
        self.assertEqual(provider.rented_server(self.home.state()["tasks"][task_id]), server_id)
        self.assertIn(task_id, self.run_plugin("tasks", "--holding").text)
        result = self.run_plugin("task", "delete-server", task_id, "--yes")
        self.assertEqual(result.code, 0, result)
        self.assertIn("deleted (Hetzner no longer lists it)", result.text)
        self.assertEqual((self.api.servers, provider.rented_server(
            self.home.state()["tasks"][task_id])), ({}, None))

    def test_a_server_of_provider_py_1x_carries_the_legacy_tag_and_is_ours(self):
        state = self.home.new_state()
        state.update(next_id=10, legacy_owner_tags=["abcd1234"])   # as migrate leaves a 1.x one
        with open(self.home.state_path, "w") as handle:
            json.dump(state, handle)
        self.api.add_server("provider-5-abcd1234", **self.marks("abcd1234", "5"))
        self.api.add_server("provider-5-00000000", **self.marks("00000000", "5"))
        [legacy_id, foreign_id] = sorted(self.api.servers)
        table = self.run_plugin("servers").text
        self.assertRegex(table, r"\n%s +provider-5-abcd1234 .*ORPHAN" % legacy_id)
        self.assertRegex(table, r"\n%s +provider-5-00000000 .*NOT OURS\?" % foreign_id)
        self.assertEqual(self.run_plugin("servers", "--delete-orphans", "--yes").code, 0)
        self.assertEqual(sorted(self.api.servers), [foreign_id])

    def test_an_order_refused_at_the_cap_revives_the_dead_worker_of_the_task_holding_it(self):
        self.configure(max_servers=1)
        held = self.api.hold_next_create()
        task_id = self.order(wait=False)
        wait_for(lambda: self.api.servers, what="the server made")
        self.kill_worker(task_id)                    # a reboot, say; nobody polls task_id
        held.set()
        self.configure(max_servers=1, poll_interval=0.1)
        refused = self.run_plugin("order", "1")
        self.assertIn("order error N109", refused.json["error_message"])
        wait_for(lambda: self.home.state()["tasks"][task_id]["status"] == "finished",
                 what="the order finished by its revived worker")
        self.assertEqual((len(self.api.servers), len(self.api.create_requests())), (1, 1))


class TimewebGuardrails(GuardrailTests, unittest.TestCase):
    FAKE = FakeTimeweb
    TYPE = "timeweb"
    LABEL = "Timeweb"
    CONFIGURATION = {"preset_id": 2447, "os_id": 79}
    ZONE = "availability_zone"
    ZONES = ["spb-3", "msk-1", "ams-1"]
    CAPACITY = (400, "bad_request", "Preset is not available in this availability zone")
    RESOLVED = ["ok: preset_id 2447: known to Timeweb"]

    def user_data(self, request):
        return request["body"]["cloud_init"]

    def marks(self, tag, task_id):
        return {"comment": "provider.py owner=%s task=%s" % (tag, task_id)}


class SettingsTest(unittest.TestCase):
    """The guardrails' settings are checked with the config, in-process."""

    def problems(self, backend, configuration):
        settings = dict({"type": "hetzner", "token_env": "T"}, **backend)
        item = dict({"id": "1", "descr": "x", "server_type": "cx22", "image": "u"},
                    **configuration)
        return provider.validate_config({"enabled": True, "backend": settings,
                                         "configurations": [item]})

    def test_bad_guardrail_settings_are_named(self):
        self.assertEqual(sorted(self.problems({"on_failure": "destroy", "max_servers": -1,
                                               "hide_when_full": "yes"},
                                              {"max_servers": 1.5})), [
            "$.backend.hide_when_full: must be a boolean, not string",
            "$.backend.max_servers: must be a finite number, 0 to 1000000000",
            '$.backend.on_failure: must be "delete" (a failed order\'s server is deleted) or '
            '"keep" (it stays for debugging until `task delete-server`)',
            "$.configurations[0].max_servers: must be an integer, not number"])

    def test_only_plain_server_ids_reach_a_delete(self):
        for good in (4712, "4712", "8e2d1c9b-0000-4000-8000-000000000002", "fhm1abc.x_y"):
            self.assertEqual(provider.safe_server_id(good), str(good))
        for bad in ("12/../../volumes", "", "-1", ".x", "a b", "1\n", True, None, 1.5,
                    "x" * 65, "\u0661"):
            self.assertIsNone(provider.safe_server_id(bad), bad)

    def test_alternatives_are_a_value_or_a_non_empty_list_of_them(self):
        self.assertEqual(self.problems({}, {"location": ["fsn1", "nbg1"],
                                            "server_type": "cx22"}), [])
        self.assertEqual(sorted(self.problems({}, {"location": [],
                                                   "server_type": ["cx22", 7, ""]})), [
            "$.configurations[0].location: must list at least one alternative",
            "$.configurations[0].server_type[1]: must be a string, not integer",
            "$.configurations[0].server_type[2]: must not be empty"])


if __name__ == "__main__":
    unittest.main()
