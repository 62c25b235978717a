# -*- coding: utf-8 -*-
"""Hardening of what comes over the network or names a server (issue 11):
the one server validator, and what it guards (pool config, operator,
command program, cloud API)."""

import json
import os
import socket
import threading
import time
import unittest
from unittest import mock
from urllib.parse import quote

from helpers.support import HomeTestCase, load_module

provider = load_module()

# every spelling of "this host" or "no host" a resolver or ssh would accept
REFUSED = (
    "localhost", "LOCALHOST", "localhost.", "ip6-localhost", "ip6-loopback",
    "localhost.localdomain", "db.localhost", "127.0.0.1", "127.3.2.1", "0177.0.0.1",
    "127.1", "127.0.1", "2130706433", "0x7f000001", "0x7f.0.0.1", "0.0.0.0", "0",
    "0.1.2.3", "::1", "0:0:0:0:0:0:0:1", "::ffff:127.0.0.1", "::ffff:7f00:1", "::",
    "::127.0.0.1", "169.254.169.254", "fe80::1", "fe80::1%eth0", "[::1]", "224.0.0.1",
    "255.255.255.255", "240.1.2.3", "ff02::1", "1.2.3.04", "256.1.1.1", "1.2.3.4.",
    "example.123", "a b", "a\tb", "host\n", "1.2.3.4\n; id", "-oProxyCommand=x",
    "a..b", "-a.example", "a-.example", "under_score.example", "пример.рф", "", "x" * 254,
    "a" * 64 + ".example", "host:22", "١٢٧.0.0.1",
    # the caller adds IPv4 servers only: no IPv6 in any spelling, however routable
    "2001:DB8:0:0::1", "2001:db8::1", "::ffff:203.0.113.9", "fd00::5", "2a00:1450::1")
ACCEPTED = (
    ("10.0.0.5", "10.0.0.5"), ("192.168.1.10", "192.168.1.10"),
    ("172.16.0.1", "172.16.0.1"), ("203.0.113.7", "203.0.113.7"),
    ("198.51.100.4", "198.51.100.4"), ("100.64.1.1", "100.64.1.1"),
    ("8.8.8.8", "8.8.8.8"),
    ("Node7.Example.COM", "node7.example.com"), ("node7.example.com.", "node7.example.com"),
    ("db1", "db1"), ("0xdead.example", "0xdead.example"), ("a" * 63 + ".example",
                                                           "a" * 63 + ".example"))


class ServerValidatorTest(unittest.TestCase):
    """check_server: one verdict for every source of a `server`."""

    def test_every_spelling_of_loopback_and_nowhere_is_refused(self):
        for text in REFUSED:
            server, problem = provider.check_server(text)
            self.assertIsNone(server, text)
            self.assertTrue(problem, text)
            self.assertTrue(all(ch.isprintable() for ch in problem), problem)
        for value in (None, 5, ["1.2.3.4"], {"ip": "1.2.3.4"}):
            self.assertEqual(provider.check_server(value)[0], None)

    def test_ipv6_is_refused_saying_the_caller_adds_ipv4_servers_only(self):
        for text in ("2001:DB8:0:0::1", "::ffff:203.0.113.9", "::1", "fe80::1"):
            for allow_loopback in (False, True):
                problem = provider.check_server(text, allow_loopback)[1]
                self.assertIn("%s is an IPv6 address" % text, problem)
                self.assertIn("the caller (BitrixVM) adds IPv4 servers only", problem)
        self.assertIn("(IPv4 203.0.113.9 written as IPv6)",
                      provider.check_server("::ffff:203.0.113.9")[1])
        self.assertIn("adds IPv4 servers only", provider.check_server("host:22")[1])

    def test_private_public_and_documentation_addresses_pass_normalised(self):
        for text, canonical in ACCEPTED:
            self.assertEqual(provider.check_server(text), (canonical, None), text)

    def test_allow_loopback_admits_loopback_only(self):
        for text, canonical in (("127.0.0.1", "127.0.0.1"), ("localhost", "localhost")):
            self.assertEqual(provider.check_server(text, True), (canonical, None), text)
        for text in ("0177.0.0.1", "2130706433", "0.0.0.0", "169.254.1.1", "a\nb", "::1",
                     "::ffff:127.0.0.1"):
            self.assertIsNone(provider.check_server(text, True)[0], text)

    def test_the_command_programs_result_goes_through_it(self):
        for server in ("0x7f000001", "1.2.3.4\n; id", "::ffff:127.0.0.1", "169.254.1.1",
                       "2001:DB8::0:1"):
            line = '{"server": %s, "server_password": "pw"}' % provider.json.dumps(server)
            problem = provider.parse_result(line, False)
            self.assertIsInstance(problem, str, server)
            self.assertTrue(problem.startswith("server: "), problem)
        self.assertEqual(provider.parse_result('{"server": "Node7.Example.COM."}', False),
                         ("node7.example.com", "", None))     # (server, password, host key)

    def test_pool_servers_go_through_it_and_duplicates_are_found_normalised(self):
        problems = provider.validate_config({
            "enabled": True, "backend": {"type": "pool"},
            "configurations": [{"id": "1", "descr": "x", "servers": [
                {"server": "Db1.Example."}, {"server": "db1.example"},
                {"server": "localhost."}, {"server": "0177.0.0.1"}, {"server": "10.0.0.1"},
                {"server": "2001:db8::1"}]}]})
        where = "$.configurations[0].servers[%d].server: "
        self.assertEqual([p.split(" ")[0] for p in problems],
                         [where.split(" ")[0] % n for n in (1, 2, 3, 5)], problems)
        self.assertIn("duplicate server db1.example", problems[0])
        self.assertIn("2001:db8::1 is an IPv6 address: the caller (BitrixVM) adds IPv4 "
                      "servers only", problems[3])


class OperatorServerTest(HomeTestCase):
    def test_task_finish_refuses_loopback_spellings_and_saves_the_canonical_form(self):
        task_id = self.home.ok("order", "1")["task_id"]
        for server in ("0x7f000001", "ip6-localhost", "0:0:0:0:0:0:0:1", "2001:DB8:0::7"):
            result = self.home.run("task", "finish", task_id, "--server", server,
                                   "--no-password")
            self.assertEqual(result.code, 2, result)
            self.assertNotIn(b"Traceback", result.err)
        self.assertIn("2001:DB8:0::7 is an IPv6 address: the caller (BitrixVM) adds IPv4 "
                      "servers only", result.err.decode())
        self.assertEqual(self.home.ok("order_status", task_id)["status"], "in_progress")
        self.home.run("task", "finish", task_id, "--server", "Node7.Example.COM.", "--no-check",
                      "--no-password")
        self.assertEqual(self.home.ok("order_status", task_id)["server"], "node7.example.com")


class IPv4OnlyTest(HomeTestCase):
    """An IPv6 server is refused where it enters: a pool config (a config error),
    a command program's result (a failed task); task finish: OperatorServerTest."""

    def test_a_pool_config_with_an_ipv6_server_is_a_config_error(self):
        self.home.write_config({"enabled": True, "backend": {"type": "pool"},
                                "configurations": [{"id": "1", "descr": "x", "servers": [
                                    {"server": "10.0.0.1"}, {"server": "2001:db8::5"}]}]})
        message = self.assertError(self.home.run("order", "1"), 104, "order")
        self.assertIn("$.configurations[0].servers[1].server: 2001:db8::5 is an IPv6 address: "
                      "the caller (BitrixVM) adds IPv4 servers only", message)
        self.assertIn("2001:db8::5 is an IPv6 address", self.home.run("check").text)

    def test_a_command_result_with_an_ipv6_server_fails_the_task(self):
        from helpers.support import wait_for
        program = os.path.join(self.home.dir, "provision.sh")
        with open(program, "w") as handle:
            handle.write("#!/bin/sh\necho '{\"server\": \"2001:DB8::5\", "
                         "\"server_password\": \"pw\"}'\n")
        os.chmod(program, 0o700)
        self.home.write_config({"enabled": True, "backend": {"type": "command",
                                                             "command": [program]},
                                "configurations": [{"id": "1", "descr": "vm"}]})
        task_id = self.home.ok("order", "1")["task_id"]
        answer = wait_for(lambda: (lambda a: a["status"] != "in_progress" and a)(
            self.home.ok("order_status", task_id)), what="the program's result")
        self.assertEqual((answer["status"], answer["server"], answer["server_password"]),
                         ("error", "", ""))
        self.assertIn("server: 2001:DB8::5 is an IPv6 address: the caller (BitrixVM) adds "
                      "IPv4 servers only", answer["message"])



# -- the HTTP client: a scripted server on 127.0.0.1 ------------------------------

TOKEN = "tok-Secret/with+odd=chars"


class ScriptedHTTP(object):
    """An HTTP server on 127.0.0.1 whose answer to each path is a function
    (handler, body) -> None writing raw bytes; it records (method, path, headers)."""

    def __init__(self, routes):
        import socketserver
        self.routes = routes
        self.requests = []
        self.stop_event = threading.Event()
        server = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self):
                line = self.rfile.readline(65537).decode("latin-1").split()
                if len(line) < 2:
                    return
                headers = {}
                while True:
                    header = self.rfile.readline(65537).decode("latin-1").strip()
                    if not header:
                        break
                    name, _, value = header.partition(":")
                    headers[name.strip().lower()] = value.strip()
                body = self.rfile.read(int(headers.get("content-length", 0)))
                server.requests.append((line[0], line[1], headers))
                try:
                    server.routes.get(line[1].split("?")[0], not_found)(self, body)
                except (IOError, OSError):
                    pass                          # the client hung up: what we test

        class Server(socketserver.ThreadingMixIn, socketserver.TCPServer):
            daemon_threads = True
            allow_reuse_address = True

        self.server = Server(("127.0.0.1", 0), Handler)
        self.url = "http://127.0.0.1:%d" % self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,))
        self.thread.daemon = True
        self.thread.start()

    def stop(self):
        self.stop_event.set()
        self.server.shutdown()
        self.server.server_close()


def answer(status, body=b"", headers=()):
    def write(handler, _):
        if isinstance(body, (dict, list)):
            data = json.dumps(body).encode("utf-8")
        else:
            data = body
        head = ["HTTP/1.1 %d X" % status, "Content-Length: %d" % len(data),
                "Content-Type: application/json", "Connection: close"] + list(headers)
        handler.wfile.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + data)
    return write


not_found = answer(404, {"error": {"code": "not_found", "message": "no such path"}})


def drip(head, stop):
    """Send head, then one byte every 50 ms until the client goes away (or 30 s
    passed: a client without an overall deadline gets a wrong answer, not a hang;
    a deadline under 30 s fires for certain, however busy the machine)."""
    def write(handler, _):
        handler.wfile.write(head)
        handler.wfile.flush()
        for _ in range(600):
            if stop.is_set():
                break
            handler.wfile.write(b"x")
            handler.wfile.flush()
            stop.wait(0.05)
    return write


class RecordingLog(object):
    def __init__(self):
        self.lines = []

    def debug(self, text):
        self.lines.append(text)

    def write(self, event, task_id=None, **fields):
        self.lines.append((event, task_id, fields))


class HTTPClientTest(unittest.TestCase):
    """CloudAPI against scripted local servers, in-process (no plugin starts)."""

    def setUp(self):
        self.stop = threading.Event()
        self.addCleanup(self.stop.set)
        self.other = ScriptedHTTP({"/steal": answer(201, {"server": {"id": 666}})})
        self.addCleanup(self.other.stop)
        self.api = ScriptedHTTP({
            "/v1/redirect": answer(302, headers=["Location: %s/steal" % self.other.url]),
            "/v1/servers": answer(303, headers=["Location: %s/steal" % self.other.url]),
            "/v1/drip-headers": drip(b"HTTP/1.1 200 OK\r\n", self.stop),
            "/v1/drip-body": drip(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n{",
                                  self.stop),
            "/v1/huge": answer(200, b'{"servers": [' + b'{"id": 1},' * 300 + b'{}]}'),
            "/v1/nested": answer(200, b"[" * 200000 + b"]" * 200000),
            "/v1/quotes-token": answer(403, {"error": {"code": "forbidden", "message": (
                "token %s (%s) is not allowed" % (TOKEN, quote(TOKEN, safe="")))}}),
            "/v1/token-redirect": answer(301, headers=["Location: http://x/?t=" + TOKEN]),
            "/v1/flaky": self.flaky,
        })
        self.flaky_calls = 0
        self.addCleanup(self.api.stop)
        self.variable = "BXPROVIDER_TEST_TOKEN_%d" % os.getpid()
        os.environ[self.variable] = TOKEN
        self.addCleanup(os.environ.pop, self.variable, None)

    def client(self, base=None, timeout=60):
        # A deadline that never fires in a passing test: on a busy machine an https
        # client's start alone (its TLS context) can take longer than a short one, and
        # the message checked would be the deadline's. The drip tests, whose peer holds
        # the answer until the test ends, pass a short one: for them it is certain.
        backend = provider.HetznerBackend(
            {"type": "hetzner", "token_env": self.variable, "request_timeout": timeout,
             "api_url": self.api.url + "/v1"}, None, RecordingLog())
        return backend.api(base)

    def error(self, method, path, client=None, **kwargs):
        with self.assertRaises(provider.CloudError) as caught:
            (client or self.client()).call(method, path, attempts=1, **kwargs)
        self.assertEqual(caught.exception.code, provider.E_BACKEND)
        self.assertNotIn(TOKEN, caught.exception.message)
        return caught.exception

    def flaky(self, handler, body):
        self.flaky_calls += 1
        (answer(200, {"ok": True}) if self.flaky_calls > 1 else
         answer(503, {"error": {"code": "unavailable", "message": "busy"}}))(handler, body)

    def test_waits_do_not_follow_the_wall_clock(self):
        # the wall clock leaps an hour at every look: the retry still happens
        leaps = [time.time()]

        def leaping():
            leaps[0] += 3600
            return leaps[0]
        with mock.patch.object(provider.time, "time", leaping), \
                mock.patch.object(provider.time, "sleep", lambda seconds: None):
            self.assertEqual(self.client().call("GET", "/flaky", attempts=2), {"ok": True})
        self.assertEqual(self.flaky_calls, 2)

    def test_no_redirect_is_followed_and_a_303_to_a_create_makes_no_server(self):
        error = self.error("GET", "/redirect")
        self.assertIn("redirect (HTTP 302) to %s/steal" % self.other.url, error.message)
        self.assertFalse(error.transient)
        error = self.error("POST", "/servers", body={"name": "x"})
        self.assertIn("redirect (HTTP 303)", error.message)
        self.assertTrue(error.uncertain)          # looked up by its marks, never adopted
        self.assertEqual(self.other.requests, [])  # the token never went there
        error = self.error("GET", "/token-redirect")
        self.assertIn("?t=********", error.message)

    def test_the_token_goes_over_plain_http_only_to_loopback(self):
        for base in ("http://203.0.113.5/v1", "http://example.com:8080/v1",
                     "http://127.0.0.1.example.com/v1", "ftp://127.0.0.1/v1"):
            error = self.error("GET", "/servers", client=self.client(base))
            self.assertIn("was not sent", error.message)
            self.assertFalse(error.transient)
        problems = provider.validate_config({
            "enabled": True, "configurations": [],
            "backend": {"type": "hetzner", "token_env": "T", "api_url": "http://10.0.0.1/v1"}})
        self.assertTrue(any("must be an https:// URL" in p for p in problems), problems)
        for url in ("http://[::1]:8080/v1", "http://localhost.:80/v1"):
            self.assertEqual(provider.validate_config({
                "enabled": True, "configurations": [],
                "backend": {"type": "hetzner", "token_env": "T", "api_url": url}}), [], url)

    def test_a_server_dripping_bytes_meets_one_deadline(self):
        for path in ("/drip-headers", "/drip-body"):
            error = self.error("GET", path, client=self.client(timeout=0.3))
            self.assertIn("no complete answer within request_timeout 0.3 s", error.message)
            self.assertTrue(error.transient)
        error = self.error("POST", "/drip-body", body={}, client=self.client(timeout=0.3))
        self.assertTrue(error.uncertain)          # it was sent: it may have been made

    def test_an_answer_over_the_cap_is_an_error(self):
        self.assertEqual(len(self.client().call("GET", "/huge")["servers"]), 301)
        cap, provider.MAX_ANSWER_BYTES = provider.MAX_ANSWER_BYTES, 1000
        self.addCleanup(setattr, provider, "MAX_ANSWER_BYTES", cap)
        error = self.error("GET", "/huge")
        self.assertIn("the answer to GET /huge is longer than", error.message)

    def test_deep_nesting_is_an_answer_in_no_shape(self):
        error = self.error("GET", "/nested")
        self.assertIn("without a JSON object", error.message)

    def test_the_token_is_masked_in_what_the_api_says(self):
        error = self.error("GET", "/quotes-token")
        self.assertIn("token ******** (********) is not allowed", error.message)

    def test_a_create_that_could_not_be_sent_is_a_definite_failure(self):
        closed = socket.socket()
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
        closed.close()
        error = self.error("POST", "/servers", body={},
                           client=self.client("http://127.0.0.1:%d/v1" % port))
        self.assertIn("POST /servers was not sent: no connection to", error.message)
        self.assertFalse(error.uncertain)

        def no_such_name(*args, **kwargs):      # the resolver, not the code under test
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        real, socket.getaddrinfo = socket.getaddrinfo, no_such_name
        try:
            error = self.error("POST", "/servers", body={},
                               client=self.client("https://api.example.invalid/v1"))
        finally:
            socket.getaddrinfo = real
        self.assertIn("the name api.example.invalid does not resolve (DNS: Name or service "
                      "not known)", error.message)
        self.assertFalse(error.uncertain)


class OwnershipTest(unittest.TestCase):
    """The shared rule: a server is adopted or deleted only when owns() says so."""

    TASK = {"id": "7", "data": {"owner": "0a1b2c3d", "name": "provider-7-0a1b2c3d"}}

    def backend(self, backend_class, found):
        class Backend(backend_class):
            def find(self, api, task, attempts=None):
                return found
        return Backend({"type": backend_class.TYPE, "token_env": "T"}, None, RecordingLog())

    def test_lookup_refuses_what_find_returns_unless_it_carries_the_marks(self):
        name = self.TASK["data"]["name"]
        hetzner_marks = {"managed-by": "provider.py", "bx-owner": "0a1b2c3d", "bx-task": "7"}
        timeweb_comment = "provider.py owner=0a1b2c3d task=7"
        for backend_class, ours, foreign in (
                (provider.HetznerBackend, {"id": 1, "name": name, "labels": hetzner_marks},
                 ({"id": 2, "name": name, "labels": {}},
                  {"id": 3, "name": "other", "labels": hetzner_marks},
                  {"id": 4, "name": name, "labels": dict(hetzner_marks, **{"bx-task": "8"})})),
                (provider.TimewebBackend, {"id": 1, "name": name, "comment": timeweb_comment},
                 ({"id": 2, "name": name, "comment": ""},
                  {"id": 3, "name": "other", "comment": timeweb_comment}))):
            self.assertEqual(self.backend(backend_class, ours).lookup(None, self.TASK), ours)
            for server in foreign + ("a string", ["a", "list"]):
                backend = self.backend(backend_class, server)
                self.assertIsNone(backend.lookup(None, self.TASK), (backend_class, server))
                self.assertEqual(backend.log.lines[-1][0], "foreign_server")

    def test_a_hook_tripping_on_an_odd_shape_is_a_clear_error(self):
        backend = self.backend(provider.HetznerBackend, None)
        for server in ({"status": ["on"]}, {"status": {"a": 1}}, {"public_net": "1.2.3.4"},
                       {"public_net": {"ipv4": [1]}}):
            with self.assertRaises(provider.CloudError) as caught:
                backend.shaped(backend.describe, server)
                backend.shaped(backend.ipv4, server)
            self.assertIn("in a shape the plugin does not know", caught.exception.message)
        timeweb = self.backend(provider.TimewebBackend, None)
        for server in ({"networks": {"type": "public"}}, {"networks": ["x"]},
                       {"networks": [{"type": "public", "ips": "1.2.3.4"}]}):
            with self.assertRaises(provider.CloudError):
                timeweb.shaped(timeweb.ipv4, server)


if __name__ == "__main__":
    unittest.main()
