# -*- coding: utf-8 -*-
"""The Proxmox VE backend against tests/helpers/fake_proxmox.py: the order (clone,
config, resize, start), the address claimed from the configuration, the VMID taken
meanwhile, the lost clone answer, the delete, and TLS fingerprint pinning (a fake served
over https with a self-signed certificate)."""

import os
import unittest
from urllib.parse import unquote

from helpers.cloudbase import TOKEN, PUBLIC_KEY, CloudHome, CloudTests, self_signed
from helpers.fake_proxmox import TEMPLATE_ID, TOKEN_ID, FakeProxmox
from helpers.fakecloud import SSHBannerServer
from helpers.support import load_module, python_folder, wait_for
from test_caller_contract import Caller
from test_cloud_guardrails import GuardrailTests

provider = load_module()

ADDRESSES = ["127.0.0.1-127.0.0.6/8"]


class ProxmoxHome(object):
    """The fake's VMs answer SSH only once started: the banner of 127.0.0.1 is the
    CloudHome's (self.ssh, stopped until a VM with that address starts), another
    loopback address gets one of its own."""

    TYPE = "proxmox"
    LABEL = "Proxmox"
    CONFIGURATION = {"template": str(TEMPLATE_ID), "addresses": ADDRESSES,
                     "gateway": "127.0.0.254", "nameservers": ["127.0.0.53"],
                     "cores": 2, "memory_mb": 4096, "disk_gb": 40}
    SETTINGS = {"token_id": TOKEN_ID}
    RENAME = {"token_file": "token_secret_file", "token_env": "token_secret_env"}
    FIRST_REQUEST = "GET /cluster/resources"
    CREATE_PATH = "/nodes/pve1/qemu/%d/clone" % TEMPLATE_ID
    # one request per look-up (the generic tests pause or fail "the next look-up"): the
    # listing of the template's node, which every look-up reads
    SERVERS_PATH = r"^/nodes/pve1/qemu$"

    def setUp(self):
        self.banners = {}
        super(ProxmoxHome, self).setUp()
        self.ssh.stop(hold_port=True)   # the port stays the test's: the VM's sshd later
        self.addCleanup(self.stop_banners)

    def FAKE(self, **kw):
        """A FakeProxmox whose VMs' SSH comes and goes with them."""
        api = FakeProxmox(**kw)
        api.on_start, api.on_stop = self.vm_started, self.vm_stopped
        return api

    def vm_started(self, address):
        if address == "127.0.0.1":
            self.ssh.start()
        elif address not in self.banners:
            self.banners[address] = SSHBannerServer(host=address, port=self.ssh.port).start()

    def vm_stopped(self, address):
        if address == "127.0.0.1":
            self.ssh.stop(hold_port=True)
        elif address in self.banners:
            self.banners.pop(address).stop()

    def stop_banners(self):
        for banner in self.banners.values():
            banner.stop()
        self.ssh.stop()                 # the port held is given back

    def config_posts(self):
        return [r for r in self.api.requests_for("POST", r"/config$") if r["status"] == 200]

    def user_data(self, request):
        raise unittest.SkipTest("a Proxmox clone gets no user data (its cloud-init "
                                "settings are the VM's config)")

    def refuse_next_create(self):
        self.api.fail_next(400, method="POST", path=r"/clone$",
                           body={"data": None, "errors": {"pool": "no such pool"}})

    REFUSAL = "Proxmox: http_400: pool: no such pool (HTTP 400 to POST /nodes/pve1/qemu/9000"


class ProxmoxTest(ProxmoxHome, CloudTests, unittest.TestCase):

    def test_order_goes_through_the_clone_config_resize_start_to_finished(self):
        self.api.polls_per_status = 1
        task_id = self.order()
        answers = self.poll(task_id)
        answer = answers[-1]
        self.assertEqual((answer["status"], answer["server"]), ("finished", "127.0.0.1"), answers)
        password = answer["server_password"]
        self.assertGreaterEqual(len(password), 20)
        [clone] = self.api.create_requests()
        body = clone["body"]
        [server] = self.api.servers.values()
        self.assertEqual(body["newid"], server["vmid"])
        self.assertEqual((body["name"], body["full"]), (server["name"], 1))
        self.assertIn("task %s" % task_id, body["description"])
        self.assertIn("managed-by=provider.py bx-owner=", body["description"])
        self.assertNotIn("target", body)
        config = server["config"]
        self.assertEqual(config["ciuser"], "root")
        self.assertEqual(config["ipconfig0"], "ip=127.0.0.1/8,gw=127.0.0.254")
        self.assertEqual(config["nameserver"], "127.0.0.53")
        self.assertEqual((config["cores"], config["memory"]), (2, 4096))
        self.assertIn("size=40G", config["scsi0"])
        self.assertRegex(config["tags"], r"^bx-owner-[0-9a-f]{8};bx-task-%s$" % task_id)
        hashed = config["cipassword"]
        self.assertEqual(provider.sha512_crypt(password, hashed.split("$")[2]), hashed)
        self.assertEqual(unquote(config["sshkeys"]), PUBLIC_KEY)
        self.assertNotIn(" ", config["sshkeys"])
        self.assertEqual(server["status"], "running")
        for request in self.api.requests:
            self.assertNotIn(password, request["raw_body"])
        messages = [a["message"] for a in answers]
        for step in ("the clone runs", "the config runs", "the resize runs", "the start runs"):
            self.assertTrue(any(step in m for m in messages), messages)
        # every task was waited for on the node that ran it, by its UPID
        waited = self.api.requests_for("GET", r"^/nodes/pve1/tasks/UPID")
        self.assertEqual({unquote(r["path"]).split(":")[5] for r in waited},
                         {"qmclone", "qmconfig", "resize", "qmstart"})

    def test_orders_through_the_callers_eyes_end_on_an_address_of_the_list(self):
        # the command string through /bin/sh, stdout parsed as bx-provider does
        caller = Caller(self.home)
        caller.env = self.home.env(dict(self.env, PATH=python_folder() + os.pathsep +
                                        self.env["PATH"]))
        for login, address in (("password", "127.0.0.1"), ("key", "127.0.0.2")):
            self.configure({"login": login})
            ok, answer = caller.call("order", "1")
            self.assertTrue(ok, answer)
            for _ in range(30):
                ok, answer = caller.call("order_status", answer["task_id"])
                self.assertTrue(ok, answer)
                if answer["status"] != "in_progress":
                    break
            self.assertEqual((answer["status"], answer["server"]), ("finished", address),
                             answer)
            self.assertEqual(bool(answer["server_password"]), login == "password", answer)
        self.assertEqual(len(self.api.servers), 2)

    def test_login_key_gives_an_empty_password_and_installs_the_pool_key(self):
        self.configure({"login": "key"})
        answer = self.finished(self.order())
        self.assertEqual(answer["server_password"], "")
        [server] = self.api.servers.values()
        self.assertEqual(unquote(server["config"]["sshkeys"]), PUBLIC_KEY)
        self.assertNotIn("cipassword", server["config"])

    def test_two_orders_get_two_addresses_and_a_failed_one_gives_its_back(self):
        first, second = self.order(), self.order()
        tasks = self.home.state()["tasks"]
        self.assertEqual([tasks[t]["data"]["address"] for t in (first, second)],
                         ["127.0.0.1", "127.0.0.2"])
        self.finished(first)
        self.finished(second)
        result = self.run_plugin("task", "delete-server", second, "--yes", "--force")
        self.assertEqual(result.code, 0, result)
        third = self.order()
        self.assertEqual(self.home.state()["tasks"][third]["data"]["address"], "127.0.0.2")

    def test_a_configuration_without_a_free_address_is_full(self):
        self.configure({"addresses": ["127.0.0.1/8"]}, hide_when_full=True)
        self.assertEqual([c["id"] for c in self.ok("configs")["configurations"]], ["1"])
        task_id = self.order()
        self.assertEqual(self.ok("configs")["configurations"], [])
        message = self.assertErrorCode(self.run_plugin("order", "1"), 109)
        self.assertIn("configuration 1 has no free address: 1 held by orders", message)
        self.assertIn("configuration 1: 0 of 1 addresses free", self.run_plugin("check").text)
        self.finished(task_id)
        result = self.run_plugin("task", "delete-server", task_id, "--yes", "--force")
        self.assertEqual(result.code, 0, result)
        self.assertEqual([c["id"] for c in self.ok("configs")["configurations"]], ["1"])

    def test_an_address_something_answers_on_is_skipped_and_named(self):
        other = SSHBannerServer(host="127.0.0.1", port=self.ssh.port).start()
        self.addCleanup(other.stop)
        self.configure({"addresses": ["127.0.0.1/8"]})
        message = self.assertErrorCode(self.run_plugin("order", "1"), 109)
        self.assertIn("no free address", message)
        self.assertIn("answering on port %d (something else uses them): 127.0.0.1"
                      % self.ssh.port, message)
        self.assertEqual(self.api.requests, [])
        other.stop()
        self.configure({"addresses": ["127.0.0.1-127.0.0.2/8"]})
        task_id = self.order()
        self.assertEqual(self.home.state()["tasks"][task_id]["data"]["address"], "127.0.0.1")

    def test_a_vmid_taken_meanwhile_is_cloned_again_with_the_next(self):
        self.api.take_next_vmid()
        self.finished(self.order())
        clones = self.api.requests_for("POST", r"/clone$")
        self.assertEqual([r["status"] for r in clones], [500, 200])
        self.assertEqual(clones[1]["body"]["newid"], clones[0]["body"]["newid"] + 1)
        self.assertEqual(len(self.api.servers), 2)      # someone else's and ours

    def test_a_lost_clone_answer_gives_exactly_one_vm(self):
        self.api.drop_next_create()
        self.finished(self.order())
        self.assertEqual(len(self.api.create_requests()), 1)
        self.assertEqual(len(self.api.servers), 1)
        self.assertTrue(self.api.requests_for("GET", r"^/nodes/pve1/qemu$"))

    def test_a_lost_clone_answer_while_its_disk_is_copied_is_waited_for_never_cloned_twice(self):
        # qemu-server names the new VM only once its disk is copied: till then it is
        # "VM N", locked "clone", with the temporary file's comment as its description
        self.api.long_clones()
        self.api.drop_next_create()
        task_id = self.order()
        self.age_task(task_id, self.late_window() + 1)     # past the window a clone lands in
        answer = self.ok("order_status", task_id)
        self.assertEqual(answer["status"], "in_progress")
        self.assertRegex(answer["message"], r"^creating: Proxmox VM 100 on node pve1 is still "
                                            r"being cloned and has no name yet")
        self.assertEqual(len(self.api.create_requests()), 1)
        self.api.end_clones()
        self.finished(task_id)
        self.assertEqual((len(self.api.create_requests()), len(self.api.servers)), (1, 1))

    def test_a_failed_clone_fails_the_order_and_gives_the_address_back(self):
        self.api.task_fails_next("qmclone", "storage 'local-lvm' is full")
        answer = self.poll(self.order())[-1]
        self.assertEqual(answer["status"], "error")
        self.assertIn("the clone failed: storage 'local-lvm' is full", answer["message"])
        self.assertEqual(self.api.servers, {})
        wait_for(lambda: self.home.state()["tasks"][answer["task_id"]]["data"].get(
            "server_deleted"), what="the cleanup seeing the VM gone")
        task_id = self.order()
        self.assertEqual(self.home.state()["tasks"][task_id]["data"]["address"], "127.0.0.1")

    def test_a_failed_start_deletes_the_vm_stopped_first_and_purged(self):
        self.api.task_fails_next("qmstart", "start failed: QEMU exited with code 1")
        answer = self.poll(self.order())[-1]
        self.assertEqual(answer["status"], "error")
        self.assertIn("the start failed: start failed: QEMU exited", answer["message"])
        wait_for(lambda: not self.api.servers, what="the failed order's VM deleted")
        [delete] = self.api.requests_for("DELETE")
        self.assertEqual(delete["query"], {"purge": ["1"], "destroy-unreferenced-disks": ["1"]})
        self.assertEqual(delete["raw_body"], "")
        wait_for(lambda: self.home.state()["tasks"][answer["task_id"]]["data"].get(
            "server_deleted"), what="the cleanup done")
        task_id = self.order()                   # its address is free again
        self.assertEqual(self.home.state()["tasks"][task_id]["data"]["address"], "127.0.0.1")

    def test_a_running_vm_is_stopped_before_its_delete(self):
        task_id = self.order()
        self.finished(task_id)
        result = self.run_plugin("task", "delete-server", task_id, "--yes", "--force")
        self.assertEqual(result.code, 0, result)
        paths = [r["method"] + " " + r["path"] for r in self.api.requests
                 if r["method"] != "GET"]
        self.assertTrue(paths[-2].endswith("/status/stop"), paths)
        self.assertTrue(paths[-1].startswith("DELETE /nodes/pve1/qemu/"), paths)
        self.assertEqual(self.api.servers, {})

    def test_a_vm_without_our_marks_is_never_deleted(self):
        task_id = self.order()
        self.finished(task_id)
        [server] = self.api.servers.values()
        server["config"]["description"] = "taken over by the admin"
        result = self.run_plugin("task", "delete-server", task_id, "--yes", "--force")
        self.assertNotEqual(result.code, 0, result)
        self.assertIn("does not carry task %s's marks" % task_id, result.text + result.err.decode())
        self.assertEqual(self.api.requests_for("DELETE"), [])
        self.assertEqual(len(self.api.servers), 1)

    def test_a_target_node_storage_and_pool_go_into_the_clone(self):
        self.configure(node="pve2", storage="ceph-vm", pool="bitrix")
        self.finished(self.order())
        [clone] = self.api.create_requests()
        self.assertEqual((clone["body"]["target"], clone["body"]["storage"],
                          clone["body"]["pool"]), ("pve2", "ceph-vm", "bitrix"))
        [server] = self.api.servers.values()
        self.assertEqual(server["node"], "pve2")
        waited = self.api.requests_for("GET", r"/tasks/UPID")
        self.assertTrue(any("/nodes/pve1/tasks/UPID:pve1:" in unquote(r["path"]) for r in waited))

    def test_a_linked_clone_names_no_storage(self):
        self.configure({"full_clone": False}, storage="ceph-vm")
        self.finished(self.order())
        [clone] = self.api.create_requests()
        self.assertEqual(clone["body"]["full"], 0)
        self.assertNotIn("storage", clone["body"])

    def test_the_configuration_is_checked(self):
        for configuration, said in (
                ({"addresses": ["10.0.0.9-10.0.0.3/24"]}, "upwards"),
                ({"addresses": ["10.0.0.0/24"]}, "broadcast"),
                ({"addresses": ["10.0.0.010/24"]}, "ADDR/PREFIX"),
                ({"addresses": []}, "at least one"),
                ({"addresses": ["10.0.0.5/24"], "gateway": "10.0.1.1"}, "outside the network"),
                ({"addresses": ["10.0.0.5-10.0.0.9/24"], "gateway": "10.0.0.7"},
                 "is one of addresses[0]"),
                ({"template": 9000}, "must be a string"),
                ({"nameservers": ["dns.example"]}, "IPv4"),
                ({"user_data": "#!/bin/sh\n"}, "unknown key"),
                ({"bridge": "vmbr0; reboot"}, "bridge name")):
            self.configure(configuration)
            message = self.assertErrorCode(self.run_plugin("order", "1"), 104)
            self.assertIn(said, message)
        for settings, said in (
                ({"token_id": "bitrix"}, "USER@REALM!TOKENNAME"),
                ({"tls_fingerprint": "AA:BB"}, "SHA-256 fingerprint"),
                ({"tls_fingerprint": "AA" * 32, "ca_file": "/etc/ssl/ca.pem"}, "at most one"),
                ({"api_url": "http://pve.example.com:8006"}, "https://"),
                ({"node": "pve1/../x"}, "node name")):
            self.configure(**settings)
            message = self.assertErrorCode(self.run_plugin("order", "1"), 104)
            self.assertIn(said, message)
        self.assertEqual(self.api.requests, [])

    # -- the generic tests, in Proxmox's terms: more requests than one create, no user
    # data, the address the configuration's, the VMID the plugin's own ---------------

    def test_rate_limits_are_ridden_out(self):
        self.api.rate_limit_next(count=1, reset_in=1, method="POST")
        self.api.rate_limit_next(count=2, reset_in=0, method="GET", path=r"^/cluster/resources$")
        self.finished(self.order())
        self.assertEqual(len(self.api.servers), 1)
        self.assertEqual([r["status"] for r in self.api.requests].count(429), 3)
        self.assertEqual(len(self.api.requests_for("POST", r"/clone$")), 2)
        # the template's look-up comes before the clone: 0.1 s twice, then Retry-After
        self.assertEqual(self.home.sleeps(), [0.1, 0.1, 1.0])

    def test_server_errors_on_reads_are_retried(self):
        task_id = self.order()
        before = len(self.api.requests_for("GET"))
        self.api.server_error_next(count=2, method="GET")
        self.finished(task_id)
        self.assertEqual(self.gets_since(before)[:3], [500, 500, 200])
        self.assertEqual(self.home.sleeps(), [0.25, 0.5])

    def test_check_names_an_unknown_node_pool_storage_and_a_template_without_cloud_init(self):
        del self.api.templates[9000]["config"]["ide2"]     # no cloud-init drive
        self.configure(pool="nopool", storage="nostore")
        result = self.run_plugin("check")
        self.assertEqual(result.code, 1, result)
        for text in ("FAIL resource pool nopool: Proxmox: http_500: pool 'nopool' does not exist",
                     "FAIL configuration 1: template 9000: VM 9000 (rocky9-cloud) on node pve1, "
                     "no cloud-init drive: `qm set 9000 --ide2 STORAGE:cloudinit` adds one",
                     "FAIL configuration 1: storage nostore: not a VM disk storage on node pve1"):
            self.assertIn(text, result.text)
        self.configure(node="pve9")
        self.assertIn("FAIL node pve9: Proxmox: http_595: no such cluster node 'pve9'",
                      self.run_plugin("check").text)
        self.assertEqual(self.api.servers, {})

    def test_a_bad_token_is_a_clear_error_at_order_and_in_check(self):
        self.write_token("wrong-token")
        message = self.assertErrorCode(self.run_plugin("order", "1"), 108)
        self.assertIn("Proxmox: http_401: authentication failure (HTTP 401 to GET "
                      "/cluster/resources)", message)
        self.assertEqual(self.api.servers, {})
        result = self.run_plugin("check")
        self.assertEqual(result.code, 1, result)
        self.assertRegex(result.text, r"FAIL Proxmox API .* refuses the credentials: .*"
                                      r"authentication failure")
        self.assertNotIn(b"wrong-token", result.out + result.err)
        self.write_token(TOKEN)
        result = self.run_plugin("check")
        self.assertEqual([line for line in result.text.splitlines() if line.startswith("FAIL")],
                         ["FAIL proxmox: allow_loopback is true: the caller refuses loopback "
                          "servers; this is for tests only (remove it from the backend)"])
        self.assertIn("accepts the token", result.text)
        self.assertIn("configuration 1: template 9000: VM 9000 (rocky9-cloud) on node pve1, "
                      "cloud-init drive ide2", result.text)

    def test_answers_in_odd_shapes_are_a_clear_error(self):
        # a clone answered without its UPID: the VMID is the plugin's own, the clone is
        # waited for through the VM's lock; a status in no known shape is named
        self.api.polls_per_status = 1
        self.api.fail_next(200, method="POST", path=r"/clone$", apply=True, body={"data": None})
        task_id = self.order()
        self.assertEqual(self.home.state()["tasks"][task_id]["data"]["server_id"], "100")
        for rule, said in (
                ({"method": "POST", "path": r"/config$", "body": {"data": "UPID;rm -rf /"}},
                 "a task id that is no UPID: UPID;rm -rf /"),
                ({"method": "GET", "path": r"/tasks/UPID", "body": {"data": {"status": [1]}}},
                 "the task.status: must be a string, not array")):
            self.api.fail_next(200, **rule)
            answers = [self.ok("order_status", task_id) for _ in range(3)]
            self.assertTrue(any("in a shape the plugin does not know" in answer["message"]
                                and said in answer["message"] for answer in answers), answers)
        self.finished(task_id)
        self.assertEqual(len(self.api.servers), 1)

    def test_a_foreign_server_is_never_adopted_or_deleted(self):
        # a VM of the task's very name, made by someone else (no marks), is left alone
        task_id = self.order_losing_the_server_id()
        name = self.home.state()["tasks"][task_id]["data"]["name"]
        foreign_id = self.api.add_server(name, description="the admin's own")["id"]
        answer = self.finished(task_id)
        ours = [i for i in self.api.servers if i != foreign_id]
        self.assertEqual(len(ours), 1)
        self.assertIn("server %s " % ours[0], answer["message"])
        result = self.run_plugin("task", "delete-server", task_id, "--yes")
        self.assertEqual(result.code, 0, result)
        self.assertEqual(list(self.api.servers), [foreign_id])

    def test_the_configurations_user_data_runs_after_ours(self):
        raise unittest.SkipTest("no user data reaches a clone: user_data is refused "
                                "(test_the_configuration_is_checked)")

    def test_order_goes_through_the_phases_to_finished(self):
        raise unittest.SkipTest("the Proxmox phases: "
                                "test_order_goes_through_the_clone_config_resize_start_to_finished")

    def test_an_address_from_the_api_goes_through_the_server_validator(self):
        raise unittest.SkipTest("the address is the configuration's, not the API's")

    def test_a_server_without_a_public_ipv4_fails_after_ready_timeout(self):
        raise unittest.SkipTest("the address is the configuration's, not the API's")


class ProxmoxTLSTest(ProxmoxHome, CloudHome, unittest.TestCase):
    """tls_fingerprint: the right certificate passes, any other is refused before a
    request (and its token) is sent."""

    def test_the_pinned_fingerprint_passes_and_another_is_refused_before_the_token(self):
        cert, key = self_signed(self.tmp, "pve", "DNS:pve1.example.invalid")
        api = self.FAKE(token=TOKEN, polls_per_status=0, tls=(cert, key)).start()
        self.addCleanup(api.stop)
        self.api = api
        right = api.fingerprint()
        wrong = ":".join(["AB"] * 32)
        for fingerprint in (wrong, right.lower().replace(":", "")[:62] + "00"):
            self.configure(api_url=api.base_url, tls_fingerprint=fingerprint)
            message = self.assertErrorCode(self.run_plugin("order", "1"), 108)
            self.assertIn("was not sent: the TLS certificate of %s/api2/json failed the check "
                          "(its SHA-256 fingerprint is %s, not the tls_fingerprint"
                          % (api.base_url, right), message)
            self.assertEqual(api.requests, [])         # not one request: no token sent
            result = self.run_plugin("check")
            self.assertEqual(result.code, 1, result)
            self.assertIn("fingerprint is %s" % right, result.text)
            self.assertEqual(api.requests, [])
        self.configure(api_url=api.base_url, tls_fingerprint=right.lower())
        self.finished(self.order())
        self.assertEqual(len(api.servers), 1)
        self.assertTrue(all(r["headers"].get("Authorization") for r in api.requests))

    def test_without_a_fingerprint_the_self_signed_certificate_is_refused(self):
        cert, key = self_signed(self.tmp, "pve", "IP:127.0.0.1")
        api = self.FAKE(token=TOKEN, polls_per_status=0, tls=(cert, key)).start()
        self.addCleanup(api.stop)
        self.configure(api_url=api.base_url)
        message = self.assertErrorCode(self.run_plugin("order", "1"), 108)
        self.assertIn("failed the check", message)
        self.assertEqual(api.requests, [])
        self.configure(api_url=api.base_url, ca_file=cert)    # its CA: the certificate itself
        self.api = api
        self.finished(self.order())


class ProxmoxGuardrails(ProxmoxHome, GuardrailTests, unittest.TestCase):
    TOKEN_HEADER = "Authorization"
    FORBIDDEN = "http_403"

    def marks(self, tag, task_id):
        return {"description": "%s bx-owner=%s bx-task=%s" % (
            provider.PVE_MARK, tag, task_id)}

    def test_max_servers_holds_under_concurrent_orders(self):
        # and no two orders get one address or one VMID: a clone that lost the race for
        # a VMID (nextid answers the same to both) is sent again with the next
        self.configure(max_servers=4)
        answers = self.concurrent_orders(8)
        created = [a["task_id"] for a in answers if "task_id" in a]
        refused = [a["error_message"] for a in answers if "error" in a]
        self.assertEqual((len(created), len(refused)), (4, 4), answers)
        for message in refused:
            self.assertIn("backend.max_servers is 4 and 4 Proxmox servers held", message)
        # `order` waits about a second for its worker's clone: a loaded machine may take more
        wait_for(lambda: len([r for r in self.api.create_requests() if r["status"] == 200])
                 >= 4, what="the four clones")
        for task_id in created:
            self.worker_done(task_id)
        clones = [r for r in self.api.create_requests() if r["status"] == 200]
        self.assertEqual(len(clones), 4)
        self.assertEqual(len(self.api.servers), 4)
        tasks = self.home.state()["tasks"]
        self.assertEqual(len(set(tasks[t]["data"]["address"] for t in created)), 4)
        self.assertEqual(sorted(str(tasks[t]["data"].get("server_id")) for t in created),
                         sorted(str(vmid) for vmid in self.api.servers))

    def test_a_zone_without_capacity_falls_through_to_the_next(self):
        raise unittest.SkipTest("a Proxmox configuration names one template on one cluster")

    def test_other_refusals_never_fall_through(self):
        raise unittest.SkipTest("a Proxmox configuration names one template on one cluster")

    def test_dry_run_prints_the_request_and_creates_nothing(self):
        self.configure(max_servers=3)
        result = self.run_plugin("order", "1", "--dry-run")
        self.assertEqual(result.code, 0, result)
        text = result.text
        self.assertEqual(self.api.create_requests(), [])
        self.assertFalse(os.path.exists(self.home.state_path) and self.home.state()["tasks"])
        for line in ("POST %s/nodes/{the template's node}/qemu/{template}/clone\n" % self.api.url,
                     "Authorization: <masked>",
                     "ok: caps: 0 Proxmox server(s) held now, backend.max_servers 3",
                     "ok: template 9000: VM 9000 (rocky9-cloud) on node pve1, cloud-init "
                     "drive ide2",
                     '"ipconfig0": "ip=127.0.0.1/8,gw=127.0.0.254"',
                     '"cipassword": "<sha512-crypt hash of the root password>"',
                     '"size": "40G"', "POST %s/nodes/{node}/qemu/{newid}/status/start" % (
                         self.api.url)):
            self.assertIn(line, text)
        for secret in (TOKEN, "$6$"):
            self.assertNotIn(secret, text + result.err.decode("utf-8", "replace"))
        self.assertEqual(self.order(), "1")      # the dry run used no task id

    def test_dry_run_without_the_cloud_shows_the_request_all_the_same(self):
        self.api.stop()
        result = self.run_plugin("order", "1", "--dry-run")
        self.assertEqual(result.code, 0, result)
        text = result.text
        self.assertIn("note: could not reach Proxmox (", text)
        self.assertIn("no connection to ", text)
        self.assertIn("the clone it would send (as task 1):\nPOST ", text)
        self.assertIn("<sha512-crypt hash of the root password>", text)
        self.assertNotIn("FAIL", text)


if __name__ == "__main__":
    unittest.main()
