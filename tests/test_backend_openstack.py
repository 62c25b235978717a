# -*- coding: utf-8 -*-
"""The OpenStack backend (and its selectel/vkcloud presets) against
tests/helpers/fake_openstack.py: Keystone login, Nova, Neutron floating IPs, Glance;
and the cloud guardrails (test_cloud_guardrails.GuardrailTests) on it."""

import base64
import json
import os
import unittest

from helpers.cloudbase import TOKEN, CloudTests, closed_port, provider
from helpers.fake_openstack import (APP_ID, APP_SECRET, DOMAIN, EXT_NET, IMAGES, PROJECT,
                                    USER, FakeOpenStack)
from test_cloud_guardrails import GuardrailTests


class OpenStackTest(CloudTests, unittest.TestCase):
    FAKE = FakeOpenStack
    TYPE = "openstack"
    LABEL = "OpenStack"
    CONFIGURATION = {"flavor": "SL1.1-2048", "image": "Ubuntu 22.04 LTS 64-bit",
                     "availability_zone": "ru-9a"}
    SETTINGS = {"username": USER, "user_domain_name": DOMAIN, "project_name": PROJECT}
    RENAME = {"token_file": "password_file", "token_env": "password_env",
              "api_url": "auth_url"}
    FIRST_REQUEST = "POST /auth/tokens"
    REFUSAL = "OpenStack: quota exceeded in project %s: Quota exceeded for instances" % PROJECT

    def user_data(self, request):
        return base64.b64decode(request["body"]["server"]["user_data"]).decode("utf-8")

    def refuse_next_create(self):
        self.api.quota_next()

    def test_the_server_carries_metadata_and_the_configuration(self):
        task_id = self.order()
        [create] = self.api.create_requests()
        server = create["body"]["server"]
        self.assertEqual((server["flavorRef"], server["imageRef"], server["networks"],
                          server["availability_zone"]), ("1011", IMAGES[1]["id"], "auto", "ru-9a"))
        self.assertEqual(server["metadata"]["bx-task"], task_id)
        self.assertNotIn("block_device_mapping_v2", server)
        self.assertEqual(create["headers"]["X-Auth-Token"], "<redacted>")
        self.assertEqual(create["headers"]["Openstack-Api-Version"], "compute 2.37")
        self.finished(task_id)
        [login] = self.api.keystone.requests
        scope = login["body"]["auth"]["scope"]["project"]
        self.assertEqual((scope["name"], scope["domain"]["name"]), (PROJECT, DOMAIN))

    def test_a_server_of_the_same_name_without_our_metadata_is_not_adopted(self):
        name = provider.server_name("provider", "1", provider.owner_tag(self.home.new_state()))
        self.api.add_server(name, labels={"bx-task": "1"})       # made by someone else
        self.finished(self.order_losing_the_server_id())
        self.assertEqual(len(self.api.servers), 2)
        self.assertEqual(len(self.api.create_requests()), 1)
        names = [r["query"]["name"] for r in self.api.requests_for("GET", "^/servers/detail")]
        self.assertIn(["^%s$" % name.replace("-", "\\-")], names)

    def test_boot_from_volume_and_a_given_network(self):
        self.configure({"flavor": "3021", "image": IMAGES[2]["id"], "volume_size": 20,
                        "volume_type": "fast.ru-9a", "network_id": EXT_NET})
        self.finished(self.order())
        server = self.api.create_requests()[0]["body"]["server"]
        self.assertNotIn("imageRef", server)
        self.assertEqual(server["flavorRef"], "3021")
        self.assertEqual(server["networks"], [{"uuid": EXT_NET}])
        self.assertEqual(server["block_device_mapping_v2"], [{
            "boot_index": 0, "uuid": IMAGES[2]["id"], "source_type": "image",
            "destination_type": "volume", "volume_size": 20, "volume_type": "fast.ru-9a",
            "delete_on_termination": True}])
        # volume_type needs 2.67; an explicit network list alone is in the base, 2.1
        self.assertEqual(self.api.create_requests()[0]["headers"]["Openstack-Api-Version"],
                         "compute 2.67")
        self.configure({"flavor": "3021", "image": IMAGES[2]["id"], "volume_size": 20,
                        "network_id": EXT_NET})
        self.finished(self.order())
        self.assertEqual(self.api.create_requests()[1]["headers"]["Openstack-Api-Version"],
                         "compute 2.1")

    def test_the_microversion_is_the_lowest_the_request_needs_and_the_cloud_serves(self):
        self.api.max_microversion = "2.42"         # VK Cloud's provider pins 2.42
        first, second = self.order(), self.order()
        self.finished(first)
        self.finished(second)
        self.assertEqual([r["headers"]["Openstack-Api-Version"]
                          for r in self.api.create_requests()], ["compute 2.37"] * 2)
        # the version document: once per token, kept with it
        self.assertEqual(len(self.api.requests_for("GET", "^/$")), 1)
        [entry] = self.home.state()["tokens"].values()
        self.assertEqual(entry["extra"]["compute_version"], "2.42")
        self.assertIn("ok   configuration 1: the compute microversion is 2.37 (the compute API "
                      "serves up to 2.42)", self.run_plugin("check").text)
        self.configure({"volume_size": 20, "volume_type": "fast.ru-9a"})
        message = self.assertErrorCode(self.run_plugin("order", "1"), 108)
        self.assertIn("configuration 1: volume_type needs compute API microversion 2.67; "
                      "OpenStack's compute API serves at most 2.42", message)
        self.assertEqual(len(self.api.create_requests()), 2)
        self.assertIn("FAIL configuration 1: the compute microversion: configuration 1: "
                      "volume_type needs compute API microversion 2.67",
                      self.run_plugin("check").text)
        self.api.max_microversion = "2.30"
        state = self.home.state()                 # a new token reads the document again
        del state["tokens"]
        with open(self.home.state_path, "w") as handle:
            json.dump(state, handle)
        self.configure()
        message = self.assertErrorCode(self.run_plugin("order", "1"), 108)
        self.assertIn("network_id auto needs compute API microversion 2.37", message)
        self.assertIn("`openstack network list`", message)

    def test_a_vk_cloud_order_finishes_on_its_compute_api_with_a_group_for_ssh(self):
        self.api.max_microversion = "2.42"
        self.configure({"network_id": EXT_NET}, type="vkcloud", security_groups=["ssh"])
        self.finished(self.order())
        [create] = self.api.create_requests()
        self.assertEqual(create["body"]["server"]["security_groups"], [{"name": "ssh"}])
        self.assertEqual(create["headers"]["Openstack-Api-Version"], "compute 2.1")
        self.assertNotIn("no security_groups", self.run_plugin("check").text)

    def test_security_groups_per_configuration_before_the_backends(self):
        self.configure({"security_groups": ["default", "ssh"]}, security_groups=["web"])
        self.assertIn("ok   security groups default, ssh: known to OpenStack",
                      self.run_plugin("check").text)      # the configuration's win
        self.finished(self.order())
        self.assertEqual(self.api.create_requests()[0]["body"]["server"]["security_groups"],
                         [{"name": "default"}, {"name": "ssh"}])
        self.configure(security_groups=["web"])         # a group the project lacks
        self.assertIn("FAIL security groups web: the project has none of that name or id",
                      self.run_plugin("check").text)
        message = self.assertErrorCode(self.run_plugin("order", "1"), 108)
        self.assertIn("Unable to find security_group with name or id 'web'", message)

    def test_check_warns_when_no_security_group_lets_ssh_in(self):
        for kind, words in (("vkcloud", "VK Cloud's \"default\" group admits only its own "
                                        "members: SSH from this master will not answer"),
                            ("openstack", "the server joins the project's \"default\" group, "
                                          "which in a stock OpenStack admits only its own "
                                          "members: SSH from this master may not answer"),
                            ("selectel", "Selectel applies security groups only to ports with "
                                         "port security on")):
            self.configure({"network_id": EXT_NET}, type=kind)
            self.assertIn("WARN configuration 1: no security_groups: " + words,
                          self.run_plugin("check").text)
        self.configure({"network_id": EXT_NET, "security_groups": ["default"]}, type="vkcloud")
        self.assertIn("WARN configuration 1: security_groups names only \"default\": VK Cloud's",
                      self.run_plugin("check").text)
        self.configure({"security_groups": []})
        self.assertIn("$.configurations[0].security_groups: must name at least one security "
                      "group", self.run_plugin("check").text)

    def test_a_microversion_higher_than_served_is_refused_as_nova_does(self):
        self.api.max_microversion = "2.42"
        self.configure(compute_microversion="2.67")      # the admin's pin: sent as it is
        message = self.assertErrorCode(self.run_plugin("order", "1"), 108)
        self.assertIn("Version 2.67 is not supported by the API. Minimum is 2.1 and maximum "
                      "is 2.42.", message)
        self.assertIn("HTTP 406", message)

    def test_a_floating_ip_is_made_once_and_released_with_the_server(self):
        self.api.floating = True
        self.configure({"floating_network_id": EXT_NET, "network_id": "9a8b7c6d-0000-4000"
                        "-8000-00000000b1a5"})
        self.api.neutron.drop_next(method="POST", path="^/floatingips$")   # answer lost
        task_id = self.order()
        answer = self.ok("order_status", task_id)
        self.assertEqual(answer["status"], "in_progress", answer)
        self.saved_message(task_id, "no answer to POST /floatingips")    # the worker's step
        answer = self.finished(task_id)
        self.assertEqual(answer["server"], "127.0.0.1")
        [fip] = self.api.floating_ips.values()            # found again by its port
        self.assertEqual(len(self.api.neutron.requests_for("POST")), 1)
        self.assertEqual(fip["description"].split()[-1], "task=" + task_id)
        result = self.run_plugin("task", "delete-server", task_id, "--yes")
        self.assertEqual(result.code, 0, result)
        self.assertIn("floating IP 127.0.0.1 released", result.text)
        self.assertEqual((self.api.servers, self.api.floating_ips), ({}, {}))

    def test_no_floating_ip_left_in_the_quota_fails_the_task(self):
        self.api.floating = True
        self.configure({"floating_network_id": EXT_NET}, on_failure="keep")
        self.api.neutron.error_next(409, "OverQuota", "Quota exceeded for resources: "
                                    "['floatingip'].", method="POST", path="^/floatingips$")
        answer = self.poll(self.order())[-1]
        self.assertEqual(answer["status"], "error", answer)
        self.assertIn("OpenStack: quota exceeded in project %s: Quota exceeded for resources: "
                      "['floatingip']. (HTTP 409 to POST /floatingips)" % PROJECT,
                      answer["message"])
        self.assertIn("still exists and is billed", answer["message"])     # on_failure keep

    def test_the_token_is_cached_and_renewed_once_when_refused(self):
        first, second = self.order(), self.order()
        self.assertEqual(len(self.api.logins), 1)          # the second order reused it
        state = self.home.state()
        [entry] = state["tokens"].values()
        self.assertEqual(entry["token"], self.api.logins[0])
        self.assertEqual(entry["extra"]["compute"], self.api.compute_url)
        self.api.revoke_tokens()                            # e.g. the password was changed
        self.finished(first)
        self.assertEqual(len(self.api.logins), 2)
        self.assertEqual([r["status"] for r in self.api.requests_for("GET", "^/servers/")][:2],
                         [401, 200])
        self.finished(second)
        self.assertEqual(len(self.api.logins), 2)
        for text in (self.run_plugin("tasks").out, self.home.read(self.home.log_path)):
            for token in self.api.logins:
                self.assertNotIn(token.encode(), text)

    def test_a_token_about_to_expire_is_renewed_before_it_is_used(self):
        task_id = self.order()
        state = self.home.state()
        for entry in state["tokens"].values():
            entry["expires"] = provider.now() + 60          # inside RENEW_BEFORE
        with open(self.home.state_path, "w") as handle:
            json.dump(state, handle)
        self.finished(task_id)
        self.assertEqual(len(self.api.logins), 2)
        self.assertNotIn(401, [r["status"] for r in self.api.requests])

    def test_a_refused_fresh_token_is_not_tried_again(self):
        self.write_token("wrong-password")
        message = self.assertErrorCode(self.run_plugin("order", "1"), 108)
        self.assertIn("OpenStack: unauthorized: The request you have made requires "
                      "authentication. (HTTP 401 to POST /auth/tokens); check username", message)
        self.assertEqual((len(self.api.keystone.requests), self.api.requests), (1, []))

    def test_an_application_credential_logs_in_without_user_and_project(self):
        secret = os.path.join(self.tmp, "app-secret")
        with open(secret, "w") as handle:
            handle.write(APP_SECRET + "\n")
        os.chmod(secret, 0o600)
        self.SETTINGS = {}
        self.configure(token_file=None, application_credential_id=APP_ID,
                       application_credential_secret_file=secret)
        self.finished(self.order())
        [login] = self.api.keystone.requests
        self.assertNotIn("scope", login["body"]["auth"])
        self.assertEqual(login["body"]["auth"]["identity"]["methods"], ["application_credential"])

    def test_a_server_in_error_fails_the_task_with_the_fault(self):
        self.api.status_sequence = ["BUILD", "ERROR"]
        answer = self.poll(self.order())[-1]
        self.assertEqual(answer["status"], "error")
        self.assertIn("is ERROR (No valid host was found.", answer["message"])
        with open(self.home.log_path) as handle:         # on_failure (the cleanup worker
            self.assertIn("deleting OpenStack server", handle.read())   # may be done by now)
        self.assertIn("(on_failure: delete)", answer["message"])

    def test_a_server_that_will_not_boot_by_itself_fails_at_once(self):
        for state in ("SHUTOFF", "SUSPENDED", "PAUSED", "SHELVED", "SHELVED_OFFLOADED",
                      "RESCUE", "VERIFY_RESIZE"):      # nova api-ref: "Server Status"
            self.api.status_sequence = ["BUILD", state]
            answer = self.poll(self.order())[-1]
            self.assertEqual(answer["status"], "error", state)
            self.assertIn("is %s (it will not boot by itself)" % state, answer["message"])

    def test_a_transitional_status_is_waited_out(self):
        self.api.status_sequence = ["BUILD", "REBOOT", "HARD_REBOOT", "ACTIVE"]
        self.api.polls_per_status = 1
        answers = self.poll(self.order())
        self.assertIn("is REBOOT", " ".join(a["message"] for a in answers))
        self.assertEqual(answers[-1]["status"], "finished")

    def test_user_data_is_cut_where_its_base64_passes_65535_characters(self):
        self.configure({"user_data": "#!/bin/sh\n"})
        self.finished(self.order())
        ours = len(self.api.servers[sorted(self.api.servers)[0]]["user_data"].encode())
        # 49,150 bytes are 65,536 base64 characters: one too many for Nova
        self.configure({"user_data": "#!/bin/sh\n" + "#" * (49150 - ours) + "\n"})
        message = self.assertErrorCode(self.run_plugin("order", "1"), 108)
        self.assertIn("user_data is too long: OpenStack takes at most 49149 bytes", message)
        self.assertEqual(len(self.api.create_requests()), 1)

    def test_an_unknown_flavor_or_image_is_named_by_the_order_and_by_check(self):
        self.configure({"flavor": "SL9.9-huge", "image": "Windows 95"})
        message = self.assertErrorCode(self.run_plugin("order", "1"), 108)
        self.assertIn("OpenStack has no flavor SL9.9-huge (GET /flavors lists SL1.1-2048, "
                      "SL1.2-4096)", message)
        self.assertEqual(self.api.create_requests(), [])
        self.configure({"network_id": "no-such-net"})
        result = self.run_plugin("check")
        self.assertEqual(result.code, 1, result)
        lines = result.text.splitlines()
        self.assertIn("ok   configuration 1: flavor SL1.1-2048 is 1011", lines)
        self.assertIn("ok   configuration 1: image Ubuntu 22.04 LTS 64-bit is %s"
                      % IMAGES[1]["id"], lines)
        self.assertTrue(any(line.startswith("FAIL configuration 1: network_id no-such-net: "
                                            "OpenStack: NetworkNotFound") for line in lines),
                        result.text)
        self.assertTrue(any(line.startswith("ok   endpoints: compute " + self.api.compute_url)
                            for line in lines), result.text)

    def test_flavors_or_images_in_an_odd_shape_are_a_clear_error(self):
        self.api.fail_next(200, path=r"^/flavors$", body={"flavors": 5})
        message = self.assertErrorCode(self.run_plugin("order", "1"), 108)
        self.assertIn("shape the plugin does not know (GET /flavors.flavors: must be an "
                      "array", message)
        self.api.fail_next(200, path=r"^/flavors$", body={"flavors": 5}, count=2)
        result = self.run_plugin("check")       # its token check asks /flavors first
        self.assertRegex(result.text, r"FAIL configuration 1: flavor SL1.1-2048: .*shape")
        self.configure({"image": "Windows 95"})
        self.api.glance.fail_next(200, path=r"/images$", body={"images": True})
        message = self.assertErrorCode(self.run_plugin("order", "1"), 108)
        self.assertIn("GET /images.images", message)
        self.assertEqual(self.api.create_requests(), [])

    def test_keystone_quoting_the_password_back_shows_stars(self):
        self.api.keystone.fail_next(401, body={"error": {"code": 401, "title": "Unauthorized",
                                                         "message": "bad password %s" % TOKEN}})
        message = self.assertErrorCode(self.run_plugin("order", "1"), 108)   # TOKEN not in it
        self.assertIn("bad password ********", message)
        self.assertNotIn(TOKEN.encode(), self.home.read(self.home.log_path))

    def test_a_catalog_entry_whose_endpoints_are_no_list_is_skipped(self):
        others = [entry for entry in self.api.catalog() if entry["type"] != "compute"]
        self.api.catalog = lambda: others + [{"type": "compute", "endpoints": 5}]
        message = self.assertErrorCode(self.run_plugin("order", "1"), 108)
        self.assertIn("the OpenStack catalog has no public compute endpoint: set "
                      "backend.compute_url", message)
        self.assertEqual(self.api.create_requests(), [])

    def test_a_catalog_sending_the_token_over_plain_http_is_refused(self):
        # Regression (issue 23, 2): auth_url on https, a catalog naming compute at
        # http://127.0.0.1:PORT got X-Auth-Token in clear there (any local user can listen)
        from helpers.cloudbase import self_signed
        ours = self_signed(self.tmp, "ours", "IP:127.0.0.1")
        api = self.FAKE(token=TOKEN, polls_per_status=0, tls=ours).start()
        self.addCleanup(api.stop)
        self.env["SSL_CERT_FILE"] = ours[0]
        listening = self.api.compute_url        # the plain-http Nova: "a local listener"
        catalog = api.catalog

        def rewritten():
            entries = catalog()
            for entry in entries:
                for point in entry["endpoints"] if entry["type"] == "compute" else []:
                    point["url"] = point["url"].replace(api.compute_url, listening)
            return entries
        api.catalog = rewritten
        self.configure(api_url=api.url)
        refused = "OpenStack: the catalog's compute endpoint %s is refused: a URL from an " \
                  "API's answer must be https" % listening
        message = self.assertErrorCode(self.run_plugin("order", "1"), 108)   # not started
        self.assertIn(refused, message)
        result = self.run_plugin("check")
        self.assertEqual(result.code, 1, result)
        self.assertTrue(any(line.startswith("FAIL") and refused in line
                            for line in result.text.splitlines()), result.text)
        self.assertTrue(any(line.startswith("ok   endpoints: network %s (catalog)"
                                            % api.neutron.base_url) and
                            "identity %s (auth_url)" % api.url in line
                            for line in result.text.splitlines()), result.text)
        self.assertEqual(self.api.requests, [])     # the token never went there
        self.assertEqual(api.requests, [])

    def test_answer_url_https_anywhere_plain_http_only_to_a_plain_loopback_origin(self):
        ok, origin = provider.answer_url, "http://127.0.0.1:5000/v3"
        for url, base in (("https://nova.example.com/v2.1", "https://keystone.example.com"),
                          ("https://127.0.0.1:9/v2.1", "https://keystone.example.com"),
                          ("http://127.0.0.1:8774/v2.1", origin),
                          ("https://other.example/v2", origin)):
            self.assertEqual(ok(url, base, "x"), url)
        for url, base in (("http://127.0.0.1:8774/", "https://127.0.0.1:5000/v3"),
                          ("http://127.0.0.1:8774/", "https://keystone.example.com"),
                          ("http://localhost:8774/", origin),
                          ("http://10.0.0.1/", "http://10.0.0.1:5000/v3"),
                          ("ftp://127.0.0.1/", origin), ("https:///x", origin),
                          ("https://[x", origin), (5, origin), ("http://[::1]/\n", origin)):
            with self.assertRaises(provider.ProviderError) as caught:
                ok(url, base, "the catalog's compute endpoint")
            self.assertEqual(caught.exception.code, provider.E_UNSAFE, (url, base))
            self.assertTrue(caught.exception.message.isprintable(), caught.exception.message)

    def test_a_catalog_with_several_regions_needs_the_region(self):
        self.api.regions = ["RegionOne", "RegionTwo"]
        message = self.assertErrorCode(self.run_plugin("order", "1"), 108)
        self.assertIn("several regions (RegionOne, RegionTwo): set backend.region", message)
        self.configure(region="RegionOne")
        self.finished(self.order())


class OpenStackGuardrails(GuardrailTests, OpenStackTest):
    ZONE = "availability_zone"
    ZONES = ["ru-9a", "ru-9b", "ru-9c"]
    CAPACITY = (400, "badRequest", "The requested availability zone is not available")
    TOKEN_HEADER = "X-Auth-Token"
    RESOLVED = ["ok: flavor SL1.1-2048 is 1011", "ok: image Ubuntu 22.04 LTS 64-bit is "
                + IMAGES[1]["id"]]
    UNRESOLVED = ["POST <the catalog's compute endpoint: not resolved: no connection to ",
                  '"flavorRef": "<flavor SL1.1-2048: not resolved: no connection to http://',
                  '"imageRef": "<image Ubuntu 22.04 LTS 64-bit: not resolved: no connection to',
                  "OpenStack-API-Version: compute 2.37"]

    def servers_url(self):
        return self.api.compute_url

    def zones_asked(self):
        return [r["body"]["server"].get(self.ZONE) for r in self.api.create_requests()]

    def marks(self, tag, task_id):
        return {"labels": {"managed-by": "provider.py", "bx-owner": tag, "bx-task": task_id}}

    def test_dry_run_without_the_cloud_for_the_presets(self):
        for kind, label in (("selectel", "Selectel"), ("vkcloud", "VK Cloud")):
            self.configure({"network_id": EXT_NET, "security_groups": ["ssh"]}, type=kind,
                           api_url="http://127.0.0.1:%d/v3" % closed_port())
            result = self.run_plugin("order", "1", "--dry-run")
            self.assertEqual(result.code, 0, result)
            self.assertIn("note: could not reach %s (no connection to " % label, result.text)
            self.assertIn('"flavorRef": "<flavor SL1.1-2048: not resolved: ', result.text)
            self.assertIn('"networks": [\n      {\n        "uuid": "%s"' % EXT_NET,
                          result.text)

    def test_servers_pages_through_many(self):
        held = self.order()
        tag = self.home.state()["tasks"][held]["data"]["owner"]
        for number in range(130):
            self.api.add_server("someone-else-%d" % number)
        self.api.add_server("provider-%s-%s" % (held, tag), **self.marks(tag, held))  # twice
        answer = self.run_plugin("servers", "--json").json
        self.assertEqual(sorted((s["task_id"], s["orphan"]) for s in answer["servers"]),
                         [(held, False), (held, True)])
        markers = [r["query"].get("marker") for r in self.api.requests_for("GET", "detail")]
        self.assertEqual(len(markers), 2)
        self.assertEqual(markers[0], None)

    def test_a_floating_ip_of_an_orphan_goes_with_it(self):
        self.api.floating = True
        self.configure({"floating_network_id": EXT_NET})
        held = self.order()
        self.finished(held)
        task = self.home.state()["tasks"][held]
        state = self.home.state()                      # the state forgets the task's address
        del state["tasks"][held]["data"]["floating_ip_id"]
        state["tasks"][held]["status"] = "error"
        with open(self.home.state_path, "w") as handle:
            json.dump(state, handle)
        [fip] = self.api.floating_ips.values()
        odd = {"dots": dict(fip, id="../../ports/p1"), "list": dict(fip, id=[fip["id"]])}
        self.api.floating_ips.update(odd)      # ids no URL path may carry: left alone
        result = self.run_plugin("task", "delete-server", held, "--yes")
        self.assertEqual(result.code, 0, result)
        self.assertIn("floating IP %s released" % task["data"]["floating_ip"], result.text)
        self.assertEqual((self.api.servers, self.api.floating_ips), ({}, odd))
        self.assertEqual([r["path"] for r in self.api.neutron.requests_for("DELETE")],
                         ["/floatingips/" + fip["id"]])


class PresetTest(unittest.TestCase):
    def problems(self, backend, **configuration):
        item = dict({"id": "1", "descr": "x", "flavor": "f", "image": "i"}, **configuration)
        return provider.validate_config({"enabled": True, "backend": backend,
                                         "configurations": [item]})

    def test_presets_fill_in_only_defaults(self):
        vk = provider.backend_class("vkcloud")({"type": "vkcloud"}, None, None)
        self.assertEqual((vk.setting("auth_url"), vk.setting("user_domain_name"),
                          vk.setting("region")),
                         ("https://msk.cloud.vk.com/infra/identity/v3/", "users",
                          "RegionOne"))
        selectel = provider.backend_class("selectel")({"type": "selectel", "region": "ru-9"},
                                                 None, None)
        self.assertEqual((selectel.setting("auth_url"), selectel.setting("region")),
                         ("https://cloud.api.selcloud.ru/identity/v3", "ru-9"))
        self.assertEqual(self.problems({"type": "vkcloud", "username": "u@example.com",
                                        "password_env": "P", "project_id": "p"},
                                       network_id="n"), [])
        self.assertEqual(self.problems({"type": "selectel", "username": "u",
                                        "password_env": "P", "project_name": "p"},
                                       network_id="n"),
                         ["$.backend: missing key 'user_domain_name' (or "
                          "application_credential_id)"])
        self.assertEqual(self.problems({"type": "openstack", "application_credential_id": "a",
                                        "application_credential_secret_env": "S"}),
                         ["$.backend: missing key 'auth_url' (the Keystone v3 URL, e.g. "
                          "https://keystone.example.com:5000/v3)"])

    def test_selectel_and_vk_cloud_need_a_network(self):
        backends = {"selectel": {"type": "selectel", "username": "u", "password_env": "P",
                                 "user_domain_name": "123", "project_name": "p"},
                    "vkcloud": {"type": "vkcloud", "username": "u", "password_env": "P",
                                "project_id": "p"}}
        for kind, backend in sorted(backends.items()):
            [problem] = self.problems(backend)
            self.assertIn("$.configurations[0]: missing key 'network_id': a %s backend needs "
                          "'network_id'" % kind, problem)
            self.assertIn("`openstack network list`", problem)
            [problem] = self.problems(backend, network_id="auto")
            self.assertIn("'network_id' auto is not allowed", problem)
            self.assertEqual(self.problems(backend, network_id="5e0c7e0a"), [])
        plain = {"type": "openstack", "auth_url": "https://k.example.com/v3", "username": "u",
                 "user_domain_name": "d", "password_env": "P", "project_id": "p"}
        self.assertEqual(self.problems(plain), [])
        self.assertEqual(self.problems(plain, network_id="auto"), [])

    def test_the_examples_are_valid_configs(self):
        folder = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                              "examples")
        for name in ("openstack.conf", "openstack-selectel.conf", "openstack-vkcloud.conf"):
            with open(os.path.join(folder, name), encoding="utf-8") as handle:
                self.assertEqual(provider.validate_config(json.load(handle)), [], name)

    def test_settings_that_do_not_go_together(self):
        base = {"type": "openstack", "auth_url": "https://k.example.com/v3"}
        self.assertEqual(self.problems(dict(base, username="u", user_domain_name="d",
                                            password_env="P", project_id="p",
                                            project_name="n")),
                         ["$.backend: needs exactly one of 'project_id' or 'project_name' "
                          "(the project the servers are made in)"])
        problems = self.problems(dict(base, application_credential_id="a", username="u",
                                      application_credential_secret_env="S"))
        self.assertEqual(problems, ["$.backend: 'username' does not go with "
                                    "application_credential_id (the credential names its "
                                    "user and project)"])
        problems = self.problems(dict(base, application_credential_id="a",
                                      application_credential_secret_env="S",
                                      compute_microversion="2.67\r\nX-Evil: 1"))
        self.assertEqual(problems, ["$.backend.compute_microversion: must be a compute API "
                                    "microversion such as \"2.67\" or \"latest\""])
        problems = self.problems(dict(base, application_credential_id="a",
                                      application_credential_secret_env="S",
                                      auth_url="https://k.example.com:99999/v3",
                                      compute_url="https://[x"))   # urllib raises on these
        self.assertEqual(sorted(problem.split(":")[0] for problem in problems),
                         ["$.backend.auth_url", "$.backend.compute_url"])
        problems = self.problems(dict(base, auth_url="http://k.example.com/v3"),
                                 volume_type="fast")
        self.assertIn("$.configurations[0]: 'volume_type' needs 'volume_size' (the boot "
                      "volume's GB)", problems)
        self.assertTrue(any(p.startswith("$.backend.auth_url: must be an https:// URL")
                            for p in problems), problems)

    def test_error_bodies_of_nova_keystone_and_neutron(self):
        backend = provider.backend_class("openstack")({"type": "openstack"}, None, None)
        self.assertEqual(backend.error_text({"itemNotFound": {"code": 404, "message": "gone"}}),
                         ("itemNotFound", "gone"))
        self.assertEqual(backend.error_text({"error": {"code": 401, "title": "Unauthorized",
                                                       "message": "no"}}), ("unauthorized", "no"))
        self.assertEqual(backend.error_text({"NeutronError": {"type": "OverQuota",
                                                              "message": "q"}}),
                         ("quota exceeded", "q"))
        for body in (None, {}, [], "x", {"a": 1, "b": 2}, {"badRequest": None},
                     {"badRequest": {"message": 5}}, {"error": {"title": None}}):
            self.assertIsInstance(backend.error_text(body)[1], str, body)
        self.assertEqual(backend.rate_limited(413, {"overLimit": {"retryAfter": "3"}}), 3.0)
        self.assertIsNone(backend.rate_limited(413, {"overLimit": {
            "message": "Quota exceeded for cores", "retryAfter": "3"}}))
        self.assertIsNone(backend.rate_limited(403, {"forbidden": {"message": "no"}}))
        self.assertEqual(backend.rate_limited(429, None), 0)

    def test_the_public_address(self):
        backend = provider.backend_class("openstack")({"type": "openstack"}, None, None)
        server = {"addresses": {"net": [
            {"addr": "10.0.0.5", "version": 4}, {"addr": "2a00::1", "version": 6},
            {"addr": "100.64.1.1", "version": 4}, {"addr": "203.0.113.7", "version": 4},
            {"addr": "198.51.100.9", "version": 4, "OS-EXT-IPS:type": "floating"}]}}
        self.assertEqual(backend.ipv4(server), "198.51.100.9")
        del server["addresses"]["net"][-1]
        self.assertEqual(backend.ipv4(server), "203.0.113.7")
        self.assertIsNone(backend.ipv4({"addresses": {"n": [{"addr": "192.168.1.1",
                                                             "version": 4}]}}))
        self.assertIsNone(backend.ipv4({"addresses": None}))


def load_tests(loader, tests, pattern):
    """OpenStackTest in full; of OpenStackGuardrails only what it adds to it."""
    suite = unittest.TestSuite()
    suite.addTests(loader.loadTestsFromTestCase(OpenStackTest))
    own = sorted(name for name in set(vars(GuardrailTests)) | set(vars(OpenStackGuardrails))
                 if name.startswith("test_"))
    suite.addTests(OpenStackGuardrails(name) for name in own)
    suite.addTests(loader.loadTestsFromTestCase(PresetTest))
    return suite


if __name__ == "__main__":
    unittest.main()
