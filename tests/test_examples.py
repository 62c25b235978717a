# -*- coding: utf-8 -*-
"""Every examples/*.conf, copied as it is into a provider home, passes `check`.

Only what needs the network or a secret is changed, the way a user would: the
secret files the example names (relative to the home, docs/reference.md "Paths in
the config") are created by the test, and the cloud API addresses point at the
local fakes (Hetzner, Timeweb: then `check` must find no problem at all) or at
a closed local port (OpenStack, Yandex: then the only FAIL allowed is the login
that could not reach its API, after the retry's backoff, recorded rather than
waited out). `check` runs in-process from another folder, so a path resolved
against the current directory would fail it.
"""

import glob
import json
import os
import shutil
import tempfile
import time
import unittest
from unittest import mock

from helpers.cloudbase import closed_port
from helpers.fakecloud import FakeHetzner, FakeTimeweb
from helpers.fake_proxmox import FakeProxmox
from helpers.support import ROOT, Home, call_main, python_folder, wait_for

EXAMPLES = os.path.join(ROOT, "examples")
SECRET_TEXT = {"token_file": "tok-example-0123456789\n", "password_file": "Example-pw-123\n",
               "application_credential_secret_file": "app-secret-0123456789\n"}
NETWORK_FAIL = ("cannot reach", "refused", "could not", "unreachable", "not sent")


def example(name):
    with open(os.path.join(EXAMPLES, name), "rb") as handle:
        return handle.read()


class ExamplesTest(unittest.TestCase):
    def setUp(self):
        self.waits = []
        self.home = Home(config=None)
        self.addCleanup(self.home.cleanup)
        self.elsewhere = tempfile.mkdtemp(prefix="bxprov-cwd-")
        self.addCleanup(shutil.rmtree, self.elsewhere, True)
        known = os.environ.get("BXPROVIDER_KNOWN_HOSTS")
        os.environ["BXPROVIDER_KNOWN_HOSTS"] = os.path.join(self.home.dir, "known_hosts")
        self.addCleanup(lambda: os.environ.__setitem__("BXPROVIDER_KNOWN_HOSTS", known)
                        if known is not None else os.environ.pop("BXPROVIDER_KNOWN_HOSTS"))

    def secret(self, relative, text):
        self.assertFalse(os.path.isabs(relative), "examples name home-relative paths")
        path = os.path.join(self.home.dir, relative)
        with open(path, "w") as handle:
            handle.write(text)
        os.chmod(path, 0o600)

    def install(self, name, urls=None, secrets=None):
        """The example as etc/provider.conf with its secret files, URLs replaced."""
        data = json.loads(example(name).decode("utf-8"))
        backend = data["backend"]
        for key, text in dict(SECRET_TEXT, **(secrets or {})).items():
            if key in backend:
                self.secret(backend[key], text)
        for item in data["configurations"]:
            for entry in item.get("servers", []):
                if "password_file" in entry:
                    self.secret(entry["password_file"], SECRET_TEXT["password_file"])
        backend.update(urls or {})
        self.home.write_config(data)
        return data

    def check(self):
        """(exit code, FAIL lines, the whole report) of `check` run from elsewhere.
        The plugin's pauses of 0.1 s or more (a retry's backoff) are recorded in
        self.waits, not waited out."""
        real_sleep = time.sleep

        def sleep(seconds):
            if seconds < 0.1:
                return real_sleep(seconds)
            self.waits.append(seconds)
        environ = dict(os.environ, PATH=python_folder() + os.pathsep + os.environ["PATH"])
        environ.pop("PYENV_ROOT", None)     # python3 on PATH: the interpreter under test
        with mock.patch("time.sleep", sleep), mock.patch.dict(os.environ, environ, clear=True):
            result = call_main(["check"], self.home.script, cwd=self.elsewhere)
        text = result.out.decode("utf-8")
        self.assertIn("ok   config %s is valid" % self.home.config_path, text, result)
        # nothing shipped trips check's own warnings (ids, descriptions, ...)
        self.assertEqual([l for l in text.splitlines() if l.startswith("WARN")], [], text)
        return result.code, [l for l in text.splitlines() if l.startswith("FAIL")], text

    def assertClean(self):
        code, failed, text = self.check()
        self.assertEqual((code, failed), (0, []), text)
        return text

    def test_every_example_is_tested(self):
        names = sorted(os.path.basename(p) for p in glob.glob(os.path.join(EXAMPLES, "*.conf")))
        tested = sorted(n[len("test_"):].replace("_", "-") + ".conf" for n in dir(self)
                        if n.startswith("test_") and n != "test_every_example_is_tested")
        self.assertEqual(names, tested)

    def test_manual(self):
        self.install("manual.conf")
        self.assertClean()

    def test_pool(self):
        self.install("pool.conf")
        text = self.assertClean()
        self.assertIn("password_file %s" % os.path.join(self.home.dir, "etc",
                                                        "pool-192.0.2.11.pw"), text)

    def test_command(self):
        # as install.sh --program puts it: bin/provision-example.sh, 0755
        program = os.path.join(self.home.dir, "bin", "provision-example.sh")
        shutil.copy(os.path.join(EXAMPLES, "provision-example.sh"), program)
        os.chmod(program, 0o755)
        data = self.install("command.conf")
        self.assertClean()
        # as shipped, a demo order finishes (no pauses here: EXAMPLE_DELAY 0)
        data["backend"]["env"]["EXAMPLE_DELAY"] = "0"
        self.home.write_config(data)
        task_id = self.home.ok("order", "1")["task_id"]
        answer = wait_for(lambda: (lambda a: a["status"] != "in_progress" and a)(
            self.home.ok("order_status", task_id)), what="the demo order to end")
        self.assertEqual((answer["status"], answer["server"]), ("finished", "192.0.2.10"),
                         answer)
        self.assertEqual(len(answer["server_password"]), 20)

    def cloud(self, name, fake):
        api = fake(token=SECRET_TEXT["token_file"].strip()).start()
        self.addCleanup(api.stop)
        self.install(name, {"api_url": api.url})
        text = self.assertClean()
        self.assertIn("API token from etc/token", text)
        self.assertIn("accepts the token", text)

    def test_hetzner(self):
        self.cloud("hetzner.conf", FakeHetzner)

    def test_timeweb(self):
        self.cloud("timeweb.conf", FakeTimeweb)

    def test_proxmox(self):
        # the example's api_url is https with a pinned fingerprint; here it is the fake
        # over plain http on loopback, which the fingerprint does not concern
        secret = "0f3c9a52-7e1d-4b8a-9c6e-1d2f3a4b5c6d"
        data = json.loads(example("proxmox.conf").decode("utf-8"))
        api = FakeProxmox(token=secret, token_id=data["backend"]["token_id"]).start()
        self.addCleanup(api.stop)
        self.install("proxmox.conf", {"api_url": api.base_url},
                     {"token_secret_file": secret + "\n"})
        text = self.assertClean()
        self.assertIn("API token bitrix@pve!provider, its secret from etc/proxmox-token", text)
        self.assertIn("accepts the token", text)
        self.assertIn("configuration 1: template 9000: VM 9000 (rocky9-cloud) on node pve1, "
                      "cloud-init drive ide2", text)
        self.assertIn("configuration 2: 10 of 10 addresses free", text)

    def offline(self, name, urls, secrets=None):
        """An example whose login needs a cloud of its own: every line but that login's
        must pass."""
        self.install(name, urls, secrets)
        code, failed, text = self.check()
        self.assertEqual(code, 1, text)
        self.assertEqual(len(failed), 1, text)
        self.assertTrue(any(word in failed[0] for word in NETWORK_FAIL), text)
        self.assertTrue(failed[0].endswith("(check the address in the config, DNS, the firewall "
                                           "and https_proxy)"), failed[0])      # the fix
        self.assertEqual(self.waits, [0.25, 0.5, 1.0], text)   # the login's four tries

    def openstack(self, name):
        self.offline(name, {"auth_url": "http://127.0.0.1:%d/v3" % closed_port()})

    def test_openstack(self):
        self.openstack("openstack.conf")

    def test_openstack_selectel(self):
        self.openstack("openstack-selectel.conf")

    def test_openstack_vkcloud(self):
        self.openstack("openstack-vkcloud.conf")

    def test_yandex(self):
        from test_backend_yandex import key_file_text, read, rsa_key
        url = "http://127.0.0.1:%d" % closed_port()
        self.offline("yandex.conf", {"iam_url": url + "/iam/v1/tokens"}, {
            "service_account_key_file": key_file_text(read(rsa_key()[1]))})


if __name__ == "__main__":
    unittest.main()
