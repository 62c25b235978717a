#!/bin/sh
# -*- coding: utf-8 -*-
# The file, top to bottom: this sh header and Python's boot (the string _sh); the core
# (constants and errors, paths, the audit log, the state store, the config, servers and first
# contact, the backends manual, pool and command, tasks, the provider, the protocol and
# people's handlers, the command table, main); then, after the line "# >>> the cloud
# section", the cloud layer and the cloud backends, and the __main__ guard.
# Why this header: the file is a POSIX sh script and a Python program at once. Python
# compiles a script it runs on every start (~80 ms here) and caches bytecode only for the
# modules it imports. So when the file runs as a program (bin/NAME), sh reads these lines:
# it finds Python 3.6+ and starts it isolated (-I; -S: no site-packages) with a short -c
# line (so ps shows `python3 -I -S -c <one short line> .../bin/NAME order_status 7`) that
# runs the boot between the two #boot lines: it runs the core from bytecode cached in
# __pycache__/ beside the file, hands the core one callable that runs the cloud tail (only
# when a config names a cloud backend), calls main() and exits without the interpreter's
# teardown once the answer is out. Each part is cached apart (NAME.core.TAG.pyc,
# NAME.cloud.TAG.pyc), keyed by the Python, the part and the file's size, mtime, inode and
# ctime (any write moves ctime on: a cache hit reads only this header), and used
# only when the cache folder and file belong to the file's owner or root and nobody else can
# write them. To Python all this is the string _sh: `python3 provider.py ...` runs the whole
# file as usual. docs/performance.md says more.
_sh=r""":"
boot='import sys;f=open(sys.argv[1],"rb");exec(f.read(16384).split(b"\n#boot\n")[1])'
: '
#boot
import os, sys
if sys.version_info < (3, 6):       # too old: back to sh, which tries the next Python
    os.environ["BXPROVIDER_PYTHON_WHY"] = os.environ.get("BXPROVIDER_PYTHON_WHY", "") + (
        "%s: Python %d.%d; " % ((os.environ.get("BXPROVIDER_PYTHON_TRIED") or "?").split()[-1],
                                sys.version_info[0], sys.version_info[1]))
    os.execv("/bin/sh", ["/bin/sh"] + sys.argv[1:])
os.environ.pop("BXPROVIDER_PYTHON_TRIED", None)
os.environ.pop("BXPROVIDER_PYTHON_WHY", None)
os.umask(os.umask(0o22) | 0o22)     # nothing written or cached is group/other-writable
del sys.argv[0]                     # "-c": argv[0] is the script as invoked, as usual
path = os.path.realpath(sys.argv[0])
import marshal
st = os.fstat(f.fileno())           # f: this file, opened by the -c line
owner = st.st_uid
folder = os.path.join(os.path.dirname(path), "__pycache__")
def trusted(name):                  # missing, or nobody but the owner and root can write it
    try:
        st = os.lstat(name)
    except FileNotFoundError:
        return True
    except OSError:
        return False
    return st.st_uid in (owner, 0) and not st.st_mode & 0o22
# A cache file is made from this very file: its size, mtime, inode and ctime (which every
# write and chmod moves on, and nobody can set back), so a hit needs no read of the file.
file_key = b"%d %d %d %d" % (st.st_size, st.st_mtime_ns, st.st_ino, st.st_ctime_ns)
# The core is the file up to the line "# >>> the cloud section"; the tail after it runs only
# when a config names a cloud backend. Blank lines before the tail keep its line numbers.
def text(part):                     # read only when a part is compiled
    f.seek(0)
    source = f.read()
    split = source.find(b"\n# >>> the cloud section") + 1 or len(source)
    if part == "core":
        return source[:split]
    return b"\n" * source.count(b"\n", 0, split) + source[split:]
def compiled(part):                 # the code of a part, cached in folder when that is safe
    pyc = os.path.join(folder, ".".join((os.path.basename(path), part,
                                         sys.implementation.cache_tag, "pyc")))
    key = b"%s %s %s\0" % (sys.version.encode(), part.encode(), file_key)
    if not (trusted(folder) and trusted(pyc)):
        return compile(text(part), path, "exec")    # others could write the cache
    try:
        with open(pyc, "rb") as cached:
            data = cached.read()
        if data.startswith(key):    # made from this very file, by this very Python
            return marshal.loads(data[len(key):])
    except (OSError, ValueError, EOFError, TypeError):
        pass
    code = compile(text(part), path, "exec")
    temp = "%s.%d.tmp" % (pyc, os.getpid())
    try:                            # a new file of its own (never through a planted name),
        if not os.path.isdir(folder):   # then renamed into place: readers see whole files
            os.mkdir(folder)
        with open(temp, "xb") as out:
            out.write(key + marshal.dumps(code))
        os.replace(temp, pyc)
    except OSError:                 # a read-only bin/, say: no cache
        try:
            os.unlink(temp)
        except OSError:
            pass
    return code
module = type(sys)("provider")
module.__file__ = path
sys.modules["provider"] = module
exec(compiled("core"), module.__dict__)
module.CLOUD_SECTION.append(lambda: exec(compiled("cloud"), module.__dict__))
status = module.main()
try:                                # the answer is out: exit now, without the teardown that
    sys.stdout.flush()              # frees every object one by one (about 3 ms)
    sys.stderr.flush()
finally:
    os._exit(status)
#boot
'
# A candidate runs only when it is an executable file ([ -x ] also says no on a noexec
# mount), and its exec is the last step. An exec that fails all the same (a broken install,
# a missing loader) does not end the search: bash returns from it (execfail), dash runs the
# EXIT trap, which starts sh again with the candidate and its reason noted. With no Python
# left, the one JSON answer says what was tried, and why each one found was not used.
tried=${BXPROVIDER_PYTHON_TRIED-} why=${BXPROVIDER_PYTHON_WHY-} path=
case $why in *[!A-Za-z0-9/._+:\;\ \(\)-]*) why= ;; esac
note() {                            # note PATH REASON: one reason, JSON- and terminal-safe
    case $1 in *[!A-Za-z0-9/._+-]*) set -- "(a path with other characters)" "$2" ;; esac
    why="$why$1: $2; "
}
usable() {                          # usable FILE: path=FILE when it can be run, else noted
    [ -e "$1" ] || [ -L "$1" ] || return 1
    if [ -f "$1" ] && [ -x "$1" ]; then path=$1; return 0; fi
    note "$1" "not an executable file (its mode, or a noexec mount)"
    return 1
}
[ -z "${BASH_VERSION-}" ] || shopt -s execfail
trap 'note "$path" "cannot be run (exit status $?)"; BXPROVIDER_PYTHON_WHY=$why
export BXPROVIDER_PYTHON_WHY; trap - EXIT; exec /bin/sh "$0" "$@"' EXIT
for py in python3 /usr/libexec/platform-python /usr/bin/python3.13 /usr/bin/python3.12 \
        /usr/bin/python3.11 /usr/bin/python3.10 /usr/bin/python3.9 /usr/bin/python3.8 \
        /usr/bin/python3.7 /usr/bin/python3.6; do
    case " $tried " in *" $py "*) continue ;; esac
    tried="$tried $py" path=
    case $py in
        /*) usable "$py" || continue ;;
        *)  set -f; IFS=:               # python3 from PATH: its absolute folders, in order
            for dir in $PATH; do
                case $dir in /*) usable "${dir%/}/$py" && break ;; esac
            done
            set +f; unset IFS
            [ -n "$path" ] || continue ;;
    esac
    BXPROVIDER_PYTHON_TRIED=$tried BXPROVIDER_PYTHON_WHY=$why
    export BXPROVIDER_PYTHON_TRIED BXPROVIDER_PYTHON_WHY
    exec "$path" -I -S -c "$boot" "$0" "$@"
    note "$path" "cannot be run (exit status $?)"
done
trap - EXIT
case ${1-} in help|configs|order|order_status) action=$1 ;; *) action=usage ;; esac
printf '{"error": 1, "error_message": "%s error N120, no Python 3.6+ found (tried python3 on PATH, /usr/libexec/platform-python, /usr/bin/python3.13 ... python3.6%s): install python3"}\n' "$action" "${why:+; }${why%; }"
exit 1
"""

__doc__ = """provider.py - a provider plugin for BitrixVM (bitrix-env).

BitrixVM runs every executable at /opt/webdir/providers/NAME/bin/NAME with one
of four options and reads one JSON object from its standard output:

    NAME help                    the options it supports and whether it is enabled
    NAME configs                 what a user may order (id and description)
    NAME order CONFIG_ID         places an order, answers {"task_id": "24"} at once
    NAME order_status TASK_ID    in_progress / finished (server, root password) / error

This file is that executable. Copy it as is to bin/NAME (or let install.sh do it).
Its files live beside it, in the provider's home (the folder above bin/):

    etc/NAME.conf          JSON config: what may be ordered and from which backend
    var/NAME.state.json    the orders ("tasks"), saved atomically under a lock
    var/archive/           finished and failed orders older than retention_days,
                           100 ids per file (NAME.1-100.json, ...)
    log/NAME.log           audit log, one line per order and status change
    tasks/                 the caller's own folder: read (ids stay unique), never written

Backends (config "backend": {"type": ...}): manual (an operator finishes each
order), pool (servers already built), command (your own provisioning program),
hetzner, timeweb, openstack (selectel, vkcloud) and yandex (a new cloud server
per order).

People can run it by hand too: `NAME --help` lists the commands for them
(tasks, task show/finish/fail/release/delete-server, pool, state, check).
See README.md and docs/.
"""

import errno
import json
import os
import stat
import sys
import time

__version__ = "1.3.0"


def refuse_old_python(argv):
    """`python2 provider.py help` (or a Python 3 older than 3.6): the answer the
    sh header gives when it finds no Python 3.6+ (N120), instead of a traceback
    or a wrong answer: one JSON error on stdout for the protocol (and any word
    that could be a caller's option), a line of text on stderr for people;
    exit status 1. Kept to what every Python that parses this file can run: so it
    names the commands itself, as the command table (COMMANDS, which runs later)
    does (tests/test_admin.py checks they agree)."""
    words = [arg for arg in argv if not arg.startswith("-")]
    people = ("tasks", "task", "pool", "servers", "state", "check", "_worker")
    action = words[0] if words and words[0] in people + PROTOCOL_OPTIONS else "usage"
    actions = {"task": ("show", "finish", "fail", "release", "delete-server"),
               "pool": ("reset",), "state": ("compact", "restore-backup", "repair")}
    if len(words) > 1 and words[1] in actions.get(action, ()):
        action += " " + words[1]
    text = ("%s error N120, provider.py needs Python 3.6 or newer; %s is Python %d.%d: run "
            "it with python3 (3.6+)" % (action, sys.executable or "this", sys.version_info[0],
                                        sys.version_info[1]))
    if not words or words[0] in people:
        sys.stderr.write(text + "\n")
    else:
        sys.stdout.write(json.dumps({"error": 1, "error_message": text}) + "\n")
    return 1


# ---------------------------------------------------------------------------
# Constants and the error-code table
# ---------------------------------------------------------------------------

PROTOCOL_OPTIONS = ("help", "configs", "order", "order_status")
if sys.version_info < (3, 6):       # python2 provider.py ...: N120, not a traceback
    sys.exit(refuse_old_python(sys.argv[1:]))

STATE_SCHEMA = 2                  # 2: old terminal tasks live in var/archive/
READABLE_STATE_SCHEMAS = (1, 2)   # 1 (all tasks in the state file) is migrated on write
ARCHIVE_SCHEMA = 1
ARCHIVE_SPAN = 100                # task ids per archive file: NAME.1-100.json, ...
ARCHIVE_BATCH = 200               # most tasks one write moves to the archive
DEFAULT_RETENTION_DAYS = 30       # terminal tasks stay in the state file this long
DEFAULT_LOCK_WAIT = 10.0          # seconds to wait for the state lock
DEFAULT_NOTIFY_TIMEOUT = 30.0     # seconds the notify hook may run
MAX_TASK_ID = 10 ** 20 - 1        # ids have at most 20 digits (valid_task_id)
MAX_ISSUED_ID = 10 ** 15 - 1      # the plugin hands out no id above this; a larger one
                                  # found anywhere (a stray tasks/9999...) is not its own
DEFAULT_PASSWORD_TTL_DAYS = 7     # a finished task's root password is kept this long at most
SCRUB_FILE_CHECKS = 256           # tasks/<id> files read per write, looking for "complete"
MAX_STATE_BYTES = 256 * 1024 * 1024
MAX_CONFIG_BYTES = 16 * 1024 * 1024  # a config (or a password or token file) read, at most
MAX_CONFIG_DEPTH = 32             # JSON nesting a config may use
MAX_REVIVALS = 20                 # dead workers one call starts again (the next, more)

# Internal task statuses are the protocol's three; the finer "phase" is the
# backend's own and only shows in `message` and in the admin commands.
IN_PROGRESS, FINISHED, ERROR = "in_progress", "finished", "error"
TERMINAL = (FINISHED, ERROR)

# code -> (what it means, what to do). docs/reference.md, "Error codes", lists the same table.
WARN = "warn"                       # `check`'s third verdict: worth reading, not a failure
E_USAGE = 100
E_UNKNOWN_CONFIG = 101
E_NO_TASK = 102
E_DISABLED = 103
E_CONFIG = 104
E_STATE = 105
E_LOCK = 106
E_WRITE = 107
E_BACKEND = 108
E_EXHAUSTED = 109
E_UNSAFE = 110
E_TASK_STATE = 111
E_UNREACHABLE = 112
E_ACCESS = 113
E_NO_PYTHON = 120                 # answered by the sh header at the top, never by Python
E_INTERNAL = 199

ERROR_CODES = {
    E_USAGE: "wrong arguments: unknown option, missing or extra argument",
    E_UNKNOWN_CONFIG: "no configuration with that id",
    E_NO_TASK: "no task with that id",
    E_DISABLED: "the provider is disabled or has no config",
    E_CONFIG: "the config file is broken (the message names the JSON path)",
    E_STATE: "the state file is damaged or of an unknown version; it was left untouched",
    E_LOCK: "another process held the state lock for longer than lock_wait",
    E_WRITE: "the state could not be saved (disk full, read-only, quota); nothing changed",
    E_BACKEND: "the backend could not place the order",
    E_EXHAUSTED: "nothing left to order for that configuration",
    E_UNSAFE: "a file or folder has unsafe ownership or permissions",
    E_TASK_STATE: "the task is not in a state that allows this action",
    E_UNREACHABLE: "the server failed the first-contact check (no SSH, no host key, another "
                   "host key than the pinned one); nothing changed",
    E_ACCESS: "the user running the plugin may not read or write one of its files",
    E_NO_PYTHON: "no Python 3.6+ to run it (bin/NAME found none, or an older one ran the file)",
    E_INTERNAL: "a bug: the traceback is in the log",
}


# ---------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------

class ProviderError(Exception):
    """Every failure a user can cause: a stable code and a plain message."""

    def __init__(self, code, message):
        Exception.__init__(self, message)
        self.code = code
        self.message = message


class UsageError(ProviderError):
    def __init__(self, message):
        ProviderError.__init__(self, E_USAGE, message)


class OtherInstallation(ProviderError):
    """A worker's write refused: the state is another installation's now (StateStore.bound)."""

    def __init__(self):
        ProviderError.__init__(self, E_STATE, "the state now belongs to another installation "
                               "(the provider was installed again): this worker writes nothing")


def error_object(action, code, message):
    return {"error": 1,
            "error_message": "%s error N%s, %s" % (action, code, message)}


# ---------------------------------------------------------------------------
# Paths
# ---------------------------------------------------------------------------

class Paths(object):
    """Where the provider's files are, derived from the path it was invoked by.

    /opt/webdir/providers/NAME/bin/NAME -> home /opt/webdir/providers/NAME.
    A script not inside a bin/ folder uses its own folder as home. The path
    is taken as called (sys.argv[0]), not resolved through symlinks, so one
    copy linked into several homes serves each with its own files.
    """

    def __init__(self, invoked, home=None, config=None):
        invoked = os.path.abspath(invoked or "provider.py")
        name = os.path.basename(invoked)
        if name.endswith(".py"):
            name = name[:-3]
        self.name = name or "provider"
        self.script = invoked
        # why the home and the config are where they are (`check` and -v say it)
        self.home_why = "--home" if home else "BXPROVIDER_HOME"
        home = home or os.environ.get("BXPROVIDER_HOME")
        if not home:
            folder = os.path.dirname(invoked)
            in_bin = os.path.basename(folder) == "bin"
            home = os.path.dirname(folder) if in_bin else folder
            self.home_why = "the %s of %s, the path the program was called by" % (
                "folder above bin/" if in_bin else "folder", invoked)
        self.home = os.path.abspath(home)
        self.config_why = "--config" if config else "BXPROVIDER_CONFIG"
        config = config or os.environ.get("BXPROVIDER_CONFIG")
        if not config:
            self.config_why = "HOME/etc/%s.conf" % self.name
        self.config = (os.path.abspath(config) if config else
                       os.path.join(self.home, "etc", self.name + ".conf"))
        self.var = os.path.join(self.home, "var")
        self.state = os.path.join(self.var, self.name + ".state.json")
        self.backup = self.state + ".bak"
        self.archive = os.path.join(self.var, "archive")
        self.lock = os.path.join(self.var, self.name + ".lock")
        self.log_dir = os.path.join(self.home, "log")
        self.log = os.path.join(self.log_dir, self.name + ".log")
        self.caller_tasks = os.path.join(self.home, "tasks")


def home_path(paths, value):
    """A path the config names: a relative one is relative to the provider's home
    (the one rule for token_file, password_file, command, pool_key, ...), never to
    the current directory or to where the config file lives."""
    return os.path.normpath(os.path.join(paths.home, value))


def trusted_uids(home):
    """Who may own the provider's private files: the user running the plugin,
    root, and the owner of the home (bx-provider chowns the home to bitrix and
    runs the plugin as root; that owner can already replace bin/NAME itself)."""
    uids = set([os.geteuid(), 0])
    try:
        uids.add(os.stat(home).st_uid)
    except OSError:
        pass
    return uids


def log_json(value):
    """value as JSON for a log people read with cat or less: UTF-8, but every
    character a terminal would act on (C1 controls such as CSI, DEL, bidi
    overrides) escaped as \\u009b-style escapes, like JSON escapes the C0 controls."""
    text = json.dumps(value, ensure_ascii=False)
    if all(ch.isprintable() for ch in text):
        return text
    return "".join(ch if ch.isprintable() else json.dumps(ch)[1:-1] for ch in text)


def home_of(path, depth):
    """The home a file of the plugin's lives in, depth folders down (log/NAME.log: 2)."""
    for _ in range(depth):
        path = os.path.dirname(path)
    return path


def open_own_file(path, flags):
    """os.open (mode 0600 when created) for a file the plugin writes or reads back
    in its own folders: never through a symlink, never blocking on a FIFO, and
    only a regular file (OSError otherwise)."""
    fd = os.open(path, flags | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0),
                 0o600)
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise OSError(errno.EINVAL, "%s is not a regular file" % path)
    return fd


def ensure_private_dir(path):
    """Create a 0700 folder (and its missing parents, each 0700 whatever the umask:
    os.makedirs gives the parents 0777 & ~umask from Python 3.7) if it is missing."""
    if not os.path.isdir(path):
        parent = os.path.dirname(path)
        if parent and parent != path and not os.path.isdir(parent):
            ensure_private_dir(parent)
        try:
            os.mkdir(path, 0o700)
        except OSError as exc:
            if not os.path.isdir(path):
                if denied(exc):
                    raise permission_error("create", path)
                raise ProviderError(E_WRITE, "cannot create %s: %s" % (path, exc.strerror))


def denied(exc):
    """An OSError that says the user may not (rather than that something broke)."""
    return getattr(exc, "errno", None) in (errno.EACCES, errno.EPERM)


def permission_error(doing, path):
    """N112: the user running the plugin may not read or write one of its files
    (a person running bin/NAME by hand as someone else), with the fix."""
    return ProviderError(E_ACCESS, "cannot %s %s: permission denied: run it as root (as "
                         "bx-provider does) or as the user that owns the provider's files"
                         % (doing, path))


# ---------------------------------------------------------------------------
# The task record: one order, from `order` to its end
# ---------------------------------------------------------------------------
#
# A task is one JSON object, a line of the state file (its format: the state section).
# new_task makes it, status_answer is what the caller sees of it, scrub_task removes
# its password. Provider.apply saves a backend's changes: top-level keys replaced,
# "data" merged key by key (a backend sends only the data keys it changes).
#
#   id                "24": a decimal, never reused (TaskIds, valid_task_id)
#   config_id         the configuration ordered
#   backend           the backend type that placed it ("pool", "hetzner", ...)
#   status            in_progress, finished or error: the protocol's (TERMINAL: the last two)
#   phase             the backend's finer step ("new", "claimed", "waiting_ssh", "creating",
#                     "booting", "setup", "done", "failed", "released", ...): for people
#   message           what happens now, or why it failed (the caller shows it)
#   server            the server's address once known, else ""
#   server_password   the root password ("" for none, or once removed); shown only finished
#   password_removed  when scrub_task removed it
#   notified          the events the notify hook was run for (notify_marked: each once)
#   created, updated  when it was ordered and last changed (now(): whole seconds)
#   data              the backend's own keys:
#
#   every backend     host_keys (the server's public host keys: the caller's known_hosts),
#                     ssh_port (their port), known_hosts_in (the known_hosts files written)
#   pool, command     host_key, host_key_sha256 (a pin: from the config, or the program's
#                     result), ssh_wait_since (when the SSH wait began), worker_pid and
#                     worker_start (the worker and its start time), ended (when it ended)
#   pool              pool_server (the server as the config names it), tried (the servers
#                     it tried), released (when its server went back to the pool)
#   command           pgid, pgid_start (the program's process group, its start time),
#                     exit_code
#   cloud             owner (the owner tag its servers carry), name (its server's name),
#                     key_installed (the pool key goes in through user data), creates (the
#                     creates sent, each counted before it is: the ledger), settled (the
#                     creates settled: refused, or looked for until none could land),
#                     create_age, create_at (the last create: task age, time), age,
#                     age_at, age_mono, age_boot (the task's age by its workers' monotonic
#                     clock, and when: by the wall clock, the monotonic clock, in which
#                     boot: task_age), choice, got (the alternative tried: its index, its
#                     values), server_id, ipv4, ipv4_wait_age, ssh_wait_age, ssh_age (task
#                     ages when the wait for an address, for SSH, for cloud-init began),
#                     host_key_private (the host key the plugin made for the server;
#                     removed once the task ends), failed_because, cleanup ("pending",
#                     "done", "kept"), cleanup_tries, cleanup_error, cleanup_waits, looked_for (s
#                     an unsettled create's server was looked for), server_deleted (when)
#   openstack         floating_ip, floating_ip_id (the address it attached)
#   yandex            operation_id (the create's operation, until it is done)
#   proxmox           address, prefix (the configuration's address claimed at the order:
#                     held while the task may rent its VM), node (the VM's), upid (the
#                     task waited for), pve_step (clone, config, resize, start, started)

def new_task(task_id, config_id, backend_type):
    stamp = now()
    return {"id": task_id, "config_id": config_id, "backend": backend_type,
            "status": IN_PROGRESS, "phase": "new", "message": "",
            "server": "", "server_password": "",
            "created": stamp, "updated": stamp, "data": {}}


def status_answer(task):
    """The protocol's view: the root password only once the task is finished."""
    finished = task["status"] == FINISHED
    return {"task_id": task["id"], "status": task["status"],
            "server": task.get("server", ""),
            "server_password": task.get("server_password", "") if finished else "",
            "message": task.get("message", "")}


def scrub_task(task, reason, stamp, say=True):
    """Remove the root password; say: add why to the message."""
    task["server_password"] = ""
    task["password_removed"] = stamp
    if say:
        note = "root password removed %s" % reason
        task["message"] = "%s; %s" % (task["message"], note) if task.get("message") else note


# ---------------------------------------------------------------------------
# Audit log (never a password: callers pass only safe fields)
# ---------------------------------------------------------------------------

class AuditLog(object):
    """HOME/log/NAME.log. log/ gets var/'s checks (TrustedFiles); the file is never
    opened through a symlink. A log that cannot be written only warns."""

    def __init__(self, path, verbose=False, trust=None):
        self.path = path
        self.verbose = verbose
        self.trust = trust or TrustedFiles(home_of(path, 2))

    def write(self, event, task_id=None, **fields):
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        parts = [stamp, "pid=%d" % os.getpid(), event]
        if task_id is not None:
            parts.append("task=%s" % task_id)
        for key in sorted(fields):
            parts.append("%s=%s" % (key, log_json(fields[key])))
        line = " ".join(parts) + "\n"
        self.debug(line.rstrip("\n"))
        try:
            self.trust.private_folder(os.path.dirname(self.path), "log folder")
            fd = open_own_file(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
            try:
                os.write(fd, line.encode("utf-8", "replace"))
            finally:
                os.close(fd)
        except (OSError, ProviderError) as exc:
            # The log is for people; a full disk must not turn an order into an error.
            sys.stderr.write("warning: cannot write the log %s: %s\n" % (self.path, exc))

    def debug(self, text):
        if self.verbose:
            sys.stderr.write("debug: %s\n" % text)


# ---------------------------------------------------------------------------
# State store: the hot JSON file, its lock, atomic saves, a backup, an archive
# ---------------------------------------------------------------------------
#
# The state file's format (var/NAME.state.json; an archive file var/archive/NAME.1-100.json
# is laid out the same way). One JSON object, UTF-8, written by encode_tasks_file only:
#
#     line 1      the head: every key but "tasks", sorted, compact, then "tasks":{
#                   {"installation":"..","next_id":25,"schema":2,...,"tasks":{
#                 The state's: schema, provider, next_id, archived_max_id,
#                 installation, workers (the ids of the tasks needing a worker),
#                 pool, pool_unavailable, cloud_orders, legacy_owner_tags, tokens,
#                 notified_orphans (the orphans of tasks gone from it the hook was run for).
#                 An archive file's: schema, provider, first_id, last_id.
#     lines 2..   one task per line, in id order: "ID":{the task record, compact},
#                   "24":{"backend":"pool","config_id":"1",...},
#                 (the last one without its comma)
#     last line   }}  (the file ends with TASKS_END, "\n}}\n")
#
# Why one task per line: compact JSON never holds a raw newline, so a line that starts
# with "24":{ can only be task 24's, and the head is the first line alone. So a call
# reads one task, or the head, without parsing the other tasks: order_status stays near
# the floor however many tasks the file holds. Who relies on it: StateFile.find (one
# task: its line) and StateFile.split_head, behind head() and find()'s head (the first
# line: every call's revive_workers reads "workers" there). Both fall back to parsing
# the whole file when it has another layout (a file edited by hand is still read); a
# writer that broke the layout would make them slow, not wrong.
#
# One class per job: StateFile (the locked, atomically saved JSON file and its
# backup), Archive (old terminal tasks in var/archive/), TaskIds (ids never
# reused), StateRepair (restore-backup and repair, for people) and StateStore,
# which composes them into the transactions the rest of the plugin uses.

def empty_state(name):
    return {"schema": STATE_SCHEMA, "provider": name, "next_id": 1, "tasks": {},
            "archived_max_id": 0}


def archive_start(task_id):
    """The first id of the archive file that holds (or would hold) task_id."""
    return (int(task_id) - 1) // ARCHIVE_SPAN * ARCHIVE_SPAN + 1


class TrustedFiles(object):
    """The trust rule for the plugin's own folders and files (it runs as root):
    owned by a trusted user (see trusted_uids), folders not writable by others,
    files read regular and never through a symlink."""

    def __init__(self, paths):
        self.paths = paths              # a Paths, or only the home's path
        self._uids = None

    def uids(self):
        """Who may own the plugin's files (the module's trusted_uids, once a call)."""
        if self._uids is None:
            home = self.paths if isinstance(self.paths, str) else self.paths.home
            self._uids = trusted_uids(home)
        return self._uids

    def check_folder(self, folder, label="state folder"):
        """Refuse a folder of the plugin's (var/, var/archive/, log/, ...) in which
        another user could swap files (symlink races)."""
        try:
            info = os.stat(folder)
        except OSError as exc:
            if exc.errno == errno.ENOENT:
                return
            if denied(exc):
                raise permission_error("read the %s" % label, folder)
            raise ProviderError(E_STATE, "cannot read the %s %s: %s (check the disk and the "
                                "file system)" % (label, folder, exc.strerror))
        problem = None
        if not stat.S_ISDIR(info.st_mode):
            problem = "not a folder"
        elif info.st_uid not in self.uids():
            problem = ("owned by uid %d, who is neither uid %d (running the plugin), root nor "
                       "the owner of the home" % (info.st_uid, os.geteuid()))
        elif info.st_mode & 0o022:
            problem = "writable by other users (mode %03o; it must be 0700)" % (
                info.st_mode & 0o777)
        if problem:
            raise ProviderError(E_UNSAFE, "the %s %s is %s; refusing to use it"
                                % (label, folder, problem))

    def private_folder(self, folder, label):
        """folder, created 0700 if missing, after the same check as var/."""
        ensure_private_dir(folder)
        self.check_folder(folder, label)
        return folder

    def read_file(self, path, advice=None):
        """The bytes of a state (or archive) file, None when there is none. Refuses
        a symlink or a file of another owner (N110) and a non-file (N105)."""
        flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
        try:
            fd = os.open(path, flags)
        except OSError as exc:
            if exc.errno == errno.ENOENT:
                return None
            if exc.errno == errno.ELOOP:
                raise ProviderError(E_UNSAFE, "%s is a symbolic link, not the plugin's own file; "
                                    "it was left untouched" % path)
            if denied(exc):
                raise permission_error("read", path)
            raise ProviderError(E_STATE, "cannot read %s: %s (check the disk and the file "
                                "system)" % (path, exc.strerror))
        try:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode):
                raise ProviderError(E_STATE, "%s is not a regular file; it was left untouched; "
                                    "%s" % (path, advice or ("`%s state repair` moves it aside"
                                                             % self.paths.name)))
            if info.st_uid not in self.uids():
                raise ProviderError(E_UNSAFE, "%s is owned by uid %d, who is neither uid %d "
                                    "(running the plugin), root nor the owner of the home; it "
                                    "was left untouched; %s" % (path, info.st_uid, os.geteuid(),
                                                                self.fix(path, info)))
            handle = os.fdopen(fd, "rb")
        except BaseException:
            os.close(fd)
            raise
        with handle:
            try:
                return handle.read(MAX_STATE_BYTES + 1)     # one read, as big as the file
            except (IOError, OSError) as exc:
                raise ProviderError(E_STATE, "cannot read %s: %s (check the disk and the file "
                                    "system)" % (path, exc.strerror))


    def owner_problem(self, info, writable_ok=False):
        """Why a file or folder (its os.stat) is not to be trusted, or None: another
        user's, or writable by group or others (a folder with the sticky bit, like
        /tmp, may be: nobody can replace what is not theirs in it)."""
        if info.st_uid not in self.uids():
            return ("owned by uid %d, who is neither uid %d (running the plugin), root nor "
                    "the owner of the home" % (info.st_uid, os.geteuid()))
        sticky_folder = stat.S_ISDIR(info.st_mode) and info.st_mode & stat.S_ISVTX
        if info.st_mode & 0o022 and not writable_ok and not sticky_folder:
            return "writable by other users (mode %03o)" % (info.st_mode & 0o777)
        return None

    def path_problem(self, path):
        """Why root must not run (or read) the file at path, or None: the file and
        every folder above it, through symlinks as well, must be a trusted user's
        and not writable by others (else anyone could swap it). None when missing."""
        try:
            real = os.path.realpath(path)
            os.stat(real)
        except OSError:
            return None
        checked = set()
        for start in (os.path.abspath(path), real):
            current = start
            while current not in checked:
                checked.add(current)
                try:
                    info = os.stat(current)
                except OSError:
                    info = None
                problem = info and self.owner_problem(info)
                if problem:
                    return "%s is %s; %s" % (current, problem, self.fix(current, info))
                current = os.path.dirname(current)
        return None

    def read_private(self, path, what, limit, missing=None):
        """The bytes of a file the config makes root obey (the config, a password
        or token file): a regular file of a trusted user, not writable by others
        (N110 otherwise, naming the fix). Opened non-blocking: a FIFO cannot hang
        the call. missing: the (code, message) raised when there is no file."""
        try:
            fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
        except OSError as exc:
            if exc.errno == errno.ENOENT and missing:
                raise ProviderError(*missing)
            if denied(exc):
                raise permission_error("read %s" % what, path)
            if exc.errno == errno.ENOENT:
                raise ProviderError(E_CONFIG, "%s %s does not exist (create it, or name another "
                                    "file in the config)" % (what, path))
            raise ProviderError(E_CONFIG, "%s %s cannot be read (%s)" % (what, path,
                                                                        exc.strerror))
        with os.fdopen(fd, "rb") as handle:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode):
                raise ProviderError(E_CONFIG, "%s %s is not a regular file" % (what, path))
            problem = self.owner_problem(info)
            if problem:
                raise ProviderError(E_UNSAFE, "%s %s is %s: refusing to use it (root obeys it); "
                                    "%s" % (what, path, problem, self.fix(path, info)))
            try:
                raw = handle.read(limit + 1)
            except (IOError, OSError) as exc:
                raise ProviderError(E_CONFIG, "%s %s cannot be read (%s)" % (what, path,
                                                                            exc.strerror))
        if len(raw) > limit:
            raise ProviderError(E_CONFIG, "%s %s is larger than %d bytes" % (what, path, limit))
        return raw

    def fix(self, path, info):
        """The command that makes path trusted."""
        if info.st_uid not in self.uids():
            return "fix: chown root %s (and make sure only root can change it)" % path
        return "fix: chmod go-w %s" % path


def salvage_bytes(path):
    """The bytes of whatever is at path, for salvage: b"" for a link or a non-file."""
    try:
        info = os.lstat(path)
        if not stat.S_ISREG(info.st_mode):
            return b""
        with open(path, "rb") as handle:
            return handle.read(MAX_STATE_BYTES)
    except (IOError, OSError):
        return b""


class StateFile(object):
    """var/NAME.state.json: its lock, its reading, its atomic save and backup.

    Writers hold an exclusive flock on var/NAME.lock (bounded wait), read the
    file, change it and save it atomically: a unique temp file in the same
    folder, fsync, rename over the old one, fsync the folder. The file being
    replaced is kept as NAME.state.json.bak (a hard link, so no copy). Readers
    need no lock: they always see a whole file. A file that does not parse or
    has an unknown schema is never overwritten.
    """

    def __init__(self, paths, trust, lock_wait=DEFAULT_LOCK_WAIT):
        self.paths = paths
        self.trust = trust
        self._lock_wait = lock_wait
        self.missing = False            # the last load() found no state file

    @property
    def lock_wait(self):
        """Seconds to wait for the lock; a callable is asked only when writing."""
        wait = self._lock_wait
        return wait() if callable(wait) else wait

    # -- reading -----------------------------------------------------------

    def load(self):
        """The current state; an empty one when there is no file yet."""
        self.trust.check_folder(self.paths.var)
        raw = self.trust.read_file(self.paths.state)
        if raw is None:
            self.refuse_lost_state()
            self.missing = True
            return empty_state(self.paths.name)
        self.missing = False
        return self.parse([raw], self.paths.state)   # a list, so parse can drop the bytes early

    def refuse_lost_state(self):
        """No state file but a backup: the state was lost (deleted by hand), not
        never made. Starting afresh would replace that backup at the second
        write and lose its tasks, so every call refuses until a person decides."""
        if os.path.lexists(self.paths.backup):
            raise ProviderError(E_STATE, "the state file %s is missing but its backup %s is "
                                "there; nothing was changed; `%s state restore-backup` puts the "
                                "backup back (`%s state repair` if it is damaged too); to start "
                                "afresh, delete the backup as well" % (
                                    self.paths.state, self.paths.backup, self.paths.name,
                                    self.paths.name))

    @staticmethod
    def problem(raw):
        """(state, None) when raw is a state this version reads, else (None, why).

        raw: bytes, or a one-item list of bytes that this empties to free them
        before building the tasks (peak memory). A schema 1 state (everything
        in one file) comes back as schema 2 with an empty archive; the next
        write saves it as schema 2.
        """
        if isinstance(raw, list):
            raw = raw.pop()
        if len(raw) > MAX_STATE_BYTES:
            return None, "larger than %d bytes" % MAX_STATE_BYTES
        try:
            text = raw.decode("utf-8")
            raw = None
            state = json.loads(text)
        except ValueError as exc:
            return None, "not valid JSON (%s)" % exc
        except RecursionError:
            return None, "nested too deeply to be a provider.py state file"
        text = None
        if (not isinstance(state, dict) or not isinstance(state.get("tasks"), dict)
                or not isinstance(state.get("next_id"), int)):
            return None, "not a provider.py state file"
        if state.get("schema") not in READABLE_STATE_SCHEMAS:
            return None, "schema version %r, this provider.py %s reads %s" % (
                state.get("schema"), __version__,
                " and ".join(str(v) for v in READABLE_STATE_SCHEMAS))
        if not isinstance(state.setdefault("archived_max_id", 0), int):
            return None, "not a provider.py state file (archived_max_id)"
        state["schema"] = STATE_SCHEMA
        return state, None

    def parse(self, raw, path):
        state, problem = self.problem(raw)
        if problem:
            raise ProviderError(E_STATE, "the state file %s is %s; it was left untouched; "
                                "the previous good copy is %s; `%s state restore-backup` or "
                                "`%s state repair` put things right" % (
                                    path, problem, self.paths.backup, self.paths.name,
                                    self.paths.name))
        return state

    def find(self, task_id, with_head=False):
        """One task of the state file, parsing only its line when the file has
        the layout this store writes (see encode_tasks_file); else all of it.
        with_head: (the task, the state's keys but "tasks")."""
        path = self.paths.state
        self.trust.check_folder(self.paths.var)
        raw = self.trust.read_file(path)
        if raw is None:
            self.refuse_lost_state()
            return (None, {}) if with_head else None
        head, head_end = self.split_head(raw)
        task = None
        if head is not None:
            key = json.dumps(task_id).encode("utf-8")
            start = raw.find(b"\n" + key + b":{", head_end)
            if start >= 0:
                end = raw.find(b"\n", start + 1)
                line = raw[start + 1:end].rstrip(b",")
                try:
                    task = json.loads((b"{" + line + b"}").decode("utf-8"))[task_id]
                except (ValueError, KeyError, RecursionError):
                    task = None
            if start < 0 or isinstance(task, dict):
                return (task, head) if with_head else task
        state = self.parse([raw], path)             # any other file: in full
        task = state["tasks"].get(task_id)
        return (task, state) if with_head else task

    @staticmethod
    def split_head(raw):
        """(head, end): the state's keys but "tasks", parsed from its first line
        alone when raw has the layout encode_tasks_file writes; else (None, -1)."""
        head_end = raw.find(b"\n")
        if (head_end > 0 and raw.endswith(TASKS_END) and len(raw) <= MAX_STATE_BYTES
                and raw[head_end - len(TASKS_START):head_end] == TASKS_START):
            try:
                head = json.loads(raw[:head_end].decode("utf-8") + "}}")
            except (ValueError, RecursionError):
                head = None
            if (isinstance(head, dict) and head.get("schema") in READABLE_STATE_SCHEMAS
                    and isinstance(head.get("next_id"), int)):
                return head, head_end
        return None, -1

    def head(self):
        """The state without its tasks (cheap: see split_head); {} without a file."""
        self.trust.check_folder(self.paths.var)
        raw = self.trust.read_file(self.paths.state)
        if raw is None:
            return {}
        head = self.split_head(raw)[0]
        return head if head is not None else self.parse([raw], self.paths.state)

    # -- the lock and writing ----------------------------------------------

    def lock(self):
        """An open descriptor holding the exclusive lock (bounded wait); closing it
        drops the lock."""
        import fcntl
        if not os.path.isdir(self.paths.home):     # a mistyped --home: create nothing
            raise ProviderError(E_WRITE, "the home %s does not exist" % self.paths.home)
        ensure_private_dir(self.paths.var)
        self.trust.check_folder(self.paths.var)
        try:
            fd = os.open(self.paths.lock, os.O_RDWR | os.O_CREAT
                         | getattr(os, "O_NOFOLLOW", 0), 0o600)
        except OSError as exc:
            if denied(exc):
                raise permission_error("open the lock file", self.paths.lock)
            raise ProviderError(E_WRITE, "cannot open the lock file %s: %s"
                                % (self.paths.lock, exc.strerror))
        lock_wait = self.lock_wait
        deadline = time.monotonic() + lock_wait     # a clock step neither ends nor stretches it
        delay = 0.002
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return fd
            except (IOError, OSError) as exc:
                if exc.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                    os.close(fd)
                    raise ProviderError(E_WRITE, "cannot lock %s: %s"
                                        % (self.paths.lock, exc.strerror))
            if time.monotonic() >= deadline:
                holder = lock_holder(fd)
                os.close(fd)
                raise ProviderError(E_LOCK, "the state lock %s is held by %s for more than "
                                    "%g s; try again" % (self.paths.lock, holder, lock_wait))
            time.sleep(delay)
            delay = min(delay * 2, 0.05)

    def sweep(self):
        """Remove the temp files of writers that died mid-save from var/. Call it
        holding the lock: temps are only made under the lock, so every one found
        is stale."""
        base = os.path.basename(self.paths.state)
        return remove_temps(self.paths.var, lambda name: name.startswith("." + base + ".")
                            or name.startswith(base + ".bak."))

    def save(self, state, refresh_backup=False, backup=True):
        write_atomic(self.paths.state, encode_tasks_file(state),
                     self.paths.backup if backup else None, "the state in %s" % self.paths.var,
                     MAX_STATE_BYTES)
        if refresh_backup:
            keep_backup(self.paths.state, self.paths.backup)  # the old one may hold what went

    def save_keeping_aside(self, state):
        """Save state in place of the current state file, which is kept as
        NAME.state.json.damaged-STAMP; returns that path, or None if there was
        no file. A regular file is hard-linked there first, so the state path
        is never empty for a reader; anything else (a folder, a link) is
        renamed. The backup is left as it is (it is not the damaged file). If
        the save fails, the kept copy goes again: nothing was changed."""
        aside = None
        renamed = False
        if os.path.lexists(self.paths.state):
            stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
            aside = "%s.damaged-%s" % (self.paths.state, stamp)
            count = 1
            while os.path.lexists(aside):
                count += 1
                aside = "%s.damaged-%s-%d" % (self.paths.state, stamp, count)
            regular = stat.S_ISREG(os.lstat(self.paths.state).st_mode)
            try:
                if regular:
                    os.link(self.paths.state, aside)
                else:
                    os.rename(self.paths.state, aside)
                    renamed = True
            except OSError as exc:
                raise ProviderError(E_WRITE, "cannot keep %s aside as %s: %s; nothing was "
                                    "changed" % (self.paths.state, aside, exc.strerror))
        try:
            self.save(state, backup=False)     # (write_atomic also syncs the folder)
        except ProviderError:
            if aside:
                try:
                    os.rename(aside, self.paths.state) if renamed else os.unlink(aside)
                except OSError:
                    pass
            raise
        return aside


def lock_holder(fd):
    """Who holds the flock on the file open as fd, from /proc/locks: "process PID
    (its command line)", or "another process" when it cannot be told."""
    try:
        info = os.fstat(fd)
        wanted = "%02x:%02x:%d" % (os.major(info.st_dev), os.minor(info.st_dev), info.st_ino)
        with open("/proc/locks") as handle:
            pids = [fields[4] for fields in (line.split() for line in handle)
                    if len(fields) > 5 and fields[1] == "FLOCK" and fields[5] == wanted]
    except (IOError, OSError, ValueError):
        return "another process"
    if not pids or not pids[0].isdigit():
        return "another process"
    try:
        with open("/proc/%s/cmdline" % pids[0], "rb") as handle:
            command = handle.read(300).replace(b"\0", b" ").decode("utf-8", "replace").strip()
    except (IOError, OSError):
        command = ""
    return "process %s%s" % (pids[0], " (%s)" % printable(command, 120) if command else "")


def remove_temps(folder, ours):
    """Remove the files of folder named *.tmp for which ours(name) is true; their names."""
    removed = []
    try:
        names = os.listdir(folder)
    except OSError:
        return removed
    for name in names:
        if name.endswith(".tmp") and ours(name):
            try:
                os.unlink(os.path.join(folder, name))
                removed.append(name)
            except OSError:
                pass
    return removed


class Archive(object):
    """Old terminal tasks, in var/archive/NAME.<first>-<last>.json.

    Terminal tasks not updated for retention_days leave the state file for
    the archive, ARCHIVE_SPAN ids per file, so the answer for an old task
    opens one small file however long the history. Each write moves at most
    ARCHIVE_BATCH of them, in the same locked transaction: the archive file is
    saved first (same atomic way, with its own .bak), then the state file
    without them. A crash between the two leaves a task in both; the state
    file's copy wins, and the next write moves it again. `state compact` moves
    all of them at once. The same safety as the state file (TrustedFiles).
    """

    def __init__(self, paths, trust, retention_days=DEFAULT_RETENTION_DAYS, tidy=None):
        self.paths = paths
        self.trust = trust
        self._retention_days = retention_days
        self.tidy = tidy
        self.swept = False              # this lock's holder swept var/archive/ already

    @property
    def retention_days(self):
        days = self._retention_days
        return days() if callable(days) else days

    def path(self, start):
        return os.path.join(self.paths.archive, "%s.%d-%d.json" % (
            self.paths.name, start, start + ARCHIVE_SPAN - 1))

    def starts(self):
        """The first ids of the archive files there are, ascending; no file is read."""
        prefix, suffix = self.paths.name + ".", ".json"
        try:
            names = os.listdir(self.paths.archive)
        except OSError:
            return []
        starts = []
        for name in names:
            if name.startswith(prefix) and name.endswith(suffix):
                span = name[len(prefix):-len(suffix)].split("-")
                if (len(span) == 2 and valid_task_id(span[0]) and valid_task_id(span[1])
                        and int(span[0]) == archive_start(span[0])
                        and int(span[1]) == int(span[0]) + ARCHIVE_SPAN - 1):
                    starts.append(int(span[0]))
        return sorted(starts)

    def load(self, start):
        """{id: task} of one archive file; {} when it does not exist. The same
        safety as the state file: no symlink, no foreign owner, a regular file
        in a folder nobody else can write."""
        path = self.path(start)
        self.trust.check_folder(self.paths.archive)
        raw = self.trust.read_file(path, advice="move it away by hand (its previous good copy "
                                   "is %s.bak)" % path)
        if raw is None:
            return {}
        problem = None
        data = None
        try:
            data = json.loads(raw.decode("utf-8"))
        except ValueError as exc:
            problem = "not valid JSON (%s)" % exc
        except RecursionError:
            problem = "nested too deeply"
        raw = None
        if problem is None:
            problem = self.shape_problem(data, start)
        if problem:
            raise ProviderError(E_STATE, "the archive file %s is %s; it was left untouched; "
                                "the previous good copy is %s.bak" % (path, problem, path))
        return data["tasks"]

    @staticmethod
    def shape_problem(data, start):
        """Why data is not the archive file for ids start.., or None."""
        last = start + ARCHIVE_SPAN - 1
        if (not isinstance(data, dict) or not isinstance(data.get("tasks"), dict)
                or data.get("first_id") != start or data.get("last_id") != last):
            return "not a provider.py archive file for ids %d-%d" % (start, last)
        if data.get("schema") != ARCHIVE_SCHEMA:
            return "schema version %r, this provider.py %s reads %d" % (
                data.get("schema"), __version__, ARCHIVE_SCHEMA)
        if not all(isinstance(task, dict) and valid_task_id(k) and start <= int(k) <= last
                   for k, task in data["tasks"].items()):
            return "holding a task outside ids %d-%d" % (start, last)
        return None

    def tasks(self):
        """Every archived task, {id: task} (reads the whole archive: for people)."""
        tasks = {}
        for start in self.starts():
            tasks.update(self.load(start))
        return tasks

    def write(self, start, tasks, refresh_backup=False):
        data = {"schema": ARCHIVE_SCHEMA, "provider": self.paths.name, "first_id": start,
                "last_id": start + ARCHIVE_SPAN - 1, "tasks": tasks}
        ensure_private_dir(self.paths.archive)
        self.trust.check_folder(self.paths.archive)
        path = self.path(start)
        write_atomic(path, encode_tasks_file(data), path + ".bak",
                     "the archive file %s" % path, MAX_STATE_BYTES)
        if refresh_backup:
            keep_backup(path, path + ".bak")      # the old one may hold what tidy removed

    def tidy_files(self, starts=None):
        """Run tidy over archive files (all when starts is None), rewriting those it
        changed with a fresh .bak; the caller holds the lock. Tasks are archived
        only once their password is gone (retire); this cleans files written
        before that rule. Returns how many files changed."""
        if not self.tidy:
            return 0
        changed = 0
        for start in (self.starts() if starts is None else starts):
            held = self.load(start)
            if held and self.tidy({"tasks": held}):
                self.write(start, held, refresh_backup=True)
                changed += 1
        return changed

    def add(self, tasks, strict=False):
        """Merge {id: task} into the archive files (the caller holds the lock).

        Returns the ids now safely archived. A damaged (or refused) archive
        file is left untouched and only its own tasks are not moved, with a
        warning on stderr; the other files are written (strict: ProviderError
        at the first such file).
        """
        buckets = {}
        for task_id in tasks:
            buckets.setdefault(archive_start(task_id), []).append(task_id)
        done = []
        if not self.swept:
            self.sweep()                   # about to write there: its stale temps go first
        for start in sorted(buckets):
            try:
                held = self.load(start)
                secret_removed = self.tidy({"tasks": held}) if self.tidy and held else False
                for task_id in buckets[start]:
                    held[task_id] = tasks[task_id]
                self.write(start, held, refresh_backup=secret_removed)
            except ProviderError as exc:
                if strict:
                    raise
                sys.stderr.write("warning: old tasks stay in the state file: %s\n" % exc.message)
                continue
            done.extend(buckets[start])
        return done

    def retire(self, state, limit=ARCHIVE_BATCH, strict=False, days=None):
        """Move terminal tasks older than the retention to the archive.

        At most `limit` tasks (None: all), oldest ids first. Tasks that still
        hold a pool server (state["pool"]) or rent a cloud server stay, so that
        `task release` and `task delete-server` keep finding them; so do finished
        tasks still holding their root password (the caller may not have read it
        yet): tidy removes it after password_ttl_days or once the caller added
        the server, and the task moves then, so no archive file ever holds a
        password and only the state file (and its backup) do. Runs inside the
        locked transaction, before the state is saved. Not strict (a normal
        write): a problem only warns, the tasks stay here and nothing is lost.
        Returns how many tasks left the state.
        """
        days = self.retention_days if days is None else days
        cutoff = time.time() - days * 86400.0
        pool = state.get("pool")
        claims = set(str(v) for v in pool.values()) if isinstance(pool, dict) else set()
        old = [task_id for task_id, task in state["tasks"].items()
               if isinstance(task, dict) and task.get("status") in TERMINAL
               and valid_task_id(task_id)
               and (task.get("updated") or task.get("created") or 0) <= cutoff
               # still holding something an admin command acts on: stays here
               and task_id not in claims and not may_rent(task)
               and not task.get("server_password")]
        if not old:
            return 0
        old.sort(key=int)
        if limit is not None:
            old = old[:limit]
        try:
            moved = self.add(dict((task_id, state["tasks"][task_id]) for task_id in old),
                             strict=strict)
        except ProviderError as exc:       # the archive folder itself (refused, unwritable)
            if strict:
                raise
            sys.stderr.write("warning: old tasks stay in the state file: %s\n" % exc.message)
            return 0
        for task_id in moved:
            del state["tasks"][task_id]
            state["archived_max_id"] = max(state.get("archived_max_id", 0), int(task_id))
        return len(moved)

    def sweep(self):
        """Remove the temp files of writers that died mid-save from var/archive/
        (holding the lock). Done by the commands for people and before a write to
        the archive, not by every write: listing a folder that grows with the
        history would make every order pay."""
        self.swept = True
        return remove_temps(self.paths.archive, self.is_temp)

    def is_temp(self, name):
        """True for the temp names write_atomic and keep_backup use for an archive
        file: .NAME.1-100.json.PID.USEC.tmp and NAME.1-100.json.bak.PID.tmp."""
        import re
        return re.match(r"\.?%s\.\d+-\d+\.json(\.bak)?\.\d+(\.\d+)?\.tmp\Z"
                        % re.escape(self.paths.name), name) is not None


class TaskIds(object):
    """Task ids: decimal, strictly increasing, never reused, also after the state
    file was lost (everything that remembers an id is asked)."""

    def __init__(self, paths, archive):
        self.paths = paths
        self.archive = archive

    def allocate(self, state, state_missing):
        """A decimal id above every id ever handed out, here, in the archive or in tasks/.

        The state's next_id is trusted while the state file exists and the
        caller has no tasks/<next_id> yet (two cheap checks, instead of listing
        a tasks/ folder that grows with the history). Otherwise (no state file,
        or one restored from an old copy) everything is scanned: tasks/, the
        backup, the audit log and the highest archive file.
        """
        next_id = max(state["next_id"], state.get("archived_max_id", 0) + 1)
        if state_missing or state["next_id"] == 1 or os.path.exists(
                os.path.join(self.paths.caller_tasks, str(next_id))):
            highest = max(self.highest_caller_id(), self.highest_lost_id())
            next_id = max(next_id, highest + 1)
        if next_id > MAX_ISSUED_ID:
            raise ProviderError(E_STATE, "next_id %d in %s is beyond the largest task id this "
                                "plugin hands out (%d); nothing was changed; `%s state repair` "
                                "puts it right" % (next_id, self.paths.state, MAX_ISSUED_ID,
                                                   self.paths.name))
        state["next_id"] = next_id + 1
        return str(next_id)

    def highest_caller_id(self):
        """The largest id in the caller's tasks/ folder (it never forgets one)."""
        try:
            names = os.listdir(self.paths.caller_tasks)
        except OSError:
            return 0
        return max([int(name) for name in names if issued_id(name)] or [0])

    def highest_lost_id(self):
        """The largest id the backup, the audit log or the archive knows of."""
        highest = 0
        try:
            backup = json.loads(salvage_bytes(self.paths.backup).decode("utf-8"))
            highest = max([highest] + [n for n in (backup.get("next_id", 1) - 1,
                                                   backup.get("archived_max_id", 0))
                                       if isinstance(n, int) and 0 < n <= MAX_ISSUED_ID])
        except (ValueError, TypeError, AttributeError, RecursionError):
            pass
        try:
            import re
            # only the log's own "order" events: a message quoting "order task=N" is not one
            event = re.compile(br"\S+ pid=\d+ order task=([1-9]\d{0,19}) ")
            with os.fdopen(open_own_file(self.paths.log, os.O_RDONLY), "rb") as handle:
                for line in handle:
                    found = event.match(line)
                    if found and issued_id(found.group(1)):
                        highest = max(highest, int(found.group(1)))
        except (IOError, OSError):
            pass
        # ... and so does the archive: its highest file, or that file's range
        # when it is damaged or refused (file names carry the ranges).
        starts = [start for start in self.archive.starts() if start <= MAX_ISSUED_ID]
        if starts:
            try:
                held = [int(k) for k in self.archive.load(starts[-1]) if issued_id(k)]
                highest = max([highest] + held)
            except ProviderError:
                highest = max(highest, min(starts[-1] + ARCHIVE_SPAN - 1, MAX_ISSUED_ID))
        return highest

    def known(self, raw=b""):
        """The largest task id anything remembers: the caller's tasks/, the log, the
        backup, the archive, and the ids and next_id readable in raw (a damaged state)."""
        import re
        found = [self.highest_caller_id(), self.highest_lost_id()]
        found.extend(int(n) - 1 for n in re.findall(br'"next_id"\s*:\s*(\d{1,20})', raw))
        found.extend(int(n) for n in re.findall(br'"archived_max_id"\s*:\s*(\d{1,20})', raw))
        found.extend(int(n) for n in re.findall(br'"id"\s*:\s*"([1-9]\d{0,19})"', raw))
        return max(n for n in found if n <= MAX_ISSUED_ID)

    def bump(self, state, raw=b""):
        """Raise next_id above every id known anywhere; (before, after). A next_id
        beyond MAX_ISSUED_ID (saved by an older version from a stray tasks/ name)
        comes down to just above the known ids: the plugin could not use it."""
        before = state["next_id"]
        known = max([self.known(raw), min(state.get("archived_max_id", 0), MAX_ISSUED_ID)]
                    + [int(t) for t in state["tasks"] if issued_id(t)])
        usable = before if before <= MAX_ISSUED_ID + 1 else 1
        state["next_id"] = max(usable, known + 1)
        return before, state["next_id"]


class StateRepair(object):
    """`state restore-backup` and `state repair`, for people: under the lock (the
    caller holds it), never deleting anything; each returns lines of text."""

    def __init__(self, paths, state_file, archive, ids):
        self.paths = paths
        self.file = state_file
        self.archive = archive
        self.ids = ids

    def reconcile(self, state):
        """After rebuilding a state from an older copy: a task that the archive
        holds in a newer (terminal) version stays archived instead of coming back
        older (e.g. in_progress) into the state; archived_max_id covers the archive.
        Archive files are read, never changed. Lines of text."""
        lines = []
        starts = self.archive.starts()
        if not starts:
            return lines
        try:
            held_ids = [int(k) for k in self.archive.load(starts[-1])]
            highest = max(held_ids or [starts[-1]])
        except ProviderError:
            highest = starts[-1] + ARCHIVE_SPAN - 1
        state["archived_max_id"] = max(state.get("archived_max_id", 0), highest)
        present = set(starts)
        buckets = {}
        for task_id in state["tasks"]:
            if valid_task_id(task_id) and archive_start(task_id) in present:
                buckets.setdefault(archive_start(task_id), []).append(task_id)
        newer, unreadable = [], []
        for start in sorted(buckets):
            try:
                held = self.archive.load(start)
            except ProviderError:
                unreadable.append(self.archive.path(start))
                continue
            for task_id in buckets[start]:
                mine, archived = state["tasks"][task_id], held.get(task_id)
                if not isinstance(archived, dict) or archived.get("status") not in TERMINAL:
                    continue
                if (not isinstance(mine, dict) or mine.get("status") not in TERMINAL
                        or (archived.get("updated") or 0) >= (mine.get("updated") or 0)):
                    del state["tasks"][task_id]
                    newer.append(task_id)
        if newer:
            lines.append("%d task(s) left to the archive, which holds them newer: %s"
                         % (len(newer), ", ".join(sorted(newer, key=int))))
        if unreadable:
            lines.append("archive file(s) not read (damaged or refused; left untouched): %s"
                         % ", ".join(unreadable))
        return lines

    def restore_backup(self, force=False):
        """Put the backup back in place; the current file is kept aside. A valid
        state file is replaced only with force (the backup is one save behind)."""
        raw = self.file.trust.read_file(self.paths.backup)
        if raw is None:
            raise ProviderError(E_STATE, "there is no backup %s; nothing was changed; "
                                "`%s state repair` rebuilds what it can"
                                % (self.paths.backup, self.paths.name))
        state, problem = self.file.problem(raw)
        if problem:
            raise ProviderError(E_STATE, "the backup %s is %s too; nothing was changed; "
                                "`%s state repair` rebuilds what it can"
                                % (self.paths.backup, problem, self.paths.name))
        damaged = salvage_bytes(self.paths.state)
        if not force:
            self.refuse_to_lose(damaged, state)
        count = len(state["tasks"])
        archived = self.reconcile(state)
        before, after = self.ids.bump(state, damaged)
        aside = self.file.save_keeping_aside(state)
        lines = ["the state file was %s" % ("kept aside as %s" % aside if aside else "missing"),
                 "restored the backup %s: %d task(s)" % (self.paths.backup, count)] + archived
        lines.append("next id %d (the backup said %d; higher ids are known from tasks/, the log, "
                     "the archive or the old file)" % (after, before) if after != before
                     else "next id %d" % after)
        return lines

    def refuse_to_lose(self, raw, backup):
        """Refuse when raw, the state file, is valid: say what the backup lacks."""
        current, problem = self.file.problem(raw) if raw else (None, "missing")
        if current is None:
            return
        mine, older = current["tasks"], backup["tasks"]
        newer = sorted((t for t in mine if t not in older), key=lambda t: (len(t), t))
        changed = sorted((t for t in mine if t in older and mine[t] != older[t]),
                         key=lambda t: (len(t), t))
        lost = []
        if newer:
            lost.append("task(s) %s, which the backup does not know (the caller would get "
                        "N102 for them)" % ", ".join(newer[:20]))
        if changed:
            lost.append("the latest changes of task(s) %s" % ", ".join(changed[:20]))
        raise ProviderError(E_TASK_STATE, "the state file %s is valid; restoring the backup "
                            "would lose %s; nothing was changed; give --force to restore it "
                            "anyway (the current file is kept aside)" % (
                                self.paths.state, "; ".join(lost) or
                                "nothing (the backup holds the same tasks)"))

    def repair(self):
        """Rebuild a state from everything that survives."""
        lines = []
        try:
            state = self.file.load()
            problem = None
        except ProviderError as exc:
            state, problem = None, exc.message
        if state is not None:
            raw = b""
            lines.append("the state file %s is valid: no task to rebuild" % self.paths.state)
        else:
            lines.append("the state file is unusable: %s" % problem)
            raw = salvage_bytes(self.paths.state)
            state = self.rebuild(raw, lines)
        before, after = self.ids.bump(state, raw)
        lines.append("next id %d -> %d (above every id in the state, the archive, tasks/, "
                     "the log, the backup and the damaged file)" % (before, after)
                     if after != before else "next id %d (nothing known above it)" % after)
        if problem is not None:
            aside = self.file.save_keeping_aside(state)
            if aside:
                lines.append("the damaged file was kept aside as %s" % aside)
            lines.append("saved %s: %d task(s)" % (self.paths.state, len(state["tasks"])))
        elif after != before:
            self.file.save(state)
            lines.append("saved %s: %d task(s)" % (self.paths.state, len(state["tasks"])))
        else:
            lines.append("nothing changed")
        return lines

    def rebuild(self, raw, lines):
        """A state from the backup (or an empty one) and the whole task records
        readable in raw, the damaged file; appends what it did to lines."""
        backup_raw = salvage_bytes(self.paths.backup)
        state, why = self.file.problem(backup_raw) if backup_raw else (None, "missing")
        if state is None:
            state = empty_state(self.paths.name)
            lines.append("the backup %s is %s: starting from an empty state"
                         % (self.paths.backup, why))
            lines.extend(carry_installation(raw, state))
        else:
            lines.append("started from the backup %s: %d task(s)"
                         % (self.paths.backup, len(state["tasks"])))
        recovered = recover_tasks(raw)
        newer = [t for t in recovered if t not in state["tasks"]
                 or state["tasks"][t] != recovered[t]]
        state["tasks"].update(recovered)
        lines.append("%d complete task record(s) read from the damaged file, %d of them "
                     "newer than the backup's: %s" % (
                         len(recovered), len(newer), ", ".join(sorted(newer, key=int)) or "none"))
        lines.extend(self.reconcile(state))
        return state


def carry_installation(raw, state):
    """A state rebuilt from nothing keeps the installation id (and the 1.x owner tags) of
    the damaged file's head when they can be read there, so that its servers' owner tag
    and its running workers (StateStore.bound) stay this installation's; the lines said."""
    import re
    found = re.search(br'"installation": *"([0-9a-f]{32})"', raw or b"")
    if not found:
        return []
    state["installation"] = found.group(1).decode("ascii")
    tags = re.search(br'"legacy_owner_tags": *\[((?: *"[0-9a-f]{8}",?)*) *\]', raw)
    if tags:
        state["legacy_owner_tags"] = re.findall(r"[0-9a-f]{8}", tags.group(1).decode("ascii"))
    return ["kept the damaged file's installation id %s..." % state["installation"][:8]]


class StateStore(object):
    """The tasks: live ones in var/NAME.state.json (StateFile), old ones in
    var/archive/ (Archive); the transactions the plugin runs on them.

    Safety: var/, var/archive/ and every file read must belong to a trusted
    user (TrustedFiles) and the folders must not be writable by others. A
    writer first removes the temp files a killed writer left (sweep).
    tidy(state), when given, runs before every save; when it returns True it
    removed a secret, and the backup is then replaced by the saved state too,
    so no file keeps that secret. index(state), when given, runs after it: it
    keeps lists in the state's head, which find() reads cheaply (last_head).
    """

    def __init__(self, paths, lock_wait=DEFAULT_LOCK_WAIT,
                 retention_days=DEFAULT_RETENTION_DAYS, tidy=None, index=None):
        self.paths = paths
        self.tidy = tidy
        self.index = index              # index(state) before every save: the head's lists
        self.last_head = {}             # the head of the state file find() last read
        self.bound = None               # a worker's installation (run_task_worker): no write
                                        # to another's; same_installation compares it
        self.trust = TrustedFiles(paths)
        self.file = StateFile(paths, self.trust, lock_wait)
        self.old = Archive(paths, self.trust, retention_days, tidy)
        self.ids = TaskIds(paths, self.old)
        self.repairs = StateRepair(paths, self.file, self.old, self.ids)

    # -- reading (no lock) ---------------------------------------------------

    def load(self):
        return self.file.load()

    def head(self):
        return self.file.head()

    def find(self, task_id):
        """The task from the state file, else from its archive file, else None. The
        state's head (its keys but the tasks) is kept in last_head."""
        task, self.last_head = self.file.find(task_id, with_head=True)
        if task is None and valid_task_id(task_id):
            task = self.old.load(archive_start(task_id)).get(task_id)
        return task

    def same_installation(self):
        """False when the state find() last read belongs to another installation than the
        one this worker was started for (bound: the provider was purged and installed
        again, its task ids start over, and a worker of the old one must not act on a new
        task); True when unknown."""
        found = self.last_head.get("installation") if isinstance(self.last_head, dict) else None
        return self.bound is None or found is None or found == self.bound

    def archive_starts(self):
        return self.old.starts()

    def archived_tasks(self):
        return self.old.tasks()

    def allocate_id(self, state):
        return self.ids.allocate(state, self.file.missing)

    # -- transactions (under the lock) -------------------------------------

    def update(self, change):
        """Run change(state) under the lock and save the state it leaves.

        change may raise ProviderError to refuse: then nothing is saved.
        The same transaction moves a bounded batch of old tasks to the archive.
        Returns what change returned.
        """
        lock_fd = self._acquire()
        try:
            state = self.file.load()
            self.migrate(state)
            if self.bound is not None and state.get("installation") != self.bound:
                raise OtherInstallation()   # purged and installed again: task N is not ours
            result = change(state)
            secret_removed = self.tidy(state) if self.tidy else False
            if self.index:
                self.index(state)
            self.old.retire(state)
            self._save(state, refresh_backup=secret_removed)
            return result
        finally:
            os.close(lock_fd)          # closing the descriptor drops the flock

    def migrate(self, state):
        """Give the state its installation id, once: 128 random bits that the owner tag
        of its servers comes from (owner_tag). A restored backup keeps it; a new state makes
        a new one. A state of provider.py 1.x (it has had tasks) keeps the tag its servers
        carry, the host name's, in legacy_owner_tags, and its failed orders with an
        unsettled create get a cleanup that looks their server up."""
        if is_hex(state.get("installation"), 32):
            return
        if state.get("next_id", 1) > 1 or state.get("archived_max_id"):
            state["legacy_owner_tags"] = [legacy_owner_tag(self.paths)]
            for task in state.get("tasks", {}).values():
                # a failed 1.x order whose create may have made a server nobody found: its
                # worker looks it up (ServerCleanup), to delete or keep, as on_failure says
                if (isinstance(task, dict) and task.get("status") == ERROR
                        and task.get("backend") in CLOUD_TYPES and unsettled_create(task)):
                    task["data"] = dict(task["data"], cleanup="pending",
                                        failed_because=task.get("message"))
        state["installation"] = "".join("%02x" % byte for byte in bytearray(os.urandom(16)))

    def compact(self, days=None):
        """Move every old terminal task to the archive now; (moved, staying)."""
        lock_fd = self._acquire(archive=True)
        try:
            state = self.file.load()
            secret_removed = self.tidy(state) if self.tidy else False
            if self.index:
                self.index(state)
            moved = self.old.retire(state, limit=None, strict=True, days=days)
            self._save(state, refresh_backup=secret_removed)   # also migrates an old schema
            self.old.tidy_files()      # passwords archived by an older provider.py
            return moved, len(state["tasks"])
        finally:
            os.close(lock_fd)

    def tidy_archive(self, starts=None):
        """Archive.tidy_files under the lock."""
        return self._locked(lambda: self.old.tidy_files(starts))

    def archive(self, tasks, strict=False):
        """Archive.add (the caller holds the lock)."""
        return self.old.add(tasks, strict)

    def restore_backup(self, force=False):
        return self._locked(lambda: self.repairs.restore_backup(force))

    def repair(self):
        return self._locked(self.repairs.repair)

    def _locked(self, action):
        """action() under the lock, with var/archive/ swept too (the commands for people)."""
        lock_fd = self._acquire(archive=True)
        try:
            return action()
        finally:
            os.close(lock_fd)

    def _acquire(self, archive=False):
        """Take the lock (bounded wait); then sweep what a killed writer left."""
        fd = self.file.lock()
        self.old.swept = False
        try:
            self.file.sweep()
            if archive:
                self.old.sweep()
        except BaseException:
            os.close(fd)
            raise
        return fd

    def _save(self, state, refresh_backup=False):
        self.file.save(state, refresh_backup)


def recover_tasks(raw):
    """The whole task records readable in a damaged state file, by id."""
    text = raw.decode("utf-8", "replace")
    decoder = json.JSONDecoder()
    found, covered = {}, 0
    import re
    for match in re.finditer(r'\{\s*"', text):
        if match.start() < covered:
            continue
        try:
            value, end = decoder.raw_decode(text, match.start())
        except (ValueError, RecursionError):
            continue
        if (isinstance(value, dict) and isinstance(value.get("id"), str)
                and valid_task_id(value["id"])
                and value.get("status") in (IN_PROGRESS, FINISHED, ERROR)
                and isinstance(value.get("config_id"), str)):
            task = new_task(value["id"], value["config_id"], "")
            task.update(value)
            for key in ("backend", "phase", "message", "server", "server_password"):
                if not isinstance(task.get(key), str):
                    task[key] = ""
            for key in ("created", "updated"):
                if not isinstance(task.get(key), int) or isinstance(task.get(key), bool):
                    task[key] = 0
            if not isinstance(task.get("data"), dict):
                task["data"] = {}
            found[value["id"]] = task
            covered = end
    return found


TASKS_START = b'"tasks":{'
TASKS_END = b"\n}}\n"


def encode_tasks_file(document):
    """A state or archive file as byte chunks: one JSON object whose "tasks"
    come last, one task per line in id order:

        {"next_id":25,...,"tasks":{
        "23":{...},
        "24":{...}
        }}

    The layout is stated once, at the top of the state section: a reader
    finds one task without parsing the rest (StateFile.find) and the head from
    the first line (StateFile.split_head). Encoding task by task also keeps the
    memory low.
    """
    def dump(value):
        text = json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
        try:
            return text.encode("utf-8")
        except UnicodeEncodeError:
            # a lone surrogate (a "\ud800" escape in something an API or a program
            # said): UTF-8 cannot hold it, JSON's own \u escape can
            return json.dumps(value, sort_keys=True, separators=(",", ":")).encode("ascii")
    tasks = document["tasks"]
    head = dict((key, value) for key, value in document.items() if key != "tasks")
    text = dump(head)[:-1]                      # '{"next_id":25,...' without its '}'
    yield (text + b"," if len(text) > 1 else text) + b'"tasks":{'
    ids = sorted(tasks, key=lambda k: (len(k), k))
    last = len(ids) - 1
    for index, task_id in enumerate(ids):
        yield b"\n" + dump(task_id) + b":" + dump(tasks[task_id]) + (b"," if index < last else b"")
    yield TASKS_END


def write_atomic(path, chunks, backup=None, what=None, limit=None):
    """Replace path by the byte chunks: temp file in the same folder, fsync,
    rename, fsync the folder. The file replaced is kept as `backup` (a hard link).
    More than limit bytes: E_WRITE and nothing changed (a reader would refuse it)."""
    folder = os.path.dirname(path)
    temp = os.path.join(folder, ".%s.%d.%d.tmp" % (
        os.path.basename(path), os.getpid(), int(time.time() * 1e6)))
    try:
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            pending, size, total = [], 0, 0
            for chunk in chunks:
                pending.append(chunk)
                size += len(chunk)
                total += len(chunk)
                if limit is not None and total > limit:
                    raise ProviderError(E_WRITE, "cannot save %s: it would be larger than %d "
                                        "bytes, the most the plugin reads; nothing was changed"
                                        % (what or path, limit))
                if size >= 65536:
                    write_all(fd, b"".join(pending))
                    pending, size = [], 0
            write_all(fd, b"".join(pending))
            os.fsync(fd)
        finally:
            os.close(fd)
        if backup:
            keep_backup(path, backup)
        os.replace(temp, path)
    except BaseException as exc:          # no temp file is left behind, whatever went wrong
        try:
            os.unlink(temp)
        except OSError:
            pass
        if not isinstance(exc, OSError):
            raise
        if denied(exc):
            raise permission_error("save", what or path)
        raise ProviderError(E_WRITE, "cannot save %s: %s; nothing was changed"
                            % (what or path, exc.strerror))
    fsync_dir(folder)


def write_all(fd, data):
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def keep_backup(current, backup):
    """Keep the file about to be replaced as the backup (a hard link)."""
    if not os.path.exists(current):
        return
    try:
        if os.path.samefile(current, backup):
            return   # already the same file (rename() of a link to itself does nothing)
    except OSError:
        pass
    link = backup + ".%d.tmp" % os.getpid()
    try:
        os.link(current, link)
    except OSError:
        return   # no hard links here: keep the older backup rather than fail
    os.replace(link, backup)


def fsync_dir(folder):
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


# ---------------------------------------------------------------------------
# Config: load, validate (every problem with its JSON path), defaults
# ---------------------------------------------------------------------------

ID_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")


def valid_config_id(text):
    # a leading "-" or "." would reach the plugin as an option (`order -h`)
    # or look like a hidden file: the first character is a letter or digit
    return (0 < len(text) <= 64 and all(ch in ID_CHARS for ch in text)
            and text[0] not in "-._")


def type_name(value):
    return {dict: "object", list: "array", str: "string", bool: "boolean",
            int: "integer", float: "number", type(None): "null"}.get(type(value), "value")


class Checker(object):
    """Collects config problems, each with the JSON path it is about."""

    KINDS = {"string": (str,), "boolean": (bool,), "object": (dict,), "array": (list,),
             "integer": (int,), "number": (int, float),
             # a value or a list of alternatives (the cloud layer's fallbacks)
             "string or array": (str, list), "integer or array": (int, list),
             "string or integer": (str, int),
             "string or object": (str, dict)}

    def __init__(self):
        self.problems = []

    def add(self, path, text):
        self.problems.append("%s: %s" % (path, text))

    def is_a(self, value, kind, path):
        """True when value has the kind; a bool is not a number here."""
        ok = (isinstance(value, self.KINDS[kind])
              and not (kind in ("integer", "number") and isinstance(value, bool)))
        if not ok:
            self.add(path, "must be %s %s, not %s" % (
                "an" if kind[0] in "aeiou" else "a",
                kind.replace(" or array", " or a list of them"), type_name(value)))
        return ok

    def keys(self, obj, path, fields, required=()):
        """Check an object's keys against fields {key: (kind, check or None)};
        a check is called as check(checker, value, path)."""
        for key in required:
            if key not in obj:
                self.add(path, "missing key %r" % key)
        for key, value in obj.items():
            if key.startswith("_"):
                continue      # "_comment" and friends: JSON has no comments
            where = "%s.%s" % (path, key)
            if key not in fields:
                self.add(where, "unknown key (known: %s)" % ", ".join(sorted(fields)))
                continue
            kind, extra = fields[key]
            if self.is_a(value, kind, where) and extra is not None:
                extra(self, value, where)

    # Seconds and days beyond this overflow time_t and float (timeouts, sockets);
    # NaN and Infinity, which Python's json accepts, are refused as well.
    LARGEST = 10 ** 9

    def positive(self, value, path):
        if value <= 0:
            self.add(path, "must be greater than 0")
        elif not value <= self.LARGEST:
            self.add(path, "must be a finite number, at most %d" % self.LARGEST)

    def non_negative(self, value, path):
        if not 0 <= value <= self.LARGEST:
            self.add(path, "must be a finite number, 0 to %d" % self.LARGEST)

    def nonempty(self, value, path):
        if not value.strip():
            self.add(path, "must not be empty")

    def port(self, value, path):
        if not 0 < value < 65536:
            self.add(path, "must be a TCP port, 1-65535")


class Config(object):
    """A validated config. Holds the settings and the backend object."""

    TOP_FIELDS = {
        "enabled": ("boolean", None),
        "backend": ("object", None),
        "configurations": ("array", None),
        "lock_wait": ("number", Checker.positive),
        "retention_days": ("number", Checker.non_negative),
        "password_ttl_days": ("number", Checker.positive),
        "notify": ("array", None),
        "notify_timeout": ("number", Checker.positive),
    }

    def __init__(self, data, path, paths, log, provider=None):
        self.path = path
        self.data = data
        self.enabled = data.get("enabled", False)
        self.lock_wait = float(data.get("lock_wait", DEFAULT_LOCK_WAIT))
        self.retention_days = float(data.get("retention_days", DEFAULT_RETENTION_DAYS))
        self.password_ttl_days = float(data.get("password_ttl_days", DEFAULT_PASSWORD_TTL_DAYS))
        self.notify = data.get("notify")
        self.notify_timeout = float(data.get("notify_timeout", DEFAULT_NOTIFY_TIMEOUT))
        self.configurations = data["configurations"]
        self.by_id = dict((c["id"], c) for c in self.configurations)
        self.backend = backend_class(data["backend"]["type"])(data["backend"], paths, log,
                                                             provider)

    @classmethod
    def load(cls, paths, log, provider=None):
        """The config at paths.config, validated; provider: the Provider whose config it
        becomes (its backend is built with it), None for a look at the file alone."""
        path = paths.config
        raw = TrustedFiles(paths).read_private(path, "the config", MAX_CONFIG_BYTES,
                                               missing=(E_DISABLED, "no config at %s" % path))
        data, problem = parse_config_json(raw)
        if problem:
            raise ProviderError(E_CONFIG, "the config %s %s" % (path, problem))
        problems = validate_config(data)
        if problems:
            raise ProviderError(E_CONFIG, "the config %s has %d problem%s: %s" % (
                path, len(problems), "" if len(problems) == 1 else "s", "; ".join(problems)))
        return cls(data, path, paths, log, provider)

    def configuration(self, config_id):
        found = self.by_id.get(config_id)
        if found is None:
            raise ProviderError(E_UNKNOWN_CONFIG, "no configuration %s (known: %s)" % (
                printable(config_id), ", ".join(sorted(self.by_id)) or "none"))
        return found


def parse_config_json(raw):
    """(data, None) for the config's bytes, or (None, why it cannot be used).

    A UTF-8 byte order mark (Windows editors write one) is skipped. A key given
    twice in one object (JSON would silently keep the last one, e.g.
    "enabled": false ... true) is a problem named by its JSON path, and so is
    nesting deeper than MAX_CONFIG_DEPTH (no config needs it; Python's parser
    would fail with a RecursionError)."""
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return None, "is not UTF-8 (byte %d): save it as UTF-8" % exc.start
    objects = []

    def keep_pairs(pairs):
        obj = dict(pairs)
        if len(obj) < len(pairs):
            objects.append((obj, pairs))
        return obj
    try:
        data = json.loads(text, object_pairs_hook=keep_pairs)
    except RecursionError:
        return None, "is nested too deeply (at most %d levels)" % MAX_CONFIG_DEPTH
    except ValueError as exc:
        return None, "is not valid JSON: %s" % json_error_hint(text, exc)
    problems = json_shape_problems(data, MAX_CONFIG_DEPTH, dict((id(o), p) for o, p in objects))
    if problems:
        return None, "has %d problem%s: %s" % (len(problems), "" if len(problems) == 1 else "s",
                                               "; ".join(problems))
    return data, None


def json_error_hint(text, exc):
    """The parser's complaint, said plainly where a person's habit caused it: a
    comma before '}' or ']' (JSON allows no trailing comma), or a comment
    (// or /* or #: JSON has none); else the parser's own text."""
    pos = getattr(exc, "pos", None)
    if not isinstance(pos, int) or not 0 <= pos <= len(text):
        return str(exc)

    def where(at):
        line = text.count("\n", 0, at) + 1
        return "line %d column %d" % (line, at - text.rfind("\n", 0, at))
    if text.startswith(("//", "/*", "#"), pos):
        return "a comment at %s: JSON has no comments: use a \"_comment\" key" % where(pos)
    if text.startswith(",", pos):          # 3.13 points at the comma, older ones after it
        comma, after = pos, text[pos + 1:].lstrip()[:1]
    else:
        comma, after = len(text[:pos].rstrip()) - 1, text[pos:pos + 1]
    if comma >= 0 and text.startswith(",", comma) and after in ("}", "]"):
        return "a trailing comma at %s, before '%s': JSON allows none, remove it" % (
            where(comma), after)
    return str(exc)


def json_shape_problems(data, max_depth, duplicated):
    """Keys given twice ({id(object): its pairs} in duplicated) and nesting
    deeper than max_depth, as 'json.path: what'. Iterative: any depth."""
    problems = []
    pending = [("$", data, 1)]
    while pending:
        path, value, depth = pending.pop()
        if depth > max_depth and isinstance(value, (dict, list)):
            problems.append("%s: nested deeper than %d levels" % (path, max_depth))
            continue
        if isinstance(value, dict):
            seen = set()
            for key, _ in duplicated.get(id(value), ()):
                if key in seen:
                    problems.append("%s.%s: duplicate key (JSON keeps only the last one)"
                                    % (path, key))
                seen.add(key)
            pending.extend(("%s.%s" % (path, k), v, depth + 1) for k, v in value.items())
        elif isinstance(value, list):
            pending.extend(("%s[%d]" % (path, i), v, depth + 1) for i, v in enumerate(value))
    return sorted(set(problems))


def validate_config(data):
    """Every problem of a config, as 'json.path: what is wrong'."""
    check = Checker()
    if not isinstance(data, dict):
        check.add("$", "the config must be a JSON object, not %s" % type_name(data))
        return check.problems
    check.keys(data, "$", Config.TOP_FIELDS, required=("enabled", "backend", "configurations"))
    if isinstance(data.get("notify"), list):
        check_argv(check, data["notify"], "$.notify")
    kind_class = None
    backend = data.get("backend")
    if isinstance(backend, dict):
        kind = backend.get("type")
        if "type" not in backend:
            check.add("$.backend", "missing key 'type' (one of: %s)" % ", ".join(sorted(BACKENDS)))
        elif not isinstance(kind, str) or kind not in BACKENDS:
            check.add("$.backend.type", "unknown backend %s (one of: %s)" % (
                json.dumps(kind, ensure_ascii=False), ", ".join(sorted(BACKENDS))))
        else:
            kind_class = backend_class(kind)
            fields = dict(kind_class.SETTINGS)
            fields["type"] = ("string", None)
            check.keys(backend, "$.backend", fields)
    configurations = data.get("configurations")
    if isinstance(configurations, list):
        fields = {"id": ("string", None), "descr": ("string", Checker.nonempty)}
        if kind_class is not None:
            fields.update(kind_class.PARAMETERS)
        seen = {}
        for index, item in enumerate(configurations):
            where = "$.configurations[%d]" % index
            if not check.is_a(item, "object", where):
                continue
            check.keys(item, where, fields, required=("id", "descr"))
            config_id = item.get("id")
            if isinstance(config_id, str):
                if not valid_config_id(config_id):
                    check.add(where + ".id", "%s is not 1-64 letters, digits, '.', '_', '-' "
                              "starting with a letter or digit"
                              % json.dumps(config_id, ensure_ascii=False))
                elif config_id in seen:
                    check.add(where + ".id", "duplicate id %s (also at $.configurations[%d])"
                              % (json.dumps(config_id), seen[config_id]))
                else:
                    seen[config_id] = index
            if kind_class is not None:
                kind_class.validate_configuration(item, where, check)
    if kind_class is not None and isinstance(backend, dict) and not check.problems:
        kind_class.validate_settings(backend, "$.backend", check)
    if kind_class is not None and isinstance(configurations, list) and not check.problems:
        kind_class.validate_across(backend, configurations, "$.configurations", check)
    return check.problems


# ---------------------------------------------------------------------------
# Helpers shared by the backends
# ---------------------------------------------------------------------------

def now():
    return int(time.time())


def printable(text, limit=80):
    """A user-supplied string made safe to quote in a one-line message."""
    text = "".join(ch if ch.isprintable() else "?" for ch in text)
    return text if len(text) <= limit else text[:limit] + "..."


# Names that mean this host whatever /etc/hosts says (RFC 6761 reserves *.localhost).
LOOPBACK_NAMES = frozenset(("localhost", "localhost.localdomain", "localhost4",
                            "localhost4.localdomain4", "localhost6", "localhost6.localdomain6",
                            "ip6-localhost", "ip6-loopback"))
HOST_LABEL_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-")
SERVER_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-.:")


def check_server(text, allow_loopback=False):
    """THE validator of every `server` the plugin hands out, whatever its source
    (pool config, `task finish --server`, the command program, a cloud API):
    (canonical server, None), or (None, why not).

    Accepted: a dotted-quad IPv4 without leading zeros, or a host name of
    letters, digits, hyphens and dots (lower-cased, no trailing dot): the
    caller adds IPv4 servers only (bx_connect ipv4, names through A records),
    so an IPv6 address is refused in every spelling, an IPv4-mapped one too.
    Refused in every spelling: loopback (unless allow_loopback), unspecified
    (0.0.0.0/8), link-local, multicast, broadcast and reserved addresses,
    and anything a resolver reads as an IPv4 in another spelling (0177.0.0.1,
    127.1, 2130706433, 0x7f000001). Private and documentation ranges pass:
    pool servers often live on the master's private network."""
    if not isinstance(text, str):
        return None, "%s is not a string" % json.dumps(text, ensure_ascii=False)
    plain = text and set(text) <= SERVER_CHARS and len(text) <= 100
    shown = text if plain else json.dumps(printable(text, 100), ensure_ascii=False)
    if not text or len(text) > 253:
        return None, "%s is not an IP address or host name (1 to 253 characters)" % shown
    if any(not ch.isprintable() or ch.isspace() for ch in text):
        return None, ("%s is not an IP address or host name (it holds control characters or "
                      "white space)" % shown)
    if ":" in text:
        return None, ipv6_refused(text, shown)
    address, why = ipv4_server(text)
    if why:
        return None, "%s %s" % (shown, why)
    if address is not None:
        return address_server(address, shown, allow_loopback)
    name = text.lower()
    name = name[:-1] if name.endswith(".") else name
    labels = name.split(".")
    if not all(0 < len(label) <= 63 and set(label) <= HOST_LABEL_CHARS and
               label[0] != "-" and label[-1] != "-" for label in labels):
        return None, ("%s is not an IP address or host name (letters, digits, hyphens and "
                      "dots; no label may start or end with a hyphen)" % shown)
    if name in LOOPBACK_NAMES or labels[-1] == "localhost":
        if not allow_loopback:
            return None, loopback_refused(shown)
    return name, None


DIGITS = frozenset("0123456789")


def ipv4_server(text):
    """(IPv4Address, None) for a canonical dotted quad, (None, why) for another
    spelling a resolver would read as an IPv4, (None, None) for a host name."""
    import ipaddress
    parts = text.split(".")
    last = (parts[-2] if len(parts) > 1 and not parts[-1] else parts[-1]).lower()
    if not (set(last) <= DIGITS or (last.startswith("0x") and
                                    set(last[2:]) <= frozenset("0123456789abcdef"))):
        return None, None            # a host name's last label is never a number
    if len(parts) == 4 and all(part and set(part) <= DIGITS and int(part) <= 255 and
                               (part == "0" or part[0] != "0") for part in parts):
        return ipaddress.IPv4Address(text), None
    return None, ("is no canonical IPv4 address (write four decimal numbers a.b.c.d "
                  "without leading zeros: 0177.0.0.1, 127.1 and 2130706433 all mean "
                  "127.0.0.1 to a resolver)")


IPV4_ONLY = ("the caller (BitrixVM) adds IPv4 servers only: give the server's IPv4 address "
             "or a host name with an A record")


def ipv6_refused(text, shown):
    """Why a server spelt with ":" is refused: an IPv6 address (the caller adds
    IPv4 servers only), or no address at all (a port, a zone, brackets)."""
    import ipaddress
    try:
        address = ipaddress.IPv6Address(text)
    except ValueError:
        return "%s is not an IP address or host name (no port, brackets or %%zone; %s)" % (
            shown, IPV4_ONLY)
    mapped = address.ipv4_mapped
    return "%s is an IPv6 address%s: %s" % (
        shown, " (IPv4 %s written as IPv6)" % mapped if mapped else "", IPV4_ONLY)


def address_server(address, shown, allow_loopback):
    """The checks of a canonical IPv4 address."""
    if address.is_loopback:
        if allow_loopback:
            return str(address), None
        return None, loopback_refused(shown)
    for test, what in (("is_unspecified", "unspecified"), ("is_link_local", "link-local"),
                       ("is_multicast", "multicast")):
        if getattr(address, test):
            return None, "%s is a%s %s address: no server can be reached there" % (
                shown, "n" if what[0] == "u" else "", what)
    if address.packed[0] == 0 or address.is_reserved:
        return None, ("%s is a reserved IPv4 address (0.0.0.0/8, 240.0.0.0/4): no server "
                      "can be reached there" % shown)
    return str(address), None


def loopback_report(label, settings):
    """check's line when allow_loopback is on (a failure: it is for tests only)."""
    if settings.get("allow_loopback"):
        return [(False, "%s: allow_loopback is true: the caller refuses loopback servers; "
                        "this is for tests only (remove it from the backend)" % label)]
    return []


def loopback_refused(shown):
    return ("%s is a loopback address, which the caller refuses (allow_loopback: true is "
            "for tests only)" % shown)


NO_ROUTE = "no route to host"
DEAD_AT_ONCE = ("connection refused", NO_ROUTE)    # probe answers that need no second look


def ssh_banner_probe(host, port=22, timeout=5.0):
    """(True, banner) when host:port answers with an SSH banner within timeout
    seconds, connection and banner together; else (False, why), why a short
    cause: "name does not resolve", "connection refused", "no route to host",
    "no SSH banner within N s", ... IPv4 only, as the caller (a host name by its A record)."""
    import socket
    deadline = time.monotonic() + timeout
    try:
        address = socket.getaddrinfo(host, port, socket.AF_INET, socket.SOCK_STREAM)[0][4]
        conn = socket.create_connection(address, timeout=timeout)
    except socket.gaierror:
        return False, "name does not resolve (to an IPv4 address)"
    except socket.timeout:
        return False, "no connection within %g s" % timeout
    except (socket.error, ValueError) as exc:
        if getattr(exc, "errno", None) == errno.ECONNREFUSED:
            return False, "connection refused"
        if getattr(exc, "errno", None) in (errno.EHOSTUNREACH, errno.ENETUNREACH):
            return False, NO_ROUTE
        return False, "no connection (%s)" % (getattr(exc, "strerror", None) or exc)
    data = b""
    try:
        while b"\n" not in data and len(data) < 256:
            left = deadline - time.monotonic()
            if left <= 0:
                raise socket.timeout()
            conn.settimeout(left)
            chunk = conn.recv(256)
            if not chunk:
                break
            data += chunk
    except socket.timeout:
        return False, "no SSH banner within %g s" % timeout
    except socket.error as exc:
        return False, "the connection broke before the SSH banner (%s)" % (exc.strerror or exc)
    finally:
        conn.close()
    if not data.startswith(b"SSH-"):
        return False, "port %d does not speak SSH" % port
    return True, data.split(b"\n")[0].strip().decode("ascii", "replace")


# -- First contact: the server's host keys in the known_hosts of the caller's user --

HOST_KEY_TYPES = frozenset([
    "ssh-ed25519", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521",
    "ssh-rsa", "sk-ssh-ed25519@openssh.com", "sk-ecdsa-sha2-nistp256@openssh.com"])
KNOWN_HOSTS_ENV = "BXPROVIDER_KNOWN_HOSTS"     # another known_hosts file: for tests/debugging
MAX_KNOWN_HOSTS = 16 * 1024 * 1024


def parse_host_key(text):
    """"TYPE BASE64" of a public key line (its comment dropped), or None."""
    import base64
    import binascii
    import struct
    fields = text.split() if isinstance(text, str) else []
    if len(fields) < 2 or fields[0] not in HOST_KEY_TYPES:
        return None
    try:
        blob = base64.b64decode(fields[1].encode("ascii"), validate=True)
    except (ValueError, binascii.Error):
        return None
    kind = fields[0].encode("ascii")
    if blob[:4 + len(kind)] != struct.pack(">I", len(kind)) + kind:
        return None           # the blob names another type than the line
    return "%s %s" % (fields[0], base64.b64encode(blob).decode("ascii"))


def key_fingerprint(key):
    """"SHA256:..." of a "TYPE BASE64" key, as ssh-keygen -l shows it."""
    import base64
    import hashlib
    digest = hashlib.sha256(base64.b64decode(key.split()[1])).digest()
    return "SHA256:" + base64.b64encode(digest).decode("ascii").rstrip("=")


def parse_fingerprint(text):
    """A SHA256 fingerprint ("SHA256:" and 43 base64 characters) as key_fingerprint
    writes it, or None."""
    import base64
    import binascii
    body = text[7:] if text.startswith("SHA256:") else text
    body = body.rstrip("=")
    try:
        if len(body) != 43 or len(base64.b64decode(body + "=", validate=True)) != 32:
            return None
    except (ValueError, binascii.Error):
        return None
    return "SHA256:" + body


def scan_host_keys(host, port, timeout):
    """(["TYPE BASE64", ...], None): the host keys host:port shows (ssh-keyscan),
    or (None, why)."""
    import subprocess
    argv = ["ssh-keyscan", "-4", "-T", str(max(1, int(timeout + 0.999))), "-p", str(port), host]
    try:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, close_fds=True, env=child_env())
    except OSError as exc:
        return None, "cannot run ssh-keyscan: %s" % (exc.strerror or exc)
    try:
        out, _ = proc.communicate(timeout=timeout + 2)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        return None, "ssh-keyscan read no host key within %g s" % timeout
    keys = []
    for line in out.decode("ascii", "replace").splitlines():
        fields = line.split()
        key = parse_host_key(" ".join(fields[1:3])) if not line.startswith("#") else None
        if key and key not in keys:
            keys.append(key)
    return (keys, None) if keys else (None, "ssh-keyscan read no host key")


def trusted_host_keys(scanned, data):
    """(keys to write, None) of the scanned keys: the pinned one when the task
    pins one (data host_key or host_key_sha256), else all (first use);
    (None, why) when the server shows another key than the pinned one."""
    pinned, fingerprint = data.get("host_key"), data.get("host_key_sha256")
    if pinned:
        if pinned in scanned:
            return [pinned], None
        want = key_fingerprint(pinned)
    elif fingerprint:
        found = [key for key in scanned if key_fingerprint(key) == fingerprint]
        if found:
            return found, None
        want = fingerprint
    else:
        return scanned, None
    return None, "shows another host key than the one pinned (%s, not %s)" % (
        ", ".join(key_fingerprint(key) for key in scanned), want)


def known_hosts_path():
    """~/.ssh/known_hosts of the user running this, home from the password
    database as ssh reads it ($HOME is not what ssh uses); the environment
    variable BXPROVIDER_KNOWN_HOSTS names another file (tests, debugging)."""
    override = os.environ.get(KNOWN_HOSTS_ENV)
    if override:
        return os.path.abspath(override)
    import pwd
    try:
        home = pwd.getpwuid(os.geteuid()).pw_dir
    except KeyError:
        return None
    return os.path.join(home, ".ssh", "known_hosts") if home else None


def known_hosts_name(host, port):
    """How ssh names host:port in known_hosts."""
    return host.lower() if port == 22 else "[%s]:%d" % (host.lower(), port)


def hashed_name_matches(field, name):
    """A hashed known_hosts name "|1|SALT|HASH" is name (HMAC-SHA1, as ssh hashes it)."""
    import base64
    import binascii
    import hashlib
    import hmac
    parts = field.split(b"|")
    if len(parts) != 4 or parts[1] != b"1":
        return False
    try:
        salt, digest = base64.b64decode(parts[2]), base64.b64decode(parts[3])
    except (ValueError, binascii.Error):
        return False
    return hmac.compare_digest(hmac.new(salt, name, hashlib.sha1).digest(), digest)


def known_hosts_text(old, host, port, keys):
    """known_hosts bytes with every line for host:port (plain or hashed) dropped,
    the name taken out of lines that list others too, and keys added; comments,
    markers (@revoked, @cert-authority), patterns and other hosts kept."""
    name = known_hosts_name(host, port).encode("ascii")
    out = []
    for line in old.splitlines(True):
        fields = line.split(None, 1)
        if not fields or fields[0].startswith((b"#", b"@")) or len(fields) < 2:
            out.append(line)
        elif fields[0].startswith(b"|"):
            if not hashed_name_matches(fields[0], name):
                out.append(line)
        else:
            names = fields[0].split(b",")
            kept = [n for n in names if n.lower() != name]
            if len(kept) == len(names):
                out.append(line)
            elif kept:
                out.append(b",".join(kept) + b" " + fields[1])
    if out and not out[-1].endswith(b"\n"):
        out[-1] += b"\n"
    out.extend(b"%s %s\n" % (name, key.encode("ascii")) for key in keys)
    return b"".join(out)


def write_known_hosts(path, host, port, keys):
    """Make path hold exactly keys for host:port (known_hosts_text); owner and
    mode kept, written atomically under an flock on its folder (two calls
    never lose each other's lines), the folder made 0700 if missing. True when
    the file changed. Raises OSError."""
    import fcntl
    real = os.path.realpath(path)       # a symlinked known_hosts stays a link
    folder = os.path.dirname(real)
    if not os.path.isdir(folder):
        refuse_unsafe_folder(os.path.dirname(folder), False)
        os.mkdir(folder, 0o700)
    refuse_unsafe_folder(folder, True)
    dir_fd = os.open(folder, os.O_RDONLY)
    try:
        for _ in range(200):            # a writer holds it for milliseconds
            try:
                fcntl.flock(dir_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except (IOError, OSError):
                time.sleep(0.01)
        else:
            raise OSError(errno.EAGAIN, "%s is locked by another writer" % folder)
        try:            # not blocking on a FIFO, never reading through a new link
            with os.fdopen(os.open(real, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW),
                           "rb") as handle:
                info = os.fstat(handle.fileno())
                if not stat.S_ISREG(info.st_mode) or info.st_size > MAX_KNOWN_HOSTS:
                    raise OSError(errno.EINVAL, "%s is not a regular file of at most %d bytes"
                                  % (real, MAX_KNOWN_HOSTS))
                old = handle.read()
        except (IOError, OSError) as exc:
            if exc.errno != errno.ENOENT:
                raise
            old, info = b"", None
        new = known_hosts_text(old, host, port, keys)
        if new == old:
            return False
        replace_keeping_owner(real, new, info)
        return True
    finally:
        os.close(dir_fd)


def known_hosts_problem(path):
    """Why write_known_hosts(path, ...) would refuse or fail now (its folder
    rules, a file that is not a regular one, a folder it cannot write), or
    None: for `check`."""
    real = os.path.realpath(path)
    folder = os.path.dirname(real)
    made_in = folder if os.path.isdir(folder) else os.path.dirname(folder)
    try:
        refuse_unsafe_folder(made_in, made_in == folder)
        info = os.lstat(real)
    except OSError as exc:
        if exc.errno != errno.ENOENT:
            return printable(exc.strerror or str(exc))
        info = None
    if info is not None and not stat.S_ISREG(info.st_mode):
        return "%s is not a regular file" % printable(real)
    if not os.access(made_in, os.W_OK):     # the file is replaced through a temp file there
        return "%s is not writable" % printable(made_in)
    return None


def refuse_unsafe_folder(folder, own):
    """Raise OSError unless no other user can swap a file in folder: it and every
    folder above it belong to root or this user, and none is writable by others
    (one above it may be when sticky, as /tmp; own: folder itself may not)."""
    path, first = folder, True
    while True:
        info = os.stat(path)
        if info.st_uid not in (0, os.geteuid()) or info.st_mode & 0o022 and (
                (first and own) or not info.st_mode & stat.S_ISVTX):
            raise OSError(errno.EPERM, "%s belongs to uid %d or others may write to it "
                          "(mode %o)" % (path, info.st_uid, stat.S_IMODE(info.st_mode)))
        parent = os.path.dirname(path)
        if parent == path:
            return
        path, first = parent, False


def replace_keeping_owner(path, data, info):
    """Atomic replace of path by data with the owner and mode of info (0600 if None)."""
    temp = "%s.%d.tmp" % (path, os.getpid())
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    try:
        try:
            if info is not None:
                if (info.st_uid, info.st_gid) != (os.geteuid(), os.getegid()):
                    os.fchown(fd, info.st_uid, info.st_gid)
                os.fchmod(fd, stat.S_IMODE(info.st_mode))
            write_all(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(temp, path)
    except BaseException:
        try:
            os.unlink(temp)
        except OSError:
            pass
        raise
    fsync_dir(os.path.dirname(path))


# Backend settings for backends that hand out servers they did not build by hand.
SSH_SETTINGS = {
    "ssh_probe": ("boolean", None),
    "ssh_port": ("integer", Checker.port),
    "ssh_timeout": ("number", Checker.positive),
    "ready_timeout": ("number", Checker.positive),
    "known_hosts": ("boolean", None),
    "allow_loopback": ("boolean", None),
}
DEFAULT_SSH_TIMEOUT = 3.0
DEFAULT_READY_TIMEOUT = 1800
SSH_WAIT_PAUSES = (1, 1, 2, 2, 3, 5, 5, 10)   # s between two probes in a worker; then 10 s
KEY_NOT_READ = "its host key cannot be read yet"     # SSH answered, ssh-keyscan did not


def ssh_ready(settings, server, data):
    """Look at server once: (changes, None) when the task is done with waiting
    (finished, or error: another host key than the pinned one), or (None, why)
    while it is not ready. data: the task's, for a pinned key. With ssh_probe
    off nothing is contacted: the pinned key, if any, is taken as it is."""
    port = settings.get("ssh_port", 22)
    remember = settings.get("known_hosts", True)
    pinned = data.get("host_key")
    keys = [pinned] if pinned else None
    if not settings.get("ssh_probe", True):
        message = "ready (SSH probe disabled)"
    else:
        timeout = settings.get("ssh_timeout", DEFAULT_SSH_TIMEOUT)
        ok, detail = ssh_banner_probe(server, port, timeout)
        if not ok:
            return None, detail
        message = "ready: %s port %d answers %s" % (server, port, printable(detail, 60))
        if remember or pinned or data.get("host_key_sha256"):
            scanned, why = scan_host_keys(server, port, timeout)
            if scanned is None and (pinned or data.get("host_key_sha256")):
                return None, "%s (%s)" % (KEY_NOT_READ, why)
            if scanned is None:
                message += "; its host key could not be read (%s)" % why
            else:
                keys, problem = trusted_host_keys(scanned, data)
                if problem:
                    return {"status": ERROR, "phase": "failed", "message": "%s port %d %s: "
                            "not handed out" % (server, port, problem)}, None
    changes = {"status": FINISHED, "phase": "done", "message": message}
    if remember and keys:
        changes["data"] = {"host_keys": keys, "ssh_port": port}
    return changes, None


def check_host_key_pin(check, entry, where):
    """A pool server's host_key / host_key_sha256, if any, must parse."""
    if "host_key" in entry and "host_key_sha256" in entry:
        check.add(where, "give host_key or host_key_sha256, not both")
    if isinstance(entry.get("host_key"), str) and parse_host_key(entry["host_key"]) is None:
        check.add(where + ".host_key", "is not a public key line (TYPE BASE64, as in "
                  "/etc/ssh/ssh_host_ed25519_key.pub)")
    if (isinstance(entry.get("host_key_sha256"), str)
            and parse_fingerprint(entry["host_key_sha256"]) is None):
        check.add(where + ".host_key_sha256", "is not a SHA256 fingerprint (SHA256: and 43 "
                  "characters, as `ssh-keygen -lf` shows it)")


SHELL_MANGLED = "*?["               # glob characters the caller's quoting leaves to the shell


def password_problem(text):
    """Why text cannot be a root password the caller types into ssh, or None."""
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in text):
        return "has control characters"
    if any(0xD800 <= ord(ch) <= 0xDFFF for ch in text):
        return "is not valid Unicode text (a lone surrogate, e.g. \\ud800 in JSON)"
    if text.startswith("~") or any(ch in SHELL_MANGLED for ch in text):
        # the caller's escaping (Pool::esc_chars) leaves these to /bin/sh, which
        # expands them: ssh_keycopy would send another password, and fail for good
        return ("starts with ~ or holds * ? [ (the caller's shell would change it, so adding "
                "the server to the pool would fail)")
    return None


# ---------------------------------------------------------------------------
# Backends
# ---------------------------------------------------------------------------

class Backend(object):
    """What every backend provides. A new backend is one subclass + BACKENDS.

    SETTINGS and PARAMETERS declare the keys a backend reads from the
    config's "backend" object and from each configuration, as
    {key: (kind, extra check or None)}; validate_settings and
    validate_configuration add checks that span keys.

    The order of calls for one task:
      place(task, configuration, state)  under the state lock, no network, no
          child process: fills the task or raises ProviderError, and then no
          task is created. It may change other parts of state (a pool claim).
      launch(task, configuration)        after the task is saved, lock released:
          start the real work (a detached worker, an API create). Returns a
          dict of task changes or None.
      poll(task, configuration)          on order_status of a pending task, with
          no lock: look at the real world, return task changes or None; {}
          when its worker saved the task (order_status reads it again).
      check(configurations, state)       for `check`: a list of (ok, text);
          state is None when the state file cannot be read.
    Task changes are applied under the lock only if the task is still pending.

    Optional hooks (the defaults suit a backend with nothing to count):
      validate_across(settings, configurations, path, check)  checks that span
          the settings and all configurations (a server listed twice).
      configs_need_state()  True when available() must see the state; only
          then does `configs` read the state file.
      available(configuration, state)  False hides a sold-out configuration.
      release(task, state)  under the lock, for `task release`: give back
          what the task holds and return a text saying what, or raise.
      delete_server(task)  no lock held, for `task delete-server`: destroy the
          cloud server the task rents (task["data"]["server_id"]); returns a text.
      cancel(task)  no lock held, after `task fail` saved a pending task as
          error: stop the work still running for it, or say what it still
          holds; returns a text or None.
      settle(task)  no lock held, after order_status saved a task, and for a
          terminal task marked cleanup "pending" (cloud: a server to delete, or
          the server of an unsettled create to look for):
          start background work the task still needs. Quick, no network.
    """

    TYPE = None
    SETTINGS = {"known_hosts": ("boolean", None)}
    PARAMETERS = {}
    HOST_KEY_TOOL = "ssh-keyscan"    # how a new server's host key is learnt (for `check`)

    def __init__(self, settings, paths, log, provider=None):
        self.settings = settings
        self.paths = paths
        self.log = log
        # provider: the Provider of the call whose config built this backend (None: a
        # config only looked at). Its store takes the backend's own writes (a cloud
        # token's cache); its workers run with it (start_worker).
        self.provider = provider
        self.store = provider.store if provider is not None else None

    @classmethod
    def validate_settings(cls, settings, path, check):
        pass

    @classmethod
    def validate_configuration(cls, configuration, path, check):
        pass

    @classmethod
    def validate_across(cls, settings, configurations, path, check):
        pass

    def configs_need_state(self):
        return False

    def available(self, configuration, state):
        return True

    def release(self, task, state):
        raise ProviderError(E_TASK_STATE, "task %s holds nothing to release: the %s backend "
                            "keeps no pool" % (task["id"], self.TYPE))

    def place(self, task, configuration, state):
        """Fill in the new task (phase, message, data); see the class docstring."""
        task["phase"] = "placed"

    def launch(self, task, configuration):
        return None

    def poll(self, task, configuration):
        return None

    def check(self, configurations, state):
        return []

    def delete_server(self, task):
        raise ProviderError(E_TASK_STATE, "the %s backend rents no servers" % self.TYPE)

    def cancel(self, task):
        return None

    def settle(self, task):
        pass

    # -- a backend with a detached worker (its supervise()) ---------------------

    def task_log(self, task_id):
        return os.path.join(self.paths.log_dir, "tasks", task_id + ".log")

    def start_worker(self, task, again=False):
        """Start the task's detached worker (fork_worker) with this backend's
        provider; again: only if none holds the lock now (False when one does)."""
        if self.provider is None:
            raise ProviderError(E_INTERNAL, "the %s backend was built without a provider: "
                                "it starts no worker" % self.TYPE)
        return fork_worker(self.provider, task["id"], self.task_log(task["id"]),
                           again) is not None


class ManualBackend(Backend):
    """An operator finishes each order by hand: `NAME task finish ID --server ADDR`,
    which first checks the server (hand_finish_contact): its SSH banner on
    ssh_port within ssh_timeout (at most FINISH_PROBE_LIMIT s), then its host
    keys (ssh-keyscan) for the caller's known_hosts."""

    TYPE = "manual"
    SETTINGS = dict((key, SSH_SETTINGS[key]) for key in
                    ("ssh_port", "ssh_timeout", "known_hosts", "allow_loopback"))

    def place(self, task, configuration, state):
        task["phase"] = "waiting"
        task["message"] = "waiting for the operator"

    def check(self, configurations, state):
        report = [(True, "manual backend: orders wait until an operator runs "
                         "`%s task finish ID --server ADDR` (it checks SSH on the server "
                         "first) or `task fail ID`" % self.paths.name)]
        if self.settings.get("ssh_port", 22) != 22:
            report.append((True, "manual: `task finish` checks SSH on port %d, the caller "
                                 "logs in on 22" % self.settings["ssh_port"]))
        return report + loopback_report("manual", self.settings)


class WorkerBackend(Backend):
    """A backend whose waiting happens in a detached worker, a fork of the call
    (fork_worker: its own session, no inherited descriptors; ps shows "NAME
    worker ID"), never in a protocol call.

    The worker holds an flock on var/workers/ID.lock from before it is started
    until it has saved its result, and notes what it does in log/tasks/ID.log.
    A subclass's supervise(provider, task_id) is the worker's body; it calls
    run_worker(provider, task, work). The SSH wait (wait_for_ssh) is shared:
    it probes until the server answers SSH (finished) or ready_timeout passes
    (error, with the last reason), saving the reason as the task's message. A
    task whose worker died while waiting for SSH gets a new one
    (keep_waiting): waiting can always start over.
    """

    STARTUP_GRACE = 60      # s a task may wait for launch() to start its worker
    RETRY_UNSAVED = 5       # s between two tries to save the worker's data after a failure
    SAVE_RESULT_PAUSES = (1, 2, 4, 8, 15, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30)
    STOP_SIGNALS = ("SIGTERM", "SIGINT", "SIGHUP")
    WORK = "wait"           # what goes on while a progress save fails
    installation = None     # the state's installation id when the worker started
    unsaved_data = None     # the worker's data (its pid, the program's group) not saved yet

    def ready_timeout(self):
        return self.settings.get("ready_timeout", DEFAULT_READY_TIMEOUT)

    # -- starting it (protocol calls) ------------------------------------------

    def keep_waiting(self, task):
        """poll() of a task waiting for SSH: nothing while its worker runs (no
        network here); a new worker if it died; error once ready_timeout passed."""
        if lock_is_held(worker_lock_path(self.paths, task["id"])):
            return None
        since = (task.get("data") or {}).get("ssh_wait_since") or task.get("created", now())
        if now() - since > self.ready_timeout():
            last = (task.get("message") or "no answer").replace("waiting for SSH on ", "", 1)
            return self.waited_too_long(last)
        try:
            self.start_worker(task, again=True)
        except ProviderError as exc:
            return {"message": "waiting for SSH: %s; trying again at the next status call"
                    % exc.message}
        return None

    def waited_too_long(self, last):
        return {"status": ERROR, "phase": "failed", "message": "no SSH within ready_timeout "
                "%g s: %s" % (self.ready_timeout(), last)}

    # -- the worker --------------------------------------------------------------

    def run_worker(self, provider, task, work):
        """Run work(provider, task, log, data) -> task changes, with the stop
        signals turned into WorkerStopped, and save its result; the lock is
        dropped only after that."""
        import signal
        task_id = task["id"]
        log = TaskLog(self.task_log(task_id))
        data = dict(task.get("data") or {}, worker_pid=os.getpid(),
                    worker_start=process_start_time(os.getpid()))

        def stop(signum, frame):
            raise WorkerStopped(signum)

        for name in self.STOP_SIGNALS:
            signal.signal(getattr(signal, name), stop)
        try:
            changes = work(provider, task, log, data)
        except WorkerStopped as exc:
            changes = {"status": ERROR, "phase": "failed", "message": exc.why}
        except OtherInstallation as exc:
            changes = {"status": ERROR, "phase": "failed", "message": exc.message}
        except Exception:
            import traceback
            log.note("worker bug: " + traceback.format_exc())
            changes = {"status": ERROR, "phase": "failed",
                       "message": "the worker failed (a bug); see %s" % log.path}
        finally:
            self.ignore_stop_signals()
        data.update(changes.get("data") or {}, ended=now())
        changes["data"] = data
        log.note("result: %s, %s" % (changes["status"], changes.get("message", "")))
        try:
            self.save_result(provider, task_id, log, changes)
        finally:
            try:
                # only now: a free lock means "no worker"
                os.unlink(worker_lock_path(self.paths, task_id))
            except OSError:
                pass
        return "task %s: %s" % (task_id, changes["status"])

    def ignore_stop_signals(self):
        import signal
        for name in self.STOP_SIGNALS:
            signal.signal(getattr(signal, name), signal.SIG_IGN)

    def wait_for_ssh(self, provider, task, log, data, clock=None, sleep=None):
        """Probe the task's server until it is ready (task changes: finished, or
        error for another host key than the pinned one) or until ready_timeout
        from the start of the wait (error, with the last reason). Each round
        follows the config (follow_config: ready_timeout, ssh_port, ... of a
        config changed meanwhile), and a server that does not answer is shown
        to not_answering (the pool sets a dead one aside for the next)."""
        clock, sleep = clock or time.monotonic, sleep or time.sleep
        data.setdefault("ssh_wait_since", now())
        begun = clock() - (now() - data["ssh_wait_since"])
        pauses, said, since = list(SSH_WAIT_PAUSES), None, clock()
        while True:
            self.follow_config(provider, log)
            server = task["server"]
            changes, why = ssh_ready(self.settings, server, data)
            if changes is not None:
                return changes
            if clock() >= begun + self.ready_timeout():
                return self.waited_too_long("%s: %s" % (server, why))
            moved, ended = self.not_answering(provider, task, log, data, why, clock() - since)
            if ended is not None:
                return ended                    # nothing left to try
            if moved is not None:               # another server: its own probes
                task, pauses, said, since = moved, list(SSH_WAIT_PAUSES), None, clock()
                continue
            message = "waiting for SSH on %s: %s" % (server, why)
            if message != said:
                self.save(provider, task["id"], log, {"phase": "waiting_ssh",
                                                      "message": message, "data": data})
                said = message
            else:
                log.note("still " + message)        # each probe's reason, as it happens
                self.still_pending(provider, task["id"])
            sleep(max(0.0, min(pauses.pop(0) if len(pauses) > 1 else pauses[0],
                               begun + self.ready_timeout() - clock())))

    def not_answering(self, provider, task, log, data, why, waited):
        """The server does not answer yet (why), waited s after its first probe:
        (None, None) to keep waiting, (the task with another server to wait
        for, None), or (None, task changes that end the wait). The default
        waits (ready_timeout)."""
        return None, None

    config_seen = ()        # the config file's stamp when this worker last looked

    def follow_config(self, provider, log):
        """When the config file changed since this worker looked (the first round
        compares the contents), read it again with the same validation as any
        call and take its backend settings and configurations; a config that
        cannot be used (or names another backend) keeps the old values, said
        once in the task log. (OrderWorker.follow_config does it for the clouds.)"""
        stamp = file_stamp(provider.paths.config)
        if stamp == self.config_seen:
            return
        self.config_seen = stamp
        keep = "this worker keeps the values it read before"
        try:
            config = Config.load(provider.paths, provider.log)
        except ProviderError as exc:
            log.note("the config changed but cannot be used (%s): %s" % (exc.message, keep))
            return
        old = provider.config
        if config.data == old.data:
            return
        if config.backend.TYPE != self.TYPE:
            log.note("the config changed to the %s backend: %s (the %s backend's)" % (
                config.backend.TYPE, keep, self.TYPE))
            return
        changed = sorted(key for key in set(self.settings) | set(config.backend.settings)
                         if self.settings.get(key) != config.backend.settings.get(key))
        if old.configurations != config.configurations:
            changed.append("configurations")
        self.settings = config.backend.settings
        provider.use_config(config, self)
        log.note("the config changed: read again (changed: %s)" % (", ".join(changed) or
                                                                     "nothing this worker uses"))

    def still_pending(self, provider, task_id):
        """WorkerStopped when the task was ended by hand or removed, or the state is
        another installation's (a purge and a new install: its task N is not ours)."""
        task = provider.store.find(task_id)
        if not provider.store.same_installation():
            raise WorkerStopped(None, "the state now belongs to another installation")
        if task is None or task["status"] in TERMINAL:
            raise WorkerStopped(None, "the task was %s meanwhile" % (
                task["status"] if task else "removed"))

    def transaction(self, provider, change):
        """provider.store.update(change) with the stop signals held back (see save)."""
        import signal
        stops = [getattr(signal, name) for name in self.STOP_SIGNALS]
        signal.pthread_sigmask(signal.SIG_BLOCK, stops)
        try:
            return provider.store.update(change)
        finally:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, stops)

    def save(self, provider, task_id, log, changes):
        """Save progress while the worker runs. The stop signals are held back
        meanwhile: a SIGTERM (`task fail`) lands after the transaction, never
        inside it with the state lock taken. A save that fails (the lock busy,
        the disk full) is only noted: the work goes on, and the data it
        carried (what `task fail` and a dead worker's poll need to stop the
        program) goes with the next save. A task found ended by hand (`task
        fail`, `task finish`) or gone stops the worker, and so the program."""
        import signal
        if self.unsaved_data is not None and "data" not in changes:
            changes = dict(changes, data=self.unsaved_data)
        stops = [getattr(signal, name) for name in self.STOP_SIGNALS]
        signal.pthread_sigmask(signal.SIG_BLOCK, stops)
        try:
            saved = provider.apply(task_id, changes)
        except OtherInstallation as exc:
            raise WorkerStopped(None, exc.message)
        except ProviderError as exc:
            log.note("progress not saved, the %s goes on: %s" % (self.WORK, exc.message))
            if "data" in changes:
                self.unsaved_data = changes["data"]
            return
        finally:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, stops)
        self.unsaved_data = None
        if saved is None or saved["status"] in TERMINAL:
            raise WorkerStopped(None, "the task was %s meanwhile" % (
                saved["status"] if saved else "removed"))

    def save_result(self, provider, task_id, log, changes):
        """Save the result; a failed save (the lock busy, the disk full) is tried
        again for about 7 minutes, holding the worker lock, so that a server
        and its password are not lost to a moment of contention."""
        for pause in self.SAVE_RESULT_PAUSES + (None,):
            try:
                provider.apply(task_id, changes)
                return
            except OtherInstallation as exc:
                log.note("the result is not saved: %s" % exc.message)
                return
            except ProviderError as exc:
                if pause is None:
                    raise
                log.note("the result could not be saved (%s); trying again in %d s"
                         % (exc.message, pause))
                time.sleep(pause)


class PoolBackend(WorkerBackend):
    """Servers that are already built, handed out one per order.

    Config: "backend": {"type": "pool", "ssh_probe": true, "ssh_port": 22,
    "ssh_timeout": 3, "ready_timeout": 1800, "known_hosts": true,
    "hide_when_empty": false, "allow_loopback": false} and per configuration
    "servers": [{"server": ADDR, "password": "..."} or {"server": ADDR,
    "password_file": PATH} or {"server": ADDR} (a host that already holds the
    caller's pool key)], each optionally pinning its SSH host key with
    "host_key" (a public key line) or "host_key_sha256" (its fingerprint). A
    relative password_file is relative to the home (home_path); it is
    read at order time.

    state["pool"] = {ADDR: task_id} holds the servers handed out. place()
    claims the first free server of the configuration under the state lock,
    so two orders never get the same one; launch() starts a detached worker
    (fork_worker) that waits for SSH, so `order` answers at once. A
    server stays taken until `task release ID`.

    A claimed server that shows no SSH banner within probe_timeout (at once:
    connection refused, no route) is dead, not booting: the worker gives it
    back, sets it aside in state["pool_unavailable"] = {ADDR: {"reason",
    "since", "task"}} and claims the next free one (not_answering). A server
    set aside is not free until retry_after s have passed or `NAME pool reset
    ADDR`; when none is left the task fails with every server's reason.
    """

    TYPE = "pool"
    SETTINGS = dict(SSH_SETTINGS, hide_when_empty=("boolean", None),
                    probe_timeout=("number", Checker.positive),
                    retry_after=("number", Checker.non_negative))
    PROBE_TIMEOUT = 20      # s a claimed server may go without an SSH banner
    RETRY_AFTER = 600       # s a server set aside stays out of the orders
    PARAMETERS = {"servers": ("array", None)}
    SERVER_FIELDS = {"server": ("string", None), "password": ("string", None),
                     "password_file": ("string", Checker.nonempty),
                     "host_key": ("string", None), "host_key_sha256": ("string", None)}

    @classmethod
    def validate_configuration(cls, configuration, path, check):
        if "servers" not in configuration:
            check.add(path, "missing key 'servers' (the pool backend's ready servers)")
            return
        servers = configuration["servers"]
        if not isinstance(servers, list):
            return                    # already reported by keys()
        for index, entry in enumerate(servers):
            where = "%s.servers[%d]" % (path, index)
            if not check.is_a(entry, "object", where):
                continue
            check.keys(entry, where, cls.SERVER_FIELDS, required=("server",))
            if "password" in entry and "password_file" in entry:
                check.add(where, "give password or password_file, not both")
            check_host_key_pin(check, entry, where)
            password = entry.get("password")
            if isinstance(password, str):
                if not password:
                    check.add(where + ".password", "must not be empty (leave it out for "
                              "hosts that hold the pool key)")
                elif password_problem(password):
                    check.add(where + ".password", password_problem(password))

    @classmethod
    def validate_across(cls, settings, configurations, path, check):
        allow_loopback = settings.get("allow_loopback", False)
        seen = {}
        for index, configuration in enumerate(configurations):
            for number, entry in enumerate(configuration.get("servers", [])):
                where = "%s[%d].servers[%d].server" % (path, index, number)
                server, problem = check_server(entry["server"], allow_loopback)
                if problem:
                    check.add(where, problem)
                elif server in seen:
                    check.add(where, "duplicate server %s (also at %s)" % (server, seen[server]))
                else:
                    seen[server] = where

    @staticmethod
    def taken(state):
        return state.setdefault("pool", {})

    def free_servers(self, configuration, state):
        taken = self.taken(state)
        return [e for e in configuration.get("servers", []) if e["server"] not in taken
                and not self.down(state, e["server"])]

    def down(self, state, server):
        """The record of a server set aside as unavailable that is not yet due
        for another try (retry_after), or None."""
        record = (state.get("pool_unavailable") or {}).get(server)
        if isinstance(record, dict) and now() - record.get("since", 0) < self.settings.get(
                "retry_after", self.RETRY_AFTER):
            return record
        return None

    @staticmethod
    def set_aside(state, server, reason, task_id):
        state.setdefault("pool_unavailable", {})[server] = {
            "reason": reason, "since": now(), "task": task_id}

    def configs_need_state(self):
        return bool(self.settings.get("hide_when_empty", False))

    def available(self, configuration, state):
        return bool(self.free_servers(configuration, state))

    def password_path(self, entry):
        return home_path(self.paths, entry["password_file"])

    def read_password(self, entry, configuration):
        """The entry's root password, read now; a clear error and no claim if it fails."""
        if "password_file" not in entry:
            return entry.get("password", "")
        path = self.password_path(entry)
        where = "server %s of configuration %s: password_file %s" % (
            entry["server"], configuration["id"], path)
        try:
            raw = TrustedFiles(self.paths).read_private(path, "the password_file",
                                                        MAX_CONFIG_BYTES)
        except ProviderError as exc:
            raise ProviderError(exc.code, "server %s of configuration %s: %s; no server was "
                                "claimed" % (entry["server"], configuration["id"], exc.message))
        try:
            password = raw.decode("utf-8").split("\n")[0].rstrip("\r")
        except UnicodeDecodeError:
            raise ProviderError(E_CONFIG, "%s is not UTF-8; no server was claimed" % where)
        problem = "is empty" if not password else password_problem(password)
        if problem:
            raise ProviderError(E_CONFIG, "%s: the password %s; no server was claimed"
                                % (where, problem))
        return password

    def place(self, task, configuration, state):
        free = self.free_servers(configuration, state)
        if not free:
            aside = [e["server"] for e in configuration.get("servers", [])
                     if e["server"] not in self.taken(state) and self.down(state, e["server"])]
            raise ProviderError(E_EXHAUSTED, "no free server for configuration %s%s" % (
                configuration["id"], "; set aside as unavailable: %s (`%s pool` says why, "
                "`%s pool reset SERVER` puts one back)" % (
                    ", ".join(aside), self.paths.name, self.paths.name) if aside else ""))
        self.claim(task, free[0], configuration, state)

    def claim(self, task, entry, configuration, state):
        """Under the lock: entry becomes task's server, with its password (read
        now: a ProviderError claims nothing) and its pinned host key."""
        password = self.read_password(entry, configuration)
        self.taken(state)[entry["server"]] = task["id"]
        (state.get("pool_unavailable") or {}).pop(entry["server"], None)   # tried again
        server = check_server(entry["server"], self.settings.get("allow_loopback", False))[0]
        task.update({"phase": "claimed", "server": server, "server_password": password,
                     "message": "claimed %s, checking SSH" % server})
        data = task.setdefault("data", {})
        data["pool_server"] = entry["server"]
        for key, parse in (("host_key", parse_host_key), ("host_key_sha256", parse_fingerprint)):
            data.pop(key, None)
            if isinstance(entry.get(key), str):
                data[key] = parse(entry[key])

    def launch(self, task, configuration):
        self.log.write("claim", task["id"], config=task["config_id"], server=task["server"])
        if not self.settings.get("ssh_probe", True):
            return ssh_ready(self.settings, task["server"], task["data"])[0]
        self.start_worker(task)
        return None

    def poll(self, task, configuration):
        return self.keep_waiting(task) if task.get("server") else None

    def supervise(self, provider, task_id):
        """The worker: wait until the claimed server answers SSH."""
        task = provider.store.find(task_id)
        if task is None or task["status"] in TERMINAL or not task.get("server"):
            return "task %s is not waiting for SSH" % task_id
        return self.run_worker(provider, task, self.wait_for_ssh)

    # -- the worker: a server that does not answer ---------------------------------

    def not_answering(self, provider, task, log, data, why, waited):
        """A dead server (no banner within probe_timeout; connection refused or no
        route at once), or one the config no longer lists: given back (a dead
        one set aside) and the next free server of the configuration claimed.
        Returns what WorkerBackend.not_answering does."""
        configuration = provider.config.by_id.get(task["config_id"]) or {}
        old = data.get("pool_server")
        listed = old in [entry["server"] for entry in configuration.get("servers", [])]
        limit = self.settings.get("probe_timeout", self.PROBE_TIMEOUT)
        if why in DEAD_AT_ONCE:
            reason = why
        elif waited >= limit and not why.startswith(KEY_NOT_READ):
            reason = "no SSH banner within probe_timeout %g s (%s)" % (limit, why)
        elif not listed:
            reason = None
        else:
            return None, None
        try:
            found = self.transaction(provider, lambda state: self.claim_next(
                state, task["id"], old, reason, configuration))
        except ProviderError as exc:        # the lock busy, the disk full: the next round
            log.note("%s not set aside yet: %s" % (old, exc.message))
            return None, None
        if found is None:
            raise WorkerStopped(None, "the task ended meanwhile")
        if reason:
            provider.log.write("set_aside", task["id"], server=old, reason=reason)
        log.note("%s: %s" % (old, "set aside: " + reason if reason else
                             "no longer in the config: given back"))
        if isinstance(found, str):
            return None, {"status": ERROR, "phase": "failed", "message": found,
                          "data": {"released": now()}}
        provider.log.write("claim", task["id"], config=task["config_id"], server=found["server"])
        for key in ("pool_server", "host_key", "host_key_sha256"):
            data.pop(key, None)
            if key in found["data"]:
                data[key] = found["data"][key]
        return found, None

    def claim_next(self, state, task_id, old, reason, configuration):
        """Under the lock: give old back (set aside with reason, if any) and
        claim the next free server; the task (a copy), a text saying why none
        is left, or None when the task ended meanwhile."""
        task = state["tasks"].get(task_id)
        if task is None or task["status"] in TERMINAL:
            return None
        taken = self.taken(state)
        if taken.get(old) == task_id:
            del taken[old]
        if reason:
            self.set_aside(state, old, reason, task_id)
        tried = task.setdefault("data", {}).setdefault("tried", [])
        tried.append(old)                   # each server once per task, whatever retry_after
        for entry in self.free_servers(configuration, state):
            if entry["server"] in tried:
                continue
            try:
                self.claim(task, entry, configuration, state)
            except ProviderError as exc:        # its password_file: set aside as well
                self.set_aside(state, entry["server"], exc.message.replace(
                    "; no server was claimed", ""), task_id)
                continue
            task["message"] += " (%s %s)" % (old, "set aside: " + reason if reason
                                             else "is no longer in the config")
            task["updated"] = now()
            return json.loads(json.dumps(task))
        return self.none_left(state, configuration, task["config_id"])

    def none_left(self, state, configuration, config_id):
        """Why no server of the configuration can be claimed: each one's reason."""
        why = []
        for entry in configuration.get("servers", []):
            record = (state.get("pool_unavailable") or {}).get(entry["server"])
            holder = self.taken(state).get(entry["server"])
            why.append("%s: %s" % (entry["server"], "taken by task %s" % holder if holder
                                   else record["reason"] if isinstance(record, dict)
                                   else "no longer in the config"))
        if not configuration:
            return "configuration %s is no longer in the config" % config_id
        return "no server of configuration %s answers SSH: %s" % (
            config_id, "; ".join(why) or "it lists none")

    def release(self, task, state):
        server = (task.get("data") or {}).get("pool_server")
        taken = self.taken(state)
        if not server or taken.get(server) != task["id"]:
            raise ProviderError(E_TASK_STATE, "task %s holds no server of the pool%s" % (
                task["id"], " (%s was released already)" % server if server else ""))
        del taken[server]
        return server

    def cancel(self, task):
        # A pending task's server is still taken (a release makes the task error).
        server = (task.get("data") or {}).get("pool_server")
        if server:
            return "it still holds pool server %s: `%s task release %s` gives it back" % (
                server, self.paths.name, task["id"])
        return None

    def inventory(self, configurations, state):
        """[(config id, free servers, [(server, task id, status)], [(server,
        record)] set aside)] and the taken servers no configuration lists any more."""
        taken = dict(self.taken(state))
        tasks = state["tasks"]
        rows = []
        for configuration in configurations:
            free, held, down = [], [], []
            for entry in configuration.get("servers", []):
                task_id = taken.pop(entry["server"], None)
                record = self.down(state, entry["server"])
                if task_id is not None:
                    held.append((entry["server"], task_id,
                                 (tasks.get(task_id) or {}).get("status", "?")))
                elif record:
                    down.append((entry["server"], record))
                else:
                    free.append(entry["server"])
            rows.append((configuration["id"], free, held, down))
        orphans = [(server, task_id, (tasks.get(task_id) or {}).get("status", "?"))
                   for server, task_id in sorted(taken.items())]
        return rows, orphans

    def aside_text(self, server, record):
        """One line on a server set aside, for `pool`, `check` and `tasks`."""
        return "%s is set aside since %s: %s; tried again after %s or `%s pool reset %s`" % (
            server, time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(record.get("since", 0))),
            printable(str(record.get("reason")), 200), time.strftime(
                "%H:%M UTC", time.gmtime(record.get("since", 0) + self.settings.get(
                    "retry_after", self.RETRY_AFTER))), self.paths.name, server)

    def aside_report(self, configurations, state):
        """(server, text) of every server of the config set aside now."""
        return [(server, self.aside_text(server, record))
                for row in self.inventory(configurations, state)[0] for server, record in row[3]]

    def check(self, configurations, state):
        report = []
        settings = self.settings
        report.extend(loopback_report("pool", settings))
        report.extend((WARN, "pool: " + text) for _, text in self.aside_report(
            configurations, state or {"tasks": {}}))
        if settings.get("ssh_port", 22) != 22:
            report.append((True, "pool: SSH is probed on port %d, the caller logs in on 22"
                                 % settings["ssh_port"]))
        if not settings.get("ssh_probe", True):
            report.append((True, "pool: ssh_probe is off: orders finish without looking"))
        for configuration in configurations:
            servers = configuration.get("servers", [])
            free = self.free_servers(configuration, state or {})
            # sold out is a state, not a misconfiguration: `task release` or more servers
            report.append((True if free else WARN, "pool: configuration %s has %d of %d "
                           "server(s) free%s" % (configuration["id"], len(free), len(servers),
                                                 "" if free else ": its orders fail with N109 "
                                                 "until `task release` or a new server")))
            for entry in servers:
                if "password_file" not in entry:
                    continue
                path = self.password_path(entry)
                try:
                    self.read_password(entry, configuration)
                    problem = mode_problem(path, 0o600, self.paths.home)
                    text = "pool: password_file %s: %s" % (path, "%s (fix: %s)" % (
                        problem, mode_fix(problem, path, 0o600)) if problem
                        else "readable, 0600 or stricter")
                except ProviderError as exc:
                    problem = text = "pool: " + exc.message.replace("; no server was claimed", "")
                report.append((problem is None, text))
        return report


def check_argv(check, command, where):
    """A program and its arguments (the command backend's `command`, `notify`)."""
    if not command:
        check.add(where, "must name a program")
        return
    for index, arg in enumerate(command):
        at = "%s[%d]" % (where, index)
        if check.is_a(arg, "string", at) and "\0" in arg:
            check.add(at, "must not contain a NUL character")
    if isinstance(command[0], str) and not command[0].strip():
        check.add(where + "[0]", "must not be empty")


def program_argv(paths, command):
    """A command's argv: a relative program path with a "/" is relative to the home."""
    argv = list(command)
    if os.sep in argv[0] and not os.path.isabs(argv[0]):
        argv[0] = home_path(paths, argv[0])
    return argv


def program_path(paths, command):
    """The program a command names, as PATH finds it."""
    program = program_argv(paths, command)[0]
    if os.sep not in program:
        found = [os.path.join(d, program) for d in
                 os.environ.get("PATH", os.defpath).split(os.pathsep) if d]
        found = [p for p in found if os.access(p, os.X_OK)]
        program = found[0] if found else program
    return program


def program_problem(paths, command):
    """Why a command must not run as root, or None: another user could change
    the program, or a file an argument names (a script given to an interpreter:
    ["/bin/sh", "make-vm.sh"]; relative to the home, the program's folder)."""
    trust = TrustedFiles(paths)
    named = [program_path(paths, command)] + [os.path.join(paths.home, arg) for arg in
                                              command[1:] if os.sep in arg]
    for path in named:
        problem = os.sep in path and os.path.isfile(path) and trust.path_problem(path)
        if problem:
            return problem
    return None


class CommandBackend(WorkerBackend):
    """Any provisioning program you already have, run once per order.

    Config: "backend": {"type": "command", "command": ["/path/prog", "arg"],
    "timeout": 3600, "env": {"NAME": "value"}, "ssh_probe": true,
    "ssh_port": 22, "ssh_timeout": 3, "ready_timeout": 1800,
    "known_hosts": true, "allow_loopback": false}. The command is an argv
    list, run without a shell; a relative program path with a "/" is
    relative to the provider's home, a bare name is looked up in PATH.

    Each configuration may carry "params": {...}, a free-form JSON object
    passed to the program as it is. Free-form values live in that one key so
    that a typo in any other key of a configuration is still reported.

    The program gets BXPROVIDER_TASK_ID, BXPROVIDER_CONFIG_ID and
    BXPROVIDER_PARAMS (JSON) in its environment, and {"task_id", "config_id",
    "params"} as one JSON line on stdin. `order` starts a detached worker
    (WorkerBackend) and answers at once. The worker runs the program in a
    process group of its own, logs its output to log/tasks/ID.log, turns
    "progress: TEXT" lines of its stderr into the task's message, kills the
    group after `timeout` seconds and saves the result:
      exit 0, last stdout line {"server": ..., "server_password": ...,
          "host_key": optional public key line}
          -> "waiting for SSH on ADDR", and the same worker waits for SSH
      any other exit -> error, message = the last stderr line
    poll() finds a task whose lock is free and whose result is missing and
    marks it error (worker killed, machine restarted), and kills the
    program's process group if it is still the same process (checked by its
    start time); a task that was waiting for SSH gets a new worker instead.
    `task fail` on a running task SIGTERMs the worker, which stops the
    program's group.
    """

    TYPE = "command"
    SETTINGS = dict(SSH_SETTINGS, command=("array", None), env=("object", None),
                    timeout=("number", Checker.positive))
    PARAMETERS = {"params": ("object", None)}
    DEFAULT_TIMEOUT = 3600
    KILL_GRACE = 5          # s between SIGTERM and SIGKILL of the program's group
    WORK = "program"

    @classmethod
    def validate_settings(cls, settings, path, check):
        command = settings.get("command")
        if command is None:
            check.add(path, "missing key 'command' (the program and its arguments, a list)")
        else:
            check_argv(check, command, path + ".command")
        for key, value in sorted(settings.get("env", {}).items()):
            where = "%s.env.%s" % (path, key)
            if not key or "=" in key or "\0" in key:
                check.add(where, "is not an environment variable name")
            elif key.startswith("BXPROVIDER_"):
                check.add(where, "BXPROVIDER_* variables are set by the provider")
            elif check.is_a(value, "string", where) and "\0" in value:
                check.add(where, "must not contain a NUL character")

    def program(self):
        return program_argv(self.paths, self.settings["command"])

    def timeout(self):
        return self.settings.get("timeout", self.DEFAULT_TIMEOUT)

    # -- the order ---------------------------------------------------------

    def place(self, task, configuration, state):
        problem = self.program_problem()
        if problem:
            raise ProviderError(E_UNSAFE, "refusing to run the command as root: %s" % problem)
        task["phase"] = "starting"
        task["message"] = "starting the provisioning program"

    def program_path(self):
        """The program the command names, as PATH finds it."""
        return program_path(self.paths, self.settings["command"])

    def program_problem(self):
        return program_problem(self.paths, self.settings["command"])

    def launch(self, task, configuration):
        self.start_worker(task)
        return None

    def poll(self, task, configuration):
        if task.get("phase") == "waiting_ssh":
            return self.keep_waiting(task)
        lock = worker_lock_path(self.paths, task["id"])
        alive = lock_is_held(lock)
        if alive or (alive is None and task.get("phase") == "starting"
                     and now() - task.get("created", 0) < self.STARTUP_GRACE):
            return None
        # The result is saved before the lock is dropped: no result, no worker.
        killed = kill_group_if_same(task.get("data") or {})
        try:
            os.unlink(lock)
        except OSError:
            pass
        return {"status": ERROR, "phase": "failed",
                "message": "the worker stopped without a result (killed, or the machine "
                           "restarted)%s; see %s" % ("; the program was killed" if killed else "",
                                                     self.task_log(task["id"]))}

    def cancel(self, task):
        """SIGTERM the task's worker (if it is still the same process): it
        stops the program's group. A worker that has not saved its pid yet
        finds the task failed when it does, and stops the program itself."""
        import signal
        data = task.get("data") or {}
        pid, started = data.get("worker_pid"), data.get("worker_start")
        lock = worker_lock_path(self.paths, task["id"])
        if (not pid or started is None or not lock_is_held(lock)
                or process_start_time(pid) != started):
            return None
        try:
            os.kill(pid, signal.SIGTERM)
        except OSError:
            return None
        return "its worker (pid %d) is stopping the program" % pid

    def check(self, configurations, state):
        report = []
        program = self.program_path()
        runnable = os.path.isfile(program) and os.access(program, os.X_OK)
        report.append((runnable, "command: %s %s" % (
            program, "is executable" if runnable else "is not an executable file (install "
            "it there, e.g. install.sh --program, and chmod 755 it; or fix \"command\")")))
        problem = self.program_problem()
        if problem:
            report.append((False, "command: root must not run it: %s" % problem))
        report.append((True, "command: timeout %g s; program output goes to %s" % (
            self.settings.get("timeout", self.DEFAULT_TIMEOUT),
            os.path.join(self.paths.log_dir, "tasks", "ID.log"))))
        report.extend(loopback_report("command", self.settings))
        if not self.settings.get("ssh_probe", True):
            report.append((True, "command: ssh_probe is off: orders finish when the "
                                 "program says so"))
        return report

    # -- the worker (fork_worker; `NAME _worker ID` by hand) --------------------

    def supervise(self, provider, task_id):
        """Run the program for a task placed by `order` and wait for SSH; or
        only wait for SSH (a worker started again by keep_waiting)."""
        task = provider.store.find(task_id)
        if (task is None or task["status"] in TERMINAL
                or task.get("phase") not in ("starting", "waiting_ssh")):
            return "task %s is not waiting for a worker" % task_id
        if task.get("phase") == "waiting_ssh":
            return self.run_worker(provider, task, self.wait_for_ssh)
        return self.run_worker(provider, task, self.run_program)

    def run_program(self, provider, task, log, data):
        import subprocess
        configuration = provider.config.by_id.get(task["config_id"])
        if configuration is None:
            return {"status": ERROR, "phase": "failed", "message": "configuration %s "
                    "is no longer in the config" % task["config_id"]}
        params = configuration.get("params", {})
        argv = self.program()
        problem = self.program_problem()
        if problem:
            return {"status": ERROR, "phase": "failed",
                    "message": "refusing to run the command: " + problem}
        # Bytes, UTF-8: under LANG=C Python 3.6 cannot encode Cyrillic itself.
        env = child_env(binary=True)
        extra = dict(self.settings.get("env", {}))
        extra.update({"BXPROVIDER_TASK_ID": task["id"],
                      "BXPROVIDER_CONFIG_ID": task["config_id"],
                      "BXPROVIDER_PARAMS": json.dumps(params, ensure_ascii=False)})
        env.update((k.encode("utf-8"), v.encode("utf-8")) for k, v in extra.items())
        log.note("run %s (timeout %g s)" % (json.dumps(argv, ensure_ascii=False), self.timeout()))
        try:
            proc = subprocess.Popen([a.encode("utf-8") for a in argv],
                                    stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, close_fds=True,
                                    start_new_session=True, cwd=self.paths.home, env=env)
        except OSError as exc:
            return {"status": ERROR, "phase": "failed", "message": "cannot run %s: %s"
                    % (argv[0], exc.strerror or exc)}
        try:
            data.update(pgid=proc.pid, pgid_start=process_start_time(proc.pid))
            # (a task failed by hand before this worker could say its pid is
            # found here, and the program stopped)
            self.save(provider, task["id"], log, {
                "phase": "running", "data": data,
                "message": "running %s" % os.path.basename(argv[0])})
            request = {"task_id": task["id"], "config_id": task["config_id"], "params": params}
            changes = ProgramWatch(self, provider, task["id"], proc, log).run(request)
        finally:
            if proc.returncode is None:
                self.ignore_stop_signals()      # the group is stopped whatever comes
                kill_group(proc, self.KILL_GRACE)
            data["exit_code"] = proc.returncode
        if changes.get("status") == ERROR:
            return changes
        if changes["server_password"]:
            log.scrub(changes["server_password"])
        data.update(changes.get("data") or {})
        self.save(provider, task["id"], log, dict(changes, data=data))
        task = dict(task, server=changes["server"])
        # the server and password again: the save above may have failed
        return dict(self.wait_for_ssh(provider, task, log, data), server=changes["server"],
                    server_password=changes["server_password"])


class ProgramWatch(object):
    """Feeds the program its request and follows its output until it ends:
    logs each line, saves "progress:" lines of stderr as the message (at most
    every PROGRESS_EVERY s), kills the group after the backend's timeout, and
    turns the exit and the last stdout line into task changes."""

    PROGRESS_EVERY = 0.5    # s between two saves of a progress message
    EOF_GRACE = 2           # s to drain output once the program has exited

    def __init__(self, backend, provider, task_id, proc, log):
        self.backend, self.provider, self.task_id = backend, provider, task_id
        self.proc, self.log = proc, log
        self.streams = {"out": LineSplitter(), "err": LineSplitter()}
        self.last_out = None        # the last non-empty stdout line: the result
        self.held = None            # a stdout line that may be the result: logged redacted
        self.last_err = None        # the last non-empty stderr line: an error's message
        self.last_progress = None
        self.progress = None        # a progress message not saved yet
        self.saved_at = 0.0

    def run(self, request):
        try:
            self.proc.stdin.write(json.dumps(request, ensure_ascii=False).encode("utf-8") + b"\n")
            self.proc.stdin.close()
        except (IOError, OSError):
            pass                         # a program that does not read stdin
        deadline = time.monotonic() + self.backend.timeout()
        timed_out = not self.follow(deadline)
        if not timed_out:
            import subprocess
            try:
                self.proc.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                timed_out = True
        if timed_out:
            self.log.note("timed out after %g s: killing the process group %d"
                          % (self.backend.timeout(), self.proc.pid))
            kill_group(self.proc, self.backend.KILL_GRACE)
        for pipe in (self.proc.stdout, self.proc.stderr):
            pipe.close()
        if self.held is not None:
            self.log.line("out", redact_result(self.held))
        if timed_out:
            return {"status": ERROR, "phase": "failed",
                    "message": "timed out after %g s" % self.backend.timeout()}
        return self.result()

    def follow(self, deadline):
        """Read both pipes until they close; False when the deadline passed first."""
        import selectors
        selector = selectors.DefaultSelector()
        for name, pipe in (("out", self.proc.stdout), ("err", self.proc.stderr)):
            selector.register(pipe.fileno(), selectors.EVENT_READ, name)
        exited = None
        try:
            while selector.get_map():
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                if exited is not None and time.monotonic() - exited > self.EOF_GRACE:
                    break                    # a background child keeps the pipes open
                for key, _ in selector.select(min(left, self.PROGRESS_EVERY)):
                    chunk = os.read(key.fd, 65536)
                    if chunk:
                        lines = self.streams[key.data].feed(chunk)
                    else:
                        selector.unregister(key.fd)
                        lines = self.streams[key.data].finish()
                    for raw in lines:
                        self.line(key.data, raw)
                if exited is None and self.proc.poll() is not None:
                    exited = time.monotonic()
                self.save_progress()
        finally:
            selector.close()
            for name in ("out", "err"):
                for raw in self.streams[name].finish():
                    self.line(name, raw)
        return True

    def line(self, name, raw):
        text = raw.decode("utf-8", "replace").rstrip("\r")
        if name == "err":
            self.log.line("err", text)
            if text.startswith("progress:"):
                self.progress = self.last_progress = text[len("progress:"):].strip()
            elif text.strip():
                self.last_err = text.strip()
            return
        if text.strip():
            if self.held is not None:
                self.log.line("out", self.held)
                self.held = None
            self.last_out = text
            if text.lstrip().startswith("{"):
                self.held = text
                return
        self.log.line("out", text)

    def save_progress(self):
        backend, clock = self.backend, time.monotonic()
        if self.progress is not None and clock - self.saved_at >= self.PROGRESS_EVERY:
            backend.save(self.provider, self.task_id, self.log,
                         {"message": printable(self.progress, 200)})
            self.progress, self.saved_at = None, time.monotonic()
        elif backend.unsaved_data is not None and clock - self.saved_at >= backend.RETRY_UNSAVED:
            backend.save(self.provider, self.task_id, self.log, {})  # the data, no message
            self.saved_at = time.monotonic()

    def result(self):
        """Task changes from the exit status and the last line of stdout."""
        code = self.proc.returncode
        self.log.note("the program exited with status %d" % code)
        if code != 0:
            message = self.last_err or self.last_progress or (
                "the program was killed by signal %d" % -code if code < 0 else
                "the program exited with status %d" % code)
            return {"status": ERROR, "phase": "failed", "message": printable(message, 300)}
        allow_loopback = self.backend.settings.get("allow_loopback", False)
        parsed = (parse_result(self.last_out, allow_loopback) if self.last_out is not None
                  else None)
        if not isinstance(parsed, tuple):
            return {"status": ERROR, "phase": "failed", "message": printable(
                "the program exited 0 but its last line of output is not "
                "{\"server\": ..., \"server_password\": ...}: %s"
                % (parsed or "it printed nothing"), 300)}
        server, password, host_key = parsed
        changes = {"phase": "waiting_ssh", "server": server, "server_password": password,
                   "message": "waiting for SSH on %s" % server}
        if host_key:
            changes["data"] = {"host_key": host_key}
        return changes


class WorkerStopped(Exception):
    def __init__(self, signum, why=None):
        self.why = why or "the worker was stopped by signal %d" % signum
        Exception.__init__(self, self.why)
        self.signum = signum


class LineSplitter(object):
    """Bytes in, complete lines out (without the newline); long lines are cut."""

    LIMIT = 64 * 1024

    def __init__(self):
        self.rest = b""

    def feed(self, chunk):
        lines = (self.rest + chunk).split(b"\n")
        self.rest = lines.pop()
        if len(self.rest) > self.LIMIT:
            lines.append(self.rest)
            self.rest = b""
        return lines

    def finish(self):
        rest, self.rest = self.rest, b""
        return [rest] if rest else []


class TaskLog(object):
    """log/tasks/ID.log: the program's output with a time stamp per line, 0600."""

    def __init__(self, path):
        self.path = path
        try:       # log/ and log/tasks/ get var/'s checks; an unsafe one is not written
            trust = TrustedFiles(home_of(path, 3))
            trust.check_folder(os.path.dirname(os.path.dirname(path)), "log folder")
            trust.private_folder(os.path.dirname(path), "task log folder")
        except ProviderError as exc:
            sys.stderr.write("warning: %s\n" % exc.message)
            self.path = None

    def line(self, stream, text):
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        data = ("%s %s: %s\n" % (stamp, stream, terminal_safe(text))).encode("utf-8",
                                                                          "replace")
        if self.path is None:
            return
        try:
            fd = open_own_file(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
            try:
                os.write(fd, data)
            finally:
                os.close(fd)
        except OSError:
            pass                 # the log is for people; it must not fail the order

    def note(self, text):
        self.line("provider", text)

    def scrub(self, secret):
        """Replace a password the program may have printed anywhere in the log."""
        if len(secret) < 4 or self.path is None:
            return               # too short to replace without mangling the log
        try:
            with os.fdopen(open_own_file(self.path, os.O_RDWR), "r+b") as handle:
                data = handle.read()
                clean = mask_secret(data, secret)
                if clean != data:
                    handle.seek(0)
                    handle.write(clean)
                    handle.truncate()
        except (IOError, OSError):
            pass


def mask_secret(data, secret):
    """data (bytes) with every spelling of secret replaced by ********: as it is,
    as a shell quotes it (set -x's '...' with '\\'' inside, printf %q's
    backslashes, "..."), and inside any JSON string whatever its escapes
    (\\u0050 for P)."""
    import re
    for spelling in secret_spellings(secret):
        data = data.replace(spelling, b"********")

    def masked(match):
        try:
            value = json.loads(match.group(0).decode("utf-8"))
        except (ValueError, UnicodeDecodeError):
            return match.group(0)
        if secret not in value:
            return match.group(0)
        return json.dumps(value.replace(secret, "********")).encode("ascii")
    return re.sub(br'"(?:[^"\\\n]|\\.)*"', masked, data)


def secret_spellings(secret):
    """The byte strings a shell prints for secret, longest first."""
    import re
    forms = set((secret, secret.replace("'", "'\\''"),
                 re.sub(r"([^A-Za-z0-9_./:=@%^+,-])", r"\\\1", secret),
                 re.sub(r'(["\\$`])', r"\\\1", secret)))
    return [form.encode("utf-8") for form in sorted(forms, key=len, reverse=True)]


def parse_result(line, allow_loopback):
    """(server, password, host key or None) from the program's result line, or
    why not (a string)."""
    try:
        value = json.loads(line)
    except (ValueError, RecursionError):
        return "not JSON (or nested too deeply)"
    if not isinstance(value, dict):
        return "not a JSON object"
    server, problem = check_server(value.get("server"), allow_loopback)
    if problem:
        return "server: " + problem
    password = value.get("server_password") or ""
    if not isinstance(password, str):
        return "server_password is not a string"
    if password_problem(password):
        return "server_password " + password_problem(password)
    host_key = value.get("host_key")
    if host_key is not None and parse_host_key(host_key) is None:
        return "host_key is not a public key line (TYPE BASE64)"
    return server, password, host_key and parse_host_key(host_key)


def redact_result(line):
    """The result line as the log may keep it: the password replaced."""
    try:
        value = json.loads(line)
    except (ValueError, RecursionError):
        return line
    if isinstance(value, dict) and value.get("server_password"):
        value["server_password"] = "********"
        return json.dumps(value, ensure_ascii=False)
    return line


def lock_is_held(path):
    """True when another process holds an flock on path, False when nobody
    does, None when there is no such file."""
    import fcntl
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return False
    except (IOError, OSError):
        return True
    finally:
        os.close(fd)             # drops the lock if we took it


def fork_worker(provider, task_id, log_path, again=False):
    """Start the task's worker (run_task_worker: its backend's supervise) detached,
    with this call's provider: its own session, no inherited descriptors but its
    lock, stdout to /dev/null (the caller reads ours until EOF), stderr to
    log_path; its pid. The lock var/workers/ID.lock is
    taken here, before the worker starts, so nobody ever sees it free while one
    is coming. again (a worker that died is replaced): the lock file is taken as
    it is, only if nobody holds it; None when somebody does. The lock's mtime
    says since when the worker runs.

    The worker is a fork of this process (run_forked_worker), not a new
    interpreter: the code is loaded already, where `python3 bin/NAME _worker ID`
    would compile the whole file again (~100 ms of CPU for every cloud
    order_status, whose step the call waits for); and it goes on with the
    provider loaded here (its config, backend and store), never a command line."""
    import fcntl
    paths = provider.paths
    lock = worker_lock_path(paths, task_id)
    trust = TrustedFiles(paths)
    trust.private_folder(os.path.dirname(lock), "workers folder")
    trust.check_folder(paths.log_dir, "log folder")
    trust.private_folder(os.path.dirname(log_path), "task log folder")
    temp = lock if again else "%s.%d.tmp" % (lock, os.getpid())
    lock_fd = log_fd = None
    try:
        lock_fd = open_own_file(temp, os.O_RDWR | os.O_CREAT | (0 if again else os.O_TRUNC))
        try:
            fcntl.flock(lock_fd, fcntl.LOCK_EX | (fcntl.LOCK_NB if again else 0))
        except (IOError, OSError):
            return None                 # (again) a worker runs
        os.utime(temp, None)            # before the fork: a quick worker removes the lock
        if not again:
            os.replace(temp, lock)      # nobody sees the file unlocked
        log_fd = open_own_file(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()          # or the fork would write it again
            except (IOError, OSError, ValueError):
                pass
        pid = os.fork()
        if pid == 0:
            run_forked_worker(provider, task_id, lock_fd, log_fd)     # never returns
    except OSError as exc:
        for path in set((temp, lock)):
            try:
                os.unlink(path)
            except OSError:
                pass
        raise ProviderError(E_BACKEND, "cannot start the worker: %s" % (exc.strerror or exc))
    finally:
        for fd in (lock_fd, log_fd):
            if fd is not None:
                os.close(fd)
    if not again:       # the task's first worker; the later ones (a cloud task's next step,
        provider.log.write("worker", task_id, pid=pid, log=log_path)   # a dead one replaced)
    TaskLog(log_path).note("worker pid %d started by pid %d" % (pid, os.getpid()))  # go here
    return pid


def run_forked_worker(provider, task_id, lock_fd, log_fd):
    """In fork_worker's fork: become a detached process (a session of its own,
    cwd the home, stdin and stdout /dev/null, stderr the task log, no descriptor
    but those and the lock) and run the task's worker with provider
    (worker_exit_status); never returns. os._exit: the caller's atexit work and
    buffers are not ours."""
    import io
    paths = provider.paths
    status = 1
    try:
        os.umask(os.umask(0o22) | 0o22)
        os.setsid()
        null = os.open(os.devnull, os.O_RDWR)
        for target, fd in ((null, 0), (null, 1), (log_fd, 2)):
            os.dup2(target, fd)
        close_descriptors(keep=(0, 1, 2, lock_fd))
        sys.stdin = io.TextIOWrapper(io.FileIO(0, "r", closefd=False), encoding="utf-8")
        sys.stdout = io.TextIOWrapper(io.FileIO(1, "w", closefd=False), encoding="utf-8")
        sys.stderr = LogStream(io.TextIOWrapper(io.FileIO(2, "w", closefd=False),
                                                encoding="utf-8", errors="backslashreplace",
                                                line_buffering=True))
        os.chdir(paths.home)
        # the programs the worker starts see the home and config it uses
        os.environ.update(BXPROVIDER_HOME=paths.home, BXPROVIDER_CONFIG=paths.config)
        name_process(paths.script, paths.name, "worker", task_id)
        provider.log.verbose = False    # the call's -v is for the call's own stderr
        sys.stdout = sys.stderr         # a stray print() goes to the task log
        status = worker_exit_status(provider, task_id)
    except BaseException:               # noqa: whatever happens, this process ends here
        try:
            import traceback
            traceback.print_exc()
        except BaseException:           # noqa
            pass
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(status if isinstance(status, int) else 1)


def worker_exit_status(provider, task_id):
    """A forked worker's run (run_task_worker), ended as main() ends a call: its exit
    status; a bug's traceback goes to the log (event "bug")."""
    try:
        run_task_worker(provider, task_id)
        return 0
    except UsageError:
        return 2
    except (ProviderError, KeyboardInterrupt):
        return 1
    except Exception:  # a bug
        import traceback
        trace = traceback.format_exc()
        try:
            provider.log.write("bug", trace=trace)
        except Exception:
            sys.stderr.write(trace)     # the log failed too: the task log is all that is left
        return 1


def run_task_worker(provider, task_id):
    """The worker of one task (pool, command, the clouds): its backend's supervise, with
    the provider of the call that started it (fork_worker), or of `_worker ID`."""
    backend = provider.config.backend
    if not hasattr(backend, "supervise"):
        raise UsageError("the %s backend runs no workers" % backend.TYPE)
    provider.worker_of = task_id        # its saves go to log/tasks/ID.log as well
    try:
        provider.store.bound = provider.store.head().get("installation")
    except ProviderError:
        pass                            # no state to read: its own saves will say why
    return backend.supervise(provider, task_id)


class LogStream(object):
    """A worker's stderr (its task log): a write that fails (the disk full) is lost, it
    never ends the worker (which must go on to save the server it made)."""

    def __init__(self, stream):
        self.stream = stream

    def write(self, text):
        try:
            return self.stream.write(text)
        except (IOError, OSError, ValueError):
            return 0

    def flush(self):
        try:
            self.stream.flush()
        except (IOError, OSError, ValueError):
            pass


def name_process(script, name, *words):
    """What ps and top show for this process (Linux): its command line becomes
    "SCRIPT worker 7", written over the process's own argument area
    (/proc/self/mem) as far as that room allows, NUL-padded; then its comm "NAME
    worker 7" (cut to the 15 bytes comm holds). Anything refused is left as it was."""
    data = b"\0".join(os.fsencode(word) for word in (script,) + words) + b"\0"
    try:
        with open("/proc/self/stat", "rb") as handle:
            fields = handle.read().rsplit(b")", 1)[1].split()
        start, end = int(fields[45]), int(fields[46])      # arg_start, arg_end
        if end - start >= 2:
            fd = os.open("/proc/self/mem", os.O_RDWR)
            try:
                os.pwrite(fd, data[:end - start - 1].ljust(end - start, b"\0"), start)
            finally:
                os.close(fd)
    except (IOError, OSError, IndexError, ValueError, OverflowError):
        pass
    title = " ".join((name,) + words)
    try:
        with open("/proc/self/comm", "w") as handle:
            handle.write(title.encode("utf-8", "replace")[:15].decode("utf-8", "ignore"))
    except (IOError, OSError):
        pass


def close_descriptors(keep):
    """Close every descriptor of this process but those in keep (the caller's
    pipes and sockets must not live on in a worker: the caller would wait)."""
    try:
        fds = [int(name) for name in os.listdir("/proc/self/fd")]
    except (IOError, OSError, ValueError):
        fds = range(min(os.sysconf("SC_OPEN_MAX"), 65536))
    for fd in fds:
        if fd not in keep:
            try:
                os.close(fd)
            except OSError:
                pass


NOTIFY_KILL_GRACE = 2       # s between SIGTERM and SIGKILL of a hook that overran
NOTIFY_LOG_LINES = 200      # lines of a hook's stdout and of its stderr kept in the task log


def notify_marked(task, event):
    """Under the state lock: True the first time event is marked in the task (the
    caller then runs the hook, once the change is saved); False when it was already."""
    done = task.get("notified")
    done = list(done) if isinstance(done, list) else []
    if event in done:
        return False
    task["notified"] = done + [event]
    return True


def notify(provider, event, task, server_id=None):
    """Run the config's notify hook for an event of a task, detached (notify_hook):
    this call goes on at once and never waits for it. Nothing it does changes the
    task; a config without `notify`, or one unusable now, runs nothing."""
    try:
        config = provider.config
    except ProviderError:
        return
    if not config.notify or not valid_task_id(str(task.get("id"))):
        return
    data = task.get("data") if isinstance(task.get("data"), dict) else {}
    request = {"event": event, "provider": provider.paths.name, "task_id": task["id"],
               "config_id": task.get("config_id", ""), "status": task.get("status", ""),
               "message": task.get("message", ""), "server": task.get("server", ""),
               "server_id": str(server_id or data.get("server_id") or "")}
    log_path = os.path.join(provider.paths.log_dir, "tasks", task["id"] + ".log")
    provider.log.write("notify", task["id"], notify_event=event)
    try:
        detach(lambda: notify_hook(provider.paths, config, request, log_path))
    except OSError as exc:
        TaskLog(log_path).note("notify %s: cannot start the hook: %s" % (
            event, exc.strerror or exc))


def detach(run):
    """Run run() in a grandchild of its own session, stdin/stdout/stderr /dev/null, no
    other descriptor (the caller's pipes must not live on in it); the child between
    exits at once and is reaped here, so nothing is left to wait for."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()          # or the fork would write it again
        except (IOError, OSError, ValueError):
            pass
    pid = os.fork()
    if pid:
        try:
            os.waitpid(pid, 0)
        except OSError:
            pass                    # (SIGCHLD ignored: nothing is left to reap)
        return
    try:
        os.setsid()
        if os.fork() == 0:
            null = os.open(os.devnull, os.O_RDWR)
            for fd in (0, 1, 2):
                os.dup2(null, fd)
            close_descriptors(keep=(0, 1, 2))
            run()
    except BaseException:           # noqa: whatever happens, this process ends here
        pass
    finally:
        os._exit(0)


def notify_hook(paths, config, request, log_path):
    """In detach's grandchild: the hook gets request as one JSON line on stdin, at
    most notify_timeout s (then its process group is killed); its output and exit
    status go to the task log."""
    import subprocess
    log, event = TaskLog(log_path), request["event"]
    problem = program_problem(paths, config.notify)
    if problem:
        log.note("notify %s: refusing to run the hook as root: %s" % (event, problem))
        return
    argv = program_argv(paths, config.notify)
    log.note("notify %s: run %s (timeout %g s)" % (
        event, json.dumps(argv, ensure_ascii=False), config.notify_timeout))
    try:
        proc = subprocess.Popen([a.encode("utf-8") for a in argv], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                close_fds=True, start_new_session=True, cwd=paths.home,
                                env=child_env(binary=True))
    except OSError as exc:
        log.note("notify %s: cannot run %s: %s" % (event, argv[0], exc.strerror or exc))
        return
    data = (json.dumps(request, ensure_ascii=False) + "\n").encode("utf-8")
    try:
        out, err = proc.communicate(data, timeout=config.notify_timeout)
    except subprocess.TimeoutExpired:
        kill_group(proc, NOTIFY_KILL_GRACE)
        log.note("notify %s: the hook ran over notify_timeout (%g s): its process group "
                 "was killed" % (event, config.notify_timeout))
        return
    for stream, text in (("notify out", out), ("notify err", err)):
        for line in text.decode("utf-8", "replace").splitlines()[:NOTIFY_LOG_LINES]:
            log.line(stream, line)
    log.note("notify %s: the hook exited with status %d" % (event, proc.returncode))


def file_stamp(path):
    """What tells a changed file: (mtime in ns, size, inode), None when it is missing."""
    try:
        info = os.stat(path)
    except OSError:
        return None
    return info.st_mtime_ns, info.st_size, info.st_ino


def worker_lock_path(paths, task_id):
    """The flock a task's detached worker holds while it runs."""
    return os.path.join(paths.var, "workers", task_id + ".lock")


class WorkerReport(object):
    """What a cloud order's worker tells the calls through its lock file, which it holds
    for its whole life: one line, rewritten in place, "PID START STEPS DOING SINCE WHY":
    its pid and start time (a call wakes it with SIGUSR1 only when that pid still is
    this worker: pids get reused), the steps done so far, what it does since when:
    "step" (an API call, a probe) or "wait" (the pause between two steps), and WHY its
    last save failed (the disk full, say; empty once a save went through)."""

    SIZE = 512              # the file keeps this size: a rewrite needs no new disk block

    def __init__(self, pid=0, start=None, steps=0, doing="step", since=0.0, why=""):
        self.pid, self.start, self.steps = pid, start, steps
        self.doing, self.since, self.why = doing, since, why

    @classmethod
    def read(cls, lock):
        """The report of the worker holding lock, or None when none holds it. A worker
        that has not written yet reports step 0, busy since the lock was taken."""
        if lock_is_held(lock) is not True:
            return None
        try:
            fd = os.open(lock, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
            try:
                raw, since = os.read(fd, cls.SIZE), os.fstat(fd).st_mtime
            finally:
                os.close(fd)
        except OSError:
            return cls()
        fields = raw.decode("utf-8", "replace").strip().split(" ", 5)
        try:
            return cls(int(fields[0]), int(fields[1]), int(fields[2]), fields[3],
                       float(fields[4]), fields[5] if len(fields) > 5 else "")
        except (IndexError, ValueError):
            return cls(since=since)

    def write(self, lock):
        line = "%d %d %d %s %.3f %s" % (self.pid, self.start or 0, self.steps, self.doing,
                                        self.since, printable(self.why, 300))
        data = line.encode("utf-8")[:self.SIZE - 1].ljust(self.SIZE - 1) + b"\n"
        try:
            fd = os.open(lock, os.O_WRONLY | getattr(os, "O_NOFOLLOW", 0))
            try:
                os.pwrite(fd, data, 0)
            finally:
                os.close(fd)
        except OSError:
            pass                # a full disk: the calls read what the file still says

    def wake(self):
        """Ask the worker for its next step now (SIGUSR1 cuts its pause short)."""
        import signal
        if self.pid and self.start and process_start_time(self.pid) == self.start:
            try:
                os.kill(self.pid, signal.SIGUSR1)
            except OSError:
                pass


class WorkerPause(object):
    """The pause of a worker between two steps: poll_interval, cut short by a call's
    SIGUSR1 (WorkerReport.wake). The signal only writes a byte to a pipe the pause
    waits on, so it never interrupts a step. Real time: a test's virtual clock
    (tests/helpers/launch.py) leaves it alone."""

    def __init__(self):
        import signal
        self.read_end, write_end = os.pipe()
        for fd in (self.read_end, write_end):
            os.set_blocking(fd, False)
        signal.set_wakeup_fd(write_end)
        signal.signal(signal.SIGUSR1, lambda signum, frame: None)

    def wait(self, seconds):
        import select
        select.select([self.read_end], [], [], max(0.0, seconds))
        try:
            while os.read(self.read_end, 512):
                pass
        except OSError:
            pass                # drained


def process_start_time(pid):
    """A process's start time in clock ticks (Linux /proc), or None."""
    try:
        with open("/proc/%d/stat" % pid, "rb") as handle:
            fields = handle.read().rsplit(b")", 1)[1].split()
        return int(fields[19])
    except (IOError, OSError, IndexError, ValueError):
        return None


def kill_group(proc, grace):
    """SIGTERM the program's process group, SIGKILL what is left after grace s."""
    import signal
    import subprocess
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except OSError:
        pass
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except OSError:
        pass
    proc.wait()


def kill_group_if_same(data):
    """Kill an orphaned program's group, only if its leader is the process the
    worker started (same start time): pids get reused."""
    import signal
    pgid, started = data.get("pgid"), data.get("pgid_start")
    if not pgid or started is None or process_start_time(pgid) != started:
        return False
    try:
        os.killpg(pgid, signal.SIGKILL)
        return True
    except OSError:
        return False


# Environment variables that hold a secret (a backend's token_env, ...): the
# programs the plugin starts (ssh, ssh-keyscan, the command program) never see them.
SECRET_VARIABLES = set()


def child_env(binary=False):
    """The environment for a program the plugin starts: its own, less SECRET_VARIABLES."""
    if binary:
        secret = set(name.encode("utf-8", "surrogateescape") for name in SECRET_VARIABLES)
        return dict((k, v) for k, v in os.environb.items() if k not in secret)
    return dict((k, v) for k, v in os.environ.items() if k not in SECRET_VARIABLES)


def legacy_owner_tag(paths):
    """The owner tag of provider.py 1.x: 8 hex digits of the host name and home. Two masters
    with one host name (a cloned VM) shared it; servers of tasks made before 2.0 carry it."""
    import hashlib
    seed = "%s\0%s" % (os.uname()[1], paths.home)
    return hashlib.sha256(seed.encode("utf-8", "replace")).hexdigest()[:8]


def machine_id():
    """/etc/machine-id (or D-Bus's copy): a cloned master that was given a new one is told
    apart from the original; "" where there is none."""
    for path in ("/etc/machine-id", "/var/lib/dbus/machine-id"):
        try:
            with open(path, "rb") as handle:
                text = handle.read(64).decode("ascii", "replace").strip()
        except (IOError, OSError):
            continue
        if text and all(ch in "0123456789abcdef" for ch in text):
            return text
    return ""


def owner_tag(state):
    """8 hex digits that only this installation's servers carry: its random installation id
    (made once, kept in the state: see StateStore.migrate) mixed with the machine id."""
    import hashlib
    seed = "%s\0%s" % (state.get("installation") or "", machine_id())
    return hashlib.sha256(seed.encode("ascii", "replace")).hexdigest()[:8]




# Backend type -> the name of its class. The cloud backends are defined by the cloud section,
# the file's tail (the layout is at the top of the file): backend_class runs it on first need.
BACKENDS = {"manual": "ManualBackend", "pool": "PoolBackend", "command": "CommandBackend",
            "hetzner": "HetznerBackend", "timeweb": "TimewebBackend",
            "openstack": "OpenStackBackend", "selectel": "SelectelBackend",
            "vkcloud": "VKCloudBackend", "yandex": "YandexBackend",
            "proxmox": "ProxmoxBackend"}

# The backends of the cloud section: their orders are driven by a worker (needs_worker).
CLOUD_TYPES = frozenset(("hetzner", "timeweb", "openstack", "selectel", "vkcloud", "yandex",
                         "proxmox"))

# bin/NAME's boot runs the core alone and puts here the one callable that runs the cloud
# section (compiled through its cache) in this module; empty when the whole file ran
# (`python3 provider.py`, an import): the section is defined already.
CLOUD_SECTION = []


def backend_class(kind):
    """The class of a backend type (KeyError for an unknown one); the first cloud type
    a call needs runs the cloud section."""
    name = BACKENDS[kind]
    if name not in globals() and CLOUD_SECTION:
        CLOUD_SECTION.pop()()
    return globals()[name]


# ---------------------------------------------------------------------------
# Tasks: what they rent, their age, their workers (the record: near the top)
# ---------------------------------------------------------------------------

def rented_server(task):
    """The id of the cloud server a task still rents (costs money), or None."""
    data = task.get("data") or {}
    return None if data.get("server_deleted") else data.get("server_id")


def unsettled_create(task):
    """True when the task sent a create (the ledger: claim_create counts each one before
    it is sent) whose server it does not know, and that is not settled: refused, or looked
    for until no late create could land (data "settled" counts the creates settled)."""
    data = task.get("data") or {}
    creates, settled = data.get("creates"), data.get("settled") or 0
    return (isinstance(creates, int) and isinstance(settled, int) and creates > settled
            and not data.get("server_id"))


def may_rent(task):
    """True when the task rents a cloud server, or may (an unsettled create)."""
    return bool(rented_server(task) or unsettled_create(task))


def task_age(task):
    """Seconds since the order, as its workers measured them ("age", by the monotonic
    clock: a wall-clock step while a worker runs changes nothing) plus the time since
    their last measure: by the monotonic clock while the machine has not restarted since
    ("age_mono", "age_boot": a wall-clock step while no worker runs changes nothing
    either), else by the wall clock ("age_at"; never negative); else since "created"."""
    data = task.get("data") or {}
    age, at, mono = data.get("age"), data.get("age_at"), data.get("age_mono")
    if (isinstance(age, (int, float)) and isinstance(mono, (int, float))
            and data.get("age_boot") and data.get("age_boot") == boot_id()):
        return age + max(0.0, time.monotonic() - mono)
    if isinstance(age, (int, float)) and isinstance(at, (int, float)):
        return age + max(0.0, now() - at)
    created = task.get("created")
    return max(0.0, now() - created) if isinstance(created, (int, float)) else 0.0


def age_marks(age, at):
    """The data keys of a measured age: task_age reads them."""
    return {"age": age, "age_at": at, "age_mono": time.monotonic(), "age_boot": boot_id()}


def boot_id():
    """This boot's id (Linux's /proc/sys/kernel/random/boot_id): the monotonic clock counts
    from it, the same for every process; "" where there is none."""
    if not BOOT_ID:
        try:
            with open("/proc/sys/kernel/random/boot_id", "rb") as handle:
                BOOT_ID.append(handle.read(64).decode("ascii", "replace").strip())
        except (IOError, OSError):
            BOOT_ID.append("")
    return BOOT_ID[0]


BOOT_ID = []


def needs_worker(task):
    """True for a task a detached worker must drive: a cloud order in progress, or a
    failed one whose server (or a create's) is still to be deleted or looked for (data
    "cleanup" pending, while it rents or may rent one)."""
    return (isinstance(task, dict) and task.get("backend") in CLOUD_TYPES
            and (task.get("status") == IN_PROGRESS
                 or ((task.get("data") or {}).get("cleanup") == "pending" and may_rent(task))))


def index_workers(state):
    """Before every save: the head's "workers", the ids of the tasks needing a worker,
    which any call reads cheaply (revive_workers)."""
    state["workers"] = sorted((task_id for task_id, task in state["tasks"].items()
                               if needs_worker(task)), key=int)


def revive_workers(provider, head, skip=None):
    """Start a worker for each task of the head's "workers" that has none (killed, a
    reboot): an order nobody polls still ends, within its timeout, and a failed order's
    server is still deleted. Cheap: no network; a look at each worker lock, and a fork
    per dead worker. Problems only warn: the call's own answer is what matters."""
    ids = head.get("workers") if isinstance(head, dict) else None
    dead = [task_id for task_id in ids if isinstance(task_id, str) and valid_task_id(task_id)
            and task_id != skip
            and lock_is_held(worker_lock_path(provider.paths, task_id)) is not True
            ] if isinstance(ids, list) else []
    if not dead:
        return
    try:
        backend = provider.config.backend
        for task_id in dead[:MAX_REVIVALS]:
            task = provider.store.find(task_id)
            if needs_worker(task) and task.get("backend") == backend.TYPE:
                provider.log.write("revive", task_id, status=task["status"])
                backend.start_worker(task, again=True)
    except ProviderError as exc:
        sys.stderr.write("warning: a task's worker could not be started again: %s\n"
                         % exc.message)


def caller_mark(paths, task_id):
    """The first bytes of the caller's tasks/<id>; b"" when it is missing or not a
    regular file. Opened without blocking and without following a symlink: a FIFO
    planted there cannot hang a call (nor an order holding the state lock)."""
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(os.path.join(paths.caller_tasks, task_id), flags)
    except OSError:
        return b""
    try:
        return os.read(fd, 64) if stat.S_ISREG(os.fstat(fd).st_mode) else b""
    except OSError:
        return b""
    finally:
        os.close(fd)


def is_hex(text, length):
    return (isinstance(text, str) and len(text) == length
            and all(ch in "0123456789abcdef" for ch in text))


def valid_task_id(text):
    """Ids are positive decimals without leading zeros: "024" is not task 24."""
    return (0 < len(text) <= 20 and all(ch in "0123456789" for ch in text)
            and not text.startswith("0"))


def issued_id(text):
    """True for an id (str or bytes) this plugin can have handed out; ids found
    beyond MAX_ISSUED_ID (a stray tasks/ name) do not count when numbering."""
    if isinstance(text, bytes):
        text = text.decode("ascii", "replace")
    return valid_task_id(text) and int(text) <= MAX_ISSUED_ID


# ---------------------------------------------------------------------------
# The provider: config, state, log and backend together
# ---------------------------------------------------------------------------

class Provider(object):
    def __init__(self, paths, verbose=False):
        self.paths = paths
        self.log = AuditLog(paths.log, verbose, TrustedFiles(paths))
        self.worker_of = None           # the task id, in that task's detached worker
        self._config = None
        self.store = StateStore(paths, self.lock_wait, self.retention_days,
                                tidy=self.scrub_passwords, index=index_workers)

    @property
    def config(self):
        if self._config is None:
            try:
                self._config = Config.load(self.paths, self.log, self)
            except ProviderError as exc:
                self.log.debug("config %s not usable: %s" % (self.paths.config, exc.message))
                raise
            self.log.debug("config %s read: backend %s, %d configuration(s), %s" % (
                self.paths.config, self._config.backend.TYPE,
                len(self._config.configurations),
                "enabled" if self._config.enabled else "disabled"))
        return self._config

    def reload_config(self):
        """The config read again (a worker's follow_config); ProviderError when it is not
        usable now, and then the one read before stays."""
        config = Config.load(self.paths, self.log, self)
        self._config = config
        return config

    def use_config(self, config, backend):
        """A worker's config read again (WorkerBackend.follow_config); backend:
        the worker's own backend object, which keeps serving it."""
        config.backend = backend
        self._config = config

    def enabled_config(self):
        config = self.config
        if not config.enabled:
            raise ProviderError(E_DISABLED, "the provider is disabled in %s" % config.path)
        return config

    def lock_wait(self):
        """The config's lock_wait; the default when the config is unusable."""
        try:
            return self.config.lock_wait
        except ProviderError:
            return DEFAULT_LOCK_WAIT

    def retention_days(self):
        """The config's retention_days; the default when the config is unusable."""
        try:
            return self.config.retention_days
        except ProviderError:
            return DEFAULT_RETENTION_DAYS

    def password_ttl_days(self):
        try:
            return self.config.password_ttl_days
        except ProviderError:
            return DEFAULT_PASSWORD_TTL_DAYS

    def caller_completed(self, task_id):
        """True when the caller wrote "complete..." into tasks/<id> (added to its pool)."""
        return caller_mark(self.paths, task_id).startswith(b"complete")

    def password_reason(self, task, stamp, ttl_days, check_caller=True):
        """Why a finished task's root password must go now, or None."""
        if task.get("status") != FINISHED or not task.get("server_password"):
            return None
        updated = task.get("updated")
        if not isinstance(updated, (int, float)) or stamp - updated >= ttl_days * 86400:
            return "after %g day%s (password_ttl_days)" % (ttl_days, "" if ttl_days == 1 else "s")
        if check_caller and self.caller_completed(task["id"]):
            return "because the server was added to the pool"
        return None

    def scrub_passwords(self, state):
        """Remove the root passwords nobody needs any more; runs before every save:
        a failed task's at once, a finished task's after password_ttl_days or
        once the caller added the server.

        Bounded: the age test is in memory; at most SCRUB_FILE_CHECKS tasks/<id>
        files are read per call. True when a password was removed (the store
        then also replaces the backup, which would still hold it).
        """
        stamp, ttl, reads, removed = now(), self.password_ttl_days(), 0, False
        for task in state["tasks"].values():
            if not isinstance(task, dict):
                continue
            data = task.get("data")
            if (task.get("status") in TERMINAL and isinstance(data, dict)
                    and data.get("host_key_private")):
                del data["host_key_private"]    # a cloud server's own host key: it has it now
                removed = True
            if not task.get("server_password"):
                continue
            if task.get("status") == ERROR:
                # a failed order's password is never shown to the caller: it goes at once
                # (the message, the admin's reason for the failure, is left as it is)
                reason, say = "because the order failed", False
            elif task.get("status") == FINISHED:
                reason, say = self.password_reason(
                    task, stamp, ttl, check_caller=reads < SCRUB_FILE_CHECKS), True
                reads += 1
            else:
                continue
            if reason:
                scrub_task(task, reason, stamp, say)
                self.log.write("scrub", task["id"], reason=reason)
                removed = True
        return removed

    def remember_host_keys(self, task):
        """Write a finished task's host keys into the known_hosts of the user
        answering order_status: the caller's ssh_keycopy runs as that user next.
        Once per task and file (noted in data known_hosts_in); never fails the call."""
        data = task.get("data") or {}
        keys, server, port = data.get("host_keys"), task.get("server"), data.get("ssh_port", 22)
        if (not isinstance(keys, list) or not keys or not isinstance(server, str)
                or check_server(server, True)[1] or not isinstance(port, int)
                or not 0 < port < 65536):
            return
        path = known_hosts_path()
        if path is None or path in (data.get("known_hosts_in") or ()):
            return
        keys = [key for key in keys if isinstance(key, str) and parse_host_key(key) == key]
        try:
            changed = write_known_hosts(path, server, port, keys)
        except (IOError, OSError) as exc:
            self.log.debug("task %s: %s not written: %s" % (task["id"], path,
                                                            exc.strerror or exc))
            return
        if changed:
            self.log.write("known_hosts", task["id"], file=path, server=server, port=port,
                           keys=len(keys))

        def change(state):
            found = state["tasks"].get(task["id"])
            if found is not None and isinstance(found.get("data"), dict):
                done = found["data"].setdefault("known_hosts_in", [])
                if path not in done:
                    done.append(path)
        try:
            self.store.update(change)
        except ProviderError:
            pass                        # written; noting it is tried at the next call

    def get_task(self, task_id):
        if not valid_task_id(task_id):
            raise ProviderError(E_NO_TASK, "no task %s (task ids are decimal numbers)"
                                % printable(task_id))
        task = self.store.find(task_id)
        if task is None:
            self.log.debug("task %s: in neither %s nor the archive" % (task_id, self.paths.state))
            raise ProviderError(E_NO_TASK, "no task %s" % task_id)
        self.log.debug("task %s read from %s: %s" % (task_id, self.paths.state, task_summary(task)))
        return task

    def notify_wanted(self):
        """True when the config names a notify hook (an unusable config: False)."""
        try:
            return bool(self.config.notify)
        except ProviderError:
            return False

    def apply(self, task_id, changes, event="status"):
        """Save a backend's changes to a pending task; returns the task as saved. The
        one call that ends it runs the notify hook (marked under the lock: once)."""
        wanted, marked = self.notify_wanted(), []

        def change(state):
            task = state["tasks"].get(task_id)
            if task is None or task["status"] in TERMINAL:
                return task           # someone else finished it meanwhile
            before = (task["status"], task.get("phase"), task.get("message"))
            if "data" in changes:       # a backend sends the data keys it changes
                data = dict(task.get("data") or {})
                data.update(changes["data"])
                task["data"] = data
            task.update((key, value) for key, value in changes.items() if key != "data")
            task["updated"] = now()
            if (task["status"], task.get("phase"), task.get("message")) != before:
                self.log.write(event, task_id, status=task["status"], phase=task.get("phase"),
                               server=task.get("server", ""), message=task.get("message", ""))
            if wanted and task["status"] in TERMINAL and notify_marked(task, task["status"]):
                marked.append(task["status"])
            return task
        saved = self.store.update(change)
        for notified in marked:
            notify(self, notified, saved)
        if saved is not None and task_id == self.worker_of:   # each step, in the task's log
            TaskLog(os.path.join(self.paths.log_dir, "tasks", task_id + ".log")).note(
                "saved: %s (%s): %s" % (saved["status"], saved.get("phase"), saved.get("message")))
        return saved

    def status_message(self):
        """Why `help` says disabled, or None when enabled."""
        try:
            config = self.config
        except ProviderError as exc:
            return exc.message
        if not config.enabled:
            return "disabled in %s" % config.path
        return None


# ---------------------------------------------------------------------------
# Protocol handlers: help, configs, order, order_status
# ---------------------------------------------------------------------------

def task_summary(task):
    """A task for -v lines: status, phase, server, message; never its password."""
    return "status %s, phase %s, server %s, message %r" % (
        task.get("status"), task.get("phase"), task.get("server") or "-",
        printable(task.get("message") or "", 200))


def cmd_help(provider, args):
    answer = {"options": list(PROTOCOL_OPTIONS)}
    reason = provider.status_message()
    provider.log.debug("status: %s" % ("disabled: " + reason if reason else "enabled"))
    answer["status"] = "disabled" if reason else "enabled"
    if reason:
        answer["message"] = reason
    return answer


def cmd_configs(provider, args):
    config = provider.enabled_config()
    backend = config.backend
    state = provider.store.load() if backend.configs_need_state() else None
    for item in config.configurations:
        if state is not None and not backend.available(item, state):
            provider.log.debug("configuration %s left out: nothing left to order "
                               "(hide_when_empty)" % item["id"])
    return {"configurations": [{"id": c["id"], "descr": c["descr"]}
                               for c in config.configurations
                               if state is None or backend.available(c, state)],
            "status": "enabled"}


def cmd_order(provider, args):
    config = provider.enabled_config()
    configuration = config.configuration(args.config_id)
    backend = config.backend
    if getattr(args, "dry_run", False):
        return order_dry_run(provider, backend, configuration)

    heads = []

    def change(state):
        task = new_task(provider.store.allocate_id(state), configuration["id"], backend.TYPE)
        backend.place(task, configuration, state)
        state["tasks"][task["id"]] = task
        heads.append(state)
        return task

    try:
        task = provider.store.update(change)
    except ProviderError:
        try:        # a refusal (the cap full of tasks whose workers died, say): revive them
            revive_workers(provider, provider.store.head())
        except ProviderError:
            pass
        raise
    provider.log.write("order", task["id"], config=task["config_id"], backend=backend.TYPE,
                       status=task["status"], phase=task["phase"], message=task["message"])
    try:
        changes = backend.launch(task, configuration)
    except Exception as exc:
        # The caller will not know this id: the task must not stay pending.
        known = isinstance(exc, ProviderError)
        reason = exc.message if known else "internal error (%s)" % type(exc).__name__
        failed = {"status": ERROR, "phase": "failed", "message": reason}
        if task["backend"] in CLOUD_TYPES:  # its worker may have sent a create: looked for
            failed["data"] = {"cleanup": "pending", "failed_because": reason}
        try:
            provider.apply(task["id"], failed)
        except ProviderError as save_error:     # the launch's error is the one to tell
            sys.stderr.write("warning: task %s stays in_progress: %s\n"
                             % (task["id"], save_error.message))
        if not known:
            raise                       # a bug: main() logs the traceback
        raise ProviderError(E_BACKEND, "task %s could not be started: %s"
                            % (task["id"], exc.message))
    if changes:
        # The work has started (a worker, a server being made): from here on the
        # caller must get the id. Changes that cannot be saved now (the lock is
        # busy, the disk full) are found again by the next order_status's poll.
        try:
            provider.apply(task["id"], changes)
        except ProviderError as exc:
            sys.stderr.write("warning: task %s: its first progress was not saved (%s); "
                             "order_status looks again\n" % (task["id"], exc.message))
    revive_workers(provider, heads[-1], skip=task["id"])
    return {"task_id": task["id"]}


def order_dry_run(provider, backend, configuration):
    """People's `order CONFIG_ID --dry-run` (the caller never passes it)."""
    if not hasattr(backend, "dry_run"):
        raise UsageError("--dry-run is for the cloud backends (this one is %s)" % backend.TYPE)
    state = provider.store.load()
    return backend.dry_run(configuration, state, provider.store.allocate_id(state))


def cmd_order_status(provider, args):
    """The task's status; on the way, any dead worker of another task is started again."""
    task = provider.get_task(args.task_id)
    head = provider.store.last_head
    answer = task_status(provider, task)
    revive_workers(provider, head, skip=task["id"])
    return answer


def task_status(provider, task):
    reason = None
    if task.get("status") == FINISHED and task.get("server_password"):
        # (only then: a terminal task without one answers without reading the config)
        reason = provider.password_reason(task, now(), provider.password_ttl_days())
    if reason:
        # Its time is up: remove it now (a short write); answer without it anyway.
        try:
            found = provider.store.update(lambda state: state["tasks"].get(task["id"]))
            if found is None:       # archived (by an older provider.py, with its password)
                provider.store.tidy_archive([archive_start(task["id"])])
                found = provider.store.find(task["id"])
            task = found or task
        except ProviderError:
            pass
        if task.get("server_password"):
            task = dict(task)
            scrub_task(task, reason, now())
    if reason:
        provider.log.debug("task %s: its root password is removed %s" % (task["id"], reason))
    if task["status"] in TERMINAL:
        provider.log.debug("task %s has ended: answered from the state" % task["id"])
        if (task.get("data") or {}).get("cleanup") == "pending":
            settle_quietly(provider, task)      # a failed order's server still to delete
        elif task["status"] == FINISHED:
            provider.remember_host_keys(task)
        return status_answer(task)
    config = provider.config
    # A task ordered under another backend (the config changed since) is not
    # this backend's to poll: it answers from the state until someone acts.
    if task.get("backend") == config.backend.TYPE:
        changes = config.backend.poll(task, config.by_id.get(task["config_id"], {}))
        provider.log.debug("task %s: the %s backend looked: %s" % (
            task["id"], config.backend.TYPE, "its worker's step, saved by the worker"
            if changes == {} else "no change" if not changes else ", ".join(
                "%s -> %s" % (key, printable(str(changes[key]), 200)) for key in
                ("status", "phase", "server", "message") if key in changes) or "data only"))
        if changes:
            task = provider.apply(task["id"], changes) or task
            settle_quietly(provider, task)
        elif changes is not None:       # {}: the backend's worker saved the task itself
            task = provider.store.find(task["id"]) or task
    else:
        provider.log.debug("task %s was ordered from the %s backend, the config now says %s: "
                           "answered from the state" % (task["id"], task.get("backend"),
                                                        config.backend.TYPE))
    if task["status"] == FINISHED:
        provider.remember_host_keys(task)
    return status_answer(task)


def settle_quietly(provider, task):
    """backend.settle(task); a problem (a broken config, no worker) only warns:
    the answer about the task is what the caller asked for."""
    try:
        backend = provider.config.backend
        if backend.TYPE == task.get("backend"):
            backend.settle(task)
    except ProviderError as exc:
        sys.stderr.write("warning: task %s: %s\n" % (task["id"], exc.message))


# ---------------------------------------------------------------------------
# Admin handlers for people: tasks, task show/finish/fail, check
# ---------------------------------------------------------------------------

def format_age(seconds):
    seconds = max(0, int(seconds))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return "%d%s" % (seconds // size, unit)
    return "%ds" % seconds


def format_table(header, rows):
    widths = [max(len(str(row[i])) for row in [header] + rows) for i in range(len(header))]
    lines = []
    for row in [header] + rows:
        cells = [str(cell).ljust(width) for cell, width in zip(row, widths)]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


def public_task(task, show_password=False):
    shown = dict(task)
    if shown.get("server_password") and not show_password:
        shown["server_password"] = "********"
    if isinstance(shown.get("data"), dict) and shown["data"].get("host_key_private"):
        # a pending cloud task's pinned host key: secret, never shown
        shown["data"] = dict(shown["data"], host_key_private="********")
    return shown


def holding_tasks(store):
    """Every task that rents a cloud server, or may (may_rent: a create sent whose server
    it does not know: its cleanup looks for it), and every archived task that rents one
    (a create an archived 1.x task never saw settled shows as an orphan in `servers`),
    by id. Starts no worker."""
    tasks = dict((task_id, task) for task_id, task in store.archived_tasks().items()
                 if rented_server(task))
    tasks.update(store.load()["tasks"])
    held = []
    for task in sorted(tasks.values(), key=lambda t: int(t["id"])):
        data = task.get("data") if isinstance(task.get("data"), dict) else {}
        if may_rent(task):
            held.append({"task_id": task["id"], "backend": task.get("backend"),
                         "server_id": rented_server(task), "name": data.get("name"),
                         "status": task.get("status"), "server": task.get("server") or None})
    return held


def cmd_holding(provider, args):
    """`tasks --holding`: what uninstalling would leave billed."""
    held = holding_tasks(provider.store)
    if args.json:
        return {"holding": held}
    if not held:
        return "no task rents a cloud server"
    return format_table(["TASK", "BACKEND", "SERVER ID", "NAME", "STATUS"], [
        [t["task_id"], printable(str(t["backend"])), printable(str(t["server_id"] or
                                                                   "- (create under way?)")),
         printable(str(t["name"] or "-"), 60), t["status"]] for t in held])


def cmd_tasks(provider, args):
    if args.holding:
        if args.all or args.status:
            raise UsageError("--holding lists every task that rents a server: no --all, "
                             "--status")
        return cmd_holding(provider, args)
    store = provider.store
    state = store.load()
    revive_workers(provider, state)
    tasks = state["tasks"]
    if args.all:
        hot, tasks = tasks, store.archived_tasks()
        tasks.update(hot)             # a task in both (a crash while archiving): hot wins
    tasks = sorted(tasks.values(), key=lambda t: int(t["id"]))
    if args.status:
        tasks = [t for t in tasks if t["status"] == args.status]
    if args.json:
        return {"tasks": [public_task(t) for t in tasks]}
    if not tasks:
        if args.status:
            archived = args.status != IN_PROGRESS and not args.all and store.archive_starts()
            return "no %s tasks%s" % (args.status, " (tasks --all: also the archived ones)"
                                      if archived else "")
        return "no tasks yet (state: %s)" % provider.paths.state
    note = ""
    if not args.all and args.status != IN_PROGRESS and store.archive_starts():
        # the archive only ever holds ended tasks
        note = "\n(older finished and failed tasks are in %s: tasks --all)" % provider.paths.archive
    stamp = now()
    rows = [[t["id"], t["config_id"], t["status"], shown_server(t),
             format_age(stamp - t.get("created", stamp)), printable(t.get("message", ""), 60)]
            for t in tasks]
    note += aside_notes(provider, state)
    header = ["ID", "CONFIG", "STATUS", "SERVER", "AGE", "MESSAGE"]
    if any((t.get("data") or {}).get("server_id") or unsettled_create(t) for t in tasks):
        # cloud backends: which orders still rent (and pay for) a server
        header.insert(4, "RENTS")
        for row, task in zip(rows, tasks):
            row.insert(4, rented_server(task) or ("deleted" if (task.get("data") or {})
                                                  .get("server_id") else "maybe (a create "
                                                  "sent)" if unsettled_create(task) else "-"))
    return format_table(header, rows) + note


def aside_notes(provider, state):
    """`tasks`: a line for each pool server set aside as unavailable now."""
    if not state.get("pool_unavailable"):
        return ""
    try:
        config = provider.config
    except ProviderError:
        return ""
    if not hasattr(config.backend, "aside_report"):
        return ""
    return "".join("\n(pool: %s)" % text for _, text in config.backend.aside_report(
        config.configurations, state))


def shown_server(task):
    """The SERVER column: none for a pool task whose server went back to the pool."""
    if (task.get("data") or {}).get("released"):
        return "- (released)"
    return task.get("server") or "-"


def cmd_state_compact(provider, args):
    days = args.days
    if days is None:
        days = provider.config.retention_days     # a broken config is an error here
    elif not 0 <= days < float("inf"):
        raise UsageError("--days must be a finite number, 0 or more")
    moved, staying = provider.store.compact(days)
    provider.log.write("compact", moved=moved, staying=staying, days=days, by=operator_name())
    text = "moved %d task(s) to %s; %d task(s) stay in %s" % (
        moved, provider.paths.archive, staying, provider.paths.state)
    holding = sorted((t["id"] for t in provider.store.load()["tasks"].values()
                      if t.get("server_password")), key=int)
    if holding:
        text += ("\n%d of them still hold a root password (%s): finished tasks the caller "
                 "has not added to its pool yet, or pending ones; a task moves once its "
                 "password is removed (password_ttl_days, or the caller's \"add to pool\")"
                 % (len(holding), ", ".join(holding[:10]) + (", ..." if len(holding) > 10
                                                           else "")))
    return text


def cmd_task_show(provider, args):
    task = public_task(provider.get_task(args.task_id), args.show_password)
    if args.json:
        return task
    lines = []
    for key in ("id", "config_id", "backend", "status", "phase", "server", "server_password",
                "message"):
        lines.append("%-16s %s" % (key + ":", task.get(key, "")))
    for key in ("created", "updated"):
        stamp = task.get(key)
        lines.append("%-16s %s" % (key + ":", time.strftime(
            "%Y-%m-%d %H:%M:%S UTC", time.gmtime(stamp)) if stamp else ""))
    for key in sorted(task.get("data") or {}):
        lines.append("%-16s %s" % ("data." + key + ":", json.dumps(task["data"][key],
                                                                   ensure_ascii=False)))
    if task.get("status") == IN_PROGRESS:
        lines.append("%-16s %s" % ("next:", next_steps(provider.paths.name, task)))
    return "\n".join(lines)


def next_steps(name, task):
    """What a person can do about a pending task, as `task show` says it."""
    fail = "`%s task fail %s --message TEXT` gives it up" % (name, task["id"])
    if task.get("backend") == "manual":
        return ("`%s task finish %s --server ADDR` once the server is ready (root password on "
                "stdin, or --no-password), or %s" % (name, task["id"], fail))
    return "the task's worker goes on by itself; %s" % fail


def read_password(args):
    """The root password from stdin (a pipe) or a prompt; never from argv."""
    if args.no_password:
        return ""
    if sys.stdin is None:
        raise UsageError("no password: pipe it on stdin or give --no-password")
    if sys.stdin.isatty():
        import getpass
        first = getpass.getpass("root password for %s: " % args.server)
        if getpass.getpass("again: ") != first:
            raise UsageError("the two passwords differ")
        password = first
    else:
        # bytes, decoded here: the locale's decoding (ASCII under LANG=C on 3.6)
        # would turn a Cyrillic password into surrogates no file can hold
        stream = getattr(sys.stdin, "buffer", sys.stdin)
        data = stream.read(MAX_CONFIG_BYTES)
        try:
            text = data.decode("utf-8") if isinstance(data, bytes) else data
        except UnicodeDecodeError:
            raise UsageError("the password on stdin is not UTF-8 text")
        lines = [line.rstrip("\r") for line in text.split("\n") if line.strip("\r")]
        if len(lines) > 1:
            raise UsageError("%d non-empty lines on stdin: give the password alone, on one "
                             "line" % len(lines))
        password = lines[0] if lines else ""
    if not password:
        raise UsageError("empty password: give --no-password for hosts that hold the pool key")
    problem = password_problem(password)
    if problem:
        raise UsageError("the password %s" % problem)
    return password


def pending_task(provider, task_id):
    """The task, which must exist and be in progress (archived tasks are all terminal)."""
    found = provider.get_task(task_id)
    if found["status"] in TERMINAL:
        raise ProviderError(E_TASK_STATE, "task %s is already %s" % (task_id, found["status"]))
    return found


def pending_task_change(provider, task_id, changes, event, guard=None):
    """Finish or fail a pending task by hand; refuses terminal ones. A data key
    changed to None is removed; guard(task), under the lock, raises when the
    task changed since the caller looked at it."""
    pending_task(provider, task_id)       # a clear "no task" before taking the lock
    wanted, marked = provider.notify_wanted(), []

    def change(state):
        task = state["tasks"].get(task_id)
        if task is None:
            raise ProviderError(E_NO_TASK, "no task %s" % task_id)
        if task["status"] in TERMINAL:
            raise ProviderError(E_TASK_STATE, "task %s is already %s" % (task_id, task["status"]))
        if guard is not None:
            guard(task)
        task.update((key, value) for key, value in changes.items() if key != "data")
        if "data" in changes:
            data = dict(task.get("data") or {}, **changes["data"])
            task["data"] = dict((k, v) for k, v in data.items() if v is not None)
        task["updated"] = now()
        if wanted and task["status"] in TERMINAL and notify_marked(task, task["status"]):
            marked.append(task["status"])
        return task

    task = provider.store.update(change)
    provider.log.write(event, task_id, status=task["status"], server=task["server"],
                       message=task["message"], by=operator_name())
    for notified in marked:
        notify(provider, notified, task)
    return task


def operator_name():
    try:
        import pwd
        return pwd.getpwuid(os.getuid()).pw_name
    except (ImportError, KeyError):
        return str(os.getuid())


def finish_settings(provider):
    """The backend settings `task finish` checks a server with; the defaults
    when the config cannot be read (a task can be finished all the same)."""
    try:
        return provider.config.backend.settings
    except ProviderError:
        return {}


def cmd_task_finish(provider, args):
    settings = finish_settings(provider)
    server, problem = check_server(args.server, settings.get("allow_loopback", False))
    if problem:
        raise UsageError("--server: %s" % problem)
    task = pending_task(provider, args.task_id)       # before asking for the password
    claimed = task.get("server") if task.get("backend") == "pool" else None
    if claimed and claimed != server and not args.force:
        raise ProviderError(E_TASK_STATE, "task %s claimed pool server %s, not %s: the pool "
                            "still counts %s as taken by it; give --force if %s really is "
                            "the server" % (task["id"], claimed, server, claimed, server))
    key = None
    if args.host_key is not None:
        key = parse_host_key(args.host_key)
        if key is None:
            raise UsageError("--host-key: not a public key line (TYPE BASE64, as in "
                             "/etc/ssh/ssh_host_ed25519_key.pub)")
    data, note = hand_finish_contact(task, server, settings, key, args.no_check)
    changes = {"status": FINISHED, "phase": "done", "server": server, "data": data,
               "message": "finished by the operator"}
    changes["server_password"] = read_password(args)
    def guard(current):       # the worker moved on meanwhile (another server, its address)
        if first_contact_ground(current) != first_contact_ground(task):
            raise ProviderError(E_TASK_STATE, "task %s changed while its server was checked "
                                "(its worker went on): run task finish again" % task["id"])
    task = pending_task_change(provider, args.task_id, changes, "finish", guard)
    return "task %s finished: server %s, %s%s" % (
        task["id"], task["server"], "root password saved" if changes["server_password"]
        else "no password (key login)", note)


FINISH_PROBE_LIMIT = 5.0        # s `task finish` waits for the SSH banner at most
HOST_KEY_FIELDS = ("host_keys", "host_key_private", "host_key", "host_key_sha256")


def first_contact_ground(task):
    """What a task's host keys rest on: the address they belong to (a cloud
    server's verified IPv4, else the task's server) and the keys themselves."""
    data = task.get("data") or {}
    ground = [data.get("ipv4") if "ipv4" in data else task.get("server"), task.get("server")]
    return ground + [data.get(key) for key in HOST_KEY_FIELDS]


def hand_finish_contact(task, server, settings, key, no_check):
    """(data changes, note) for `task finish --server server`: the task's own
    host keys only when they belong to server (a cloud task's plugin-made key
    to the IPv4 its worker verified; a pool or command pin to the task's
    server); else they go (the private half with the task's next save, as
    any ended task's: Provider.scrub_passwords). Then --host-key pins; else
    the server is checked (SSH banner, ssh-keyscan; pins verified) unless
    no_check. Raises ProviderError (E_UNREACHABLE) when the check fails."""
    port = settings.get("ssh_port", 22)
    own = first_contact_ground(task)[0] == server
    data = task.get("data") or {}
    changes = dict((name, None) for name in ("host_keys", "host_key", "host_key_sha256")
                   if name in data and not own)
    remember = settings.get("known_hosts", True)
    if key is not None:
        changes.update(host_keys=[key], ssh_port=port, host_key=None, host_key_sha256=None)
        if not remember:
            return dict(changes, host_keys=None), "; known_hosts is off: the host key was not kept"
        return changes, "; its host key goes to known_hosts at the next order_status"
    pins = data if own else {}
    if no_check:
        if remember and pins.get("host_keys"):
            return changes, ("; not checked (--no-check); the host key the plugin made for "
                             "it goes to known_hosts at the next order_status")
        return changes, ("; not checked (--no-check): nothing goes to known_hosts, so the "
                         "caller's first login to %s must accept its host key itself (an "
                         "OpenSSH 8+ master's \"add to pool\" fails on an unknown or "
                         "changed key)" % server)
    keys, detail = checked_host_keys(server, port, settings, pins, scan=remember)
    if remember:
        changes.update(host_keys=keys, ssh_port=port)
    return changes, "; %s%s" % (detail, ": its host key goes to known_hosts at the next "
                                "order_status" if remember else "; known_hosts is off")


def checked_host_keys(server, port, settings, pins, scan=True):
    """(keys, what was seen) of server:port, checked now: an SSH banner within
    ssh_timeout (FINISH_PROBE_LIMIT at most), then (scan) its host keys, the
    pinned ones (pins: the task's data) verified. Raises E_UNREACHABLE,
    nothing saved."""
    timeout = min(settings.get("ssh_timeout", DEFAULT_SSH_TIMEOUT), FINISH_PROBE_LIMIT)
    ok, detail = ssh_banner_probe(server, port, timeout)
    where = "%s port %d" % (server, port)
    advice = ("nothing was changed: fix the address (or the server) and run task finish "
              "again, or give --no-check to finish without looking")
    if not ok:
        raise ProviderError(E_UNREACHABLE, "%s does not answer SSH: %s; %s" % (
            where, detail, advice))
    if not scan:
        return None, "checked: %s answers %s" % (where, printable(detail, 60))
    scanned, why = scan_host_keys(server, port, timeout)
    if scanned is None:
        raise ProviderError(E_UNREACHABLE, "%s answers SSH but %s; %s" % (where, why, advice))
    made = pins.get("host_keys")
    if made:        # a cloud task's own key, handed to cloud-init
        if not set(made) & set(scanned):
            raise ProviderError(E_UNREACHABLE, "%s does not show the host key the plugin "
                                "handed to cloud-init (it shows %s): cloud-init may not have "
                                "run yet; %s" % (where, ", ".join(
                                    key_fingerprint(k) for k in scanned), advice))
        return made, "checked: %s answers SSH and shows the host key the plugin made" % where
    keys, problem = trusted_host_keys(scanned, pins)
    if problem:
        raise ProviderError(E_UNREACHABLE, "%s %s; %s" % (where, problem, advice))
    return keys, "checked: %s answers %s" % (where, printable(detail, 60))


def cmd_task_fail(provider, args):
    message = args.message.strip()
    if not message:
        raise UsageError("--message must say why the order failed")
    task = pending_task_change(provider, args.task_id, {
        "status": ERROR, "phase": "failed", "message": message}, "fail")
    lines = ["task %s marked error: %s" % (task["id"], task["message"])]
    try:
        backend = provider.config.backend
    except ProviderError:           # a broken config: the task is failed all the same
        backend = None
    if backend is not None and backend.TYPE == task.get("backend"):
        stopping = backend.cancel(task)
        if stopping:
            lines.append(stopping)
    return "\n".join(lines)


def cmd_task_release(provider, args):
    """Give a failed or abandoned task's server back to its backend's pool."""
    backend = provider.config.backend
    provider.get_task(args.task_id)
    found = {}

    def change(state):
        task = state["tasks"].get(args.task_id)
        if task is None:
            raise ProviderError(E_NO_TASK, "no task %s" % args.task_id)
        if task["status"] == FINISHED and not args.force:
            raise ProviderError(E_TASK_STATE, "task %s is finished: the caller may have added "
                                "%s to its pool already; give --force if it did not"
                                % (task["id"], task.get("server") or "its server"))
        found["what"] = backend.release(task, state)
        found["status"] = task["status"]
        task.setdefault("data", {})["released"] = now()
        if task["status"] != ERROR:
            # Pending or finished: it must never show this server as finished again.
            task.update({"status": ERROR, "phase": "released",
                         "message": "cancelled by the operator; the server went back to the pool"})
        task["updated"] = now()
        return task

    task = provider.store.update(change)
    provider.log.write("release", task["id"], server=found["what"], was=found["status"],
                       status=task["status"], by=operator_name())
    return "task %s released %s back to the pool; the task is %s" % (
        task["id"], found["what"], task["status"])


def cmd_worker(provider, args):
    """Hidden `_worker ID`: a task's worker run by hand (people, debugging); the
    workers the plugin starts are forks (fork_worker) and parse no command line."""
    try:
        provider.config
    except ProviderError as exc:
        provider.apply(args.task_id, {"status": ERROR, "phase": "failed",
                                      "message": "the worker could not start: " + exc.message})
        raise
    return run_task_worker(provider, args.task_id)


def cmd_pool(provider, args):
    """The pool backend's servers: free, taken and set aside, per configuration
    (no passwords)."""
    config = provider.config
    backend = config.backend
    if not hasattr(backend, "inventory"):
        raise UsageError("the %s backend keeps no pool (this needs \"type\": \"pool\")"
                         % backend.TYPE)
    rows, orphans = backend.inventory(config.configurations, provider.store.load())
    if args.json:
        def held(items):
            return [{"server": s, "task_id": t, "status": st} for s, t, st in items]
        return {"configurations": [{"id": c, "free": free, "taken": held(taken), "unavailable": [
            {"server": server, "reason": record.get("reason"), "since": record.get("since"),
             "task_id": record.get("task")} for server, record in down]}
            for c, free, taken, down in rows], "taken_not_in_config": held(orphans)}
    lines, notes, table = [], [], []
    for config_id, free, taken, down in rows:
        for server in free:
            table.append([config_id, server, "free", "-", "-"])
        for server, task_id, status in taken:
            table.append([config_id, server, "taken", task_id, status])
        for server, record in down:
            table.append([config_id, server, "unavailable", record.get("task") or "-", "-"])
            notes.append(backend.aside_text(server, record))
        lines.append("%s: %d free, %d taken%s" % (config_id, len(free), len(taken), (
            ", %d unavailable" % len(down)) if down else ""))
    for server, task_id, status in orphans:
        table.append(["(not in config)", server, "taken", task_id, status])
    if not table:
        return "the pool lists no servers"
    return (format_table(["CONFIG", "SERVER", "STATE", "TASK", "TASK STATUS"], table)
            + "\n\n" + "\n".join(lines + notes))


def cmd_pool_reset(provider, args):
    """Put a pool server set aside as unavailable back among the free ones now."""
    backend = provider.config.backend
    if not hasattr(backend, "inventory"):
        raise UsageError("the %s backend keeps no pool (this needs \"type\": \"pool\")"
                         % backend.TYPE)
    wanted = check_server(args.server, True)[0] or args.server
    found = {}

    def change(state):
        aside = state.get("pool_unavailable") or {}
        names = [name for name in aside if name == args.server or
                 check_server(name, True)[0] == wanted]
        if not names:
            raise UsageError("%s is not set aside (%s)" % (printable(args.server), (
                "set aside: " + ", ".join(sorted(aside))) if aside else "no server is"))
        found["server"], found["record"] = names[0], aside.pop(names[0])
    provider.store.update(change)
    provider.log.write("pool_reset", server=found["server"], by=operator_name())
    return "%s is free again for the next order (it was set aside: %s)" % (
        found["server"], printable(str(found["record"].get("reason")), 200))


class NotOurs(str):
    """`servers`: why a server carrying provider.py's marks may be another
    installation's; such a server is listed, never adopted or deleted."""


def cmd_servers(provider, args):
    """Cloud backends: every server carrying provider.py's marks, and who holds it: a
    task, nobody (an orphan of ours), or maybe another installation ("not ours?")."""
    backend = provider.config.backend
    if not hasattr(backend, "server_inventory"):
        raise UsageError("the %s backend rents no servers (this is for the cloud backends)"
                         % backend.TYPE)
    if args.delete_orphans and not args.yes:
        raise UsageError("--delete-orphans destroys every server no task holds; add --yes")
    rows = backend.server_inventory(provider.store)
    revive_workers(provider, provider.store.head())
    notify_orphans(provider, backend, rows)
    deleted = []
    for index, (server, task_id, holder) in enumerate(rows):
        if holder is None and args.delete_orphans:
            deleted.append(backend.delete_orphan(server, task_id))
            provider.log.write("delete_orphan", task_id, server_id=str(server.get("id")),
                               name=server.get("name"), by=operator_name())
            rows[index] = (server, task_id, False)       # an orphan, deleted now
    if args.json:
        return {"servers": [server_json(backend, s, t, h) for s, t, h in rows],
                "deleted": deleted}
    if not rows:
        return "no %s server carries provider.py's marks" % backend.LABEL
    table = format_table(["SERVER", "NAME", "STATUS", "IPV4", "HELD BY"], [
        [str(s.get("id")), printable(str(s.get("name")), 40), printable(backend.describe(s)[1]),
         printable(str(backend.ipv4(s) or "-")), held_by_text(h)] for s, t, h in rows])
    orphans = sum(1 for _, _, h in rows if h is None)
    foreign = sum(1 for _, _, h in rows if isinstance(h, NotOurs))
    notes = [deleted and "\n".join(deleted),
             orphans and "%d orphan(s): billed, and no task will ever delete them: `%s servers "
             "--delete-orphans --yes` does" % (orphans, provider.paths.name),
             foreign and "%d server(s) NOT OURS?: another installation's, or a lost state's; "
             "never adopted nor deleted by this plugin: delete them by hand only once you know "
             "whose they are" % foreign]
    return "\n\n".join([table] + [note for note in notes if note])


NOTIFIED_ORPHANS_KEPT = 100     # orphans of tasks no longer in the state, notified once


def notify_orphans(provider, backend, rows):
    """The notify hook, once per orphan `servers` finds: marked in its task (or, its task
    gone from the state, in the state's notified_orphans) under the lock first."""
    found = [(server, task_id) for server, task_id, holder in rows if holder is None]
    if not found or not provider.notify_wanted():
        return
    marked = []

    def change(state):
        for server, task_id in found:
            server_id, task = str(server.get("id")), state["tasks"].get(task_id)
            if task is not None:
                new = notify_marked(task, "orphan " + server_id)
            else:
                seen = state.get("notified_orphans")
                seen = seen if isinstance(seen, list) else []
                new = server_id not in seen
                state["notified_orphans"] = (seen + [server_id] * new)[-NOTIFIED_ORPHANS_KEPT:]
            if new:
                marked.append((server, task_id, task))
    try:
        provider.store.update(change)
    except ProviderError:
        return                          # not marked: the next `servers` tries again
    for server, task_id, task in marked:
        about = dict(task or {"id": task_id, "config_id": "", "status": ""},
                     server=str(backend.ipv4(server) or ""),
                     message="an orphan: no task holds %s server %s (%s); it is billed" % (
                         backend.LABEL, server.get("id"), printable(str(server.get("name")))))
        notify(provider, "orphan", about, server.get("id"))


def held_by_text(holder):
    if isinstance(holder, NotOurs):
        return "NOT OURS? " + holder
    return holder or "ORPHAN (no task holds it)%s" % (", deleted now" if holder is False else "")


def server_json(backend, server, task_id, holder):
    foreign = isinstance(holder, NotOurs)
    return {"id": str(server.get("id")), "name": server.get("name"),
            "status": backend.describe(server)[1], "ipv4": backend.ipv4(server),
            "task_id": task_id, "held_by": None if foreign else holder or None,
            "orphan": holder is None or holder is False, "deleted": holder is False,
            "ours": not foreign, "not_ours_because": str(holder) if foreign else None}


def cmd_task_delete_server(provider, args):
    """Destroy the cloud server of a failed or abandoned order (it costs money)."""
    task = provider.get_task(args.task_id)
    server_id = rented_server(task)
    if not server_id:
        raise ProviderError(E_TASK_STATE, "task %s rents no server%s" % (task["id"], (
            " any more (deleted)" if (task.get("data") or {}).get("server_id") else "")))
    if provider.caller_completed(task["id"]) and not args.force:
        raise ProviderError(E_TASK_STATE, "task %s: server %s is in the pool (tasks/%s says "
                            "complete); remove it from the pool first, then give --force" % (
                                task["id"], task.get("server") or server_id, task["id"]))
    if not args.yes:
        raise UsageError("this destroys server %s of task %s and everything on it; "
                         "add --yes" % (server_id, task["id"]))
    backend = provider.config.backend
    if task.get("backend") != backend.TYPE:
        raise ProviderError(E_TASK_STATE, "task %s was ordered from the %s backend, the config "
                            "now says %s" % (task["id"], task.get("backend"), backend.TYPE))
    text = backend.delete_server(task)
    wanted, marked = provider.notify_wanted(), []

    def change(state):
        saved = state["tasks"][task["id"]]
        ended = saved["status"] != ERROR
        saved["data"] = dict(saved.get("data") or {}, server_deleted=now())
        if saved["data"].get("cleanup") == "pending":     # the cleanup worker stops
            saved["data"]["cleanup"] = "done"
            saved["message"] = "%s; the operator deleted server %s" % (
                saved["data"].get("failed_because") or saved.get("message"), server_id)
        if saved["status"] != ERROR:
            saved.update(status=ERROR, phase="failed",
                         message="cancelled: the operator deleted server %s" % server_id)
        saved["updated"] = now()
        events = ([ERROR] if ended else []) + ["server_deleted"]
        marked.extend(e for e in events if wanted and notify_marked(saved, e))
        return saved

    saved = provider.store.update(change)
    provider.log.write("delete_server", task["id"], server_id=server_id,
                       status=saved["status"], by=operator_name())
    for notified in marked:
        notify(provider, notified, saved, server_id)
    return "task %s: %s" % (task["id"], text)


def cmd_state_restore_backup(provider, args):
    lines = provider.store.restore_backup(getattr(args, "force", False))
    provider.log.write("state-restore-backup", by=operator_name(), did="; ".join(lines))
    return "\n".join("state restore-backup: " + line for line in lines)


def cmd_state_repair(provider, args):
    lines = provider.store.repair()
    provider.log.write("state-repair", by=operator_name(), did="; ".join(lines))
    return "\n".join("state repair: " + line for line in lines)


def mode_problem(path, want_mode, home):
    """None when path has a trusted owner (trusted_uids) and is not more open
    than want_mode."""
    info = os.stat(path)
    if info.st_uid not in trusted_uids(home):
        return ("owned by uid %d, who is neither uid %d (running the plugin), root nor the "
                "owner of the home" % (info.st_uid, os.geteuid()))
    extra = info.st_mode & 0o777 & ~want_mode
    if extra:
        return "mode %03o is more open than %03o" % (info.st_mode & 0o777, want_mode)
    return None


def mode_fix(problem, path, want_mode):
    """The command that fixes mode_problem's problem with path."""
    if problem.startswith("owned"):
        return "chown root %s" % path
    return "chmod %03o %s" % (want_mode, path)


def check_private_folders(paths):
    """(ok, text) for var/, log/ and the folders under them (TrustedFiles' rule)."""
    report = []
    for folder, label in ((paths.var, "state folder"), (paths.log_dir, "log folder")):
        if os.path.isdir(folder):
            problem = mode_problem(folder, 0o700, paths.home)
            writable = os.access(folder, os.W_OK)
            report.append((problem is None and writable, "%s %s: %s" % (
                label, folder, "%s; the plugin refuses to use it (fix: %s)" % (
                    problem, mode_fix(problem, folder, 0o700)) if problem else
                "private and writable" if writable else "not writable by uid %d (run the "
                "plugin as root, or chown the folder to this user)" % os.geteuid())))
        else:
            parent = os.path.dirname(folder)
            report.append((os.access(parent, os.W_OK), "%s %s does not exist yet; %s" % (
                label, folder, "it will be created" if os.access(parent, os.W_OK)
                else "and %s is not writable by uid %d (run the plugin as root, or as the user "
                "that owns the home)" % (parent, os.geteuid()))))
    for folder, label in ((paths.archive, "archive folder"),
                          (os.path.join(paths.var, "workers"), "workers folder"),
                          (os.path.join(paths.log_dir, "tasks"), "task log folder")):
        problem = os.path.isdir(folder) and mode_problem(folder, 0o700, paths.home)
        if problem:
            report.append((False, "%s %s: %s; the plugin refuses to use it (fix: chmod 700 "
                                  "%s)" % (label, folder, problem, folder)))
    return report


def check_caller_tasks(paths):
    """(ok, text) for the caller's tasks/: readable, and no stray id-like names."""
    if not os.path.isdir(paths.caller_tasks):
        return [(True, "caller's tasks folder %s does not exist yet (bx-provider makes it)"
                 % paths.caller_tasks)]
    readable = os.access(paths.caller_tasks, os.R_OK | os.X_OK)
    report = [(readable, "caller's tasks folder %s is %s" % (paths.caller_tasks, "readable"
               if readable else "NOT readable by uid %d, so task ids cannot be kept above the "
               "caller's (run it as root, as bx-provider does, or as the user that owns the "
               "provider's files)" % os.geteuid()))]
    stray = stray_caller_ids(paths)
    if stray:
        report.append((False, "caller's tasks folder: %d file name(s) that are not ids this "
                              "plugin hands out, ignored when numbering (remove them if no "
                              "order made them): %s" % (
                                  len(stray), ", ".join(printable(name) for name in stray[:5]))))
    return report


def stray_caller_ids(paths):
    """Names in the caller's tasks/ that look like ids but are not ones the plugin
    can have handed out (leading zeros, beyond MAX_ISSUED_ID)."""
    try:
        names = os.listdir(paths.caller_tasks)
    except OSError:
        return []
    return sorted(name for name in names if name.isdigit() and not issued_id(name))


def check_trusted_places(paths):
    """(ok, text) for the places that decide what root runs: the home, bin/, the
    script, the config's folder. Another user able to change one of them could
    replace the program or the config root obeys."""
    trust = TrustedFiles(paths)
    places = [(paths.home, "home"), (os.path.dirname(paths.script), "program folder"),
              (paths.script, "program"), (os.path.dirname(paths.config), "config folder")]
    report, seen = [], set()
    for path, label in places:
        if path in seen:
            continue
        seen.add(path)
        try:
            info = os.stat(path)
        except OSError:
            continue
        problem = trust.owner_problem(info)
        if problem:
            report.append((False, "%s %s is %s: another user could change what root runs; %s"
                           % (label, path, problem, trust.fix(path, info))))
    if not report:
        report.append((True, "home, program and config folder: only trusted users can "
                             "change them"))
    return report


def check_bytecode_cache(paths):
    """(ok, text) for bin/__pycache__/, by the rule of the boot at the top of this file: its
    files (the core, and the cloud section once a config needed it) are used only when owned
    by the program's owner or root and writable by nobody else."""
    script = os.path.realpath(paths.script)
    folder = os.path.join(os.path.dirname(script), "__pycache__")
    core, cloud = (os.path.join(folder, ".".join((os.path.basename(script), part,
                                                  sys.implementation.cache_tag, "pyc")))
                   for part in ("core", "cloud"))
    try:
        owner = os.stat(script).st_uid
    except OSError:
        return []
    used = []
    for path in (folder, core, cloud):
        try:
            info = os.lstat(path)
        except OSError:
            if path == cloud:
                break
            return [(True, "bytecode cache %s: not written yet (the next run of %s writes "
                           "it)" % (path, paths.script))]
        if info.st_uid not in (owner, 0) or info.st_mode & 0o022:
            return [(False, "bytecode cache %s is %s: the plugin does not use it and "
                            "compiles on every call (several times slower); fix: rm -r %s "
                            "(the next run writes a new one)" % (
                                path, cache_problem(info, owner), folder))]
        used.append(path)
    return [(True, "bytecode cache %s: trusted" % ", ".join(used[1:]))]


def cache_problem(info, owner):
    if stat.S_ISLNK(info.st_mode):
        return "a symbolic link"
    if info.st_uid not in (owner, 0):
        return "owned by uid %d (neither the program's owner nor root)" % info.st_uid
    return "mode %03o (writable by others)" % (info.st_mode & 0o777)


def cmd_check(provider, args):
    paths = provider.paths
    report = []          # (ok, text)

    def add(ok, text):
        report.append((ok, text))

    add(True, "provider %s, provider.py %s, Python %s" % (
        paths.name, __version__, sys.version.split()[0]))
    for ok, text in (check_where(paths) + check_trusted_places(paths)
                     + check_bytecode_cache(paths) + check_python_on_path()):
        add(ok, text)
    config = None
    try:
        config = provider.config
        for ok, text in check_config(paths, config):
            add(ok, text)
    except ProviderError as exc:
        add(False, exc.message if exc.code == E_ACCESS else (
            "%s (%s); until then `help` answers disabled and bx-provider refuses every call of "
            "this provider, order_status of orders in flight included" % (exc.message, {
                E_DISABLED: "write one: ./install.sh --config FILE NAME, or start from examples/",
                E_UNSAFE: "see \"Files the plugin trusts\" in docs/guarantees.md"}.get(
                    exc.code, "fix the config, then run check again"))))
    folders = check_private_folders(paths)
    for ok, text in folders:
        add(ok, text)
    state = None
    try:
        state = StateStore(paths).load()
        add(True, "state %s: %d task(s), next id %d" % (
            paths.state, len(state["tasks"]), state["next_id"]))
    except ProviderError as exc:
        if exc.code != E_UNSAFE or all(ok for ok, _ in folders):   # said once above already
            add(False, exc.message)
    for ok, text in check_caller_tasks(paths):
        add(ok, text)
    if config is not None:
        for ok, text in config.backend.check(config.configurations, state):
            add(ok, text)
        for ok, text in first_contact_check(paths, config):
            add(ok, text)
    failed = sum(1 for ok, _ in report if ok is False)
    warned = sum(1 for ok, _ in report if ok is WARN)
    if getattr(args, "json", False):
        return CheckJSON({"checks": [
            {"level": {True: "ok", WARN: "warn"}.get(ok, "fail"), "text": text}
            for ok, text in report], "problems": failed, "warnings": warned}, failed)
    lines = ["%s %s" % ({True: "ok  ", WARN: "WARN"}.get(ok, "FAIL"), text)
             for ok, text in report]
    lines.append("%d problem%s found: each FAIL line says what to do; run check again "
                 "after fixing" % (failed, "" if failed == 1 else "s") if failed
                 else "everything looks fine%s" % (" (%d warning%s: read the WARN lines)" % (
                     warned, "" if warned == 1 else "s") if warned else ""))
    return CheckReport("\n".join(lines), failed)


def check_where(paths):
    """(ok, text): which home and config this call uses, and why."""
    report = [(os.path.isdir(paths.home), "home %s (%s)%s" % (
        paths.home, paths.home_why, "" if os.path.isdir(paths.home) else
        ": it does not exist (give --home, or run the program installed in the home)"))]
    if os.path.islink(paths.script):
        real = os.path.realpath(paths.script)
        report.append((WARN, "the program %s is a symbolic link to %s: the home is taken from "
                             "the link's path, not from %s (call %s, or give --home)" % (
                                 paths.script, real, real, real)))
    report.append((True, "config %s (%s)" % (paths.config, paths.config_why)))
    script_ok = os.access(paths.script, os.X_OK)
    report.append((script_ok, "script %s is %s" % (paths.script, "executable" if script_ok
                                                   else "NOT executable (fix: chmod 755 %s)"
                                                   % paths.script)))
    return report


def check_python_on_path():
    """(ok, text): the python3 that bin/NAME's header starts first, when it is a
    wrapper script (a pyenv shim) rather than Python itself: every call then
    pays for a shell and the wrapper before Python starts."""
    import shutil
    path = os.environ.get("PATH", os.defpath).split(os.pathsep)
    root = os.environ.get("PYENV_ROOT")
    if root:            # a shim ran us: pyenv put its own folders first, the shell had not
        own = [os.path.join(root, sub) for sub in ("versions", "libexec", "plugins")]
        path = [entry for entry in path if not any(
            entry == top or entry.startswith(top + os.sep) for top in own)]
    found = shutil.which("python3", path=os.pathsep.join(path))
    if not found:
        return [(True, "no python3 on PATH: bin/NAME runs /usr/libexec/platform-python or "
                       "/usr/bin/python3.N")]
    try:
        with open(found, "rb") as handle:
            script = handle.read(2) == b"#!"
    except (IOError, OSError):
        return []
    if not script:
        return [(True, "python3 on PATH: %s" % found)]
    return [(WARN, "python3 on PATH, %s, is a script (a wrapper such as a pyenv shim), not "
                   "Python itself: bin/NAME starts it on every call, which costs the wrapper's own "
                   "start (a pyenv shim: tens of milliseconds, several times the call itself); put "
                   "the folder of a real python3 first in PATH (this call ran %s)" % (
                       found, sys.executable))]


def check_config(paths, config):
    """(ok, text) for a config that loaded: its mode, enabled, its descriptions."""
    report = [(True, "config %s is valid: backend %s, %d configuration(s)" % (
        paths.config, config.backend.TYPE, len(config.configurations)))]
    problem = mode_problem(paths.config, 0o600, paths.home)
    report.append((problem is None, "config permissions: %s" % (
        "0600 or stricter" if problem is None else "%s (fix: %s)" % (
            problem, mode_fix(problem, paths.config, 0o600)))))
    report.append((config.enabled, "provider is %s" % (
        "enabled" if config.enabled else "DISABLED: the web interface hides it and bx-provider "
        "refuses every call, order_status of orders in flight included (set \"enabled\": "
        "true in %s when it is ready)" % paths.config)))
    if not config.configurations:
        report.append((False, "no configurations: the web interface will offer nothing "
                              "(add one to \"configurations\")"))
    for item in config.configurations:
        descr = item["descr"]
        if not all(ch in "0123456789" for ch in item["id"]):
            report.append((WARN, "configuration %s: the id is not a number: bx-provider's plain "
                                 "(non-JSON) output sorts ids as numbers and prints Perl "
                                 "warnings for others (use \"1\", \"2\", ...)" % item["id"]))
        if set(descr) & set("<>&"):
            report.append((WARN, "configuration %s: descr holds <, > or &: the web page "
                                 "inserts it as raw HTML (write it without them)" % item["id"]))
        if ":" in descr:
            report.append((WARN, "configuration %s: descr holds \":\": bx-provider's plain "
                                 "(non-JSON) output separates fields by \":\", so that listing "
                                 "cuts it (write it without)" % item["id"]))
    return report


def local_ssh_version():
    """(major, minor) of the local OpenSSH client (`ssh -V`), or None."""
    import re
    import subprocess
    try:
        proc = subprocess.Popen(["ssh", "-V"], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, close_fds=True, env=child_env())
        out = proc.communicate(timeout=10)[0]
    except (OSError, subprocess.TimeoutExpired):
        return None
    found = re.search(br"OpenSSH_(\d+)\.(\d+)", out)
    return (int(found.group(1)), int(found.group(2))) if found else None


def first_contact_check(paths, config):
    """`check`: who takes care of the first SSH contact with a finished server."""
    settings, backend = config.backend.settings, config.backend
    report = []
    keycopy = os.path.join(os.path.dirname(os.path.dirname(paths.home)), "bin", "ssh_keycopy")
    if not settings.get("known_hosts", True):
        report.append((True, "known_hosts is off: the first login to each server (its host "
                             "key) is up to you"))
    elif backend.TYPE == "manual":
        report.append((True, "first contact: `task finish` checks the server's SSH and reads "
                             "its host keys, unless given --host-key (the operator's key) or "
                             "--no-check (then they are up to you)"))
    elif not settings.get("ssh_probe", True) and not any(
            "host_key" in entry for c in config.configurations for entry in c.get("servers", [])):
        report.append((True, "first contact: the plugin does not contact the servers "
                             "(ssh_probe is off), so their host keys are up to you"))
    tool = backend.HOST_KEY_TOOL
    if settings.get("known_hosts", True):
        import shutil
        found = shutil.which(tool)
        report.append((bool(found), "%s %s" % (tool, "is %s: new servers' host keys are %s" % (
            found, "made by the plugin and pinned" if tool == "ssh-keygen" else
            "read when SSH first answers") if found else "is not in PATH: install "
            "openssh-client, or set \"known_hosts\": false")))
    path = known_hosts_path()
    if settings.get("known_hosts", True) and path:
        problem = known_hosts_problem(path)
        report.append((problem is None, "known_hosts %s is writable by uid %d" % (
            path, os.geteuid()) if problem is None else "known_hosts %s cannot be written "
            "by uid %d: %s (fix that, or set \"known_hosts\": false and see to first contact "
            "yourself)" % (path, os.geteuid(), problem)))
    try:
        with open(keycopy, "rb") as handle:
            script = handle.read(65536)
    except (IOError, OSError):
        return report
    version = local_ssh_version()
    if b"(yes/no)?" in script and b"fingerprint" not in script and version and version >= (8, 0):
        on = settings.get("known_hosts", True)
        report.append((on, "%s answers only the old `(yes/no)?` prompt and ssh is %d.%d: an "
                           "unknown host key fails \"add to pool\"; %s" % (
                               keycopy, version[0], version[1],
                               "the plugin writes known_hosts first" if on else
                               "known_hosts is off, so set StrictHostKeyChecking accept-new "
                               "for root")))
    return report


class CheckReport(str):
    """A human report that also carries how many problems it found (main()
    exits 1 when it found any)."""

    def __new__(cls, text, failed):
        self = str.__new__(cls, text)
        self.failed = failed
        return self


class CheckJSON(dict):
    """`check --json`'s answer, with how many problems it found."""

    def __init__(self, answer, failed):
        dict.__init__(self, answer)
        self.failed = failed


# ---------------------------------------------------------------------------
# Command line: build_parser() and main()
# ---------------------------------------------------------------------------

# Every command, once: (name, who calls it, handler, help, its arguments). The parser
# (build_parser), the dispatch (main), the caller's fast path (parse_args), the
# protocol/people split (errors_as_text) and the messages that name the commands are
# all derived from this table. Who calls it: PROTOCOL, the caller (one JSON answer,
# errors too); PEOPLE (errors as text on stderr, but with --json); HIDDEN, not listed
# anywhere (`_worker ID`: a task's worker run by hand; the plugin's own workers are
# forks, fork_worker). A name of two words is an action of the first ("task show"),
# whose handler is None when it needs one. ACTIONS_HELP: the help of a command's actions.
PROTOCOL, PEOPLE, HIDDEN = "protocol", "people", "hidden"
TASK_ID_ARG = (("task_id",), {"metavar": "ID", "help": "the task's id, as `tasks` lists it"})
JSON_ARG = (("--json",), {"action": "store_true", "help": "JSON instead of a table"})


def arg(*flags, **options):
    return flags, options


COMMANDS = (
    ("help", PROTOCOL, cmd_help, "protocol: supported options and enabled/disabled (JSON)", ()),
    ("configs", PROTOCOL, cmd_configs, "protocol: the configurations a user may order (JSON)",
     ()),
    ("order", PROTOCOL, cmd_order, "protocol: order a configuration; prints the task id (JSON)", (
        arg("config_id", metavar="CONFIG_ID", help="a configuration's id, as `configs` lists it"),
        arg("--dry-run", action="store_true",
            help="for people, cloud backends: check the config, the token, the image/type/zone "
                 "and the caps, print the create request (secrets masked); create nothing, "
                 "save no task"))),
    ("order_status", PROTOCOL, cmd_order_status, "protocol: the state of an order (JSON)", (
        arg("task_id", metavar="TASK_ID", help="the task id `order` answered"),)),
    ("tasks", PEOPLE, cmd_tasks, "list the tasks as a table", (
        JSON_ARG,
        arg("--all", action="store_true",
            help="also the archived tasks (finished or failed long ago)"),
        arg("--status", choices=(IN_PROGRESS, FINISHED, ERROR),
            help="only the tasks in this status"),
        arg("--holding", action="store_true",
            help="cloud backends: only the tasks that still rent a server, or may (a create "
                 "sent, its server not known), archived ones too: task, backend, server id, "
                 "name; starts no worker (install.sh --uninstall/--purge asks this)"))),
    ("task", PEOPLE, None, "look at or act on one task", ()),
    ("task show", PEOPLE, cmd_task_show, "show one task (password masked)", (
        TASK_ID_ARG,
        arg("--show-password", action="store_true", help="print the root password"),
        arg("--json", action="store_true", help="JSON instead of text"))),
    ("task finish", PEOPLE, cmd_task_finish,
     "mark a task finished: the server is ready for the caller's SSH login; the root password "
     "is read from stdin or prompted", (
         TASK_ID_ARG,
         arg("--server", required=True, metavar="ADDR",
             help="the server's IPv4 address or host name (the caller adds IPv4 servers only)"),
         arg("--force", action="store_true",
             help="pool tasks: finish with a --server other than the one claimed"),
         arg("--no-password", action="store_true",
             help="no password: the server already holds the pool's SSH key"),
         arg("--host-key", metavar="LINE",
             help="the server's public SSH host key (its /etc/ssh/ssh_host_ed25519_key.pub): "
                  "written to the caller's known_hosts (First contact); the server is not "
                  "contacted"),
         arg("--no-check", action="store_true",
             help="do not contact the server: no SSH check, no host key read, so nothing goes "
                  "to the caller's known_hosts"))),
    ("task fail", PEOPLE, cmd_task_fail,
     "mark a pending task failed; the command backend's program is stopped, a pool or cloud "
     "server stays until released or deleted", (
         TASK_ID_ARG,
         arg("--message", required=True, help="why it failed (shown to the admin)"))),
    ("task release", PEOPLE, cmd_task_release,
     "pool backend: give a failed or abandoned task's server back to the pool (a pending task "
     "becomes error)", (
         TASK_ID_ARG,
         arg("--force", action="store_true",
             help="release a finished task's server too (only when the caller never added "
                  "it)"))),
    ("task delete-server", PEOPLE, cmd_task_delete_server,
     "cloud backends: destroy the cloud server of a failed or abandoned order (the task "
     "becomes error)", (
         TASK_ID_ARG,
         arg("--yes", action="store_true", help="yes, destroy it"),
         arg("--force", action="store_true",
             help="also a server the caller added to its pool (remove it from the pool "
                  "first); it counts for max_servers until deleted"))),
    ("pool", PEOPLE, cmd_pool,
     "pool backend: each configuration's free, taken and unavailable servers", (JSON_ARG,)),
    ("pool reset", PEOPLE, cmd_pool_reset,
     "pool backend: put a server set aside as unavailable (it showed no SSH) back among the "
     "free ones now", (
         arg("server", metavar="SERVER",
             help="the server as the config names it (`pool` lists the unavailable ones)"),)),
    ("servers", PEOPLE, cmd_servers,
     "cloud backends: every server carrying this provider's owner tag, with the task holding "
     "it; orphans are flagged", (
         JSON_ARG,
         arg("--delete-orphans", action="store_true",
             help="delete the servers no task holds (needs --yes)"),
         arg("--yes", action="store_true", help="yes, delete them"))),
    ("check", PEOPLE, cmd_check, "check the config, files, permissions and backend", (
        arg("--json", action="store_true",
            help="JSON instead of text: each check's level (ok, warn, fail) and text, and how "
                 "many failed"),)),
    ("state", PEOPLE, None,
     "maintain the state file and its archive (nothing is ever deleted)", ()),
    ("state compact", PEOPLE, cmd_state_compact,
     "move every finished or failed task older than retention_days to the archive now "
     "(writes do it bit by bit anyway)", (
         arg("--days", type=float, metavar="DAYS", default=None,
             help="this retention instead of the config's retention_days"),)),
    ("state restore-backup", PEOPLE, cmd_state_restore_backup,
     "put the backup NAME.state.json.bak back in place; the current file is kept aside as "
     "NAME.state.json.damaged-DATE", (
         arg("--force", action="store_true",
             help="also when the state file is valid (its last save is lost)"),)),
    ("state repair", PEOPLE, cmd_state_repair,
     "rebuild the state from the backup and the task records readable in the damaged file, "
     "with next_id above every known id; the damaged file is kept aside as "
     "NAME.state.json.damaged-DATE", ()),
    ("_worker", HIDDEN, cmd_worker, "a task's worker, run by hand", (
        arg("task_id", metavar="ID"),)),
)
ACTIONS_HELP = {
    "task": "what to do with it (`task ACTION --help` says more)",
    "pool": "what to do (none: list the servers; `pool ACTION --help` says more)",
    "state": "what to do (`state ACTION --help` says more)",
}

# action -> handler(provider, args); each returns a dict (printed as JSON) or text.
HANDLERS = dict((name, handler) for name, caller, handler, text, args in COMMANDS if handler)
COMMAND_WORDS = frozenset(name.split()[0] for name in HANDLERS)
PEOPLE_COMMANDS = frozenset(name.split()[0] for name, caller, handler, text, args in COMMANDS
                            if caller == PEOPLE)
# the caller's exact forms: option -> its positional arguments' names (parse_args's fast path)
PROTOCOL_ARGS = dict((name, [flags[0] for flags, options in args if flags[0][0] != "-"])
                     for name, caller, handler, text, args in COMMANDS if caller == PROTOCOL)


def build_parser(prog):
    import argparse

    class Parser(argparse.ArgumentParser):
        def __init__(self, *args, **kwargs):
            kwargs.setdefault("allow_abbrev", False)   # "--hom" is not "--home"
            argparse.ArgumentParser.__init__(self, *args, **kwargs)

        def error(self, message):        # never argparse's exit(2) with text on stderr
            raise UsageError(message)

    common = Parser(add_help=False)
    common.add_argument("--home", metavar="DIR", default=argparse.SUPPRESS,
                        help="the provider's home (default: the folder above bin/; "
                             "env BXPROVIDER_HOME)")
    common.add_argument("--config", metavar="PATH", default=argparse.SUPPRESS,
                        help="the config file (default: HOME/etc/NAME.conf; env BXPROVIDER_CONFIG)")
    common.add_argument("--pretty", action="store_true", default=argparse.SUPPRESS,
                        help="indent JSON output for people")
    common.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS,
                        help="say on stderr what the call did and why (stdout unchanged)")

    parser = Parser(prog=prog, parents=[common],
                    description="BitrixVM provider plugin. The caller runs: help, configs, "
                                "order CONFIG_ID, order_status TASK_ID; each prints one JSON "
                                "object. The other commands are for people.")
    parser.add_argument("--version", action="version", version="provider.py " + __version__)
    groups = {"": parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser,
                                        help="`COMMAND --help` says more")}
    for name, caller, handler, text, arguments in COMMANDS:
        if caller == HIDDEN:
            continue                    # parse_args reads them; --help never shows them
        group, _, word = name.rpartition(" ")
        sub = groups[group].add_parser(word, parents=[common], help=text, description=text)
        sub.set_defaults(action=name)
        for flags, options in arguments:
            sub.add_argument(*flags, **options)
        if name in ACTIONS_HELP:
            groups[name] = sub.add_subparsers(dest=name + "_command", metavar="ACTION",
                                              parser_class=Parser, help=ACTIONS_HELP[name])
    return parser


def one_of(words):
    """"a, b or c"."""
    return " or ".join(filter(None, (", ".join(words[:-1]), words[-1])))


class Args(object):
    """The parsed command line; the protocol fast path fills it without argparse."""

    def __init__(self, **values):
        self.home = self.config = None
        self.pretty = self.verbose = False
        self.__dict__.update(values)


def parse_args(argv, prog):
    """argparse for everything; the caller's exact forms skip it (start-up time), and
    so do the hidden commands (`_worker ID`)."""
    names = PROTOCOL_ARGS.get(argv[0]) if argv else None
    if (names is not None and len(argv) == 1 + len(names)
            and not any(a.startswith("-") for a in argv[1:])):
        return Args(action=argv[0], **dict(zip(names, argv[1:])))
    if argv[:1] == ["_worker"]:
        if len(argv) != 2 or not valid_task_id(argv[1]):
            raise UsageError("_worker needs one task id")
        return Args(action="_worker", task_id=argv[1])
    args = Args(**vars(build_parser(os.path.basename(prog)).parse_args(argv)))
    action = getattr(args, "action", None)
    if action not in HANDLERS:          # no command, or one that needs an action
        if action is None:
            raise UsageError("no option given (one of: %s)" % ", ".join(PROTOCOL_OPTIONS))
        raise UsageError("%s needs an action: %s" % (action, one_of(
            [name.split()[1] for name in HANDLERS if name.startswith(action + " ")])))
    return args


def guess_action(argv):
    """The action named in a bad command line, for the error message."""
    words = [a for a in argv if not a.startswith("-")]
    if not words or words[0] not in COMMAND_WORDS:
        return "usage"
    if len(words) > 1 and " ".join(words[:2]) in HANDLERS:
        return " ".join(words[:2])
    return words[0]


def errors_as_text(action, argv):
    """People's commands report an error as text on stderr (the exit code says
    it failed); the caller's options, `order --dry-run`, unknown words (maybe a
    caller's option we do not know) and anything run with --json answer the
    one JSON object."""
    return action.split()[0] in PEOPLE_COMMANDS and "--json" not in argv


def emit(answer, stream, pretty=False):
    """Write the one answer: a JSON object or text, as UTF-8 bytes whatever the locale."""
    if isinstance(answer, dict):
        answer = json.dumps(answer, ensure_ascii=False, indent=2 if pretty else None)
    else:
        answer = terminal_safe(answer)
    text = answer + "\n"
    try:
        data = text.encode("utf-8")
    except UnicodeEncodeError:
        try:
            # a path Python 3.6 decoded under LANG=C holds its UTF-8 bytes as escapes
            data = text.encode("utf-8", "surrogateescape")
            data.decode("utf-8")
        except UnicodeError:        # not UTF-8 after all: never invalid bytes out
            data = text.encode("utf-8", "replace")
    try:
        stream.flush()
        out = getattr(stream, "buffer", None)
        if out is None:
            stream.write(data.decode("utf-8"))
        else:
            out.write(data)
        stream.flush()
    except (IOError, OSError):
        pass      # the reader went away: nothing left to tell anybody


def terminal_safe(text):
    """Text for people's terminals: every control character but newline and tab
    (escape sequences, C1 controls such as CSI, carriage returns) becomes "?",
    whatever its source (an API's message, a program's output, a host name)."""
    if all(ch.isprintable() or ch in "\n\t" for ch in text):
        return text
    return "".join(ch if ch.isprintable() or ch in "\n\t" else "?" for ch in text)


def clean_arg(arg):
    """An argument as valid text: bytes that are not UTF-8 (which Python hands
    over as lone surrogates) become U+FFFD, so they can never reach the state
    or the log as something json/utf-8 cannot write."""
    if isinstance(arg, bytes):
        return arg.decode("utf-8", "replace")
    if not any(0xD800 <= ord(ch) <= 0xDFFF for ch in arg):
        return arg
    try:
        return arg.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    except UnicodeEncodeError:      # a surrogate that is not an escaped byte
        return arg.encode("utf-8", "replace").decode("utf-8")


def main(argv=None, prog=None):
    # Whatever the layout (bin/NAME's header sets it too): nothing written is group/other-writable.
    os.umask(os.umask(0o22) | 0o22)
    argv = [clean_arg(arg) for arg in (sys.argv[1:] if argv is None else argv)]
    prog = prog or sys.argv[0]
    verbose = "-v" in argv or "--verbose" in argv
    pretty = "--pretty" in argv
    action = guess_action(argv)
    provider = None
    real_stdout = sys.stdout
    if not argv:                       # a person trying the program: the usage, not an error
        emit(build_parser(os.path.basename(prog)).format_help().rstrip(), real_stdout)
        return 2
    try:
        args = parse_args(argv, prog)
        action, pretty, verbose = args.action, args.pretty, args.verbose
        provider = Provider(Paths(prog, args.home, args.config), verbose)
        provider.log.debug("%s: home %s (%s), config %s (%s), state %s" % (
            action, provider.paths.home, provider.paths.home_why, provider.paths.config,
            provider.paths.config_why, provider.paths.state))
        sys.stdout = sys.stderr        # a stray print() must never reach the caller
        answer = HANDLERS[action](provider, args)
        code = getattr(answer, "failed", 0) and 1
    except UsageError as exc:
        answer, code = error_object(action, exc.code, exc.message), 2
    except ProviderError as exc:
        answer, code = error_object(action, exc.code, exc.message), 1
    except SystemExit as exc:           # argparse's --help and --version
        return exc.code or 0
    except KeyboardInterrupt:
        answer, code = error_object(action, E_INTERNAL, "interrupted"), 1
    except Exception as exc:  # a bug: still one JSON object on stdout
        import traceback
        trace = traceback.format_exc()
        if verbose:
            sys.stderr.write(trace)
        try:
            if provider is not None:
                provider.log.write("bug", trace=trace)
        except Exception:
            sys.stderr.write(trace)     # the log failed too: stderr is all that is left
        answer = error_object(action, E_INTERNAL, "internal error (%s); the traceback is in %s"
                              % (type(exc).__name__, provider.paths.log if provider else "-v"))
        code = 1
    finally:
        sys.stdout = real_stdout
    if verbose and isinstance(answer, dict) and "error" in answer:
        sys.stderr.write("debug: %s failed (exit %d): %s\n" % (action, code,
                                                              answer["error_message"]))
    if isinstance(answer, dict) and "error" in answer and errors_as_text(action, argv):
        message = answer["error_message"]       # one line, whatever an argument held
        emit(printable(message, len(message)), sys.stderr)
    else:
        emit(answer, real_stdout, pretty)
    return code


# >>> the cloud section: the file's tail. bin/NAME's boot runs the lines above alone, and these
# only when a config names a cloud backend (backend_class); nothing above names what they
# define but through BACKENDS. (`python3 provider.py` and an import run the whole file.)

# -- The cloud layer: what every backend that rents servers from an API shares --

PASSWORD_ALPHABET = "abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"
PASSWORD_LENGTH = 24
CRYPT_ALPHABET = "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
CLOUD_INIT_DONE = "/var/lib/cloud/instance/boot-finished"
SSHD_DROP_IN = "/etc/ssh/sshd_config.d/00-provider-py.conf"
ANSIBLE_CFG = "/etc/ansible/ansible.cfg"
DEFAULT_POOL_KEY = "/etc/ansible/.ssh/id_rsa"   # when ansible.cfg names no private_key_file
DEFAULT_POLL_INTERVAL = 10  # s between two steps of an order's worker (a call wakes it sooner)
DELETE_CONFIRM_PAUSES = (1, 2, 4)   # s between looks that a deleted server is gone
MAX_CREATES = 3         # creates per task, each after a look-up found nothing
RETRY_ATTEMPTS = 4      # tries of one read, or of a create the API refused with 429
MAX_RETRY_WAIT = 8.0    # longest pause between two tries
SSH_CHECK_TIMEOUT = 4   # seconds for the whole `ssh ... test -f boot-finished` (a status
                        # call must not hang on a server; it is asked again at the next)
ON_FAILURE = ("delete", "keep")
SERVER_ID_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")
STEP_WAIT = 1.0         # seconds order/order_status wait for the worker's step (the API)
CLEANUP_FIRST_WAIT = 1.0    # seconds before the cleanup worker tries a failed delete again
CLEANUP_MAX_WAIT = 300.0    # ... doubling up to this
CLEANUP_WORKER_LIFE = 86400  # then it exits; the next order_status of the task starts another
CLEANUP_LOOKUPS = 10        # look-ups for the server of an unconfirmed create (~8 minutes)
# what a refused create says when the type or zone has nothing left (capacity_error)
CAPACITY_WORDS = ("no capacity", "insufficient capacity", "out of capacity", "not available",
                  "unavailable", "not enough resources", "no available", "sold out",
                  "unsupported location")
MAX_ANSWER_BYTES = 4 * 1024 * 1024   # the longest API answer read (a page of 100 servers: ~0.3 MiB)
MAX_FIND_PAGES = 50     # pages of a server search without a filter (5,000 servers)

# cloud-init's part types, by the first line of a configuration's user_data
USER_DATA_TYPES = (("#cloud-config", "text/cloud-config"), ("#!", "text/x-shellscript"),
                   ("#cloud-boothook", "text/cloud-boothook"), ("#include", "text/x-include-url"))

# sha512-crypt writes the 64 digest bytes in this order, three at a time
SHA512_CRYPT_ORDER = (
    (0, 21, 42), (22, 43, 1), (44, 2, 23), (3, 24, 45), (25, 46, 4), (47, 5, 26),
    (6, 27, 48), (28, 49, 7), (50, 8, 29), (9, 30, 51), (31, 52, 10), (53, 11, 32),
    (12, 33, 54), (34, 55, 13), (56, 14, 35), (15, 36, 57), (37, 58, 16), (59, 17, 38),
    (18, 39, 60), (40, 61, 19), (62, 20, 41))


def sha512_crypt(password, salt, rounds=None):
    """The "$6$" hash of crypt(3) (Drepper's SHA-crypt), for cloud-init's chpasswd.

    The crypt module is deprecated and gone in Python 3.13, hence this.
    rounds=None means the default 5000, and no "rounds=" in the result.
    """
    import hashlib
    key = password.encode("utf-8")
    salt = salt.encode("ascii")[:16]
    count = 5000 if rounds is None else min(max(int(rounds), 1000), 999999999)

    def sha(*parts):
        digest = hashlib.sha512()
        for part in parts:
            digest.update(part)
        return digest.digest()

    def stretch(block, size):           # block repeated to exactly size bytes
        return block * (size // 64) + block[:size % 64]

    alternate = sha(key, salt, key)
    first = hashlib.sha512(key + salt + stretch(alternate, len(key)))
    length = len(key)
    while length:
        first.update(alternate if length & 1 else key)
        length >>= 1
    digest = first.digest()
    p_bytes = stretch(sha(key * len(key)), len(key))
    s_bytes = stretch(sha(salt * (16 + bytearray(digest)[0])), len(salt))
    for index in range(count):
        parts = [p_bytes if index & 1 else digest]
        if index % 3:
            parts.append(s_bytes)
        if index % 7:
            parts.append(p_bytes)
        parts.append(digest if index & 1 else p_bytes)
        digest = sha(*parts)
    data = bytearray(digest)
    out = []
    for a, b, c in SHA512_CRYPT_ORDER:
        word = (data[a] << 16) | (data[b] << 8) | data[c]
        out.extend(CRYPT_ALPHABET[(word >> (6 * i)) & 63] for i in range(4))
    out.extend(CRYPT_ALPHABET[(data[63] >> (6 * i)) & 63] for i in range(2))
    prefix = "$6$" if rounds is None else "$6$rounds=%d$" % count
    return "%s%s$%s" % (prefix, salt.decode("ascii"), "".join(out))


def random_text(alphabet, length):
    import secrets
    return "".join(secrets.choice(alphabet) for _ in range(length))


def generate_password():
    """A root password with nothing a shell, expect or chpasswd minds: letters and
    digits (no look-alikes), at least one of each kind."""
    while True:
        password = random_text(PASSWORD_ALPHABET, PASSWORD_LENGTH)
        if (any(c.islower() for c in password) and any(c.isupper() for c in password)
                and any(c.isdigit() for c in password)):
            return password


def generate_host_key():
    """A new ed25519 SSH host key by ssh-keygen: (private key text, "ssh-ed25519 BASE64")."""
    import shutil
    import subprocess
    import tempfile
    folder = tempfile.mkdtemp(prefix="bxprovider-")           # 0700
    path = os.path.join(folder, "key")
    try:
        proc = subprocess.Popen(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "",
                                 "-f", path], stdin=subprocess.DEVNULL, env=child_env(),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, close_fds=True)
        err = proc.communicate(timeout=30)[1]
        with open(path, "rb") as handle:
            private = handle.read(16384).decode("ascii")
        with open(path + ".pub", "rb") as handle:
            public = parse_host_key(handle.read(16384).decode("ascii"))
    except (OSError, IOError, UnicodeDecodeError, subprocess.TimeoutExpired) as exc:
        raise ProviderError(E_BACKEND, "cannot make the new server's host key with ssh-keygen "
                            "(%s); \"known_hosts\": false does without" % (
                                getattr(exc, "strerror", None) or exc))
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    if proc.returncode != 0 or public is None:
        raise ProviderError(E_BACKEND, "ssh-keygen could not make a host key: %s"
                            % printable(err.decode("utf-8", "replace").strip()))
    return private, public


def user_data_type(text):
    for start, mime_type in USER_DATA_TYPES:
        if text.startswith(start):
            return mime_type
    return None


def mime_multipart(parts):
    """A multi-part MIME archive, the way cloud-init takes several parts: (type, name, text)."""
    boundary = "==provider-py-%s==" % random_text("0123456789abcdef", 24)
    out = ['Content-Type: multipart/mixed; boundary="%s"\nMIME-Version: 1.0\n' % boundary]
    for mime_type, name, text in parts:
        if not text.endswith("\n"):
            text += "\n"
        encoding = "7bit" if all(ord(ch) < 128 for ch in text) else "8bit"
        out.append('--%s\nContent-Type: %s; charset="utf-8"\nMIME-Version: 1.0\n'
                   'Content-Transfer-Encoding: %s\nContent-Disposition: attachment; '
                   'filename="%s"\n\n%s' % (boundary, mime_type, encoding, name, text))
    out.append("--%s--\n" % boundary)
    return "\n".join(out)


def ansible_private_key(config=ANSIBLE_CFG):
    """[defaults] private_key_file of the master's ansible config, or None."""
    import configparser
    parser = configparser.RawConfigParser(strict=False, inline_comment_prefixes=(";", "#"))
    try:
        parser.read(config)
        value = parser.get("defaults", "private_key_file")
    except (configparser.Error, UnicodeDecodeError, OSError):
        return None
    return os.path.expanduser(value.strip()) if value and value.strip() else None


def server_name(name, task_id, tag):
    """A valid host name carrying the provider's name, the task id and the owner tag."""
    safe = "".join(ch if ch in "abcdefghijklmnopqrstuvwxyz0123456789" else "-"
                   for ch in name.lower()).strip("-")[:30].strip("-")
    if not safe[:1].isalpha():          # Yandex Cloud wants a letter first
        safe = ("bx-" + safe).strip("-")
    return "%s-%s-%s" % (safe, task_id, tag)


def retry_wait(headers):
    """Seconds the API asks us to wait (Retry-After, else RateLimit-Reset), or None."""
    value = headers.get("Retry-After") if headers else None
    if value:
        try:
            return max(0.0, float(value))
        except ValueError:
            pass                       # an HTTP date: fall back to our own backoff
    value = headers.get("RateLimit-Reset") if headers else None
    if value:
        try:
            reset = float(value)
        except ValueError:
            return None
        # Hetzner sends the UNIX time of FULL recovery, but gives back one request
        # per second: never sit out the whole hour, just pause a little.
        wait = reset - time.time() if reset > 1e9 else reset
        return max(0.0, min(wait, MAX_RETRY_WAIT))
    return None


class CloudError(ProviderError):
    """A failed API call. transient: 429, 5xx or no answer - worth another try.
    uncertain: a create that may have been carried out all the same. limited: the
    API refused for the request rate (nothing was done: a create may be sent again).
    final: a backend says waiting will not help (a quota): the task fails.
    waits_for_person: a deletion the cloud carries out only once a person confirms it."""

    waits_for_person = False

    def __init__(self, message, status=None, api_code=None, transient=False, uncertain=False,
                 wait=None, limited=False):
        ProviderError.__init__(self, E_BACKEND, message)
        self.status = status
        self.api_code = api_code
        self.transient = transient
        self.uncertain = uncertain
        self.wait = wait
        self.limited = limited
        self.final = False


class CreateLanding(CloudError):
    """A look-up saw the task's create still being carried out (a backend's find raises
    it): neither found nor never made. An order waits (find_or_create), a cleanup counts
    a failed try; no create is sent again and nothing is settled meanwhile."""

    def __init__(self, message):
        CloudError.__init__(self, message, transient=True)


def check_api_failure(label, url, exc):
    """`check`'s line for an API call that failed (a CloudError)."""
    if exc.status is None:
        said = "cannot be reached"
    elif exc.status in (401, 403):
        said = "refuses the credentials"
    else:
        said = "answers with an error"
    return "%s API %s %s: %s" % (label, url, said, api_fix(exc))


def api_fix(exc):
    """A CloudError's message with what to do about it, for `check`: no answer is
    the address or the network, 401/403 the credentials, the rest the API's."""
    if exc.status is None:
        fix = "check the address in the config, DNS, the firewall and https_proxy"
    elif exc.status in (401, 403):
        fix = ("put a valid token or key, with the rights its page in docs/backends/ names, "
               "in the file the config names")
    else:
        fix = "try again later; if it stays, the message says what the API wants"
    return "%s (%s)" % (exc.message, fix)


class Deadline(object):
    """One monotonic deadline for a whole HTTP exchange. When it passes, a timer
    shuts the connection's socket down, whatever is waiting on it (the TLS
    handshake, the headers, the body): a server that sends one byte a second
    cannot stretch a request. connected tells whether a connection was made
    (if not, the request was certainly not sent)."""

    def __init__(self, seconds):
        import threading
        self.seconds = seconds
        self.end = time.monotonic() + seconds
        self.sockets = []
        self.passed = False
        self.lock = threading.Lock()
        self.timer = threading.Timer(seconds, self.expire)
        self.timer.daemon = True
        self.timer.start()

    def left(self):
        return max(0.001, self.end - time.monotonic())

    def over(self):
        """Passed, or about to: a socket's own timeout (deadline.left()) may fire
        just before the timer does."""
        return self.passed or time.monotonic() >= self.end

    def connected(self):
        return bool(self.sockets)

    def watch(self, sock):
        with self.lock:
            self.sockets.append(sock)
            if self.passed:
                self.shut(sock)

    def expire(self):
        with self.lock:
            self.passed = True
            for sock in self.sockets:
                self.shut(sock)

    @staticmethod
    def shut(sock):
        import socket
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def cancel(self):
        """Stop the timer and wait for its thread to end (at once): a worker may
        fork next (fork_worker), and a fork must not copy a thread half-way."""
        self.timer.cancel()
        self.timer.join()


def http_opener(deadline, trust=None):
    """A urllib opener that follows no redirect (a 3xx comes back as it is), takes
    only an https proxy from the environment (the token never travels in clear to
    a proxy) and puts every connection under deadline. trust (tls_context's) says
    which certificate an https API may show: with a pinned fingerprint, a
    connection to any other certificate is closed before a request is sent."""
    import http.client
    import socket
    import urllib.request

    def connect(address, timeout=None, source_address=None):
        sock = socket.create_connection(address, deadline.left(), source_address)
        deadline.watch(sock)
        return sock

    def watched(base):
        class Connection(base):
            def __init__(self, *args, **kwargs):
                base.__init__(self, *args, **kwargs)
                self._create_connection = connect
        return Connection

    plain, secure = watched(http.client.HTTPConnection), watched(http.client.HTTPSConnection)
    pin = (trust or {}).get("fingerprint")
    if pin:
        secure = pinned(secure, pin)

    class PlainHandler(urllib.request.HTTPHandler):
        def do_open(self, http_class, request, **kwargs):
            return urllib.request.HTTPHandler.do_open(self, plain, request, **kwargs)

    class SecureHandler(urllib.request.HTTPSHandler):
        def __init__(self):             # no TLS context until an https request needs one
            urllib.request.AbstractHTTPHandler.__init__(self)

        def https_open(self, request):
            return self.do_open(secure, request, context=tls_context(trust))

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):
            return None

    proxies = dict((key, value) for key, value in urllib.request.getproxies().items()
                   if key == "https")
    return urllib.request.build_opener(urllib.request.ProxyHandler(proxies), PlainHandler,
                                       SecureHandler, NoRedirect)


TLS_CONTEXT = {}     # tls_context()'s, once made: {ca_file or "" or "pinned": context}


def tls_context(trust=None):
    """The TLS context of an API's trust (None or {}: the system's CA store, or
    SSL_CERT_FILE's; {"ca_file": PATH}: that CA file's; {"fingerprint": HEX}: no
    chain or name check, pinned() compares the certificate itself), verified names
    otherwise. Loading a store costs 20-35 ms: once per process, not per connection
    (and never for plain http, which Python 3.13's HTTPSHandler would pay for at
    every opener)."""
    import ssl
    trust = trust or {}
    key = "pinned" if trust.get("fingerprint") else trust.get("ca_file") or ""
    if key not in TLS_CONTEXT:
        if key == "pinned":
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            context.check_hostname = False          # the fingerprint names the server
            context.verify_mode = ssl.CERT_NONE
        else:
            context = ssl.create_default_context(cafile=key or None)
        TLS_CONTEXT[key] = context
    return TLS_CONTEXT[key]


def pinned(base, fingerprint):
    """An HTTPSConnection class (of base) that accepts exactly the certificate whose
    SHA-256 digest is fingerprint (hex): any other closes the connection at once,
    before a byte of the request (and its token) is sent, as ssl.CertificateError."""
    import hashlib
    import ssl

    class Mismatch(ssl.CertificateError):
        def __str__(self):              # (3.7+: an SSLError, which shows its args tuple)
            return self.args[0]

    class Pinned(base):
        def connect(self):
            base.connect(self)
            der = self.sock.getpeercert(binary_form=True) or b""
            seen = hashlib.sha256(der).hexdigest()
            if seen != fingerprint:
                self.sock.close()
                self.sock = None
                raise Mismatch("its SHA-256 fingerprint is %s, not the tls_fingerprint %s" % (
                    colon_hex(seen), colon_hex(fingerprint)))
    return Pinned


def colon_hex(digest):
    """A hex digest as pveproxy and openssl show it: AA:BB:..."""
    return ":".join(digest[i:i + 2] for i in range(0, len(digest), 2)).upper()


def tls_fingerprint(value):
    """The lowercase hex of a SHA-256 fingerprint written AA:BB:... (colons, blanks
    optional, any case), or None when value is not one."""
    import re
    text = re.sub(r"[\s:]", "", value).lower() if isinstance(value, str) else ""
    return text if re.match(r"[0-9a-f]{64}\Z", text) else None


def check_tls_fingerprint(checker, value, path):
    if tls_fingerprint(value) is None:
        checker.add(path, "must be a SHA-256 fingerprint, 32 hex bytes (AA:BB:...:FF, as "
                          "`pvenode cert info` or `openssl x509 -fingerprint -sha256` shows it)")


def is_loopback_host(host):
    """True for a loopback address or name in any spelling check_server knows,
    and for IPv6 loopback (an API URL may name it; a server may not)."""
    if ":" in host:
        import ipaddress
        try:
            address = ipaddress.IPv6Address(host)
        except ValueError:
            return False
        return address.is_loopback or bool(address.ipv4_mapped and
                                           address.ipv4_mapped.is_loopback)
    return check_server(host, True)[0] is not None and check_server(host)[0] is None


def token_forms(token):
    """The token as it may appear in a body: as is, JSON-escaped, URL-encoded."""
    import urllib.parse
    forms = set([token, json.dumps(token)[1:-1], json.dumps(token)[1:-1].replace("/", "\\/"),
                 urllib.parse.quote(token, safe=""), urllib.parse.quote_plus(token)])
    return sorted((form for form in forms if form), key=len, reverse=True)


class CloudAPI(object):
    """JSON over HTTPS with a bearer token, on urllib.

    Every request has one deadline (request_timeout) for all of it: connect,
    TLS, headers, body; an answer is read up to MAX_ANSWER_BYTES. No redirect
    is followed, and the token goes over plain http only to loopback. The token
    is masked in every text the API sends back. Reads (and deletes) are retried
    with backoff on 429, 5xx and no answer; a create is retried only after a 429
    (the API refused it, so nothing was made). Anything else that went wrong
    with a create after it may have been sent is raised as uncertain: the
    caller looks the server up before creating again.
    """

    def __init__(self, backend, auth=None, base=None):
        self.label = backend.LABEL
        self.base = (base or backend.api_url).rstrip("/")
        self.timeout = backend.request_timeout
        self.error_text = backend.error_text
        self.rate_limited = backend.rate_limited
        self.headers = backend.request_headers      # asked at each request: a create
        self.debug = backend.log.debug
        self.auth = auth                # None: no credentials sent (a login request)
        self.token = None
        self.secrets = []               # a login's credentials: masked like the token
        self.reply_headers = {}         # the headers of the last answer
        self.reason = ""                # the status line's reason phrase of the last answer
        # which certificate the API may show (tls_context): a backend may pin one
        self.trust = getattr(backend, "tls_trust", None) or {}

    def call(self, method, path, body=None, query=None, attempts=RETRY_ATTEMPTS, budget=None,
             create=None):
        """The answer's JSON object. create (default: a POST) makes a request that is
        never repeated blindly; a login POST passes create=False."""
        import urllib.parse
        url = self.base + path + ("?" + urllib.parse.urlencode(query) if query else "")
        create = method == "POST" if create is None else create
        deadline = time.monotonic() + (3 * self.timeout if budget is None else budget)
        attempt, renewed = 0, False
        if self.auth is not None and self.token is None:
            self.token = self.auth.token()
        while True:
            attempt += 1
            try:
                return self.once(method, url, path, body, create)
            except CloudError as exc:
                error = exc
            if error.status == 401 and self.auth is not None:
                fresh = None if renewed else self.auth.renew(self.token)
                if fresh is not None:        # a cached token went stale: once more, new one
                    self.debug("%s %s: %s; logging in again" % (method, path, error.message))
                    self.token, renewed, attempt = fresh, True, attempt - 1
                    continue
                if renewed:
                    error.message += "; a token just issued was refused as well"
            if not error.transient or (create and not error.limited) or attempt >= attempts:
                raise error
            wait = error.wait if error.wait is not None else min(0.25 * 2 ** (attempt - 1),
                                                                  MAX_RETRY_WAIT)
            wait = max(wait, 0.1)
            if time.monotonic() + wait > deadline:
                raise error
            self.debug("%s %s: %s; trying again in %.1f s" % (method, path, error.message, wait))
            time.sleep(wait)

    def once(self, method, url, path, body, create):
        import http.client
        what = "%s %s" % (method, path)
        status, reply_headers, raw = self.exchange(method, url, what, body, create)
        self.debug("%s: %s %s%s answered HTTP %d (%d bytes)" % (
            self.label, method, self.base, path, status, len(raw)))
        answer = self.parse(raw)
        if 200 <= status < 300:
            if isinstance(answer, dict):
                self.reply_headers = reply_headers
                return answer
            raise CloudError("%s: %s answered HTTP %d without a JSON object" % (
                self.label, what, status), status=status, uncertain=create)
        if 300 <= status < 400:
            raise CloudError("%s: %s was answered with a redirect (HTTP %d) to %s; the plugin "
                             "never follows one with the token: is api_url right?" % (
                                 self.label, what, status, printable(self.mask(
                                     reply_headers.get("Location") or "nowhere"), 200)),
                             status=status, uncertain=create and status not in (307, 308))
        try:
            code, text = self.error_text(answer)
        except Exception:     # a body in no shape we know: the HTTP status says it all
            code, text = None, None
        code = printable(code, 60) if isinstance(code, str) and code else None
        if not text:          # Proxmox says why in the status line only
            text = self.reason or http.client.responses.get(status, "unexpected answer")
        try:
            limited = self.rate_limited(status, answer)
        except Exception:     # (as error_text) a body in no shape we know
            limited = 0 if status == 429 else None
        wait = None if limited is None else retry_wait(reply_headers)
        if wait is None and limited:
            wait = limited               # the body's own hint (Nova's retryAfter)
        raise CloudError("%s: %s: %s (HTTP %d to %s)" % (
            self.label, code or "http_%d" % status, printable(str(text), 300), status, what),
            status=status, api_code=code, transient=limited is not None or status >= 500,
            uncertain=create and status >= 500, wait=wait, limited=limited is not None)

    def exchange(self, method, url, what, body, create):
        """(status, headers, body bytes) of one request under one deadline."""
        import http.client
        import socket
        import ssl
        import urllib.error
        import urllib.request
        self.refuse_plain_http(url, what)
        headers = {"Accept": "application/json", "User-Agent": "provider.py/" + __version__}
        headers.update(self.headers())          # may negotiate its version (OpenStack)
        if self.token is not None:
            headers.update(self.auth.headers(self.token))
        data = None
        if body is not None:
            data = json.dumps(body).encode("utf-8")
            headers["Content-Type"] = "application/json"
        request = urllib.request.Request(url, data=data, headers=headers, method=method)
        deadline = Deadline(self.timeout)
        try:
            try:
                response = http_opener(deadline, self.trust).open(request,
                                                                  timeout=deadline.left())
            except urllib.error.HTTPError as exc:
                response = exc
            try:
                raw = self.read(response, what, create)
            finally:
                response.close()
            self.reason = self.mask(printable(str(getattr(response, "reason", "") or ""), 300))
            if deadline.passed:          # cut short: whatever came is not the whole answer
                raise socket.timeout("the deadline passed")
            return response.getcode(), response.headers, raw
        except ssl.CertificateError as exc:    # 3.6: a ValueError, not wrapped in URLError
            raise self.untrusted(what, exc)
        except (urllib.error.URLError, socket.timeout, http.client.HTTPException,
                OSError) as exc:
            raise self.no_answer(what, exc, deadline, create)
        finally:
            deadline.cancel()

    def read(self, response, what, create):
        chunks, size = [], 0
        while True:
            chunk = response.read(65536)
            if not chunk:
                return self.mask_bytes(b"".join(chunks))
            chunks.append(chunk)
            size += len(chunk)
            if size > MAX_ANSWER_BYTES:
                raise CloudError("%s: the answer to %s is longer than %d MiB: not read" % (
                    self.label, what, MAX_ANSWER_BYTES // 1048576), uncertain=create)

    def parse(self, raw):
        """The body's JSON, or None (not JSON, not UTF-8, nested too deep)."""
        try:
            return json.loads(raw.decode("utf-8")) if raw.strip() else {}
        except (ValueError, UnicodeDecodeError, RecursionError):
            return None

    def no_answer(self, what, exc, deadline, create):
        """The CloudError for a request that got no (whole) answer."""
        import socket
        import ssl
        import urllib.parse
        reason = getattr(exc, "reason", exc)
        if (isinstance(reason, ssl.CertificateError) or
                getattr(reason, "reason", None) == "CERTIFICATE_VERIFY_FAILED"):  # 3.6
            return self.untrusted(what, reason)
        host = urllib.parse.urlsplit(self.base).hostname
        if deadline.over():
            reason = "no complete answer within request_timeout %s s" % deadline.seconds
        elif isinstance(reason, socket.gaierror):
            reason = "the name %s does not resolve (DNS: %s)" % (host, reason.strerror or reason)
        if not deadline.connected():           # nothing reached the API: certainly not made
            return CloudError("%s: %s was not sent: no connection to %s (%s)" % (
                self.label, what, self.base, self.mask(str(reason))), transient=True)
        return CloudError("%s: no answer to %s from %s (%s)" % (
            self.label, what, self.base, self.mask(str(reason) or type(reason).__name__)),
            transient=True, uncertain=create)

    def refuse_plain_http(self, url, what):
        import urllib.parse
        parts = urllib.parse.urlsplit(url)
        if parts.scheme == "https" or (parts.scheme == "http" and (
                is_loopback_host(parts.hostname or "") or (   # no secret goes to it:
                    isinstance(self.auth, MetadataFlavor) and parts.hostname == METADATA_HOST))):
            return
        raise CloudError("%s: %s was not sent: %s is not https:// (the token goes over plain "
                         "http only to this host)" % (self.label, what, printable(
                             "%s://%s" % (parts.scheme, parts.netloc), 100)))

    def secret_forms(self):
        """Every spelling of the token and the login's credentials, longest first."""
        secrets = [secret for secret in [self.token] + self.secrets if secret]
        return sorted(set(form for secret in secrets for form in token_forms(secret)),
                      key=len, reverse=True)

    def mask(self, text):
        """text with the token and credentials (in any spelling a body may use)
        replaced by ********."""
        for form in self.secret_forms():
            text = text.replace(form, "********")
        return text

    def mask_bytes(self, raw):
        for form in self.secret_forms() if raw else ():
            raw = raw.replace(form.encode("utf-8"), b"********")
        return raw

    def untrusted(self, what, reason):
        """The API's certificate failed the check (wrong name, unknown issuer): the
        handshake stopped before the request was sent, and trying again will not help."""
        return CloudError("%s: %s was not sent: the TLS certificate of %s failed the check "
                          "(%s); is api_url right?" % (self.label, what, self.base,
                                                      printable(str(reason), 300)))


def url_parts(value):
    """urlsplit(value), or None for a URL it cannot read ("https://[x", a port
    out of range): urllib raises ValueError on those."""
    import urllib.parse
    try:
        parts = urllib.parse.urlsplit(value)
        parts.port                      # raises for a port out of range
        return parts
    except ValueError:
        return None


def check_api_url(checker, value, path):
    parts = url_parts(value)
    if parts and parts.scheme == "https" and parts.hostname:
        return
    if parts and parts.scheme == "http" and is_loopback_host(parts.hostname or ""):
        return
    checker.add(path, "must be an https:// URL (plain http only to 127.0.0.1 or localhost: "
                      "the token travels in every request)")


def answer_url(url, origin, what):
    """url when a URL that came in an API's answer (a Keystone catalog's endpoint, a
    link to follow) may get the credentials, else ProviderError N110. An admin's
    setting may be plain http to loopback (check_api_url); an answer may not send the
    token there, where any local user can listen: https only, and plain http only to
    origin's own host when origin (the URL the answer came from) is plain http on
    loopback itself (a test's fake cloud)."""
    parts, base = url_parts(url) if isinstance(url, str) else None, url_parts(origin or "")
    if parts and parts.hostname and parts.scheme == "https":
        return url
    plain_loopback = base and base.scheme == "http" and is_loopback_host(base.hostname or "")
    if parts and parts.scheme == "http" and plain_loopback and parts.hostname == base.hostname:
        return url
    raise ProviderError(E_UNSAFE, "%s %s is refused: a URL from an API's answer must be "
                        "https (plain http only to the loopback host of %s, when that is "
                        "plain http itself): the token would travel in clear" % (
                            what, printable(str(url), 200), printable(str(origin), 200)))


def check_login(checker, value, path):
    if value not in ("password", "key"):
        checker.add(path, "must be \"password\" (the plugin sets a root password) or \"key\" "
                          "(the pool key is installed, no password)")


def check_on_failure(checker, value, path):
    if value not in ON_FAILURE:
        checker.add(path, "must be \"delete\" (a failed order's server is deleted) or "
                          "\"keep\" (it stays for debugging until `task delete-server`)")


def alternatives(kind, check=None):
    """A configuration parameter that may list alternatives, tried in order
    (CloudBackend.FALLBACKS): one value of kind, or a non-empty list of them."""
    def check_items(checker, value, path):
        items = value if isinstance(value, list) else [value]
        if not items:
            checker.add(path, "must list at least one alternative")
        for index, item in enumerate(items):
            where = "%s[%d]" % (path, index) if isinstance(value, list) else path
            if checker.is_a(item, kind, where) and check is not None:
                check(checker, item, where)
    return kind + " or array", check_items


def check_address(checker, value, path):
    """`address`: which IPv4 the caller gets (public, or the one in the private network)."""
    if value not in ("public", "private"):
        checker.add(path, "must be \"public\" (the default) or \"private\" (the server's "
                    "address in the configured private network)")


def host_ipv4s():
    """This host's own IPv4 addresses (each interface's, SIOCGIFADDR; Linux)."""
    import fcntl
    import socket
    import struct
    found = set()
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        for _, name in socket.if_nameindex():
            try:
                answer = fcntl.ioctl(sock.fileno(), 0x8915, struct.pack(   # SIOCGIFADDR
                    "256s", name.encode("utf-8")[:15]))
            except (IOError, OSError):
                continue            # an interface without an IPv4 address
            found.add(socket.inet_ntoa(answer[20:24]))
    finally:
        sock.close()
    return found


def in_network(addresses, cidr):
    """True when one of the addresses lies in cidr ("10.0.0.0/16"); None: not a network."""
    import ipaddress
    try:
        network = ipaddress.ip_network(str(cidr), strict=False)
    except ValueError:
        return None
    return any(ipaddress.ip_address(a) in network for a in addresses)


def master_in_network(network, cidrs):
    """`check` with address "private": the line that says whether this master has an address
    in one of the private network's IPv4 ranges (the caller reaches the servers from here)."""
    mine = host_ipv4s()
    if any(in_network(mine, cidr) for cidr in cidrs):
        return True, "address private: this master is in network %s (%s)" % (
            network, printable(", ".join(cidrs)))
    return WARN, ("address private: this master has no address in network %s (%s; its own: "
                  "%s): the caller could not reach the servers; attach it to the network, or "
                  "use address \"public\"" % (network, printable(", ".join(cidrs) or
                                                                 "no IPv4 range"),
                                               ", ".join(sorted(mine)) or "none"))


def check_refs(checker, value, path):
    """Cloud resources by id or name (Hetzner networks, firewalls): a non-empty list."""
    if not value:
        checker.add(path, "must name at least one (an id or a name)")
    for index, item in enumerate(value):
        check_ref(checker, item, "%s[%d]" % (path, index))


def check_ref(checker, value, path):
    """One cloud resource by id (a number, or its digits) or name."""
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        checker.add(path, "must be an id or a name, not %s" % type_name(value))
    elif isinstance(value, int) and value <= 0 or isinstance(value, str) and not value.strip():
        checker.add(path, "must be an id (a positive number) or a name")


def safe_server_id(value):
    """A server id from an API as text fit for a URL path and a terminal, or None
    (ids of every API we speak are numbers, UUIDs or short [a-z0-9] names)."""
    text = str(value) if isinstance(value, (str, int)) and not isinstance(value, bool) else ""
    ok = 0 < len(text) <= 64 and text[0] not in ".-" and all(ch in SERVER_ID_CHARS for ch in text)
    return text if ok else None


def paged_listing(label, page):
    """Every item of a listing that pages, each once: page(cursor) answers (items,
    the next cursor or None), the first call with None. Items without a usable id
    (safe_server_id) are nobody's and left out. It stops at the last page and at a
    page that adds nothing new (an API that ignores its cursor), and after
    MAX_FIND_PAGES pages it is an error (N108): never a listing without end."""
    seen, cursor = set(), None
    for _ in range(MAX_FIND_PAGES):
        items, cursor = page(cursor)
        new = 0
        for item in items if isinstance(items, list) else []:
            key = safe_server_id(item.get("id")) if isinstance(item, dict) else None
            if key is not None and key not in seen:
                seen.add(key)
                new += 1
                yield item
        if not new or cursor is None:
            return
    raise CloudError("%s: the server list goes on beyond %d pages; the listing stops "
                     "there" % (label, MAX_FIND_PAGES))


def mask_password_hashes(text):
    """Cloud-init text with every crypt(3) hash replaced, for people to read."""
    import re
    return re.sub(r"\$[1256][ay]?\$[^\s\"']+", "<sha512-crypt hash of the root password>", text)


def capacity_words(text):
    """True when an API's refusal says the type or zone has nothing left."""
    text = text.lower()
    return any(words in text for words in CAPACITY_WORDS)


def check_user_data(checker, value, path):
    if value.strip() and user_data_type(value) is None:
        checker.add(path, "must start with one of: %s (a script or a cloud-config)"
                    % ", ".join(start for start, _ in USER_DATA_TYPES))


# -- how a cloud backend authenticates: a static token, or one it logs in for --

def read_secret(backend, name, what):
    """(text, where) of the secret a backend setting names: NAME_file (a private
    file: 0600, a trusted owner) or NAME_env (an environment variable). Never printed."""
    path = backend.settings.get(name + "_file")
    if path:
        path = home_path(backend.paths, path)
        raw = TrustedFiles(backend.paths).read_private(path, "the %s_file" % name, 65536, (
            E_CONFIG, "the %s_file %s does not exist: put the %s in it, then chmod 600 %s"
            % (name, path, what, path)))
        text = raw.decode("utf-8", "replace")
        problem = mode_problem(path, 0o600, backend.paths.home)
        if problem:
            raise ProviderError(E_UNSAFE, "the %s_file %s: %s; the %s must be private "
                                "(chmod 600 %s)" % (name, path, problem, what, path))
        return text, "the %s_file %s" % (name, path)
    variable = backend.settings.get(name + "_env", "")
    return os.environ.get(variable, ""), "the environment variable %s (%s_env)" % (variable, name)


def one_line_secret(text, where, what):
    """text without its surrounding blanks; refused unless one line of printable ASCII."""
    text = text.strip()
    if not text or any(ord(ch) <= 32 or ord(ch) >= 127 for ch in text):
        raise ProviderError(E_CONFIG, "%s holds no %s (one line, printable ASCII)"
                            % (where, what))
    return text


def check_secret_source(check, settings, path, name, what, needed=True):
    """At most one of NAME_file and NAME_env; exactly one when needed."""
    given = (name + "_file" in settings) + (name + "_env" in settings)
    if given > 1 or (needed and not given):
        check.add(path, "needs %s of '%s_file' (a 0600 file holding the %s) or '%s_env' "
                        "(the name of an environment variable)" % (
                            "exactly one" if needed else "at most one", name, what, name))


def parse_utc(text):
    """UNIX time of an RFC 3339 time ("2026-11-30T09:00:00.000000Z", an offset, or
    none: UTC), or None when text is not one."""
    import calendar
    import re
    found = re.match(r"(\d{4})-(\d\d)-(\d\d)[Tt ](\d\d):(\d\d):(\d\d)(\.\d+)?"
                     r"([Zz]|([+-])(\d\d):?(\d\d))?\Z", text if isinstance(text, str) else "")
    if not found:
        return None
    try:
        stamp = calendar.timegm(tuple(int(found.group(i)) for i in range(1, 7)) + (0, 0, 0))
    except (ValueError, OverflowError):
        return None
    if found.group(9):
        offset = int(found.group(10)) * 3600 + int(found.group(11)) * 60
        stamp -= offset if found.group(9) == "+" else -offset
    return stamp


class StaticToken(object):
    """How a cloud backend authenticates; this one: the API token the user gives
    (token_file or token_env), sent as a bearer token (hetzner, timeweb).

    The interface (CloudBackend and CloudAPI use nothing else):
        SETTINGS          the backend settings it reads, {key: (kind, check)}
        validate_settings(settings, path, check)   (classmethod) checks across them
        ready()           no network: raise ProviderError when the credentials cannot
                          be read (place() calls it under the lock, before a task exists)
        token()           the token to send now (may log in: network)
        renew(stale)      the API answered 401 to `stale`: a new token to try once, or
                          None when there is nothing better (the 401 then stands)
        headers(token)    the request headers that carry it
        source()          where the credentials come from, for `check`; never the secret
    A backend names its class in CloudBackend.AUTH; it is built with the backend.
    """

    SETTINGS = {"token_file": ("string", Checker.nonempty),
                "token_env": ("string", Checker.nonempty)}

    def __init__(self, backend):
        self.backend = backend

    @classmethod
    def validate_settings(cls, settings, path, check):
        check_secret_source(check, settings, path, "token", "API token")

    def ready(self):
        self.token()

    def token(self):
        return one_line_secret(*read_secret(self.backend, "token", "API token"),
                               what="API token")

    def forget(self):
        """A worker's next step: nothing to read again for a token from the config."""

    def renew(self, stale):
        return None

    def headers(self, token):
        return {"Authorization": "Bearer " + token}

    def source(self):
        settings = self.backend.settings
        return "API token from %s" % (settings.get("token_file")
                                      or "$" + settings.get("token_env", ""))


class CachedToken(StaticToken):
    """A token the backend logs in for (Keystone, a Yandex IAM token), kept in the
    state until shortly before it expires.

    A subclass gives SETTINGS, validate_settings, ready, headers, source (see
    StaticToken) and
        identity()   text naming who logs in where (URL, account, project): the
                     cache key is its hash, so a changed config never reuses a token
        login()      one login over the network -> (token, expires as UNIX time, extra);
                     extra is a small JSON object kept with the token (Keystone: its
                     endpoints); raises CloudError or ProviderError
    and gets token(), renew(stale) and extra().

    The cache is state["tokens"][key] = {"token", "expires", "extra"}: the state
    file and its backup are 0600 like the root passwords they hold, no command
    prints the state's head, the log never sees a token, and every save drops the
    expired entries. A token is renewed RENEW_BEFORE seconds before it expires.
    A cached token the API refuses (401: revoked, a clock off) is replaced by one
    new login per API call (CloudAPI.call); a token just issued that is refused
    is an error at once. Without a store (a backend built outside a Provider)
    nothing is cached.
    """

    RENEW_BEFORE = 300
    STATE_KEY = "tokens"

    def __init__(self, backend):
        StaticToken.__init__(self, backend)
        self.entry = None               # {"token", "expires", "extra"} this process uses
        self.from_cache = False

    def key(self):
        import hashlib
        seed = "%s\0%s" % (self.backend.TYPE, self.identity())
        return hashlib.sha256(seed.encode("utf-8")).hexdigest()[:16]

    def fresh(self, entry):
        return (isinstance(entry, dict) and isinstance(entry.get("token"), str)
            and entry["token"] and isinstance(entry.get("expires"), (int, float))
            and entry["expires"] - time.time() > self.RENEW_BEFORE)

    def current(self):
        """The entry in use: this process's, else the state's, else a new login."""
        if not self.fresh(self.entry):
            store = self.backend.store
            cached = (store.head().get(self.STATE_KEY) or {}) if store is not None else {}
            entry = cached.get(self.key()) if isinstance(cached, dict) else None
            if self.fresh(entry):
                self.entry, self.from_cache = entry, True
            else:
                self.log_in()
        return self.entry

    def token(self):
        return self.current()["token"]

    def extra(self):
        extra = self.current().get("extra")
        return extra if isinstance(extra, dict) else {}

    def forget(self):
        """The next token() reads the cache again (a worker's next step)."""
        self.entry = None

    def renew(self, stale):
        if self.entry is not None and self.entry["token"] != stale:
            return self.entry["token"]          # another API object renewed it already
        if not self.from_cache:
            return None                         # just issued: a new one will not do better
        self.log_in()
        return self.entry["token"]

    def log_in(self):
        token, expires, extra = self.login()
        self.entry, self.from_cache = {"token": token, "expires": int(expires),
                                       "extra": extra or {}}, False
        self.save(self.entry)

    def save(self, entry):
        """Keep the entry for the next calls; a busy state only costs a login later."""
        store = self.backend.store
        if store is None:
            return
        key, stamp = self.key(), time.time()

        def change(state):
            held = state.get(self.STATE_KEY)
            held = dict((name, value) for name, value in held.items()
                        if isinstance(value, dict) and isinstance(value.get("expires"), int)
                        and value["expires"] > stamp) if isinstance(held, dict) else {}
            held[key] = entry
            state[self.STATE_KEY] = held
        try:
            store.update(change)
        except ProviderError as exc:
            self.backend.log.debug("the %s token was not kept: %s" % (self.backend.LABEL,
                                                                      exc.message))


class CloudBackend(Backend):
    """A backend that rents servers from a cloud API: a subclass is its API's shapes.

    It gives TYPE, LABEL (for messages), DEFAULT_API_URL, CHECK_PATH (a cheap GET),
    MAX_USER_DATA, LATE_CREATE (s a create whose answer was lost may take to show: the
    cloud's worst case), GONE (its words for a server being deleted), PARAMETERS and
    REQUIRED of its configurations, FALLBACKS (parameters that may list alternatives,
    outermost first: ("server_type", "location") tries every location of the first type
    before the second), and the hooks (a default suits a simple REST API):
        create_body(task, configuration, user_data)  the create's body (one value of each
                                 FALLBACKS parameter: the one tried now)
        find(api, task, attempts)  the servers that may be the task's (a list: lookup()
                                 keeps those owns() accepts, and one of them)
        owns(server, task)       True when the server carries the task's name and marks
        describe(server)         ("booting" | "running" | "failed", the API's word)
        ipv4(server)             its public IPv4 address, or None
        error_text(answer)       (code, message) of an error body; never raises
        AUTH                     StaticToken, or a CachedToken (Keystone, Yandex IAM)
        rate_limited(status, answer), request_headers(), public_address(api, task,
        server) (a floating IP), send_create(api, task, configuration, body) (a create
        that is more than one POST), created(answer), fetch(api, server_id),
        await_create(api, task, configuration) (an operation still running),
        capacity_error(exc) (a refusal that tries the next alternative: never an
        uncertain create), delete_server(task), being_deleted(server),
        deletion_answered(server_id, answer) (a DELETE that waits for a person),
        owned_servers(api) (every server carrying provider.py's marks), task_of(server),
        tag_of(server), resolve(api, configuration) (`order --dry-run`, `check`),
        check_call(), check_api(configurations).
    An answer's field is read with field() (its JSON kind checked) and a hook's surprise
    of shape (AttributeError, ...) becomes one clear CloudError (N108) through shaped().

    The methods below follow a task's life: prepare (place, under the state lock), launch
    and poll (WorkerCalls: the protocol calls, no network), the worker's steps (step:
    create and adopt, advance, follow, reach, set up with CloudInit, finish), fail, and
    the cleanup (ServerCleanup); then people's commands (CloudInventory). The task record
    and its data keys are in one table near the top (The task record). self.store is the
    provider's StateStore, given when the backend is built: the writes a cloud backend
    makes itself (claim_create, the cleanup) keep the config's lock_wait, retention_days and
    password scrub like every other.
    """

    LABEL = None
    DEFAULT_API_URL = None
    CHECK_PATH = None
    HOST_KEY_TOOL = "ssh-keygen"     # the plugin makes the key and hands it to cloud-init
    MAX_USER_DATA = None
    # True for a cloud whose stock images refuse root's password over SSH (Ubuntu's
    # "prohibit-password"): user_data then lets it in with an sshd drop-in
    ROOT_PASSWORD_LOGIN = False
    SERVERS = "/servers"
    REQUIRED = ()
    AUTH = StaticToken
    LATE_CREATE = 300               # s a create whose answer was lost may take to show
    GONE = ()                       # the API's words for a server being deleted
    COMMON_SETTINGS = {
        "api_url": ("string", check_api_url),
        "pool_key": ("string", Checker.nonempty),
        "ssh_port": ("integer", Checker.port),
        "ready_grace": ("number", Checker.non_negative),
        "timeout": ("number", Checker.positive),
        "request_timeout": ("number", Checker.positive),
        "ready_timeout": ("number", Checker.positive),
        "poll_interval": ("number", Checker.positive),
        "known_hosts": ("boolean", None),
        "allow_loopback": ("boolean", None),
        "max_servers": ("integer", Checker.non_negative),
        "max_orders_per_hour": ("integer", Checker.non_negative),
        "hide_when_full": ("boolean", None),
        "on_failure": ("string", check_on_failure),
    }
    SETTINGS = dict(COMMON_SETTINGS, **StaticToken.SETTINGS)
    PARAMETERS = {"login": ("string", check_login), "user_data": ("string", check_user_data),
                  "max_servers": ("integer", Checker.non_negative)}
    FALLBACKS = ()

    def __init__(self, settings, paths, log, provider=None):
        Backend.__init__(self, settings, paths, log, provider)
        self.api_url = settings.get("api_url", self.DEFAULT_API_URL)
        self.ssh_port = settings.get("ssh_port", 22)
        self.ready_grace = settings.get("ready_grace", 60)
        self.ready_timeout = settings.get("ready_timeout", DEFAULT_READY_TIMEOUT)
        self.timeout = settings.get("timeout", 3600)
        self.request_timeout = settings.get("request_timeout", 15)
        self.poll_interval = settings.get("poll_interval", DEFAULT_POLL_INTERVAL)
        self.on_failure = settings.get("on_failure", "delete")
        self.auth = self.AUTH(self)
        self.cleanup = ServerCleanup(self)
        self.cloud_init = CloudInit(self)
        SECRET_VARIABLES.update(value for key, value in settings.items()
                                if key.endswith("_env") and isinstance(value, str))

    @classmethod
    def validate_settings(cls, settings, path, check):
        cls.AUTH.validate_settings(settings, path, check)

    @classmethod
    def validate_configuration(cls, configuration, path, check):
        for key in cls.REQUIRED:
            if key not in configuration:
                check.add(path, "missing key %r (a %s backend needs %s)" % (
                    key, cls.TYPE, ", ".join(cls.REQUIRED)))

    # -- the API, the pool key, the user data ------------------------------------------

    def api(self, base=None):
        """A client of the API at base (default: api_url) with the backend's credentials."""
        return CloudAPI(self, self.auth, base)

    def request_headers(self):
        """Headers every request carries besides the token's (an API version)."""
        return {}

    def rate_limited(self, status, answer):
        return 0 if status == 429 else None

    # -- prepare: the caps (CloudCaps), then the new task (under the state lock, no network)

    def configs_need_state(self):
        return bool(self.settings.get("hide_when_full", False))

    def available(self, configuration, state):
        return CloudCaps(self).cap_problem(configuration, state) is None

    def place(self, task, configuration, state):
        self.auth.ready()            # a missing or open token file fails before any task
        problem = CloudCaps(self).cap_problem(configuration, state)
        if problem:
            raise ProviderError(E_EXHAUSTED, "configuration %s cannot be ordered now: %s"
                                % (configuration["id"], problem))
        if "max_orders_per_hour" in self.settings:
            state["cloud_orders"] = CloudCaps(self).recent_orders(state) + [now()]
        self.prepare(task, configuration, state)

    def prepare(self, task, configuration, state):
        """Fill in a new task: the root password, the server's name and marks."""
        password = configuration.get("login", "password") == "password"
        key_path, public = self.cloud_init.pool_key()
        if not password and public is None:
            raise ProviderError(E_CONFIG, "configuration %s logs in with the pool key, but "
                                "%s and %s.pub are not both readable (backend.pool_key)"
                                % (configuration["id"], key_path, key_path))
        tag = owner_tag(state)
        task["server_password"] = generate_password() if password else ""
        task["phase"] = "creating"
        task["message"] = "creating: asking %s for a server" % self.LABEL
        task["data"] = {"owner": tag, "name": server_name(self.paths.name, task["id"], tag),
                        "creates": 0, "key_installed": public is not None}

    # -- launch and poll: the calls start, wake and wait for the task's worker (no network) ---

    def launch(self, task, configuration):
        return WorkerCalls(self).launch(task, configuration)

    def poll(self, task, configuration):
        return WorkerCalls(self).poll(task, configuration)

    @staticmethod
    def base_message(task):
        return (task.get("message") or task.get("phase") or "").split(" (")[0]

    # -- work: the worker's steps (OrderWorker runs them) ------------------------------

    def supervise(self, provider, task_id):
        """The task's worker (a fork of the call, fork_worker): drive a pending order to
        its end (OrderWorker), then
        delete the server of a failed one that rents or may rent one (clean_up)."""
        task = provider.store.find(task_id)
        if task is not None and task["status"] == IN_PROGRESS and (
                task.get("backend") == self.TYPE):
            OrderWorker(self, provider, task_id).run()
        return self.cleanup.clean_up(provider, task_id)

    def step(self, task, configuration):
        """One step of an order (in the worker): task changes or None. The task's
        data holds its age (task_age) as the worker measured it."""
        if task_age(task) > self.timeout:
            return self.fail(task, "timed out after %s (%s)" % (
                format_age(task_age(task)), task.get("message") or task.get("phase")))
        try:
            if not task["data"].get("creates"):
                return self.claimed_create(task, configuration)
            return self.advance(task, configuration)
        except CloudError as exc:
            if exc.final:             # waiting will not change it (a quota)
                return self.fail(task, exc.message)
            return {"message": "%s (%s; trying again in %g s)"
                    % (self.base_message(task), exc.message, self.poll_interval)}

    def late_window(self):
        """Seconds from a create whose answer was lost until it can no longer land: the
        request's own time and the cloud's worst case for it to show (LATE_CREATE)."""
        return self.request_timeout + self.LATE_CREATE

    # -- create and adopt: one create, counted before it is sent, never repeated blindly ---

    def claimed_create(self, task, configuration):
        """Count the create in the task, with the host key handed to the server (the
        ledger: saved before the request goes), then send it. A refusal settles it:
        nothing was made."""
        age = task_age(task)
        task = self.claim_create(task["id"], age, self.pin_host_key(task))
        if task is None:
            return None
        task["data"] = dict(task["data"], **age_marks(age, now()))
        try:
            return self.create(task, configuration)
        except ProviderError as exc:      # refused (or a flavor gone): nothing was made
            task["data"] = dict(task["data"], settled=task["data"]["creates"])
            return self.fail(task, exc.message)

    def claim_create(self, task_id, age, pinned):
        """Under the lock: count one more create before it is sent (the ledger), at the
        task's age `age`, with the data `pinned` (pin_host_key), unless a create still
        unsettled could land (late_window). The task as saved, or None: no create now."""
        def change(state):
            task = state["tasks"].get(task_id)
            if task is None or task["status"] in TERMINAL:
                return None
            data = task["data"]
            if data.get("server_id") or (unsettled_create(task) and
                                         age - data.get("create_age", 0) < self.late_window()):
                return None
            data["creates"] = data.get("creates", 0) + 1
            data.update(pinned, create_age=age, create_at=now())
            return task
        return self.store.update(change)

    def pin_host_key(self, task):
        """Make the new server's ed25519 host key, once per task (known_hosts on):
        user_data hands it to cloud-init, and the caller's known_hosts gets its
        public half; no trust on first use. Returns the data keys to save with the
        create's claim (the private half goes when the task ends: scrub_passwords)."""
        data = task["data"]
        if not self.settings.get("known_hosts", True) or data.get("host_keys"):
            return {}
        private, public = generate_host_key()
        pinned = {"host_key_private": private, "host_keys": [public], "ssh_port": self.ssh_port}
        data.update(pinned)
        return pinned

    def alternatives(self, configuration):
        """The values a create tries, in order: one {parameter: value} per
        combination of the FALLBACKS lists, the first parameter outermost."""
        import itertools
        keys = [key for key in self.FALLBACKS if key in configuration]
        lists = [configuration[key] if isinstance(configuration[key], list)
                 else [configuration[key]] for key in keys]
        return [dict(zip(keys, values)) for values in itertools.product(*lists)] or [{}]

    @staticmethod
    def choice_text(choice):
        return " ".join("%s %s" % item for item in sorted(choice.items())) or "the default"

    def capacity_error(self, exc):
        """Hook: True when a refused create means "nothing left of this type or
        zone here" (see the class docstring). Never for an uncertain create."""
        return (not exc.uncertain and exc.status in (400, 403, 404, 409, 412, 422, 503)
            and capacity_words(exc.message))

    def create(self, task, configuration):
        """One create, never repeated blindly. Task changes; raises CloudError when the
        API refused (bad token, quota, bad input): then nothing was made. A refusal
        for lack of capacity tries the next alternative (FALLBACKS) at once."""
        api = self.api()
        user_data = self.cloud_init.user_data(task, configuration)
        choices = self.alternatives(configuration)
        index = min(task["data"].get("choice", 0), len(choices) - 1)
        skipped = []
        while True:
            choice = choices[index]
            data = dict(task["data"], choice=index)
            if len(choices) > 1:
                data["got"] = choice
            body = self.create_body(task, dict(configuration, **choice), user_data)
            try:
                answer = self.send_create(api, dict(task, data=data),
                                          dict(configuration, **choice), body)
                break
            except CloudError as exc:
                error = exc
            if self.capacity_error(error) and index + 1 < len(choices):
                skipped.append("%s: %s" % (self.choice_text(choice), error.message))
                self.log.write("fallback", task["id"], skipped=self.choice_text(choice),
                               reason=error.message)
                index += 1
                continue
            if skipped:
                error.message += "; also tried: " + "; ".join(skipped)
            if not (error.uncertain or error.status == 409):
                raise error
            self.log.write("create_unconfirmed", task["id"], reason=error.message)
            try:                      # the server may exist: look before anything else
                server = self.lookup(api, dict(task, data=data), 1)
            except CloudError:
                server = None
            if server is None:        # unsettled: every end of the task looks for it
                return {"data": data, "phase": "creating", "message": "creating: %s did not "
                        "confirm the create; looking the server up again (%s)"
                        % (self.LABEL, error.message)}
            return self.adopt(dict(task, data=data), server)
        return self.adopt(dict(task, data=data), self.created(answer), "; ".join(skipped))

    def send_create(self, api, task, configuration, body):
        """Hook: send the create (body: create_body's) and return its answer; it
        may note data keys in task["data"] (saved with the outcome)."""
        return api.call("POST", self.SERVERS, body=body)

    def created(self, answer):
        return answer.get("server") or {}

    def labels(self, task):
        """The labels of the task's server, for a cloud whose servers carry labels."""
        return {"managed-by": "provider.py", "bx-owner": task["data"]["owner"],
                "bx-task": task["id"]}

    def adopt(self, task, server, skipped=""):
        server_id = safe_server_id(server.get("id")) if isinstance(server, dict) else None
        if server_id is None:         # unsettled: looked up by its name and marks
            return {"data": task["data"], "phase": "creating",
                    "message": "creating: %s answered without a usable server id; looking "
                    "the server up again" % self.LABEL}
        data = dict(task["data"], server_id=server_id)
        self.log.write("server", task["id"], server_id=data["server_id"], name=data["name"],
                       got=self.choice_text(data.get("got") or {}))
        return {"data": data, "phase": "booting", "message": "booting: %s server %s (%s%s)%s"
                % (self.LABEL, server_id, data["name"], self.got_text(data),
                   " after no capacity for " + skipped if skipped else "")}

    def got_text(self, data):
        """", server_type cx22 location nbg1" when the configuration had alternatives."""
        return ", " + self.choice_text(data["got"]) if data.get("got") else ""

    def lookup(self, api, task, attempts=RETRY_ATTEMPTS):
        """The server of find()'s list for task, only one that carries the task's marks
        (an API that ignores a filter never hands over a foreign server). Two of them
        (a create that landed late beside its retry: Nova allows a name twice): the one
        the task knows, else the first, is kept and the others are deleted at once."""
        found = self.shaped(self.find, api, task, attempts)
        ours = []
        for server in found if isinstance(found, list) else [found] if found else []:
            if isinstance(server, dict) and self.shaped(self.owns, server, task):
                ours.append(server)
            else:
                self.log.write("foreign_server", task["id"], server_id=printable(str(
                    server.get("id") if isinstance(server, dict) else server), 60))
        if not ours:
            return None
        known = task["data"].get("server_id")
        keep = next((s for s in ours if safe_server_id(s.get("id")) == known), ours[0])
        for server in ours:
            if server is not keep:
                self.delete_duplicate(task, server, keep)
        return keep

    def delete_duplicate(self, task, server, kept):
        """Delete a second server of one task now; the audit and task logs say so."""
        server_id = safe_server_id(server.get("id"))
        text = "task %s: %s shows two servers named %s: kept %s, deleting %s" % (
            task["id"], self.LABEL, task["data"]["name"], printable(str(kept.get("id"))),
            printable(str(server.get("id"))))
        try:
            if server_id is None:
                raise ProviderError(E_BACKEND, "its id is unusable in a URL")
            said = self.delete_server(dict(task, data=dict(task["data"], server_id=server_id,
                                                           cleanup_waits=None)))
        except ProviderError as exc:
            said = "not deleted: %s (`%s servers` shows it)" % (exc.message, self.paths.name)
        self.log.write("duplicate", task["id"], server_id=server_id, kept=str(kept.get("id")),
                       result=said)
        TaskLog(self.task_log(task["id"])).note("%s: %s" % (text, said))

    def owns(self, server, task):
        return isinstance(server, dict) and server.get("name") == task["data"]["name"]

    def field(self, value, key, kind, where):
        """value[key] when it has the JSON kind (Checker.KINDS), None when missing or
        null; an answer in any other shape is a CloudError (N108) naming where."""
        check = Checker()
        if check.is_a(value, "object", where):
            found = value.get(key)
            if found is None or check.is_a(found, kind, "%s.%s" % (where, key)):
                return found
        raise self.odd_shape(check.problems[0])

    def shaped(self, hook, *args):
        """hook(*args), with any surprise of an answer's shape a clear CloudError."""
        try:
            return hook(*args)
        except (AttributeError, TypeError, KeyError, IndexError, ValueError) as exc:
            raise self.odd_shape("%s: %s" % (type(exc).__name__, exc))

    def odd_shape(self, why):
        return CloudError("%s: the API answered in a shape the plugin does not know (%s)"
                          % (self.LABEL, printable(why, 200)))

    # -- advance: no server id yet (find it, or create again), or its create still running ---

    def advance(self, task, configuration):
        """A step after the first create, in phases: the server (found, or made
        again), its create carried out, running, its address, SSH, the setup."""
        api = self.api()
        if not task["data"].get("server_id"):
            return self.find_or_create(api, task, configuration)
        changes = self.await_create(api, task, configuration)
        if changes is not None:
            return changes
        return self.follow_server(api, task)

    def find_or_create(self, api, task, configuration):
        """No server id yet: the server an earlier create made, or one more create (at
        most MAX_CREATES in all): never while an unsettled create could still land
        (late_window after it), so one task never gets two servers."""
        data = task["data"]
        try:
            server = self.lookup(api, task)
        except CreateLanding as exc:
            return {"phase": "creating", "message": "creating: %s" % exc.message}
        if server is not None:
            return self.adopt(task, server)
        left = self.late_window() - (task_age(task) - data.get("create_age", 0))
        if unsettled_create(task) and left > 0:
            return {"phase": "creating", "message": "creating: waiting for %s to show "
                    "server %s (a create whose answer was lost may land for %d s more)" % (
                        self.LABEL, data["name"], left)}
        if data.get("creates", 0) >= MAX_CREATES:
            return self.fail(task, "%s never showed server %s after %d creates" % (
                self.LABEL, data["name"], data.get("creates", 0)))
        return self.claimed_create(task, configuration)

    def await_create(self, api, task, configuration):
        return None

    def fetch(self, api, server_id):
        return api.call("GET", "%s/%s" % (self.SERVERS, server_id)).get("server")

    # -- follow, reach, set up, finish: the server running, its address, SSH, cloud-init ---

    def follow_server(self, api, task):
        """The server's state as the API tells it; once it runs, reach it."""
        data = task["data"]
        try:
            server = self.fetch(api, data["server_id"])
        except CloudError as exc:
            if exc.status != 404:
                raise
            task["data"] = dict(data, server_deleted=now())
            changes = self.fail(task, "%s server %s is gone (deleted outside the plugin?)"
                                % (self.LABEL, data["server_id"]))
            changes["data"] = task["data"]
            return changes
        state, said = self.shaped(self.describe, server or {})
        if not isinstance(said, str):
            raise self.odd_shape("the server's status is %s, not text" % type_name(said))
        where = "%s server %s" % (self.LABEL, data["server_id"])
        if state == "failed":
            return self.fail(task, "%s is %s" % (where, printable(said, 60)))
        if state != "running":
            return {"phase": "booting", "message": "booting: %s is %s" % (
                where, printable(said, 60))}
        return self.reach(api, task, server, where)

    def reach(self, api, task, server, where):
        """A running server: its public address (checked), then SSH, then the setup."""
        address, data = self.shaped(self.public_address, api, task, server)
        if not address:
            data = dict(data, ipv4_wait_age=data.get("ipv4_wait_age", task_age(task)))
            which = self.task_configuration(task).get("address", self.settings.get("address"))
            which = "private" if which == "private" else "public"
            if task_age(task) - data["ipv4_wait_age"] > self.ready_timeout:
                task["data"] = data
                return self.fail(task, "%s runs but has no %s IPv4 address after "
                                 "ready_timeout %g s: the caller adds IPv4 servers only" % (
                                     where, which, self.ready_timeout))
            return {"data": data, "phase": "booting", "message": "booting: %s runs, waiting "
                    "for its %s IPv4 address" % (where, which)}
        address, problem = check_server(address, self.settings.get("allow_loopback", False))
        if problem:
            return self.fail(task, "%s: the API's address is refused: %s" % (where, problem))
        data = dict(data, ipv4=address)
        data.setdefault("ssh_wait_age", task_age(task))
        ok, why = ssh_banner_probe(address, self.ssh_port, min(1.0, self.request_timeout))
        if not ok:
            if task_age(task) - data["ssh_wait_age"] > self.ready_timeout:
                return self.fail(task, "no SSH within ready_timeout %g s: %s: %s" % (
                    self.ready_timeout, address, why))
            return {"data": data, "phase": "ssh",
                    "message": "waiting for SSH on %s: %s" % (address, why)}
        return self.cloud_init.ready(task, address, data)

    def public_address(self, api, task, server):
        """(the running server's public IPv4 or None, the task's data): a hook for a
        backend that must first give the server an address (a floating IP)."""
        return self.ipv4(server), task["data"]

    def finish(self, task, address, data):
        return {"status": FINISHED, "phase": "done", "server": address, "data": data,
                "message": "ready: %s server %s (%s%s), %s" % (
                    self.LABEL, data["server_id"], data["name"], self.got_text(data),
                    "root password set by the plugin" if task.get("server_password")
                    else "log in with the pool key")}

    # -- fail: every end of a task that rents, or may rent, a server starts its cleanup ---

    def fail(self, task, text):
        """The changes that fail a task (with its data). A server it rents, or may rent
        (a create it sent and never saw settled), is marked for deletion with
        on_failure "delete" (the cleanup looks it up: settle() and the worker start it),
        else named."""
        data = task["data"]
        if (self.on_failure == "delete" and may_rent(task)) or unsettled_create(task):
            return {"status": ERROR, "phase": "failed",
                    "data": dict(data, cleanup="pending", failed_because=text),
                    "message": "%s; %s (on_failure: %s)" % (text, self.deleting(task),
                                                            self.on_failure)}
        server_id = rented_server(task)
        if server_id:
            text += ("; %s server %s still exists and is billed: `%s task delete-server %s "
                     "--yes` removes it (on_failure: keep)" % (
                         self.LABEL, server_id, self.paths.name, task["id"]))
        return {"status": ERROR, "phase": "failed", "message": text, "data": data}

    def deleting(self, task):
        if rented_server(task):
            return "deleting %s server %s" % (self.LABEL, rented_server(task))
        return ("looking for the server a create the plugin sent may have made (%s), "
                "to %s it" % (task["data"].get("name"),
                              "delete" if self.on_failure == "delete" else "keep"))

    def keep_late_server(self, task, server_id):
        """A create answered after its task ended (`task fail`, a timeout): the server
        goes into the task, to be deleted (on_failure delete) or named."""
        self.log.write("server", task["id"], server_id=server_id, late=True)
        data_changes = {"server_id": server_id}
        if task["status"] == ERROR and self.on_failure == "delete":
            data_changes.update(cleanup="pending", failed_because=task["message"])
        return self.cleanup.save_data(task, data_changes)

    def settle(self, task):
        """After order_status saved a task: its cleanup, if it needs one (ServerCleanup)."""
        self.cleanup.settle(task)

    def cancel(self, task):
        return self.cleanup.cancel(task)

    def cleanup_wanted(self, task):
        return self.cleanup.cleanup_wanted(task)

    # -- delete: a DELETE counts once the cloud no longer lists the server -------------

    def delete_server(self, task):
        """DELETE the task's server, then make sure the cloud no longer lists it (or
        lists it as being deleted): a 2xx alone proves nothing. A deletion that waits for
        a person (deletion_answered) is only looked at, not sent again."""
        server_id = task["data"]["server_id"]
        api = self.api()
        if not task["data"].get("cleanup_waits"):
            try:
                answer = api.call("DELETE", "%s/%s" % (self.SERVERS, server_id))
            except CloudError as exc:
                if exc.status != 404:
                    raise
                return "%s server %s was already gone" % (self.LABEL, server_id)
            self.deletion_answered(server_id, answer)
        return self.confirm_gone(api, server_id, task["data"].get("cleanup_waits"))

    def being_deleted(self, server):
        """Hook: True when the API lists the server as deleted or being deleted (GONE)."""
        return self.describe(server)[1] in self.GONE

    def deletion_answered(self, server_id, answer):
        """Hook: raise a CloudError (waits_for_person) when the DELETE's answer says the
        cloud deletes nothing until a person confirms."""

    def confirm_gone(self, api, server_id, waits=None):
        """The text saying server_id is deleted, once the API no longer lists it or
        lists it in a GONE state; a CloudError when it still lists it running."""
        for pause in DELETE_CONFIRM_PAUSES + (None,):
            try:
                server = self.fetch(api, server_id)
            except CloudError as exc:
                if exc.status != 404:
                    raise
                return "%s server %s deleted (%s no longer lists it)" % (
                    self.LABEL, server_id, self.LABEL)
            said = self.shaped(self.describe, server or {})[1]
            if self.shaped(self.being_deleted, server or {}):
                return "%s server %s deleted (%s lists it as %s)" % (
                    self.LABEL, server_id, self.LABEL, printable(str(said), 40))
            if pause is None or waits:
                break
            time.sleep(pause)
        error = CloudError(waits or "%s still lists server %s as %s after its DELETE" % (
            self.LABEL, server_id, printable(str(said), 40)))
        error.waits_for_person = bool(waits)
        raise error

    # -- people's commands: `check`, `order --dry-run`, `servers` ----------------------

    def check(self, configurations, state):
        try:
            self.auth.token()
        except CloudError as exc:
            return [(False, api_fix(exc))]
        except ProviderError as exc:
            return [(False, exc.message)]
        report = [(True, "%s %s" % (self.LABEL, self.auth.source()))]
        report.extend(loopback_report(self.TYPE, self.settings))
        report += self.check_api(configurations)
        key_path, public = self.cloud_init.pool_key()
        by_key = [c["id"] for c in configurations if c.get("login") == "key"]
        if public:
            report.append((True, "pool key %s: installed on new servers; readiness asks "
                                 "cloud-init over SSH" % key_path))
        else:
            report.append((not by_key, "pool key %s: no usable key and .pub: readiness is the "
                           "SSH banner plus ready_grace %s s%s" % (
                               key_path, self.ready_grace, "; configurations with login "
                               "\"key\" cannot be ordered: " + ", ".join(by_key)
                               if by_key else "")))
        if state is not None:
            report.append((True, "guardrails: " + CloudInventory(self).guardrails_text(state)))
            report.extend(self.cleanup.cleanup_report(state))
        return report

    def check_api(self, configurations):
        try:
            self.check_call()
            return [(True, "%s API %s accepts the token" % (self.LABEL, self.api_url))]
        except CloudError as exc:
            self.unreachable(exc)
            return [(False, check_api_failure(self.LABEL, self.api_url, exc))]

    # `order --dry-run` never needs the network: dry is set, and a call that reaches no API
    # sets offline (why); every name that needs a look-up then shows as not resolved
    dry = False
    offline = None

    def unreachable(self, exc):
        """True (and offline noted) when, in a dry run, exc is a call that reached no
        API (no connection, no answer); else False."""
        if not (self.dry and isinstance(exc, CloudError) and exc.status is None
                and exc.transient):
            return False
        if self.offline is None:
            text = exc.message
            starts = [at for at in (text.find("no connection to"), text.find("no answer"))
                      if at >= 0]
            self.offline = text[min(starts):] if starts else text
        return True

    def resolved(self, what, look_up, *args):
        """look_up(*args); in a dry run whose cloud cannot be reached, the text
        "<WHAT: not resolved: WHY>" in its place (no look-up is tried once one failed)."""
        if self.offline is None:
            try:
                return look_up(*args)
            except CloudError as exc:
                if not self.unreachable(exc):
                    raise
        return "<%s: not resolved: %s>" % (what, self.offline)

    def task_configuration(self, task):
        """The configuration a task was ordered from, as the config says now ({}: gone)."""
        try:
            return self.provider.config.by_id.get(task["config_id"]) or {}
        except (ProviderError, AttributeError):
            return {}

    def create_url(self):
        """Where the create goes (`order --dry-run` shows it)."""
        return self.api().base + self.SERVERS

    def check_call(self):
        self.api().call("GET", self.CHECK_PATH, attempts=2)

    def resolve(self, api, configuration):
        """Hook: [(ok, text)] about the image, type and zone a create would name."""
        return []

    def owned_servers(self, api):
        """Hook: every server at the provider carrying provider.py's marks (any owner
        tag: `servers` tells ours from others')."""
        raise ProviderError(E_TASK_STATE, "the %s backend cannot list its servers" % self.TYPE)

    def task_of(self, server):
        """Hook: the task id a server with provider.py's marks carries, or None."""
        return None

    def tag_of(self, server):
        """Hook: the owner tag a server with provider.py's marks carries, or None."""
        return None

    def dry_run(self, configuration, state, task_id):
        return CloudInventory(self).dry_run(configuration, state, task_id)

    def server_inventory(self, store):
        return CloudInventory(self).server_inventory(store)

    def delete_orphan(self, server, task_id):
        return CloudInventory(self).delete_orphan(server, task_id)


class CloudCaps(object):
    """The caps of a cloud backend, counted under the state lock: max_servers (the
    backend's and a configuration's: the servers its tasks hold, may_rent) and
    max_orders_per_hour (the order times kept in the state: archived tasks count too)."""

    def __init__(self, backend):
        self.backend = backend

    def held(self, state, config_id=None):
        """Ids of this backend's tasks that hold a server (max_servers counts
        them): pending ones, and any other that rents one or may (may_rent)."""
        return sorted((task["id"] for task in state["tasks"].values()
                       if isinstance(task, dict) and task.get("backend") == self.backend.TYPE
                       and (config_id is None or task.get("config_id") == config_id)
                       and (task.get("status") == IN_PROGRESS or may_rent(task))), key=int)

    def recent_orders(self, state):
        """Times of this backend's orders in the last hour (max_orders_per_hour);
        kept in the state itself: archived tasks must still count."""
        stamps = state.get("cloud_orders")
        hour_ago = now() - 3600
        return ([t for t in stamps if isinstance(t, (int, float)) and t > hour_ago]
            if isinstance(stamps, list) else [])

    def cap_problem(self, configuration, state):
        """Why one more order would go over a cap, or None. Under the state lock."""
        for limit, what, config_id in (
                (self.backend.settings.get("max_servers"), "backend.max_servers", None),
                (configuration.get("max_servers"), "max_servers of configuration %s"
                 % configuration["id"], configuration["id"])):
            holding = self.held(state, config_id) if limit is not None else ()
            if limit is not None and len(holding) >= limit:
                return "%s is %d and %d %s server%s held%s" % (
                    what, limit, len(holding), self.backend.LABEL, "" if len(holding) == 1 else "s",
                    " (task%s %s); a failed or unwanted one is freed by `%s task "
                    "delete-server ID --yes`" % (
                        "" if len(holding) == 1 else "s",
                        ", ".join(holding[:10]) + (", ..." if len(holding) > 10 else ""),
                        self.backend.paths.name) if holding else "")
        per_hour = self.backend.settings.get("max_orders_per_hour")
        recent = self.recent_orders(state)
        if per_hour is not None and len(recent) >= per_hour:
            return "backend.max_orders_per_hour is %d%s" % (per_hour, (
                " and %d orders came in the last hour; the next one is possible in %d s" % (
                    len(recent), max(1, int(min(recent) + 3601 - now())))) if recent else "")
        return None


class WorkerCalls(object):
    """How the protocol calls deal with a cloud order's worker, with no network of their
    own: `order` starts it and waits about a second for its create; `order_status` wakes
    it for a step (or starts a dead one again) and waits about a second for that step;
    when the step takes longer, the task's message says why (the API silent, the disk
    full)."""

    def __init__(self, backend):
        self.backend = backend

    def launch(self, task, configuration):
        """Start the task's worker, which drives the whole order (OrderWorker), and wait
        about a second for its first step, the create: a refusal fails the order at
        once; a slow API gets the caller its task id."""
        self.backend.start_worker(task)
        saved = self.await_step(task["id"], 0)
        if saved is None:
            self.note_silence(task)
        elif saved["status"] == ERROR:
            raise ProviderError(E_BACKEND, saved["message"])
        return None

    def poll(self, task, configuration):
        """order_status: no network here: the task's worker drives the order on its own.
        A live worker is woken for a step now, a dead one (killed, a reboot) started again
        (its first step judges the timeout); the call waits about a second for that step.
        {}: read the task again."""
        report = WorkerReport.read(worker_lock_path(self.backend.paths, task["id"]))
        if report is not None and report.why:      # its last step's result is not saved
            report.wake()                          # (the disk full): it tries again now
            return {"message": "%s (%s)" % (self.backend.base_message(task), self.unsaved(report))}
        if report is not None:
            report.wake()
        else:
            try:
                self.backend.start_worker(task, again=True)
            except ProviderError as exc:
                return {"message": "%s (%s; trying again at the next status call)" % (
                    self.backend.base_message(task), exc.message)}
        if self.await_step(task["id"], report.steps if report else 0) is None:
            self.note_silence(task)
        return {}

    def await_step(self, task_id, steps):
        """The task as saved once its worker has done more than `steps` steps (or has
        ended), or None after STEP_WAIT s."""
        lock = worker_lock_path(self.backend.paths, task_id)
        deadline = time.monotonic() + STEP_WAIT
        while True:
            report = WorkerReport.read(lock)
            if report is None or report.steps > steps:
                return self.backend.store.find(task_id)
            if time.monotonic() >= deadline:
                return None
            time.sleep(0.02)

    @staticmethod
    def unsaved(report):
        return "the task's worker cannot save its progress: %s; it tries again" % report.why

    def note_silence(self, task):
        """The worker is still in its step: say why in the task's message (the API has
        not answered, or the worker cannot save: a full disk), unless the worker saved
        another message meanwhile."""
        report = WorkerReport.read(worker_lock_path(self.backend.paths, task["id"]))
        if report is None:
            return
        if report.why:
            note = self.unsaved(report)
        else:
            note = "%s has not answered for %d s; the task's worker waits for it" % (
                self.backend.LABEL, max(0, int(time.time() - (report.since or time.time()))))
        said = task.get("message")

        def change(state):
            saved = state["tasks"].get(task["id"])
            if saved is not None and saved["status"] == IN_PROGRESS and (
                    saved.get("message") == said):
                saved["message"] = "%s (%s)" % (self.backend.base_message(saved), note)
            return saved
        try:
            self.backend.store.update(change)
        except ProviderError:
            pass                # the answer tells what the state holds


class CloudInit(object):
    """What a new cloud server's cloud-init gets from the plugin (the root password's hash,
    the pool key, the pinned host key, the configuration's own user data) and how the
    plugin knows it is done: over SSH with the pool key (the boot-finished file), else the
    SSH banner plus ready_grace with the pinned host key shown."""

    def __init__(self, backend):
        self.backend = backend

    def pool_key(self):
        """(path of the pool's private key, its public key line or None if unusable)."""
        setting = self.backend.settings.get("pool_key")
        path = home_path(self.backend.paths, setting or ansible_private_key() or DEFAULT_POOL_KEY)
        try:    # it goes into root's authorized_keys: only a trusted user's file will do
            public = TrustedFiles(self.backend.paths).read_private(
                path + ".pub", "the pool key", 16384).decode("utf-8", "replace").strip()
        except ProviderError as exc:
            if exc.code == E_UNSAFE:
                raise
            return path, None
        if ("\n" in public or not public.startswith(("ssh-", "ecdsa-", "sk-"))
                or not os.access(path, os.R_OK)):
            return path, None
        return path, public

    def user_data(self, task, configuration):
        """Our #cloud-config (root password hash, pool key), then the configuration's own."""
        password = task.get("server_password")
        public = self.pool_key()[1] if task["data"].get("key_installed") else None
        lines = ["#cloud-config",
                 "# provider.py: %s task %s" % (self.backend.paths.name, task["id"]),
                 "disable_root: false"]
        if password:
            hashed = json.dumps(sha512_crypt(password, random_text(CRYPT_ALPHABET, 16)))
            # "users" for cloud-init 22.2 and later, "list" for the older ones
            lines += ["ssh_pwauth: true", "chpasswd:", "  expire: false", "  users:",
                      "    - name: root", "      password: " + hashed, "      type: hash",
                      "  list:", "    - root:" + hashed.strip('"')]
            if self.backend.ROOT_PASSWORD_LOGIN:   # first match wins: the drop-in sorts first
                lines += ["write_files:", "  - path: " + SSHD_DROP_IN, '    permissions: "0600"',
                          '    content: "PermitRootLogin yes\\nPasswordAuthentication yes\\n"']
        if public:
            lines += ["ssh_authorized_keys:", "  - " + json.dumps(public)]
        private = task["data"].get("host_key_private")
        if private:              # the host key pinned by pin_host_key (JSON strings are YAML)
            lines += ["ssh_deletekeys: true", "ssh_keys:",
                      "  ed25519_private: " + json.dumps(private),
                      "  ed25519_public: " + json.dumps(task["data"]["host_keys"][0])]
        ours = "\n".join(lines) + "\n"
        own = configuration.get("user_data", "")
        if not own.strip():
            text = ours
        else:
            text = mime_multipart([("text/cloud-config", "provider-py.cfg", ours),
                                   (user_data_type(own), "user-data", own)])
        most = self.backend.MAX_USER_DATA
        if most and len(text.encode("utf-8")) > most:
            raise ProviderError(E_CONFIG, "configuration %s: user_data is too long: %s takes "
                                "at most %d bytes with ours" % (
                                    configuration.get("id"), self.backend.LABEL, most))
        return text

    def ready(self, task, address, data):
        """SSH answers: ready once cloud-init is done (asked with the pool key), or
        after ready_grace with the pinned host key shown (no pool key)."""
        key_path, public = self.pool_key()
        if data.get("key_installed") and public:
            done, why = self.finished(address, key_path, data.get("host_keys"))
            if done:
                return self.backend.finish(task, address, data)
            if done is not None:
                return {"data": data, "phase": "setup", "message": "running setup: %s" % why}
        data.setdefault("ssh_age", task_age(task))
        left = self.backend.ready_grace - (task_age(task) - data["ssh_age"])
        if left <= 0:
            shown = self.shows_pinned_key(address, data)
            if shown is not True:
                return {"data": data, "phase": "setup", "message": "running setup: %s" % shown}
            return self.backend.finish(task, address, data)
        return {"data": data, "phase": "setup", "message": "running setup: SSH answers; "
                "ready in %d s (ready_grace: no pool key to ask cloud-init)" % -(-left // 1)}

    def shows_pinned_key(self, address, data):
        """True when the server shows the host key handed to cloud-init (or none was
        pinned), else why not: without the pool key nothing else proves it, and a
        known_hosts line with a key the server does not have fails the caller."""
        pinned = data.get("host_keys")
        if not pinned or data.get("host_key_private") is None:
            return True
        scanned, why = scan_host_keys(address, self.backend.ssh_port, 1)
        if scanned is None:
            return "its host key cannot be read yet (%s)" % why
        if not set(pinned) & set(scanned):
            return ("it does not show the host key handed to cloud-init (%s); cloud-init may "
                    "not have run" % ", ".join(key_fingerprint(key) for key in scanned))
        return True

    def finished(self, address, key_path, host_keys=None):
        """(True, "") when cloud-init is done, (False, why) when not yet,
        (None, why) when ssh cannot run at all (then: the grace period).
        host_keys: the keys pinned for the server (pin_host_key); ssh then
        checks them, else it checks none."""
        import shutil
        import subprocess
        import tempfile
        folder = tempfile.mkdtemp(prefix="bxprovider-")       # 0700
        checking = ["-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null"]
        if host_keys:
            known = os.path.join(folder, "known_hosts")
            try:
                with open(known, "wb") as handle:
                    handle.write(known_hosts_text(b"", address, self.backend.ssh_port, host_keys))
            except (IOError, OSError) as exc:
                shutil.rmtree(folder, ignore_errors=True)
                return False, "cannot write a temp file for ssh: %s" % exc.strerror
            checking = ["-o", "StrictHostKeyChecking=yes", "-o", "UserKnownHostsFile=" + known,
                        "-o", "GlobalKnownHostsFile=/dev/null"]
        command = ["ssh", "-i", key_path, "-p", str(self.backend.ssh_port),
                   "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes",
                   "-o", "ConnectTimeout=%d" % max(1, min(2, int(self.backend.request_timeout)))
                   ] + checking + ["-o", "LogLevel=ERROR", "root@" + address,
                                   "test -f " + CLOUD_INIT_DONE]
        try:
            proc = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, close_fds=True, env=child_env())
            _, err = proc.communicate(timeout=SSH_CHECK_TIMEOUT)
        except OSError as exc:
            return None, "cannot run ssh: %s" % exc.strerror
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
            return False, "ssh got no answer in %d s" % SSH_CHECK_TIMEOUT
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        if proc.returncode == 0:
            return True, ""
        if proc.returncode == 1:
            return False, "cloud-init has not finished yet"
        lines = err.decode("utf-8", "replace").strip().splitlines()
        return False, "the pool key does not log in yet (%s)" % printable(
            lines[-1] if lines else "ssh exit %d" % proc.returncode)


class ServerCleanup(object):
    """The end of the ledger (issue 17): a failed order's server, or the server a create it
    sent may have made, is looked up (by its name and marks), deleted (on_failure delete)
    and confirmed gone, or named (on_failure keep); a create never seen settled is given up
    only after CLEANUP_LOOKUPS look-ups over the cloud's late_window(). Runs in the task's
    worker (clean_up, after OrderWorker), in `task fail` (cancel: one try at once), and is
    started by any call for a task that still needs it (settle, revive_workers). The
    backend gives the API's shapes: lookup, delete_server, fail's texts."""

    def __init__(self, backend):
        self.backend = backend


    def cleanup_wanted(self, task):
        """A failed task whose server is to be deleted, or looked for: the server of a
        create it never saw settled is looked up whatever on_failure says (to be kept,
        and counted, when found), until found or shown never made."""
        return bool(task and task.get("status") == ERROR and may_rent(task)
                    and task["data"].get("cleanup") == "pending"
                    and (self.backend.on_failure == "delete" or unsettled_create(task)))

    def settle(self, task):
        """After order_status: a failed task whose server must go gets a cleanup
        worker (or its worker is woken). No network: order_status stays fast."""
        if self.cleanup_wanted(task):
            self.ensure_worker(task)

    def ensure_worker(self, task):
        """Start the task's worker, or wake the one that runs: its next step comes at
        once (for a task that has ended: the cleanup)."""
        if not self.backend.start_worker(task, again=True):
            report = WorkerReport.read(worker_lock_path(self.backend.paths, task["id"]))
            if report is not None:
                report.wake()

    def cancel(self, task):
        """After `task fail`: on_failure "delete" deletes the server now (the
        cleanup worker goes on trying if that fails); "keep" names it (looking up the
        server of a create the task never saw settled, once)."""
        if not may_rent(task):
            return None
        if self.backend.on_failure != "delete" and not unsettled_create(task):
            return "%s (on_failure: keep)" % self.kept_text(task)
        data_changes = {"cleanup": "pending", "failed_because": task["message"]}
        task = self.save_data(task, data_changes)
        done, text = self.cleanup_once(task)
        if not done:
            self.ensure_worker(task)
            text += "; the cleanup worker goes on trying (`%s task show %s` tells)" % (
                self.backend.paths.name, task["id"])
        return text

    def clean_up(self, provider, task_id):
        """The cleanup worker: delete the failed task's server (looking it up first when
        the task never learnt its id), trying again after a growing pause until it is
        gone, shown never made, the operator deleted it, or on_failure is no longer
        "delete" (then it is named and left). It exits after CLEANUP_WORKER_LIFE; the
        next call starts another (revive_workers)."""
        give_up = time.monotonic() + CLEANUP_WORKER_LIFE
        wait, slept = CLEANUP_FIRST_WAIT, 0.0
        while True:
            task = provider.store.find(task_id)
            if not provider.store.same_installation():
                return "task %s: the state now belongs to another installation" % task_id
            backend = self.backend
            try:        # an operator may have set on_failure "keep" since
                backend.on_failure = Config.load(provider.paths, provider.log).backend.on_failure
            except ProviderError:
                pass    # a config broken meanwhile: go on as started
            if (task and backend.on_failure != "delete" and not unsettled_create(task)
                    and task["data"].get("cleanup") == "pending"):
                self.save_cleanup(task_id, {"cleanup": "kept"}, "on_failure is now \"%s\": %s"
                                  % (self.backend.on_failure, self.kept_text(task)), wanted=False)
            if not self.cleanup_wanted(task):
                return "task %s: no server to delete" % task_id
            done, text = self.cleanup_once(task, wait, slept)
            if done or time.monotonic() + wait > give_up:
                return text
            if task["data"].get("cleanup_waits"):
                wait = CLEANUP_MAX_WAIT           # a person must act: only look now and then
            time.sleep(wait)
            slept = wait
            wait = min(wait * 2, CLEANUP_MAX_WAIT)

    def cleanup_once(self, task, wait=None, slept=0.0):
        """One try at deleting a failed task's server; (done, text), saved in the task.
        Without a server id (an unsettled create) it looks the server up first; it is
        shown never made only after CLEANUP_LOOKUPS look-ups that found nothing over
        late_window() s at least (slept: the pause before this try, counted as looked)."""
        data = task["data"]
        tries, looked = data.get("cleanup_tries", 0) + 1, data.get("looked_for", 0) + slept
        try:
            if unsettled_create(task):
                task = self.adopt_late(task)
            if self.backend.on_failure != "delete" and rented_server(task):
                text = "%s (on_failure: keep)" % self.kept_text(task)     # found: kept
                self.save_cleanup(task["id"], {"cleanup": "kept"}, text, wanted=False)
                return True, text
            if unsettled_create(task):
                if tries >= CLEANUP_LOOKUPS and looked >= self.backend.late_window():
                    self.save_cleanup(task["id"], {"cleanup": "done", "settled": data["creates"],
                                                   "looked_for": looked},
                                      "no server was found in %d look-ups over %s (a create "
                                      "shows on %s within %d s) (on_failure: %s)" % (
                                          tries, format_age(looked), self.backend.LABEL,
                                          self.backend.late_window(), self.backend.on_failure))
                    return True, "no server to delete"
                raise ProviderError(E_BACKEND, "not found yet; a create may show for %d s "
                                    "more" % max(0, self.backend.late_window() - looked))
            server_id = task["data"]["server_id"]
            said = self.backend.delete_server(task)
        except ProviderError as exc:
            changes = {"cleanup_tries": tries, "cleanup_error": exc.message, "looked_for": looked}
            if getattr(exc, "waits_for_person", False):
                changes["cleanup_waits"] = exc.message
            note = "%s (on_failure: delete): try %d failed (%s)%s" % (
                self.backend.deleting(task), tries, exc.message,
                "; trying again in %d s" % wait if wait else "")
            self.save_cleanup(task["id"], changes, note)
            return False, note
        self.save_cleanup(task["id"], {"cleanup": "done", "server_deleted": now(),
                                       "cleanup_waits": None},
                          "%s server %s deleted (on_failure: delete)" % (
                              self.backend.LABEL, server_id))
        self.backend.log.write("cleanup", task["id"], server_id=server_id, result=said)
        return True, said

    def adopt_late(self, task):
        """A task failed before it knew its server: a create it sent may have made one
        all the same. Look it up once (raises CloudError), and keep its id in the task."""
        server = self.backend.lookup(self.backend.api(), task, 1)
        server_id = safe_server_id(server.get("id")) if server is not None else None
        if server_id is None:
            return task
        self.backend.log.write("server", task["id"], server_id=server_id, late=True)
        return self.save_data(task, {"server_id": server_id})

    def kept_text(self, task):
        if rented_server(task):
            return "%s server %s stays, billed: `%s task delete-server %s --yes` deletes it" % (
                self.backend.LABEL, rented_server(task), self.backend.paths.name, task["id"])
        return "a server a create sent may have made stays: `%s servers` shows it" % (
            self.backend.paths.name)

    def save_cleanup(self, task_id, data_changes, note, wanted=True):
        """Save a cleanup step; its end (the server deleted, or given up on: kept, or
        never found) runs the notify hook, once (marked under the lock)."""
        provider = self.backend.provider
        event = None
        if data_changes.get("cleanup") in ("done", "kept") and provider is not None:
            event = ("server_deleted" if data_changes.get("server_deleted")
                     else "server_given_up") if provider.notify_wanted() else None
        marked = []

        def change(state):
            task = state["tasks"].get(task_id)
            if task is None or (wanted and not self.cleanup_wanted(task)):
                return task           # deleted by hand meanwhile
            task["data"] = dict(task["data"], **data_changes)
            task["message"] = "%s; %s" % (task["data"].get("failed_because")
                                          or "the order failed", note)
            task["updated"] = now()
            if event and notify_marked(task, event):
                marked.append(event)
            return task
        saved = self.backend.store.update(change)
        for notified in marked:
            notify(provider, notified, saved)
        return saved

    def save_data(self, task, data_changes):
        """Save data changes of a task (a failed one's cleanup, a clone's VMID before it is
        sent); the task as saved (or as it would be, should it have left the state file
        meanwhile)."""
        def change(state):
            saved = state["tasks"].get(task["id"])
            if saved is not None:
                saved["data"] = dict(saved["data"], **data_changes)
            return saved
        saved = self.backend.store.update(change)
        return saved or dict(task, data=dict(task["data"], **data_changes))

    def cleanup_report(self, state):
        """`check`: failed orders whose server is still being deleted; not ok once a
        delete failed (an operator may have to act: the message says why)."""
        report = []
        for task in sorted((t for t in state["tasks"].values() if isinstance(t, dict)
                            and t.get("backend") == self.backend.TYPE and self.cleanup_wanted(t)),
                           key=lambda t: int(t["id"])):
            tries = task["data"].get("cleanup_tries", 0)
            fix = ("; `%s task delete-server %s --yes` tries now, or delete it in the %s "
                   "console" % (self.backend.paths.name, task["id"], self.backend.LABEL)
                   if rented_server(task) else "; `%s servers` shows it once it is listed"
                   % self.backend.paths.name)
            report.append((not tries, "task %s: %s%s" % (
                task["id"], self.backend.deleting(task), " (%d tries failed, the last: %s)%s" % (
                    tries, task["data"].get("cleanup_error"), fix) if tries else "")))
        return report


class CloudInventory(object):
    """People's view of a cloud backend's servers and orders: `servers` (every server
    carrying provider.py's marks, who holds it, or why it may be another installation's),
    `order --dry-run` (the request an order would send) and the caps as text."""

    def __init__(self, backend):
        self.backend = backend


    def guardrails_text(self, state, configuration=None):
        """The caps and what counts against them now, for people."""
        return "%d %s server(s) held now%s; on_failure %s" % (
            len(CloudCaps(self.backend).held(state)), self.backend.LABEL, "".join(
                ", %s %s" % (what, limit) for what, limit in (
                    ("backend.max_servers", self.backend.settings.get("max_servers")),
                    ("configuration max_servers", (configuration or {}).get("max_servers")),
                    ("max_orders_per_hour", self.backend.settings.get("max_orders_per_hour")))
                if limit is not None), self.backend.on_failure)

    def dry_run(self, configuration, state, task_id):
        """`order CONFIG --dry-run`: what an order would do, as text; creates nothing.
        The root password's hash and the token are masked."""
        lines = ["dry run of an order of configuration %s: nothing is created and no task "
                 "is saved" % configuration["id"]]
        self.backend.dry = True
        report = self.backend.check_api([configuration])
        if self.backend.offline is None:
            lines += ["%s: %s" % ("ok" if ok else "FAIL", text) for ok, text in report]
            lines += ["%s: %s" % ("warn" if ok == WARN else "ok" if ok else "FAIL", text)
                      for ok, text in self.backend.resolve(self.backend.api(), configuration)]
        else:
            lines.append("note: could not reach %s (%s): the request below is the one an "
                         "order would send, each name it looks up shown as not resolved"
                         % (self.backend.LABEL, self.backend.offline))
        problem = CloudCaps(self.backend).cap_problem(configuration, state)
        lines.append("FAIL: the order would be refused (N109): %s" % problem if problem else
                     "ok: caps: " + self.guardrails_text(state, configuration))
        task = new_task(task_id, configuration["id"], self.backend.TYPE)
        self.backend.prepare(task, configuration, state)
        if self.backend.settings.get("known_hosts", True):     # pin_host_key makes it at the order
            task["data"].update(host_key_private="<masked: the new server's ed25519 private "
                                "host key, made at the order>", host_keys=[
                                    "ssh-ed25519 <its public half>"])
        user_data = mask_password_hashes(self.backend.cloud_init.user_data(task, configuration))
        choices = self.backend.alternatives(configuration)
        body = self.backend.create_body(task, dict(configuration, **choices[0]), user_data)
        lines += ["", "the create it would send (as task %s):" % task_id,
                  "POST %s" % self.backend.create_url(),
                  "%s: <masked>" % ", ".join(sorted(self.backend.auth.headers("x")))]
        lines += ["%s: %s" % item for item in sorted(self.backend.request_headers().items())]
        lines.append(json.dumps(body, indent=2, ensure_ascii=False, sort_keys=True))
        for choice in choices[1:]:
            lines.append("then, only if %s has no capacity for the one before: %s"
                         % (self.backend.LABEL, self.backend.choice_text(choice)))
        lines += ["", "its user data (%s):" % ("root password hash masked"
                                                if task["server_password"] else "no password"),
                  user_data.rstrip("\n")]
        # exit status 1 when a check failed, as for `check`
        return CheckReport("\n".join(lines), sum(1 for line in lines
                                                 if line.startswith("FAIL: ")))

    def server_inventory(self, store):
        """`servers`: [(server, task id or None, who holds it, or None: an orphan, or
        NotOurs: why the server may be another installation's)]. Every server carrying
        provider.py's marks is listed, then the state is read: an order placed meanwhile
        saved its task before its create, so its new server is never taken for an orphan."""
        servers = self.backend.shaped(self.backend.owned_servers, self.backend.api())
        state = store.load()
        rows = []
        for server in servers if isinstance(servers, list) else []:
            if not isinstance(server, dict):
                continue
            task_id = self.backend.shaped(self.backend.task_of, server)
            task_id = task_id if isinstance(task_id, str) and valid_task_id(task_id) else None
            if safe_server_id(server.get("id")) is None:    # never put into a DELETE's path
                server = dict(server, id="(unusable id)")
            task = (state["tasks"].get(task_id) or store.find(task_id)) if task_id else None
            foreign = self.not_ours(server, task_id, task, state)
            rows.append((server, task_id, foreign or self.holder(server, task_id, task)))
        return rows

    def not_ours(self, server, task_id, task, state):
        """NotOurs(why) for a server this installation must never adopt or delete: it
        carries another installation's owner tag, or names a task this state cannot
        explain (a lost or restored state's server, another master's); else None."""
        tag = self.backend.shaped(self.backend.tag_of, server)
        ours = [owner_tag(state)] + list(state.get("legacy_owner_tags") or [])
        if task_id is None:
            return NotOurs("it names no task")
        if int(task_id) >= state.get("next_id", 1):
            return NotOurs("its task %s is newer than this state's tasks (the next is %s): a "
                           "lost or restored state's server, or another master's" % (
                               task_id, state.get("next_id")))
        if task is not None and (task.get("data") or {}).get("owner") not in (None, tag):
            return NotOurs("task %s here carries owner tag %s, the server %s: another "
                           "installation's (a cloned master?)" % (
                               task_id, task["data"]["owner"], printable(str(tag), 20)))
        if task is None and tag not in ours:
            return NotOurs("its owner tag %s is not this installation's (%s)" % (
                printable(str(tag), 20), ours[0]))
        marks = {"id": task_id, "data": {"owner": tag, "name": server_name(
            self.backend.paths.name, task_id, tag)}}
        if not self.backend.shaped(self.backend.owns, server, marks):
            return NotOurs("its name and marks do not match task %s's" % task_id)
        return None

    def holder(self, server, task_id, task):
        """Who holds an installation's server: "task N (status)", or None (an orphan)."""
        if task is None:
            return None
        server_id = safe_server_id(server.get("id"))
        if rented_server(task) == server_id:
            return "task %s (%s%s)" % (task_id, task["status"], ", being deleted"
                                       if self.backend.cleanup_wanted(task) else "")
        if unsettled_create(task):
            return "task %s (%s, %s)" % (task_id, task["status"], "creating" if
                                         task["status"] == IN_PROGRESS else "being looked up")
        return None

    def delete_orphan(self, server, task_id):
        server_id = safe_server_id(server.get("id"))
        if server_id is None:
            return "%s server %s: not deleted (its id is unusable in a URL)" % (
                self.backend.LABEL, printable(str(server.get("name"))))
        orphan = {"id": task_id or "-", "status": ERROR, "data": {
            "server_id": server_id, "name": server.get("name"),
            "owner": self.backend.shaped(self.backend.tag_of, server)}}
        return self.backend.delete_server(orphan)


class TaskClock(object):
    """A task's age as one worker measures it: the measure it saved in the task ("age",
    "age_at") plus the monotonic time since, as long as the state still holds that
    measure; else task_age (another worker's measure, or a person's change). So a step of
    the wall clock while the worker runs neither ends an order early nor late."""

    def __init__(self):
        self.saved = None       # ((age, age_at), monotonic time) of the measure saved
        self.taken = None       # the same for the last measure taken

    def measure(self, task):
        """(the task's age, the wall time it was taken at)."""
        data = task["data"]
        if self.saved and (data.get("age"), data.get("age_at")) == self.saved[0]:
            age = self.saved[0][0] + time.monotonic() - self.saved[1]
        else:
            age = task_age(task)
        self.taken = ((age, now()), time.monotonic())
        return self.taken[0]

    def kept(self):
        """The last measure taken is saved in the task now."""
        self.saved = self.taken


class OrderWorker(object):
    """The life of a cloud order's worker (a fork of the call that started it, holding the
    task's worker lock throughout): step after step until the task ends - the create, then
    the server followed until it is ready or the order fails - each step saved, with a
    pause of poll_interval between two that a call's wake-up cuts short (WorkerReport,
    WorkerPause). So an order ends even when nobody polls it. The backend is taken afresh
    from the config when the file changed: a setting changed meanwhile (ready_timeout,
    poll_interval, on_failure) reaches the orders in flight. The task's age is measured
    here by the monotonic clock (task_age)."""

    SAVE_PAUSES = (1, 2, 4, 8, 15, 30, 30, 30, 30, 30, 30, 30)   # ~4 min of failed saves

    def __init__(self, backend, provider, task_id):
        self.backend, self.provider, self.task_id = backend, provider, task_id
        self.lock = worker_lock_path(provider.paths, task_id)
        self.log = TaskLog(backend.task_log(task_id))
        self.pause = WorkerPause()          # before the pid is told: SIGUSR1 is handled
        before = WorkerReport.read(self.lock)     # the worker before's steps count on
        self.report = WorkerReport(os.getpid(), process_start_time(os.getpid()),
                                   before.steps if before and before.pid else 0, "new")
        self.config_stamp = file_stamp(provider.paths.config)
        self.clock = TaskClock()
        self.unsaved = ""       # why the last save failed (the calls show it), or ""

    def run(self):
        """Steps until the task has ended (or left the state); the task as saved."""
        said = None
        while True:
            task = self.provider.store.find(self.task_id)
            if not self.provider.store.same_installation():
                self.log.note("the state now belongs to another installation (purged and "
                              "installed again?): this worker stops")
                return None
            if task is None or task["status"] in TERMINAL or (
                    task.get("backend") != self.backend.TYPE):
                return task
            self.follow_config()
            self.tell("step")
            saved = self.save(task, self.step(task))
            if saved is not None and saved.get("message") != said:
                said = saved.get("message")
                self.log.note("%s: %s" % (saved["status"], said))
            self.report.steps += 1
            self.tell("wait")
            if saved is not None and saved["status"] in TERMINAL:
                return saved
            self.pause.wait(self.backend.poll_interval)

    def step(self, task):
        """One step, as a status call made it before workers lived long: the token is
        taken from the state's cache again (a 401 then renews it: CachedToken.renew)."""
        self.backend.auth.forget()
        age, age_at = self.clock.measure(task)
        marks = age_marks(age, age_at)
        task["data"] = dict(task["data"], **marks)
        configuration = self.provider.config.by_id.get(task["config_id"], {})
        try:
            changes = self.backend.step(task, configuration) or {}
        except Exception as exc:      # noqa: the disk full, a bug: the worker goes on
            import traceback
            self.log.note("the step failed: " + traceback.format_exc())
            changes = {"message": "%s (the step failed: %s: %s; trying again in %g s; see %s)"
                       % (self.backend.base_message(task), type(exc).__name__,
                          printable(str(exc), 200), self.backend.poll_interval, self.log.path)}
        changes["data"] = dict(changes.get("data") or {}, **marks)
        return changes

    def save(self, task, changes):
        """Save a step's changes. A failed save (the disk full, the lock busy) is told to
        the calls (WorkerReport.why: they show it) and tried again for a few minutes;
        then the next step starts from the state as it is: the ledger holds each create."""
        made = (changes.get("data") or {}).get("server_id")
        for pause in self.SAVE_PAUSES + (None,):
            try:
                saved = self.provider.apply(self.task_id, changes)
                break
            except ProviderError as exc:
                self.unsaved = "N%d, %s" % (exc.code, exc.message)
                self.tell("step")
                self.log.note("the step's result could not be saved: %s" % exc.message)
                if pause is None:
                    return None
                time.sleep(pause)
        self.unsaved = ""
        self.clock.kept()
        if saved is not None and saved["status"] in TERMINAL and made and (
                not saved["data"].get("server_id")):
            saved = self.backend.keep_late_server(saved, made)
        return saved

    def tell(self, doing):
        """Rewrite the report: doing "step" or "wait", and why its last save failed."""
        if doing != self.report.doing:
            self.report.since = time.time()
        self.report.doing, self.report.why = doing, self.unsaved
        self.report.write(self.lock)

    def follow_config(self):
        """A config changed since the last step: its backend from now on (if usable)."""
        stamp = file_stamp(self.provider.paths.config)
        if stamp == self.config_stamp:
            return
        self.config_stamp = stamp
        try:
            backend = self.provider.reload_config().backend
        except ProviderError as exc:
            self.log.note("the config changed but cannot be used (%s); the order goes on "
                          "with the settings it had" % exc.message)
            return
        if backend.TYPE != self.backend.TYPE:
            self.log.note("the config now names the %s backend; this %s order goes on with "
                          "the settings it had" % (backend.TYPE, self.backend.TYPE))
            return
        self.backend = backend
        self.log.note("the config changed: its settings apply from this step on")


class HetznerBackend(CloudBackend):
    """Hetzner Cloud: https://docs.hetzner.cloud/ (servers carry labels)."""

    TYPE = "hetzner"
    LABEL = "Hetzner"
    DEFAULT_API_URL = "https://api.hetzner.cloud/v1"
    CHECK_PATH = "/locations"
    MAX_USER_DATA = 32 * 1024
    PARAMETERS = dict(CloudBackend.PARAMETERS,
                      server_type=alternatives("string", Checker.nonempty),
                      image=("string", Checker.nonempty),
                      location=alternatives("string", Checker.nonempty))
    # cluster networking (issue 27), in the backend (the default) or a configuration: the
    # create body's networks, firewalls [{"firewall": id}], placement_group (hcloud-go
    # hcloud/schema/server.go ServerCreateRequest, ServerCreateFirewalls)
    CLUSTER = {"networks": ("array", check_refs), "firewalls": ("array", check_refs),
               "placement_group": ("string or integer", check_ref),
               "address": ("string", check_address)}
    SETTINGS = dict(CloudBackend.SETTINGS, **CLUSTER)
    PARAMETERS = dict(PARAMETERS, **CLUSTER)
    REQUIRED = ("server_type", "image")
    FALLBACKS = ("server_type", "location")
    # POST /servers answers once the server exists (it is listed at once): a lost answer's
    # server shows within the request's own time; 120 s more covers a proxy that held it
    LATE_CREATE = 120
    GONE = ("deleting",)            # hcloud-go hcloud/server.go ServerStatus
    # create refusals that mean "none left of this type here"
    CAPACITY_CODES = ("resource_unavailable", "placement_error", "unavailable")

    def create_body(self, task, configuration, user_data):
        body = {"name": task["data"]["name"], "server_type": configuration["server_type"],
                "image": configuration["image"], "user_data": user_data,
                "labels": self.labels(task), "start_after_create": True}
        if configuration.get("location"):
            body["location"] = configuration["location"]
        api = self.api() if self.offline is None else None
        networks = self.cluster(configuration, "networks")
        if networks:
            body["networks"] = [self.ref_id(api, "networks", v) for v in networks]
        firewalls = self.cluster(configuration, "firewalls")
        if firewalls:
            body["firewalls"] = [{"firewall": self.ref_id(api, "firewalls", v)}
                                 for v in firewalls]
        group = self.cluster(configuration, "placement_group")
        if group is not None:
            body["placement_group"] = self.ref_id(api, "placement_groups", group)
        return body

    @classmethod
    def validate_across(cls, settings, configurations, path, check):
        CloudBackend.validate_across(settings, configurations, path, check)
        for index, configuration in enumerate(configurations):
            if (configuration.get("address", settings.get("address")) == "private"
                    and not configuration.get("networks", settings.get("networks"))):
                check.add("%s[%d]" % (path, index), "address \"private\" needs networks (the "
                          "first one's address is the one the caller gets)")

    def cluster(self, configuration, key):
        """A cluster setting: the configuration's, else the backend's, else None."""
        return configuration.get(key, self.settings.get(key))

    def ref_id(self, api, collection, value):
        """A network's, firewall's or placement group's id from its id or name (the list's
        ?name= filter: hcloud-go hcloud/network.go NetworkListOpts, firewall.go
        FirewallListOpts, placement_group.go PlacementGroupListOpts), looked up once per
        backend (an order's worker); in a dry run with the cloud unreachable, a text."""
        if isinstance(value, int) or str(value).isdigit():
            return int(value)
        what = "%s %s" % (collection[:-1].replace("_", " "), value)
        cache = self.__dict__.setdefault("ref_ids", {})
        if (collection, value) not in cache:
            found = self.resolved(what, self.ref_lookup, api, collection, value)
            if not isinstance(found, int):
                return found
            cache[(collection, value)] = found
        return cache[(collection, value)]

    def ref_lookup(self, api, collection, value):
        answer = api.call("GET", "/" + collection, query={"name": value})
        for item in self.field(answer, collection, "array", "GET /" + collection) or []:
            if isinstance(item, dict) and item.get("name") == value and isinstance(
                    item.get("id"), int):
                return item["id"]
        raise ProviderError(E_CONFIG, "%s has no %s named %s (GET /%s?name=%s found none): "
                            "write its id or its exact name in the config" % (
                                self.LABEL, collection[:-1].replace("_", " "),
                                printable(value), collection, printable(value)))

    def find(self, api, task, attempts=RETRY_ATTEMPTS):
        selector = ",".join("%s=%s" % item for item in sorted(self.labels(task).items()))
        answer = api.call("GET", self.SERVERS, query={"label_selector": selector},
                          attempts=attempts)
        return self.field(answer, "servers", "array", "the answer") or []

    def owns(self, server, task):
        if not CloudBackend.owns(self, server, task):
            return False
        labels = self.field(server, "labels", "object", "server") or {}
        return all(labels.get(key) == value for key, value in self.labels(task).items())

    def describe(self, server):
        said = self.field(server, "status", "string", "server") or "unknown"
        return {"running": "running", "deleting": "failed"}.get(said, "booting"), said

    def capacity_error(self, exc):
        return not exc.uncertain and (exc.api_code in self.CAPACITY_CODES or (
            exc.api_code == "invalid_input" and CloudBackend.capacity_error(self, exc)))

    def owned_servers(self, api):
        selector = "managed-by=provider.py"

        def page(number):
            answer = api.call("GET", self.SERVERS, query={"label_selector": selector,
                                                          "page": number or 1, "per_page": 50})
            servers = self.field(answer, "servers", "array", "the answer") or []
            return servers, dig(answer, "meta", "pagination", "next_page")
        return list(paged_listing(self.LABEL, page))

    def task_of(self, server):
        return (server.get("labels") or {}).get("bx-task")

    def tag_of(self, server):
        return (server.get("labels") or {}).get("bx-owner")

    def resolve(self, api, configuration):
        """An id is read with GET /{collection}/{id} (404: unknown), a name with the list's
        ?name= filter: the lists filter by name only, an ?id= is ignored (hcloud-go
        hcloud/schema: ServerTypeListOpts, ImageListOpts, LocationListOpts)."""
        report = []
        for key, path, collection in (("server_type", "/server_types", "server_types"),
                                      ("image", "/images", "images"),
                                      ("location", "/locations", "locations")):
            values = configuration.get(key)
            for value in values if isinstance(values, list) else [values] if values else []:
                try:
                    known = self.known(api, path, collection, value)
                except CloudError as exc:
                    report.append((False, "%s %s: cannot be looked up: %s"
                                   % (key, value, api_fix(exc))))
                    continue
                report.append((known, "%s %s: %s" % (key, value, "known to %s" % self.LABEL
                                                     if known else "unknown to %s (write "
                                                     "one it lists in the config)"
                                                     % self.LABEL)))
        return report + self.cluster_report(api, configuration)

    def check(self, configurations, state):
        report = CloudBackend.check(self, configurations, state)
        if any(ok and text.endswith("accepts the token") for ok, text in report):
            for configuration in configurations:
                report.extend((ok, "configuration %s: %s" % (configuration["id"], text))
                              for ok, text in self.cluster_report(self.api(), configuration))
        return report

    def cluster_report(self, api, configuration):
        """`check`, `order --dry-run`: the networks, firewalls and placement group named,
        and with address "private" whether this master has an address in that network."""
        report = []
        refs = [("networks", v) for v in self.cluster(configuration, "networks") or []]
        refs += [("firewalls", v) for v in self.cluster(configuration, "firewalls") or []]
        group = self.cluster(configuration, "placement_group")
        refs += [("placement_groups", group)] if group is not None else []
        for collection, value in refs:
            what = "%s %s" % (collection[:-1].replace("_", " "), value)
            try:
                self.ref_id(api, collection, value)
                report.append((True, "%s: known to %s" % (what, self.LABEL)))
            except ProviderError as exc:
                report.append((False, "%s: %s" % (what, exc.message)))
        if self.cluster(configuration, "address") == "private" and refs[:1]:
            report.extend(self.private_report(api, refs[0][1]))
        return report

    def private_report(self, api, network):
        try:
            answer = api.call("GET", "/networks/%d" % self.ref_id(api, "networks", network))
            cidr = (answer.get("network") or {}).get("ip_range")
        except (ProviderError, AttributeError):
            return []                   # said above
        return [master_in_network(network, [str(cidr)] if cidr else [])]

    @staticmethod
    def known(api, path, collection, value):
        if not str(value).isdigit():
            answer = api.call("GET", path, query={"name": value}, attempts=2)
            items = answer.get(collection) if isinstance(answer, dict) else None
            return any(isinstance(item, dict) and item.get("name") == value
                       for item in items or [])
        try:
            answer = api.call("GET", "%s/%s" % (path, value), attempts=2)
        except CloudError as exc:
            if exc.status == 404:
                return False
            raise
        return isinstance(answer, dict) and isinstance(answer.get(collection[:-1]), dict)

    def ipv4(self, server):
        public = self.field(server, "public_net", "object", "server") or {}
        return (self.field(public, "ipv4", "object", "server.public_net") or {}).get("ip")

    def private_ips(self, server):
        """[(network id, IPv4)] of the server's private networks (hcloud-go
        hcloud/schema/server.go ServerPrivateNet: network, ip)."""
        nets = self.field(server, "private_net", "array", "server") or []
        return [(net.get("network"), net.get("ip")) for net in nets
                if isinstance(net, dict) and isinstance(net.get("ip"), str)]

    def public_address(self, api, task, server):
        """The address the caller gets: the public IPv4, or with address "private" the
        IPv4 in the first configured network; the task keeps every IPv4 (ipv4_all)."""
        public = self.ipv4(server)
        private = self.private_ips(server)
        data = dict(task["data"], ipv4_all=[a for a in [public] + [ip for _, ip in private]
                                            if a])
        configuration = self.task_configuration(task)
        if self.cluster(configuration, "address") != "private":
            return public, data
        networks = self.cluster(configuration, "networks") or []
        if not networks:
            return None, data
        wanted = self.ref_id(api, "networks", networks[0])
        found = [ip for network, ip in private if network == wanted]
        return (found[0] if found else None), data

    def error_text(self, answer):
        """Never raises: a body not in Hetzner's shape (a proxy's 502 page, an empty
        body) gives what it can, and the HTTP status speaks for the rest."""
        answer = answer if isinstance(answer, dict) else {}
        error = answer.get("error")
        if not isinstance(error, dict):
            text = error if isinstance(error, str) else answer.get("message")
            return None, text if isinstance(text, str) else ""
        text = error.get("message") or ""
        text = text if isinstance(text, str) else str(text)
        details = error.get("details")
        fields = details.get("fields") if isinstance(details, dict) else None
        if isinstance(fields, list):
            notes = []
            for field in fields:
                if not isinstance(field, dict):
                    continue
                messages = field.get("messages")
                if isinstance(messages, list) and messages:
                    notes.append("%s: %s" % (field.get("name"),
                                             ", ".join(str(m) for m in messages)))
                else:
                    notes.append(str(field.get("name")))
            if notes:
                text += " [%s]" % "; ".join(notes)
        return error.get("code"), text


class TimewebBackend(CloudBackend):
    """Timeweb Cloud: https://timeweb.cloud/api-docs (no labels: name and comment)."""

    TYPE = "timeweb"
    LABEL = "Timeweb"
    DEFAULT_API_URL = "https://api.timeweb.cloud/api/v1"
    CHECK_PATH = "/account/status"
    PARAMETERS = dict(CloudBackend.PARAMETERS,
                      preset_id=alternatives("integer", Checker.positive),
                      os_id=("integer", Checker.positive), image_id=("string", Checker.nonempty),
                      availability_zone=alternatives("string", Checker.nonempty))
    # cluster networking (issue 27), backend-wide or per configuration: the VPC the server
    # joins, the create body's network {id, local_ip} (timeweb-cloud/sdk-go api/openapi.yaml
    # create_server_network); address private: its "local" network's IPv4 (vds_networks_inner)
    CLUSTER = {"network_id": ("string", Checker.nonempty),
               "local_ip": ("string", Checker.nonempty), "address": ("string", check_address)}
    SETTINGS = dict(CloudBackend.SETTINGS, **CLUSTER)
    PARAMETERS = dict(PARAMETERS, **CLUSTER)
    REQUIRED = ("preset_id",)
    FALLBACKS = ("preset_id", "availability_zone")
    FAILED = ("removing", "removed", "blocked", "permanent_blocked", "no_paid")
    GONE = ("removing", "removed")
    # a create shows in GET /servers once the API has taken it; 300 s covers an answer held
    # by the API's gateway (Timeweb documents no bound)
    LATE_CREATE = 300
    PAGE = 100

    @classmethod
    def validate_configuration(cls, configuration, path, check):
        super(TimewebBackend, cls).validate_configuration(configuration, path, check)
        if ("os_id" in configuration) == ("image_id" in configuration):
            check.add(path, "needs exactly one of 'os_id' or 'image_id'")

    def comment(self, task):
        return "provider.py owner=%s task=%s" % (task["data"]["owner"], task["id"])

    def create_body(self, task, configuration, user_data):
        body = {"name": task["data"]["name"], "comment": self.comment(task),
                "preset_id": configuration["preset_id"], "cloud_init": user_data,
                "is_ddos_guard": False}
        for key in ("os_id", "image_id", "availability_zone"):
            if key in configuration:
                body[key] = configuration[key]
        if self.cluster(configuration, "network_id"):
            body["network"] = {"id": self.cluster(configuration, "network_id")}
            if self.cluster(configuration, "local_ip"):
                body["network"]["local_ip"] = self.cluster(configuration, "local_ip")
        return body

    @classmethod
    def validate_across(cls, settings, configurations, path, check):
        CloudBackend.validate_across(settings, configurations, path, check)
        for index, configuration in enumerate(configurations):
            def get(key):
                return configuration.get(key, settings.get(key))
            if not get("network_id") and (get("address") == "private" or get("local_ip")):
                check.add("%s[%d]" % (path, index), "address \"private\" and local_ip need "
                          "network_id (the VPC the server joins)")

    def cluster(self, configuration, key):
        """A cluster setting: the configuration's, else the backend's, else None."""
        return configuration.get(key, self.settings.get(key))

    def local_ips(self, server):
        """[(network id, IPv4)] of the server's "local" networks (its VPCs)."""
        found = []
        for net in self.field(server, "networks", "array", "server") or []:
            if not isinstance(net, dict) or net.get("type") != "local":
                continue
            for ip in net.get("ips") if isinstance(net.get("ips"), list) else []:
                if isinstance(ip, dict) and ip.get("type") == "ipv4" and isinstance(
                        ip.get("ip"), str):
                    found.append((net.get("id"), ip["ip"]))
        return found

    def public_address(self, api, task, server):
        """The public IPv4, or with address "private" the one in network_id's VPC; the
        task keeps every IPv4 (ipv4_all)."""
        public, local = self.ipv4(server), self.local_ips(server)
        data = dict(task["data"], ipv4_all=[a for a in [public] + [ip for _, ip in local] if a])
        configuration = self.task_configuration(task)
        if self.cluster(configuration, "address") != "private":
            return public, data
        wanted = self.cluster(configuration, "network_id")
        found = [ip for network, ip in local if network == wanted]
        return (found[0] if found else None), data

    def all_servers(self, api, attempts=RETRY_ATTEMPTS):
        """Every server of the account. No server-side filter: pages through them
        (paged_listing: an API that ignores offset, or whose meta.total never
        ends, costs a page or MAX_FIND_PAGES at most)."""
        def page(offset):
            answer = api.call("GET", self.SERVERS, query={"limit": self.PAGE,
                                                          "offset": offset or 0},
                              attempts=attempts)
            servers = self.field(answer, "servers", "array", "the answer") or []
            meta = self.field(answer, "meta", "object", "the answer") or {}
            after = (offset or 0) + len(servers)
            total = self.field(meta, "total", "integer", "meta") or 0
            return servers, (after if after < total else None)
        return paged_listing(self.LABEL, page)

    def find(self, api, task, attempts=RETRY_ATTEMPTS):
        return [server for server in self.all_servers(api, attempts) if self.owns(server, task)]

    def owns(self, server, task):
        return (CloudBackend.owns(self, server, task) and
            server.get("comment") == self.comment(task))

    def describe(self, server):
        said = self.field(server, "status", "string", "server") or "unknown"
        return ("running" if said == "on" else "failed" if said in self.FAILED
                else "booting"), said

    def owned_servers(self, api):
        return [server for server in self.all_servers(api)
                if self.comment_marks(server) is not None]

    @staticmethod
    def comment_marks(server):
        """(owner tag, task id) of a comment "provider.py owner=TAG task=ID", else None."""
        words = str(server.get("comment") or "").split()
        if (len(words) == 3 and words[0] == "provider.py" and words[1].startswith("owner=")
                and words[2].startswith("task=")):
            return words[1][len("owner="):], words[2][len("task="):]
        return None

    def task_of(self, server):
        return (self.comment_marks(server) or (None, None))[1]

    def tag_of(self, server):
        return (self.comment_marks(server) or (None, None))[0]

    def check(self, configurations, state):
        report = CloudBackend.check(self, configurations, state)
        if any(ok and text.endswith("accepts the token") for ok, text in report):
            report.extend((ok, "configuration %s: %s" % (configuration["id"], text))
                          for configuration in configurations
                          if self.cluster(configuration, "address") == "private"
                          for ok, text in [self.vpc_report(configuration)])
        return report

    def vpc_report(self, configuration):
        """address private: is this master in the VPC's range? getVPC, GET
        /api/v2/vpcs/{vpc_id}: {"vpc": {"subnet_v4": "192.168.0.0/24", ...}} (Timeweb
        Cloud's OpenAPI, timeweb-cloud/sdk-go api/openapi.yaml), beside api_url's /api/v1."""
        vpc = self.cluster(configuration, "network_id")
        base = self.api_url.rstrip("/")
        if not base.endswith("/v1"):
            return WARN, ("address private: VPC %s not looked up (api_url does not end in /v1, "
                          "so its /v2 is unknown)" % vpc)
        try:
            answer = self.api(base[:-len("/v1")] + "/v2").call(
                "GET", "/vpcs/%s" % urllib_quote(vpc), attempts=2)
            cidr = answer["vpc"]["subnet_v4"]
        except CloudError as exc:
            return False, "address private: VPC %s: %s" % (vpc, api_fix(exc))
        except (KeyError, TypeError):
            return False, "address private: VPC %s: the answer has no vpc.subnet_v4" % vpc
        return master_in_network(vpc, [str(cidr)])

    def check_api(self, configurations):
        report = CloudBackend.check_api(self, configurations)
        if report[-1][0]:
            report.append((True, "Timeweb deletes a failed order's server at once only when "
                           "the token was made with is_able_to_delete (or the account has no "
                           "deletion by confirmation); else the task keeps the server until "
                           "someone deletes it in the panel"))
        return report

    def deletion_answered(self, server_id, answer):
        """With deletion by confirmation on the account (a token made without
        is_able_to_delete), DELETE answers 200 {"server_delete": {"hash": ...}} and deletes
        nothing until the code sent to the owner comes back with that hash (Timeweb Cloud's
        OpenAPI, timeweb-cloud/sdk-go api/openapi.yaml, deleteServer)."""
        pending = answer.get("server_delete") if isinstance(answer, dict) else None
        if isinstance(pending, dict) and pending.get("hash"):
            error = CloudError("Timeweb deletes server %s only once its deletion is confirmed "
                               "with the code it sent to the account's owner (deletion by "
                               "confirmation is on): it stays billed until someone deletes it in "
                               "the panel; a token made with is_able_to_delete deletes at once"
                               % server_id)
            error.waits_for_person = True
            raise error

    def resolve(self, api, configuration):
        try:
            presets = api.call("GET", "/presets/servers", attempts=2).get("server_presets") or []
        except CloudError as exc:
            return [(False, "preset_id: the presets cannot be listed: %s" % api_fix(exc))]
        known = set(p.get("id") for p in presets if isinstance(p, dict))
        wanted = configuration["preset_id"]
        return [(preset in known, "preset_id %s: %s" % (preset, "known to Timeweb" if preset
                                                        in known else "unknown to Timeweb (write "
                                                        "one GET /presets/servers lists)"))
                for preset in (wanted if isinstance(wanted, list) else [wanted])]

    def ipv4(self, server):
        found = []
        for net in self.field(server, "networks", "array", "server") or []:
            if self.field(net, "type", "string", "server.networks[]") != "public":
                continue
            for ip in self.field(net, "ips", "array", "server.networks[].ips") or []:
                if (self.field(ip, "type", "string", "server.networks[].ips[]") == "ipv4"
                        and ip.get("ip")):
                    found.append(ip)
        found.sort(key=lambda ip: not ip.get("is_main"))
        return found[0]["ip"] if found else None

    def error_text(self, answer):
        """Never raises: any other body gives what it can (see HetznerBackend's)."""
        if not isinstance(answer, dict):
            return None, ""
        text = answer.get("message") or ""
        if isinstance(text, list):
            text = "; ".join(str(item) for item in text)
        elif not isinstance(text, str):
            text = str(text)
        if answer.get("response_id"):
            text += " (response_id %s)" % answer["response_id"]
        return answer.get("error_code"), text



class KeystoneToken(CachedToken):
    """An OpenStack Keystone v3 token (POST {auth_url}/auth/tokens), with the public
    endpoints of the token's catalog for the backend's region kept beside it.

    Methods: password (username, password_file/password_env, user_domain_name;
    the project by project_id, or project_name + project_domain_name) or
    application_credential (application_credential_id, its secret in
    application_credential_secret_file/_env: the credential names its project).
    """

    SETTINGS = {"auth_url": ("string", check_api_url),
                "username": ("string", Checker.nonempty),
                "password_file": ("string", Checker.nonempty),
                "password_env": ("string", Checker.nonempty),
                "user_domain_name": ("string", Checker.nonempty),
                "project_id": ("string", Checker.nonempty),
                "project_name": ("string", Checker.nonempty),
                "project_domain_name": ("string", Checker.nonempty),
                "application_credential_id": ("string", Checker.nonempty),
                "application_credential_secret_file": ("string", Checker.nonempty),
                "application_credential_secret_env": ("string", Checker.nonempty),
                "region": ("string", Checker.nonempty)}
    SERVICES = (("compute", ("compute",)), ("network", ("network",)),
                ("image", ("image",)), ("volume", ("volumev3", "block-storage")))

    @classmethod
    def validate_settings(cls, settings, path, check, defaults=None):
        merged = dict(defaults or {}, **settings)
        if "auth_url" not in merged:
            check.add(path, "missing key 'auth_url' (the Keystone v3 URL, e.g. "
                            "https://keystone.example.com:5000/v3)")
        if "application_credential_id" in settings:
            check_secret_source(check, settings, path, "application_credential_secret",
                                "application credential's secret")
            for key in ("username", "password_file", "password_env", "project_id",
                        "project_name"):
                if key in settings:
                    check.add(path, "%r does not go with application_credential_id (the "
                                    "credential names its user and project)" % key)
            return
        check_secret_source(check, settings, path, "password", "password")
        for key in ("username", "user_domain_name"):
            if key not in merged:
                check.add(path, "missing key %r (or application_credential_id)" % key)
        if ("project_id" in merged) == ("project_name" in merged):
            check.add(path, "needs exactly one of 'project_id' or 'project_name' (the "
                            "project the servers are made in)")

    def setting(self, key):
        return self.backend.setting(key)

    def ready(self):
        self.credentials()

    def credentials(self):
        """The "identity" part of the login request (reads the secret file)."""
        if self.setting("application_credential_id"):
            text, where = read_secret(self.backend, "application_credential_secret",
                                      "application credential's secret")
            secret = one_line_secret(text, where, "application credential secret")
            return {"methods": ["application_credential"], "application_credential": {
                "id": self.setting("application_credential_id"), "secret": secret}}
        text, where = read_secret(self.backend, "password", "password")
        password = text.rstrip("\r\n")
        if not password or "\n" in password:
            raise ProviderError(E_CONFIG, "%s holds no password (one line)" % where)
        return {"methods": ["password"], "password": {"user": {
            "name": self.setting("username"), "password": password,
            "domain": {"name": self.setting("user_domain_name")}}}}

    def scope(self):
        if self.setting("application_credential_id"):
            return None
        if self.setting("project_id"):
            return {"project": {"id": self.setting("project_id")}}
        return {"project": {"name": self.setting("project_name"), "domain": {
            "name": self.setting("project_domain_name") or self.setting("user_domain_name")}}}

    def identity(self):
        return json.dumps([self.setting(key) for key in sorted(self.SETTINGS)])

    def login(self):
        request = {"auth": {"identity": self.credentials()}}
        if self.scope():
            request["auth"]["scope"] = self.scope()
        api = CloudAPI(self.backend, None, self.setting("auth_url"))
        identity = request["auth"]["identity"]          # an error quoting these shows ********
        api.secrets = [identity.get("password", {}).get("user", {}).get("password"),
                       identity.get("application_credential", {}).get("secret")]
        try:
            answer = api.call("POST", "/auth/tokens", body=request, create=False)
        except CloudError as exc:
            if exc.status == 401:
                exc.message += ("; check username, password, user_domain_name and the "
                               "project (or the application credential)")
            raise
        token = api.reply_headers.get("X-Subject-Token") or ""
        body = answer.get("token") if isinstance(answer.get("token"), dict) else {}
        expires, issued = parse_utc(body.get("expires_at")), parse_utc(body.get("issued_at"))
        if not token or any(ord(ch) <= 32 or ord(ch) >= 127 for ch in token) or expires is None:
            raise CloudError("%s: POST /auth/tokens answered without a usable token "
                             "(X-Subject-Token, token.expires_at)" % self.backend.LABEL)
        if issued is not None:       # the token's lifetime, counted on our own clock
            expires = time.time() + expires - issued
        project = body.get("project") if isinstance(body.get("project"), dict) else {}
        extra = {"project": printable(str(project.get("name") or project.get("id") or ""), 64)}
        extra.update(self.endpoints(body.get("catalog")))
        return token, expires, extra

    def endpoints(self, catalog):
        """{service: public URL in our region}; raises when the region is ambiguous."""
        region, found, regions = self.setting("region"), {}, set()
        for service in catalog if isinstance(catalog, list) else []:
            if not isinstance(service, dict):
                continue
            for name, types in self.SERVICES:
                if service.get("type") not in types or name in found:
                    continue
                points = service.get("endpoints")
                for point in points if isinstance(points, list) else []:
                    if (not isinstance(point, dict) or point.get("interface") != "public"
                            or not isinstance(point.get("url"), str)):
                        continue
                    where = point.get("region_id") or point.get("region")
                    regions.add(str(where))
                    if region is None or region in (point.get("region_id"),
                                                    point.get("region")):
                        found.setdefault(name, []).append(point["url"])
        if region is None and len(regions) > 1:
            raise ProviderError(E_CONFIG, "the %s catalog has endpoints in several regions "
                                "(%s): set backend.region" % (
                                    self.backend.LABEL, ", ".join(sorted(regions))))
        return dict((name, urls[0]) for name, urls in found.items())

    def headers(self, token):
        return {"X-Auth-Token": token}

    def source(self):
        who = self.setting("application_credential_id") or self.setting("username")
        scope = self.setting("project_id") or self.setting("project_name") or "its project"
        return "Keystone %s as %s, project %s" % (self.setting("auth_url"), who, scope)


def version_tuple(text):
    """A microversion "2.67" as (2, 67), to compare; None for anything else."""
    parts = text.split(".") if isinstance(text, str) else ()
    if len(parts) != 2 or not all(part.isdigit() for part in parts):
        return None
    return int(parts[0]), int(parts[1])


def check_security_groups(checker, value, path):
    """Security groups by name: a non-empty list of names (Nova's create takes names)."""
    if not value:
        checker.add(path, "must name at least one security group (e.g. [\"ssh\"])")
    for index, name in enumerate(value):
        where = "%s[%d]" % (path, index)
        if checker.is_a(name, "string", where) and not 0 < len(name.strip()) <= 255:
            checker.add(where, "must be a security group's name (1 to 255 characters)")


def check_network_ids(checker, value, path):
    """More networks for a server (Neutron network ids)."""
    if not value:
        checker.add(path, "must name at least one network id")
    for index, item in enumerate(value):
        where = "%s[%d]" % (path, index)
        if checker.is_a(item, "string", where) and not item.strip():
            checker.add(where, "must not be empty")


def check_microversion(checker, value, path):
    """A Nova microversion ("2.67", "latest"): it goes into a request header."""
    import re
    if not re.match(r"(?:[0-9]{1,3}\.[0-9]{1,4}|latest)\Z", value):
        checker.add(path, "must be a compute API microversion such as \"2.67\" or \"latest\"")


NOVA_ERRORS = ("badRequest", "itemNotFound", "forbidden", "overLimit", "conflictingRequest",
               "computeFault", "serviceUnavailable", "badMethod", "notImplemented",
               "unauthorized", "HTTPNotAcceptable")


class OpenStackBackend(CloudBackend):
    """OpenStack: Keystone v3 + Nova + Neutron + Glance (Selectel, VK Cloud, any
    OpenStack cloud). Servers carry metadata (owner, task); the endpoints come
    from the token's catalog. Presets are subclasses that only change DEFAULTS."""

    TYPE = "openstack"
    LABEL = "OpenStack"
    AUTH = KeystoneToken
    CHECK_PATH = "/flavors"
    MAX_USER_DATA = 49149          # Nova takes 65535 characters of base64: 4 * 16383
    DEFAULTS = {}
    # the lowest compute microversion with each feature a create body may use (openstack/nova
    # nova/api/openstack/compute/rest_api_version_history.rst): networks "auto"/"none" 2.37,
    # a block device's volume_type 2.67; the rest of the body (an explicit network list,
    # metadata, user_data, availability_zone, block_device_mapping_v2) is in 2.1, the base
    BASE_MICROVERSION = "2.1"
    SETTINGS = dict(dict((k, v) for k, v in CloudBackend.COMMON_SETTINGS.items()
                         if k != "api_url"), compute_url=("string", check_api_url),
                    network_url=("string", check_api_url), image_url=("string", check_api_url),
                    compute_microversion=("string", check_microversion),
                    security_groups=("array", check_security_groups),
                    server_group=("string", Checker.nonempty),
                    networks=("array", check_network_ids), address=("string", check_address),
                    **KeystoneToken.SETTINGS)
    PARAMETERS = dict(CloudBackend.PARAMETERS, flavor=alternatives("string", Checker.nonempty),
                      image=("string", Checker.nonempty), network_id=("string", Checker.nonempty),
                      availability_zone=alternatives("string", Checker.nonempty),
                      volume_size=("integer", Checker.positive),
                      volume_type=("string", Checker.nonempty),
                      floating_network_id=("string", Checker.nonempty),
                      security_groups=("array", check_security_groups),
                      # cluster networking (issue 27): more networks, a server group
                      server_group=("string", Checker.nonempty),
                      networks=("array", check_network_ids), address=("string", check_address))
    REQUIRED = ("flavor", "image")
    FALLBACKS = ("flavor", "availability_zone")
    # Nova's api-ref "Server status": ERROR and the deleted ones are final; the ones in
    # STOPPED wait for a person's action (start, resume, unpause, unshelve, unrescue, a
    # resize's confirm) and never turn ACTIVE by themselves; the rest are transitional
    ACTIVE, FAILED = ("ACTIVE",), ("ERROR", "DELETED", "SOFT_DELETED")
    STOPPED = ("SHUTOFF", "SUSPENDED", "PAUSED", "SHELVED", "SHELVED_OFFLOADED", "RESCUE",
               "VERIFY_RESIZE")
    # POST /servers answers 202 once the server's record exists, but behind a load balancer
    # a create cut off by a 504 may still be carried out later (seen: 40 s): 600 s
    LATE_CREATE = 600
    PAGE = 100
    microversion_now = None         # the create's, once negotiated (request_headers)
    # `check`'s word on a server left in the project's "default" security group: Neutron's
    # default group admits ingress only from its own members (neutron api-ref "Security
    # groups"; docs.openstack.org neutron "Security groups")
    DEFAULT_GROUP = ("the server joins the project's \"default\" group, which in a stock "
                     "OpenStack admits only its own members: SSH from this master may not "
                     "answer and the order end at ready_timeout; name a group that allows "
                     "TCP port 22 from this host (docs/backends/openstack.md)")
    NETWORK_NEEDED = False          # True: no Neutron auto-allocated topology ("auto")

    @property
    def api_url(self):
        """Where the servers are: the compute endpoint once known (no login for
        it), else the auth_url (messages, `check`)."""
        extra = (self.auth.entry or {}).get("extra") or {}
        return self.setting("compute_url") or extra.get("compute") or self.setting("auth_url")

    @api_url.setter
    def api_url(self, value):
        pass                            # CloudBackend's api_url setting: not OpenStack's

    @classmethod
    def validate_settings(cls, settings, path, check):
        cls.AUTH.validate_settings(settings, path, check, cls.DEFAULTS)

    @classmethod
    def validate_configuration(cls, configuration, path, check):
        super(OpenStackBackend, cls).validate_configuration(configuration, path, check)
        if "volume_type" in configuration and "volume_size" not in configuration:
            check.add(path, "'volume_type' needs 'volume_size' (the boot volume's GB)")
        if cls.NETWORK_NEEDED and configuration.get("network_id", "auto") in ("auto", "none"):
            check.add(path, "%s: a %s backend needs 'network_id', the id of the network its "
                            "servers join (%s has no auto-allocated network; `openstack "
                            "network list` shows the ids)" % (
                                "'network_id' %s is not allowed" % configuration["network_id"]
                                if "network_id" in configuration else "missing key "
                                "'network_id'", cls.TYPE, cls.LABEL))

    def setting(self, key):
        return self.settings.get(key, self.DEFAULTS.get(key))

    def endpoint(self, service):
        """The base URL of a service: its *_url setting, else the token's catalog."""
        url = self.setting(service + "_url")
        if not url:                     # from the catalog: an answer, not the admin's
            url = self.auth.extra().get(service)
            if url:
                return answer_url(url, self.setting("auth_url"), "%s: the catalog's %s "
                                  "endpoint" % (self.LABEL, service))
            raise ProviderError(E_CONFIG, "the %s catalog has no public %s endpoint%s: set "
                                "backend.%s_url" % (self.LABEL, service, " in region " +
                                                    self.setting("region") if
                                                    self.setting("region") else "", service))
        problem = Checker()
        check_api_url(problem, url, "%s endpoint %s" % (service, url))
        if problem.problems:
            raise ProviderError(E_UNSAFE, "%s: %s" % (self.LABEL, problem.problems[0]))
        return url

    def api(self, base=None):
        return CloudAPI(self, self.auth, base or self.endpoint("compute"))

    def request_headers(self):
        """The microversion a create negotiated (or compute_microversion): the other
        services ignore it; without one Nova answers as its base, 2.1."""
        version = self.setting("compute_microversion") or self.microversion_now
        if not version:
            return {}
        return {"OpenStack-API-Version": "compute " + version,
                "X-OpenStack-Nova-API-Version": version}

    def features(self, configuration):
        """[(the setting, the microversion it needs)] of a create of configuration."""
        used = []
        network = configuration.get("network_id", "auto")
        if network in ("auto", "none"):
            used.append(("network_id %s" % network, "2.37"))
        if configuration.get("volume_type"):
            used.append(("volume_type", "2.67"))
        return used

    def microversion(self, api, configuration):
        """The lowest microversion with every feature the create uses; a feature the
        cloud's compute API does not serve is a config error naming the setting."""
        if self.setting("compute_microversion"):
            return self.setting("compute_microversion")     # the admin's: sent as it is
        used = self.features(configuration)
        most = self.compute_version(api) if self.offline is None else None
        for feature, version in used:
            if most is not None and version_tuple(version) > version_tuple(most):
                raise ProviderError(E_CONFIG, "configuration %s: %s needs compute API "
                                    "microversion %s; %s's compute API serves at most %s (%s)"
                                    % (configuration.get("id"), feature, version, self.LABEL,
                                       most, "set network_id to a network's id: `openstack "
                                       "network list`" if feature.startswith("network_id")
                                       else "remove volume_type: the cloud's default type"))
        return max([version for _, version in used] + [self.BASE_MICROVERSION],
                   key=version_tuple)

    def microversion_text(self, api, configuration):
        version = self.microversion(api, configuration)
        most = self.compute_version(api)
        return "%s (%s)" % (version, "compute_microversion" if self.setting(
            "compute_microversion") else "the compute API serves up to %s" % most if most
            else "the compute API does not say which it serves")

    def compute_version(self, api):
        """The highest microversion the compute API serves, from its version document
        (GET of the compute base with its "/": {"version": {"version": "2.96",
        "min_version": "2.1"}}, nova api-ref "API Versions"; the base without "/" is a
        redirect to it, nova/api/openstack/compute/routes.py; "" there: no microversions,
        the base 2.0), read once per token and kept in the token's extra; None when the
        document does not say."""
        extra = self.auth.extra()
        if "compute_version" not in extra:
            try:
                answer = api.call("GET", "/", attempts=2)
            except CloudError as exc:
                if exc.status is None or exc.status >= 500 or exc.status == 401:
                    raise
                answer = {}             # no version document here: the create will say
            version = answer.get("version") if isinstance(answer.get("version"), dict) else {}
            said = version.get("version")
            extra["compute_version"] = "2.0" if said == "" else (
                said if version_tuple(said) else None)
            if self.auth.entry is not None and self.auth.entry.get("extra") is extra:
                self.auth.save(self.auth.entry)
        return extra["compute_version"]

    def service(self, name, version):
        """A client of Neutron ("network", "v2.0") or Glance ("image", "v2")."""
        base = self.endpoint(name).rstrip("/")
        return self.api(base if base.endswith("/" + version) else base + "/" + version)

    # -- the create request -------------------------------------------------

    def metadata(self, task):
        return {"managed-by": "provider.py", "bx-owner": task["data"]["owner"],
                "bx-task": task["id"]}

    def create_body(self, task, configuration, user_data):
        import base64
        api = self.api() if self.offline is None else None
        self.microversion_now = self.microversion(api, configuration)
        flavor = configuration["flavor"]
        server = {"name": task["data"]["name"], "metadata": self.metadata(task),
                  "flavorRef": self.resolved("flavor %s" % flavor, self.flavor_id, api, flavor),
                  "user_data": base64.b64encode(user_data.encode("utf-8")).decode("ascii")}
        network = configuration.get("network_id", "auto")
        server["networks"] = network if network in ("auto", "none") else [{"uuid": network}]
        more = self.cluster(configuration, "networks")
        if more:            # nova schemas/servers.py: a list of {"uuid": ...}
            server["networks"] = [{"uuid": n} for n in more] if network in (
                "auto", "none") else server["networks"] + [{"uuid": n} for n in more]
        if configuration.get("availability_zone"):
            server["availability_zone"] = configuration["availability_zone"]
        groups = self.security_groups(configuration)
        if groups:          # nova schemas/servers.py: [{"name": ...}]; none: "default"
            server["security_groups"] = [{"name": name} for name in groups]
        image = self.resolved("image %s" % configuration["image"], self.image_id,
                              configuration["image"])
        if configuration.get("volume_size"):
            volume = {"boot_index": 0, "uuid": image, "source_type": "image",
                      "destination_type": "volume", "volume_size": configuration["volume_size"],
                      "delete_on_termination": True}
            if configuration.get("volume_type"):
                volume["volume_type"] = configuration["volume_type"]
            server["block_device_mapping_v2"] = [volume]
        else:
            server["imageRef"] = image
        body = {"server": server}
        group = self.cluster(configuration, "server_group")
        if group:           # nova schemas/servers.py: os:scheduler_hints beside server
            body["os:scheduler_hints"] = {"group": self.resolved(
                "server group %s" % group, self.server_group_id, api, group)}
        return body

    def cluster(self, configuration, key):
        """A cluster setting: the configuration's, else the backend's, else None."""
        return configuration.get(key, self.settings.get(key))

    def server_group_id(self, api, group):
        """A server group's id from its id or name: GET /os-server-groups has no name
        filter (nova api-ref "List Server Groups"), so the list is read and matched."""
        groups = self.field(api.call("GET", "/os-server-groups"), "server_groups", "array",
                            "GET /os-server-groups") or []
        for key in ("id", "name"):
            for item in groups:
                if isinstance(item, dict) and item.get(key) == group and item.get("id"):
                    return item["id"]
        raise ProviderError(E_CONFIG, "%s has no server group %s (GET /os-server-groups "
                            "lists %s)" % (self.LABEL, printable(group), ", ".join(sorted(
                                printable(str(g.get("name")), 40) for g in groups
                                if isinstance(g, dict))[:30]) or "none"))

    def private_address(self, server, configuration):
        """The IPv4 in the first of networks, else network_id, found in addresses under
        that network's name as Neutron names it (GET /v2.0/networks/ID); None: none yet."""
        network = (self.cluster(configuration, "networks") or [None])[0] or configuration.get(
            "network_id")
        if not network or network in ("auto", "none"):
            return None
        cache = self.__dict__.setdefault("network_names", {})
        if network not in cache:
            answer = self.service("network", "v2.0").call("GET", "/networks/%s" % urllib_quote(
                network))
            cache[network] = (answer.get("network") or {}).get("name")
        entries = (server.get("addresses") or {}).get(cache[network]) or []
        found = [e.get("addr") for e in entries if isinstance(e, dict) and e.get("version") == 4
                 and e.get("OS-EXT-IPS:type") != "floating"]
        return found[0] if found else None

    def all_ipv4(self, server):
        addresses = server.get("addresses") if isinstance(server.get("addresses"), dict) else {}
        return [e["addr"] for entries in addresses.values() if isinstance(entries, list)
                for e in entries if isinstance(e, dict) and e.get("version") == 4
                and isinstance(e.get("addr"), str)]

    def security_groups(self, configuration):
        """The configuration's security_groups, else the backend's, else []."""
        return configuration.get("security_groups", self.settings.get("security_groups")) or []

    def flavor_id(self, api, flavor):
        flavors = self.field(api.call("GET", "/flavors"), "flavors", "array",
                             "GET /flavors") or []
        for key in ("id", "name"):
            for item in flavors:
                if isinstance(item, dict) and item.get(key) == flavor:
                    return item["id"]
        names = sorted(printable(str(f.get("name")), 40) for f in flavors if isinstance(f, dict))
        raise ProviderError(E_CONFIG, "%s has no flavor %s (GET /flavors lists %s)" % (
            self.LABEL, printable(flavor), ", ".join(names[:30]) + (
                ", ... (%d in all)" % len(names) if len(names) > 30 else "") or "none"))

    def image_id(self, image):
        """An image's id from its id or name (the newest active one of that name)."""
        glance = self.service("image", "v2")
        try:
            found = glance.call("GET", "/images/" + urllib_quote(image))
            if found.get("id") == image:
                return image
        except CloudError as exc:
            if exc.status not in (400, 404):
                raise
        images = [i for i in self.field(glance.call("GET", "/images", query={
            "name": image, "status": "active"}), "images", "array", "GET /images") or []
            if isinstance(i, dict)]
        images.sort(key=lambda i: str(i.get("created_at")), reverse=True)
        if not images or not images[0].get("id"):
            raise ProviderError(E_CONFIG, "%s has no active image %s (an id or a name)"
                                % (self.LABEL, printable(image)))
        return images[0]["id"]

    # -- what the API says about a server -----------------------------------

    def find(self, api, task, attempts=RETRY_ATTEMPTS):
        """Every server of the task's name (Nova allows a name twice: a late create and
        its retry); lookup() keeps those carrying the task's metadata."""
        import re
        servers = api.call("GET", self.SERVERS + "/detail", query={
            "name": "^%s$" % re.escape(task["data"]["name"])}, attempts=attempts)
        return self.field(servers, "servers", "array", "the answer") or []

    def owns(self, server, task):
        metadata = server.get("metadata")
        return CloudBackend.owns(self, server, task) and isinstance(metadata, dict) and all(
            metadata.get(key) == value for key, value in self.metadata(task).items())

    def being_deleted(self, server):
        """DELETED or SOFT_DELETED, or still ACTIVE with the task state "deleting" (Nova's
        api-ref, "Server status" and OS-EXT-STS:task_state)."""
        return (server.get("status") in ("DELETED", "SOFT_DELETED")
                or server.get("OS-EXT-STS:task_state") == "deleting")

    def describe(self, server):
        said = server.get("status") or "unknown"
        if said in self.FAILED:
            fault = server.get("fault") if isinstance(server.get("fault"), dict) else {}
            if fault.get("message"):
                said = "%s (%s)" % (said, printable(str(fault["message"]), 200))
            return "failed", said
        if said in self.STOPPED:
            return "failed", "%s (it will not boot by itself)" % said
        return ("running" if said in self.ACTIVE else "booting"), said

    def ipv4(self, server):
        """A floating address first, then any IPv4 that is not a private one."""
        found = []
        addresses = server.get("addresses") if isinstance(server.get("addresses"), dict) else {}
        for entries in addresses.values():
            for entry in entries if isinstance(entries, list) else []:
                if (isinstance(entry, dict) and entry.get("version") == 4
                        and entry.get("addr") is not None and not private_ipv4(entry["addr"])):
                    rank = (entry.get("OS-EXT-IPS:type") != "floating", len(found))
                    found.append(rank + (entry["addr"],))    # any value: check_server judges
        return min(found)[2] if found else None

    def public_address(self, api, task, server):
        """With floating_network_id: a floating IP on the server's port, made once
        (a lost answer is found again by the port)."""
        task = dict(task, data=dict(task["data"], ipv4_all=self.all_ipv4(server)))
        configuration = self.task_configuration(task)
        if self.cluster(configuration, "address") == "private":
            return self.private_address(server, configuration), task["data"]
        configuration_network = task["data"].get("floating_network_id")
        if not configuration_network:
            return self.ipv4(server), task["data"]
        data = task["data"]
        if data.get("floating_ip"):
            return data["floating_ip"], data
        neutron = self.service("network", "v2.0")
        port, ips = self.port_floating_ips(neutron, data["server_id"])
        if port is None:
            return None, data
        if not ips:
            try:
                ips = [neutron.call("POST", "/floatingips", body={"floatingip": {
                    "floating_network_id": configuration_network, "port_id": port,
                    "description": "provider.py owner=%s task=%s" % (data["owner"],
                                                                     task["id"])}}
                ).get("floatingip") or {}]
            except CloudError as exc:
                exc.final = (exc.api_code or "").startswith("quota")
                raise
        address, fip = ips[0].get("floating_ip_address"), safe_server_id(ips[0].get("id"))
        if not address or not fip:
            return None, data
        self.log.write("floating_ip", task["id"], floating_ip=address, floating_ip_id=fip)
        return address, dict(data, floating_ip=address, floating_ip_id=fip)

    def place(self, task, configuration, state):
        CloudBackend.place(self, task, configuration, state)
        if configuration.get("floating_network_id"):
            task["data"]["floating_network_id"] = configuration["floating_network_id"]

    @staticmethod
    def port_floating_ips(neutron, server_id):
        """(the server's first port id or None, the floating IPs on that port)."""
        ports = [port for port in neutron.call("GET", "/ports", query={
            "device_id": server_id}).get("ports") or [] if isinstance(port, dict)]
        if not ports or not ports[0].get("id"):
            return None, []
        ips = neutron.call("GET", "/floatingips", query={"port_id": ports[0]["id"]}).get(
            "floatingips") or []
        return ports[0]["id"], [ip for ip in ips if isinstance(ip, dict)
                                and safe_server_id(ip.get("id"))]     # it goes into a path

    def our_floating_ips(self, task):
        """[(id, address)] to release with the server: the one the task made, else
        those on the server's port that carry our description (an orphan's, or
        one whose answer was lost). Looked up before the server (and its port) goes."""
        data = task["data"]
        if data.get("floating_ip_id"):
            return [(data["floating_ip_id"], data.get("floating_ip"))]
        mark = "provider.py owner=%s " % data.get("owner")
        try:
            ips = self.port_floating_ips(self.service("network", "v2.0"), data["server_id"])[1]
        except ProviderError as exc:     # no Neutron to ask: the server still goes
            self.log.debug("no floating IPs looked up for %s: %s" % (data["server_id"],
                                                                     exc.message))
            return []
        return [(safe_server_id(ip["id"]), ip.get("floating_ip_address")) for ip in ips
                if str(ip.get("description") or "").startswith(mark)]

    def delete_server(self, task):
        floating = self.our_floating_ips(task)
        text = CloudBackend.delete_server(self, task)
        for fip, address in floating:
            try:
                self.service("network", "v2.0").call("DELETE", "/floatingips/" + fip)
                text += "; floating IP %s released" % address
            except CloudError as exc:
                if exc.status != 404:
                    raise CloudError("%s; the floating IP %s was not released: %s" % (
                        text, address, exc.message))
        return text

    # -- errors -----------------------------------------------------------------

    def error_text(self, answer):
        """Nova {"badRequest": {"code", "message"}}, Keystone {"error": {"code",
        "message", "title"}}, Neutron {"NeutronError": {"type", "message"}}; a
        quota refusal is named as such. Never raises."""
        if not isinstance(answer, dict) or len(answer) != 1:
            text = answer.get("message") if isinstance(answer, dict) else None
            return None, text if isinstance(text, str) else ""
        (key, error), = answer.items()
        if not isinstance(error, dict):
            return None, error if isinstance(error, str) else ""
        text = error.get("message") or error.get("title") or ""
        text = text if isinstance(text, str) else str(text)
        if key == "error":
            code = str(error.get("title") or "error").lower()
        elif key == "NeutronError":
            code = str(error.get("type") or key)
        else:
            code = key
        if "quota" in text.lower() or code == "OverQuota":
            entry = self.auth.entry or {}
            project = (entry.get("extra") or {}).get("project")
            code = "quota exceeded" + (" in project %s" % project if project else "")
        return code, text

    def rate_limited(self, status, answer):
        """429, or Nova's overLimit with retryAfter that is not a quota."""
        error = answer.get("overLimit") if isinstance(answer, dict) else None
        error = error if isinstance(error, dict) else {}
        if "quota" in str(error.get("message", "")).lower():
            return None
        if status == 429 or (status == 413 and "retryAfter" in error):
            try:
                return min(max(0.0, float(error.get("retryAfter", 0))), MAX_RETRY_WAIT)
            except (TypeError, ValueError):
                return 0
        return None

    # -- check ----------------------------------------------------------------

    def check(self, configurations, state):
        report = CloudBackend.check(self, configurations, state)
        report.extend((WARN, "configuration %s: %s: %s" % (
            configuration["id"], "security_groups names only \"default\"" if groups else
            "no security_groups", self.DEFAULT_GROUP)) for configuration in configurations
            for groups in [self.security_groups(configuration)]
            if not groups or set(groups) == {"default"})
        if self.auth.entry is None:
            return report               # no login: no catalog to show
        report.extend(self.endpoints_report())
        if not any(ok and text.endswith("accepts the token") for ok, text in report):
            return report               # the API refuses: nothing to look up
        for configuration in configurations:
            report.extend((ok, "configuration %s: %s" % (configuration["id"], text))
                          for ok, text in self.resolve(self.api(), configuration))
        groups = sorted(set(group for configuration in configurations
                            for group in self.security_groups(configuration)))
        return report + ([self.groups_report(groups)] if groups else [])

    def groups_report(self, groups):
        """`check`: the security groups the configurations name, as Neutron lists the
        project's (GET /v2.0/security-groups, neutron api-ref "List security groups"); Nova
        takes a group's name or id and refuses the create for any other."""
        try:
            answer = self.service("network", "v2.0").call("GET", "/security-groups",
                                                          attempts=2)
            listed = self.field(answer, "security_groups", "array", "GET /security-groups")
        except ProviderError as exc:
            return False, "security groups: cannot be listed: %s" % exc.message
        known = set(str(item.get(key)) for item in listed or [] if isinstance(item, dict)
                    for key in ("id", "name"))
        missing = [group for group in groups if group not in known]
        if missing:
            return False, ("security groups %s: the project has none of that name or id "
                           "(GET /v2.0/security-groups): the create would be refused; make "
                           "it, or name one it lists" % printable(", ".join(missing)))
        return True, "security groups %s: known to %s" % (printable(", ".join(groups)),
                                                          self.LABEL)

    def check_api(self, configurations):
        try:
            self.endpoint("compute")
        except ProviderError as exc:    # a catalog's endpoint refused: no request sent
            self.unreachable(exc)
            return [(False, exc.message)]
        return CloudBackend.check_api(self, configurations)

    def create_url(self):
        if self.setting("compute_url"):
            return self.endpoint("compute").rstrip("/") + self.SERVERS
        return self.resolved("the catalog's compute endpoint", lambda: self.endpoint(
            "compute").rstrip("/")) + self.SERVERS

    def endpoints_report(self):
        """Every endpoint the token can go to, with where it comes from (a setting or
        the catalog); a refused one is a FAIL line of its own."""
        used, report = [], []
        for name, _ in KeystoneToken.SERVICES:
            source = name + "_url" if self.setting(name + "_url") else "catalog"
            url = self.setting(name + "_url") or self.auth.extra().get(name)
            if not url:
                continue
            try:
                self.endpoint(name)
                used.append("%s %s (%s)" % (name, printable(url, 200), source))
            except ProviderError as exc:
                report.append((False, exc.message))
        used.append("identity %s (auth_url)" % printable(self.setting("auth_url"), 200))
        return [(True, "endpoints: " + ", ".join(used))] + report

    # -- guardrails: fallbacks, --dry-run, `servers` -------------------------------

    def resolve(self, api, configuration):
        """The flavors, image and networks a configuration names, each (ok, text)."""
        lines = []
        flavors = configuration["flavor"]
        for flavor in flavors if isinstance(flavors, list) else [flavors]:
            lines.append(self.looked_up("flavor %s" % flavor, self.flavor_id, api, flavor))
        lines.append(self.looked_up("image %s" % configuration["image"], self.image_id,
                                    configuration["image"]))
        lines.append(self.looked_up("the compute microversion", self.microversion_text, api,
                                    configuration))
        for key in ("network_id", "floating_network_id"):
            network = configuration.get(key)
            if network and network not in ("auto", "none"):
                lines.append(self.looked_up("%s %s" % (key, network), self.network_name,
                                            network))
        for network in self.cluster(configuration, "networks") or []:
            lines.append(self.looked_up("networks: %s" % network, self.network_name, network))
        group = self.cluster(configuration, "server_group")
        if group:
            lines.append(self.looked_up("server_group %s" % group, self.server_group_id,
                                        api, group))
        if self.cluster(configuration, "address") == "private":
            lines.extend(self.private_report(configuration))
        return lines

    def private_report(self, configuration):
        """address private: is this master in one of the network's subnets (Neutron
        GET /v2.0/subnets?network_id=: subnets[].cidr)?"""
        network = (self.cluster(configuration, "networks") or [None])[0] or configuration.get(
            "network_id")
        if not network or network in ("auto", "none"):
            return [(False, "address private: name the network (network_id or networks)")]
        try:
            answer = self.service("network", "v2.0").call(
                "GET", "/subnets", query={"network_id": network}, attempts=2)
        except ProviderError as exc:
            return [(False, "address private: the subnets of %s: %s" % (network, exc.message))]
        cidrs = [str(item.get("cidr")) for item in answer.get("subnets") or []
                 if isinstance(item, dict) and item.get("ip_version") == 4]
        return [master_in_network(network, cidrs)]

    @staticmethod
    def looked_up(what, look_up, *args):
        try:
            return True, "%s is %s" % (what, look_up(*args))
        except ProviderError as exc:
            return False, "%s: %s" % (what, exc.message)

    def network_name(self, network):
        found = self.service("network", "v2.0").call(
            "GET", "/networks/" + urllib_quote(network), attempts=2).get("network") or {}
        return "network %s" % printable(str(found.get("name")), 60)

    def capacity_error(self, exc):
        """Nova refuses a zone or flavor it cannot serve now with 400/409 ("... is
        not available"); a quota is never capacity."""
        return (not exc.uncertain and not (exc.api_code or "").startswith("quota")
            and CloudBackend.capacity_error(self, exc))

    def owned_servers(self, api):
        """Nova cannot filter by metadata: page through servers/detail, keep ours."""
        def page(marker):
            query = {"limit": self.PAGE}
            if marker:
                query["marker"] = marker
            listed = api.call("GET", self.SERVERS + "/detail", query=query).get("servers")
            servers = [server for server in (listed if isinstance(listed, list) else [])
                       if isinstance(server, dict)]
            last = safe_server_id(servers[-1].get("id")) if servers else None
            return servers, (last if len(servers) >= self.PAGE else None)
        return [server for server in paged_listing(self.LABEL, page)
                if isinstance(server.get("metadata"), dict)
                and server["metadata"].get("managed-by") == "provider.py"]

    def task_of(self, server):
        metadata = server.get("metadata") if isinstance(server.get("metadata"), dict) else {}
        return metadata.get("bx-task")

    def tag_of(self, server):
        metadata = server.get("metadata") if isinstance(server.get("metadata"), dict) else {}
        return metadata.get("bx-owner")


class SelectelBackend(OpenStackBackend):
    """Selectel cloud servers: user_domain_name is the account number, projects
    live in the same domain, servers boot from network volumes (volume_size)."""

    TYPE = "selectel"
    LABEL = "Selectel"
    DEFAULTS = dict(OpenStackBackend.DEFAULTS,
                    auth_url="https://cloud.api.selcloud.ru/identity/v3")
    NETWORK_NEEDED = True
    DEFAULT_GROUP = ("Selectel applies security groups only to ports with port security on; "
                     "where it is on, the \"default\" group admits only its own members: "
                     "SSH from this master would not answer; name a group that allows TCP "
                     "port 22 from this host (docs/backends/openstack.md)")


class VKCloudBackend(OpenStackBackend):
    """VK Cloud (formerly Mail.ru Cloud Solutions): users live in the domain
    "users", one region RegionOne (Moscow); projects are given by id."""

    TYPE = "vkcloud"
    LABEL = "VK Cloud"
    # vk-cs/terraform-provider-vkcs vkcs/internal/clients/opts.go (defaults) and VK Cloud's
    # openrc since 2026-02: the identity URL below, the "users" domain, RegionOne
    DEFAULTS = dict(OpenStackBackend.DEFAULTS,
                    auth_url="https://msk.cloud.vk.com/infra/identity/v3/",
                    user_domain_name="users", region="RegionOne")
    NETWORK_NEEDED = True
    # VK Cloud docs, "Traffic limiting" (cloud.vk.com/docs/networks/vnet/concepts/
    # traffic-limiting): the default group admits incoming traffic only from its members
    DEFAULT_GROUP = ("VK Cloud's \"default\" group admits only its own members: SSH from "
                     "this master will not answer and every order ends at ready_timeout; "
                     "name a group that allows TCP port 22 from this host "
                     "(docs/backends/openstack.md, VK Cloud)")


def private_ipv4(text):
    """True for RFC 1918, shared (100.64/10) and link-local IPv4 addresses in
    dotted decimal; anything else is left to check_server."""
    parts = text.split(".") if isinstance(text, str) else ()
    if len(parts) != 4 or not all(p.isdigit() for p in parts):
        return False
    a, b = int(parts[0]), int(parts[1])
    return (a == 10 or (a == 172 and 16 <= b < 32) or (a == 192 and b == 168)
        or (a == 100 and 64 <= b < 128) or (a == 169 and b == 254))


def urllib_quote(text):
    import urllib.parse
    return urllib.parse.quote(text, safe="")


# -- Yandex Cloud's auth: a JWT signed PS256, with the standard library only --

YANDEX_JWT_AUDIENCE = "https://iam.api.cloud.yandex.net/iam/v1/tokens"   # whatever iam_url says
YANDEX_JWT_LIFETIME = 3600      # the most IAM accepts between iat and exp
RSA_ENCRYPTION_OID = b"\x06\x09\x2a\x86\x48\x86\xf7\x0d\x01\x01\x01"  # 1.2.840.113549.1.1.1
PSS_SALT_LENGTH = 32


def der_element(data, offset, what):
    """(tag, content, offset after it) of the DER element at offset."""
    if offset + 2 > len(data):
        raise ValueError("%s ends early" % what)
    tag, length = data[offset], data[offset + 1]
    offset += 2
    if length & 0x80:
        count = length & 0x7f
        if not 0 < count <= 4 or offset + count > len(data):
            raise ValueError("%s has a damaged length" % what)
        length = int.from_bytes(data[offset:offset + count], "big")
        offset += count
    if offset + length > len(data):
        raise ValueError("%s ends early" % what)
    return tag, data[offset:offset + length], offset + length


def der_sequence(data, what):
    """[(tag, content), ...] of the one DER SEQUENCE that is all of data."""
    tag, content, end = der_element(data, 0, what)
    if tag != 0x30 or end != len(data):
        raise ValueError("%s is not a DER sequence" % what)
    items, offset = [], 0
    while offset < len(content):
        tag, value, offset = der_element(content, offset, what)
        items.append((tag, value))
    return items


def rsa_private_key(text):
    """The numbers (n, e, d, p, q, dp, dq, qinv) of the RSA private key in a PEM
    block: PKCS#8 "PRIVATE KEY" (what Yandex writes) or PKCS#1 "RSA PRIVATE KEY".
    Text around the block is ignored. ValueError says what is wrong."""
    import base64
    import binascii
    import re
    match = re.search(r"-----BEGIN (RSA )?PRIVATE KEY-----([^-]*)"
                      r"-----END (RSA )?PRIVATE KEY-----", text)
    if not match or match.group(1) != match.group(3):
        raise ValueError("no -----BEGIN PRIVATE KEY----- ... -----END PRIVATE KEY----- block "
                         "(an encrypted key cannot be used)")
    try:
        der = base64.b64decode("".join(match.group(2).split()).encode("ascii"), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("the PEM block is not base64")
    if not match.group(1):       # PrivateKeyInfo: version, algorithm, OCTET STRING key
        items = der_sequence(der, "the PKCS#8 key")
        if (len(items) < 3 or items[1][0] != 0x30 or items[2][0] != 0x04
                or not items[1][1].startswith(RSA_ENCRYPTION_OID)):
            raise ValueError("the key is not an RSA key")
        der = items[2][1]
    items = der_sequence(der, "the RSA key")
    if len(items) < 9 or any(tag != 0x02 for tag, _ in items[:9]):
        raise ValueError("the RSA key lacks its numbers")
    numbers = [int.from_bytes(value, "big") for _, value in items[1:9]]
    key = dict(zip(("n", "e", "d", "p", "q", "dp", "dq", "qinv"), numbers))
    if not 2048 <= key["n"].bit_length() <= 8192 or key["p"] * key["q"] != key["n"]:
        raise ValueError("the RSA key is damaged, or not 2048 to 8192 bits long")
    if not fitting_rsa_numbers(key):
        raise ValueError("the RSA key is damaged: its numbers do not fit together")
    return key


def fitting_rsa_numbers(key):
    """The CRT numbers pss_sign uses agree with n = p q and e (so it signs right)."""
    p, q, e = key["p"], key["q"], key["e"]
    return (2 < p and 2 < q and 2 < e < key["n"] and key["d"] < key["n"] and
        key["dp"] == key["d"] % (p - 1) and key["dq"] == key["d"] % (q - 1) and
        e * key["dp"] % (p - 1) == 1 and e * key["dq"] % (q - 1) == 1 and
        key["qinv"] * q % p == 1)


def mgf1_sha256(seed, length):
    import hashlib
    out, counter = b"", 0
    while len(out) < length:
        out += hashlib.sha256(seed + counter.to_bytes(4, "big")).digest()
        counter += 1
    return out[:length]


def pss_sign(key, message, salt=None):
    """The RSASSA-PSS signature of message (RFC 8017 8.1.1, 9.1.1): SHA-256,
    MGF1 with SHA-256, a random 32-byte salt; the private-key step by CRT."""
    import hashlib
    modulus = key["n"]
    em_bits = modulus.bit_length() - 1
    em_len = (em_bits + 7) // 8
    salt = os.urandom(PSS_SALT_LENGTH) if salt is None else salt
    digest = hashlib.sha256(b"\0" * 8 + hashlib.sha256(message).digest() + salt).digest()
    block = b"\0" * (em_len - len(salt) - len(digest) - 2) + b"\x01" + salt
    masked = bytearray(a ^ b for a, b in zip(block, mgf1_sha256(digest, len(block))))
    masked[0] &= 0xff >> (8 * em_len - em_bits)
    encoded = int.from_bytes(bytes(masked) + digest + b"\xbc", "big")
    first, second = pow(encoded, key["dp"], key["p"]), pow(encoded, key["dq"], key["q"])
    signature = second + (key["qinv"] * (first - second) % key["p"]) * key["q"]
    if pow(signature, key["e"], modulus) != encoded:    # numbers that do not fit together
        raise ValueError("the RSA key is damaged: its signature does not verify")
    return signature.to_bytes((modulus.bit_length() + 7) // 8, "big")


def base64url(data):
    import base64
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def yandex_jwt(key_id, account_id, key, issued):
    """The signed JWT that Yandex IAM exchanges for an IAM token."""
    parts = ({"typ": "JWT", "alg": "PS256", "kid": key_id},
             {"iss": account_id, "aud": YANDEX_JWT_AUDIENCE, "iat": issued,
              "exp": issued + YANDEX_JWT_LIFETIME})
    signed = ".".join(base64url(json.dumps(part, separators=(",", ":")).encode("utf-8"))
                      for part in parts)
    return signed + "." + base64url(pss_sign(key, signed.encode("ascii")))


# -- Yandex Cloud: an IAM token, then Compute instances and their operations --

YANDEX_TOKEN_PATH = "/iam/v1/tokens"
METADATA_HOST = "169.254.169.254"     # the VM's metadata service: plain http, link-local
YANDEX_METADATA_TOKEN_PATH = "/computeMetadata/v1/instance/service-accounts/default/token"
YANDEX_NAME = r"[a-z0-9][-a-z0-9]{0,62}\Z"      # ids, zones, families, platforms, disk types
# Instance.Status in yandex-cloud/cloudapi compute/v1/instance.proto: these will not run
# by themselves. CRASHED is not among them: "crashed and will be restarted automatically".
YANDEX_STOPPED = ("ERROR", "DELETING", "STOPPING", "STOPPED")
GRPC_CODES = {1: "CANCELLED", 2: "UNKNOWN", 3: "INVALID_ARGUMENT", 4: "DEADLINE_EXCEEDED",
              5: "NOT_FOUND", 6: "ALREADY_EXISTS", 7: "PERMISSION_DENIED",
              8: "RESOURCE_EXHAUSTED", 9: "FAILED_PRECONDITION", 10: "ABORTED",
              11: "OUT_OF_RANGE", 12: "UNIMPLEMENTED", 13: "INTERNAL", 14: "UNAVAILABLE",
              15: "DATA_LOSS", 16: "UNAUTHENTICATED"}
YANDEX_HINTS = {
    16: "the credentials were refused: is the service account key (or OAuth token) still "
        "valid, and not deleted?",
    7: "the service account needs the roles compute.editor, vpc.user and vpc.publicAdmin "
       "on folder %s",
    8: "a quota or a rate limit: see the folder's quotas in the console, or order later",
    3: "the configuration holds a value Yandex Cloud refuses",
    5: "an id in the config names nothing (folder_id, subnet_id, image_id, image_family?)",
    9: "the configuration does not fit together (zone_id and the subnet's zone?)",
}
YANDEX_CAPACITY_CODES = ("RESOURCE_EXHAUSTED", "FAILED_PRECONDITION", "UNAVAILABLE")
GIB = 1 << 30


def yandex_name(text):
    import re
    return isinstance(text, str) and re.match(YANDEX_NAME, text) is not None


def check_yandex_name(checker, value, path):
    if not yandex_name(value):
        checker.add(path, "must be a Yandex Cloud id or name: lowercase letters, digits "
                          "and '-', at most 63")


def check_metadata_url(checker, value, path):
    parts = url_parts(value)
    if not parts or parts.scheme != "http" or parts.hostname != METADATA_HOST:
        check_api_url(checker, value, path)      # only the metadata service itself is http


def check_yandex_ids(checker, value, path):
    """A non-empty list of Yandex Cloud ids (security groups)."""
    if not value:
        checker.add(path, "must name at least one id")
    for index, item in enumerate(value):
        where = "%s[%d]" % (path, index)
        if checker.is_a(item, "string", where):
            check_yandex_name(checker, item, where)


def check_subnets(checker, value, path):
    """A subnet id, or {zone id: subnet id} for a configuration that lists zones."""
    if isinstance(value, str):
        check_yandex_name(checker, value, path)
    for zone, subnet in (value.items() if isinstance(value, dict) else ()):
        check_yandex_name(checker, zone, "%s.%s" % (path, zone))
        if checker.is_a(subnet, "string", "%s.%s" % (path, zone)):
            check_yandex_name(checker, subnet, "%s.%s" % (path, zone))


def as_list(value):
    return value if isinstance(value, list) else [value]


def check_core_fraction(checker, value, path):
    if value not in (5, 20, 50, 100):
        checker.add(path, "must be 5, 20, 50 or 100 (the guaranteed share of a core, in %)")


def dig(value, *keys):
    """value[key][key]...: None where the answer has another shape (a list index is an int)."""
    for key in keys:
        if isinstance(key, int):
            value = value[key] if isinstance(value, list) and len(value) > key else None
        else:
            value = value.get(key) if isinstance(value, dict) else None
    return value


class MetadataFlavor(object):
    """The one header the metadata service wants, sent in place of credentials."""

    def token(self):
        return ""

    def renew(self, stale):
        return None

    def headers(self, token):
        return {"Metadata-Flavor": "Google"}


class YandexIAMToken(CachedToken):
    """An IAM token (lives up to 12 h), got with one of: the service account's
    authorized key (service_account_key_file: a JWT signed with it), a Yandex
    OAuth token (oauth_token_file), or the metadata service of the VM the plugin
    runs on (metadata: true, a service account attached to that VM)."""

    SETTINGS = {"service_account_key_file": ("string", Checker.nonempty),
                "oauth_token_file": ("string", Checker.nonempty),
                "metadata": ("boolean", None),
                "iam_url": ("string", check_api_url),
                "metadata_url": ("string", check_metadata_url)}

    def __init__(self, backend):
        CachedToken.__init__(self, backend)
        settings = backend.settings
        self.iam_url = settings.get("iam_url", "https://iam.api.cloud.yandex.net")
        self.metadata_url = settings.get("metadata_url", "http://" + METADATA_HOST)
        self.method = ("metadata" if settings.get("metadata") else
            "key" if "service_account_key_file" in settings else "oauth")
        self.loaded = None

    @classmethod
    def validate_settings(cls, settings, path, check):
        given = (("service_account_key_file" in settings) + ("oauth_token_file" in settings)
            + (settings.get("metadata") is True))
        if given != 1:
            check.add(path, "needs exactly one of 'service_account_key_file' (the key that "
                            "`yc iam key create` writes), 'oauth_token_file' or "
                            "'metadata': true (the service account of this VM)")

    def credentials(self):
        """("key", key id, account id, RSA numbers) or ("oauth", token); read once."""
        if self.loaded is None and self.method == "key":
            self.loaded = ("key",) + self.read_key()
        elif self.loaded is None and self.method == "oauth":
            self.loaded = ("oauth", one_line_secret(*read_secret(
                self.backend, "oauth_token", "OAuth token"), what="OAuth token"))
        return self.loaded

    def read_key(self):
        text, where = read_secret(self.backend, "service_account_key", "service account key")
        try:
            data = json.loads(text)
        except (ValueError, RecursionError):        # deep nesting: no key either
            data = None
        if (not isinstance(data, dict) or not all(
                yandex_name(data.get(name)) for name in ("id", "service_account_id"))
                or not isinstance(data.get("private_key"), str)):
            raise ProviderError(E_CONFIG, "%s is not an authorized key as `yc iam key create "
                                "--output FILE` writes it (JSON with id, service_account_id, "
                                "private_key)" % where)
        try:
            key = rsa_private_key(data["private_key"])
        except ValueError as exc:
            raise ProviderError(E_CONFIG, "%s: its private_key cannot sign: %s" % (where, exc))
        return data["id"], data["service_account_id"], key

    def ready(self):
        if self.method != "metadata":
            self.credentials()

    def identity(self):
        import hashlib
        if self.method == "metadata":
            return "metadata %s" % self.metadata_url
        given = self.credentials()
        who = ("key %s %s" % given[1:3] if given[0] == "key" else
            "oauth " + hashlib.sha256(given[1].encode("ascii")).hexdigest())
        return "%s %s" % (who, self.iam_url)

    def login(self):
        if self.method == "metadata":
            answer = CloudAPI(self.backend, MetadataFlavor(), self.metadata_url).call(
                "GET", YANDEX_METADATA_TOKEN_PATH)
            token, lifetime = answer.get("access_token"), answer.get("expires_in")
            expires = time.time() + lifetime if isinstance(lifetime, int) else None
        else:
            given = self.credentials()
            body = ({"jwt": yandex_jwt(given[1], given[2], given[3], now())}
                if given[0] == "key" else {"yandexPassportOauthToken": given[1]})
            api = CloudAPI(self.backend, None, self.iam_url)
            api.secrets = list(body.values())        # an error quoting it shows ********
            answer = api.call("POST", YANDEX_TOKEN_PATH, body=body, create=False)
            token, expires = answer.get("iamToken"), parse_utc(answer.get("expiresAt"))
        if (not isinstance(token, str) or not token or
                any(ord(ch) <= 32 or ord(ch) >= 127 for ch in token)):
            raise CloudError("%s: the %s answered without an IAM token" % (
                self.backend.LABEL, "metadata service" if self.method == "metadata" else "IAM"))
        return token, expires or time.time() + 3600, None

    def headers(self, token):
        return {"Authorization": "Bearer " + token}

    def source(self):
        settings = self.backend.settings
        if self.method == "metadata":
            return ("IAM token of this VM's service account (metadata service %s)"
                % self.metadata_url)
        if self.method == "oauth":
            return "IAM token for the OAuth token in %s" % settings["oauth_token_file"]
        return "IAM token for service account %s (key %s in %s)" % (
            self.credentials()[2], self.credentials()[1], settings["service_account_key_file"])


class YandexBackend(CloudBackend):
    """Yandex Cloud Compute: https://yandex.cloud/docs/compute/api-ref/ (instances carry
    labels; every change is an Operation polled at the Operation API)."""

    TYPE = "yandex"
    LABEL = "Yandex Cloud"
    AUTH = YandexIAMToken
    ROOT_PASSWORD_LOGIN = True
    DEFAULT_API_URL = "https://compute.api.cloud.yandex.net"
    SERVERS = "/compute/v1/instances"
    MAX_USER_DATA = 256 * 1024
    SETTINGS = dict(((key, value) for key, value in CloudBackend.COMMON_SETTINGS.items()
                     if key != "api_url"), folder_id=("string", check_yandex_name),
                    compute_url=("string", check_api_url),
                    operation_url=("string", check_api_url),
                    vpc_url=("string", check_api_url), **YandexIAMToken.SETTINGS)
    # cluster networking (issue 27), backend-wide or per configuration: the interface's
    # securityGroupIds, placementPolicy.placementGroupId (yandex-cloud/cloudapi
    # yandex/cloud/compute/v1/instance_service.proto NetworkInterfaceSpec, instance.proto
    # PlacementPolicy); address private: primaryV4Address.address
    CLUSTER = {"security_group_ids": ("array", check_yandex_ids),
               "placement_group_id": ("string", check_yandex_name),
               "address": ("string", check_address)}
    SETTINGS = dict(SETTINGS, **CLUSTER)
    DEFAULTS = {"platform_id": "standard-v3", "cores": 2, "memory_gb": 2, "core_fraction": 100,
                "disk_gb": 20, "disk_type": "network-ssd", "image_folder_id": "standard-images"}
    PARAMETERS = dict(CloudBackend.PARAMETERS, cores=("integer", Checker.positive),
                      memory_gb=("number", Checker.positive),
                      disk_gb=("integer", Checker.positive),
                      core_fraction=("integer", check_core_fraction),
                      zone_id=alternatives("string", check_yandex_name),
                      platform_id=alternatives("string", check_yandex_name),
                      subnet_id=("string or object", check_subnets),
                      **dict(CLUSTER, **dict((key, ("string", check_yandex_name)) for key in (
                          "disk_type", "image_id", "image_family", "image_folder_id"))))
    REQUIRED = ("zone_id", "subnet_id")
    FALLBACKS = ("platform_id", "zone_id")
    # the create's Operation names the instance at once and the instance is listed from
    # then on: 120 s covers an answer held on its way
    LATE_CREATE = 120
    GONE = ("DELETING",)

    def __init__(self, settings, paths, log, provider=None):
        CloudBackend.__init__(self, settings, paths, log, provider)
        self.api_url = settings.get("compute_url", self.DEFAULT_API_URL)
        self.operation_url = settings.get("operation_url", "https://operation.api.cloud.yandex.net")
        self.vpc_url = settings.get("vpc_url", "https://vpc.api.cloud.yandex.net")
        self.folder_id = settings.get("folder_id")

    @classmethod
    def validate_settings(cls, settings, path, check):
        if "folder_id" not in settings:
            check.add(path, "missing key 'folder_id' (the folder the instances are made in)")
        super(YandexBackend, cls).validate_settings(settings, path, check)

    @classmethod
    def validate_configuration(cls, configuration, path, check):
        super(YandexBackend, cls).validate_configuration(configuration, path, check)
        if ("image_id" in configuration) == ("image_family" in configuration):
            check.add(path, "needs exactly one of 'image_id' or 'image_family' (the newest "
                            "image of that family, e.g. \"ubuntu-2204-lts\")")
        zones, subnets = configuration.get("zone_id"), configuration.get("subnet_id")
        if isinstance(subnets, dict):
            missing = [zone for zone in as_list(zones) if zone not in subnets]
            if missing:
                check.add(path + ".subnet_id", "names no subnet for the zone %s" % ", ".join(
                    str(zone) for zone in missing))
        elif isinstance(zones, list) and len(zones) > 1:
            check.add(path + ".subnet_id", "must be an object {zone: subnet id} when zone_id "
                                           "lists several zones (a subnet is in one zone)")

    def subnet_id(self, configuration):
        """The subnet for the configuration's zone (one zone: create_body's view)."""
        subnets = configuration["subnet_id"]
        return subnets[configuration["zone_id"]] if isinstance(subnets, dict) else subnets

    def setting(self, configuration, key):
        return configuration.get(key, self.DEFAULTS.get(key))

    def image(self, configuration, attempts=RETRY_ATTEMPTS):
        """The image: image_id's, or the newest of image_family (in image_folder_id)."""
        if "image_id" in configuration:
            return self.api().call("GET", "/compute/v1/images/%s" % configuration["image_id"],
                                   attempts=attempts)
        return self.api().call("GET", "/compute/v1/images:latestByFamily", attempts=attempts,
                               query={"folderId": self.setting(configuration, "image_folder_id"),
                                      "family": configuration["image_family"]})

    def image_id(self, configuration):
        if "image_id" in configuration:
            return configuration["image_id"]
        image_id = self.image(configuration).get("id")
        if not yandex_name(image_id):
            raise CloudError("%s: no image id for the family %s" % (
                self.LABEL, configuration["image_family"]))
        return image_id

    def create_body(self, task, configuration, user_data):
        def get(key):
            return self.setting(configuration, key)
        disk = {"size": str(get("disk_gb") * GIB), "typeId": get("disk_type"),
                "imageId": configuration.get("image_id") or self.resolved(
                    "image family %s" % configuration.get("image_family"), self.image_id,
                    configuration)}
        interface = {"subnetId": self.subnet_id(configuration),
                     "primaryV4AddressSpec": {"oneToOneNatSpec": {"ipVersion": "IPV4"}}}
        if self.cluster(configuration, "security_group_ids"):
            interface["securityGroupIds"] = list(self.cluster(configuration,
                                                              "security_group_ids"))
        body = {"folderId": self.folder_id, "name": task["data"]["name"],
                "labels": self.labels(task), "zoneId": configuration["zone_id"],
                "platformId": get("platform_id"),
                "resourcesSpec": {"memory": str(int(get("memory_gb") * GIB)),
                                  "cores": get("cores"), "coreFraction": get("core_fraction")},
                "metadata": {"user-data": user_data},
                "bootDiskSpec": {"autoDelete": True, "diskSpec": disk},
                "networkInterfaceSpecs": [interface]}
        if self.cluster(configuration, "placement_group_id"):
            body["placementPolicy"] = {
                "placementGroupId": self.cluster(configuration, "placement_group_id")}
        return body

    def cluster(self, configuration, key):
        """A cluster setting: the configuration's, else the backend's, else None."""
        return configuration.get(key, self.settings.get(key))

    def public_address(self, api, task, server):
        """The public (one-to-one NAT) IPv4, or with address "private" the interface's
        primaryV4Address; the task keeps both (ipv4_all)."""
        public = self.ipv4(server)
        private = dig(server, "networkInterfaces", 0, "primaryV4Address", "address")
        private = private if isinstance(private, str) else None
        data = dict(task["data"], ipv4_all=[a for a in (public, private) if a])
        if self.cluster(self.task_configuration(task), "address") == "private":
            return private, data
        return public, data

    def created(self, operation):
        """The create's answer is an Operation naming the instance it makes."""
        if operation.get("done") and operation.get("error") is not None:
            raise CloudError(self.operation_failed(operation))
        server = {"id": dig(operation, "metadata", "instanceId")}
        if not yandex_name(server["id"]):
            return {}
        if not operation.get("done") and yandex_name(operation.get("id")):
            server["operation_id"] = operation["id"]
        return server

    def adopt(self, task, server, skipped=""):
        changes = CloudBackend.adopt(self, task, server, skipped)
        if server.get("operation_id") and "data" in changes:
            changes["data"]["operation_id"] = server["operation_id"]
        return changes

    def operation_failed(self, operation):
        code, text = self.error_text(operation.get("error"))
        return "%s: creating the instance failed: %s: %s (operation %s)" % (
            self.LABEL, code or "error", printable(text, 300), printable(str(operation.get("id"))))

    def await_create(self, api, task, configuration):
        """Until the create's operation is done: wait, or fail with its error (one
        for lack of capacity, with an alternative left: create that one instead)."""
        data = task["data"]
        if not data.get("operation_id"):
            return None
        operation = self.api(self.operation_url).call("GET", "/operations/%s"
                                                      % data["operation_id"])
        where = "%s instance %s" % (self.LABEL, data["server_id"])
        if not operation.get("done"):
            return {"phase": "booting", "message": "booting: %s is being created (operation "
                    "%s)" % (where, data["operation_id"])}
        data = dict(data, operation_id=None)
        if operation.get("error") is None:
            return {"data": data, "phase": "booting", "message": "booting: %s is created"
                    % where}
        try:                          # a failed create leaves no instance, as a rule
            self.fetch(api, data["server_id"])
        except CloudError as exc:
            if exc.status != 404:
                raise
            data["server_deleted"] = now()
            changes = self.next_alternative(task, configuration, data, operation)
            if changes is not None:
                return changes
        task["data"] = data
        changes = self.fail(task, self.operation_failed(operation))
        changes["data"] = data
        return changes

    def next_alternative(self, task, configuration, data, operation):
        """Task changes that create the next alternative (the task's next status call
        does), when the operation failed for capacity and one is left; else None."""
        choices = self.alternatives(configuration)
        index = data.get("choice", 0) + 1
        text = self.operation_failed(operation)
        if (index >= len(choices) or data.get("creates", 0) >= MAX_CREATES
                or not self.capacity_error(CloudError(text, api_code=self.error_text(
                    operation.get("error"))[0]))):
            return None
        self.log.write("fallback", task["id"], skipped=self.choice_text(choices[index - 1]),
                       reason=text)
        data = dict(data, server_id=None, server_deleted=None, choice=index,
                    settled=data.get("creates", 0), got=choices[index])
        return {"data": data, "phase": "creating", "message": "creating: no capacity for %s "
                "(%s); trying %s" % (self.choice_text(choices[index - 1]), text,
                                     self.choice_text(choices[index]))}

    def capacity_error(self, exc):
        """Nothing left of this platform in this zone (a quota is no such thing)."""
        return (not exc.uncertain and exc.api_code in YANDEX_CAPACITY_CODES
            and capacity_words(exc.message) and "quota limit" not in exc.message.lower())

    def rate_limited(self, status, answer):
        """A 429 is a rate limit or a quota (tried again, then final), unless it says
        the zone has no capacity: then the next alternative is tried at once."""
        if (status == 429 and capacity_words(str(dig(answer, "message"))) and
                "quota limit" not in str(dig(answer, "message")).lower()):
            return None
        return CloudBackend.rate_limited(self, status, answer)

    def fetch(self, api, server_id):
        return api.call("GET", "%s/%s" % (self.SERVERS, server_id))

    def owned_servers(self, api):
        """The folder's instances carrying our owner tag (the list filters names only)."""
        labels = {"managed-by": "provider.py"}

        def page(token):
            query = {"folderId": self.folder_id, "pageSize": 1000}
            if token:
                query["pageToken"] = token
            answer = api.call("GET", self.SERVERS, query=query)
            token = answer.get("nextPageToken")
            return (self.field(answer, "instances", "array", "the answer") or [],
                    token if token and isinstance(token, str) else None)
        return [instance for instance in paged_listing(self.LABEL, page)
                if yandex_name(instance.get("id")) and all(
                    dig(instance, "labels", key) == value for key, value in labels.items())]

    def task_of(self, server):
        task_id = dig(server, "labels", "bx-task")
        return task_id if isinstance(task_id, str) and valid_task_id(task_id) else None

    def tag_of(self, server):
        return dig(server, "labels", "bx-owner")

    def find(self, api, task, attempts=RETRY_ATTEMPTS):
        """The filter matches names only: the labels say the instance is ours."""
        answer = api.call("GET", self.SERVERS, attempts=attempts, query={
            "folderId": self.folder_id, "filter": 'name="%s"' % task["data"]["name"]})
        return self.field(answer, "instances", "array", "the answer") or []

    def owns(self, server, task):
        return CloudBackend.owns(self, server, task) and yandex_name(server.get("id")) and all(
            dig(server, "labels", key) == value for key, value in self.labels(task).items())

    def describe(self, server):
        said = server.get("status") if isinstance(server.get("status"), str) else "unknown"
        if said == "CRASHED":
            return "booting", "CRASHED (Yandex Cloud restarts it by itself)"
        return ("running" if said == "RUNNING" else "failed" if said in YANDEX_STOPPED
                else "booting"), said

    def ipv4(self, server):
        """(whatever it is, the server validator judges it)"""
        return dig(server, "networkInterfaces", 0, "primaryV4Address", "oneToOneNat",
                   "address") or None

    def error_text(self, answer):
        """{"code": <gRPC code>, "message", "details"}; never raises (see Hetzner's)."""
        code, text = dig(answer, "code"), dig(answer, "message")
        text = text if isinstance(text, str) else ""
        if not isinstance(code, int) or isinstance(code, bool):
            return None, text
        hint = YANDEX_HINTS.get(code)
        if hint:
            text += "; " + (hint % self.folder_id if "%s" in hint else hint)
        return GRPC_CODES.get(code, "code_%d" % code), text

    def check_call(self):
        self.api().call("GET", self.SERVERS, query={"folderId": self.folder_id, "pageSize": 1},
                        attempts=2)

    def check_api(self, configurations):
        report = CloudBackend.check_api(self, configurations)
        if report[-1][0]:
            report.append((True, self.folder_line()))
        return report

    def folder_line(self):
        return "folder %s: the service account may list its instances" % self.folder_id

    def check(self, configurations, state):
        """The shared lines, then each configuration's image and subnets as the API
        sees them (when it answered at all)."""
        report = CloudBackend.check(self, configurations, state)
        if (True, self.folder_line()) in report:
            api = self.api()
            for item in configurations:
                report += [(ok, "configuration %s: %s" % (item["id"], text))
                           for ok, text in self.resolve(api, item)]
        return report

    def resolve(self, api, configuration):
        """The image (today's newest of a family), and each zone's subnet."""
        try:
            image = self.image(configuration, attempts=2)
            report = [(True, "image %s (%s)" % (printable(str(image.get("id"))),
                                                printable(str(image.get("name") or "?"))))]
        except CloudError as exc:
            report = [(False, "image: %s" % api_fix(exc))]
        for zone in as_list(configuration["zone_id"]):
            report.append(self.resolve_subnet(dict(configuration, zone_id=zone)))
        return report

    def resolve_subnet(self, configuration):
        zone, subnet_id = configuration["zone_id"], self.subnet_id(configuration)
        try:
            subnet = self.api(self.vpc_url).call("GET", "/vpc/v1/subnets/%s" % subnet_id,
                                                 attempts=2)
        except CloudError as exc:
            return False, "zone %s: subnet %s: %s" % (zone, subnet_id, api_fix(exc))
        blocks = subnet.get("v4CidrBlocks")
        text = "zone %s: subnet %s (%s, %s)" % (zone, subnet_id, printable(str(
            subnet.get("name") or "?")), printable(", ".join(
                str(block) for block in blocks) if isinstance(blocks, list) else "?"))
        if subnet.get("zoneId") != zone:
            return False, "%s is in zone %s (name a subnet of zone %s: `yc vpc subnet list`)" % (
                text, printable(str(subnet.get("zoneId"))), zone)
        if self.cluster(configuration, "address") == "private" and isinstance(blocks, list):
            mine = host_ipv4s()
            if not any(in_network(mine, block) for block in blocks):
                return WARN, ("%s; address private: this master has no address in it (its "
                              "own: %s): the caller could not reach the servers; put it in "
                              "the network, or use address \"public\"" % (
                                  text, ", ".join(sorted(mine)) or "none"))
        return True, text


# -- Proxmox VE: clones of a cloud-init template on the agency's own cluster ----------

# A VMID taken between /cluster/nextid and the clone (another admin, another master):
# the clone is refused and tried again with the next free id, this many times in all
VMID_TRIES = 5
# Addresses of an order's candidates that answer a TCP connect on ssh_port (something
# else uses them) are skipped, at most this many per order: each costs a connect
MAX_ADDRESS_PROBES = 16
ADDRESS_PROBE_TIMEOUT = 0.5         # s for one such connect (under the state lock)
MAX_ADDRESS_RANGE = 65536           # addresses in one ADDR1-ADDR2/PREFIX item
# qemu-server's cloud-init sshkeys: the keys URI-encoded, every character outside these
PVE_SSHKEYS_SAFE = "-_.!~*'()"
PVE_MARK = "managed-by=provider.py"   # the description line's first word: ours


def check_token_id(checker, value, path):
    """USER@REALM!TOKENNAME (pve-access-control's token id: a user id, "!", a name
    that starts with a letter)."""
    import re
    if not re.match(r"[^\s@!:=/]{1,64}@[A-Za-z][A-Za-z0-9._-]{0,31}![A-Za-z][A-Za-z0-9._-]{1,63}\Z",
                    value):
        checker.add(path, "must be an API token id, USER@REALM!TOKENNAME (e.g. "
                          "bitrix@pve!provider)")


def pve_name_check(what, pattern, example):
    """A check of a Proxmox identifier (a node, a storage, a pool, a bridge)."""
    def check(checker, value, path):
        import re
        if not re.match(pattern + r"\Z", value):
            checker.add(path, "must be a Proxmox %s name (e.g. %s)" % (what, example))
    return check


def ipv4_int(text):
    """The integer of a dotted-quad IPv4 address (no leading zeros), or None."""
    import re
    parts = text.split(".") if isinstance(text, str) else []
    if len(parts) != 4 or not all(re.match(r"(0|[1-9][0-9]{0,2})\Z", p) and int(p) < 256
                                  for p in parts):
        return None
    numbers = [int(p) for p in parts]
    return (numbers[0] << 24) | (numbers[1] << 16) | (numbers[2] << 8) | numbers[3]


def ipv4_text(number):
    return ".".join(str((number >> shift) & 255) for shift in (24, 16, 8, 0))


def address_block(item):
    """(first, last, prefix) of an `addresses` item (ADDR/PREFIX or ADDR1-ADDR2/PREFIX),
    or (None, why)."""
    text, _, prefix = item.partition("/") if isinstance(item, str) else ("", "", "")
    first, _, last = text.partition("-")
    start, end = ipv4_int(first.strip()), ipv4_int((last or first).strip())
    if start is None or end is None or not prefix.isdigit() or not 8 <= int(prefix) <= 32:
        return None, "must be ADDR/PREFIX or ADDR1-ADDR2/PREFIX (IPv4, prefix 8-32)"
    bits = int(prefix)
    mask = (0xFFFFFFFF << (32 - bits)) & 0xFFFFFFFF
    if end < start or (start & mask) != (end & mask):
        return None, "the range must run upwards inside one /%d network" % bits
    if end - start >= MAX_ADDRESS_RANGE:
        return None, "a range holds at most %d addresses" % MAX_ADDRESS_RANGE
    if bits < 31 and (start & ~mask & 0xFFFFFFFF == 0 or end | ~mask & 0xFFFFFFFF == end):
        return None, "the network's own address and its broadcast address are not servers'"
    return (start, end, bits), None


def check_addresses(checker, value, path):
    if not value:
        checker.add(path, "must list at least one address or range")
    for index, item in enumerate(value):
        where = "%s[%d]" % (path, index)
        if checker.is_a(item, "string", where):
            block, why = address_block(item)
            if block is None:
                checker.add(where, why)


def check_ipv4(checker, value, path):
    if ipv4_int(value) is None:
        checker.add(path, "must be an IPv4 address (dotted quad)")


def check_nameservers(checker, value, path):
    for index, item in enumerate(value):
        where = "%s[%d]" % (path, index)
        if checker.is_a(item, "string", where):
            check_ipv4(checker, item, where)


def address_candidates(configuration):
    """Every (address, prefix) of a configuration's `addresses`, in order."""
    for item in configuration.get("addresses") or []:
        block = address_block(item)[0]
        if block is not None:
            for number in range(block[0], block[1] + 1):
                yield ipv4_text(number), block[2]


def tcp_answers(address, port):
    """True when address:port accepts a TCP connection within ADDRESS_PROBE_TIMEOUT."""
    import socket
    try:
        socket.create_connection((address, port), ADDRESS_PROBE_TIMEOUT).close()
        return True
    except (OSError, socket.timeout):
        return False


def pve_marks(description):
    """{key: value} of the mark line provider.py writes into a VM's description
    ("managed-by=provider.py bx-owner=TAG bx-task=ID ..."), {} for none."""
    for line in (description if isinstance(description, str) else "").splitlines():
        words = line.split()
        if words[:1] == [PVE_MARK]:
            return dict(word.split("=", 1) for word in words if "=" in word)
    return {}


class ProxmoxToken(StaticToken):
    """A Proxmox VE API token: token_id USER@REALM!TOKENNAME and its secret (token_secret_file
    or token_secret_env), sent as "Authorization: PVEAPIToken=USER@REALM!TOKENNAME=SECRET"
    (pve-http-server: PVE::APIServer::Formatter's API token header)."""

    SETTINGS = {"token_id": ("string", check_token_id),
                "token_secret_file": ("string", Checker.nonempty),
                "token_secret_env": ("string", Checker.nonempty)}

    @classmethod
    def validate_settings(cls, settings, path, check):
        if "token_id" not in settings:
            check.add(path, "missing key 'token_id' (the API token's id, USER@REALM!TOKENNAME)")
        check_secret_source(check, settings, path, "token_secret", "API token's secret")

    def token(self):
        return one_line_secret(*read_secret(self.backend, "token_secret", "API token's secret"),
                               what="API token secret")

    def headers(self, token):
        return {"Authorization": "PVEAPIToken=%s=%s" % (self.backend.settings.get("token_id"),
                                                        token)}

    def source(self):
        settings = self.backend.settings
        return "API token %s, its secret from %s" % (
            settings.get("token_id"), settings.get("token_secret_file")
            or "$" + settings.get("token_secret_env", ""))


class CloneRunning(CreateLanding):
    """A VMID a task sent a clone to is still being cloned (ProxmoxBackend.find)."""

    def __init__(self, vmid, node):
        CreateLanding.__init__(self, "Proxmox VM %s on node %s is still being cloned and has "
                               "no name yet (the clone this task sent, whose answer was lost, "
                               "or another's at the same VMID): waiting for it to end" % (
                                   vmid, node))


class ProxmoxBackend(CloudBackend):
    """Proxmox VE: a clone of a cloud-init template per order (the API: pve-docs'
    api-viewer; qemu-server PVE/API2/Qemu.pm, pve-manager PVE/API2/Cluster.pm and
    Tasks.pm). Answers are {"data": ...}; an error's text is the status line's reason
    (pve-http-server), a parameter error's details are {"errors": {name: text}}. The
    clone, the config, the resize and the start are tasks (UPIDs) waited for through
    /nodes/{node}/tasks/{upid}/status. The address is the configuration's, claimed at the
    order under the state lock (no guest agent); the VM's description carries the marks
    (the clone takes no tags; they come with the config)."""

    TYPE = "proxmox"
    LABEL = "Proxmox"
    CHECK_PATH = "/version"
    AUTH = ProxmoxToken
    # the clone makes the new VM's config before it answers, but only a temporary one
    # ("# qmclone temporary file", lock "clone", no name, no description) until its first
    # disk is copied (qemu-server PVE/API2/Qemu.pm clone_vm): a lost answer's VM shows at
    # once under the VMID sent (vmids_sent: waited for while so, CloneRunning), by name later
    LATE_CREATE = 60
    GONE = ("destroyed",)           # the lock of a VM being destroyed
    HOST_KEY_TOOL = "ssh-keyscan"   # no user data: the host key is read at first contact
    SETTINGS = dict(CloudBackend.COMMON_SETTINGS, **ProxmoxToken.SETTINGS)
    SETTINGS.update(
        tls_fingerprint=("string", check_tls_fingerprint),
        ca_file=("string", Checker.nonempty),
        node=("string", pve_name_check("node", r"[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?",
                                       "pve1")),
        pool=("string", pve_name_check("pool", r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}", "bitrix")),
        storage=("string", pve_name_check("storage", r"[a-z][a-z0-9_.-]{0,62}[a-z0-9]",
                                          "local-lvm")))
    PARAMETERS = {"login": ("string", check_login),
                  "max_servers": ("integer", Checker.non_negative),
                  "template": ("string", Checker.nonempty),
                  "full_clone": ("boolean", None),
                  "cores": ("integer", Checker.positive),
                  "memory_mb": ("integer", Checker.positive),
                  "disk_gb": ("integer", Checker.positive),
                  "bridge": ("string", pve_name_check("bridge", r"[A-Za-z][A-Za-z0-9_.-]{0,14}",
                                                      "vmbr0")),
                  "addresses": ("array", check_addresses),
                  "gateway": ("string", check_ipv4),
                  "nameservers": ("array", check_nameservers)}
    REQUIRED = ("template", "addresses")

    def __init__(self, settings, paths, log, provider=None):
        CloudBackend.__init__(self, settings, paths, log, provider)
        base = (settings.get("api_url") or "").rstrip("/")
        if base.endswith("/api2/json"):
            base = base[:-len("/api2/json")]
        self.api_url = base + "/api2/json"
        self.ssh_port = settings.get("ssh_port", 22)
        fingerprint = tls_fingerprint(settings.get("tls_fingerprint"))
        self.tls_trust = ({"fingerprint": fingerprint} if fingerprint else
                          {"ca_file": settings["ca_file"]} if settings.get("ca_file") else {})
        self.nodes = {}                 # VMID -> node, as /cluster/resources told it

    @classmethod
    def validate_settings(cls, settings, path, check):
        CloudBackend.validate_settings.__func__(cls, settings, path, check)
        if "api_url" not in settings:
            check.add(path, "missing key 'api_url' (e.g. https://pve1.example.com:8006)")
        if "tls_fingerprint" in settings and "ca_file" in settings:
            check.add(path, "needs at most one of 'tls_fingerprint' (the certificate pinned) "
                            "and 'ca_file' (the CA that signed it)")
        ca_file = settings.get("ca_file")
        if isinstance(ca_file, str) and ca_file and not ca_file.startswith("/"):
            check.add(path + ".ca_file", "must be an absolute path")

    @classmethod
    def validate_configuration(cls, configuration, path, check):
        CloudBackend.validate_configuration.__func__(cls, configuration, path, check)
        gateway = ipv4_int(configuration.get("gateway"))
        for index, item in enumerate(configuration.get("addresses") or []):
            block = address_block(item)[0]
            if block is None or gateway is None:
                continue
            mask = (0xFFFFFFFF << (32 - block[2])) & 0xFFFFFFFF
            if gateway & mask != block[0] & mask:
                check.add("%s.gateway" % path, "%s is outside the network of addresses[%d] "
                          "(%s)" % (configuration["gateway"], index, item))
            elif block[0] <= gateway <= block[1]:
                check.add("%s.gateway" % path, "%s is one of addresses[%d] (%s)" % (
                    configuration["gateway"], index, item))

    def error_text(self, answer):
        """A parameter error's details ({"errors": {name: text}}); the rest says the
        status line's reason (CloudAPI uses it when this gives no text)."""
        errors = answer.get("errors") if isinstance(answer, dict) else None
        if isinstance(errors, dict) and errors:
            return None, "; ".join("%s: %s" % (printable(str(key), 40), printable(str(text), 200))
                                   for key, text in sorted(errors.items()))
        return None, ""

    # -- the order: an address claimed under the state lock ------------------------------

    def pin_host_key(self, task):
        """No user data reaches a clone (cloud-init's cicustom needs a snippets storage):
        the host key is trusted on first use, as `check` says."""
        return {}

    def prepare(self, task, configuration, state):
        CloudBackend.prepare(self, task, configuration, state)
        address, prefix = self.claim_address(task, configuration, state)
        task["data"].update(address=address, prefix=prefix)

    def available(self, configuration, state):
        """hide_when_full: a configuration whose addresses are all held is full too."""
        held = self.held_addresses(state, None)
        return CloudBackend.available(self, configuration, state) and any(
            address not in held for address, _ in address_candidates(configuration))

    def held_addresses(self, state, task_id):
        """{address: task id} of the addresses Proxmox tasks hold: a pending order's, a
        finished one's until its VM is deleted, a failed one's until its VM is gone
        (may_rent)."""
        held = {}
        for task in state["tasks"].values():
            data = task.get("data") if isinstance(task, dict) else None
            if (isinstance(data, dict) and task.get("backend") == self.TYPE and
                    task.get("id") != task_id and isinstance(data.get("address"), str) and
                    (task.get("status") == IN_PROGRESS or may_rent(task))):
                held[data["address"]] = task.get("id")
        return held

    def claim_address(self, task, configuration, state):
        """(address, prefix): the configuration's first address no other task holds and
        nothing answers on at ssh_port. Under the state lock: two orders never get one."""
        held, answering = self.held_addresses(state, task["id"]), []
        for address, prefix in address_candidates(configuration):
            if address in held:
                continue
            if len(answering) >= MAX_ADDRESS_PROBES:
                break
            if tcp_answers(address, self.ssh_port):
                answering.append(address)
                self.log.write("address_in_use", task["id"], address=address,
                               port=self.ssh_port)
                continue
            return address, prefix
        raise ProviderError(E_EXHAUSTED, "configuration %s has no free address: %d held by "
                            "orders%s%s" % (
                                configuration["id"], sum(1 for a, _ in address_candidates(
                                    configuration) if a in held),
                                "; answering on port %d (something else uses them): %s" % (
                                    self.ssh_port, ", ".join(answering)) if answering else "",
                                "; add addresses to the configuration, or free a failed "
                                "order's with `%s task delete-server ID --yes`" % (
                                    self.paths.name if self.paths else "provider")))

    # -- the clone: /cluster/nextid, then POST .../clone, a taken VMID tried again ---------

    def description(self, task):
        data = task["data"]
        return ("Made by provider.py (BitrixVM) for provider %s, installation %s, task %s.\n"
                "%s bx-owner=%s bx-task=%s" % (
                    self.paths.name if self.paths else "?", data["owner"], task["id"],
                    PVE_MARK, data["owner"], task["id"]))

    def create_body(self, task, configuration, user_data):
        full = configuration.get("full_clone", True)
        body = {"newid": "<from GET /cluster/nextid>", "name": task["data"]["name"],
                "description": self.description(task), "full": 1 if full else 0}
        if full and self.settings.get("storage"):
            body["storage"] = self.settings["storage"]
        if self.settings.get("pool"):
            body["pool"] = self.settings["pool"]
        return body

    def template(self, api, configuration, attempts=RETRY_ATTEMPTS):
        """(vmid, node, name) of the configuration's template, from /cluster/resources;
        a ProviderError when there is no such template (or two of that name)."""
        wanted = configuration["template"]
        answer = api.call("GET", "/cluster/resources", query={"type": "vm"},
                          attempts=attempts)
        found = [vm for vm in self.field(answer, "data", "array", "the answer") or []
                 if isinstance(vm, dict) and vm.get("template") in (1, "1", True) and (
                     str(vm.get("vmid")) == wanted or vm.get("name") == wanted)]
        if len(found) != 1:
            raise ProviderError(E_CONFIG, "template %s: %s" % (
                printable(wanted, 60), "Proxmox lists %d templates of that name: name it by "
                "its VMID" % len(found) if found else "no template VM of that VMID or name "
                "(`qm template VMID` makes one)"))
        vmid, node = safe_server_id(found[0].get("vmid")), found[0].get("node")
        if vmid is None or not isinstance(node, str) or safe_server_id(node) is None:
            raise self.odd_shape("template %s: no usable vmid and node" % printable(wanted, 60))
        return vmid, node, found[0].get("name")

    def next_id(self, api):
        answer = api.call("GET", "/cluster/nextid")
        vmid = answer.get("data")          # a string (pve-manager PVE/API2/Cluster.pm)
        if not (isinstance(vmid, (str, int)) and str(vmid).isdigit()):
            raise self.odd_shape("/cluster/nextid answered %s" % printable(str(vmid), 40))
        return int(vmid)

    @staticmethod
    def vmid_taken(exc):
        return not exc.limited and "already exists" in exc.message

    def send_create(self, api, task, configuration, body):
        data = task["data"]
        template, node, _ = self.template(api, configuration)
        target = self.settings.get("node") or node
        data.update(node=target, upid=None, pve_step="clone")  # find() looks there
        clone = dict(body)
        if target != node:
            clone["target"] = target
        for _ in range(VMID_TRIES):
            clone["newid"] = self.next_id(api)
            data["vmids_sent"] = (data.get("vmids_sent") or [])[-VMID_TRIES:] + [
                str(clone["newid"])]        # saved before the clone is sent (find)
            self.cleanup.save_data(task, {"vmids_sent": data["vmids_sent"]})
            try:
                answer = api.call("POST", "/nodes/%s/qemu/%s/clone" % (node, template),
                                  body=clone)
                break
            except CloudError as exc:
                if not self.vmid_taken(exc):
                    raise
                self.log.write("vmid_taken", task["id"], vmid=clone["newid"])
        else:
            raise CloudError("Proxmox: the clone was refused %d times, each VMID taken "
                             "meanwhile" % VMID_TRIES)
        data["upid"] = self.upid(answer.get("data"))
        return {"server": {"id": str(clone["newid"])}}

    def create_url(self):
        return self.api_url + "/nodes/{the template's node}/qemu/{template}/clone"

    def adopt(self, task, server, skipped=""):
        """A VM found by a look-up (a lost clone answer): its node goes into the task."""
        node = server.get("node") if isinstance(server, dict) else None
        if isinstance(node, str) and safe_server_id(node) is not None:
            task = dict(task, data=dict(task["data"], node=node))
        return CloudBackend.adopt(self, task, server, skipped)

    def upid(self, value):
        """A task's UPID from an answer (UPID:NODE:PID:PSTART:STARTTIME:TYPE:ID:USER:), or
        None for an answer without one (a synchronous call); odd text is an odd shape."""
        import re
        if value is None:
            return None
        if not (isinstance(value, str) and len(value) <= 512 and
                re.match(r"UPID:[a-zA-Z0-9][a-zA-Z0-9.-]*:[!-~]+\Z", value)):
            raise self.odd_shape("a task id that is no UPID: %s" % printable(str(value), 80))
        return value

    def task_result(self, api, upid):
        """None while the task runs, "" when it ended well (exitstatus OK or WARNINGS: N),
        else the failure's text (pve-manager PVE/API2/Tasks.pm read_task_status)."""
        import urllib.parse
        node = upid.split(":")[1]
        answer = api.call("GET", "/nodes/%s/tasks/%s/status" % (
            node, urllib.parse.quote(upid, safe="")))
        status = self.field(answer, "data", "object", "the answer") or {}
        if self.field(status, "status", "string", "the task") != "stopped":
            return None
        said = self.field(status, "exitstatus", "string", "the task") or "no exit status"
        return "" if said == "OK" or said.startswith("WARNINGS") else printable(said, 300)

    # -- after the clone: the config, the disk, the start, each a task waited for --------

    STEPS = ("clone", "config", "resize", "start", "started")

    def await_create(self, api, task, configuration):
        """The steps after the clone, one request each, its task (UPID) waited for:
        the VM's config (cloud-init user, password or key, address, size, tags), the boot
        disk grown, the start. None once it was started; else the task's changes."""
        data = dict(task["data"])
        if not data.get("node"):             # a VM the cleanup kept: where it is now
            data["node"] = self.node_of(api, data["server_id"])
        step = data.get("pve_step") or "clone"
        where = "Proxmox VM %s" % data["server_id"]
        while step != "started":
            if data.get("upid"):
                failure = self.task_result(api, data["upid"])
                if failure is None:
                    return {"data": data, "phase": "booting", "message": "booting: %s: the %s "
                            "runs" % (where, step)}
                if failure:
                    task["data"] = data
                    return self.fail(task, "%s: the %s failed: %s" % (where, step, failure))
            elif step == "clone" and self.vm_lock(api, data) == "clone":
                return {"data": data, "phase": "booting", "message": "booting: %s: the clone "
                        "runs" % where}
            step = self.STEPS[self.STEPS.index(step) + 1]
            data.update(pve_step=step, upid=None)
            if step != "started":
                data["upid"] = self.send_step(api, task, configuration, step, data)
        task["data"] = data
        return None

    def vm_path(self, data, tail=""):
        return "/nodes/%s/qemu/%s%s" % (data["node"], data["server_id"], tail)

    def vm_lock(self, api, data):
        answer = api.call("GET", self.vm_path(data, "/config"))
        config = self.field(answer, "data", "object", "the answer") or {}
        return config.get("lock")

    def send_step(self, api, task, configuration, step, data):
        """Send one step's request; its task's UPID, or None (nothing to wait for)."""
        if step == "config":
            answer = api.call("POST", self.vm_path(data, "/config"),
                              body=self.vm_config(task, configuration), create=False)
        elif step == "resize":
            if not configuration.get("disk_gb"):
                return None
            disk = self.boot_disk(api, data)
            answer = api.call("PUT", self.vm_path(data, "/resize"), body={
                "disk": disk, "size": "%dG" % configuration["disk_gb"]})
        else:
            current = api.call("GET", self.vm_path(data, "/status/current"))
            if (self.field(current, "data", "object", "the answer") or {}).get(
                    "status") == "running":
                return None
            answer = api.call("POST", self.vm_path(data, "/status/start"), create=False)
        return self.upid(answer.get("data"))

    def vm_config(self, task, configuration):
        """The config POST's body: cloud-init's user root with our password (its
        SHA-512 crypt hash: qemu-server keeps a hash as it is) and the pool key, the
        address, the size, the tags (qemu-server PVE/QemuServer.pm, cloudinit)."""
        import urllib.parse
        data = task["data"]
        body = {"ciuser": "root", "ipconfig0": "ip=%s/%s" % (data["address"], data["prefix"]),
                "tags": "bx-owner-%s;bx-task-%s" % (data["owner"], task["id"])}
        if configuration.get("gateway"):
            body["ipconfig0"] += ",gw=" + configuration["gateway"]
        password = task.get("server_password")
        if password:
            body["cipassword"] = sha512_crypt(password, random_text(CRYPT_ALPHABET, 16))
        public = self.cloud_init.pool_key()[1] if data.get("key_installed") else None
        if public:
            body["sshkeys"] = urllib.parse.quote(public, safe=PVE_SSHKEYS_SAFE)
        if configuration.get("nameservers"):
            body["nameserver"] = " ".join(configuration["nameservers"])
        for key, name in (("cores", "cores"), ("memory_mb", "memory")):
            if configuration.get(key):
                body[name] = configuration[key]
        if configuration.get("bridge"):
            body["net0"] = "virtio,bridge=" + configuration["bridge"]
        return body

    def boot_disk(self, api, data):
        """The disk the VM boots from: the first disk of its boot order, else the first
        of scsi0, virtio0, sata0, ide0 that is no CD-ROM or cloud-init drive."""
        answer = api.call("GET", self.vm_path(data, "/config"))
        config = self.field(answer, "data", "object", "the answer") or {}
        order = str(config.get("boot") or "").partition("order=")[2].split(",")[0]
        names = [name for name in order.split(";") if name] + [
            "scsi0", "virtio0", "sata0", "ide0"]
        for name in names:
            value = config.get(name)
            if isinstance(value, str) and "media=cdrom" not in value and (
                    "cloudinit" not in value) and name[:-1].rstrip("0123456789") in (
                        "scsi", "virtio", "sata", "ide"):
                return name
        raise CloudError("Proxmox VM %s: no boot disk to grow to disk_gb (its config names "
                         "none of %s)" % (data["server_id"], ", ".join(names)))

    # -- the VM as the API shows it ----------------------------------------------------

    def node_of(self, api, vmid):
        """The node of a VM, from /cluster/resources (the cluster's VM list: a new VM is
        in it at once); a CloudError with status 404 when the cluster has no such VM."""
        answer = api.call("GET", "/cluster/resources", query={"type": "vm"})
        for vm in self.field(answer, "data", "array", "the answer") or []:
            if isinstance(vm, dict) and str(vm.get("vmid")) == str(vmid):
                node = vm.get("node")
                if isinstance(node, str) and safe_server_id(node) is not None:
                    return node
        raise CloudError("Proxmox: the cluster has no VM %s" % vmid, status=404)

    def fetch(self, api, server_id):
        node = self.node_of(api, server_id)
        try:
            answer = api.call("GET", "/nodes/%s/qemu/%s/status/current" % (node, server_id))
        except CloudError as exc:
            if "does not exist" in exc.message:      # destroyed meanwhile
                exc.status = 404
            raise
        current = self.field(answer, "data", "object", "the answer") or {}
        return dict(current, id=server_id, node=node)

    def describe(self, server):
        said = self.field(server, "status", "string", "VM") or "unknown"
        lock = server.get("lock")
        if lock in self.GONE:
            return "failed", "being destroyed"
        if said == "running" and not lock:
            return "running", said
        return "booting", said + (" (lock %s)" % printable(str(lock), 30) if lock else "")

    def being_deleted(self, server):
        return server.get("lock") in self.GONE

    def public_address(self, api, task, server):
        return task["data"].get("address"), task["data"]

    def finish(self, task, address, data):
        """Ready: the host keys the VM shows now go to the caller's known_hosts (trust on
        first use: no user data reaches a clone to hand it a key made here)."""
        if self.settings.get("known_hosts", True) and not data.get("host_keys"):
            keys = scan_host_keys(address, self.ssh_port, min(2.0, self.request_timeout))[0]
            if keys:
                data = dict(data, host_keys=keys, ssh_port=self.ssh_port)
        return CloudBackend.finish(self, task, address, data)

    def ipv4(self, server):
        """The address of ipconfig0 (ip=ADDR/PREFIX,gw=...) in a VM's config."""
        for part in str(server.get("ipconfig0") or "").split(","):
            if part.startswith("ip="):
                return part[3:].split("/")[0] or None
        return None

    # -- look-ups: a lost clone answer's VM, by name and description -------------------

    def find(self, api, task, attempts=RETRY_ATTEMPTS):
        """The VMs of the task's name on every online node (GET /nodes/{node}/qemu: the
        nodes' own config files, not /cluster/resources, whose names lag; every node: a
        lost clone answer never told which), each with its config. None of them, but a
        VMID the task sent a clone to still being cloned (locked "clone", no marks yet: its
        name and description come once the first disk is copied): CloneRunning, neither
        ours yet nor never made, so no clone is sent again and nothing is settled."""
        found, cloning = [], []
        sent = task["data"].get("vmids_sent") or []
        for node in self.online_nodes(api, attempts):
            answer = api.call("GET", "/nodes/%s/qemu" % node, attempts=attempts)
            for vm in self.field(answer, "data", "array", "the answer") or []:
                if isinstance(vm, dict) and vm.get("name") == task["data"]["name"]:
                    found.append(self.with_config(api, node, vm, attempts))
                elif isinstance(vm, dict) and str(vm.get("vmid")) in sent:
                    config = self.with_config(api, node, vm, attempts) or {}
                    if config.get("lock") == "clone" and not pve_marks(
                            config.get("description")):
                        cloning.append(CloneRunning(config["id"], node))
        found = [vm for vm in found if vm is not None]
        if cloning and not any(self.owns(vm, task) for vm in found):
            raise cloning[0]
        return found

    def online_nodes(self, api, attempts=RETRY_ATTEMPTS):
        answer = api.call("GET", "/nodes", attempts=attempts)
        nodes = []
        for item in self.field(answer, "data", "array", "the answer") or []:
            node = item.get("node") if isinstance(item, dict) else None
            if isinstance(node, str) and safe_server_id(node) is not None and (
                    item.get("status") in (None, "online")):
                nodes.append(node)
        return nodes

    def with_config(self, api, node, vm, attempts=RETRY_ATTEMPTS):
        """A VM of a node's list as a server: id, node, its config's keys."""
        vmid = safe_server_id(vm.get("vmid"))
        if vmid is None:
            return None
        answer = api.call("GET", "/nodes/%s/qemu/%s/config" % (node, vmid), attempts=attempts)
        config = self.field(answer, "data", "object", "the answer") or {}
        return dict(config, status=vm.get("status") or "unknown", id=vmid, node=node,
                    name=config.get("name", vm.get("name")))

    def owns(self, server, task):
        if not CloudBackend.owns(self, server, task):
            return False
        marks = pve_marks(server.get("description"))
        return marks.get("bx-owner") == task["data"]["owner"] and (
            task["id"] == "-" or marks.get("bx-task") == task["id"])

    def task_of(self, server):
        return pve_marks(server.get("description")).get("bx-task")

    def tag_of(self, server):
        return pve_marks(server.get("description")).get("bx-owner")

    def owned_servers(self, api):
        """Every VM of every node whose description carries provider.py's mark (each
        config read: the marks are in the description)."""
        servers = []
        for node in self.online_nodes(api):
            listing = api.call("GET", "/nodes/%s/qemu" % node)
            for vm in self.field(listing, "data", "array", "the answer") or []:
                if isinstance(vm, dict) and not vm.get("template"):
                    server = self.with_config(api, node, vm)
                    if server is not None and pve_marks(server.get("description")):
                        servers.append(server)
        return servers

    # -- delete: stop, then DELETE with purge, only a VM carrying the task's marks ------

    def delete_server(self, task):
        """Stop the VM (a running VM is not destroyed), then DELETE it with purge=1 and
        destroy-unreferenced-disks=1 in the query (DELETE takes no body), and make sure
        the cluster no longer lists it. Only a VM whose description carries the task's
        marks: never a VMID taken over by someone else's VM."""
        server_id = task["data"]["server_id"]
        api = self.api()
        try:
            node = self.node_of(api, server_id)
        except CloudError as exc:
            if exc.status != 404:
                raise
            return "Proxmox VM %s was already gone" % server_id
        server = self.with_config(api, node, {"vmid": server_id, "status": "unknown"})
        marks = pve_marks(server.get("description"))
        if marks.get("bx-owner") != task["data"].get("owner") or (
                task["id"] != "-" and marks.get("bx-task") != task["id"]):
            raise ProviderError(E_BACKEND, "Proxmox VM %s does not carry task %s's marks in "
                                "its description: not deleted (someone else's VM?)" % (
                                    server_id, task["id"]))
        data = {"node": node, "server_id": server_id}
        self.stop_vm(api, data)
        try:
            api.call("DELETE", self.vm_path(data), query={
                "purge": 1, "destroy-unreferenced-disks": 1})
        except CloudError as exc:
            if "does not exist" not in exc.message:
                raise
        return self.confirm_gone(api, server_id)

    def stop_vm(self, api, data):
        """Stop a running VM and wait a little for it: a CloudError when it still runs
        (the cleanup tries again)."""
        current = api.call("GET", self.vm_path(data, "/status/current"))
        if (self.field(current, "data", "object", "the answer") or {}).get("status") != (
                "running"):
            return
        upid = self.upid(api.call("POST", self.vm_path(data, "/status/stop"),
                                  create=False).get("data"))
        for pause in DELETE_CONFIRM_PAUSES + (None,):
            failure = self.task_result(api, upid) if upid else ""
            if failure is not None:
                if failure:
                    raise CloudError("Proxmox VM %s: the stop failed: %s" % (
                        data["server_id"], failure))
                return
            if pause is None:
                break
            time.sleep(pause)
        raise CloudError("Proxmox VM %s: the stop still runs" % data["server_id"])

    # -- people's commands: `check`, `order --dry-run` ----------------------------------

    def check_api(self, configurations):
        report = CloudBackend.check_api(self, configurations)
        if not all(ok for ok, _ in report):
            return report
        api = self.api()
        for key, path, what in (("node", "/nodes/%s/status", "node"),
                                ("pool", "/pools/%s", "resource pool")):
            name = self.settings.get(key)
            if name:
                try:
                    self.resolved(what, api.call, "GET", path % name, None, None, 2)
                    report.append((True, "%s %s: known to Proxmox" % (what, name)))
                except CloudError as exc:
                    report.append((False, "%s %s: %s" % (what, name, api_fix(exc))))
        return report

    def check(self, configurations, state):
        report = CloudBackend.check(self, configurations, state)
        if all(ok for ok, _ in report[:1]) and not any(
                "Proxmox API" in text and not ok for ok, text in report):
            api = self.api()
            for configuration in configurations:
                report += [(ok, "configuration %s: %s" % (configuration["id"], text))
                           for ok, text in self.resolve(api, configuration)]
        if state is not None:
            report += [self.free_addresses(configuration, state)
                       for configuration in configurations]
        return report

    def free_addresses(self, configuration, state):
        held = self.held_addresses(state, None)
        candidates = [address for address, _ in address_candidates(configuration)]
        free = [address for address in candidates if address not in held]
        taken = ", ".join("%s (task %s)" % (address, held[address])
                          for address in candidates if address in held)
        return bool(free), ("configuration %s: %d of %d addresses free (not yet tried for a "
                            "TCP answer on port %d)%s" % (
                                configuration["id"], len(free), len(candidates), self.ssh_port,
                                "; held: " + taken[:300] if taken else ""))

    def resolve(self, api, configuration):
        """The template (a template VM, with a cloud-init drive) and the clone's storage."""
        try:
            found = self.resolved("template", self.template, api, configuration, 2)
        except ProviderError as exc:
            return [(False, exc.message if not isinstance(exc, CloudError) else
                     "template %s: %s" % (configuration["template"], api_fix(exc)))]
        if isinstance(found, str):              # a dry run that cannot reach the API
            return [(False, "template %s: %s" % (configuration["template"], found))]
        vmid, node, name = found
        report = []
        try:
            answer = api.call("GET", "/nodes/%s/qemu/%s/config" % (node, vmid), attempts=2)
            config = self.field(answer, "data", "object", "the answer") or {}
            drive = [key for key, value in sorted(config.items())
                     if isinstance(value, str) and "cloudinit" in value]
            report.append((bool(drive), "template %s: VM %s (%s) on node %s, %s" % (
                configuration["template"], vmid, printable(str(name or "?"), 60), node,
                "cloud-init drive %s" % drive[0] if drive else "no cloud-init drive: `qm set "
                "%s --ide2 STORAGE:cloudinit` adds one" % vmid)))
        except CloudError as exc:
            report.append((False, "template %s: %s" % (configuration["template"], api_fix(exc))))
        storage = self.settings.get("storage")
        if storage and configuration.get("full_clone", True):
            report.append(self.storage_report(api, self.settings.get("node") or node, storage))
        return report

    def dry_run(self, configuration, state, task_id):
        """`order CONFIG --dry-run`: the clone and the config an order would send, the
        address it would claim now; creates nothing (no user data: the config is it)."""
        lines = ["dry run of an order of configuration %s: nothing is created and no task "
                 "is saved" % configuration["id"]]
        self.dry = True
        report = self.check_api([configuration])
        if self.offline is None:
            report += self.resolve(self.api(), configuration)
            lines += ["%s: %s" % ("ok" if ok else "FAIL", text) for ok, text in report]
        else:
            lines.append("note: could not reach %s (%s): the requests below are the ones an "
                         "order would send, the template not looked up" % (
                             self.LABEL, self.offline))
        problem = CloudCaps(self).cap_problem(configuration, state)
        lines.append("FAIL: the order would be refused (N109): %s" % problem if problem else
                     "ok: caps: " + CloudInventory(self).guardrails_text(state, configuration))
        task = new_task(task_id, configuration["id"], self.TYPE)
        try:
            self.prepare(task, configuration, state)
        except ProviderError as exc:
            lines.append("FAIL: the order would be refused (N%d): %s" % (exc.code, exc.message))
            task["data"].update(address="<none free>", prefix="?")
        config = self.vm_config(task, configuration)
        if "cipassword" in config:
            config["cipassword"] = "<sha512-crypt hash of the root password>"
        vm = self.api_url + "/nodes/{node}/qemu/{newid}"
        lines += ["", "the clone it would send (as task %s):" % task_id,
                  "POST %s" % self.create_url(), "Authorization: <masked>",
                  json.dumps(self.create_body(task, configuration, ""), indent=2,
                             sort_keys=True),
                  "", "once the clone's task has ended, the VM's config:",
                  "POST %s/config" % vm, json.dumps(config, indent=2, sort_keys=True)]
        if configuration.get("disk_gb"):
            lines += ["then PUT %s/resize {\"disk\": \"<its boot disk>\", \"size\": \"%dG\"}"
                      % (vm, configuration["disk_gb"])]
        lines += ["then POST %s/status/start; ready once SSH answers on %s port %d and "
                  "cloud-init has finished" % (vm, task["data"]["address"], self.ssh_port)]
        return CheckReport("\n".join(lines), sum(1 for line in lines
                                                 if line.startswith("FAIL: ")))

    def storage_report(self, api, node, storage):
        try:
            answer = api.call("GET", "/nodes/%s/storage" % node, query={"content": "images"},
                              attempts=2)
        except CloudError as exc:
            return False, "storage %s: %s" % (storage, api_fix(exc))
        names = [item.get("storage") for item in self.field(answer, "data", "array",
                                                            "the answer") or []
                 if isinstance(item, dict)]
        return storage in names, "storage %s: %s on node %s" % (
            storage, "holds VM disks" if storage in names else "not a VM disk storage", node)


if __name__ == "__main__":
    sys.exit(main())
