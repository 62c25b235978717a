# -*- coding: utf-8 -*-
"""The Hetzner Cloud backend against tests/helpers/fakecloud.py's FakeHetzner."""

import unittest

from helpers.cloudbase import TOKEN, CloudTests
from helpers.fakecloud import FakeHetzner


class HetznerTest(CloudTests, unittest.TestCase):
    FAKE = FakeHetzner
    TYPE = "hetzner"
    LABEL = "Hetzner"
    CONFIGURATION = {"server_type": "cx22", "image": "ubuntu-24.04", "location": "fsn1"}
    REFUSAL = "Hetzner: resource_limit_exceeded: project limit exceeded (HTTP 403"
    REAL_BACKOFF = True

    def user_data(self, request):
        return request["body"]["user_data"]

    def refuse_next_create(self):
        self.api.resource_limit_next()

    def test_the_server_carries_labels_and_the_configuration(self):
        task_id = self.order()
        [create] = self.api.create_requests()
        body = create["body"]
        self.assertEqual((body["server_type"], body["image"], body["location"]),
                         ("cx22", "ubuntu-24.04", "fsn1"))
        self.assertEqual(body["labels"]["bx-task"], task_id)
        self.assertEqual(body["labels"]["managed-by"], "provider.py")
        self.assertNotIn("ssh_keys", body)
        self.finished(task_id)
        selectors = [r["query"].get("label_selector") for r in self.api.requests_for("GET")]
        self.assertEqual(selectors, [None] * len(selectors))   # the id was known: no look-up

    def test_another_masters_task_with_the_same_id_is_not_adopted(self):
        self.api.add_server("other-1-00000000", labels={
            "managed-by": "provider.py", "bx-owner": "00000000", "bx-task": "1"})
        self.finished(self.order_losing_the_server_id())
        self.assertEqual(len(self.api.servers), 2)
        self.assertEqual(len(self.api.create_requests()), 1)

    def test_an_api_error_quoting_the_token_leaves_it_nowhere(self):
        self.api.error_next(403, "forbidden", "token %s may not create servers" % TOKEN,
                            method="POST")
        message = self.assertErrorCode(self.run_plugin("order", "1"), 108)
        self.assertIn("token ******** may not create servers", message)
        for path in (self.home.log_path, self.home.state_path):
            self.assertNotIn(TOKEN.encode(), self.home.read(path), path)

    def test_a_303_to_the_create_is_not_followed_nor_taken_as_the_server(self):
        other = FakeHetzner(token=TOKEN, polls_per_status=0).start()
        self.addCleanup(other.stop)
        self.api.fail_next(303, method="POST", apply=True, raw=b"",
                           headers={"Location": other.url + "/servers/1"})
        self.finished(self.order())
        with open(self.home.log_path) as handle:
            self.assertIn("create_unconfirmed task=1 reason=\"Hetzner: POST /servers was "
                          "answered with a redirect (HTTP 303) to %s/servers/1" % other.url,
                          handle.read())
        self.assertTrue(self.api.requests_for("GET", r"^/servers$"))   # found by its labels
        self.assertEqual(other.requests, [])         # the token never went there
        self.assertEqual(len(self.api.servers), 1)

    def test_user_data_over_32_kib_is_refused_before_the_create(self):
        self.configure({"user_data": "#!/bin/sh\n" + "# padding\n" * 3300})
        message = self.assertErrorCode(self.run_plugin("order", "1"), 108)
        self.assertIn("user_data is too long", message)
        self.assertEqual(self.api.create_requests(), [])

    def test_ids_are_read_one_by_one_and_names_by_the_name_filter(self):
        # the lists filter by name only: an unknown id is unknown, not "any list"
        self.configure({"server_type": ["1", "999"], "image": "rocky-9",
                        "location": ["nbg1", "atlantis"]})
        text = self.run_plugin("order", "1", "--dry-run").text
        for line in ("ok: server_type 1: known to Hetzner", "ok: image rocky-9: known to Hetzner",
                     "ok: location nbg1: known to Hetzner"):
            self.assertIn(line, text)
        for line in ("server_type 999: unknown to Hetzner", "location atlantis: unknown to "
                     "Hetzner"):
            self.assertIn("FAIL: %s" % line, text)
        asked = [(r["path"], r["query"]) for r in self.api.requests_for("GET")]
        self.assertIn(("/server_types/999", {}), asked)
        self.assertIn(("/images", {"name": ["rocky-9"]}), asked)


if __name__ == "__main__":
    unittest.main()
