# -*- coding: utf-8 -*-
"""The sh header at the top of provider.py: bin/NAME exec'd as the caller does finds Python,
caches its own bytecode safely (the core, and the cloud section once a config names a cloud
backend, each in its own file), and answers one JSON object even when no Python 3.6+ is there.

Every test puts a folder first on PATH whose python3 is this interpreter, so each interpreter
tests itself (the header runs `python3` from PATH first).

    python3 -m unittest discover -s tests -p 'test_header.py' -v
"""

import builtins
import dis
import json
import marshal
import os
import re
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
import time
import types
import unittest

from helpers.fakecloud import FakeHetzner
from helpers.support import MANUAL_CONFIG, SCRIPT, caller_parse, load_module, wait_for

NAME = "hdr"
IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0
PARTS = ("core", "cloud")
TOKEN = "tok-header-test-0123456789abcdef"


def mode_of(path):
    return stat.S_IMODE(os.lstat(path).st_mode)


def nobody_ids():
    import pwd
    try:
        entry = pwd.getpwnam("nobody")
    except KeyError:
        return None
    return entry.pw_uid, entry.pw_gid


def cache_key(script, part):
    """What a cache file of the boot starts with: the Python (sys.version), the part's name,
    and the file's size, mtime, inode and ctime (every write moves ctime on)."""
    st = os.stat(script)
    stamp = b"%d %d %d %d" % (st.st_size, st.st_mtime_ns, st.st_ino, st.st_ctime_ns)
    return b"%s %s %s\0" % (sys.version.encode(), part.encode(), stamp)


def cached_code(script, part, pyc):
    """The code object in one of the boot's cache files, checking its key."""
    with open(pyc, "rb") as f:
        data = f.read()
    key = cache_key(script, part)
    assert data.startswith(key), (pyc, data[:len(key)], key)
    return marshal.loads(data[len(key):])


def code_objects(code):
    yield code
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            for inner in code_objects(const):
                yield inner


def stored_names(code, opnames=("STORE_NAME", "STORE_GLOBAL")):
    return set(ins.argval for ins in dis.get_instructions(code) if ins.opname in opnames)


def globals_defined(top):
    """The names a module's code defines at its top level or declares global and sets."""
    names = stored_names(top)
    for code in code_objects(top):
        names |= stored_names(code, ("STORE_GLOBAL",))
    return names


def globals_loaded(top):
    """(name, code name, line) of every global a module's code reads, but the names a
    class body (or the top level) sets itself before reading them."""
    for code in code_objects(top):
        own = stored_names(code, ("STORE_NAME",))
        for ins in dis.get_instructions(code):
            if ins.opname == "LOAD_GLOBAL" or (ins.opname in ("LOAD_NAME",
                                               "LOAD_FROM_DICT_OR_GLOBALS") and
                                               ins.argval not in own):
                yield ins.argval, code.co_name, code.co_firstlineno


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
        self.write_config(MANUAL_CONFIG)
        self.cache_dir = os.path.join(self.home, "bin", "__pycache__")
        self.pycs = dict((part, os.path.join(self.cache_dir, "%s.%s.%s.pyc" % (
            NAME, part, sys.implementation.cache_tag))) for part in PARTS)
        self.pyc = self.pycs["core"]
        self.mark = os.path.join(self.tmp, "evil-ran")

    def write_config(self, data):
        conf = os.path.join(self.home, "etc", NAME + ".conf")
        with open(conf, "w") as f:
            json.dump(data, f)
        os.chmod(conf, 0o600)

    def use_cloud(self, api_url="http://127.0.0.1:9/v1"):
        """A hetzner config: bin/NAME then loads the cloud section too."""
        token = os.path.join(self.home, "etc", "token")
        with open(token, "w") as f:
            f.write(TOKEN + "\n")
        os.chmod(token, 0o600)
        self.write_config({"enabled": True, "backend": {
            "type": "hetzner", "token_file": token, "api_url": api_url, "pool_key": token,
            "allow_loopback": True, "request_timeout": 5}, "configurations": [
                {"id": "1", "descr": "Hetzner CX22", "server_type": "cx22",
                 "image": "ubuntu-24.04", "location": "fsn1"}]})

    def run_plugin(self, *args, **kwargs):
        argv = kwargs.pop("argv", None) or [self.script]
        proc = subprocess.Popen(argv + list(args), stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                env=kwargs.pop("env", self.env), cwd=self.tmp, **kwargs)
        out, err = proc.communicate(timeout=60)
        return proc.returncode, out, err

    def answer(self, *args, **kwargs):
        code, out, err = self.run_plugin(*args, **kwargs)
        if not out.strip():
            self.fail("no answer to %s (exit status %s): %s" % (args, code, err.decode()))
        return caller_parse(out)

    def plant_evil_pyc(self, part="core"):
        """The cached part's header (valid for the file) followed by other code."""
        if not os.path.exists(self.pycs[part]):
            self.answer("configs")                # the real cache exists first
        key = cache_key(self.script, part)
        with open(self.pycs[part], "rb") as f:
            self.assertEqual(f.read(len(key)), key, "the real cache, made from this file")
        code = compile(EVIL % self.mark, self.script, "exec")
        with open(self.pycs[part], "wb") as f:
            f.write(key + marshal.dumps(code))

    def plant_both(self):
        self.answer("configs")                    # both parts real, then both replaced
        for part in PARTS:
            self.plant_evil_pyc(part)

    def assert_evil_not_run(self):
        self.assertEqual(self.answer("configs")["configurations"][0]["id"], "1")
        self.assertFalse(os.path.exists(self.mark), "the planted bytecode ran")

    # ------------------------------------------------------------ the normal path

    def test_bin_name_caches_its_bytecode_and_answers_like_python3_provider_py(self):
        direct = self.answer("configs")
        self.assertTrue(os.path.isfile(self.pyc), os.listdir(os.path.dirname(self.script)))
        self.assertEqual(mode_of(self.cache_dir), 0o755)
        self.assertEqual(mode_of(self.pyc), 0o644)
        cached_code(self.script, "core", self.pyc)
        self.assertFalse(os.path.exists(self.pycs["cloud"]), "no cloud config, no section")
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
        self.use_cloud()
        self.answer("configs", preexec_fn=loose)
        self.assertEqual(sorted(os.listdir(self.cache_dir)),
                         sorted(os.path.basename(pyc) for pyc in self.pycs.values()))
        for folder, dirs, files in os.walk(self.home):
            for name in dirs + files:
                path = os.path.join(folder, name)
                self.assertFalse(mode_of(path) & 0o022, "%s is %o" % (path, mode_of(path)))

    # ------------------------------------------------------------ the cloud section

    def test_a_cloud_config_loads_and_caches_the_cloud_section(self):
        api = FakeHetzner(token=TOKEN).start()
        self.addCleanup(api.stop)
        self.use_cloud(api.url)
        direct = self.answer("configs")
        self.assertEqual(direct["configurations"][0]["descr"], "Hetzner CX22")
        for part in PARTS:
            self.assertEqual(mode_of(self.pycs[part]), 0o644, part)
        self.assertEqual(self.answer("configs"), direct)
        self.assertEqual(self.answer("configs", argv=[sys.executable, self.script]), direct)
        code, out, err = self.run_plugin("order", "1", "--dry-run")
        self.assertEqual(code, 0, err)
        self.assertIn(b"POST " + api.url.encode() + b"/servers\n", out)
        code, out, err = self.run_plugin("check")
        self.assertIn(("ok   bytecode cache %s, %s: trusted" % (
            self.pycs["core"], self.pycs["cloud"])).encode(), out)

    def test_the_core_reads_no_name_only_the_cloud_section_defines(self):
        """What bin/NAME runs without a cloud config never needs the section: every global
        the core's code reads is the core's own or a builtin (a cloud class named outside
        the section must go through backend_class or an attribute), and the two define no name
        twice (which one wins would depend on the order they ran in)."""
        self.use_cloud()
        self.answer("help")
        core, section = (cached_code(self.script, part, self.pycs[part]) for part in PARTS)
        known = globals_defined(core) | set(dir(builtins)) | set(("__file__", "__builtins__"))
        self.assertEqual([where for where in globals_loaded(core) if where[0] not in known], [])
        self.assertIn("CloudBackend", stored_names(section))
        self.assertEqual(stored_names(core) & stored_names(section), set())
        with open(self.script) as f:
            lines = f.read().split("\n")
        for code in (core, section):            # line numbers as in the file
            for inner in code.co_consts:
                if isinstance(inner, types.CodeType) and not inner.co_name.startswith("<"):
                    line = lines[inner.co_firstlineno - 1]
                    self.assertTrue(re.match(r"(def|class) %s\b|@" % inner.co_name, line),
                                    (inner.co_name, inner.co_firstlineno, line))
        module = load_module()
        for kind, class_name in module.BACKENDS.items():
            self.assertEqual(module.backend_class(kind).TYPE, kind)
            self.assertIn(class_name, stored_names(core) | stored_names(section))

    # ------------------------------------------------------------ a cache others could write

    def test_a_planted_pyc_runs_only_when_trusted(self):
        self.use_cloud()
        for part in PARTS:
            # the control: a pyc the owner wrote is what runs (so the test can fail)
            self.plant_evil_pyc(part)
            self.run_plugin("configs")
            self.assertTrue(os.path.exists(self.mark), part)
            os.unlink(self.mark)
            os.chmod(self.pycs[part], 0o666)      # others may write it: never used
            self.assert_evil_not_run()
            os.unlink(self.pycs[part])
        self.plant_both()
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
        self.use_cloud()
        for part in PARTS:
            self.plant_evil_pyc(part)
            os.chown(self.pycs[part], uid, gid)
            self.assert_evil_not_run()
            self.assertEqual(os.stat(self.pycs[part]).st_uid, uid, "nor rewritten")
            os.unlink(self.pycs[part])
        self.plant_both()
        os.chown(self.cache_dir, uid, gid)
        self.assert_evil_not_run()

    def test_an_edit_keeping_size_and_mtime_is_seen(self):
        self.use_cloud()
        self.answer("configs")
        before = os.stat(self.script)
        with open(self.script) as f:
            source = f.read()
        # a comment line of the core and one of the section become code of the same size
        for line, mark in (("# bin/NAME's boot runs the core alone and puts here", "core-ran"),
                           ("# by themselves. CRASHED is not among them", "cloud-ran")):
            start = source.index("\n" + line) + 1
            end = source.index("\n", start)
            code = "open(%r, \"w\").close()  # " % os.path.join(self.tmp, mark)
            self.assertLess(len(code), end - start)
            source = source[:start] + code.ljust(end - start, "-") + source[end:]
        with open(self.script, "w") as f:
            f.write(source)
        self.assertEqual(os.stat(self.script).st_size, before.st_size)
        os.utime(self.script, ns=(before.st_atime_ns, before.st_mtime_ns))
        self.assertEqual(self.answer("configs")["configurations"][0]["id"], "1")
        self.assertEqual(sorted(n for n in os.listdir(self.tmp) if n.endswith("-ran")),
                         ["cloud-ran", "core-ran"])

    def test_a_pyc_made_from_other_text_is_replaced(self):
        self.use_cloud()
        self.answer("configs")
        real = {}
        for part in PARTS:
            with open(self.pycs[part], "rb") as f:
                real[part] = f.read()
        os.rename(self.pycs["core"], self.pycs["cloud"] + ".tmp")    # the two swapped
        os.rename(self.pycs["cloud"], self.pycs["core"])
        os.rename(self.pycs["cloud"] + ".tmp", self.pycs["cloud"])
        self.assertEqual(self.answer("configs")["configurations"][0]["id"], "1")
        for part in PARTS:
            with open(self.pycs[part], "rb") as f:
                self.assertEqual(f.read(), real[part], part)

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

    def test_a_user_who_may_not_read_the_files_is_told_to_run_it_as_root(self):
        self.assertEqual(self.answer("order", "1")["task_id"], "1")
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
            state = os.path.join(self.home, "var", NAME + ".state.json")
            for path in (state, os.path.join(self.home, "etc", NAME + ".conf")):
                os.chmod(path, 0)
                self.addCleanup(os.chmod, path, 0o600)
            kwargs = {}
        fix = "permission denied: run it as root (as bx-provider does) or as the user that " \
              "owns the provider's files"
        answer = self.answer("order_status", "1", **kwargs)
        self.assertEqual(answer["error_message"], "order_status error N113, cannot read %s: %s"
                         % (os.path.join(self.home, "var", NAME + ".state.json"), fix))
        self.assertEqual(self.answer("help", **kwargs)["message"], "cannot read the config %s: %s"
                         % (os.path.join(self.home, "etc", NAME + ".conf"), fix))
        code, out, err = self.run_plugin("tasks", **kwargs)
        self.assertEqual((code, out), (1, b""))
        self.assertTrue(err.decode().startswith("tasks error N113, cannot read "), err)

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

    # ------------------------------------------------------------ what ps shows

    def proc_words(self, pid, what="cmdline"):
        with open("/proc/%d/%s" % (pid, what), "rb") as f:
            data = f.read()
        return [w.decode() for w in data.split(b"\0") if w] if what == "cmdline" else data.decode().strip()

    def test_a_call_shows_in_ps_as_python_with_a_short_boot_then_the_script_and_its_arguments(self):
        import fcntl
        self.answer("order", "1")                      # var/ and the lock file exist
        config = dict(MANUAL_CONFIG, lock_wait=30)
        self.write_config(config)
        with open(os.path.join(self.home, "var", NAME + ".lock"), "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)            # the next order waits for it
            proc = subprocess.Popen([self.script, "order", "1"], stdin=subprocess.DEVNULL,
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                    env=self.env, cwd=self.tmp)
            try:
                wait = time.monotonic() + 30
                while True:                            # sh has exec'd python3
                    words = self.proc_words(proc.pid)
                    if "-c" in words or time.monotonic() > wait:
                        break
                    time.sleep(0.01)
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)
        out, err = proc.communicate(timeout=60)
        self.assertEqual(caller_parse(out)["task_id"], "2", err)
        self.assertEqual(words[1:4], ["-I", "-S", "-c"], words)
        boot = words[4]
        self.assertLess(len(boot), 100, boot)
        self.assertNotIn("\n", boot)
        self.assertEqual(words[5:], [self.script, "order", "1"])
        self.assertEqual(os.path.basename(words[0]), "python3")

    def worker_of(self, task_id):
        with open(os.path.join(self.home, "log", NAME + ".log")) as f:
            pids = re.findall(r" worker task=%s .*pid=(\d+)" % task_id, f.read())
        self.assertTrue(pids)
        pid = int(pids[-1])
        self.addCleanup(self.kill_quietly, pid)
        return pid

    @staticmethod
    def kill_quietly(pid):
        try:
            os.kill(pid, 9)
        except OSError:
            pass

    def named(self, pid, comm):
        """Wait until the worker's fork has named itself comm (it does so first thing)."""
        wait_for(lambda: self.proc_words(pid, "comm") == comm, what="the worker's name %r, "
                 "not %r" % (comm, self.proc_words(pid, "comm")))

    def silent_port(self):
        """A port on 127.0.0.1 that accepts and never shows an SSH banner (a refusing one
        would have its pool server set aside at once, and the worker end)."""
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        self.addCleanup(sock.close)
        return sock.getsockname()[1]

    def waiting_pool(self):
        """A pool config whose server never answers SSH: its order's worker waits. The
        port listens but says nothing (each probe waits ssh_timeout for a banner); a
        closed port would refuse at once, and the pool would set its only server aside
        and end the order, and its worker, before the test has looked at it."""
        self.write_config({"enabled": True, "backend": {
            "type": "pool", "ssh_port": self.silent_port(), "allow_loopback": True,
            "ready_timeout": 600, "probe_timeout": 3600},
            "configurations": [{"id": "1", "descr": "Pool", "servers": [{"server": "127.0.0.1"}]}]})

    def test_a_worker_shows_as_the_provider_s_worker_for_its_task(self):
        self.waiting_pool()
        task_id = self.answer("order", "1")["task_id"]
        pid = self.worker_of(task_id)
        self.named(pid, "%s worker %s" % (NAME, task_id))      # the fork names itself first
        self.assertEqual(self.proc_words(pid), [self.script, "worker", task_id])
        ps = shutil.which("ps")
        if ps:
            out = subprocess.check_output([ps, "-o", "args=", "-p", str(pid)])
            self.assertEqual(out.decode().strip(), "%s worker %s" % (self.script, task_id))

    def test_a_long_name_is_cut_to_the_15_bytes_comm_holds(self):
        long_name = "myhosterprovider"
        script = os.path.join(self.home, "bin", long_name)
        os.rename(self.script, script)
        os.rename(os.path.join(self.home, "etc", NAME + ".conf"),
                  os.path.join(self.home, "etc", long_name + ".conf"))
        self.script = script
        conf = os.path.join(self.home, "etc", long_name + ".conf")
        with open(conf, "w") as f:
            json.dump({"enabled": True, "backend": {
                "type": "pool", "ssh_port": self.silent_port(), "allow_loopback": True,
                "ready_timeout": 600, "probe_timeout": 3600},
                "configurations": [{"id": "1", "descr": "Pool",
                                    "servers": [{"server": "127.0.0.1"}]}]}, f)
        os.chmod(conf, 0o600)
        task_id = self.answer("order", "1")["task_id"]
        with open(os.path.join(self.home, "log", long_name + ".log")) as f:
            pid = int(re.findall(r" worker task=%s .*pid=(\d+)" % task_id, f.read())[-1])
        self.addCleanup(self.kill_quietly, pid)
        self.named(pid, "myhosterprovide")
        self.assertEqual(self.proc_words(pid), [script, "worker", task_id])

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

    def run_as_old_python(self, python, *args):
        """provider.py run by `python` itself; None as python: this interpreter telling
        the file's code it is 3.5 (sys.version_info), as an old python3 would."""
        argv = [python, SCRIPT] if python else [sys.executable, "-c", (
            "import sys; sys.version_info = (3, 5, 9, 'final', 0); sys.argv = sys.argv[1:]; "
            "exec(compile(open(sys.argv[0]).read(), sys.argv[0], 'exec'), "
            "{'__name__': '__main__'})"), SCRIPT]
        return self.run_plugin(*args, argv=argv)

    def assert_old_python_refused(self, python, version):
        needs = "error N120, provider.py needs Python 3.6 or newer; "
        for action in ("help", "order_status", "bogus"):
            code, out, err = self.run_as_old_python(python, *([action, "1"] if action ==
                                                              "order_status" else [action]))
            self.assertEqual((code, err), (1, b""))
            answer = caller_parse(out)
            self.assertEqual(answer["error"], 1)
            message = answer["error_message"]
            self.assertTrue(message.startswith((action if action != "bogus" else "usage")
                                               + " " + needs), message)
            self.assertTrue(message.endswith(" is Python %s: run it with python3 (3.6+)"
                                             % version), message)
        for argv, action in ((["tasks"], "tasks"), (["task", "show", "1"], "task show"),
                             (["--version"], "usage"), ([], "usage"), (["check"], "check")):
            code, out, err = self.run_as_old_python(python, *argv)
            self.assertEqual((code, out), (1, b""), argv)
            self.assertTrue(err.decode().startswith(action + " " + needs), err)
            self.assertEqual(len(err.splitlines()), 1, err)

    def test_an_old_python_running_the_file_itself_answers_one_clear_error(self):
        self.assert_old_python_refused(None, "3.5")

    def test_python2_running_the_file_itself_answers_one_clear_error(self):
        python2 = [p for p in (os.path.expanduser("~/.pyenv/versions/2.7.18/bin/python"),
                               shutil.which("python2.7"), shutil.which("python2"))
                   if p and os.path.isfile(p)]
        if not python2:
            self.skipTest("no Python 2 here")
        self.assert_old_python_refused(python2[0], "2.7")

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

    # ------------------------------------------------------------ a python3 that cannot run

    def unusable_python3(self, how):
        """python3 first on PATH (a folder before pybin), there but unable to run: "mode"
        (0644), "loader" (executable, its interpreter missing: exec fails), "noexec" (0755
        on a noexec mount, as root). Returns the file."""
        folder = os.path.join(self.tmp, "unusable")
        if how != "noexec":
            os.mkdir(folder)
        else:
            if not IS_ROOT or not shutil.which("mount"):
                self.skipTest("mounting a noexec tmpfs needs root")
            os.mkdir(folder)
            if subprocess.call(["mount", "-t", "tmpfs", "-o", "noexec,size=1m", "tmpfs", folder],
                               stderr=subprocess.DEVNULL) != 0:
                self.skipTest("cannot mount a tmpfs here")
            self.addCleanup(subprocess.call, ["umount", "-l", folder])
        fake = os.path.join(folder, "python3")
        with open(fake, "w") as f:
            f.write("#!%s\n" % ("/nonexistent/python-loader" if how == "loader"
                                 else sys.executable))
        os.chmod(fake, 0o644 if how == "mode" else 0o755)
        self.env["PATH"] = folder + os.pathsep + self.env["PATH"]
        return fake

    def test_a_python3_that_cannot_run_is_passed_over_and_named(self):
        # Regression (issue 23, 4): its exec failed and sh exited 126/127 with no JSON
        reasons = {"mode": "not an executable file", "noexec": "not an executable file",
                   "loader": "cannot be run (exit status 127)"}
        shells = [path for path in (shutil.which("dash"), shutil.which("bash")) if path]
        for how in ("mode", "loader", "noexec"):
            with self.subTest(how=how):
                self.setUp()
                fake = self.unusable_python3(how)
                self.copy_with_fallbacks(["/nonexistent/platform-python", sys.executable])
                for shell in shells:
                    self.assertIn("options", self.answer("help", argv=[shell, self.script]))
                self.copy_with_fallbacks(["/nonexistent/platform-python"])
                env = dict(self.env, PATH=os.path.dirname(fake))
                for shell in shells:
                    code, out, err = self.run_plugin("order_status", "1",
                                                     argv=[shell, self.script], env=env)
                    message = caller_parse(out)["error_message"]
                    self.assertEqual(code, 1, (shell, out, err))
                    self.assertTrue(message.startswith(
                        "order_status error N120, no Python 3.6+ found (tried python3 on PATH"),
                        message)
                    self.assertIn("; %s: %s" % (fake, reasons[how]), message)
                    self.assertTrue(message.endswith("): install python3"), message)

    def test_a_python3_further_on_path_is_used_when_the_first_cannot_run(self):
        self.unusable_python3("mode")
        self.copy_with_fallbacks(["/nonexistent/platform-python"])
        self.assertIn("options", self.answer("help"))   # pybin's python3, after the 0644 one
        self.assertEqual(os.listdir(self.cache_dir), [os.path.basename(self.pyc)])
        self.assertTrue(os.path.isfile(self.pyc))

    def test_the_reasons_name_an_old_python_and_stay_plain_text(self):
        self.copy_with_fallbacks(["/nonexistent/platform-python"])
        self.old_python3()
        env = dict(self.env, BXPROVIDER_PYTHON_WHY='"}{\\ injected; ')
        code, out, err = self.run_plugin("configs", env=env)
        message = caller_parse(out)["error_message"]
        self.assertIn("(tried python3 on PATH, /usr/libexec/platform-python, /usr/bin/python3.13"
                      " ... python3.6; python3: Python 3.5): install python3", message)
        self.assertNotIn("injected", message)


if __name__ == "__main__":
    unittest.main()
