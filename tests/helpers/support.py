# -*- coding: utf-8 -*-
"""Shared helpers for the tests: a provider home in a temp folder, the plugin
run as the caller runs it (cheaply: launch.py's compiled code and fork server)
or in-process (call_main, load_module), and the caller's own parsing rules."""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

HELPERS = os.path.dirname(os.path.abspath(__file__))            # tests/helpers
ROOT = os.path.dirname(os.path.dirname(HELPERS))                # the repository
SCRIPT = os.path.join(ROOT, "provider.py")
PYTHON = sys.executable

MANUAL_CONFIG = {
    "enabled": True,
    "backend": {"type": "manual"},
    "configurations": [
        {"id": "1", "descr": "Bitrix-env, 1 месяц, CentOS 7, 2 CPU, 2 ГБ RAM"},
        {"id": "big", "descr": "Bitrix-env, 8 CPU, 16 GB"},
    ],
}


class TestRoot(object):
    """The one temp folder of a test run, bxprov-run-PID-*, in the system temp
    folder: every temp file of the run (TMPDIR points here) and the shared
    compiled plugin. It holds "owner" (the runner's pid and start time); a
    later run removes the folder once that process is gone, unmounting any
    tmpfs a killed test left inside first."""

    PREFIX = "bxprov-run-"

    def __init__(self, path):
        self.path = path

    @classmethod
    def create(cls):
        base = tempfile.gettempdir()
        cls.sweep(base)
        path = tempfile.mkdtemp(prefix="%s%d-" % (cls.PREFIX, os.getpid()), dir=base)
        # others may pass through, not list it: a test that runs the plugin as nobody needs
        # that, and a test that set it only for its own time raced the tests beside it
        os.chmod(path, 0o711)
        with open(os.path.join(path, "owner"), "w") as handle:
            handle.write("%d %s\n" % (os.getpid(), process_start(os.getpid())))
        return cls(path)

    @classmethod
    def sweep(cls, base):
        """Remove the folders of runs whose runner is gone."""
        for name in os.listdir(base):
            path = os.path.join(base, name)
            if name.startswith(cls.PREFIX) and not cls(path).owner_alive():
                cls(path).remove()

    def owner_alive(self):
        try:
            with open(os.path.join(self.path, "owner")) as handle:
                pid, start = handle.read().split()
        except (IOError, OSError, ValueError):
            # no owner file (yet): young folders may be a run starting now
            try:
                return os.stat(self.path).st_mtime > __import__("time").time() - 60
            except OSError:
                return True
        return pid.isdigit() and process_start(int(pid)) == start

    def remove(self):
        stop_processes_in(self.path)
        for mount in reversed(mounts_under(self.path)):
            subprocess.call(["umount", "-l", mount], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
        shutil.rmtree(self.path, ignore_errors=True)


def process_start(pid):
    """The start time of a process (jiffies since boot, as text), '' when it is gone."""
    try:
        with open("/proc/%d/stat" % pid, "rb") as handle:
            return handle.read().rsplit(b")", 1)[1].split()[19].decode()
    except (IOError, OSError, IndexError):
        try:
            os.kill(pid, 0)
            return "?"                   # no /proc: alive is all we know
        except OSError:
            return ""


def stop_processes_in(path):
    """SIGKILL every process whose working folder is in path: the detached
    workers (their cwd is the home) a test left waiting (for SSH, a result
    save, a cleanup's next try) must not outlive the home."""
    import signal
    path = os.path.realpath(path)
    try:
        pids = [int(name) for name in os.listdir("/proc") if name.isdigit()]
    except OSError:
        return
    for pid in pids:
        try:
            cwd = os.readlink("/proc/%d/cwd" % pid)
        except OSError:
            continue
        if cwd.endswith(" (deleted)"):
            cwd = cwd[:-len(" (deleted)")]
        if (cwd == path or cwd.startswith(path + "/")) and pid != os.getpid():
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass


def mounts_under(path):
    try:
        with open("/proc/mounts", "rb") as handle:
            points = [line.split()[1].decode("unicode_escape") for line in handle]
    except (IOError, OSError, IndexError):
        return []
    path = os.path.realpath(path)
    return sorted(p for p in points if p == path or p.startswith(path + "/"))


def test_root():
    """This run's TestRoot: the runner's (BXPROVIDER_TEST_ROOT), or, when the
    tests run otherwise (unittest discover), one for this process, removed at exit."""
    given = os.environ.get("BXPROVIDER_TEST_ROOT")
    if given and os.path.isdir(given):
        return TestRoot(given)
    import atexit
    root = TestRoot.create()
    os.environ["TMPDIR"] = os.environ["BXPROVIDER_TEST_ROOT"] = root.path
    tempfile.tempdir = root.path
    creator = os.getpid()
    atexit.register(lambda: os.getpid() == creator and root.remove())   # not in a fork
    return root


RUN_ROOT = test_root()


# A home's bin/NAME is a plain copy of provider.py, but Home starts it without
# compiling it again (tests/helpers/launch.py): Home.command gives `python3 -S
# launch.py run CODE CLOCK bin/NAME ARGS` (the code compiled once per test
# run, kept in the run's folder, run as __main__ with argv[0] = bin/NAME, as
# `python3 bin/NAME` would: every path derives from argv[0]; -S skips site,
# which nothing of the plugin's needs), and Home.run asks the test process's
# fork server (Zygote) for a child that runs it so. A bin/NAME a test changed,
# Home(plain=True), and a run whose env sets what Python reads at start-up
# (LANG, LC_*, PYTHON*, TZ) start the file itself, the caller's way.
# Home.clock = PATH runs it on launch.py's virtual clock (retry waits recorded
# in PATH, not waited out).
LAUNCH = os.path.join(HELPERS, "launch.py")
STARTUP_ENV = ("LANG", "LC_", "PYTHON", "TZ")


class CompiledScript(object):
    """provider.py's source read once per test process, its code compiled once per run."""

    source = None
    path = None
    module = None          # provider.py imported (provider_module)

    @classmethod
    def prepare(cls):
        if cls.path is None:
            import hashlib
            import marshal
            with open(SCRIPT, "rb") as handle:
                source = handle.read()
            tag = "%s-%s" % (sys.implementation.cache_tag, hashlib.sha1(source).hexdigest())
            path = os.path.join(RUN_ROOT.path, "provider-%s.code" % tag)
            if not os.path.exists(path):
                temp = "%s.%d.tmp" % (path, os.getpid())
                with open(temp, "wb") as handle:
                    marshal.dump(compile(source, SCRIPT, "exec", dont_inherit=True), handle)
                os.rename(temp, path)
            cls.source, cls.path = source, path
        return cls


def umask():
    """This process's umask, read without setting it (threads may run calls at once)."""
    try:
        with open("/proc/self/status") as handle:
            for line in handle:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (IOError, OSError, ValueError):
        pass
    mask = os.umask(0o22)           # Linux before 4.7: no Umask line
    os.umask(mask)
    return mask


def python_folder():
    """A folder in the run's temp folder whose python3 is this interpreter: first
    on PATH, bin/NAME's sh header starts the Python under test."""
    folder = os.path.join(RUN_ROOT.path, "python-" + sys.implementation.cache_tag)
    if not os.path.isdir(folder):
        temp = "%s.%d" % (folder, os.getpid())
        os.mkdir(temp)
        os.symlink(PYTHON, os.path.join(temp, "python3"))
        try:
            os.rename(temp, folder)
        except OSError:             # another test process made it first
            shutil.rmtree(temp, ignore_errors=True)
    return folder


def load_module():
    """provider.py imported by path, as a new module (not run as __main__), from
    the code compiled once per run (CompiledScript)."""
    import marshal
    import types
    with open(CompiledScript.prepare().path, "rb") as handle:
        code = marshal.load(handle)
    module = types.ModuleType("provider_under_test")
    module.__file__ = SCRIPT
    exec(code, module.__dict__)
    return module


def provider_module():
    """provider.py imported once per test process, for call_main."""
    if CompiledScript.module is None:
        CompiledScript.module = load_module()
    return CompiledScript.module


def call_main(argv, script, stdin=b"", cwd=None, module=None):
    """main(argv, prog=script) of module (default: provider_module()) in this
    process, as `python3 script ARGV` with stdin bytes would run it from cwd,
    without BXPROVIDER_HOME/CONFIG; a Result."""
    import io
    saved = sys.stdout, sys.stderr, sys.stdin, os.getcwd()
    saved_env = dict((k, os.environ.pop(k)) for k in ("BXPROVIDER_HOME", "BXPROVIDER_CONFIG")
                     if k in os.environ)
    out = io.TextIOWrapper(io.BytesIO(), encoding="utf-8", errors="strict")
    err = io.TextIOWrapper(io.BytesIO(), encoding="utf-8", errors="backslashreplace")
    sys.stdout, sys.stderr = out, err
    sys.stdin = io.TextIOWrapper(io.BytesIO(stdin), encoding="utf-8")
    try:
        if cwd:
            os.chdir(cwd)
        try:
            code = (module or provider_module()).main(list(argv), prog=script)
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
    finally:
        sys.stdout, sys.stderr, sys.stdin = saved[:3]
        os.chdir(saved[3])
        os.environ.update(saved_env)
    out.flush()
    err.flush()
    return Result(code, out.buffer.getvalue(), err.buffer.getvalue())


class Result(object):
    def __init__(self, code, out, err):
        self.code = code
        self.out = out          # bytes
        self.err = err          # bytes

    @property
    def json(self):
        return caller_parse(self.out)

    @property
    def text(self):
        return self.out.decode("utf-8")

    def __repr__(self):
        return "Result(code=%r, out=%r, err=%r)" % (self.code, self.out[:2000], self.err[-2000:])


def caller_parse(out):
    """Parse stdout the way bx-provider does: the whole output is one JSON
    document; empty output is an error (docs/reference.md, "The protocol"; the
    caller's facts: the shared PROTOCOL.md, outside this repository). Raises
    AssertionError."""
    if not out.strip():
        raise AssertionError("empty stdout: the caller reports 'return empty string'")
    text = out.decode("utf-8")            # raw UTF-8, never another encoding
    decoder = json.JSONDecoder()
    value, end = decoder.raw_decode(text.lstrip())
    rest = text.lstrip()[end:]
    if rest.strip():
        raise AssertionError("more than one JSON document on stdout: %r" % text[:500])
    if not isinstance(value, dict):
        raise AssertionError("stdout is not a JSON object: %r" % text[:500])
    if not out.endswith(b"\n"):
        raise AssertionError("the JSON object is not followed by a newline")
    return value


PEOPLE = ("tasks", "task", "pool", "servers", "check", "state")


def error_message(result, action=None):
    """The error message of a failed call. A people's command (action's first
    word in PEOPLE, or stdout empty when action is None) prints nothing on
    stdout and its error as the last line on stderr; every other call prints
    exactly one JSON error object."""
    people = action.split()[0] in PEOPLE if action else not result.out.strip()
    if not people:
        answer = result.json
        if answer.get("error") != 1 or sorted(answer) != ["error", "error_message"]:
            raise AssertionError("not one JSON error object: %r" % (result,))
        return answer["error_message"]
    if result.out.strip():
        raise AssertionError("a people's command's error printed on stdout: %r" % (result,))
    lines = result.err.decode("utf-8").strip().splitlines()
    if not lines or " error N" not in lines[-1]:
        raise AssertionError("no error line on stderr: %r" % (result,))
    return lines[-1]


class Home(object):
    """A provider home in a temp folder: HOME/bin/provider, HOME/etc/provider.conf."""

    def __init__(self, config=MANUAL_CONFIG, name="provider", copy_script=True, plain=False):
        self.dir = tempfile.mkdtemp(prefix="bxprov-")
        self.name = name
        os.makedirs(os.path.join(self.dir, "bin"))
        os.makedirs(os.path.join(self.dir, "etc"))
        self.script = os.path.join(self.dir, "bin", name)
        self.copied = None                  # (size, mtimes, inode) of the copy made
        self.clock = None                   # a file: run on a virtual clock (launch.py)
        self.in_process = False             # run: main() in this process (call_main)
        self.plain = plain                  # run: exec bin/NAME itself, as the caller does
        if copy_script:
            self.copy_script(plain)
        self.config_path = os.path.join(self.dir, "etc", name + ".conf")
        self.state_path = os.path.join(self.dir, "var", name + ".state.json")
        self.backup_path = self.state_path + ".bak"
        self.lock_path = os.path.join(self.dir, "var", name + ".lock")
        self.log_path = os.path.join(self.dir, "log", name + ".log")
        self.tasks_dir = os.path.join(self.dir, "tasks")
        if config is not None:
            self.write_config(config)

    def copy_script(self, plain=False):
        compiled = CompiledScript.prepare()
        with open(self.script, "wb") as handle:
            handle.write(compiled.source)
        os.chmod(self.script, 0o755)
        if not plain:
            self.copied = self.stamp()

    def stamp(self):
        try:
            info = os.stat(self.script)
        except OSError:
            return None
        return info.st_size, info.st_mtime_ns, info.st_ctime_ns, info.st_ino

    def command(self, args):
        """The argv that runs bin/NAME ARGS: the shared compiled code while bin/NAME
        is still the copy made; plain, bin/NAME itself (its sh header finds this
        interpreter first on PATH: see env); else `python3 bin/NAME`."""
        if self.copied is not None and self.stamp() == self.copied:
            return [PYTHON, "-S", LAUNCH, "run", CompiledScript.path, self.clock or "",
                    self.script] + list(args)
        if self.plain:
            return [self.script] + list(args)
        return [PYTHON, self.script] + list(args)

    def sleeps(self):
        """The waits the programs run with the virtual clock asked for, in order."""
        try:
            with open(self.clock) as handle:
                return [float(line) for line in handle]
        except (IOError, OSError, TypeError):
            return []

    def write_config(self, config):
        data = config if isinstance(config, (bytes, str)) else json.dumps(
            config, ensure_ascii=False, indent=2)
        if isinstance(data, str):
            data = data.encode("utf-8")
        with open(self.config_path, "wb") as handle:
            handle.write(data)
        os.chmod(self.config_path, 0o600)

    def env(self, extra=None):
        env = dict(os.environ)
        for key in ("BXPROVIDER_HOME", "BXPROVIDER_CONFIG"):
            env.pop(key, None)
        # never the real ~/.ssh/known_hosts of whoever runs the tests
        env["BXPROVIDER_KNOWN_HOSTS"] = os.path.join(self.dir, "known_hosts")
        if self.plain and "PATH" not in (extra or {}):
            env["PATH"] = python_folder() + os.pathsep + env.get("PATH", "")
        env.update(extra or {})
        return env

    def run(self, *args, **kwargs):
        """Run HOME/bin/NAME ARGS with this interpreter; returns a Result. With
        in_process set, no env of its own and bin/NAME still the copy made,
        main() runs in this process instead."""
        stdin = kwargs.pop("stdin", None)
        if isinstance(stdin, str):
            stdin = stdin.encode("utf-8")
        if self.in_process and "env" not in kwargs and self.stamp() == self.copied:
            return call_main(args, self.script, stdin or b"", self.dir)
        extra = kwargs.pop("env", None) or {}
        env = self.env(extra)
        timeout = kwargs.pop("timeout", 60)
        if Zygote.serves(self, args, extra):
            return Zygote.get().run(self, args, env, stdin or b"", timeout)
        proc = subprocess.Popen(self.command(args), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, env=env, cwd=self.dir)
        out, err = proc.communicate(stdin or b"", timeout=timeout)
        return Result(proc.returncode, out, err)

    def ok(self, *args, **kwargs):
        """Run a protocol call that must succeed; returns the parsed object."""
        result = self.run(*args, **kwargs)
        answer = result.json
        if "error" in answer or result.code != 0:
            raise AssertionError("%s failed: %r" % (" ".join(args), result))
        return answer

    def state(self):
        with open(self.state_path, "rb") as handle:
            return json.loads(handle.read().decode("utf-8"))

    def new_state(self, installation="0123456789abcdef0123456789abcdef"):
        """Write an empty state with this installation id (the plugin makes a random one
        at its first write), so that a test knows the owner tag before the first order;
        returns the state."""
        state = {"schema": 2, "provider": os.path.basename(self.script), "next_id": 1,
                 "tasks": {}, "archived_max_id": 0, "installation": installation}
        os.makedirs(os.path.dirname(self.state_path), 0o700, exist_ok=True)
        with open(self.state_path, "w") as handle:
            json.dump(state, handle)
        os.chmod(self.state_path, 0o600)
        return state

    def read(self, path):
        with open(path, "rb") as handle:
            return handle.read()

    def caller_marks(self, task_id, text=""):
        """What bx-provider does after a successful order: tasks/<id>."""
        if not os.path.isdir(self.tasks_dir):
            os.makedirs(self.tasks_dir, 0o770)
        with open(os.path.join(self.tasks_dir, str(task_id)), "w") as handle:
            handle.write(text)

    def cleanup(self):
        stop_processes_in(self.dir)
        shutil.rmtree(self.dir, ignore_errors=True)


class Zygote(object):
    """The fork server of this test process (tests/helpers/launch.py serve): a run is a
    fork of a process that has the plugin's code and imports loaded, instead
    of a new interpreter. BXPROVIDER_TEST_FORK=0 turns it off."""

    current = None

    @classmethod
    def serves(cls, home, args, extra):
        return (os.environ.get("BXPROVIDER_TEST_FORK", "1") != "0"
                and home.copied is not None and home.stamp() == home.copied
                and all(isinstance(arg, str) for arg in args)
                and not any(key.startswith(STARTUP_ENV) for key in extra))

    @classmethod
    def get(cls):
        server = cls.current
        if server is None or server.owner != os.getpid() or server.proc.poll() is not None:
            cls.current = server = cls()
        return server

    def __init__(self):
        import atexit
        self.owner = os.getpid()
        self.path = os.path.join(RUN_ROOT.path, "fork-%d-%d.sock" % (os.getpid(), id(self)))
        self.proc = subprocess.Popen([PYTHON, "-S", LAUNCH, "serve", CompiledScript.prepare().path,
                                      self.path], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        if self.proc.stdout.readline() != b"ready\n":
            raise AssertionError("the fork server did not start")
        atexit.register(self.stop)

    def stop(self):
        if self.proc.poll() is None and self.owner == os.getpid():
            self.proc.stdin.close()
            self.proc.wait()

    def run(self, home, args, env, stdin, timeout):
        """Run bin/NAME ARGS in a child of the server; a Result."""
        import socket
        conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        pipes = [os.pipe() for _ in range(3)]
        try:
            conn.connect(self.path)
            self.send(conn, {"args": list(args), "env": env, "cwd": home.dir, "umask": umask(),
                             "clock": home.clock or "", "script": home.script},
                      [pipes[0][0], pipes[1][1], pipes[2][1]])
        finally:
            for fd in (pipes[0][0], pipes[1][1], pipes[2][1]):
                os.close(fd)
        replies = conn.makefile("rb")
        try:
            pid = int(replies.readline())
            out, err = exchange(pipes[0][1], pipes[1][0], pipes[2][0], stdin, timeout, pid)
            status = replies.readline()
        finally:
            replies.close()
            conn.close()
        if not status:
            raise AssertionError("the fork server lost the run of %r" % (args,))
        return Result(int(status), out, err)

    @staticmethod
    def send(conn, request, fds):
        import array
        import socket
        import struct
        body = json.dumps(request).encode("utf-8")
        conn.sendmsg([struct.pack("!I", len(body))],
                     [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds))])
        conn.sendall(body)


def exchange(stdin_fd, out_fd, err_fd, data, timeout, pid):
    """Write data to stdin_fd and read out_fd and err_fd to their end, as
    Popen.communicate does; kills pid and raises TimeoutExpired after timeout."""
    import selectors
    import time
    deadline = time.time() + timeout
    chunks = {out_fd: [], err_fd: []}
    selector = selectors.DefaultSelector()
    os.set_blocking(stdin_fd, False)
    try:
        if data:
            selector.register(stdin_fd, selectors.EVENT_WRITE)
        else:
            os.close(stdin_fd)
            stdin_fd = None
        for fd in chunks:
            selector.register(fd, selectors.EVENT_READ)
        while selector.get_map():
            left = deadline - time.time()
            if left <= 0:
                os.kill(pid, 9)
                raise subprocess.TimeoutExpired("bin/NAME", timeout)
            for key, _ in selector.select(left):
                if key.fd == stdin_fd:
                    try:
                        data = data[os.write(stdin_fd, data[:65536]):]
                    except BrokenPipeError:
                        data = b""
                    if not data:
                        selector.unregister(stdin_fd)
                        os.close(stdin_fd)
                        stdin_fd = None
                    continue
                chunk = os.read(key.fd, 65536)
                if chunk:
                    chunks[key.fd].append(chunk)
                else:
                    selector.unregister(key.fd)
    finally:
        selector.close()
        for fd in [stdin_fd, out_fd, err_fd]:
            if fd is not None:
                os.close(fd)
    return b"".join(chunks[out_fd]), b"".join(chunks[err_fd])


class HomeTestCase(unittest.TestCase):
    """A fresh home per test, removed afterwards. in_process = True: its runs
    call main() in the test process (state, config, archive, admin logic)."""

    config = MANUAL_CONFIG
    in_process = False
    plain = False          # True: every run starts `python3 bin/NAME` itself (no fork server)

    def setUp(self):
        self.home = Home(self.config, plain=self.plain)
        self.home.in_process = self.in_process
        self.addCleanup(self.home.cleanup)

    def assertError(self, result, code, action=None, exit_code=1):
        """The error of a call: one JSON error object on stdout for the caller's
        options (and --json), text on stderr for people's commands (PEOPLE)."""
        message = error_message(result, action)
        self.assertIn(" error N%d, " % code, message, result)
        if action:
            self.assertTrue(message.startswith(action + " error N"), result)
        self.assertEqual(result.code, exit_code, result)
        self.assertNotIn(b"Traceback", result.err)
        return message


class SSHBanner(object):
    """A TCP listener on loopback addresses that answers like sshd:
    "SSH-2.0-..." and closes. It listens on 127.0.0.1 and on every address
    in `also` (all of 127/8 is loopback on Linux), all on the same port.
    silent=True accepts connections but says nothing (a host whose sshd
    hangs); the attribute may be flipped while it runs."""

    BANNER = b"SSH-2.0-OpenSSH_8.0 test\r\n"
    ALSO = ["127.0.0.%d" % n for n in range(2, 9)] + ["127.0.1.%d" % n for n in range(1, 4)]

    def __init__(self, silent=False, also=None):
        self.silent = silent
        self.also = self.ALSO if also is None else also
        self.port = None
        self._socks = []
        self._threads = []
        self._held = []

    def start(self):
        import socket
        for _ in range(20):
            try:
                self._listen_all(socket)
                break
            except OSError:
                self._close_listeners()      # the port is taken on another address
        else:
            raise AssertionError("no free port for the SSH banner")
        import threading
        for sock in self._socks:
            thread = threading.Thread(target=self._serve, args=(sock,))
            thread.daemon = True
            thread.start()
            self._threads.append(thread)
        return self

    def _listen_all(self, socket):
        port = 0
        for address in ["127.0.0.1"] + list(self.also):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            self._socks.append(sock)
            sock.bind((address, port))
            sock.listen(64)
            port = sock.getsockname()[1]
        self.port = port

    def _serve(self, sock):
        while True:
            try:
                conn, _ = sock.accept()
            except OSError:
                return                       # stop() closed the socket
            if self.silent:
                self._held.append(conn)      # say nothing; the client times out
                continue
            try:
                conn.sendall(self.BANNER)
            except OSError:
                pass
            conn.close()

    def _close_listeners(self):
        import socket
        for sock in self._socks:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()
        self._socks = []

    def stop(self):
        self._close_listeners()
        for conn in self._held:
            conn.close()
        for thread in self._threads:
            thread.join(5)
        self._threads = []


def wait_for(condition, timeout=20.0, what="the condition"):
    """Poll condition() until it returns something true; its value. Fails after timeout."""
    import time
    deadline = time.time() + timeout
    delay = 0.02
    while True:
        value = condition()
        if value:
            return value
        if time.time() > deadline:
            raise AssertionError("timed out waiting for %s" % what)
        time.sleep(delay)
        delay = min(delay * 1.5, 0.2)


def free_port():
    """A local TCP port where nobody listens now (connections are refused)."""
    import socket
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return port


HELD_PORTS = []         # closed_port's sockets: bound, never listening, for the process's life


def closed_port():
    """A local TCP port where nobody listens, now or later in the run: a socket of this
    process keeps it bound without listening. A connection is refused, and the kernel
    never hands the port to a bind to port 0 elsewhere, so no test beside this one (the
    runner starts several at once) can begin to listen there meanwhile."""
    import socket
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    HELD_PORTS.append(sock)
    return sock.getsockname()[1]


def pid_alive(pid):
    """True while pid runs; a zombie (nobody reaped it yet) counts as gone."""
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    try:
        with open("/proc/%d/stat" % pid, "rb") as handle:
            return handle.read().rsplit(b")", 1)[1].split()[0] != b"Z"
    except (IOError, OSError, IndexError):
        return True
