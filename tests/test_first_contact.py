# -*- coding: utf-8 -*-
"""First contact: a finished server accepts the caller's ssh_keycopy on the
first try. A real sshd on 127.0.0.1, the stand-in ssh_keycopy (tests/helpers/sshd.py)
through the real ssh client, reading the known_hosts file the plugin writes
(BXPROVIDER_KNOWN_HOSTS, the test override of ~/.ssh/known_hosts)."""

import base64
import hashlib
import hmac
import json
import os
import stat
import unittest

from helpers import sshd
from helpers.support import HomeTestCase, wait_for


def pool_config(port, entry=None, **settings):
    backend = {"type": "pool", "ssh_port": port, "ssh_timeout": 2, "allow_loopback": True}
    backend.update(settings)
    server = {"server": "127.0.0.1"}
    server.update(entry or {})
    return {"enabled": True, "backend": backend,
            "configurations": [{"id": "1", "descr": "pool", "servers": [server]}]}


def hashed_line(name, key):
    salt = os.urandom(20)
    digest = hmac.new(salt, name.encode(), hashlib.sha1).digest()
    return "|1|%s|%s %s\n" % (base64.b64encode(salt).decode(),
                              base64.b64encode(digest).decode(), key)


@unittest.skipUnless(sshd.have_openssh(), "needs openssh-server and openssh-client")
class FirstContactTest(HomeTestCase):
    @classmethod
    def setUpClass(cls):
        cls.sshd = sshd.SSHD().start()
        cls.other_key = sshd.keygen(os.path.join(cls.sshd.dir, "other"))

    @classmethod
    def tearDownClass(cls):
        cls.sshd.stop()

    def setUp(self):
        HomeTestCase.setUp(self)
        self.known_hosts = os.path.join(self.home.dir, "known_hosts")    # Home.env's
        self.name = "[127.0.0.1]:%d" % self.sshd.port

    def configure(self, entry=None, **settings):
        self.home.write_config(pool_config(self.sshd.port, entry, **settings))

    def finish(self):
        """Order, wait for the worker, answer order_status as the caller does."""
        task_id = self.home.ok("order", "1")["task_id"]
        wait_for(lambda: self.home.state()["tasks"][task_id]["status"] != "in_progress",
                 what="the SSH wait")
        return self.home.ok("order_status", task_id)

    def keycopy(self):
        return sshd.ssh_keycopy(self.sshd, self.known_hosts)

    def lines(self):
        with open(self.known_hosts) as handle:
            return handle.read().splitlines()

    def test_first_contact_without_an_entry(self):
        self.configure()
        self.assertEqual(self.keycopy(), 100)      # OpenSSH's new prompt: no pattern matches
        answer = self.finish()
        self.assertEqual(answer["status"], "finished", answer)
        self.assertEqual(self.keycopy(), 0)
        self.assertIn("%s %s" % (self.name, self.sshd.host_key), self.lines())
        self.assertEqual(stat.S_IMODE(os.stat(self.known_hosts).st_mode), 0o600)
        self.assertIn(" known_hosts task=1 ", self.home.read(self.home.log_path).decode())

    def test_a_stale_entry_is_replaced_and_the_rest_kept(self):
        self.configure()
        others = ["# the admin's comment", "example.org " + self.other_key,
                  "@revoked * " + self.other_key,
                  "10.0.0.1,%s %s" % (self.name, self.other_key)]
        with open(self.known_hosts, "w") as handle:
            handle.write("\n".join(others) + "\n")
            handle.write("%s %s\n" % (self.name, self.other_key))
            handle.write(hashed_line(self.name, self.other_key))
            handle.write(hashed_line("192.0.2.7", self.other_key))
        os.chmod(self.known_hosts, 0o640)
        self.assertEqual(self.keycopy(), 102)      # REMOTE HOST IDENTIFICATION HAS CHANGED
        self.assertEqual(self.finish()["status"], "finished")
        self.assertEqual(self.keycopy(), 0)
        lines = self.lines()
        self.assertEqual(lines[:3], others[:3])
        self.assertEqual(lines[3], "10.0.0.1 " + self.other_key)
        self.assertTrue(lines[4].startswith("|1|"))       # 192.0.2.7's hashed line
        self.assertEqual(lines[5:], ["%s %s" % (self.name, self.sshd.host_key)])
        self.assertEqual(stat.S_IMODE(os.stat(self.known_hosts).st_mode), 0o640)

    def test_a_pool_with_a_dead_first_server_finishes_on_the_live_one(self):
        # nothing listens on 127.0.0.2 at the sshd's port: refused at once
        config = pool_config(self.sshd.port)
        config["configurations"][0]["servers"] = [{"server": "127.0.0.2"},
                                                  {"server": "127.0.0.1"}]
        self.home.write_config(config)
        self.assertEqual(self.keycopy(), 100)
        answer = self.finish()
        self.assertEqual((answer["status"], answer["server"]), ("finished", "127.0.0.1"),
                         answer)
        self.assertEqual(self.keycopy(), 0)
        state = self.home.state()
        self.assertEqual(state["pool"], {"127.0.0.1": "1"})
        self.assertEqual(state["pool_unavailable"]["127.0.0.2"]["reason"], "connection refused")
        for command in (["pool"], ["tasks"], ["check"]):
            self.assertIn("127.0.0.2 is set aside since ", self.home.run(*command).text)
            self.assertIn(": connection refused; tried again after ",
                          self.home.run(*command).text)
        result = self.home.run("order", "1")
        self.assertIn("no free server for configuration 1; set aside as unavailable: "
                      "127.0.0.2", result.json["error_message"])

    def test_answering_finished_again_writes_nothing(self):
        self.configure()
        self.finish()
        before = os.stat(self.known_hosts)
        os.chmod(self.known_hosts, 0o600)
        with open(self.known_hosts, "a") as handle:
            handle.write("%s %s\n" % (self.name, self.other_key))   # noted as done: left alone
        self.home.ok("order_status", "1")
        after = os.stat(self.known_hosts)
        self.assertEqual((before.st_ino, self.lines()[-1]),
                         (after.st_ino, "%s %s" % (self.name, self.other_key)))
        self.assertEqual(self.home.state()["tasks"]["1"]["data"]["known_hosts_in"],
                         [self.known_hosts])

    def test_a_missing_ssh_folder_is_made_0700_and_a_linked_file_stays_linked(self):
        self.configure()
        folder = os.path.join(self.home.dir, "home", ".ssh")
        os.makedirs(os.path.dirname(folder))
        env = {"BXPROVIDER_KNOWN_HOSTS": os.path.join(folder, "known_hosts")}
        task_id = self.home.ok("order", "1")["task_id"]
        wait_for(lambda: self.home.state()["tasks"][task_id]["status"] != "in_progress",
                 what="the SSH wait")
        self.assertEqual(self.home.ok("order_status", task_id, env=env)["status"], "finished")
        self.assertEqual(stat.S_IMODE(os.stat(folder).st_mode), 0o700)
        self.assertEqual(sshd.ssh_keycopy(self.sshd, env["BXPROVIDER_KNOWN_HOSTS"]), 0)
        os.symlink(self.known_hosts, os.path.join(folder, "linked"))
        env = {"BXPROVIDER_KNOWN_HOSTS": os.path.join(folder, "linked")}
        self.home.ok("order_status", task_id, env=env)
        self.assertTrue(os.path.islink(env["BXPROVIDER_KNOWN_HOSTS"]))
        self.assertEqual(self.keycopy(), 0)         # written through the link

    def test_a_pinned_fingerprint_that_matches(self):
        fingerprint = sshd.fingerprint(self.sshd.host_key)
        self.configure({"host_key_sha256": fingerprint})
        self.assertEqual(self.finish()["status"], "finished")
        self.assertEqual(self.keycopy(), 0)

    def test_a_pinned_key_that_differs_is_not_handed_out(self):
        self.configure({"host_key": self.other_key + " admin@example"})
        answer = self.finish()
        self.assertEqual((answer["status"], answer["server"], answer["server_password"]),
                         ("error", "127.0.0.1", ""))
        self.assertIn("127.0.0.1 port %d shows another host key than the one pinned (%s, not "
                      "%s): not handed out" % (self.sshd.port, sshd.fingerprint(
                          self.sshd.host_key), sshd.fingerprint(self.other_key)),
                      answer["message"])
        self.assertFalse(os.path.exists(self.known_hosts))

    def command_result(self, host_key):
        program = os.path.join(self.home.dir, "provision.sh")
        with open(program, "w") as handle:
            handle.write("#!/bin/sh\necho '%s'\n" % json.dumps(
                {"server": "127.0.0.1", "server_password": "", "host_key": host_key}))
        os.chmod(program, 0o700)
        self.home.write_config({"enabled": True, "backend": {
            "type": "command", "command": [program], "ssh_port": self.sshd.port,
            "ssh_timeout": 2, "allow_loopback": True},
            "configurations": [{"id": "1", "descr": "vm"}]})
        return self.finish()

    def test_a_command_results_host_key_is_pinned(self):
        self.assertEqual(self.command_result(self.sshd.host_key)["status"], "finished")
        self.assertEqual(self.keycopy(), 0)

    def test_a_command_results_other_host_key_fails_the_order(self):
        answer = self.command_result(self.other_key)
        self.assertEqual(answer["status"], "error", answer)
        self.assertIn("shows another host key than the one pinned", answer["message"])
        self.assertFalse(os.path.exists(self.known_hosts))

    def test_known_hosts_off_leaves_the_file_alone(self):
        self.configure(known_hosts=False)
        self.assertEqual(self.finish()["status"], "finished")
        self.assertFalse(os.path.exists(self.known_hosts))
        self.assertEqual(self.keycopy(), 100)


@unittest.skipUnless(sshd.have_openssh(), "needs openssh-server and openssh-client")
class CloudPinnedKeyTest(HomeTestCase):
    """The fake Hetzner "creates" 127.0.0.1; an sshd started with the host key
    the plugin put into the user data plays the booted server's cloud-init."""

    def test_the_key_handed_to_cloud_init_is_the_one_written(self):
        from helpers.fakecloud import FakeHetzner
        api = FakeHetzner(token="T0k3n", polls_per_status=0).start()
        self.addCleanup(api.stop)
        token = os.path.join(self.home.dir, "etc", "token")
        with open(token, "w") as handle:
            handle.write("T0k3n\n")
        os.chmod(token, 0o600)
        port = sshd.free_port()
        self.home.write_config({"enabled": True, "backend": {
            "type": "hetzner", "token_file": token, "api_url": api.url, "ssh_port": port,
            "ready_grace": 0, "request_timeout": 2, "allow_loopback": True,
            "pool_key": os.path.join(self.home.dir, "no-key")},
            "configurations": [{"id": "1", "descr": "VPS", "server_type": "cx22",
                                "image": "ubuntu-24.04", "location": "fsn1"}]})
        task_id = self.home.ok("order", "1")["task_id"]
        user_data = api.create_requests()[0]["body"]["user_data"]
        private = json.loads(user_data.split("ed25519_private: ", 1)[1].split("\n", 1)[0])
        public = json.loads(user_data.split("ed25519_public: ", 1)[1].split("\n", 1)[0])
        key_file = os.path.join(self.home.dir, "host_key")
        with open(key_file, "w") as handle:
            handle.write(private)
        os.chmod(key_file, 0o600)
        server = sshd.SSHD(port=port).start()         # first its own key: cloud-init not run
        self.addCleanup(server.stop)
        self.assertNotEqual(server.host_key, public)
        answer = self.home.ok("order_status", task_id)      # a server without the key
        self.assertEqual(answer["status"], "in_progress")
        self.assertIn("running setup: it does not show the host key handed to cloud-init",
                      answer["message"])
        server.stop_process()
        server.host_key_file = key_file
        server.start()
        self.assertEqual(server.host_key, public)
        known_hosts = os.path.join(self.home.dir, "known_hosts")
        with open(known_hosts, "w") as handle:      # the address's previous tenant
            handle.write("[127.0.0.1]:%d %s\n" % (port, sshd.keygen(key_file + ".old")))
        answer = wait_for(lambda: (lambda a: a["status"] != "in_progress" and a)(
            self.home.ok("order_status", task_id)), what="the server to be ready")
        self.assertEqual(answer["status"], "finished", answer)
        self.assertEqual(sshd.ssh_keycopy(server, known_hosts), 0)
        with open(known_hosts) as handle:
            self.assertEqual(handle.read(), "[127.0.0.1]:%d %s\n" % (port, public))
        data = self.home.state()["tasks"][task_id]["data"]
        self.assertNotIn("host_key_private", data)
        self.assertNotIn(private.split("\n")[1].encode(), self.home.read(self.home.state_path))


@unittest.skipUnless(sshd.have_openssh(), "needs openssh-server and openssh-client")
class CloudHandFinishTest(HomeTestCase):
    """A cloud task finished by hand keeps the host key the plugin made for its
    server only when --server is the address its worker verified (data ipv4)."""

    def test_only_the_verified_address_keeps_the_plugin_made_key(self):
        from helpers.fakecloud import FakeHetzner
        api = FakeHetzner(token="T0k3n", polls_per_status=0).start()
        self.addCleanup(api.stop)
        token = os.path.join(self.home.dir, "etc", "token")
        with open(token, "w") as handle:
            handle.write("T0k3n\n")
        os.chmod(token, 0o600)
        server = sshd.SSHD().start()        # its own key: cloud-init has not run
        self.addCleanup(server.stop)
        self.home.write_config({"enabled": True, "backend": {
            "type": "hetzner", "token_file": token, "api_url": api.url,
            "ssh_port": server.port, "ready_grace": 0, "request_timeout": 2,
            "allow_loopback": True, "pool_key": os.path.join(self.home.dir, "no-key")},
            "configurations": [{"id": "1", "descr": "VPS", "server_type": "cx22",
                                "image": "ubuntu-24.04", "location": "fsn1"}]})
        task_id = self.home.ok("order", "1")["task_id"]
        wait_for(lambda: "running setup" in self.home.ok("order_status", task_id)["message"],
                 what="the server's address and SSH")
        data = self.home.state()["tasks"][task_id]["data"]
        made = data["host_keys"]
        self.assertNotEqual(made, [server.host_key])
        message = self.assertError(self.home.run(
            "task", "finish", task_id, "--server", "127.0.0.1", "--no-password"),
            112, "task finish")
        self.assertIn("does not show the host key the plugin handed to cloud-init", message)
        result = self.home.run("task", "finish", task_id, "--server", "localhost",
                               "--no-password")
        self.assertEqual(result.code, 0, result)
        self.assertEqual(self.home.ok("order_status", task_id)["status"], "finished")
        data = self.home.state()["tasks"][task_id]["data"]
        self.assertEqual(data["host_keys"], [server.host_key])
        self.assertNotIn("host_key_private", data)
        for path in (self.home.state_path, self.home.backup_path):
            self.assertNotIn(b"ed25519_private", self.home.read(path))
            self.assertNotIn(b"PRIVATE KEY", self.home.read(path))
        known_hosts = os.path.join(self.home.dir, "known_hosts")
        with open(known_hosts) as handle:
            self.assertEqual(handle.read(), "[localhost]:%d %s\n" % (server.port,
                                                                     server.host_key))
        self.assertEqual(sshd.ssh_keycopy(server, known_hosts, address="localhost"), 0)


@unittest.skipUnless(sshd.have_openssh(), "needs openssh-server and openssh-client")
class CloudInitCheckTest(HomeTestCase):
    """The cloud's readiness login (ssh ... test -f boot-finished) checks the pinned key."""

    def test_the_pinned_key_is_checked(self):
        from helpers.support import load_module
        provider = load_module()
        server = sshd.SSHD().start()
        self.addCleanup(server.stop)
        paths = provider.Paths(self.home.script)
        backend = provider.backend_class("hetzner")(
            {"type": "hetzner", "token_env": "NO_TOKEN", "ssh_port": server.port,
             "request_timeout": 2}, paths, provider.AuditLog(self.home.log_path))
        other = sshd.keygen(os.path.join(self.home.dir, "other"))
        done, why = backend.cloud_init.finished("127.0.0.1", server.client_key, [other])
        self.assertEqual(done, False)
        self.assertIn("Host key verification failed", why)
        done, why = backend.cloud_init.finished("127.0.0.1", server.client_key,
                                                [server.host_key])
        self.assertNotIn("Host key verification failed", why)


def manual_config(port, **settings):
    backend = {"type": "manual", "ssh_port": port, "ssh_timeout": 2, "allow_loopback": True}
    backend.update(settings)
    return {"enabled": True, "backend": backend,
            "configurations": [{"id": "1", "descr": "by hand"}]}


@unittest.skipUnless(sshd.have_openssh(), "needs openssh-server and openssh-client")
class ManualFirstContactTest(HomeTestCase):
    """`task finish` without --host-key: the server is checked (SSH banner, then
    ssh-keyscan) and its keys reach the caller's known_hosts; the caller (as
    test_caller_contract re-tells it) then adds it on the first try."""

    @classmethod
    def setUpClass(cls):
        cls.sshd = sshd.SSHD().start()
        cls.other_key = sshd.keygen(os.path.join(cls.sshd.dir, "other"))

    @classmethod
    def tearDownClass(cls):
        cls.sshd.stop()

    def setUp(self):
        from test_caller_contract import Caller
        HomeTestCase.setUp(self)
        self.home.write_config(manual_config(self.sshd.port))
        self.caller = Caller(self.home)
        self.known_hosts = os.path.join(self.home.dir, "known_hosts")
        self.name = "[127.0.0.1]:%d" % self.sshd.port

    def order(self):
        ok, answer = self.caller.order("1")
        self.assertTrue(ok, answer)
        return answer["task_id"]

    def finish(self, task_id, *extra):
        return self.home.run("task", "finish", task_id, "--server", "127.0.0.1",
                             "--no-password", *extra)

    def status(self, task_id):
        return self.caller.orders_list()[task_id]

    def test_no_entry(self):
        task_id = self.order()
        self.assertEqual(sshd.ssh_keycopy(self.sshd, self.known_hosts), 100)
        result = self.finish(task_id)
        self.assertEqual(result.code, 0, result)
        self.assertIn("checked: 127.0.0.1 port %d answers SSH-2.0-OpenSSH" % self.sshd.port,
                      result.text)
        self.assertIn("its host key goes to known_hosts at the next order_status", result.text)
        self.assertFalse(os.path.exists(self.known_hosts))     # not before order_status
        self.assertEqual(self.status(task_id)["status"], "finished")
        self.assertEqual(sshd.ssh_keycopy(self.sshd, self.known_hosts), 0)
        with open(self.known_hosts) as handle:
            self.assertEqual(handle.read(), "%s %s\n" % (self.name, self.sshd.host_key))

    def test_a_stale_entry(self):
        with open(self.known_hosts, "w") as handle:        # the address's previous server
            handle.write("example.org %s\n%s %s\n" % (self.other_key, self.name,
                                                       self.other_key))
        task_id = self.order()
        self.assertEqual(sshd.ssh_keycopy(self.sshd, self.known_hosts), 102)
        self.assertEqual(self.finish(task_id).code, 0)
        self.assertEqual(self.status(task_id)["status"], "finished")
        self.assertEqual(sshd.ssh_keycopy(self.sshd, self.known_hosts), 0)
        with open(self.known_hosts) as handle:
            self.assertEqual(handle.read().splitlines(), [
                "example.org " + self.other_key, "%s %s" % (self.name, self.sshd.host_key)])

    def test_no_check(self):
        task_id = self.order()
        result = self.finish(task_id, "--no-check")
        self.assertEqual(result.code, 0, result)
        self.assertIn("not checked (--no-check): nothing goes to known_hosts, so the caller's "
                      "first login to 127.0.0.1 must accept its host key itself", result.text)
        self.assertEqual(self.status(task_id)["status"], "finished")
        self.assertFalse(os.path.exists(self.known_hosts))
        self.assertEqual(sshd.ssh_keycopy(self.sshd, self.known_hosts), 100)

    def test_a_server_that_does_not_answer_is_refused_and_nothing_changes(self):
        from helpers.support import closed_port
        task_id = self.order()
        before = self.home.read(self.home.state_path)
        self.home.write_config(manual_config(closed_port()))
        message = self.assertError(self.finish(task_id), 112, "task finish")
        self.assertIn("127.0.0.1 port ", message)
        self.assertIn(" does not answer SSH: connection refused; nothing was changed: fix the "
                      "address (or the server) and run task finish again, or give --no-check",
                      message)
        message = self.assertError(self.home.run(
            "task", "finish", task_id, "--server", "no-such-host.invalid", "--no-password"),
            112, "task finish")
        self.assertIn("no-such-host.invalid port", message)
        self.assertIn("does not answer SSH: name does not resolve", message)
        self.assertEqual(self.home.read(self.home.state_path), before)
        self.assertEqual(self.status(task_id)["status"], "in_progress")

    def test_known_hosts_off_still_checks_ssh_and_keeps_no_key(self):
        self.home.write_config(manual_config(self.sshd.port, known_hosts=False))
        task_id = self.order()
        result = self.finish(task_id)
        self.assertEqual(result.code, 0, result)
        self.assertIn("checked: 127.0.0.1 port %d answers SSH-2.0-OpenSSH" % self.sshd.port,
                      result.text)
        self.assertIn("; known_hosts is off", result.text)
        self.assertEqual(self.status(task_id)["status"], "finished")
        self.assertFalse(os.path.exists(self.known_hosts))
        self.assertNotIn("host_keys", self.home.state()["tasks"][task_id]["data"])

    def test_a_host_key_given_still_pins_without_contact(self):
        from helpers.support import closed_port
        self.home.write_config(manual_config(closed_port()))    # nobody there: not asked
        task_id = self.order()
        result = self.finish(task_id, "--host-key", self.other_key)
        self.assertEqual(result.code, 0, result)
        self.assertEqual(self.status(task_id)["status"], "finished")
        with open(self.known_hosts) as handle:
            self.assertIn(self.other_key, handle.read())


class ManualHostKeyTest(HomeTestCase):
    """The manual backend contacts no server: the operator may give the key."""

    KEY = ("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl")

    def finish(self, *extra):
        task_id = self.home.ok("order", "1")["task_id"]
        result = self.home.run("task", "finish", task_id, "--server", "192.0.2.10", "--no-check",
                               "--no-password", *extra)
        return task_id, result

    def test_the_operators_host_key_is_written(self):
        task_id, result = self.finish("--host-key", self.KEY + " root@vm")
        self.assertEqual(result.code, 0, result)
        self.assertIn("its host key goes to known_hosts", result.text)
        self.assertEqual(self.home.ok("order_status", task_id)["status"], "finished")
        with open(os.path.join(self.home.dir, "known_hosts")) as handle:
            self.assertEqual(handle.read(), "192.0.2.10 %s\n" % self.KEY)

    def test_no_key_no_file_and_a_bad_key_is_refused(self):
        task_id, result = self.finish("--host-key", "ssh-ed25519 bm90IGEga2V5")
        self.assertEqual(result.code, 2, result)
        self.assertIn("--host-key: not a public key line", (result.out + result.err).decode())
        self.assertEqual(self.home.ok("order_status", task_id)["status"], "in_progress")
        self.assertEqual(self.finish()[1].code, 0)
        self.home.ok("order_status", "2")
        self.assertFalse(os.path.exists(os.path.join(self.home.dir, "known_hosts")))


    def test_a_fifo_or_a_file_in_a_folder_others_may_write_is_left_alone(self):
        fifo = os.path.join(self.home.dir, "known_hosts")
        os.mkfifo(fifo)                 # opened plainly, reading it would block the call
        task_id = self.finish("--host-key", self.KEY)[0]
        self.assertEqual(self.home.ok("order_status", task_id)["status"], "finished")
        self.assertTrue(stat.S_ISFIFO(os.lstat(fifo).st_mode))
        shared = os.path.join(self.home.dir, "shared")
        os.mkdir(shared)
        os.chmod(shared, 0o777)         # another user could swap the file under us
        link = os.path.join(self.home.dir, "linked")
        os.symlink(os.path.join(shared, "known_hosts"), link)
        self.assertEqual(self.home.ok("order_status", task_id,
                                      env={"BXPROVIDER_KNOWN_HOSTS": link})["status"],
                         "finished")
        self.assertEqual(os.listdir(shared), [])
        os.chmod(shared, 0o1777)        # sticky does not make the folder itself safe
        self.home.ok("order_status", task_id, env={"BXPROVIDER_KNOWN_HOSTS": link})
        self.assertEqual(os.listdir(shared), [])
        os.chmod(shared, 0o755)
        self.home.ok("order_status", task_id, env={"BXPROVIDER_KNOWN_HOSTS": link})
        with open(os.path.join(shared, "known_hosts")) as handle:
            self.assertEqual(handle.read(), "192.0.2.10 %s\n" % self.KEY)


class CheckTest(HomeTestCase):
    def test_check_says_who_takes_care_of_first_contact(self):
        text = self.home.run("check").text
        self.assertIn("first contact: `task finish` checks the server's SSH and reads its "
                      "host keys, unless given --host-key (the operator's key) or --no-check",
                      text)
        self.assertIn("ok   ssh-keyscan is ", text)
        self.assertIn("known_hosts %s is writable" % os.path.join(self.home.dir, "known_hosts"),
                      text)
        self.home.write_config(pool_config(22, known_hosts=False))
        self.assertIn("known_hosts is off: the first login to each server (its host key) is "
                      "up to you", self.home.run("check").text)

    def test_check_says_known_hosts_cannot_be_written_where_the_write_would_refuse(self):
        shared = os.path.join(self.home.dir, "shared")     # a folder others may write
        os.mkdir(shared)
        os.chmod(shared, 0o777)
        fifo = os.path.join(self.home.dir, "fifo")
        os.mkfifo(fifo)
        for path, why in ((os.path.join(shared, "known_hosts"), "belongs to uid"),
                          (fifo, "is not a regular file")):
            text = self.home.run("check", env={"BXPROVIDER_KNOWN_HOSTS": path}).text
            line = [l for l in text.splitlines() if "known_hosts %s" % path in l]
            self.assertEqual(len(line), 1, text)
            self.assertTrue(line[0].startswith("FAIL") and "cannot be written by uid" in line[0]
                            and why in line[0], line[0])

    def test_check_finds_the_callers_old_ssh_keycopy(self):
        from helpers.support import load_module
        version = load_module().local_ssh_version()
        if not version or version < (8, 0):
            self.skipTest("the local ssh is older than 8.0 or missing")
        webdir = os.path.join(self.home.dir, "webdir")     # /opt/webdir's layout
        home = os.path.join(webdir, "providers", "p")
        os.makedirs(home)
        os.makedirs(os.path.join(webdir, "bin"))
        keycopy = os.path.join(webdir, "bin", "ssh_keycopy")
        with open(keycopy, "w") as handle:
            handle.write('#!/usr/bin/expect\nexpect {\n  "(yes/no)? " { send "yes\\r" }\n}\n')
        env = {"BXPROVIDER_HOME": home, "BXPROVIDER_CONFIG": self.home.config_path}
        self.assertIn("ok   %s answers only the old `(yes/no)?` prompt and ssh is %d.%d: an "
                      "unknown host key fails \"add to pool\"; the plugin writes known_hosts "
                      "first" % ((keycopy,) + version), self.home.run("check", env=env).text)
        with open(keycopy, "w") as handle:
            handle.write('expect "(yes/no/\\[fingerprint\\])? "\n')
        self.assertNotIn("old `(yes/no)?`", self.home.run("check", env=env).text)


if __name__ == "__main__":
    unittest.main()
