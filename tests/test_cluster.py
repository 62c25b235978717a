# -*- coding: utf-8 -*-
"""Cluster networking (issue 27) against the fakes: private networks, firewalls and
placement reach the create body in the API's own shape (the fakes name the
definitions each field comes from), the task keeps every IPv4 of its server, and
`address: private` hands the caller the server's address in the configured network,
the one readiness uses as well."""

import json
import unittest

from helpers.cloudbase import CloudHome, provider
from helpers.fake_openstack import (DOMAIN, EXT_NET, PRIVATE_NET, PROJECT, USER,
                                    FakeOpenStack)
from helpers.fakecloud import FakeHetzner, FakeTimeweb
from test_backend_yandex import YandexHome


class HetznerClusterTest(CloudHome, unittest.TestCase):
    FAKE = FakeHetzner
    TYPE = "hetzner"
    LABEL = "Hetzner"
    CONFIGURATION = {"server_type": "cx22", "image": "ubuntu-24.04", "location": "fsn1"}

    def create_body(self):
        [create] = self.api.create_requests()
        return create["body"]

    def test_networks_firewalls_and_placement_reach_the_create_body_as_ids(self):
        # names and ids, backend-wide and per configuration (the configuration's win)
        self.configure({"firewalls": ["bx-ssh", 2]}, networks=["bx-net", "2"],
                       firewalls=["bx-web"], placement_group="bx-spread")
        task_id = self.order()
        body = self.create_body()
        self.assertEqual(body["networks"], [1, 2])
        self.assertEqual(body["firewalls"], [{"firewall": 1}, {"firewall": 2}])
        self.assertEqual(body["placement_group"], 1)
        answer = self.finished(task_id)
        self.assertEqual(answer["server"], "127.0.0.1")          # address public: the default
        data = self.home.state()["tasks"][task_id]["data"]
        server_id = data["server_id"]
        self.assertEqual(data["ipv4_all"], ["127.0.0.1", "10.0.0.%s" % server_id,
                                            "10.0.0.%s" % server_id])
        looked = [(r["path"], r["query"].get("name")) for r in self.api.requests_for("GET")
                  if r["query"].get("name")]
        self.assertEqual(sorted(looked), [("/firewalls", ["bx-ssh"]), ("/networks", ["bx-net"]),
                                          ("/placement_groups", ["bx-spread"])])

    def test_without_cluster_settings_the_body_has_none_of_them(self):
        self.finished(self.order())
        body = self.create_body()
        for key in ("networks", "firewalls", "placement_group"):
            self.assertNotIn(key, body)

    def test_address_private_gives_the_caller_the_address_in_the_network(self):
        # the public address answers nothing here: only the private one can get ready
        self.api.ipv4 = "203.0.113.5"
        self.api.private_ip = "127.0.0.1"
        self.configure(networks=["bx-net"], address="private")
        task_id = self.order()
        answer = self.finished(task_id)
        self.assertEqual(answer["server"], "127.0.0.1")
        task = self.home.state()["tasks"][task_id]
        self.assertEqual(task["server"], "127.0.0.1")
        self.assertEqual(task["data"]["ipv4_all"], ["203.0.113.5", "127.0.0.1"])
        self.assertIn("203.0.113.5", self.run_plugin("servers").text)

    def test_a_name_not_found_is_a_clear_error(self):
        self.configure(firewalls=["bx-ssh", "no-such-fw"])
        result = self.run_plugin("order", "1")
        message = result.json.get("error_message") or ""
        if not message:        # the worker took it: the task says it
            answer = self.poll(result.json["task_id"])[-1]
            self.assertEqual(answer["status"], "error")
            message = answer["message"]
        self.assertIn("Hetzner has no firewall named no-such-fw (GET /firewalls?name="
                      "no-such-fw found none)", message)
        self.assertEqual(self.api.create_requests(), [])

    def test_the_settings_are_checked(self):
        self.configure(networks=[], firewalls=[True], placement_group=0, address="internal")
        message = self.run_plugin("configs").json["error_message"]
        for text in ("$.backend.networks: must name at least one",
                     "$.backend.firewalls[0]: must be an id or a name, not boolean",
                     "$.backend.placement_group: must be an id (a positive number) or a name",
                     '$.backend.address: must be "public" (the default) or "private"'):
            self.assertIn(text, message)
        self.configure({"address": "private"})
        self.assertIn('$.configurations[0]: address "private" needs networks',
                      self.run_plugin("configs").json["error_message"])

    def test_check_and_dry_run_name_them_and_warn_of_an_unreachable_network(self):
        self.configure({"networks": ["bx-net"], "address": "private"},
                       firewalls=["no-such-fw"])
        text = self.run_plugin("check").text
        self.assertIn("configuration 1: network bx-net: known to Hetzner", text)
        self.assertIn("configuration 1: firewall no-such-fw: Hetzner has no firewall named "
                      "no-such-fw", text)
        if not provider.in_network(provider.host_ipv4s(), "10.0.0.0/16"):
            self.assertIn("address private: this master has no address in network bx-net "
                          "(10.0.0.0/16", text)
        self.configure({"networks": ["loop-net"], "address": "private"},
                       firewalls=["bx-ssh"], placement_group=1)
        text = self.run_plugin("check").text
        self.assertIn("configuration 1: address private: this master is in network loop-net "
                      "(127.0.0.0/8)", text)
        result = self.run_plugin("order", "1", "--dry-run")
        self.assertEqual(result.code, 0, result)
        self.assertIn('"networks": [\n', result.text)
        body = result.text[result.text.index("{", result.text.index("POST ")):]
        body = json.JSONDecoder().raw_decode(body)[0]
        self.assertEqual((body["networks"], body["firewalls"], body["placement_group"]),
                         ([3], [{"firewall": 1}], 1))
        self.assertEqual(self.api.create_requests(), [])


class YandexClusterTest(YandexHome, CloudHome, unittest.TestCase):
    def test_security_groups_and_placement_reach_the_create_body(self):
        self.configure({"placement_group_id": "fd8pg00000000000001"},
                       security_group_ids=["enpsg0000000000000a", "enpsg0000000000000b"])
        task_id = self.order()
        [create] = self.api.create_requests()
        body = create["body"]
        self.assertEqual(body["networkInterfaceSpecs"][0]["securityGroupIds"],
                         ["enpsg0000000000000a", "enpsg0000000000000b"])
        self.assertEqual(body["placementPolicy"], {"placementGroupId": "fd8pg00000000000001"})
        self.assertEqual(self.finished(task_id)["server"], "127.0.0.1")
        self.assertEqual(self.home.state()["tasks"][task_id]["data"]["ipv4_all"],
                         ["127.0.0.1", "10.128.0.24"])

    def test_address_private_gives_the_caller_the_subnets_address(self):
        self.api.ipv4 = "203.0.113.5"       # the public one answers nothing here
        self.api.private_ip = "127.0.0.1"
        self.configure({"address": "private"})
        task_id = self.order()
        self.assertEqual(self.finished(task_id)["server"], "127.0.0.1")
        self.assertEqual(self.home.state()["tasks"][task_id]["data"]["ipv4_all"],
                         ["203.0.113.5", "127.0.0.1"])

    def test_check_warns_when_this_master_is_not_in_the_subnet(self):
        self.configure({"address": "private"})
        text = self.run_plugin("check").text
        if not provider.in_network(provider.host_ipv4s(), "10.128.0.0/24"):
            self.assertIn("subnet %s (default-ru-central1-a, 10.128.0.0/24); address private: "
                          "this master has no address in it" % self.api.SUBNET, text)

    def test_the_settings_are_checked(self):
        self.configure(security_group_ids=[], address="lan")
        message = self.run_plugin("configs").json["error_message"]
        self.assertIn("$.backend.security_group_ids: must name at least one id", message)
        self.assertIn('$.backend.address: must be "public"', message)


class OpenStackClusterTest(CloudHome, unittest.TestCase):
    FAKE = FakeOpenStack
    TYPE = "openstack"
    LABEL = "OpenStack"
    CONFIGURATION = {"flavor": "SL1.1-2048", "image": "Ubuntu 22.04 LTS 64-bit"}
    SETTINGS = {"username": USER, "user_domain_name": DOMAIN, "project_name": PROJECT}
    RENAME = {"token_file": "password_file", "token_env": "password_env",
              "api_url": "auth_url"}
    FIRST_REQUEST = "POST /auth/tokens"

    def test_networks_and_the_server_group_reach_the_create_body(self):
        self.configure({"network_id": PRIVATE_NET, "networks": [EXT_NET]},
                       server_group="bx-spread")
        task_id = self.order()
        [create] = self.api.create_requests()
        self.assertEqual(create["body"]["server"]["networks"],
                         [{"uuid": PRIVATE_NET}, {"uuid": EXT_NET}])
        self.assertEqual(create["body"]["os:scheduler_hints"],
                         {"group": self.api.server_groups[0]["id"]})
        self.assertEqual(self.finished(task_id)["server"], "127.0.0.1")
        self.assertEqual(sorted(self.home.state()["tasks"][task_id]["data"]["ipv4_all"]),
                         ["127.0.0.1", "192.168.0.10"])

    def test_address_private_gives_the_caller_the_address_in_that_network(self):
        self.api.ipv4 = "203.0.113.5"       # the public one answers nothing here
        self.api.fixed_ip = "127.0.0.1"     # the fixed address, in the network "private"
        self.configure({"network_id": PRIVATE_NET, "address": "private"})
        task_id = self.order()
        self.assertEqual(self.finished(task_id)["server"], "127.0.0.1")
        self.assertEqual(sorted(self.home.state()["tasks"][task_id]["data"]["ipv4_all"]),
                         ["127.0.0.1", "203.0.113.5"])

    def test_check_names_them_and_warns_of_an_unreachable_network(self):
        self.configure({"network_id": PRIVATE_NET, "address": "private"},
                       server_group="bx-spread", security_groups=["ssh"])
        text = self.run_plugin("check").text
        self.assertIn("configuration 1: server_group bx-spread is 5e1f0000-", text)
        if not provider.in_network(provider.host_ipv4s(), "192.168.0.0/24"):
            self.assertIn("configuration 1: address private: this master has no address in "
                          "network %s (192.168.0.0/24" % PRIVATE_NET, text)
        self.configure({"network_id": PRIVATE_NET, "networks": [EXT_NET],
                        "address": "private"}, security_groups=["ssh"])
        self.assertIn("configuration 1: address private: this master is in network %s "
                      "(127.0.0.0/8)" % EXT_NET, self.run_plugin("check").text)

    def test_a_server_group_not_found_is_a_clear_error(self):
        self.configure({"network_id": PRIVATE_NET}, server_group="no-such-group")
        result = self.run_plugin("order", "1")
        message = result.json.get("error_message") or ""
        if not message:
            answer = self.poll(result.json["task_id"])[-1]
            message = answer["message"]
        self.assertIn("OpenStack has no server group no-such-group (GET /os-server-groups "
                      "lists bx-spread)", message)
        self.assertEqual(self.api.create_requests(), [])


class TimewebClusterTest(CloudHome, unittest.TestCase):
    FAKE = FakeTimeweb
    TYPE = "timeweb"
    LABEL = "Timeweb"
    CONFIGURATION = {"preset_id": 2451, "os_id": 79}
    NET = "network-2fe8ab6ed82949d09d3db230337254a8"

    def test_the_vpc_reaches_the_create_body(self):
        self.configure({"local_ip": "192.168.0.9"}, network_id=self.NET)
        task_id = self.order()
        [create] = self.api.create_requests()
        self.assertEqual(create["body"]["network"], {"id": self.NET, "local_ip": "192.168.0.9"})
        self.assertEqual(self.finished(task_id)["server"], "127.0.0.1")
        self.assertEqual(self.home.state()["tasks"][task_id]["data"]["ipv4_all"],
                         ["127.0.0.1", "192.168.0.9"])

    def test_address_private_gives_the_caller_the_vpc_address(self):
        self.api.ipv4 = "203.0.113.5"       # the public one answers nothing here
        self.api.private_ip = "127.0.0.1"
        self.configure({"address": "private"}, network_id=self.NET)
        task_id = self.order()
        self.assertEqual(self.finished(task_id)["server"], "127.0.0.1")

    def test_check_warns_when_this_master_is_not_in_the_vpc(self):
        mine = provider.host_ipv4s()
        elsewhere = [net for net in ("192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24")
                     if not provider.in_network(mine, net)][0]    # none of this host's
        self.api.vpcs[self.NET] = elsewhere
        self.configure({"address": "private"}, network_id=self.NET)
        text = self.run_plugin("check").text
        self.assertIn("configuration 1: address private: this master has no address in "
                      "network %s (%s; its own: " % (self.NET, elsewhere), text)
        self.api.vpcs[self.NET] = "127.0.0.0/8"
        self.assertIn("configuration 1: address private: this master is in network %s "
                      "(127.0.0.0/8)" % self.NET, self.run_plugin("check").text)
        self.assertEqual([r["path"] for r in self.api.requests if "vpcs" in r["path"]],
                         ["/api/v2/vpcs/" + self.NET] * 2)
        del self.api.vpcs[self.NET]
        self.assertIn("configuration 1: address private: VPC %s: " % self.NET,
                      self.run_plugin("check").text)
        self.assertEqual(self.api.create_requests(), [])

    def test_address_private_needs_a_network(self):
        self.configure({"address": "private"})
        self.assertIn('$.configurations[0]: address "private" and local_ip need network_id',
                      self.run_plugin("configs").json["error_message"])


if __name__ == "__main__":
    unittest.main()
