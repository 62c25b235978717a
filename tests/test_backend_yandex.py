# -*- coding: utf-8 -*-
"""The Yandex Cloud backend: its PS256 JWT (checked with the openssl command,
not only with our own code) and the backend against tests/helpers/fake_yandex.py."""

import base64
import json
import os
import shutil
import subprocess
import tempfile
import time
import unittest

from helpers.cloudbase import CloudTests
from helpers.fake_yandex import NO_CAPACITY, FakeYandex, openssl_verifies
from test_cloud_guardrails import GuardrailTests
from helpers.support import RUN_ROOT, SCRIPT, load_module

provider = load_module()
KEY_ID, ACCOUNT_ID = "ajekey00000000000001", "ajesa0000000000000001"

KEYS = {}       # name -> its files, made once per test run (in the run's temp folder,
                # shared by its workers, removed with it): RSA key generation is slow


def openssl(*args, **kwargs):
    """Run the openssl command; skips the test when there is none."""
    if shutil.which("openssl") is None:
        raise unittest.SkipTest("no openssl command on PATH")
    proc = subprocess.Popen(("openssl",) + args, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    out = proc.communicate(timeout=60)[0]
    if kwargs.get("check", True) and proc.returncode != 0:
        raise AssertionError("openssl %s: %s" % (" ".join(args), out.decode("utf-8", "replace")))
    return proc.returncode, out.decode("utf-8", "replace")


def rsa_key(name="main", bits=2048):
    """(folder, private PKCS#8 PEM path, public PEM path) of a test key, made once
    per run: the first process that needs it makes it in a folder of its own and
    renames that into place (a process that loses the race uses the winner's)."""
    if name not in KEYS:
        folder = os.path.join(RUN_ROOT.path, "yandex-key-%s-%d" % (name, bits))
        if not os.path.isdir(folder):
            temp = tempfile.mkdtemp(prefix="bxyandex-key-", dir=RUN_ROOT.path)
            openssl("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:%d" % bits,
                    "-out", os.path.join(temp, "key.pem"))
            openssl("pkey", "-in", os.path.join(temp, "key.pem"), "-pubout", "-out",
                    os.path.join(temp, "pub.pem"))
            try:
                os.rename(temp, folder)
            except OSError:             # another process put its key there first
                shutil.rmtree(temp, True)
        KEYS[name] = (folder, os.path.join(folder, "key.pem"), os.path.join(folder, "pub.pem"))
    return KEYS[name]


def read(path):
    with open(path) as handle:
        return handle.read()


def unpad(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class JWTTest(unittest.TestCase):
    def test_the_jwt_has_yandexs_header_and_claims_and_openssl_verifies_it(self):
        _, private, public = rsa_key()
        key = provider.rsa_private_key(read(private))
        jwt = provider.yandex_jwt("ajekey123", "ajesa456", key, 1700000000)
        header, claims, _ = jwt.split(".")
        self.assertEqual(json.loads(unpad(header).decode()),
                         {"typ": "JWT", "alg": "PS256", "kid": "ajekey123"})
        self.assertEqual(json.loads(unpad(claims).decode()), {
            "iss": "ajesa456", "aud": "https://iam.api.cloud.yandex.net/iam/v1/tokens",
            "iat": 1700000000, "exp": 1700003600})
        self.assertNotIn("=", jwt)
        self.assertTrue(openssl_verifies(jwt, public))
        again = provider.yandex_jwt("ajekey123", "ajesa456", key, 1700000000)
        self.assertNotEqual(again, jwt)           # a fresh random salt every time
        self.assertTrue(openssl_verifies(again, public))
        other = base64.urlsafe_b64encode(unpad(claims).replace(b"ajesa456", b"ajesa457"))
        forged = ".".join((header, other.decode().rstrip("="), jwt.rsplit(".", 1)[1]))
        self.assertFalse(openssl_verifies(forged, public))     # openssl really checks

    def test_a_key_as_yc_writes_it_and_a_pkcs1_key(self):
        _, private, public = rsa_key()
        text = "PLEASE DO NOT REMOVE THIS LINE! Yandex.Cloud SA Key ID <ajekey123>\n" + \
            read(private)
        key = provider.rsa_private_key(text)
        folder = tempfile.mkdtemp(prefix="bxyandex-pkcs1-")
        self.addCleanup(shutil.rmtree, folder, True)
        pkcs1 = os.path.join(folder, "pkcs1.pem")
        code, out = openssl("rsa", "-in", private, "-traditional", "-out", pkcs1, check=False)
        if code != 0 or "BEGIN RSA PRIVATE KEY" not in read(pkcs1):
            self.skipTest("this openssl cannot write a PKCS#1 key: %s" % out)
        self.assertEqual(provider.rsa_private_key(read(pkcs1)), key)
        self.assertTrue(openssl_verifies(provider.yandex_jwt("k", "s", key, 1), public))

    def test_keys_that_cannot_sign_are_refused_with_the_reason(self):
        _, private, _ = rsa_key()
        good = read(private)
        body = "".join(good.splitlines()[1:-1])
        der = base64.b64decode(body)
        cases = {
            "no -----BEGIN PRIVATE KEY-----": ["", "{}", good.replace("PRIVATE", "PUBLIC"),
                                               good.replace("-----BEGIN PRIVATE KEY-----",
                                                            "-----BEGIN RSA PRIVATE KEY-----")],
            "not base64": [good.replace(body[10:14], "!!!!")],
            "ends early": [pem(der[:300])],
            "not an RSA key": [pem(der.replace(b"\x2a\x86\x48\x86\xf7\x0d\x01\x01\x01",
                                               b"\x2a\x86\x48\xce\x3d\x02\x01\x01\x01"))],
            "not a DER sequence": [pem(b"\x04\x03abc")],
        }
        for reason, texts in cases.items():
            for text in texts:
                with self.assertRaises(ValueError) as caught:
                    provider.rsa_private_key(text)
                self.assertIn(reason, str(caught.exception))

    def test_a_key_whose_numbers_do_not_fit_is_refused_before_it_signs(self):
        key = provider.rsa_private_key(read(rsa_key()[1]))
        broken = dict(key, dp=key["dp"] + 2)
        with self.assertRaises(ValueError) as caught:
            provider.yandex_jwt("k", "s", broken, 1)
        self.assertIn("does not verify", str(caught.exception))
        with self.assertRaises(ValueError):
            provider.rsa_private_key(read(rsa_key("short", 1024)[1]))


def key_file_text(private_pem, key_id=KEY_ID):
    """An authorized key as `yc iam key create --output FILE` writes it."""
    return json.dumps({
        "id": key_id, "service_account_id": ACCOUNT_ID, "created_at": "2026-11-29T19:00:00Z",
        "key_algorithm": "RSA_2048", "public_key": "-----BEGIN PUBLIC KEY-----\n...",
        "private_key": "PLEASE DO NOT REMOVE THIS LINE! Yandex.Cloud SA Key ID <%s>\n%s"
                       % (key_id, private_pem)}, indent=2)


class YandexHome(object):
    """The fake Yandex Cloud and a key file behind cloudbase's CloudHome."""

    TYPE = "yandex"
    LABEL = "Yandex Cloud"
    CONFIGURATION = {"zone_id": FakeYandex.ZONE, "subnet_id": FakeYandex.SUBNET,
                     "image_id": "fd8image0000000000u0", "memory_gb": 4, "disk_gb": 30}
    CREATE_PATH = "/compute/v1/instances"
    FIRST_REQUEST = "POST /compute/v1/instances"
    SERVERS_PATH = r"^/compute/v1/instances"
    SERVER_KEY = None                  # GET .../instances/ID answers the instance itself
    ODD_STATUS = "is unknown"          # YandexBackend.describe reads a status in no shape so

    def FAKE(self, **kwargs):          # CloudTests makes its fakes through this
        api = FakeYandex(**kwargs)
        api.iam.public_key = rsa_key()[2]
        self.fakes = getattr(self, "fakes", []) + [api]
        return api

    def write_token(self, token, mode=0o600):
        """The credential of every test: the service account's key file."""
        with open(self.token_file, "w") as handle:
            handle.write(key_file_text(read(rsa_key()[1])))
        os.chmod(self.token_file, mode)

    def configure(self, configuration=None, top=None, **backend):
        url = backend.pop("api_url", self.api.url)
        [api] = [fake for fake in self.fakes if fake.url == url]
        settings = {"token_file": None, "api_url": None, "folder_id": FakeYandex.FOLDER,
                    "service_account_key_file": self.token_file, "compute_url": url,
                    "operation_url": url, "vpc_url": url, "iam_url": api.iam.url}
        settings.update(backend)
        super(YandexHome, self).configure(configuration, top, **settings)

    def user_data(self, request):
        return request["body"]["metadata"]["user-data"]


class YandexTest(YandexHome, CloudTests, unittest.TestCase):
    REFUSAL = "Yandex Cloud: PERMISSION_DENIED: Permission denied to folder"

    def refuse_next_create(self):
        self.api.error_next(403, 7, "Permission denied to folder " + FakeYandex.FOLDER,
                            method="POST", path=r"^/compute/v1/instances$")

    # a static token_file / token_env (hetzner, timeweb; openstack's password): yandex
    # logs in with a key file, and has its own tests below
    test_a_bad_token_is_a_clear_error_at_order_and_in_check = None
    test_the_token_from_an_environment_variable = None

    def test_a_key_file_is_all_it_takes_jwt_iam_token_instance(self):
        task_id = self.order()
        [create] = self.api.create_requests()
        body = create["body"]
        self.assertEqual(body["folderId"], FakeYandex.FOLDER)
        self.assertRegex(body["name"], r"^provider-%s-[0-9a-f]{8}$" % task_id)
        self.assertEqual(body["labels"], {"managed-by": "provider.py", "bx-task": task_id,
                                          "bx-owner": body["name"].rsplit("-", 1)[1]})
        self.assertEqual((body["zoneId"], body["platformId"]), (FakeYandex.ZONE, "standard-v3"))
        self.assertEqual(body["resourcesSpec"], {"memory": str(4 << 30), "cores": 2,
                                                 "coreFraction": 100})
        self.assertEqual(body["bootDiskSpec"], {"autoDelete": True, "diskSpec": {
            "size": str(30 << 30), "typeId": "network-ssd", "imageId": "fd8image0000000000u0"}})
        self.assertEqual(body["networkInterfaceSpecs"], [{
            "subnetId": FakeYandex.SUBNET,
            "primaryV4AddressSpec": {"oneToOneNatSpec": {"ipVersion": "IPV4"}}}])
        config = self.our_cloud_config(create)
        self.assertIn("\ndisable_root: false\n", config)
        self.assertIn('\nwrite_files:\n  - path: /etc/ssh/sshd_config.d/00-provider-py.conf\n'
                      '    permissions: "0600"\n    content: "PermitRootLogin yes\\n'
                      'PasswordAuthentication yes\\n"\n', config)     # Ubuntu's images
        answer = self.finished(task_id)
        self.assertEqual(answer["server"], "127.0.0.1")
        self.assertTrue(answer["server_password"])
        [jwt] = self.api.iam.jwts                   # one login: the IAM token was kept
        self.assertTrue(openssl_verifies(jwt, rsa_key()[2]))
        self.assertEqual([r["path"] for r in self.api.iam.requests], ["/iam/v1/tokens"])
        self.assertTrue(all(r["token_ok"] for r in self.api.requests), self.api.requests)
        self.assertEqual(len(self.api.servers), 1)

    def test_a_crashed_instance_is_waited_for_as_yandex_restarts_it(self):
        # compute/v1/instance.proto: CRASHED "will be restarted automatically": not final
        task_id = self.order()
        [server_id] = list(self.api.servers)
        self.api.set_status(server_id, "CRASHED")
        answer = self.ok("order_status", task_id)
        self.assertEqual(answer["status"], "in_progress", answer)
        self.assertIn("CRASHED (Yandex Cloud restarts it by itself)", answer["message"])
        self.api.set_status(server_id, "RUNNING")
        self.finished(task_id)
        self.assertEqual(list(self.api.servers), [server_id])

    def test_an_operation_is_waited_for_and_its_error_fails_the_task(self):
        self.api.op_polls = 1
        task_id = self.order()
        answer = self.ok("order_status", task_id)
        self.assertRegex(answer["message"], r"^booting: Yandex Cloud instance fhm\d+ is being "
                                            r"created \(operation fhmop\d+\)$")
        self.finished(task_id)
        self.api.operation_fails_next(8, "Not enough resources in zone ru-central1-a")
        task_id = self.order()
        self.ok("order_status", task_id)
        answer = self.ok("order_status", task_id)
        self.assertEqual(answer["status"], "error", answer)
        self.assertIn("Yandex Cloud: creating the instance failed: RESOURCE_EXHAUSTED: Not "
                      "enough resources in zone ru-central1-a; a quota or a rate limit",
                      answer["message"])
        self.assertNotIn("billed", answer["message"])        # the instance is gone
        self.assertEqual(len(self.api.servers), 1)

    def test_the_image_family_gives_its_newest_image(self):
        self.configure({"image_id": None, "image_family": "ubuntu-2204-lts"})
        self.finished(self.order())
        [create] = self.api.create_requests()
        self.assertEqual(create["body"]["bootDiskSpec"]["diskSpec"]["imageId"],
                         FakeYandex.LATEST["ubuntu-2204-lts"])
        [lookup] = self.api.requests_for("GET", r"^/compute/v1/images:latestByFamily$")
        self.assertEqual(lookup["query"], {"folderId": ["standard-images"],
                                           "family": ["ubuntu-2204-lts"]})
        self.configure({"image_id": None, "image_family": "no-such-family"})
        message = self.assertErrorCode(self.run_plugin("order", "1"), 108)
        self.assertIn("NOT_FOUND: Image family no-such-family not found; an id in the config",
                      message)
        self.assertEqual(len(self.api.create_requests()), 1)

    def test_an_expired_iam_token_is_renewed(self):
        task_id = self.order()
        self.assertEqual(len(self.api.iam.issued), 1)
        self.api.iam.expire()                       # the kept token is refused (401)
        self.finished(task_id)
        self.assertEqual(len(self.api.iam.issued), 2)
        self.assertEqual([r["status"] for r in self.api.requests_for("GET")][:2], [401, 200])
        state = self.home.state()
        [entry] = state["tokens"].values()
        self.assertEqual(entry["token"], self.api.iam.issued[-1])
        entry["expires"] = int(time.time()) + 60      # close to its end: renewed before use
        with open(self.home.state_path, "w") as handle:
            json.dump(state, handle)
        logins = len(self.api.iam.requests)
        self.ok("order_status", self.order())
        self.assertEqual(len(self.api.iam.requests), logins + 1)
        self.assertNotIn(401, [r["status"] for r in self.api.requests[-3:]])

    def test_a_bad_key_is_a_clear_error(self):
        with open(self.token_file, "w") as handle:
            handle.write("not json")
        message = self.assertErrorCode(self.run_plugin("order", "1"), 104)
        self.assertIn("is not an authorized key as `yc iam key create --output FILE` writes "
                      "it", message)
        with open(self.token_file, "w") as handle:
            handle.write(key_file_text("-----BEGIN PRIVATE KEY-----\nAAAA\n"
                                       "-----END PRIVATE KEY-----\n"))
        message = self.assertErrorCode(self.run_plugin("order", "1"), 104)
        self.assertIn("its private_key cannot sign: the PKCS#8 key is not a DER sequence",
                      message)
        self.assertFalse(os.path.exists(self.home.state_path))     # no task was made
        self.assertEqual(self.api.iam.requests + self.api.requests, [])
        with open(self.token_file, "w") as handle:       # a key IAM does not know
            handle.write(key_file_text(read(rsa_key("other")[1])))
        message = self.assertErrorCode(self.run_plugin("order", "1"), 108)
        self.assertIn("Yandex Cloud: UNAUTHENTICATED: JWT signature verification failed; "
                      "the credentials were refused", message)
        self.assertIn("(HTTP 401 to POST /iam/v1/tokens)", message)
        result = self.run_plugin("check")
        self.assertEqual(result.code, 1, result)
        self.assertRegex(result.text, r"FAIL .*UNAUTHENTICATED: JWT signature verification")
        self.assertEqual(self.api.requests, [])
        self.assertNotIn(read(rsa_key("other")[1]).splitlines()[2].encode(),
                         result.out + result.err)

    def test_a_deeply_nested_key_file_or_a_key_that_cannot_sign_is_a_clear_error(self):
        with open(self.token_file, "w") as handle:
            handle.write("[" * 60000)
        message = self.assertErrorCode(self.run_plugin("order", "1"), 104)
        self.assertIn("is not an authorized key", message)
        key = provider.rsa_private_key(read(rsa_key()[1]))
        numbers = [0] + [key[name] for name in ("n", "e", "d", "p", "q", "dp", "dq", "qinv")]
        numbers[6] += 2                 # dp: the numbers parse but cannot sign
        body = b"".join(der(0x02, n.to_bytes(n.bit_length() // 8 + 1, "big")) for n in numbers)
        text = base64.b64encode(der(0x30, body)).decode("ascii")
        with open(self.token_file, "w") as handle:
            handle.write(key_file_text("-----BEGIN RSA PRIVATE KEY-----\n%s\n-----END RSA "
                                       "PRIVATE KEY-----\n" % text))
        message = self.assertErrorCode(self.run_plugin("order", "1"), 104)
        self.assertIn("its private_key cannot sign: the RSA key is damaged", message)
        self.assertEqual(self.api.iam.requests + self.api.requests, [])

    def test_quota_is_ridden_out_with_backoff_then_a_clear_error(self):
        self.api.quota_next(count=10)
        message = self.assertErrorCode(self.run_plugin("order", "1"), 108)
        self.assertIn("Yandex Cloud: RESOURCE_EXHAUSTED: Quota limit compute.instances.count "
                      "exceeded; a quota or a rate limit: see the folder's quotas", message)
        self.assertIn("(HTTP 429 to POST /compute/v1/instances)", message)
        self.assertEqual(self.home.sleeps(), [0.25, 0.5, 1.0])     # the virtual clock's
        self.assertEqual(len(self.api.create_requests()), 4)
        self.assertEqual(self.api.servers, {})

    def test_an_instance_with_our_name_but_not_our_labels_is_not_adopted(self):
        tag = provider.owner_tag(self.home.new_state())
        name = provider.server_name("provider", "1", tag)
        self.api.add_server(name, labels={"made-by": "someone"})
        task_id = self.order()
        self.assertEqual(task_id, "1")
        answer = self.ok("order_status", task_id)
        self.assertEqual(answer["status"], "in_progress", answer)
        self.assertIn("ALREADY_EXISTS", self.home.state()["tasks"][task_id]["message"] +
                      read(self.home.log_path))
        self.assertNotIn("server_id", self.home.state()["tasks"][task_id]["data"])
        self.assertEqual(len(self.api.servers), 1)

    def test_check_shows_the_folder_image_and_subnet(self):
        result = self.run_plugin("check")
        self.assertEqual(result.code, 1, result)        # only: allow_loopback is for tests
        self.assertEqual([line for line in result.text.splitlines() if line.startswith("FAIL")],
                         ["FAIL yandex: allow_loopback is true: the caller refuses loopback "
                          "servers; this is for tests only (remove it from the backend)"])
        for line in ("ok   Yandex Cloud IAM token for service account %s (key %s in %s)" % (
                         ACCOUNT_ID, KEY_ID, self.token_file),
                     "ok   folder %s: the service account may list its instances"
                     % FakeYandex.FOLDER,
                     "ok   configuration 1: image fd8image0000000000u0 (ubuntu-2204-lts-"
                     "v20241028)",
                     "ok   configuration 1: zone ru-central1-a: subnet %s (default-ru-central1-a,"
                     " 10.128.0.0/24)" % FakeYandex.SUBNET):
            self.assertIn(line, result.text)
        self.configure({"zone_id": "ru-central1-b"})
        result = self.run_plugin("check")
        self.assertIn("FAIL configuration 1: zone ru-central1-b: subnet %s (default-ru-"
                      "central1-a, 10.128.0.0/24) is in zone ru-central1-a" % FakeYandex.SUBNET,
                      result.text)
        self.assertNotIn(self.api.iam.issued[-1].encode(), result.out + result.err)

    def test_the_metadata_service_or_an_oauth_token_instead_of_a_key(self):
        self.configure(service_account_key_file=None, metadata=True,
                       metadata_url=self.api.iam.url)
        self.finished(self.order())
        [login] = self.api.iam.requests
        self.assertEqual(login["path"],
                         "/computeMetadata/v1/instance/service-accounts/default/token")
        self.assertEqual(login["headers"].get("Metadata-Flavor"), "Google")
        oauth = os.path.join(self.tmp, "oauth")
        with open(oauth, "w") as handle:
            handle.write("y0_oauth_token_for_tests\n")
        os.chmod(oauth, 0o600)
        self.api.iam.oauth_token = "y0_oauth_token_for_tests"
        self.configure(service_account_key_file=None, oauth_token_file=oauth)
        self.finished(self.order())
        self.assertEqual(self.api.iam.requests[-1]["body"],
                         {"yandexPassportOauthToken": "y0_oauth_token_for_tests"})
        self.assertEqual(len(self.api.servers), 2)
        self.api.iam.fail_next(400, body={"code": 3, "message": "token y0_oauth_token_for_tests"
                                          " is malformed"})     # an IAM quoting it back
        state = self.home.state()
        state.pop("tokens")                                     # no cached IAM token
        with open(self.home.state_path, "w") as handle:
            json.dump(state, handle)
        message = self.assertErrorCode(self.run_plugin("order", "1"), 108)
        self.assertIn("token ******** is malformed", message)
        self.assertNotIn(b"y0_oauth", self.home.read(self.home.log_path))

    def test_no_key_or_iam_token_in_any_file_but_the_state(self):
        self.finished(self.order())
        self.run_plugin("check")
        self.run_plugin("tasks")
        secrets = [self.api.iam.issued[-1].encode(), self.api.iam.jwts[-1].encode()] + \
            [line.encode() for line in read(rsa_key()[1]).splitlines()[1:-1]]
        for folder, _, files in os.walk(self.home.dir):
            for name in files:
                path = os.path.join(folder, name)
                data = self.home.read(path)
                for secret in secrets[1:]:
                    self.assertNotIn(secret, data, path)
                if path not in (self.home.state_path, self.home.backup_path):
                    self.assertNotIn(secrets[0], data, path)


class YandexGuardrails(YandexHome, GuardrailTests, unittest.TestCase):
    ZONE = "zone_id"
    BODY_ZONE = "zoneId"
    ZONES = list(FakeYandex.SUBNETS)
    CONFIGURATION = dict(YandexHome.CONFIGURATION, subnet_id=FakeYandex.SUBNETS)
    CAPACITY = (429, 8, NO_CAPACITY)
    FORBIDDEN = "PERMISSION_DENIED"
    RESOLVED = ["ok: image fd8image0000000000u0 (ubuntu-2204-lts-v20241028)"] + [
        "ok: zone %s: subnet %s (default-%s, 10.%d.0.0/24)" % (zone, subnet, zone, 128 + index)
        for index, (zone, subnet) in enumerate(sorted(FakeYandex.SUBNETS.items()))]

    def marks(self, tag, task_id):
        return {"labels": {"managed-by": "provider.py", "bx-owner": tag, "bx-task": task_id}}

    def test_dry_run_without_the_cloud_shows_an_image_family_unresolved(self):
        self.configure({"image_id": None, "image_family": "ubuntu-2204-lts"})
        self.api.stop()
        result = self.run_plugin("order", "1", "--dry-run")
        self.assertEqual(result.code, 0, result)
        self.assertIn('"imageId": "<image family ubuntu-2204-lts: not resolved: no connection '
                      'to ', result.text)

    def test_an_operation_failing_for_capacity_falls_through_to_the_next_zone(self):
        self.api.op_polls = 1
        self.configure({"zone_id": self.ZONES[:2], "platform_id": ["standard-v3",
                                                                   "standard-v2"]})
        self.api.operation_fails_next(8, NO_CAPACITY)
        task_id = self.order()
        self.ok("order_status", task_id)                    # the operation is still running
        answer = self.ok("order_status", task_id)
        self.assertEqual(answer["status"], "in_progress", answer)
        self.assertIn("creating: no capacity for platform_id standard-v3 zone_id "
                      "ru-central1-a (Yandex Cloud: creating the instance failed: "
                      "RESOURCE_EXHAUSTED: %s" % NO_CAPACITY, answer["message"])
        self.assertIn("trying platform_id standard-v3 zone_id ru-central1-b",
                      answer["message"])
        answer = self.finished(task_id)
        self.assertEqual([(r["body"]["platformId"], r["body"]["zoneId"],
                           r["body"]["networkInterfaceSpecs"][0]["subnetId"])
                          for r in self.api.create_requests()],
                         [("standard-v3", "ru-central1-a", FakeYandex.SUBNETS["ru-central1-a"]),
                          ("standard-v3", "ru-central1-b", FakeYandex.SUBNETS["ru-central1-b"])])
        self.assertEqual(len(self.api.servers), 1)
        self.assertIn("zone_id ru-central1-b", answer["message"])

    def test_the_dry_run_names_the_folder_image_and_subnets_once(self):
        self.configure({"zone_id": self.ZONES[:2]})
        text = self.run_plugin("order", "1", "--dry-run").text
        for line in ["ok: folder %s: the service account may list its instances"
                     % FakeYandex.FOLDER] + self.RESOLVED[:3]:
            self.assertEqual(text.count(line + "\n"), 1, (line, text))
        self.assertIn("POST %s/compute/v1/instances\n" % self.api.url, text)
        self.assertEqual(self.api.create_requests(), [])

    def test_an_operation_error_with_a_code_of_another_shape_fails_the_task_clearly(self):
        self.api.op_polls = 1
        self.configure({"zone_id": self.ZONES[:2]})
        self.api.operation_fails_next([8], NO_CAPACITY)     # a code that is no number
        task_id = self.order()
        answer = self.poll(task_id)[-1]
        self.assertEqual(answer["status"], "error", answer)
        self.assertIn("creating the instance failed: error: %s" % NO_CAPACITY,
                      answer["message"])
        self.assertEqual(len(self.api.create_requests()), 1)

    def test_a_quota_never_falls_through(self):
        self.configure({"zone_id": self.ZONES})
        self.api.quota_next(count=4)
        message = self.assertErrorCode(self.run_plugin("order", "1"), 108)
        self.assertIn("Quota limit compute.instances.count exceeded", message)
        self.assertEqual(self.zones_asked(), self.ZONES[:1] * 4)     # retried, same zone


class YandexConfigTest(unittest.TestCase):
    BACKEND = {"type": "yandex", "folder_id": "b1gfolder", "service_account_key_file": "/k"}
    ITEM = {"id": "1", "descr": "VM", "zone_id": "ru-central1-a", "subnet_id": "e9bsubnet",
            "image_family": "ubuntu-2204-lts"}

    def problems(self, backend=None, **item):
        settings = dict(self.BACKEND, **(backend or {}))
        configuration = dict(self.ITEM, **item)
        return provider.validate_config({
            "enabled": True, "configurations": [dict((k, v) for k, v in configuration.items()
                                                     if v is not None)],
            "backend": dict((k, v) for k, v in settings.items() if v is not None)})

    def test_a_good_config_and_each_mistake_named(self):
        self.assertEqual(self.problems(), [])
        self.assertEqual(self.problems(zone_id=["ru-central1-a", "ru-central1-b"], subnet_id={
            "ru-central1-a": "e9b", "ru-central1-b": "e2l"}, platform_id=["standard-v3"]), [])
        self.assertEqual(self.problems({"service_account_key_file": None, "metadata": True,
                                        "metadata_url": "http://169.254.169.254"}), [])
        cases = [
            ({"folder_id": None}, {}, "missing key 'folder_id'"),
            ({"oauth_token_file": "/t"}, {}, "needs exactly one of 'service_account_key_file'"),
            ({"service_account_key_file": None, "metadata": False}, {}, "needs exactly one"),
            ({"token_file": "/t"}, {}, "$.backend.token_file: unknown key"),
            ({"compute_url": "http://compute.example"}, {}, "must be an https:// URL"),
            ({"metadata_url": "http://169.254.169.253"}, {}, "must be an https:// URL"),
            ({"metadata_url": "ftp://169.254.169.254"}, {}, "must be an https:// URL"),
            ({"metadata_url": "http://[169.254.169.254"}, {}, "must be an https:// URL"),
            ({"folder_id": "B1G folder"}, {}, "must be a Yandex Cloud id"),
            ({}, {"image_id": "fd8x"}, "needs exactly one of 'image_id' or 'image_family'"),
            ({}, {"image_family": None}, "needs exactly one of 'image_id' or 'image_family'"),
            ({}, {"subnet_id": None}, "missing key 'subnet_id'"),
            ({}, {"core_fraction": 30}, "must be 5, 20, 50 or 100"),
            ({}, {"zone_id": "ru-central1-a/../x"}, "must be a Yandex Cloud id"),
            ({}, {"memory_gb": 0}, "must be greater than 0"),
            ({}, {"zone_id": ["ru-central1-a", "ru-central1-b"]},
             "subnet_id: must be an object {zone: subnet id} when zone_id lists several"),
            ({}, {"zone_id": ["ru-central1-a", "ru-central1-b"],
                  "subnet_id": {"ru-central1-a": "e9b"}},
             "subnet_id: names no subnet for the zone ru-central1-b"),
            ({}, {"subnet_id": {"ru-central1-a": 5}}, "subnet_id.ru-central1-a: must be a "
                                                      "string"),
            ({}, {"platform_id": []}, "must list at least one alternative"),
        ]
        for backend, item, problem in cases:
            found = self.problems(backend, **item)
            self.assertTrue(any(problem in text for text in found), (backend, item, found))

    def test_the_example_config_is_valid(self):
        with open(os.path.join(os.path.dirname(SCRIPT), "examples", "yandex.conf")) as handle:
            self.assertEqual(provider.validate_config(json.load(handle)), [])

    def test_names_start_with_a_letter_as_yandex_wants(self):
        tag = "0123abcd"
        for name, want in (("provider", "provider-7-"), ("1c-bitrix", "bx-1c-bitrix-7-"),
                           ("---", "bx-7-"), ("Яндекс", "bx-7-")):
            made = provider.server_name(name, "7", tag)
            self.assertEqual(made, want + tag)
            self.assertRegex(made, r"^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$")
        self.assertLessEqual(len(provider.server_name("x" * 99, "9" * 20, tag)), 63)


class YandexAnswerShapesTest(unittest.TestCase):
    """Answers in shapes the reference does not promise (a proxy, a damaged body)
    give a clear reading, never an exception."""

    def setUp(self):
        folder = tempfile.mkdtemp(prefix="bxyandex-shapes-")
        self.addCleanup(shutil.rmtree, folder, True)
        self.backend = provider.YandexBackend(
            dict(YandexConfigTest.BACKEND), provider.Paths(os.path.join(folder, "bin", "x")),
            provider.AuditLog(os.path.join(folder, "x.log")))

    def test_odd_answers(self):
        backend = self.backend
        odd = [None, [], "x", 5, {}, {"id": None}, {"metadata": []}, {"error": "x"},
               {"networkInterfaces": {"0": 1}}, {"networkInterfaces": [None]},
               {"networkInterfaces": [{"primaryV4Address": {"oneToOneNat": {"address": 7}}}]},
               {"status": 5}, {"code": True, "message": ["x"]}, {"code": 99}]
        for answer in odd:
            value = answer if isinstance(answer, dict) else {}
            self.assertIn(backend.ipv4(value), (None, 7))     # 7: for the server validator
            self.assertIn(backend.describe(value)[0], ("booting", "failed"))
            code, text = backend.error_text(answer)
            self.assertIsInstance(text, str)
            self.assertEqual(backend.created(dict(value, done=False)), {})
            self.assertIn("Yandex Cloud: creating the instance failed",
                          backend.operation_failed(value))
        self.assertEqual(backend.error_text({"code": 99, "message": "m"}), ("code_99", "m"))
        self.assertEqual(backend.error_text({"code": 7, "message": "no"})[0],
                         "PERMISSION_DENIED")
        self.assertEqual(backend.created({"id": "../x", "done": False,
                                          "metadata": {"instanceId": "fhm1"}}), {"id": "fhm1"})
        self.assertEqual(backend.created({"id": "fhmop1", "done": False,
                                          "metadata": {"instanceId": "../../x"}}), {})
        with self.assertRaises(provider.CloudError) as caught:
            backend.created({"id": "fhmop1", "done": True, "error": {"code": 9, "message": "m"},
                             "metadata": {"instanceId": "fhm1"}})
        self.assertIn("FAILED_PRECONDITION: m", caught.exception.message)

    def test_plain_http_goes_only_to_loopback_and_to_the_metadata_service(self):
        url = "http://169.254.169.254/computeMetadata/v1/instance/service-accounts/default/token"
        metadata = provider.CloudAPI(self.backend, provider.MetadataFlavor(),
                                     "http://169.254.169.254")
        self.assertIsNone(metadata.refuse_plain_http(url, "GET"))       # no secret in it
        for auth, where in ((self.backend.auth, url), (None, url),
                            (provider.MetadataFlavor(), "http://169.254.169.253/")):
            with self.assertRaises(provider.CloudError) as caught:
                provider.CloudAPI(self.backend, auth, where).refuse_plain_http(where, "GET")
            self.assertIn("was not sent", caught.exception.message)


def der(tag, content):
    size = len(content)
    head = bytes([size]) if size < 128 else \
        bytes([0x80 | (size.bit_length() + 7) // 8]) + size.to_bytes((size.bit_length() + 7) // 8, "big")
    return bytes([tag]) + head + content


def pem(der):
    text = base64.b64encode(der).decode("ascii")
    lines = [text[i:i + 64] for i in range(0, len(text), 64)]
    return "-----BEGIN PRIVATE KEY-----\n%s\n-----END PRIVATE KEY-----\n" % "\n".join(lines)


if __name__ == "__main__":
    unittest.main()
