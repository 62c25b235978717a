# -*- coding: utf-8 -*-
"""The cloud layer's pieces, in-process: sha512-crypt, the password, config
validation of the cloud backends, user data, the ansible key look-up, the
shared token cache, `check`'s line for a failed API call, a task's age,
listings that page, and a pinned certificate (tls_trust)."""

import email
import hashlib
import os
import shutil
import ssl
import tempfile
import time
import unittest
import warnings

from helpers.fakecloud import FakeHetzner
from helpers.support import load_module

provider = load_module()

HETZNER = {"id": "cx22", "descr": "CX22", "server_type": "cx22", "image": "ubuntu-24.04"}
TIMEWEB = {"id": "2447", "descr": "Timeweb", "preset_id": 2447, "os_id": 99}


def config(backend, *configurations):
    return {"enabled": True, "backend": backend, "configurations": list(configurations)}


class Sha512CryptTest(unittest.TestCase):
    def test_published_vectors(self):
        crypt = provider.sha512_crypt
        self.assertEqual(crypt("Hello world!", "saltstring"),
                         "$6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJu"
                         "esI68u4OTLiBFdcbYEdFCoEOfaS35inz1")
        self.assertEqual(crypt("Hello world!", "saltstringsaltstring", 10000),
                         "$6$rounds=10000$saltstringsaltst$OW1/O6BYHV6BcXZu8QVeXbDWra3Oeqh0sbHb"
                         "bMCVNSnCM/UrjmM0Dp8vOuZeHBy/YTBmSK6H9qs/y3RnOaw5v.")

    def test_agrees_with_the_crypt_module_where_there_is_one(self):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                import crypt
            except ImportError:
                self.skipTest("no crypt module in this Python")
        for password in ("", "a", "x" * 130, "пароль", provider.generate_password()):
            for salt in ("", "ab", "0123456789abcdef", "./XYz"):
                self.assertEqual(provider.sha512_crypt(password, salt),
                                 crypt.crypt(password, "$6$" + salt))


class PasswordTest(unittest.TestCase):
    def test_long_plain_and_different(self):
        seen = set()
        for _ in range(50):
            password = provider.generate_password()
            self.assertGreaterEqual(len(password), 20)
            self.assertTrue(all(c in provider.PASSWORD_ALPHABET for c in password))
            self.assertTrue(any(c.isdigit() for c in password))
            seen.add(password)
        self.assertEqual(len(seen), 50)


class ValidationTest(unittest.TestCase):
    def problems(self, data):
        return provider.validate_config(data)

    def test_good_configs(self):
        self.assertEqual(self.problems(config({"type": "hetzner", "token_file": "/t"},
                                              HETZNER)), [])
        by_image = dict(TIMEWEB, id="img", image_id="6f3a0b1c-image")
        del by_image["os_id"]
        self.assertEqual(self.problems(config({"type": "timeweb", "token_env": "TW"},
                                              TIMEWEB, by_image)), [])

    def test_backend_settings(self):
        problems = self.problems(config({
            "type": "hetzner", "token_file": "", "api_url": "http://api.example.com/v1",
            "ssh_port": 70000, "ready_grace": -1, "timeout": 0, "pool_key": 5},
            HETZNER))
        for expected in ("$.backend.token_file: must not be empty",
                         "$.backend.api_url: must be an https:// URL",
                         "$.backend.ssh_port: must be a TCP port",
                         "$.backend.ready_grace: must be a finite number, 0 to",
                         "$.backend.timeout: must be greater than 0",
                         "$.backend.pool_key: must be a string, not integer"):
            self.assertTrue(any(p.startswith(expected) for p in problems), (expected, problems))

    def test_exactly_one_token_source(self):
        for backend in ({"type": "hetzner"},
                        {"type": "hetzner", "token_file": "/t", "token_env": "X"}):
            problems = self.problems(config(backend, HETZNER))
            self.assertEqual(len(problems), 1, problems)
            self.assertTrue(problems[0].startswith("$.backend: needs exactly one of "
                                                   "'token_file'"), problems)

    def test_plain_http_only_to_this_host(self):
        for url in ("http://127.0.0.1:8080/v1", "http://localhost/v1", "https://x.example/v1"):
            self.assertEqual(self.problems(config({"type": "hetzner", "token_env": "T",
                                                   "api_url": url}, HETZNER)), [], url)

    def test_configurations(self):
        problems = self.problems(config(
            {"type": "hetzner", "token_env": "T"},
            {"id": "a", "descr": "x", "image": "u", "login": "root", "user_data": "echo hi",
             "preset_id": 1}))
        self.assertIn("$.configurations[0]: missing key 'server_type' (a hetzner backend "
                      "needs server_type, image)", problems)
        self.assertTrue(any(p.startswith("$.configurations[0].login: must be \"password\"")
                            for p in problems), problems)
        self.assertTrue(any(p.startswith("$.configurations[0].user_data: must start with")
                            for p in problems), problems)
        self.assertTrue(any(p.startswith("$.configurations[0].preset_id: unknown key")
                            for p in problems), problems)

    def test_each_backend_checks_its_own_required_keys(self):
        for backend, item, key, needs in (
                ("hetzner", HETZNER, "image", "server_type, image"),
                ("timeweb", TIMEWEB, "preset_id", "preset_id")):
            item = dict(item)
            del item[key]
            self.assertEqual(self.problems(config({"type": backend, "token_env": "T"}, item)),
                             ["$.configurations[0]: missing key %r (a %s backend needs %s)"
                              % (key, backend, needs)])

    def test_timeweb_needs_one_of_os_id_and_image_id(self):
        both = dict(TIMEWEB, image_id="abc")
        neither = dict(TIMEWEB)
        del neither["os_id"]
        for item in (both, neither):
            self.assertEqual(self.problems(config({"type": "timeweb", "token_env": "T"}, item)),
                             ["$.configurations[0]: needs exactly one of 'os_id' or 'image_id'"])
        self.assertIn("$.configurations[0].preset_id: must be an integer or a list of them, "
                      "not string", self.problems(config({"type": "timeweb", "token_env": "T"},
                                           dict(TIMEWEB, preset_id="2447"))))


class PiecesTest(unittest.TestCase):
    def test_mime_archive_keeps_each_part_whole(self):
        text = provider.mime_multipart([("text/cloud-config", "a.cfg", "#cloud-config\nx: 1\n"),
                                        ("text/x-shellscript", "b", "#!/bin/sh\necho привет")])
        parts = email.message_from_bytes(text.encode("utf-8")).get_payload()
        self.assertEqual(parts[0].get_payload(), "#cloud-config\nx: 1\n")
        self.assertEqual(parts[1].get_payload(decode=True).decode("utf-8"),
                         "#!/bin/sh\necho привет\n")

    def test_server_names_are_host_names(self):
        self.assertEqual(provider.server_name("provider", "24", "0a1b2c3d"),
                         "provider-24-0a1b2c3d")
        self.assertEqual(provider.server_name("My_Hoster.py", "7", "ff"), "my-hoster-py-7-ff")
        self.assertEqual(provider.server_name("__", "7", "ff"), "bx-7-ff")

    def test_error_text_never_raises_on_a_body_in_another_shape(self):
        bodies = (None, {}, [], "Bad Gateway", 502, {"message": "Bad Gateway"},
                  {"error": "boom"}, {"error": None}, {"error": {"message": 5, "code": 7}},
                  {"error": {"details": {"fields": ["x", {"name": "n", "messages": "m"}]}}},
                  {"message": {"text": "x"}, "response_id": 9}, {"message": 5})
        for backend_class in (provider.HetznerBackend, provider.TimewebBackend):
            backend = backend_class({"type": backend_class.TYPE, "token_env": "T"}, None, None)
            for body in bodies:
                code, text = backend.error_text(body)
                self.assertIsInstance(text, str, (backend_class.TYPE, body))
        hetzner = provider.HetznerBackend({"type": "hetzner", "token_env": "T"}, None, None)
        self.assertEqual(hetzner.error_text({"message": "Bad Gateway"}), (None, "Bad Gateway"))
        self.assertEqual(hetzner.error_text({"error": {
            "code": "invalid_input", "message": "invalid input",
            "details": {"fields": [{"name": "image", "messages": ["is required"]}]}}}),
            ("invalid_input", "invalid input [image: is required]"))

    def test_retry_wait(self):
        self.assertEqual(provider.retry_wait({"Retry-After": "3"}), 3.0)
        reset = provider.retry_wait({"RateLimit-Reset": str(int(time.time()) + 3600)})
        self.assertEqual(reset, provider.MAX_RETRY_WAIT)      # never sit out the hour
        self.assertIsNone(provider.retry_wait({}))

    def test_the_ansible_private_key_file(self):
        folder = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, folder)
        path = os.path.join(folder, "ansible.cfg")
        with open(path, "w") as handle:
            handle.write("[defaults]\ninventory = /etc/ansible/hosts\n"
                         "private_key_file = /etc/ansible/.ssh/id_rsa ; bitrix\n"
                         "log_path = /var/log/%(x)s.log\n")
        self.assertEqual(provider.ansible_private_key(path), "/etc/ansible/.ssh/id_rsa")
        self.assertIsNone(provider.ansible_private_key(os.path.join(folder, "none.cfg")))


class CachedTokenTest(unittest.TestCase):
    """The shared token cache (CachedToken) in-process, with a real state store and
    FakeHetzner standing in for any API: logins are counted, not sent."""

    def setUp(self):
        self.api = FakeHetzner(token="tok-1", polls_per_status=0).start()
        self.addCleanup(self.api.stop)
        self.home = tempfile.mkdtemp(prefix="bxtoken-")
        self.addCleanup(shutil.rmtree, self.home, True)
        self.issued = []                 # (token, expires) each login hands out, in order

    def backend(self):
        test = self

        class CountingLogin(provider.CachedToken):
            SETTINGS = {}

            def ready(self):
                pass

            def identity(self):
                return "account 7 at " + test.api.url

            def login(self):
                token, expires = test.issued.pop(0)
                return token, expires, {"region": "ru-1"}

        class Backend(provider.HetznerBackend):
            AUTH = CountingLogin

        paths = provider.Paths(os.path.join(self.home, "bin", "provider"))
        backend = Backend({"type": "hetzner", "api_url": self.api.url, "request_timeout": 2},
                          paths, provider.AuditLog(paths.log))
        backend.store = provider.StateStore(paths)
        return backend

    def cached(self, backend):
        return backend.store.load().get("tokens", {})

    def test_a_token_is_kept_in_the_state_until_shortly_before_it_expires(self):
        self.issued = [("tok-1", time.time() + 3600), ("tok-2", time.time() + 7200)]
        first = self.backend()
        first.api().call("GET", "/locations")
        self.assertEqual(first.auth.extra(), {"region": "ru-1"})
        [entry] = self.cached(first).values()
        self.assertEqual(entry["token"], "tok-1")
        self.assertEqual(os.stat(first.paths.state).st_mode & 0o777, 0o600)
        second = self.backend()                      # the next call: from the state
        second.api().call("GET", "/locations")
        self.assertEqual(len(self.issued), 1)        # no second login
        entry["expires"] = int(time.time()) + provider.CachedToken.RENEW_BEFORE - 5
        second.store.update(lambda state: state["tokens"].update({first.auth.key(): entry}))
        self.api.token = "tok-2"
        third = self.backend()
        third.api().call("GET", "/locations")
        self.assertEqual(self.issued, [])            # renewed before it expired
        self.assertEqual([e["token"] for e in self.cached(third).values()], ["tok-2"])

    def test_a_cached_token_refused_is_renewed_once(self):
        self.issued = [("tok-old", time.time() + 3600), ("tok-1", time.time() + 3600)]
        self.backend().auth.token()                  # cached, but the API no longer takes it
        backend = self.backend()
        self.assertEqual(backend.api().call("GET", "/locations")["locations"][0]["name"], "fsn1")
        self.assertEqual([r["token_ok"] for r in self.api.requests], [False, True])
        self.assertEqual([e["token"] for e in self.cached(backend).values()], ["tok-1"])

    def test_a_token_refused_after_a_new_login_is_a_clear_error(self):
        self.issued = [("tok-old", time.time() + 3600), ("tok-new", time.time() + 3600)]
        self.backend().auth.token()
        with self.assertRaises(provider.CloudError) as caught:
            self.backend().api().call("GET", "/locations")
        self.assertEqual(caught.exception.status, 401)
        self.assertIn("a token just issued was refused as well", caught.exception.message)
        self.assertEqual(len(self.api.requests), 2)  # once more with the new token, no more

    def test_a_token_just_issued_is_not_renewed(self):
        self.issued = [("tok-bad", time.time() + 3600), ("unused", time.time() + 3600)]
        with self.assertRaises(provider.CloudError) as caught:
            self.backend().api().call("GET", "/locations")
        self.assertNotIn("as well", caught.exception.message)
        self.assertEqual((len(self.api.requests), len(self.issued)), (1, 1))

    def test_expired_entries_leave_the_state_at_the_next_save(self):
        self.issued = [("tok-1", time.time() + 3600)]
        backend = self.backend()
        backend.store.update(lambda state: state.update(tokens={"gone": {
            "token": "tok-0", "expires": int(time.time()) - 1, "extra": {}}}))
        backend.auth.token()
        self.assertEqual(list(self.cached(backend)), [backend.auth.key()])

    def test_rfc3339_times(self):
        self.assertEqual(provider.parse_utc("1970-01-01T00:01:00Z"), 60)
        self.assertEqual(provider.parse_utc("1970-01-01T01:01:00.123456789+01:00"), 60)
        self.assertEqual(provider.parse_utc("1970-01-01T00:01:00"), 60)
        for text in ("", None, "yesterday", "1970-13-01T00:00:00Z"):
            self.assertIsNone(provider.parse_utc(text))


class CheckFailureTest(unittest.TestCase):
    """`check`'s line for a failed API call says what kind of failure it is and what to do."""

    def line(self, status):
        error = provider.CloudError("Hetzner: it went wrong", status=status)
        return provider.check_api_failure("Hetzner", "https://api.example/v1", error)

    def test_no_answer_is_the_network(self):
        self.assertEqual(self.line(None), "Hetzner API https://api.example/v1 cannot be reached: "
                         "Hetzner: it went wrong (check the address in the config, DNS, the "
                         "firewall and https_proxy)")

    def test_401_and_403_are_the_credentials(self):
        for status in (401, 403):
            self.assertIn("refuses the credentials: Hetzner: it went wrong (put a valid token or "
                          "key", self.line(status))

    def test_other_answers_are_the_api_s(self):
        self.assertIn("answers with an error: Hetzner: it went wrong (try again later",
                      self.line(500))



class TaskClockTest(unittest.TestCase):
    """A task's age: a wall-clock step neither ends an order early nor late."""

    def test_a_step_back_of_the_wall_clock_adds_no_negative_time(self):
        task = {"created": provider.now(), "data": {"age": 100.0, "age_at": provider.now() + 7200}}
        self.assertEqual(provider.task_age(task), 100.0)

    def test_a_worker_measures_by_the_monotonic_clock_while_its_measure_holds(self):
        clock = provider.TaskClock()
        task = {"created": provider.now(), "data": {"age": 100.0, "age_at": provider.now()}}
        age, at = clock.measure(task)
        clock.kept()
        # the wall clock then jumps an hour ahead: the saved measure says age_at is an hour
        # old, which task_age (a new worker, a call) would count; this worker does not
        task["data"].update(age=age, age_at=at)
        task["data"]["age_at"] -= 3600
        self.assertGreater(provider.task_age(task), age + 3599)
        clock.saved = ((age, task["data"]["age_at"]), clock.saved[1])
        again = clock.measure(task)[0]
        self.assertGreaterEqual(again, age)
        self.assertLess(again, age + 60)

    def test_without_a_worker_the_age_goes_on_by_the_monotonic_clock_of_this_boot(self):
        # a worker measured 100 s, 5 s ago by the monotonic clock; the wall clock has since
        # jumped two hours ahead (age_at two hours old): no worker runs, and still the age
        # is 105 s, not two hours more
        marks = provider.age_marks(100.0, provider.now() - 7200)
        marks["age_mono"] -= 5
        task = {"created": provider.now() - 7300, "data": marks}
        self.assertGreaterEqual(provider.task_age(task), 105.0)
        self.assertLess(provider.task_age(task), 105.0 + 60)
        marks["age_boot"] = "another-boot"         # the machine restarted: the wall clock
        self.assertGreaterEqual(provider.task_age(task), 7300.0)

    def test_another_measure_in_the_state_is_taken_as_it_is(self):
        clock = provider.TaskClock()
        task = {"created": provider.now(), "data": {"age": 5.0, "age_at": provider.now()}}
        clock.measure(task)
        clock.kept()
        task["data"].update(age=4000.0, age_at=provider.now())     # a person made it older
        self.assertGreaterEqual(clock.measure(task)[0], 4000.0)


class QuietLog(object):
    def debug(self, text):
        pass

    def write(self, event, task_id=None, **fields):
        pass


class PinnedCertificateTest(unittest.TestCase):
    """A backend's tls_trust {"fingerprint": HEX}: CloudAPI accepts exactly that
    certificate, whoever signed it, and closes any other before a request is sent."""

    def setUp(self):
        from helpers.cloudbase import self_signed
        self.tmp = tempfile.mkdtemp(prefix="bxpin-")
        self.addCleanup(shutil.rmtree, self.tmp, True)
        cert, key = self_signed(self.tmp, "api", "DNS:api.example.invalid")  # not 127.0.0.1
        self.api = FakeHetzner(token="T0", tls=(cert, key)).start()
        self.addCleanup(self.api.stop)
        with open(cert) as handle:
            der = ssl.PEM_cert_to_DER_cert(handle.read())
        self.right = hashlib.sha256(der).hexdigest()
        os.environ["PIN_TEST_TOKEN"] = "T0"
        self.addCleanup(os.environ.pop, "PIN_TEST_TOKEN", None)

    def call(self, fingerprint):
        backend = provider.HetznerBackend({"type": "hetzner", "token_env": "PIN_TEST_TOKEN",
                                           "api_url": self.api.url, "request_timeout": 5},
                                          None, QuietLog())
        backend.tls_trust = {"fingerprint": fingerprint}
        return provider.CloudAPI(backend, backend.auth).call("GET", "/locations", attempts=1)

    def test_the_pinned_certificate_passes_and_another_is_refused_unsent(self):
        self.assertIn("locations", self.call(self.right))
        self.assertEqual(len(self.api.requests), 1)
        wrong = "ab" * 32
        with self.assertRaises(provider.CloudError) as caught:
            self.call(wrong)
        self.assertIn("GET /locations was not sent: the TLS certificate of %s failed the "
                      "check (its SHA-256 fingerprint is %s, not the tls_fingerprint %s)" % (
                          self.api.url, provider.colon_hex(self.right),
                          provider.colon_hex(wrong)), caught.exception.message)
        self.assertFalse(caught.exception.transient)        # trying again will not help
        self.assertEqual(len(self.api.requests), 1)         # the token never left

    def test_fingerprints_are_read_as_pveproxy_and_openssl_write_them(self):
        spelled = provider.colon_hex(self.right)
        self.assertEqual(provider.tls_fingerprint(spelled), self.right)
        self.assertEqual(provider.tls_fingerprint(spelled.lower().replace(":", "")), self.right)
        for bad in ("AB:CD", spelled + ":00", "zz" * 32, None, 7):
            self.assertIsNone(provider.tls_fingerprint(bad), bad)


if __name__ == "__main__":
    unittest.main()


class EndlessAPI(object):
    """A stand-in for CloudAPI whose every answer is a page: pages(number, query) makes
    it. Past 500 calls it fails the test (the old code would page for ever)."""

    def __init__(self, pages):
        self.pages = pages
        self.queries = []

    def call(self, method, path, query=None, **kwargs):
        self.queries.append(dict(query or {}))
        if len(self.queries) > 500:
            raise AssertionError("the listing never stops: %d requests" % len(self.queries))
        return self.pages(len(self.queries), query or {})


class PagingTest(unittest.TestCase):
    """Every listing that pages stops: at most MAX_FIND_PAGES pages, and at the first
    page that adds nothing new (issue 23, 3)."""

    def setUp(self):
        self.home = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, self.home)
        self.paths = provider.Paths(os.path.join(self.home, "bin", "provider"))
        self.tag = "0a1b2c3d"                 # any tag: the listings keep every provider.py server

    def backend(self, kind, **settings):
        classes = {"hetzner": provider.HetznerBackend, "timeweb": provider.TimewebBackend,
                   "openstack": provider.OpenStackBackend, "yandex": provider.YandexBackend}
        return classes[kind](dict({"type": kind, "token_env": "T"}, **settings), self.paths,
                             provider.AuditLog(self.paths.log))

    def servers(self, kind, start, count):
        """count servers of ours, ids from start, in kind's shape."""
        marks = {"managed-by": "provider.py", "bx-owner": self.tag, "bx-task": "1"}
        made = []
        for number in range(start, start + count):
            server = {"id": number if kind in ("hetzner", "timeweb") else "s%d" % number}
            if kind == "hetzner":
                server["labels"] = marks
            elif kind == "timeweb":
                server["comment"] = "provider.py owner=%s task=1" % self.tag
            elif kind == "openstack":
                server["metadata"] = marks
            else:
                server.update(id="fhm%017d" % number, labels=marks)
            made.append(server)
        return made

    def endless(self, kind, fresh):
        """A listing whose every page says there is a next one; fresh: each page holds
        new servers (else the same ones again)."""
        page_size = {"hetzner": 50, "timeweb": 100, "openstack": 100, "yandex": 1000}[kind]

        def page(number, query):
            servers = self.servers(kind, (number if fresh else 1) * page_size, page_size)
            if kind == "hetzner":
                return {"servers": servers, "meta": {"pagination": {"next_page": number + 1}}}
            if kind == "timeweb":
                return {"servers": servers, "meta": {"total": 10 ** 9}}
            if kind == "openstack":
                return {"servers": servers}
            return {"instances": servers, "nextPageToken": "t%d" % number}
        return EndlessAPI(page)

    def owned(self, kind, api):
        backend = self.backend(kind, **({"folder_id": "b1g0123456789abcdefg"}
                                        if kind == "yandex" else {}))
        return backend.owned_servers(api)

    def test_a_listing_of_ever_new_pages_stops_at_max_find_pages_with_n108(self):
        for kind in ("hetzner", "timeweb", "openstack", "yandex"):
            api = self.endless(kind, fresh=True)
            with self.assertRaises(provider.CloudError) as caught:
                self.owned(kind, api)
            self.assertEqual(caught.exception.code, provider.E_BACKEND, kind)
            self.assertIn("goes on beyond %d pages" % provider.MAX_FIND_PAGES,
                          caught.exception.message)
            self.assertEqual(len(api.queries), provider.MAX_FIND_PAGES, kind)

    def test_a_page_that_adds_nothing_new_ends_the_listing(self):
        for kind in ("hetzner", "timeweb", "openstack", "yandex"):
            api = self.endless(kind, fresh=False)
            self.assertEqual(len(self.owned(kind, api)), len(self.servers(kind, 0, {
                "hetzner": 50, "timeweb": 100, "openstack": 100, "yandex": 1000}[kind])), kind)
            self.assertEqual(len(api.queries), 2, kind)

    def test_the_timeweb_look_up_is_bounded_too(self):
        api = self.endless("timeweb", fresh=True)
        task = {"id": "9", "data": {"owner": self.tag, "name": "nobody"}}
        with self.assertRaises(provider.CloudError):
            self.backend("timeweb").find(api, task)
        self.assertEqual(len(api.queries), provider.MAX_FIND_PAGES)
