# -*- coding: utf-8 -*-
"""The sh header at the top of provider.py: bin/NAME exec'd as the caller does finds Python,
caches its own bytecode safely, and answers one JSON object even when no Python 3.6+ is there.

Every test puts a folder first on PATH whose python3 is this interpreter, so each interpreter
tests itself (the header runs `python3` from PATH first).

    python3 -m unittest discover -s tests -p 'test_header.py' -v
"""

import importlib.util
import json
import marshal
import os
import re
import shutil
import stat
import struct
import subprocess
import sys
import tempfile
import unittest

from support import MANUAL_CONFIG, SCRIPT, caller_parse, load_module

NAME = "hdr"
HASHED_PYCS = sys.version_info >= (3, 7)
IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0


def mode_of(path):
    return stat.S_IMODE(os.lstat(path).st_mode)


def nobody_ids():
    import pwd
    try:
        entry = pwd.getpwnam("nobody")
    except KeyError:
        return None
    return entry.pw_uid, entry.pw_gid


def fake_pyc(source_path, code_text):
    """A pyc for source_path (its header valid for the current source) that runs code_text."""
    from importlib import _bootstrap_external as bootstrap
    code = compile(code_text, source_path, "exec")
    with open(source_path, "rb") as f:
        source = f.read()
    if HASHED_PYCS:
        return bytes(bootstrap._code_to_hash_pyc(code, importlib.util.source_hash(source), True))
    header = (int(os.stat(source_path).st_mtime), len(source))     # 3.6: a timestamp pyc
    return importlib.util.MAGIC_NUMBER + struct.pack("<II", *header) + marshal.dumps(code)


EVIL = ('import sys\n'
        'open(%r, "w").close()\n'
        'def main():\n'
        '    sys.stdout.write(\'{"evil": 1}\\n\')\n'
        '    return 0\n')


class HeaderTests(unittest.TestCase):

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="test-header-")
        self.addCleanup(shutil.rmtree, self.tmp, True)
        os.chmod(self.tmp, 0o755)       # the test run as nobody needs to get in
        self.pybin = os.path.join(self.tmp, "pybin")
        os.mkdir(self.pybin)
        os.symlink(sys.executable, os.path.join(self.pybin, "python3"))
        self.env = dict((k, v) for k, v in os.environ.items()
                        if not k.startswith(("BXPROVIDER_", "PYTHON")))
        self.env["PATH"] = self.pybin + os.pathsep + "/usr/bin:/bin"
        self.home = os.path.join(self.tmp, "home")
        for sub in ("bin", "etc"):
            os.makedirs(os.path.join(self.home, sub))
        self.script = os.path.join(self.home, "bin", NAME)
        shutil.copy(SCRIPT, self.script)
        os.chmod(self.script, 0o755)
        conf = os.path.join(self.home, "etc", NAME + ".conf")
        with open(conf, "w") as f:
            json.dump(MANUAL_CONFIG, f)
        os.chmod(conf, 0o600)
        self.cache_dir = os.path.join(self.home, "bin", "__pycache__")
        self.pyc = importlib.util.cache_from_source(self.script)
        self.mark = os.path.join(self.tmp, "evil-ran")

    def run_plugin(self, *args, **kwargs):
        argv = kwargs.pop("argv", None) or [self.script]
        proc = subprocess.Popen(argv + list(args), stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                env=kwargs.pop("env", self.env), cwd=self.tmp, **kwargs)
        out, err = proc.communicate(timeout=60)
        return proc.returncode, out, err

    def answer(self, *args, **kwargs):
        code, out, err = self.run_plugin(*args, **kwargs)
        return caller_parse(out)

    def plant_evil_pyc(self):
        self.answer("help")                       # the real cache exists first
        with open(self.pyc, "wb") as f:
            f.write(fake_pyc(self.script, EVIL % self.mark))

    def assert_evil_not_run(self):
        self.assertEqual(self.answer("configs")["configurations"][0]["id"], "1")
        self.assertFalse(os.path.exists(self.mark), "the planted bytecode ran")

    # ------------------------------------------------------------ the normal path

    def test_bin_name_caches_its_bytecode_and_answers_like_python3_provider_py(self):
        direct = self.answer("configs")
        self.assertTrue(os.path.isfile(self.pyc), os.listdir(os.path.dirname(self.script)))
        self.assertEqual(mode_of(self.cache_dir), 0o755)
        self.assertEqual(mode_of(self.pyc), 0o644)
        if HASHED_PYCS:
            with open(self.pyc, "rb") as f:
                flags = int.from_bytes(f.read(8)[4:], "little")
            self.assertEqual(flags, 3, "a checked-hash pyc")
        cached = self.answer("configs")
        plain = self.answer("configs", argv=[sys.executable, self.script])
        self.assertEqual(direct, cached)
        self.assertEqual(direct, plain)
        self.assertEqual(direct["configurations"][0]["id"], "1")

    def test_a_whole_order_through_the_header(self):
        task_id = self.answer("order", "1")["task_id"]
        self.assertTrue(os.path.isfile(os.path.join(self.home, "var", NAME + ".state.json")),
                        "the home is the one above bin/")
        self.assertEqual(self.answer("order_status", task_id)["status"], "in_progress")
        self.assertEqual(self.answer("order_status", "99")["error_message"],
                         "order_status error N102, no task 99")
        code, out, err = self.run_plugin("--help")
        self.assertEqual(code, 0)
        self.assertIn(b"usage: " + NAME.encode(), out)

    def test_under_each_shell(self):
        for shell in ("sh", "dash", "bash"):
            path = shutil.which(shell)
            if path:
                self.assertIn("options", self.answer("help", argv=[path, self.script]), shell)

    def test_python3_provider_py_writes_no_cache_and_keeps_its_docstring(self):
        code, out, err = self.run_plugin("help", argv=[sys.executable, SCRIPT])
        self.assertIn("options", caller_parse(out))
        copy = os.path.join(self.tmp, "provider.py")
        shutil.copy(SCRIPT, copy)
        self.assertIn("options", self.answer("help", argv=[sys.executable, copy]))
        self.assertFalse(os.path.exists(os.path.join(self.tmp, "__pycache__")))
        module = load_module()
        self.assertTrue(module.__doc__.startswith("provider.py - a provider plugin"))
        with open(SCRIPT, "rb") as f:
            self.assertTrue(f.read(10).startswith(b"#!/bin/sh\n"))

    def test_a_symlink_caches_beside_the_real_file(self):
        link_dir = os.path.join(self.tmp, "elsewhere", "bin")
        os.makedirs(link_dir)
        link = os.path.join(link_dir, NAME)
        os.symlink(self.script, link)
        self.answer("help", argv=[link])
        self.assertTrue(os.path.isfile(self.pyc))
        self.assertEqual(os.listdir(link_dir), [NAME])

    def test_umask_000_still_writes_nothing_others_can_write(self):
        def loose():
            os.umask(0)
        self.answer("order", "1", preexec_fn=loose)
        self.answer("order", "1", argv=[sys.executable, self.script], preexec_fn=loose)
        self.assertTrue(os.path.isfile(self.pyc))
        for folder, dirs, files in os.walk(self.home):
            for name in dirs + files:
                path = os.path.join(folder, name)
                self.assertFalse(mode_of(path) & 0o022, "%s is %o" % (path, mode_of(path)))

    # ------------------------------------------------------------ a cache others could write

    def test_a_planted_pyc_runs_only_when_trusted(self):
        # the control: a pyc the owner wrote is what runs (so the test can fail)
        self.plant_evil_pyc()
        self.assertEqual(self.answer("help"), {"evil": 1})
        os.unlink(self.mark)
        os.chmod(self.pyc, 0o666)                 # others may write it: never used
        self.assert_evil_not_run()
        os.chmod(self.pyc, 0o644)
        os.chmod(self.cache_dir, 0o777)           # others may write the folder
        self.assert_evil_not_run()
        os.chmod(self.cache_dir, 0o775)           # or the group
        self.assert_evil_not_run()
        self.assertEqual(mode_of(self.cache_dir), 0o775, "an untrusted cache is left alone")

    def test_check_reports_a_cache_it_does_not_use(self):
        self.answer("help")
        code, out, err = self.run_plugin("check")
        self.assertIn(b"ok   bytecode cache " + self.pyc.encode() + b": trusted", out)
        os.chmod(self.cache_dir, 0o777)
        code, out, err = self.run_plugin("check")
        self.assertEqual(code, 1)
        self.assertIn(b"FAIL bytecode cache " + self.cache_dir.encode() +
                      b" is mode 777 (writable by others)", out)
        self.assertIn(b"fix: rm -r " + self.cache_dir.encode(), out)

    @unittest.skipUnless(IS_ROOT and nobody_ids(), "chown needs root")
    def test_a_cache_owned_by_someone_else_is_never_used(self):
        uid, gid = nobody_ids()
        self.plant_evil_pyc()
        os.chown(self.pyc, uid, gid)
        self.assert_evil_not_run()
        self.assertEqual(os.stat(self.pyc).st_uid, uid, "nor rewritten")
        os.chown(self.pyc, 0, 0)
        os.chown(self.cache_dir, uid, gid)
        self.assert_evil_not_run()

    @unittest.skipUnless(HASHED_PYCS, "Python 3.6 has timestamp pycs only (README: Performance)")
    def test_an_edit_keeping_size_and_mtime_is_seen(self):
        self.assertEqual(self.run_plugin("--version")[1].strip(), b"provider.py " +
                         load_module().__version__.encode())
        before = os.stat(self.script)
        with open(self.script, "rb") as f:
            source = f.read()
        edited = re.sub(b'__version__ = "([^"]*)"', lambda m: b'__version__ = "' +
                        b"9" * len(m.group(1)) + b'"', source, count=1)
        self.assertEqual(len(edited), len(source))
        with open(self.script, "wb") as f:
            f.write(edited)
        os.utime(self.script, ns=(before.st_atime_ns, before.st_mtime_ns))
        version = self.run_plugin("--version")[1].strip()
        self.assertTrue(version.startswith(b"provider.py 999"), version)

    def test_a_stale_pyc_from_other_code_is_replaced(self):
        self.answer("help")
        other = os.path.join(self.tmp, "other.py")
        with open(other, "w") as f:
            f.write(EVIL % self.mark)
        with open(self.pyc, "wb") as f:
            f.write(fake_pyc(other, EVIL % self.mark))    # its header is for other.py
        self.assert_evil_not_run()

    def test_no_cache_where_the_user_cannot_write(self):
        if IS_ROOT:
            if not nobody_ids():
                self.skipTest("no user nobody")
            uid, gid = nobody_ids()

            def as_nobody():
                os.setgid(gid)
                os.setuid(uid)
            kwargs = {"preexec_fn": as_nobody}
            self.let_others_through(self.tmp)
        else:
            os.chmod(os.path.dirname(self.script), 0o555)
            self.addCleanup(os.chmod, os.path.dirname(self.script), 0o755)
            kwargs = {}
        answer = self.answer("help", **kwargs)
        self.assertIn("options", answer)         # disabled or not: the config is root's
        self.assertEqual(os.listdir(os.path.dirname(self.script)), [NAME])

    def let_others_through(self, path):
        """o+x on the folders above path that lack it (the test run's own 0700 folder),
        for the time of the test."""
        while True:
            path = os.path.dirname(path)
            mode = mode_of(path)
            if not mode & 0o001:
                os.chmod(path, mode | 0o001)
                self.addCleanup(os.chmod, path, mode)
            if path == os.path.dirname(path):
                return

    # ------------------------------------------------------------ no Python 3.6+

    def copy_with_fallbacks(self, fallbacks):
        """The script with its list of fixed interpreter paths replaced (the real ones may
        exist on this machine); the rest of the header is the real one."""
        with open(SCRIPT) as f:
            text = f.read()
        text, count = re.subn(r"for py in python3 [^;]*; do",
                              "for py in python3 %s; do" % " ".join(fallbacks), text, count=1)
        self.assertEqual(count, 1)
        with open(self.script, "w") as f:
            f.write(text)

    def old_python3(self):
        """A python3 on PATH that is Python 3.5 as far as the header's code can tell."""
        fake = os.path.join(self.tmp, "old-python3")
        with open(fake, "w") as f:
            f.write('#!/bin/sh\nwhile [ "$1" != -c ]; do shift; done\nboot=$2\nshift 2\n'
                    'exec %s -I -S -c \'import sys; sys.version_info = (3, 5, 9, "final", 0); '
                    'exec(sys.argv.pop(1))\' "$boot" "$@"\n' % sys.executable)
        os.chmod(fake, 0o755)
        os.unlink(os.path.join(self.pybin, "python3"))
        os.symlink(fake, os.path.join(self.pybin, "python3"))

    def assert_no_python_error(self, action, env):
        code, out, err = self.run_plugin(action, env=env)
        answer = caller_parse(out)
        self.assertEqual(code, 1)
        self.assertEqual(answer["error"], 1)
        self.assertTrue(answer["error_message"].startswith("%s error N120, no Python 3.6+ found"
                                                           % action), answer)

    def test_no_python_at_all_is_one_json_error(self):
        self.copy_with_fallbacks(["/nonexistent/platform-python", "/nonexistent/python3.9"])
        env = dict(self.env, PATH=os.path.join(self.tmp, "empty"))
        self.assert_no_python_error("help", env)
        self.assert_no_python_error("order_status", env)

    def test_an_old_python3_is_skipped_for_the_next_one(self):
        self.copy_with_fallbacks(["/nonexistent/platform-python"])
        self.old_python3()
        self.assert_no_python_error("configs", self.env)
        self.assertFalse(os.path.exists(self.cache_dir), "the old one cached nothing")
        self.copy_with_fallbacks(["/nonexistent/platform-python", sys.executable])
        self.assertIn("options", self.answer("help"))
        self.assertTrue(os.path.isfile(self.pyc))


if __name__ == "__main__":
    unittest.main()
