# -*- coding: utf-8 -*-
"""What the cloud backends' tests share: a provider home whose backend points
at a fake API (fakecloud.py's FakeHetzner and FakeTimeweb, fake_openstack.py,
fake_yandex.py), an SSH banner socket, a stand-in `ssh` on PATH for the
cloud-init check, a pool key, a token file.

A cloud backend's test module (test_backend_hetzner, _timeweb, _openstack,
_yandex) subclasses CloudTests with unittest.TestCase and says FAKE, TYPE,
LABEL and its configuration fields; CloudHome is the home and the helpers
without those tests (test_cloud_guardrails and test_uninstall build on it).
"""

import email
import json
import os
import re
import shutil
import stat
import subprocess
import tempfile
import threading
import time
import unittest

from .fakecloud import SSHBannerServer
from .support import Home, closed_port, error_message, load_module, wait_for

provider = load_module()

TOKEN = "tok-8f1d2c3b4a5e6f708192a3b4c5d6e7f8"
PUBLIC_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPoolKeyForTests pool@master"
SSH_STUB = """#!/bin/sh
echo "$*" >> "%(dir)s/ssh.log"
[ -z "${CLOUD_TOKEN+set}" ] || echo "CLOUD_TOKEN inherited" >> "%(dir)s/ssh.log"
rc=0
read rc 2>/dev/null < "%(dir)s/ssh.rc"
exit "${rc:-0}"
"""


def self_signed(folder, name, alt_name):
    """(certificate, key) files of a new self-signed certificate for alt_name (e.g.
    "IP:127.0.0.1"), made with the openssl command; skips the test without it."""
    openssl = shutil.which("openssl")
    if openssl is None:
        raise unittest.SkipTest("no openssl command on PATH to make a test certificate")
    cert, key = os.path.join(folder, name + ".crt"), os.path.join(folder, name + ".key")
    proc = subprocess.Popen(
        [openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-days", "2", "-subj", "/CN=" + alt_name.split(":", 1)[1],
         "-addext", "subjectAltName=" + alt_name, "-keyout", key, "-out", cert],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    out = proc.communicate(timeout=60)[0]
    if proc.returncode != 0:
        raise unittest.SkipTest("openssl cannot make a test certificate (1.1.1 or later needed "
                                "for -addext): %s" % out.decode("utf-8", "replace")[-300:])
    return cert, key


class CloudHome(object):
    """A provider home on a fake cloud API, and helpers; no tests of its own
    (a module with tests of another kind builds on it)."""

    FAKE = None          # the fake API's class: FakeHetzner, FakeOpenStack, ...
    TYPE = None          # backend type
    LABEL = None         # how messages name the provider
    CONFIGURATION = {}   # the provider's own configuration fields
    SETTINGS = {}        # the provider's own backend settings
    RENAME = {}          # a setting's name for this provider (token_file -> password_file)
    FIRST_REQUEST = "POST /servers"     # the first request an order sends
    CREATE_PATH = "/servers"     # what messages name the create request by
    SERVERS_PATH = r"^/servers"  # the fake's paths of server look-ups (a regex)
    SERVER_KEY = "server"        # GET SERVERS/ID answers {SERVER_KEY: server} (None: the server)
    ODD_STATUS = "in a shape the plugin does not know"   # what a status that is no text says
    REAL_BACKOFF = False         # the backend whose retry test waits its backoff for real
                                 # (one is enough: every backend retries with CloudAPI)

    def setUp(self):
        # servers are ready at once unless a test asks for the phases (fewer runs)
        self.api = self.FAKE(token=TOKEN, polls_per_status=0).start()
        self.addCleanup(self.api.stop)
        self.ssh = SSHBannerServer().start()
        self.addCleanup(self.ssh.stop)
        self.tmp = tempfile.mkdtemp(prefix="bxcloud-")
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.bin = os.path.join(self.tmp, "bin")
        os.mkdir(self.bin)
        stub = os.path.join(self.bin, "ssh")
        with open(stub, "w") as handle:
            handle.write(SSH_STUB % {"dir": self.tmp})
        os.chmod(stub, 0o755)
        self.ssh_answers(0)
        self.key = os.path.join(self.tmp, "id_rsa")
        for path, text in ((self.key, "not a real key\n"), (self.key + ".pub", PUBLIC_KEY + "\n")):
            with open(path, "w") as handle:
                handle.write(text)
            os.chmod(path, 0o600)
        self.token_file = os.path.join(self.tmp, "token")
        self.write_token(TOKEN)
        self.env = {"PATH": self.bin + os.pathsep + os.environ.get("PATH", ""),
                    "no_proxy": "127.0.0.1,localhost", "NO_PROXY": "127.0.0.1,localhost"}
        self.home = Home(config=None)
        self.addCleanup(self.home.cleanup)
        # the plugin's waits are recorded, not waited out (launch.py's virtual clock)
        self.home.clock = os.path.join(self.tmp, "sleeps")
        self.configure()

    # -- set-up helpers -----------------------------------------------------------

    def write_token(self, token, mode=0o600):
        with open(self.token_file, "w") as handle:
            handle.write(token + "\n")
        os.chmod(self.token_file, mode)

    def ssh_answers(self, code):
        """The exit code of the stand-in ssh: 0 cloud-init done, 1 not yet, 255 no login."""
        with open(os.path.join(self.tmp, "ssh.rc"), "w") as handle:
            handle.write("%d\n" % code)

    def ssh_calls(self):
        try:
            with open(os.path.join(self.tmp, "ssh.log")) as handle:
                return handle.read().splitlines()
        except IOError:
            return []

    def configure(self, configuration=None, top=None, **backend):
        # poll_interval: the worker takes a step when a call wakes it (an order, an
        # order_status), not by itself: a test sees each step (by itself: test_cloud_guardrails'
        # test_an_order_nobody_polls_ends_by_itself)
        settings = {"type": self.TYPE, "token_file": self.token_file, "api_url": self.api.url,
                    "pool_key": self.key, "ssh_port": self.ssh.port, "ready_grace": 0,
                    "timeout": 3600, "request_timeout": 1, "poll_interval": 3600,
                    "allow_loopback": True}           # the fake's servers are 127.0.0.1
        settings.update(self.SETTINGS)
        settings.update(backend)
        settings = dict((self.RENAME.get(k, k), v) for k, v in settings.items() if v is not None)
        item = {"id": "1", "descr": "Bitrix-env VPS"}
        item.update(self.CONFIGURATION)
        item.update(configuration or {})
        item = dict((k, v) for k, v in item.items() if v is not None)   # None: leave it out
        data = {"enabled": True, "backend": settings, "configurations": [item]}
        data.update(top or {})                  # lock_wait, retention_days, ...
        self.home.write_config(data)

    # -- running the plugin -----------------------------------------------------------

    def run_plugin(self, *args, **kwargs):
        return self.home.run(*args, env=self.env, **kwargs)

    def ok(self, *args):
        if args[:1] == ("order_status",):      # the worker of the step before has saved it
            self.worker_done(args[1])
        result = self.run_plugin(*args)
        answer = result.json
        self.assertNotIn("error", answer, result)
        self.assertEqual(result.code, 0, result)
        return answer

    def order(self, wait=True):
        """`order 1`'s task id, once the task's worker has done its first step (the
        create: `order` waits for it about a second, a slow machine may need more),
        unless wait is False."""
        task_id = self.ok("order", "1")["task_id"]
        if wait:
            self.worker_done(task_id)
        return task_id

    def poll(self, task_id, until=("finished", "error"), limit=30, pause=0.0, hook=None):
        """order_status until the status is in `until`; returns all the answers."""
        answers = []
        for _ in range(limit):
            answer = self.ok("order_status", task_id)
            answers.append(answer)
            if answer["status"] in until:
                return answers
            if hook:
                hook(answer)
            time.sleep(pause)
        self.fail("task %s never got %s: %r" % (task_id, until, answers[-3:]))

    def finished(self, task_id):
        answer = self.poll(task_id)[-1]
        self.assertEqual(answer["status"], "finished", answer)
        return answer

    def worker_done(self, task_id):
        """Wait until the task's worker (if one runs) has saved its step: it waits for
        the next (a call wakes it) or has ended."""
        lock = os.path.join(self.home.dir, "var", "workers", task_id + ".lock")

        def idle():
            report = provider.WorkerReport.read(lock)
            return report is None or report.doing != "step"
        wait_for(idle, what="task %s's worker" % task_id)

    def worker_gone(self, task_id):
        """Wait until the task's worker has ended (the order and its cleanup are over)."""
        lock = os.path.join(self.home.dir, "var", "workers", task_id + ".lock")
        wait_for(lambda: not provider.lock_is_held(lock), what="task %s's worker to end" % task_id)

    def saved_message(self, task_id, text):
        """The task's message once its worker saved one that says text."""
        return wait_for(lambda: text in self.home.state()["tasks"][task_id]["message"] and
                        self.home.state()["tasks"][task_id]["message"],
                        what="a message saying %r" % text)

    def late_window(self):
        """Seconds after a lost create before the plugin sends another (request_timeout 1
        s, set by configure, and the cloud's LATE_CREATE)."""
        return 1 + provider.backend_class(self.TYPE).LATE_CREATE

    def age_task(self, task_id, seconds):
        """Make a task older (its worker waits between steps: no lock needed)."""
        state = self.home.state()
        task = state["tasks"][task_id]
        task["created"] -= seconds
        if "age" in task["data"]:            # the age its worker measured (task_age)
            task["data"]["age"] += seconds
        with open(self.home.state_path, "w") as handle:
            json.dump(state, handle)

    def user_data(self, request):
        """The cloud-init user data a create request carried."""
        raise NotImplementedError

    def our_cloud_config(self, request):
        text = self.user_data(request)
        if text.startswith("Content-Type: multipart"):
            text = email.message_from_string(text).get_payload()[0].get_payload()
        self.assertTrue(text.startswith("#cloud-config\n"), text)
        return text

    # -- helpers for assertions --------------------------------------------------------

    def assertErrorCode(self, result, code, exit_code=1):
        """The error of a call: JSON on stdout, or a people's command's text on stderr."""
        message = error_message(result)
        self.assertIn(" error N%d, " % code, message, result)
        self.assertEqual(result.code, exit_code, result)
        self.assertNotIn(b"Traceback", result.err)
        self.assertNotIn(TOKEN.encode(), result.out + result.err)
        return message


class CloudTests(CloudHome):
    """The behaviour every cloud backend owes; mixed into a unittest.TestCase."""

    # -- the tests ------------------------------------------------------------------

    def test_order_goes_through_the_phases_to_finished(self):
        self.api.polls_per_status, self.api.ip_after_polls = 1, 2
        self.configure(ssh_port=closed_port())
        self.ssh_answers(1)
        task_id = self.order()

        def hook(answer):
            if answer["message"].startswith("waiting for SSH"):
                self.configure()                 # sshd comes up
            self.assertEqual(answer["server_password"], "")

        answers = self.poll(task_id, hook=lambda a: (
            hook(a), a["message"].startswith("running setup") and self.ssh_answers(0)))
        messages = [a["message"] for a in answers]
        phases = []
        for message in messages:
            phase = message.split(":")[0].split(" on ")[0]     # "waiting for SSH on ADDR: why"
            if not phases or phases[-1] != phase:
                phases.append(phase)
        self.assertEqual(phases, ["booting", "waiting for SSH", "running setup", "ready"],
                         messages)
        with open(self.home.log_path) as handle:
            audit = handle.read()
        self.assertIn("creating: asking %s" % self.LABEL, audit)
        # the audit log: a line when something changes (the first worker, each new status),
        # not one for every status call; the task's own log: every worker and every step
        self.assertEqual(len(re.findall(r" worker task=%s " % task_id, audit)), 1, audit)
        statuses = re.findall(r" status task=%s (.*)" % task_id, audit)
        self.assertEqual(len(statuses), len(set(statuses)), audit)
        with open(os.path.join(self.home.dir, "log", "tasks", task_id + ".log")) as handle:
            steps = handle.read()
        self.assertIn(" provider: worker pid ", steps)
        for said in ("saved: in_progress (booting): booting: ", "saved: finished (done): ready: "):
            self.assertIn(said, steps)
        answer = answers[-1]
        self.assertEqual((answer["status"], answer["server"]), ("finished", "127.0.0.1"))
        password = answer["server_password"]
        self.assertGreaterEqual(len(password), 20)
        self.assertTrue(re.match(r"^[A-Za-z0-9]+$", password), password)
        [create] = self.api.create_requests()
        [server] = self.api.servers.values()
        self.assertNotEqual(password, server["root_password"])
        config = self.our_cloud_config(create)
        hashes = set(re.findall(r"\$6\$[^$\s\"]+\$[./0-9A-Za-z]+", config))
        self.assertEqual(len(hashes), 1, config)
        hashed = hashes.pop()
        salt = hashed.split("$")[2]
        self.assertEqual(provider.sha512_crypt(password, salt), hashed)
        self.assertNotIn(password, json.dumps(create["body"]))
        for line in ("ssh_pwauth: true", "  expire: false", "disable_root: false",
                     '  - "%s"' % PUBLIC_KEY):
            self.assertIn(line + "\n", config)
        self.assertIn(task_id, server["name"])
        calls = self.ssh_calls()
        self.assertTrue(calls)
        self.assertIn("-i %s -p %d" % (self.key, self.ssh.port), calls[-1])
        self.assertTrue(calls[-1].endswith("root@127.0.0.1 test -f "
                                           "/var/lib/cloud/instance/boot-finished"), calls[-1])
        self.assertIn("BatchMode=yes", calls[-1])
        # terminal: answered from the state, no more API calls
        before = len(self.api.requests)
        self.assertEqual(self.ok("order_status", task_id), answer)
        self.assertEqual(len(self.api.requests), before)

    def test_an_address_from_the_api_goes_through_the_server_validator(self):
        # allow_loopback admits 127.0.0.1 itself, never another spelling or a control character
        for ipv4 in ("0x7f000001", "127.0.0.1\n; id", ["127.0.0.1"]):
            self.api.ipv4 = ipv4
            answer = self.poll(self.order())[-1]
            self.assertEqual((answer["status"], answer["server"]), ("error", ""), answer)
            self.assertIn("the API's address is refused", answer["message"])
            self.assertIn("(on_failure: delete)", answer["message"])   # the billed server goes
            self.assertTrue(all(ch.isprintable() for ch in answer["message"]), answer)

    def test_a_server_without_a_public_ipv4_fails_after_ready_timeout(self):
        self.api.ipv4 = None                           # it runs, with no public IPv4 at all
        task_id = self.order()
        answer = self.ok("order_status", task_id)
        self.assertIn("waiting for its public IPv4 address", answer["message"])
        self.age_task(task_id, 1801)                   # the default ready_timeout, 1800 s
        answer = self.ok("order_status", task_id)
        self.assertEqual(answer["status"], "error", answer)
        self.assertIn("runs but has no public IPv4 address after ready_timeout 1800 s: the "
                      "caller adds IPv4 servers only", answer["message"])
        wait_for(lambda: not self.api.servers, what="the server's deletion (on_failure)")

    def test_a_worker_stops_once_the_state_is_another_installations(self):
        # purged and installed again under the same name: task 1 is not this worker's
        self.ssh_answers(1)                            # cloud-init never finishes
        task_id = self.order()
        lock = os.path.join(self.home.dir, "var", "workers", task_id + ".lock")
        report = provider.WorkerReport.read(lock)
        self.home.new_state("b" * 32)                  # the new installation's empty state
        requests = len(self.api.requests)
        report.wake()
        wait_for(lambda: not provider.lock_is_held(lock), what="the old worker gone")
        self.assertEqual(len(self.api.requests), requests)     # it did nothing more
        self.assertEqual(len(self.api.servers), 1)             # nor deleted anything
        with open(os.path.join(self.home.dir, "log", "tasks", task_id + ".log")) as handle:
            self.assertIn("the state now belongs to another installation", handle.read())

    def test_a_create_that_times_out_after_the_server_was_made_makes_one_server(self):
        self.configure(request_timeout=0.3)     # the one order that waits a timeout out
        self.api.hang_next_create(60)
        started = time.time()
        task_id = self.order()
        self.assertLess(time.time() - started, 30)      # request_timeout, not the hang
        self.worker_done(task_id)
        with open(self.home.log_path) as handle:
            self.assertRegex(handle.read(),
                             r"create_unconfirmed task=%s reason=.*no (complete )?answer.*"
                             r"within request_timeout 0\.3 s" % task_id)
        self.configure()
        self.finished(task_id)
        self.assertEqual(len(self.api.create_requests()), 1)
        self.assertEqual(len(self.api.servers), 1)

    def test_an_api_that_never_answers_holds_only_the_worker(self):
        self.configure(request_timeout=60)
        self.api.hang_next(60, count=100, apply=False)       # no answer to anything
        task_id = self.order(wait=False)                # answered: the worker waits
        for _ in range(2):
            result = self.run_plugin("order_status", task_id)
            self.assertEqual(result.code, 0, result)
            answer = result.json
            self.assertEqual(answer["status"], "in_progress", answer)
            self.assertRegex(answer["message"], r"^creating: .* \(%s has not answered for "
                             r"\d+ s; the task's worker waits for it\)$" % re.escape(self.LABEL))
        lock = os.path.join(self.home.dir, "var", "workers", task_id + ".lock")
        self.assertTrue(provider.lock_is_held(lock))     # the worker is what waits
        self.assertTrue(self.api.requests)               # ... for the API's answer

    def test_a_create_answered_with_500_after_the_server_was_made_makes_one_server(self):
        self.api.server_error_next(method="POST", apply=True)
        self.finished(self.order())
        self.assertEqual(len(self.api.create_requests()), 1)
        self.assertEqual(len(self.api.servers), 1)

    def test_a_create_answered_5xx_by_a_proxy_after_the_server_was_made_makes_one_server(self):
        # bodies not in the API's shape, as a load balancer in front of it sends them
        for number, failure in enumerate((
                {"raw": b""},
                {"body": {"message": "Bad Gateway"}},
                {"raw": "<html><body>502 Bad Gateway</body></html>",
                 "headers": {"Content-Type": "text/html"}}), 1):
            self.api.fail_next(502, method="POST", apply=True, **failure)
            task_id = self.order()
            self.assertEqual(self.api.requests_for("POST")[-1]["status"], 502)
            self.finished(task_id)
            self.assertEqual(len(self.api.create_requests()), number, failure)
            self.assertEqual(len(self.api.servers), number, failure)
        with open(self.home.log_path) as handle:
            self.assertIn("%s: http_502: Bad Gateway (HTTP 502 to POST %s)" % (
                self.LABEL, self.CREATE_PATH), handle.read())

    def gets_since(self, before):
        """The statuses of the GETs after the first `before` (an order may look things
        up before its create: OpenStack's flavor)."""
        return [r["status"] for r in self.api.requests_for("GET")][before:]

    def test_a_bare_503_is_a_clear_answer_to_order_status_and_check(self):
        task_id = self.order()
        before = len(self.api.requests_for("GET"))
        said = "%s: http_503: Service Unavailable (HTTP 503 to GET " % self.LABEL
        self.api.fail_next(503, count=4, method="GET", raw=b"")     # every try of one call
        answer = self.ok("order_status", task_id)
        self.assertEqual(answer["status"], "in_progress", answer)
        self.assertIn(said, answer["message"])
        self.assertIn("trying again", answer["message"])
        self.api.fail_next(503, count=2, method="GET", raw=b"")     # check tries twice
        result = self.run_plugin("check")
        self.assertEqual(result.code, 1, result)
        self.assertNotIn(b"Traceback", result.err)
        self.assertTrue(any(line.startswith("FAIL") and "answers with an error: " + said in line
                            for line in result.text.splitlines()), result.text)
        self.assertEqual(self.gets_since(before), [503] * 6)
        self.assertEqual(self.home.sleeps(), [0.25, 0.5, 1.0, 0.25])   # the backoff
        self.finished(task_id)

    def test_a_create_made_again_keeps_the_configs_retention(self):
        # The status call that creates again saves its claim itself: through the
        # provider's own store, so retention_days 365 keeps a 40-day-old error task.
        # ("login": "key": an error task keeping an unused root password never leaves)
        self.configure({"login": "key"}, top={"retention_days": 365})
        self.refuse_next_create()
        self.run_plugin("order", "1")
        state = self.home.state()
        [(old_id, old)] = state["tasks"].items()
        self.assertEqual(old["status"], "error")
        for key in ("created", "updated"):
            old[key] -= 40 * 86400
        with open(self.home.state_path, "w") as handle:
            json.dump(state, handle)
        self.api.server_error_next(method="POST")             # nothing created
        task_id = self.order()
        self.assertEqual(self.home.state()["tasks"][old_id]["status"], "error")
        self.age_task(task_id, self.late_window())
        answer = self.ok("order_status", task_id)
        self.assertIn(answer["status"], ("in_progress", "finished"), answer)
        self.assertEqual(len(self.api.create_requests()), 3)   # the refused, the lost, this
        self.assertEqual(self.home.state()["tasks"][task_id]["data"]["creates"], 2)
        self.assertIn(old_id, self.home.state()["tasks"])
        self.assertEqual(self.ok("order_status", old_id)["status"], "error")

    def test_an_api_whose_certificate_is_for_another_name_is_a_clear_error(self):
        other = self_signed(self.tmp, "other", "DNS:api.example.invalid")
        ours = self_signed(self.tmp, "ours", "IP:127.0.0.1")
        for served, trusted in ((other, other),      # trusted, but not for 127.0.0.1
                                (ours, other)):      # for 127.0.0.1, but nobody vouches
            api = self.FAKE(token=TOKEN, polls_per_status=0, tls=served).start()
            self.addCleanup(api.stop)
            self.assertTrue(api.url.startswith("https://127.0.0.1:"), api.url)
            self.configure(api_url=api.url)
            self.env["SSL_CERT_FILE"] = trusted[0]
            said = "the TLS certificate of %s failed the check" % api.url
            message = self.assertErrorCode(self.run_plugin("order", "1"), 108)
            self.assertIn("%s: %s was not sent: %s" % (self.LABEL, self.FIRST_REQUEST, said),
                          message)
            self.assertEqual(api.requests, [])          # no HTTP request got through
            task = max(self.home.state()["tasks"].values(), key=lambda t: int(t["id"]))
            self.assertEqual(task["status"], "error", task)
            result = self.run_plugin("check")
            self.assertEqual(result.code, 1, result)
            self.assertNotIn(b"Traceback", result.err)
            self.assertTrue(any(line.startswith("FAIL") and said in line
                                for line in result.text.splitlines()), result.text)
        # the same API with its own certificate trusted: only the certificate was wrong
        self.env["SSL_CERT_FILE"] = ours[0]
        self.finished(self.order())
        self.assertEqual(len(api.servers), 1)

    def order_losing_the_server_id(self):
        """An order whose create's answer is lost and whose look-up fails: as if the
        plugin was killed between the API's answer and saving the server id. Returns
        the task id."""
        self.api.drop_next_create()
        self.api.server_error_next(count=50, method="GET", path=self.SERVERS_PATH)
        task_id = self.order()
        self.worker_done(task_id)
        task = self.home.state()["tasks"][task_id]
        self.assertEqual((task["status"], task["phase"]), ("in_progress", "creating"))
        self.assertNotIn("server_id", task["data"])
        self.api.clear_failures()
        return task_id

    def test_the_server_id_never_saved_is_found_by_its_label(self):
        self.finished(self.order_losing_the_server_id())
        self.assertEqual(len(self.api.create_requests()), 1)
        self.assertEqual(len(self.api.servers), 1)

    def test_a_foreign_server_is_never_adopted_or_deleted(self):
        # an API that ignores the look-up's filter returns someone else's server first
        self.api.ignore_filters = True
        foreign = self.api.add_server("someone-elses-db", labels={"team": "db"},
                                      comment="not ours")
        foreign_id = foreign["id"]
        task_id = self.order_losing_the_server_id()
        answer = self.finished(task_id)
        ours = [i for i in self.api.servers if i != foreign_id]
        self.assertEqual(len(ours), 1)
        self.assertIn("server %s " % ours[0], answer["message"])
        result = self.run_plugin("task", "delete-server", task_id, "--yes")
        self.assertEqual(result.code, 0, result)
        self.assertEqual(list(self.api.servers), [foreign_id])

    def test_answers_in_odd_shapes_are_a_clear_error(self):
        self.api.fail_next(201, method="POST", apply=True, body={"server": "made it"})
        task_id = self.order()
        self.assertNotIn("server_id", self.home.state()["tasks"][task_id]["data"])
        self.ok("order_status", task_id)            # no server id: looked up instead
        self.assertIn("server_id", self.home.state()["tasks"][task_id]["data"])
        odd = [{"id": 1, "status": ["running"]}, {"id": 1, "status": {"a": 1}}]
        bodies = [{self.SERVER_KEY: server} for server in odd + ["running"]] \
            if self.SERVER_KEY else odd
        for body in bodies:
            self.api.fail_next(200, method="GET", path=self.SERVERS_PATH + "/[-0-9a-z]+$",
                               body=body)
            answer = self.ok("order_status", task_id)
            self.assertEqual(answer["status"], "in_progress", answer)
            self.assertIn(self.ODD_STATUS if isinstance(body.get(self.SERVER_KEY, body), dict)
                          else "in a shape the plugin does not know", answer["message"])
        self.finished(task_id)
        self.assertEqual(len(self.api.servers), 1)

    def test_a_create_that_made_nothing_is_made_again_only_after_a_look_up(self):
        self.api.server_error_next(method="POST")             # nothing created
        task_id = self.order()
        answer = self.ok("order_status", task_id)
        self.assertIn("waiting for %s to show" % self.LABEL, answer["message"])
        self.assertEqual(len(self.api.create_requests()), 1)
        self.age_task(task_id, self.late_window() - 5)     # the lost create may still land
        answer = self.ok("order_status", task_id)
        self.assertIn("may land for ", answer["message"])
        self.assertEqual(len(self.api.create_requests()), 1)
        self.age_task(task_id, 10)
        self.finished(task_id)
        self.assertEqual(len(self.api.create_requests()), 2)
        self.assertEqual(len(self.api.servers), 1)

    def test_rate_limits_are_ridden_out(self):
        self.api.rate_limit_next(count=1, reset_in=1, method="POST")
        self.api.rate_limit_next(count=2, reset_in=0, method="GET", path=self.SERVERS_PATH)
        self.finished(self.order())
        self.assertEqual(len(self.api.servers), 1)
        statuses = [r["status"] for r in self.api.requests]
        self.assertEqual(statuses.count(429), 3)
        self.assertEqual(len(self.api.requests_for("POST")), 2)
        # Retry-After: 1 for the create, then the 0.1 s floor twice for the reads
        self.assertEqual(self.home.sleeps(), [1.0, 0.1, 0.1])

    def test_server_errors_on_reads_are_retried(self):
        if self.REAL_BACKOFF:
            self.home.clock = None              # the worker really waits its backoff out
        task_id = self.order()
        before = len(self.api.requests_for("GET"))
        self.api.server_error_next(count=2, method="GET")
        self.ok("order_status", task_id)
        wait_for(lambda: self.home.state()["tasks"][task_id]["status"] == "finished",
                 what="the worker's step")
        self.assertEqual(self.ok("order_status", task_id)["status"], "finished")
        self.assertEqual(self.gets_since(before), [500, 500, 200])
        if not self.REAL_BACKOFF:
            self.assertEqual(self.home.sleeps(), [0.25, 0.5])

    def test_an_api_down_for_long_only_delays_the_task(self):
        task_id = self.order()
        self.api.server_error_next(count=4, method="GET")      # every try of one call
        answer = self.ok("order_status", task_id)
        self.assertEqual(answer["status"], "in_progress")
        self.assertIn("HTTP 500", answer["message"])
        self.assertIn("trying again", answer["message"])
        self.assertEqual(self.home.sleeps(), [0.25, 0.5, 1.0])      # then out of attempts
        self.api.clear_failures()
        self.finished(task_id)

    def test_a_bad_token_is_a_clear_error_at_order_and_in_check(self):
        self.write_token("wrong-token")
        result = self.run_plugin("order", "1")
        message = self.assertErrorCode(result, 108)
        self.assertIn("%s: unauthorized" % self.LABEL, message)
        self.assertIn("HTTP 401", message)
        self.assertEqual(self.api.servers, {})
        result = self.run_plugin("check")
        self.assertEqual(result.code, 1, result)
        self.assertRegex(result.text, r"FAIL .*%s.*unauthorized" % self.LABEL)
        for text in (result.out + result.err, ):
            self.assertNotIn(b"wrong-token", text)
        self.write_token(TOKEN)
        result = self.run_plugin("check")
        self.assertEqual(result.code, 1, result)        # only: allow_loopback is for tests
        self.assertEqual([line for line in result.text.splitlines() if line.startswith("FAIL")],
                         ["FAIL %s: allow_loopback is true: the caller refuses loopback "
                          "servers; this is for tests only (remove it from the backend)"
                          % self.TYPE])
        self.assertIn("accepts the token", result.text)
        self.assertNotIn(TOKEN.encode(), result.out + result.err)

    def test_a_token_file_others_can_read_is_refused(self):
        os.chmod(self.token_file, 0o644)
        message = self.assertErrorCode(self.run_plugin("order", "1"), 110)
        self.assertIn("%s: mode 644 is more open than 600; " % self.token_file, message)
        self.assertIn("chmod 600", message)
        self.assertEqual(self.api.requests, [])
        self.assertFalse(os.path.exists(self.home.state_path))   # no task was made

    def test_the_token_from_an_environment_variable(self):
        self.configure(token_file=None, token_env="CLOUD_TOKEN")
        self.assertErrorCode(self.run_plugin("order", "1"), 104)
        self.env["CLOUD_TOKEN"] = TOKEN
        self.finished(self.order())
        self.assertTrue(self.ssh_calls())
        self.assertNotIn("CLOUD_TOKEN inherited", self.ssh_calls())   # ssh never sees it

    def test_a_config_changed_meanwhile_applies_from_the_workers_next_step(self):
        self.ssh_answers(1)                        # cloud-init never finishes
        task_id = self.order()
        self.age_task(task_id, 601)
        self.assertEqual(self.ok("order_status", task_id)["status"], "in_progress")
        self.configure(timeout=600)                # lowered while the order runs
        answer = self.ok("order_status", task_id)
        self.assertEqual(answer["status"], "error", answer)
        self.assertIn("timed out after", answer["message"])
        with open(os.path.join(self.home.dir, "log", "tasks", task_id + ".log")) as handle:
            self.assertIn("the config changed: its settings apply from this step on",
                          handle.read())

    def test_a_task_past_its_timeout_becomes_error_and_its_server_can_be_deleted(self):
        self.configure(timeout=600, on_failure="keep")
        self.ssh_answers(1)                        # cloud-init never finishes
        task_id = self.order()
        answer = self.ok("order_status", task_id)
        self.assertEqual(answer["message"], "running setup: cloud-init has not finished yet")
        self.age_task(task_id, 601)
        answer = self.ok("order_status", task_id)
        self.assertEqual(answer["status"], "error")
        self.assertIn("timed out after", answer["message"])
        self.assertIn("delete-server %s --yes" % task_id, answer["message"])
        [server_id] = [str(i) for i in self.api.servers]
        table = self.run_plugin("tasks").text.splitlines()
        self.assertEqual(table[0].split()[:5], ["ID", "CONFIG", "STATUS", "SERVER", "RENTS"])
        self.assertEqual(table[1].split()[:5], [task_id, "1", "error", "-", server_id])
        result = self.run_plugin("task", "delete-server", task_id)
        self.assertErrorCode(result, 100, exit_code=2)
        self.assertEqual(len(self.api.servers), 1)
        result = self.run_plugin("task", "delete-server", task_id, "--yes")
        self.assertEqual(result.code, 0, result)
        self.assertIn("deleted", result.text)
        self.assertEqual(self.api.servers, {})
        self.assertEqual(self.run_plugin("tasks").text.splitlines()[1].split()[4], "deleted")
        self.assertErrorCode(self.run_plugin("task", "delete-server", task_id, "--yes"), 111)

    def test_delete_server_cancels_a_pending_task_but_spares_a_pooled_one(self):
        first, second = self.order(), self.order()
        self.ok("order_status", first)
        self.home.caller_marks(second, "complete: added to the pool")
        self.assertErrorCode(self.run_plugin("task", "delete-server", second, "--yes"), 111)
        result = self.run_plugin("task", "delete-server", first, "--yes")
        self.assertEqual(result.code, 0, result)
        answer = self.ok("order_status", first)
        self.assertEqual(answer["status"], "error")
        self.assertIn("cancelled", answer["message"])
        self.assertEqual(len(self.api.servers), 1)

    def test_task_fail_names_the_server_the_task_still_rents(self):
        self.configure(on_failure="keep")
        self.ssh_answers(1)                        # cloud-init never finishes
        task_id = self.order()
        self.ok("order_status", task_id)
        [server_id] = [str(i) for i in self.api.servers]
        result = self.run_plugin("task", "fail", task_id, "--message", "not needed")
        self.assertEqual(result.code, 0, result)
        self.assertIn("%s server %s stays, billed: `provider task delete-server %s --yes` "
                      "deletes it" % (self.LABEL, server_id, task_id), result.text)
        self.assertEqual(len(self.api.servers), 1)     # failing a task deletes nothing

    def test_a_server_made_for_a_task_failed_meanwhile_is_kept_in_it_and_deleted(self):
        self.fail_during_a_held_create(lookups_fail=False)

    def test_the_held_creates_own_answer_keeps_the_server_when_look_ups_fail(self):
        self.fail_during_a_held_create(lookups_fail=True)

    def fail_during_a_held_create(self, lookups_fail):
        """The API is still busy with the create when the operator fails the task:
        the server it made is kept in the task (found by the cleanup's look-up, or,
        lookups_fail, from the create's own late answer) and deleted."""
        self.configure(request_timeout=30)
        release = self.api.hold_next_create()
        answers = []
        ordering = threading.Thread(target=lambda: answers.append(self.run_plugin("order", "1")))
        ordering.start()
        self.addCleanup(ordering.join, 60)
        self.addCleanup(release.set)
        wait_for(lambda: self.api.servers, what="the server made, its answer held")
        [server_id] = [str(i) for i in self.api.servers]
        if lookups_fail:
            self.api.server_error_next(count=1000, method="GET", path=self.SERVERS_PATH)
        result = self.run_plugin("task", "fail", "1", "--message", "not needed after all")
        self.assertEqual(result.code, 0, result)
        release.set()
        ordering.join(60)
        self.assertIn("error" if "error" in answers[0].json else "task_id", answers[0].json)
        wait_for(lambda: self.home.state()["tasks"]["1"]["data"].get("server_id"),
                 what="the server kept in the task")
        task = self.home.state()["tasks"]["1"]
        self.assertEqual((task["status"], task["message"].split(";")[0]),
                         ("error", "not needed after all"))
        self.assertEqual(str(task["data"]["server_id"]), server_id)
        self.api.clear_failures()
        wait_for(lambda: not self.api.servers, what="the late server's deletion")
        with open(self.home.log_path) as handle:
            self.assertRegex(handle.read(), r"server task=1 .*late=true")
        self.assertEqual(len(self.api.create_requests()), 1)

    def test_login_key_gives_an_empty_password_and_installs_the_pool_key(self):
        self.configure({"login": "key"})
        answer = self.finished(self.order())
        self.assertEqual(answer["server_password"], "")
        config = self.our_cloud_config(self.api.create_requests()[0])
        self.assertIn('ssh_authorized_keys:\n  - "%s"\n' % PUBLIC_KEY, config)
        self.assertNotIn("chpasswd", config)
        self.assertNotIn("$6$", config)

    def test_login_key_without_a_pool_key_is_refused(self):
        self.configure({"login": "key"}, pool_key=os.path.join(self.tmp, "missing"))
        message = self.assertErrorCode(self.run_plugin("order", "1"), 104)
        self.assertIn("pool key", message)
        self.assertEqual(self.api.requests, [])

    def test_without_a_pool_key_ssh_plus_the_grace_period_is_ready(self):
        # known_hosts off: the fake banner has no host key to show (the pinned key's
        # check on this path runs against a real sshd in test_first_contact)
        self.configure(pool_key=os.path.join(self.tmp, "missing"), ready_grace=0,
                       known_hosts=False)
        answer = self.finished(self.order())
        self.assertTrue(answer["server_password"])
        self.assertEqual(self.ssh_calls(), [])
        self.assertNotIn("ssh_authorized_keys", self.our_cloud_config(
            self.api.create_requests()[0]))
        self.configure(pool_key=os.path.join(self.tmp, "missing"), ready_grace=300,
                       known_hosts=False)
        task_id = self.order()
        answer = self.ok("order_status", task_id)
        self.assertEqual(answer["status"], "in_progress")
        self.assertRegex(answer["message"], r"^running setup: SSH answers; ready in 30\d s")
        self.age_task(task_id, 300)
        self.assertEqual(self.ok("order_status", task_id)["status"], "finished")

    def test_the_configurations_user_data_runs_after_ours(self):
        script = "#!/bin/sh\necho 'installing bitrix-env' > /root/установка.log\n"
        self.configure({"user_data": script})
        self.finished(self.order())
        text = self.user_data(self.api.create_requests()[0])
        message = email.message_from_bytes(text.encode("utf-8"))
        self.assertTrue(message.is_multipart())
        parts = message.get_payload()
        self.assertEqual([p.get_content_type() for p in parts],
                         ["text/cloud-config", "text/x-shellscript"])
        self.assertTrue(parts[0].get_payload().startswith("#cloud-config\n"))
        self.assertEqual(parts[1].get_payload(decode=True).decode("utf-8"), script)

    def test_no_token_or_password_in_any_file_but_the_state(self):
        task_id = self.order()
        password = self.finished(task_id)["server_password"]
        self.run_plugin("tasks")
        self.run_plugin("task", "show", task_id)
        self.run_plugin("check")
        secrets = (TOKEN.encode(), password.encode())
        for folder, _, files in os.walk(self.home.dir):
            for name in files:
                path = os.path.join(folder, name)
                if path in (self.home.state_path, self.home.backup_path):
                    continue
                data = self.home.read(path)
                for secret in secrets:
                    self.assertNotIn(secret, data, path)
        self.assertIn(password.encode(), self.home.read(self.home.state_path))
        mode = stat.S_IMODE(os.stat(self.home.state_path).st_mode)
        self.assertEqual(mode, 0o600)

    def test_the_order_is_refused_when_the_api_refuses(self):
        self.refuse_next_create()
        message = self.assertErrorCode(self.run_plugin("order", "1"), 108)
        self.assertIn(self.REFUSAL, message)
        self.assertEqual(self.api.servers, {})
        [task] = self.home.state()["tasks"].values()
        self.assertEqual(task["status"], "error")
        self.assertIn(self.REFUSAL, task["message"])

    def test_tasks_of_another_backend_are_left_alone(self):
        self.home.write_config({"enabled": True, "backend": {"type": "manual"},
                                "configurations": [{"id": "1", "descr": "by hand"}]})
        task_id = self.ok("order", "1")["task_id"]
        self.configure()
        answer = self.ok("order_status", task_id)
        self.assertEqual((answer["status"], answer["message"]),
                         ("in_progress", "waiting for the operator"))
        self.assertEqual(self.api.requests, [])
