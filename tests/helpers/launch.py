# -*- coding: utf-8 -*-
"""Cheap starts of the plugin for the tests (support.Home): not a test module.

    python3 -S tests/helpers/launch.py run CODE CLOCK SCRIPT ARGS...
        runs the code object in the file CODE (provider.py compiled once per
        test run) as __main__ with sys.argv = [SCRIPT] + ARGS, as
        `python3 SCRIPT ARGS` would run a copy of provider.py at SCRIPT;
        CLOCK, when not empty, is the virtual clock's record (below).

    python3 -S tests/helpers/launch.py serve CODE SOCKET
        a fork server for one test process: it imports what the plugin's
        calls import and runs the plugin's top level once, then for each
        request on the unix SOCKET forks a child that runs its main() as
        `run` would run the code, with the request's argv, env, cwd,
        umask and the three stdio fds sent along (SCM_RIGHTS). It answers the
        child's pid, then its exit status (negative: the signal). It ends
        when its stdin (a pipe from the test process) closes.

The virtual clock: the plugin's own time.sleep(s) for s >= 0.1 (a retry's
backoff) returns at once, appends s to the record and moves time.time() on
by s, so a retry schedule runs as it would without the waiting and the test
asserts it. Shorter sleeps poll for an event (the lock freed, a child gone)
and stay real, as do the standard library's own. A detached worker the plugin
starts (`NAME _worker ID`, a fork of the plugin's process) keeps the clock:
its waits go to the same record.
"""

import os
import sys

# What the plugin imports inside its functions: the fork server has them loaded.
PRELOAD = ("argparse", "base64", "errno", "fcntl", "hashlib", "hmac", "http.client",
           "json", "random", "re", "secrets", "selectors", "shlex", "shutil", "signal",
           "socket", "ssl", "stat", "subprocess", "tempfile", "textwrap", "traceback",
           "urllib.error", "urllib.parse", "urllib.request", "email.utils", "datetime",
           "ipaddress", "struct", "zlib", "threading")


def virtual_clock(record):
    import time
    real_time, real_sleep, ahead = time.time, time.sleep, [0.0]

    def sleep(seconds):
        if seconds < 0.1 or sys._getframe(1).f_globals.get("__name__") != "__main__":
            return real_sleep(seconds)
        with open(record, "a") as handle:
            handle.write("%r\n" % float(seconds))
        ahead[0] += seconds
    time.sleep, time.time = sleep, lambda: real_time() + ahead[0]


def load(path):
    import marshal
    with open(path, "rb") as handle:
        return marshal.load(handle)


def start(code, clock, script, args):
    """Run the plugin's code as the __main__ of `python3 SCRIPT ARGS`. code may
    be the fork server's module, whose top level ran already (defined)."""
    import types
    sys.argv = [script] + list(args)
    sys.path[0] = os.path.dirname(script)
    if clock:
        virtual_clock(clock)
    ran = isinstance(code, types.ModuleType)
    module = code if ran else types.ModuleType("__main__")
    module.__name__ = "__main__"
    module.__file__ = script
    module.__builtins__ = __builtins__
    sys.modules["__main__"] = module
    if ran:
        sys.exit(module.main())         # what the plugin's last line does as __main__
    exec(code, module.__dict__)


def defined(code):
    """The plugin's module with its top level run, under another name than
    __main__ (so not main() yet). Its top level only defines: it reads nothing
    of the environment, the clock or argv, so a fork of it can run main() for
    any call."""
    import types
    module = types.ModuleType("provider_defined")
    module.__builtins__ = __builtins__
    exec(code, module.__dict__)
    return module


# ---------------------------------------------------------------------------
# The fork server
# ---------------------------------------------------------------------------

def receive(conn):
    """One request: (its JSON object, the three stdio fds)."""
    import array
    import json
    import socket
    import struct
    fds = array.array("i")
    data, ancillary, _, _ = conn.recvmsg(4, socket.CMSG_SPACE(3 * fds.itemsize))
    for level, kind, payload in ancillary:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds.frombytes(payload[:len(payload) - len(payload) % fds.itemsize])
    while len(data) < 4:
        data += conn.recv(4 - len(data))
    size = struct.unpack("!I", data)[0]
    body = b""
    while len(body) < size:
        chunk = conn.recv(size - len(body))
        if not chunk:
            raise EOFError("the request was cut short")
        body += chunk
    return json.loads(body.decode("utf-8")), list(fds)


def child(request, fds, code, closing):
    """In the forked child: become the plugin's process and run it; never returns."""
    import signal
    status = 1
    try:
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        for item in closing:
            os.close(item) if isinstance(item, int) else item.close()
        for number, fd in enumerate(fds):
            os.dup2(fd, number)
        for fd in set(fds):
            if fd > 2:
                os.close(fd)
        os.chdir(request["cwd"])
        os.umask(request["umask"])
        os.environ.clear()
        os.environ.update(request["env"])
        try:
            start(code, request["clock"], request["script"], request["args"])
            status = 0
        except SystemExit as exc:
            status = exit_status(exc.code)
        except BaseException:
            import traceback
            traceback.print_exc()
        import atexit
        atexit._run_exitfuncs()
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except Exception:  # noqa: the reader went away, as in a real exit
                pass
    finally:
        os._exit(status)


def exit_status(value):
    if value is None:
        return 0
    if isinstance(value, int):
        return value & 0xff
    sys.stderr.write("%s\n" % (value,))
    return 1


def serve(code_path, socket_path):
    import select
    import signal
    import socket
    for name in PRELOAD:
        try:
            __import__(name)
        except ImportError:
            pass
    code = defined(load(code_path))
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(socket_path)
    listener.listen(64)
    wake_read, wake_write = os.pipe()
    os.set_blocking(wake_write, False)
    signal.set_wakeup_fd(wake_write)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    running = {}                               # pid -> the connection that asked
    os.write(1, b"ready\n")
    while True:
        ready = select.select([listener, wake_read, 0], [], [])[0]
        if 0 in ready and not os.read(0, 512):
            return                             # the test process is gone
        if wake_read in ready:
            os.read(wake_read, 512)
            reap(running)
        if listener in ready:
            conn = listener.accept()[0]
            try:
                request, fds = receive(conn)
            except (OSError, EOFError, ValueError):
                conn.close()
                continue
            pid = os.fork()
            if pid == 0:
                child(request, fds, code,
                      [listener, conn, wake_read, wake_write] + list(running.values()))
            for fd in fds:
                os.close(fd)
            conn.sendall(b"%d\n" % pid)
            running[pid] = conn


def reap(running):
    while running:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        conn = running.pop(pid, None)
        if conn is None:
            continue
        code = -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)
        try:
            conn.sendall(b"%d\n" % code)
        except OSError:
            pass
        conn.close()


def die_with_parent():
    """Linux: SIGKILL when the test process dies, even by SIGKILL."""
    try:
        import ctypes
        ctypes.CDLL(None).prctl(1, 9)          # PR_SET_PDEATHSIG, SIGKILL
    except (OSError, AttributeError, ImportError):
        pass


if __name__ == "__main__":
    if sys.argv[1] == "run":
        start(load(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5:])
    elif sys.argv[1] == "serve":
        die_with_parent()
        serve(sys.argv[2], sys.argv[3])
