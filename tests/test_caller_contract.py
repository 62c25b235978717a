# -*- coding: utf-8 -*-
"""The plugin driven the way bx-provider drives it: a command string through
/bin/sh, stdout read to EOF and parsed as one JSON document, any "error" key
meaning failure, tasks/<id> written by the caller (docs/reference.md, "The
protocol"; the caller's facts: the shared PROTOCOL.md, outside this repository)."""

import os
import subprocess
import unittest

from helpers.support import HomeTestCase, caller_parse, python_folder

KNOWN_OPTIONS = {"help", "init", "configs", "order", "order_status"}


class Caller(object):
    """A small re-telling of bxProvider.pm's use of a plugin."""

    def __init__(self, home):
        self.home = home
        # bin/NAME's header runs the python3 first on PATH: make that this interpreter.
        self.env = home.env({"PATH": python_folder() + os.pathsep + os.environ.get("PATH", ""),
                             "LANG": "C", "LC_ALL": "C"})

    def call(self, option, arg=None):
        """Returns (ok, data); ok is False when the caller would show error_message."""
        command = "%s %s" % (self.home.script, option)
        if arg is not None:
            command += " " + arg                  # not quoted, as in the Perl caller
        proc = subprocess.Popen(command, shell=True, stdout=subprocess.PIPE,
                                stdin=subprocess.DEVNULL, env=self.env)
        out = proc.stdout.read()                  # until EOF
        proc.stdout.close()
        proc.wait()
        if not out:
            return False, "Command %s return empty string" % command
        data = caller_parse(out)
        if "error" in data:
            return False, data.get("error_message")
        return True, data

    def options(self):
        ok, data = self.call("help")
        if not ok:
            return set(), "disabled"
        return set(data["options"]) & KNOWN_OPTIONS, data["status"]

    def require(self, option):
        options, status = self.options()
        if status == "disabled":
            raise AssertionError("Provider disabled on the host")
        if option not in options:
            raise AssertionError("doesn't support %s option" % option)

    def order(self, config_id):
        self.require("order")
        ok, data = self.call("order", config_id)
        if ok:
            task_id = data["task_id"]
            assert task_id, "empty task_id"
            self.home.caller_marks(task_id)        # the caller's own tasks/<id>
        return ok, data

    def orders_list(self):
        self.require("order_status")
        answers = {}
        for name in sorted(os.listdir(self.home.tasks_dir)):
            ok, data = self.call("order_status", name)
            answers[name] = data if ok else {"error": data}
        return answers


class CallerContractTest(HomeTestCase):
    def setUp(self):
        HomeTestCase.setUp(self)
        self.caller = Caller(self.home)

    def test_a_whole_order_through_the_callers_eyes(self):
        options, status = self.caller.options()
        self.assertEqual(status, "enabled")
        self.assertEqual(options, {"help", "configs", "order", "order_status"})
        self.caller.require("configs")
        ok, configs = self.caller.call("configs")
        self.assertTrue(ok)
        ids = [c["id"] for c in configs["configurations"]]
        self.assertEqual(ids, ["1", "big"])
        ok, placed = self.caller.order("1")
        self.assertTrue(ok, placed)
        task_id = placed["task_id"]
        self.assertTrue(task_id.isdigit())
        listing = self.caller.orders_list()
        self.assertEqual(listing[task_id]["status"], "in_progress")
        self.assertIn("message", listing[task_id])
        self.home.run("task", "finish", task_id, "--server", "198.51.100.4", "--no-check",
                      stdin="pw-from-operator")
        listing = self.caller.orders_list()
        self.assertEqual(listing[task_id]["status"], "finished")
        self.assertEqual(listing[task_id]["server"], "198.51.100.4")
        self.assertEqual(listing[task_id]["server_password"], "pw-from-operator")
        self.home.caller_marks(task_id, "complete: 198.51.100.4 added to the pool")
        self.assertEqual(self.caller.orders_list()[task_id]["status"], "finished")

    def test_errors_are_seen_as_errors(self):
        ok, message = self.caller.order("no-such-config")
        self.assertFalse(ok)
        self.assertIn("N101", message)
        ok, message = self.caller.call("order_status", "12345")
        self.assertFalse(ok)
        self.assertIn("N102", message)
        self.assertFalse(os.path.isdir(self.home.tasks_dir))

    def test_shell_metacharacters_in_the_unquoted_argument(self):
        # The caller does not quote: the shell splits `1 2` into two arguments.
        ok, message = self.caller.call("order", "1 2")
        self.assertFalse(ok)
        self.assertIn("N100", message)
        ok, message = self.caller.call("order_status", "'1;2'")
        self.assertFalse(ok)
        self.assertIn("N102", message)

    def test_disabled_provider_is_refused_by_the_caller(self):
        os.unlink(self.home.config_path)
        options, status = self.caller.options()
        self.assertEqual(status, "disabled")
        self.assertEqual(options, {"help", "configs", "order", "order_status"})
        with self.assertRaises(AssertionError):
            self.caller.require("configs")


PERL_CALLER = r"""
use strict; use warnings; use JSON::PP;
# As bxProvider.pm: open(cmd |), join the lines, one from_json call (no utf8
# decoding: the bytes pass through), any "error" key means failure.
my $cmd = shift @ARGV;
open(my $fh, "$cmd |") or die "cannot run $cmd";
my @lines = <$fh>;
close($fh);
my $out = join("", @lines);
if ($out eq "") { print "EMPTY\n"; exit 0; }
my $data = JSON::PP->new->decode($out);
if (exists $data->{error}) { print "ERROR ", $data->{error_message}, "\n"; exit 0; }
print "OK ", JSON::PP->new->canonical->encode($data), "\n";
"""


def perl_available():
    try:
        return subprocess.call(["perl", "-MJSON::PP", "-e", "1"],
                               stderr=subprocess.DEVNULL) == 0
    except OSError:
        return False


@unittest.skipUnless(perl_available(), "perl with JSON::PP is not installed")
class PerlCallerTest(HomeTestCase):
    """Our output through Perl's own JSON parser, as the real caller reads it."""

    def setUp(self):
        HomeTestCase.setUp(self)
        self.caller = Caller(self.home)

    def perl(self, command):
        proc = subprocess.Popen(["perl", "-e", PERL_CALLER, self.home.script + " " + command],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                env=self.caller.env)
        out, err = proc.communicate(timeout=60)
        self.assertEqual(proc.returncode, 0, err)
        self.assertNotIn(b"Wide character", err)
        return out

    def test_answers_parse_in_perl(self):
        out = self.perl("configs")
        self.assertTrue(out.startswith(b"OK "), out)
        # Raw UTF-8 went in as bytes and comes out as the same bytes.
        self.assertIn(u"1 месяц".encode("utf-8"), out)
        self.assertTrue(self.perl("order 1").startswith(b'OK {"task_id":"1"}'))
        self.assertIn(b'"status":"in_progress"', self.perl("order_status 1"))
        self.assertTrue(self.perl("order_status 99").startswith(b"ERROR order_status error N102"))
        self.assertTrue(self.perl("bogus").startswith(b"ERROR usage error N100"))


if __name__ == "__main__":
    unittest.main()
