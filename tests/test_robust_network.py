# -*- coding: utf-8 -*-
"""Hardening of what comes over the network or names a server (issue 11):
the one server validator, and what it guards (pool config, operator,
command program, cloud API)."""

import unittest

from support import HomeTestCase, load_module

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
    "a" * 64 + ".example", "host:22", "١٢٧.0.0.1")
ACCEPTED = (
    ("10.0.0.5", "10.0.0.5"), ("192.168.1.10", "192.168.1.10"),
    ("172.16.0.1", "172.16.0.1"), ("203.0.113.7", "203.0.113.7"),
    ("198.51.100.4", "198.51.100.4"), ("100.64.1.1", "100.64.1.1"),
    ("8.8.8.8", "8.8.8.8"), ("2001:DB8:0:0::1", "2001:db8::1"),
    ("::ffff:203.0.113.9", "203.0.113.9"), ("fd00::5", "fd00::5"),
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

    def test_private_public_and_documentation_addresses_pass_normalised(self):
        for text, canonical in ACCEPTED:
            self.assertEqual(provider.check_server(text), (canonical, None), text)

    def test_allow_loopback_admits_loopback_only(self):
        for text, canonical in (("127.0.0.1", "127.0.0.1"), ("::1", "::1"),
                                ("localhost", "localhost"), ("::ffff:127.0.0.1", "127.0.0.1")):
            self.assertEqual(provider.check_server(text, True), (canonical, None), text)
        for text in ("0177.0.0.1", "2130706433", "0.0.0.0", "169.254.1.1", "a\nb"):
            self.assertIsNone(provider.check_server(text, True)[0], text)

    def test_the_command_programs_result_goes_through_it(self):
        for server in ("0x7f000001", "1.2.3.4\n; id", "::ffff:127.0.0.1", "169.254.1.1"):
            line = '{"server": %s, "server_password": "pw"}' % provider.json.dumps(server)
            problem = provider.parse_result(line, False)
            self.assertIsInstance(problem, str, server)
            self.assertTrue(problem.startswith("server: "), problem)
        self.assertEqual(provider.parse_result('{"server": "2001:DB8::0:1"}', False),
                         ("2001:db8::1", ""))

    def test_pool_servers_go_through_it_and_duplicates_are_found_normalised(self):
        problems = provider.validate_config({
            "enabled": True, "backend": {"type": "pool"},
            "configurations": [{"id": "1", "descr": "x", "servers": [
                {"server": "2001:db8::1"}, {"server": "2001:DB8:0::1"},
                {"server": "localhost."}, {"server": "0177.0.0.1"}, {"server": "10.0.0.1"}]}]})
        where = "$.configurations[0].servers[%d].server: "
        self.assertEqual([p.split(" ")[0] for p in problems],
                         [where.split(" ")[0] % n for n in (1, 2, 3)], problems)
        self.assertIn("duplicate server 2001:db8::1", problems[0])


class OperatorServerTest(HomeTestCase):
    def test_task_finish_refuses_loopback_spellings_and_saves_the_canonical_form(self):
        task_id = self.home.ok("order", "1")["task_id"]
        for server in ("0x7f000001", "ip6-localhost", "0:0:0:0:0:0:0:1"):
            result = self.home.run("task", "finish", task_id, "--server", server,
                                   "--no-password")
            self.assertEqual(result.code, 2, result)
            self.assertNotIn(b"Traceback", result.err)
        self.assertEqual(self.home.ok("order_status", task_id)["status"], "in_progress")
        self.home.run("task", "finish", task_id, "--server", "2001:DB8:0::7", "--no-password")
        self.assertEqual(self.home.ok("order_status", task_id)["server"], "2001:db8::7")


if __name__ == "__main__":
    unittest.main()
