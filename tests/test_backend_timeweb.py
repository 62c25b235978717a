# -*- coding: utf-8 -*-
"""The Timeweb Cloud backend against tests/helpers/fakecloud.py's FakeTimeweb."""

import os
import unittest

from helpers.cloudbase import CloudTests
from helpers.fakecloud import FakeTimeweb
from helpers.support import wait_for


class TimewebTest(CloudTests, unittest.TestCase):
    FAKE = FakeTimeweb
    TYPE = "timeweb"
    LABEL = "Timeweb"
    CONFIGURATION = {"preset_id": 2447, "os_id": 99, "availability_zone": "spb-3"}
    REFUSAL = "Timeweb: bad_request: preset 2447 is not available"

    def user_data(self, request):
        return request["body"]["cloud_init"]

    def refuse_next_create(self):
        self.api.error_next(400, "bad_request", ["preset 2447 is not available"],
                            method="POST", path=r"^/servers$")

    def test_the_server_carries_name_comment_and_the_configuration(self):
        task_id = self.order()
        body = self.api.create_requests()[0]["body"]
        self.assertEqual((body["preset_id"], body["os_id"], body["availability_zone"]),
                         (2447, 99, "spb-3"))
        self.assertNotIn("image_id", body)
        self.assertIn("task=%s" % task_id, body["comment"])
        self.assertTrue(body["name"].endswith("-%s-%s" % (task_id, body["comment"].split(
            "owner=")[1].split()[0])), body)

    def test_a_configuration_without_preset_id_is_refused_as_a_config_error(self):
        self.configure({"preset_id": None})
        problem = "$.configurations[0]: missing key 'preset_id' (a timeweb backend needs " \
                  "preset_id)"
        answer = self.run_plugin("help").json
        self.assertEqual(answer["status"], "disabled", answer)
        self.assertIn(problem, answer["message"])
        message = self.assertErrorCode(self.run_plugin("order", "1"), 104)
        self.assertIn(problem, message)
        self.assertEqual(self.api.requests, [])
        self.assertFalse(os.path.exists(self.home.state_path))     # no task was made
        result = self.run_plugin("check")
        self.assertEqual(result.code, 1, result)
        self.assertIn(problem, result.text)
        self.assertTrue(any(line.startswith("FAIL") and problem in line
                            for line in result.text.splitlines()), result.text)

    def test_a_listing_that_never_ends_is_searched_a_bounded_number_of_pages(self):
        # offset ignored, meta.total a billion: two pages show it adds nothing new
        for number in range(130):
            self.api.add_server("someone-else-%d" % number)
        task_id = self.order_losing_the_server_id()
        self.api.ignore_filters = True
        before = len(self.api.requests_for("GET", r"^/servers$"))
        answer = self.ok("order_status", task_id)
        self.assertEqual(answer["status"], "in_progress", answer)
        self.assertEqual(len(self.api.requests_for("GET", r"^/servers$")) - before, 2)
        self.api.ignore_filters = False
        self.age_task(task_id, 60)
        self.finished(task_id)
        self.assertEqual(len(self.api.create_requests()), 1)     # found, not made again

    def test_the_look_up_pages_through_many_servers(self):
        for number in range(130):
            self.api.add_server("someone-else-%d" % number)
        self.finished(self.order_losing_the_server_id())
        self.assertEqual(len(self.api.servers), 131)
        self.assertEqual(len(self.api.create_requests()), 1)
        offsets = [r["query"].get("offset") for r in self.api.requests_for("GET", r"^/servers$")]
        self.assertIn(["100"], offsets)

    def test_a_deletion_timeweb_wants_confirmed_is_explained(self):
        self.api.delete_needs_confirmation = True
        task_id = self.order()
        self.ok("order_status", task_id)
        result = self.run_plugin("task", "delete-server", task_id, "--yes")
        message = self.assertErrorCode(result, 108)
        self.assertIn("only once its deletion is confirmed with the code", message)
        self.assertIn("is_able_to_delete deletes at once", message)
        self.assertIn("ok   Timeweb deletes a failed order's server at once only when the token "
                      "was made with is_able_to_delete", self.run_plugin("check").text)
        self.assertEqual(len(self.api.servers), 1)
        self.assertEqual(self.ok("order_status", task_id)["status"], "finished")
        self.assertNotIn("server_deleted", self.home.state()["tasks"][task_id]["data"])

    def test_a_failed_orders_server_waiting_for_confirmation_stays_held_until_gone(self):
        # a 200 to DELETE is not a deletion: the task holds the server until Timeweb no
        # longer lists it, and the cleanup only looks (no DELETE, no new code) meanwhile
        self.api.delete_needs_confirmation = True
        self.ssh_answers(1)                      # cloud-init never finishes
        task_id = self.order()
        self.ok("order_status", task_id)
        self.age_task(task_id, 3601)             # past its timeout
        answer = self.ok("order_status", task_id)
        self.assertEqual(answer["status"], "error", answer)
        [server_id] = list(self.api.servers)
        message = self.saved_message(task_id, "only once its deletion is confirmed")
        self.assertIn("RENTS", self.run_plugin("tasks").text)
        self.assertIn(str(server_id), self.run_plugin("tasks").text)      # RENTS it
        self.assertIn("task %s (error, being deleted)" % task_id, self.run_plugin("servers").text)
        deletes = len(self.api.requests_for("DELETE"))
        self.assertEqual(deletes, 1, message)
        self.api.remove_server(server_id)       # someone deleted it in the panel
        wait_for(lambda: self.home.state()["tasks"][task_id]["data"].get("server_deleted"),
                 what="the deletion noticed")
        self.assertEqual(len(self.api.requests_for("DELETE")), deletes)
        wait_for(lambda: "deleted (Timeweb no longer lists it)" in self.home.read(
            self.home.log_path).decode(), what="the deletion in the audit log")


if __name__ == "__main__":
    unittest.main()
