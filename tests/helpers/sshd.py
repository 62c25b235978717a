# -*- coding: utf-8 -*-
"""A real sshd on 127.0.0.1 for the first-contact tests, and a stand-in for the
caller's `ssh_keycopy` expect script driven through a pty against the real
`ssh` client.

    server = SSHD().start()          # its own host key, a free port, key login only
    code = ssh_keycopy(server, known_hosts)   # 0 = KEY_INSTALLED, else expect's exit code
    server.stop()

The server logs in the user running the tests with a key made for it (the
stand-in's stand-in for the caller's pool key), so no password is set
anywhere; its remote command only prints KEY_INSTALLED: nothing of the real
~/.ssh is read or written (the client reads -F /dev/null and the known_hosts
file it is given). The host-key rules the caller depends on are the same for a
key login and for a password login.
"""

import os
import shutil
import socket
import subprocess
import tempfile
import time

from .support import free_port

SSHD_PATH = "/usr/sbin/sshd"


def have_openssh():
    return os.path.exists(SSHD_PATH) and bool(shutil.which("ssh")) \
        and bool(shutil.which("ssh-keygen")) and bool(shutil.which("ssh-keyscan"))


def keygen(path, kind="ed25519"):
    subprocess.check_call(["ssh-keygen", "-q", "-t", kind, "-N", "", "-C", "", "-f", path],
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    with open(path + ".pub") as handle:
        return " ".join(handle.read().split()[:2])


class SSHD(object):
    """sshd -D on 127.0.0.1:port with a private config, host key and client key."""

    def __init__(self, host_key_file=None, port=None):
        self.dir = tempfile.mkdtemp(prefix="bxsshd-")
        self.host_key_file = host_key_file      # a private key given (cloud-init's part)
        self.port = port
        self.proc = None
        self.user = None
        self.host_key = None        # "ssh-ed25519 AAAA..." the server shows
        self.client_key = os.path.join(self.dir, "client")

    def start(self):
        import pwd
        self.user = pwd.getpwuid(os.geteuid()).pw_name
        host = self.host_key_file or os.path.join(self.dir, "host_ed25519")
        if self.host_key_file:
            self.host_key = " ".join(subprocess.check_output(
                ["ssh-keygen", "-y", "-f", host]).decode().split()[:2])
        else:
            self.host_key = keygen(host)
        authorized = os.path.join(self.dir, "authorized_keys")
        if not os.path.exists(authorized):      # (start() again: the same client key)
            with open(authorized, "w") as handle:
                handle.write(keygen(self.client_key) + "\n")
        if os.geteuid() == 0 and not os.path.isdir("/run/sshd"):
            os.mkdir("/run/sshd", 0o755)          # Debian's privilege separation folder
        config = os.path.join(self.dir, "sshd_config")
        with open(config, "w") as handle:
            handle.write("\n".join([
                "ListenAddress 127.0.0.1", "HostKey " + host, "PidFile none",
                "AuthorizedKeysFile " + authorized, "StrictModes no", "UsePAM no",
                "PasswordAuthentication no", "KbdInteractiveAuthentication no",
                "PermitRootLogin prohibit-password", "AllowUsers " + self.user,
                "LogLevel ERROR", ""]))
        fixed = self.port
        for _ in range(5):
            self.port = fixed or free_port()
            self.proc = subprocess.Popen([SSHD_PATH, "-D", "-e", "-f", config, "-p", str(self.port)],
                                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                         stderr=subprocess.PIPE)
            if self.wait_ready():
                return self
            self.stop_process()
        raise AssertionError("sshd did not start")

    def wait_ready(self):
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and self.proc.poll() is None:
            try:
                conn = socket.create_connection(("127.0.0.1", self.port), timeout=2)
                try:
                    if conn.recv(64).startswith(b"SSH-"):
                        return True
                finally:
                    conn.close()
            except OSError:
                time.sleep(0.02)
        return False

    def stop_process(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)
        if self.proc is not None:
            self.proc.stderr.close()
        self.proc = None

    def stop(self):
        self.stop_process()
        shutil.rmtree(self.dir, ignore_errors=True)


# ssh_keycopy's expect patterns, in its order, and its exit codes (the caller's facts: the
# shared PROTOCOL.md, outside this repository; docs/first-contact.md tells why they matter)
PATTERNS = ((b"(yes/no)? ", "yes"), (b"assword has expired", 101), (b"assword:", "password"),
            (b" UNIX password:", 103), (b"Permission denied", 104), (b"No route to host", 105),
            (b"not resolve hostname", 106), (b"KEY_INSTALLED", 0))
NEW_PROMPT = b"(yes/no/[fingerprint])? "


def ssh_keycopy(server, known_hosts, address="127.0.0.1", password="", timeout=15):
    """Run what the caller's ssh_keycopy runs, the way it does: ssh in a pty,
    answering only the patterns above. Returns its exit code. One shortcut:
    OpenSSH 8.0+'s prompt matches no pattern, so the real script waits its
    15 s and exits 100; this stand-in exits 100 as soon as it sees that prompt."""
    import pty
    argv = ["ssh", "-F", "/dev/null", "-p", str(server.port), "-l", server.user,
            "-i", server.client_key, "-o", "IdentitiesOnly=yes",
            "-o", "UserKnownHostsFile=" + known_hosts, "-o", "GlobalKnownHostsFile=/dev/null",
            address, "echo KEY_INSTALLED"]
    pid, fd = pty.fork()
    if pid == 0:
        try:
            os.execvp(argv[0], argv)
        finally:
            os._exit(127)
    seen, answered = b"", set()
    deadline = time.monotonic() + timeout
    code = 100
    try:
        code = _expect(fd, seen, answered, deadline, password)
    finally:
        os.close(fd)
        try:
            os.kill(pid, 9)
        except OSError:
            pass
        os.waitpid(pid, 0)
    return code


def _expect(fd, seen, answered, deadline, password):
    import select
    while True:
        for pattern, action in PATTERNS:
            if pattern in seen and pattern not in answered:
                if isinstance(action, int):
                    return action
                answered.add(pattern)
                os.write(fd, (("yes" if action == "yes" else password) + "\n").encode())
                seen = seen.replace(pattern, b"")
        if NEW_PROMPT in seen:
            return 100
        left = deadline - time.monotonic()
        if left <= 0:
            return 100
        ready, _, _ = select.select([fd], [], [], left)
        if not ready:
            return 100
        try:
            chunk = os.read(fd, 4096)
        except OSError:           # EIO: the child closed the pty
            chunk = b""
        if not chunk:
            return 102
        seen += chunk


def fingerprint(key):
    """"SHA256:..." of a "TYPE BASE64" key, by ssh-keygen -l."""
    out = subprocess.check_output(["ssh-keygen", "-l", "-f", "-"], input=(key + "\n").encode())
    return out.split()[1].decode()
