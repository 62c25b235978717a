"""Tests of install.sh, run as a subprocess against a temporary prefix.

install.sh runs `python3` from PATH, and so does the installed bin/NAME (its sh header): the
tests put a folder first in PATH whose python3 is this interpreter, so each interpreter tests
itself under sh. The same tests under the other shells found (dash, bash; a shell that is only
another name of one already listed, like sh -> dash, runs once) run with one interpreter only,
the python3 on PATH: shell behaviour does not depend on the Python version.

The first run of a freshly installed bin/NAME compiles the plugin's core and caches its
bytecode (~0.1 s of CPU). test_fresh_install_layout_and_modes checks that; the other tests
put the cache that run would write in place before they install (cached_bytecode), so
install.sh's final check and their own runs of the plugin do not compile it again.

    python3 -m unittest discover -s tests -p 'test_install.py' -v
"""

import json
import os
import re
import shutil
import stat
import subprocess
import sys
import tarfile
import tempfile
import unittest

from helpers.support import MANUAL_CONFIG, ROOT, RUN_ROOT, SCRIPT, caller_parse

INSTALL_SH = os.path.join(ROOT, "install.sh")
NAME = "testprov"


def read_bytes(path):
    with open(path, "rb") as f:
        return f.read()


def mode_of(path):
    return stat.S_IMODE(os.lstat(path).st_mode)


def python3_on_path_is_this_one():
    """True when this interpreter is the python3 on PATH (the one that tests other shells)."""
    try:
        out = subprocess.check_output(
            ["python3", "-I", "-S", "-c",
             "import os, sys; print(os.path.realpath(sys.executable))"],
            stderr=subprocess.DEVNULL)
    except (OSError, subprocess.CalledProcessError):
        return False
    return out.decode("utf-8", "replace").strip() == os.path.realpath(sys.executable)


def cached_bytecode(script):
    """Put in place the cache of the plugin's core that the first run of the installed
    bin/NAME (script) writes, unless there is one (~0.1 s of CPU that each fresh install's
    final check would spend again). The boot keys it by the file's bytes, not by its path or
    mtime, so the one a copy of provider.py writes (once per test run) fits every install."""
    tag = sys.implementation.cache_tag
    pyc = os.path.join(os.path.dirname(script), "__pycache__",
                       "%s.core.%s.pyc" % (os.path.basename(script), tag))
    if os.path.exists(pyc):
        return
    shared = os.path.join(RUN_ROOT.path, "install-core-%s.pyc" % tag)
    if not os.path.exists(shared):
        scratch = tempfile.mkdtemp(dir=RUN_ROOT.path)     # whose python3 is this one
        os.symlink(sys.executable, os.path.join(scratch, "python3"))
        copy = os.path.join(scratch, "provider")
        shutil.copy(SCRIPT, copy)
        os.chmod(copy, 0o755)
        subprocess.check_call([copy, "--version"], stdout=subprocess.DEVNULL, env=dict(
            os.environ, PATH=scratch + os.pathsep + "/usr/bin:/bin"))
        os.rename(os.path.join(scratch, "__pycache__", "provider.core.%s.pyc" % tag), shared)
        shutil.rmtree(scratch, True)
    folder = os.path.dirname(pyc)
    for path in (os.path.dirname(os.path.dirname(folder)), os.path.dirname(folder), folder):
        if not os.path.isdir(path):
            os.makedirs(path)
            os.chmod(path, 0o755)           # as install.sh and the header make them
    shutil.copyfile(shared, pyc)
    os.chmod(pyc, 0o644)


def find_shells():
    shells, seen = [], set()
    for name in ("sh", "dash", "bash"):
        path = shutil.which(name)
        if path is None:
            continue
        real = os.path.realpath(path)
        if real in seen:
            continue
        seen.add(real)
        shells.append((name, path))
    return shells


class InstallTestsBase(object):
    """The tests; one concrete TestCase per shell is made at the bottom of the file."""

    shell = None  # path of the shell running install.sh

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="test-install-")
        self.addCleanup(shutil.rmtree, self.tmp)
        pybin = os.path.join(self.tmp, "pybin")
        os.mkdir(pybin)
        os.symlink(sys.executable, os.path.join(pybin, "python3"))
        self.env = dict(os.environ)
        for key in list(self.env):
            if key.startswith("BXPROVIDER_") or key.startswith("PYTHON"):
                del self.env[key]
        self.env["PATH"] = pybin + os.pathsep + "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin"
        self.prefix = os.path.join(self.tmp, "providers")
        self.home = os.path.join(self.prefix, NAME)
        self.script = os.path.join(self.home, "bin", NAME)
        self.conf = os.path.join(self.home, "etc", NAME + ".conf")

    # ---------------------------------------------------------------- helpers

    def run_cmd(self, argv, decode=True):
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, env=self.env, cwd=self.tmp)
        out, err = proc.communicate(timeout=120)
        if decode:
            out = out.decode("utf-8", "replace")
        return proc.returncode, out, err.decode("utf-8", "replace")

    def run_install(self, *args, **kwargs):
        installer = kwargs.pop("installer", INSTALL_SH)
        return self.run_cmd([self.shell, installer] + list(args))

    def install_ok(self, *args, **kwargs):
        rc, out, err = self.run_install(*args, **kwargs)
        self.assertEqual(rc, 0, "install.sh %s failed:\n%s\n%s" % (" ".join(args), out, err))
        return out

    def install(self, *extra):
        """install.sh --prefix PREFIX EXTRA NAME, bin/NAME's bytecode cache put in place
        first (cached_bytecode): install.sh's final check runs the plugin without
        compiling it. test_fresh_install_layout_and_modes installs without it."""
        cached_bytecode(self.script)
        return self.install_ok("--prefix", self.prefix, *(list(extra) + [NAME]))

    def write(self, name, data):
        path = os.path.join(self.tmp, name)
        with open(path, "wb") as f:
            f.write(data if isinstance(data, bytes) else data.encode("utf-8"))
        return path

    def write_json(self, name, obj):
        return self.write(name, json.dumps(obj, ensure_ascii=False, indent=2) + "\n")

    def snapshot(self, skip=("bin", "lib"), home=None):
        """{relative path: (mode, bytes or None)} of everything under the home but skip."""
        result = {}
        home = home or self.home
        for dirpath, dirnames, filenames in os.walk(home):
            rel_dir = os.path.relpath(dirpath, home)
            if rel_dir.split(os.sep)[0] in skip:
                continue
            result[rel_dir] = (mode_of(dirpath), None)
            for fn in filenames:
                path = os.path.join(dirpath, fn)
                result[os.path.join(rel_dir, fn)] = (mode_of(path), read_bytes(path))
        return result

    def kept_folder(self, out):
        """The folder --uninstall/--purge moved the rest of the home to (it says where)."""
        removed = self.prefix + "-removed"
        kept = [os.path.join(removed, fn) for fn in os.listdir(removed)]
        self.assertEqual(len(kept), 1, kept)
        self.assertIn(kept[0], out)
        self.assertTrue(os.path.basename(kept[0]).startswith(NAME + "-"))
        self.assertEqual(mode_of(removed), 0o700, "it holds configs with secrets")
        self.assertFalse(os.path.exists(self.home), "bx-provider would still list it")
        return kept[0]

    def assert_bytecode_cached(self, script):
        pyc = os.path.join(os.path.dirname(script), "__pycache__", "%s.core.%s.pyc" % (
            os.path.basename(script), sys.implementation.cache_tag))    # the manual config's
        self.assertEqual(os.listdir(os.path.dirname(pyc)), [os.path.basename(pyc)],
                         "compiled once, by this interpreter, beside bin/NAME")
        self.assertEqual(mode_of(pyc), 0o644)
        self.assertEqual(mode_of(os.path.dirname(pyc)), 0o755)

    def plugin_help(self):
        """The installed plugin's answer to `help`, run as bx-provider runs it (its path,
        through the shebang) and parsed with the caller's rules."""
        rc, out, err = self.run_cmd([self.script, "help"], decode=False)
        return caller_parse(out)

    # ---------------------------------------------------------------- fresh install

    def test_fresh_install_layout_and_modes(self):
        out = self.install_ok("--prefix", self.prefix, NAME)    # no cache put in place
        # bin/NAME is provider.py byte for byte, its bytecode cached by its first run
        self.assertEqual(read_bytes(self.script), read_bytes(SCRIPT))
        self.assertEqual(mode_of(self.script), 0o755)
        self.assertEqual(mode_of(os.path.join(self.home, "bin")), 0o755)
        self.assertFalse(os.path.exists(os.path.join(self.home, "lib")))
        self.assert_bytecode_cached(self.script)
        for sub in ("etc", "var", "log"):
            self.assertEqual(mode_of(os.path.join(self.home, sub)), 0o700, sub)
        self.assertEqual(mode_of(self.conf), 0o600)
        self.assertFalse(os.path.exists(os.path.join(self.home, "tasks")),
                         "tasks/ is bx-provider's: install.sh must not create it")
        # no temporary files left behind
        self.assertEqual(sorted(os.listdir(os.path.join(self.home, "bin"))),
                         sorted([NAME, "__pycache__"]))
        self.assertEqual(os.listdir(os.path.join(self.home, "etc")), [NAME + ".conf"])
        # it says where everything is, and how to test
        for text in (self.script, self.conf, os.path.join(self.home, "var"),
                     os.path.join(self.home, "log", NAME + ".log"),
                     os.path.join(self.home, "tasks"), self.script + " help"):
            self.assertIn(text, out)
        self.assertIn("check", out)

    def test_starting_config_is_commented_json_and_disabled(self):
        self.install()
        with open(self.conf, encoding="utf-8") as f:
            config = json.load(f)
        self.assertIs(config["enabled"], False)
        self.assertEqual(config["backend"]["type"], "manual")
        self.assertEqual(len(config["configurations"]), 1)
        self.assertTrue(config["configurations"][0]["id"])
        self.assertTrue(config["configurations"][0]["descr"])
        comments = [k for k in config if k.startswith("_")]
        self.assertTrue(comments, "the starting config explains itself in _ keys")
        # the README sections it names exist, and it states the rule of config ids
        text = json.dumps(config)
        sections = re.findall(r"README\.md, section '([^']+)'", text)
        self.assertTrue(sections, text)
        with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
            headings = [line.lstrip("#").strip() for line in f if line.startswith("#")]
        for section in sections:
            self.assertIn(section, headings)
        self.assertIn("starting with a letter or digit", config["_configurations"])

    def test_installed_plugin_answers_help_with_one_json_object(self):
        self.install()
        answer = self.plugin_help()
        self.assertNotIn("error", answer)
        for option in ("help", "configs", "order", "order_status"):
            self.assertIn(option, answer["options"])
        self.assertEqual(answer["status"], "disabled")

    def test_starting_config_is_valid_apart_from_being_disabled(self):
        self.install()
        with open(self.conf, encoding="utf-8") as f:
            config = json.load(f)
        config["enabled"] = True
        self.install("--config", self.write_json("on.conf", config), "--force")
        self.assertEqual(self.plugin_help()["status"], "enabled")

    def test_given_config_enables_the_plugin(self):
        src = self.write_json("my.conf", MANUAL_CONFIG)
        out = self.install("--config", src)
        self.assertEqual(read_bytes(self.conf), read_bytes(src))
        self.assertEqual(mode_of(self.conf), 0o600)
        self.assertEqual(self.plugin_help()["status"], "enabled")

    def test_install_succeeds_although_check_reports_the_disabled_provider(self):
        out = self.install()
        # the starting config is disabled, so check has something to report; the install
        # itself still succeeds and says what to do next
        self.assertIn("enabled", out)
        self.assertIn(self.conf, out)

    # ---------------------------------------------------------------- upgrade

    def test_rerun_upgrades_script_only(self):
        self.install()
        for rel, data in (("var/%s.state.json" % NAME, b'{"schema": 1, "tasks": {}}\n'),
                          ("log/%s.log" % NAME, b"2024-01-01 order 1\n"),
                          ("tasks/7", b"complete: ok\n")):
            path = os.path.join(self.home, rel)
            if not os.path.isdir(os.path.dirname(path)):
                os.mkdir(os.path.dirname(path), 0o770)
            with open(path, "wb") as f:
                f.write(data)
        with open(self.conf, "ab") as f:
            f.write(b" \n")  # an edit by the admin
        os.chmod(os.path.join(self.home, "log"), 0o750)  # an admin's choice, kept
        # an older install: a launcher in bin/NAME, the code and its cache in lib/
        with open(self.script, "wb") as f:
            f.write(b"#!/usr/bin/env python3\n# an older launcher\n")
        lib_cache = os.path.join(self.home, "lib", "__pycache__")
        os.makedirs(lib_cache)
        for path in (os.path.join(self.home, "lib", "provider.py"),
                     os.path.join(lib_cache, "provider.cpython-36.pyc")):
            with open(path, "wb") as f:
                f.write(b"# an older version\n")
        # 1.1.0's cache of bin/NAME as a whole, which nothing reads any more
        bin_cache = os.path.join(self.home, "bin", "__pycache__")
        os.makedirs(bin_cache, exist_ok=True)
        old_pyc = os.path.join(bin_cache, "%s.cpython-311.pyc" % NAME)
        with open(old_pyc, "wb") as f:
            f.write(b"1.1.0's bytecode\n")
        before = self.snapshot()

        out = self.install()
        self.assertEqual(self.snapshot(), before)
        self.assertEqual(read_bytes(self.script), read_bytes(SCRIPT))
        self.assertFalse(os.path.exists(os.path.join(self.home, "lib")))
        self.assertFalse(os.path.exists(old_pyc))
        self.assertEqual(mode_of(self.script), 0o755)
        self.assertIn("Upgraded", out)

    # ---------------------------------------------------------------- --config, --force

    def test_config_is_not_overwritten_without_force(self):
        self.install()
        with open(self.script, "ab") as f:
            f.write(b"\n# installed earlier\n")
        before = self.snapshot(skip=())
        src = self.write_json("new.conf", MANUAL_CONFIG)
        rc, out, err = self.run_install("--prefix", self.prefix, "--config", src, NAME)
        self.assertNotEqual(rc, 0)
        self.assertIn("--force", err)
        self.assertEqual(self.snapshot(skip=()), before, "a refused install changes nothing")

    def test_same_config_again_needs_no_force(self):
        src = self.write_json("my.conf", MANUAL_CONFIG)
        self.install("--config", src)
        self.install("--config", src)
        self.assertEqual(os.listdir(os.path.join(self.home, "etc")), [NAME + ".conf"])

    def test_force_replaces_config_and_keeps_a_dated_backup(self):
        self.install()
        old = read_bytes(self.conf)
        os.chmod(self.conf, 0o644)  # loosened by hand: its backup is private all the same
        src = self.write_json("new.conf", MANUAL_CONFIG)
        self.install("--config", src, "--force")
        self.assertEqual(read_bytes(self.conf), read_bytes(src))
        self.assertEqual(mode_of(self.conf), 0o600)
        pattern = re.compile(r"^%s\.conf\.\d{8}-\d{6}(-\d+)?\.bak$" % re.escape(NAME))
        backups = [fn for fn in os.listdir(os.path.join(self.home, "etc")) if pattern.match(fn)]
        self.assertEqual(len(backups), 1, os.listdir(os.path.join(self.home, "etc")))
        backup = os.path.join(self.home, "etc", backups[0])
        self.assertEqual(read_bytes(backup), old)
        self.assertEqual(mode_of(backup), 0o600)

        # a second replacement within the same second still keeps every old config
        src2 = self.write_json("newer.conf", dict(MANUAL_CONFIG, enabled=False))
        self.install("--config", src2, "--force")
        backups = [fn for fn in os.listdir(os.path.join(self.home, "etc")) if pattern.match(fn)]
        self.assertEqual(len(backups), 2)
        self.assertEqual(read_bytes(self.conf), read_bytes(src2))

    def test_invalid_config_is_refused_before_anything_is_installed(self):
        for name, data in (("broken.conf", b'{"enabled": true,'),
                           ("list.conf", b"[1, 2]"),
                           ("latin1.conf", b'{"descr": "\xe9"}')):
            src = self.write(name, data)
            rc, out, err = self.run_install("--prefix", self.prefix, "--config", src, NAME)
            self.assertNotEqual(rc, 0, name)
            self.assertIn(src, err)
            self.assertFalse(os.path.exists(self.prefix), name)
        rc, out, err = self.run_install("--prefix", self.prefix, "--config",
                                        os.path.join(self.tmp, "missing.conf"), NAME)
        self.assertNotEqual(rc, 0)
        self.assertIn("missing.conf", err)
        self.assertFalse(os.path.exists(self.prefix))

    def test_force_without_config_is_a_usage_error(self):
        rc, out, err = self.run_install("--prefix", self.prefix, "--force", NAME)
        self.assertEqual(rc, 2)
        self.assertIn("--force", err)
        self.assertFalse(os.path.exists(self.prefix))

    # ---------------------------------------------------------------- --uninstall, --purge

    def test_uninstall_removes_the_script_and_moves_the_rest_out_of_the_prefix(self):
        self.install()
        os.mkdir(os.path.join(self.home, "lib"))        # an older install's code
        with open(os.path.join(self.home, "lib", "provider.py"), "wb") as f:
            f.write(b"# an older version\n")
        before = self.snapshot()
        out = self.install_ok("--prefix", self.prefix, "--uninstall", NAME)
        self.assertIn("Removed " + self.script, out)
        kept = self.kept_folder(out)
        self.assertEqual(sorted(os.listdir(kept)), ["etc", "log", "var"])
        self.assertEqual(self.snapshot(home=kept), before)
        self.assertEqual(os.listdir(self.prefix), [])
        # uninstalling again is not an error
        out = self.install_ok("--prefix", self.prefix, "--uninstall", NAME)
        self.assertIn("Nothing to remove", out)

    def test_purge_lists_and_deletes_everything_but_the_callers_tasks(self):
        self.install()
        tasks = os.path.join(self.home, "tasks")
        os.mkdir(tasks, 0o770)
        with open(os.path.join(tasks, "12"), "wb") as f:
            f.write(b"complete: ok\n")
        out = self.install_ok("--prefix", self.prefix, "--purge", "--yes", NAME)
        for sub in ("bin", "etc", "var", "log"):
            self.assertIn(os.path.join(self.home, sub), out)
        kept = self.kept_folder(out)
        self.assertEqual(os.listdir(kept), ["tasks"])
        self.assertEqual(read_bytes(os.path.join(kept, "tasks", "12")), b"complete: ok\n")

    def test_purge_without_a_terminal_needs_yes(self):
        self.install()
        before = self.snapshot(skip=())
        rc, out, err = self.run_install("--prefix", self.prefix, "--purge", NAME)
        self.assertEqual(rc, 2)
        self.assertIn("--yes", err)
        self.assertEqual(self.snapshot(skip=()), before)

    def test_purge_removes_an_emptied_home(self):
        self.install()
        self.install_ok("--prefix", self.prefix, "--purge", "--yes", NAME)
        self.assertFalse(os.path.exists(self.home))
        self.assertTrue(os.path.isdir(self.prefix), "the prefix is left alone")
        self.assertFalse(os.path.exists(self.prefix + "-removed"), "nothing was left to keep")
        # purging again is not an error
        self.install_ok("--prefix", self.prefix, "--purge", "--yes", NAME)

    def purge_on_a_terminal(self, answer):
        master, slave = os.openpty()
        try:
            proc = subprocess.Popen(
                [self.shell, INSTALL_SH, "--prefix", self.prefix, "--purge", NAME],
                stdin=slave, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=self.env)
            os.close(slave)
            slave = None
            os.write(master, answer)
            out, err = proc.communicate(timeout=60)
        finally:
            if slave is not None:
                os.close(slave)
            os.close(master)
        return proc.returncode, out.decode("utf-8"), err.decode("utf-8")

    @unittest.skipUnless(hasattr(os, "openpty"), "needs a pseudo-terminal")
    def test_purge_asks_on_a_terminal(self):
        self.install()
        before = self.snapshot(skip=())
        rc, out, err = self.purge_on_a_terminal(b"n\n")
        self.assertNotEqual(rc, 0)
        self.assertIn("[y/N]", out)
        self.assertEqual(self.snapshot(skip=()), before, "answering no deletes nothing")
        rc, out, err = self.purge_on_a_terminal(b"y\n")
        self.assertEqual(rc, 0, err)
        self.assertFalse(os.path.exists(self.home))

    def test_uninstall_and_purge_refuse_config(self):
        for action in ("--uninstall", "--purge"):
            rc, out, err = self.run_install("--prefix", self.prefix, action, "--config",
                                            self.write_json("c.conf", MANUAL_CONFIG), NAME)
            self.assertEqual(rc, 2, action)

    # ---------------------------------------------------------------- NAME and usage

    def test_bad_names_are_rejected(self):
        for bad in ("", "a b", "a/b", "../x", "x" * 65, "é", "a.b", "a.py", "-x", "a$b", "a*",
                    "a\nb", "."):
            rc, out, err = self.run_install("--prefix", self.prefix, bad)
            self.assertEqual(rc, 2, "NAME %r: %s" % (bad, err))
            self.assertIn("error", err, bad)
            self.assertFalse(os.path.exists(self.prefix), bad)
        rc, out, err = self.run_install("--prefix", self.prefix, "a", "b")
        self.assertEqual(rc, 2)

    def test_prefix_with_spaces_and_quotes(self):
        prefix = os.path.join(self.tmp, "my 'providers' $HOME")
        home = os.path.join(prefix, NAME)
        src = self.write_json("my.conf", MANUAL_CONFIG)
        cached_bytecode(os.path.join(home, "bin", NAME))
        self.install_ok("--prefix", prefix, NAME)
        self.install_ok("--prefix", prefix, "--config", src, "--force", NAME)
        self.assertEqual(read_bytes(os.path.join(home, "etc", NAME + ".conf")), read_bytes(src))
        self.assertEqual(mode_of(os.path.join(home, "bin", NAME)), 0o755)
        self.install_ok("--prefix", prefix, "--purge", "--yes", NAME)
        self.assertFalse(os.path.exists(home))
        self.assertEqual(os.listdir(prefix), [])

    def test_program_is_installed_beside_the_plugin_and_check_passes(self):
        program = os.path.join(ROOT, "examples", "provision-example.sh")
        out = self.install("--config", os.path.join(ROOT, "examples", "command.conf"),
                           "--program", program)
        installed = os.path.join(self.home, "bin", "provision-example.sh")
        self.assertEqual(read_bytes(installed), read_bytes(program))
        self.assertEqual(mode_of(installed), 0o755)
        self.assertIn("The check passed.", out)
        for bad in ("", os.path.join(self.tmp, NAME), os.path.join(self.tmp, "-x")):
            rc, out, err = self.run_install("--prefix", self.prefix, "--program", bad, NAME)
            self.assertEqual(rc, 2, bad)
        rc, out, err = self.run_install("--prefix", self.prefix, "--program",
                                        os.path.join(self.tmp, "missing.sh"), NAME)
        self.assertEqual(rc, 1)
        self.assertIn("missing.sh", err)

    def test_a_relative_prefix_starting_with_a_dash(self):
        cached_bytecode(os.path.join(self.tmp, "-p", NAME, "bin", NAME))
        self.install_ok("--prefix", "-p", NAME)
        self.assertEqual(mode_of(os.path.join(self.tmp, "-p", NAME, "bin", NAME)), 0o755)

    def test_the_final_check_looks_at_the_installed_home_only(self):
        # Regression: BXPROVIDER_HOME left exported from debugging made the final
        # `check` (and --version) look at another home.
        other = os.path.join(self.tmp, "elsewhere")
        self.env["BXPROVIDER_HOME"] = other
        self.env["BXPROVIDER_CONFIG"] = os.path.join(other, "etc", "x.conf")
        out = self.install()
        self.assertNotIn(other, out)
        self.assertIn("ok   home %s (" % self.home, out)

    def test_names_at_the_limits_are_accepted(self):
        for good in ("x" * 64, "a_B-9", "7"):
            cached_bytecode(os.path.join(self.prefix, good, "bin", good))
            self.install_ok("--prefix", self.prefix, good)
            self.assertEqual(mode_of(os.path.join(self.prefix, good, "bin", good)), 0o755)

    def test_help_and_unknown_options(self):
        for flag in ("-h", "--help"):
            rc, out, err = self.run_install(flag)
            self.assertEqual(rc, 0)
            for word in ("--prefix", "--config", "--program", "--force", "--uninstall",
                         "--purge", "--yes",
                         "--archive", "--python", "chown", "/opt/webdir/providers"):
                self.assertIn(word, out)
        rc, out, err = self.run_install("--prefix", self.prefix, "--bogus", NAME)
        self.assertEqual(rc, 2)
        self.assertIn("--bogus", err)
        rc, out, err = self.run_install("--prefix")
        self.assertEqual(rc, 2)

    def test_missing_provider_py_is_a_clear_error(self):
        lonely = os.path.join(self.tmp, "lonely")
        os.mkdir(lonely)
        shutil.copy(INSTALL_SH, lonely)
        rc, out, err = self.run_install("--prefix", self.prefix, NAME,
                                        installer=os.path.join(lonely, "install.sh"))
        self.assertEqual(rc, 1)
        self.assertIn("provider.py", err)
        self.assertFalse(os.path.exists(self.prefix))

    def test_python_option(self):
        rc, out, err = self.run_install("--prefix", self.prefix, "--python",
                                        os.path.join(self.tmp, "no-such-python"), NAME)
        self.assertEqual(rc, 1)
        self.assertIn("no-such-python", err)
        self.assertFalse(os.path.exists(self.prefix))
        self.install("--python", sys.executable)
        self.assertEqual(mode_of(self.script), 0o755)

    # ---------------------------------------------------------------- --archive

    def archive_members(self, path):
        with tarfile.open(path, "r:gz") as tar:
            members = tar.getmembers()
            files = {}
            for m in members:
                self.assertTrue(m.isfile(), m.name)
                files[m.name] = (m.mode, tar.extractfile(m).read())
        return [m.name for m in members], files

    def test_archive_holds_the_plugin_and_the_starting_config(self):
        name = "archtest%d" % os.getpid()
        out = self.install_ok("--archive", "out.tar.gz", name)
        self.assertFalse(os.path.exists(os.path.join("/opt/webdir/providers", name)),
                         "building an archive installs nothing")
        path = os.path.join(self.tmp, "out.tar.gz")
        names, files = self.archive_members(path)
        self.assertEqual(sorted(names), ["bin/" + name, "etc/%s.conf" % name])
        mode, script = files["bin/" + name]     # apart: a tuple's diff of 350 KB takes minutes
        self.assertEqual(mode, 0o755)
        self.assertTrue(script == read_bytes(SCRIPT), "bin/%s is not provider.py" % name)
        self.assertEqual(mode_of(path), 0o600, "the archive holds the config")
        self.assertIn("0600", out)
        mode, conf = files["etc/%s.conf" % name]
        self.assertEqual(mode, 0o600)
        config = json.loads(conf.decode("utf-8"))
        self.assertIs(config["enabled"], False)
        self.assertEqual(config["backend"]["type"], "manual")
        self.assertIn("bx-provider -a install --provider %s --archive" % name, out)

    def test_archive_with_config_extracts_into_an_empty_folder(self):
        src = self.write_json("my.conf", MANUAL_CONFIG)
        path = os.path.join(self.tmp, "x.tar.gz")
        program = os.path.join(ROOT, "examples", "provision-example.sh")
        self.install_ok("--config", src, "--program", program, "--archive", path, NAME)
        names, files = self.archive_members(path)
        self.assertEqual(files["etc/%s.conf" % NAME], (0o600, read_bytes(src)))
        self.assertEqual(files["bin/provision-example.sh"], (0o755, read_bytes(program)))

        extractors = [("tarfile", None)]
        if shutil.which("tar"):
            extractors.append(("tar", ["tar", "-xzf", path, "-C"]))
        for label, argv in extractors:
            target = os.path.join(self.tmp, "unpacked-" + label)
            os.mkdir(target)
            if argv is None:
                with tarfile.open(path, "r:gz") as tar:
                    kwargs = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
                    tar.extractall(target, **kwargs)
            else:
                subprocess.check_call(argv + [target])
            found = sorted(os.path.relpath(os.path.join(d, f), target)
                           for d, _, fs in os.walk(target) for f in fs)
            self.assertEqual(found, sorted(["bin/" + NAME, "bin/provision-example.sh",
                                            "etc/%s.conf" % NAME]), label)
            self.assertEqual(mode_of(os.path.join(target, "bin", NAME)), 0o755, label)
            self.assertEqual(mode_of(os.path.join(target, "etc", NAME + ".conf")), 0o600, label)
            # the unpacked plugin answers like an installed one, exec'd as the caller does
            cached_bytecode(os.path.join(target, "bin", NAME))
            answer = caller_parse(self.run_cmd([os.path.join(target, "bin", NAME), "configs"],
                                               decode=False)[1])
            self.assertEqual(answer["configurations"][0]["id"],
                             MANUAL_CONFIG["configurations"][0]["id"], label)

    def test_archive_carries_the_files_the_config_names_or_refuses_naming_each(self):
        config = json.loads(read_bytes(os.path.join(ROOT, "examples", "pool.conf")).decode())
        config["notify"] = ["bin/notify-mail.sh", "admin@example.com"]
        config["configurations"][0]["servers"].append(    # a file of the master's own
            {"server": "192.0.2.13", "password_file": "/root/pool-13.pw"})
        home = os.path.join(self.tmp, "src")              # laid out as the home will be
        os.makedirs(os.path.join(home, "etc"))
        src = os.path.join(home, "etc", "my.conf")
        with open(src, "w") as handle:
            json.dump(config, handle)
        self.write("src/etc/pool-192.0.2.11.pw", b"pw-11\n")
        path = os.path.join(self.tmp, "x.tar.gz")
        rc, out, err = self.run_install("--config", src, "--archive", path, NAME)
        self.assertEqual(rc, 1, (out, err))
        self.assertIn("etc/pool-192.0.2.12.pw (password_file), bin/notify-mail.sh (notify)", err)
        self.assertFalse(os.path.exists(path))
        os.symlink("/etc/hostname", os.path.join(home, "etc", "pool-192.0.2.12.pw"))
        rc, out, err = self.run_install("--config", src, "--archive", path, NAME)
        self.assertEqual(rc, 1, (out, err))         # a symlink is never followed into it
        self.assertIn("etc/pool-192.0.2.12.pw (password_file: not a regular file", err)
        os.unlink(os.path.join(home, "etc", "pool-192.0.2.12.pw"))
        self.write("src/etc/pool-192.0.2.12.pw", b"pw-12\n")
        os.mkdir(os.path.join(home, "bin"))
        shutil.copy(os.path.join(ROOT, "examples", "notify-mail.sh"), os.path.join(home, "bin"))
        out = self.install_ok("--config", src, "--archive", path, NAME)
        self.assertIn("Not in the archive: /root/pool-13.pw (password_file) is a path on the "
                      "master", out)
        names, files = self.archive_members(path)
        self.assertEqual(sorted(names), sorted(["bin/" + NAME, "etc/%s.conf" % NAME,
                                                "etc/pool-192.0.2.11.pw", "etc/pool-192.0.2.12.pw",
                                                "bin/notify-mail.sh"]))
        self.assertEqual(files["etc/pool-192.0.2.12.pw"], (0o600, b"pw-12\n"))
        self.assertEqual(files["bin/notify-mail.sh"][0], 0o700)

    def test_archive_never_writes_through_a_name_made_first(self):
        # Regression (issue 23, 1): FILE.tmpPID was opened plainly; whoever made those
        # names first (PIDs are sequential) owned the archive, or had it written where a
        # symlink pointed. Now nothing is made beside FILE but with O_EXCL.
        path = os.path.join(self.tmp, "out.tar.gz")
        victim = self.write("victim", b"not yours\n")
        with open("/proc/loadavg") as f:       # the last pid handed out
            last = int(f.read().split()[-1])
        planted = ["%s.tmp%d" % (path, pid) for pid in range(last, last + 5000)]
        for name in planted:
            os.symlink(victim, name)
        os.symlink(victim, path)               # FILE itself a link: replaced, not followed
        self.install_ok("--archive", path, NAME)
        self.assertEqual(read_bytes(victim), b"not yours\n")
        self.assertEqual(mode_of(victim), 0o644)
        st = os.lstat(path)
        self.assertTrue(stat.S_ISREG(st.st_mode))
        self.assertEqual((st.st_uid, mode_of(path)), (os.geteuid(), 0o600))
        self.assertEqual(len(self.archive_members(path)[0]), 2)
        self.assertTrue(all(os.path.islink(name) for name in planted))
        self.assertEqual(sorted(n for n in os.listdir(self.tmp) if n.startswith("out.tar.gz")
                                and not n.startswith("out.tar.gz.tmp")), ["out.tar.gz"])

    def test_archive_built_on_another_file_system_is_copied_in_with_a_new_name(self):
        stage_root = tempfile.mkdtemp(dir="/dev/shm") if os.path.isdir("/dev/shm") else None
        if stage_root is None or os.stat(stage_root).st_dev == os.stat(self.tmp).st_dev:
            self.skipTest("no second file system for the stage folder")
        self.addCleanup(shutil.rmtree, stage_root, True)
        self.env["TMPDIR"] = stage_root
        path = os.path.join(self.tmp, "x.tar.gz")
        self.install_ok("--archive", path, NAME)
        self.assertEqual((os.lstat(path).st_uid, mode_of(path)), (os.geteuid(), 0o600))
        self.assertEqual(len(self.archive_members(path)[0]), 2)
        self.assertEqual(sorted(os.listdir(self.tmp)), ["pybin", "x.tar.gz"])
        self.assertEqual(os.listdir(stage_root), [], "the stage folder is removed")

    def test_archive_into_a_folder_as_a_name_that_cannot_be_replaced_fails(self):
        path = os.path.join(self.tmp, "dir.tar.gz")
        os.mkdir(path)
        rc, out, err = self.run_install("--archive", path, NAME)
        self.assertEqual(rc, 1, out)
        self.assertIn("cannot write archive '%s'" % path, err)
        self.assertEqual(os.listdir(path), [])
        self.assertNotIn("Built", out)

    def test_archive_usage_errors(self):
        rc, out, err = self.run_install("--archive", "out.zip", NAME)
        self.assertEqual(rc, 2)
        self.assertIn(".tar.gz", err)
        rc, out, err = self.run_install("--archive", "out.tar.gz", "--uninstall", NAME)
        self.assertEqual(rc, 2)
        rc, out, err = self.run_install("--archive", "out.tar.gz", "--prefix", self.prefix, NAME)
        self.assertEqual(rc, 2)
        for data in (b"{", json.dumps(dict(MANUAL_CONFIG, backend={"type": "nope"})).encode()):
            src = self.write("bad.conf", data)
            rc, out, err = self.run_install("--archive", "out.tar.gz", "--config", src, NAME)
            self.assertEqual(rc, 1, data)
            self.assertIn(src, err)
            self.assertFalse(os.path.exists(os.path.join(self.tmp, "out.tar.gz")))
        self.assertIn("does not validate", err)
        self.assertIn("$.backend.type", err)


def _make_shell_cases():
    for index, (name, path) in enumerate(find_shells()):
        cls_name = "InstallUnder" + name.capitalize()
        cls = type(cls_name, (InstallTestsBase, unittest.TestCase), {"shell": path})
        if index:
            cls = unittest.skipUnless(
                ONE_INTERPRETER, "shell compatibility is tested by the python3 on PATH")(cls)
        globals()[cls_name] = cls


ONE_INTERPRETER = python3_on_path_is_this_one()


_make_shell_cases()

if __name__ == "__main__":
    unittest.main()
