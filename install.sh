#!/bin/sh
# install.sh - install, upgrade, remove or package the BitrixVM provider plugin (provider.py).
# POSIX sh (dash, bash). Run ./install.sh --help for the usage.
set -eu

PROG=install.sh
DEFAULT_PREFIX=/opt/webdir/providers

usage() {
    cat <<EOF
Usage: $PROG [options] NAME

Install provider.py (the file next to this script) as the BitrixVM provider plugin NAME,
into PREFIX/NAME (default PREFIX: $DEFAULT_PREFIX):

  PREFIX/NAME/bin/NAME        the plugin: provider.py as is (0755); its first run, made
                              here, caches its bytecode in bin/__pycache__
  PREFIX/NAME/etc/NAME.conf   its JSON config (0600)
  PREFIX/NAME/var/            its state (0700)
  PREFIX/NAME/log/            its log (0700)
  PREFIX/NAME/tasks/          bx-provider's own folder: never created or touched here

NAME: 1-64 letters, digits, '_' and '-' (not starting with '-').

Re-running upgrades the plugin only: config, state and logs are left as they are.
Without --config, and with no config yet, a starting config is written that keeps the
provider disabled; edit it (see docs/reference.md), then run: PREFIX/NAME/bin/NAME check

Options:
  --prefix DIR      install into DIR/NAME instead of $DEFAULT_PREFIX/NAME
  --config FILE     install FILE (JSON) as etc/NAME.conf; an existing, different config is
                    only replaced with --force
  --force           with --config: replace an existing config; the old one is kept as
                    etc/NAME.conf.YYYYmmdd-HHMMSS.bak
  --program FILE    also install FILE (the command backend's program) as bin/BASENAME
                    (0755), e.g. --config examples/command.conf
                    --program examples/provision-example.sh
  --python PATH     the Python 3.6+ that install.sh itself uses (config syntax, archive);
                    default: python3 from PATH. The plugin finds its own Python when it
                    runs: python3 from PATH, /usr/libexec/platform-python, /usr/bin/python3.x
  --uninstall       remove the plugin (bin/NAME, its cache; an old install's lib/), then
                    move what is kept (config, state, logs, bx-provider's tasks/) out of
                    PREFIX to PREFIX-removed/NAME-DATE (printed), so bx-provider stops
                    listing NAME
  --purge           delete bin/, lib/, etc/, var/ and log/ (config, state, logs); the rest
                    (bx-provider's tasks/) is moved to PREFIX-removed/NAME-DATE; needs
                    --yes when there is no terminal to ask on
                    Both first stop the provider's workers, and refuse while a task still
                    rents a cloud server (each is listed: task, backend, server id, name;
                    the plugin's 'tasks --holding'), unless one of:
  --delete-servers  with --uninstall/--purge: delete those servers first, each through
                    the plugin (bin/NAME task delete-server ID --yes)
  --keep-servers    with --uninstall/--purge: go on, and print the servers left rented
                    (billed; nothing will delete them then)
  -y, --yes         do not ask before --purge deletes
  --archive FILE    build FILE (must end in .tar.gz, mode 0600: it holds the config) for
                      bx-provider -a install --provider NAME --archive FILE
                    holding bin/NAME, etc/NAME.conf (the --config FILE, or the starting
                    config) and the --program; the config must validate; installs nothing
  -h, --help        show this help

Ownership: files are created by the user running this script (root: owned by root) and
no chown is done. 'bx-provider -a install' chowns the home to bitrix itself.

Exit status: 0 done (also when the final check reports problems: read its report),
1 failure, 2 bad usage or bad NAME.
EOF
}

die() {      # die STATUS MESSAGE...
    status=$1
    shift
    printf '%s: error: %s\n' "$PROG" "$*" >&2
    exit "$status"
}

usage_error() {
    printf '%s: error: %s\n' "$PROG" "$*" >&2
    printf "Run '%s --help' for the usage.\n" "$PROG" >&2
    exit 2
}

say() {
    printf '%s\n' "$*"
}

# ----------------------------------------------------------------------------- arguments

name=
prefix=$DEFAULT_PREFIX
prefix_given=
config_src=
program_src=
program_given=
force=
python=python3
action=install
yes=
archive=
servers=        # what --uninstall/--purge do with rented cloud servers: delete, keep

set_action() {
    if [ "$action" != install ] && [ "$action" != "$1" ]; then
        usage_error "--$action and --$1 cannot be combined"
    fi
    action=$1
}

need_value() {  # need_value OPTION ARGC
    [ "$2" -ge 2 ] || usage_error "$1 needs a value"
}

while [ $# -gt 0 ]; do
    case $1 in
        -h|--help) usage; exit 0 ;;
        --prefix) need_value "$1" $#; prefix=$2; prefix_given=1; shift ;;
        --prefix=*) prefix=${1#*=}; prefix_given=1 ;;
        --config) need_value "$1" $#; config_src=$2; shift ;;
        --config=*) config_src=${1#*=} ;;
        --program) need_value "$1" $#; program_src=$2; program_given=1; shift ;;
        --program=*) program_src=${1#*=}; program_given=1 ;;
        --python) need_value "$1" $#; python=$2; shift ;;
        --python=*) python=${1#*=} ;;
        --archive) need_value "$1" $#; set_action archive; archive=$2; shift ;;
        --archive=*) set_action archive; archive=${1#*=} ;;
        --force) force=1 ;;
        --uninstall) set_action uninstall ;;
        --purge) set_action purge ;;
        --yes|-y) yes=1 ;;
        --delete-servers|--keep-servers)
            given=${1#--}
            [ -z "$servers" ] || [ "$servers" = "${given%-servers}" ] || usage_error "--delete-servers and --keep-servers cannot be combined"
            servers=${given%-servers} ;;
        --) shift; break ;;
        -*) usage_error "unknown option: $1" ;;
        *)
            [ -z "$name" ] || usage_error "only one NAME, got '$name' and '$1'"
            name=$1 ;;
    esac
    shift
done
if [ $# -gt 0 ]; then
    if [ -n "$name" ] || [ $# -gt 1 ]; then
        usage_error "only one NAME expected"
    fi
    name=$1
fi

[ -n "$name" ] || usage_error "NAME is missing"
case $name in
    -*|*[!ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-]*)
        usage_error "bad NAME '$name': use 1-64 letters, digits, '_' and '-' (not starting with '-')" ;;
esac
[ "${#name}" -le 64 ] || usage_error "bad NAME: longer than 64 characters"

case $action in
    uninstall|purge)
        [ -z "$config_src" ] || usage_error "--config cannot be used with --$action"
        [ -z "$program_given" ] || usage_error "--program cannot be used with --$action"
        [ -z "$force" ] || usage_error "--force cannot be used with --$action" ;;
    archive)
        [ -z "$prefix_given" ] || usage_error "--prefix cannot be used with --archive (it installs nothing)"
        case $archive in
            *.tar.gz) ;;
            *) usage_error "--archive FILE must end in .tar.gz, got '$archive'" ;;
        esac ;;
esac
if [ -n "$force" ] && [ -z "$config_src" ]; then
    usage_error "--force only applies with --config FILE"
fi
[ -n "$prefix" ] || usage_error "--prefix needs a folder"
case $prefix in -*) prefix=./$prefix ;; esac     # never an option to mkdir, rm, cp
# The checks below run the installed plugin on its own home, not on one these name.
unset BXPROVIDER_HOME BXPROVIDER_CONFIG
case $action in install|archive) [ -z "$yes" ] || usage_error "--yes only applies with --purge or --uninstall" ;; esac
case $action in install|archive) [ -z "$servers" ] || usage_error "--$servers-servers only applies with --purge or --uninstall" ;; esac
if [ "$action" = purge ] && [ -z "$yes" ] && [ ! -t 0 ]; then
    usage_error "--purge deletes config, state and logs: with no terminal to ask on, add --yes"
fi
program_name=
if [ -n "$program_given" ]; then
    program_name=$(basename "$program_src")
    case $program_name in
        ""|"$name"|__pycache__|-*|*[!ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-]*)
            usage_error "bad --program '$program_src': its name must be letters, digits, '.', '_', '-' and not '$name'" ;;
    esac
fi

home=${prefix%/}/$name
conf_rel=etc/$name.conf
conf=$home/$conf_rel

# The program files, relative to the home; install and archive use this list. bin/NAME is
# provider.py byte for byte: its sh header makes it cache its own bytecode (docs/performance.md).
program_files() {
    printf '%s\n' "bin/$name"
    if [ -n "$program_name" ]; then printf '%s\n' "bin/$program_name"; fi
}
case ${prefix%/} in
    "") removed_dir=/providers-removed ;;
    *) removed_dir=${prefix%/}-removed ;;
esac

case $0 in */*) here=${0%/*} ;; *) here=. ;; esac
source_py=$here/provider.py

# ----------------------------------------------------------------------------- helpers

tmp_file=   # the temporary file put_file is writing, if any
stage=      # the archive's staging folder, if any
cleanup() {
    if [ -n "$tmp_file" ]; then rm -f "$tmp_file"; fi
    if [ -n "$stage" ]; then rm -rf "$stage"; fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Every Python run here is isolated (-I: no PYTHON* variables, no user site) and without
# site-packages (-S), as bin/NAME's header starts the plugin: the standard library is all
# it needs, and a site's .pth files cannot change what runs (nor slow each start).
check_python() {
    if ! command -v "$python" >/dev/null 2>&1; then
        die 1 "Python not found: '$python'. The plugin needs Python 3.6 or newer; name one with --python PATH."
    fi
    if ! "$python" -I -S -c 'import sys; sys.exit(sys.version_info < (3, 6))' >/dev/null 2>&1; then
        die 1 "'$python' is not Python 3.6 or newer"
    fi
}

check_source() {
    [ -f "$source_py" ] || die 1 "cannot read $source_py (install.sh installs the provider.py next to it)"
    if [ -n "$program_src" ] && [ ! -f "$program_src" ]; then
        die 1 "--program '$program_src' does not exist or is not a file"
    fi
}

# validate_config FILE: it must be a JSON object. The full validation is the final 'check'.
validate_config() {
    [ -f "$1" ] || die 1 "config file '$1' does not exist or is not a file"
    if ! err=$("$python" -I -S - "$1" 2>&1 <<'PY'
import json, sys
try:
    with open(sys.argv[1], "rb") as f:
        data = json.loads(f.read().decode("utf-8"))
except OSError as e:
    sys.exit("cannot read it: %s" % e.strerror)
except ValueError as e:  # also UnicodeDecodeError
    sys.exit("not valid UTF-8 JSON: %s" % e)
if not isinstance(data, dict):
    sys.exit("not a JSON object ({...})")
PY
    ); then
        die 1 "config file '$1': $err"
    fi
}

# The starting config: provider disabled, manual backend, one example configuration.
# JSON has no comments; the plugin ignores every key starting with "_".
starting_config() {
    cat <<EOF
{
  "_comment": "Config of the BitrixVM provider plugin '$name', written by install.sh. JSON has no comments: the plugin ignores every key that starts with '_'. The full reference is in docs/reference.md, section 'Config reference'. After editing, run: bin/$name check",
  "_enabled": "false keeps the provider off: 'help' answers status disabled and the Bitrix web interface hides it. Set true when the configurations below are what you sell.",
  "enabled": false,
  "_backend": "How servers are provisioned. manual: every order waits for the operator, who runs 'bin/$name task finish ID --server ADDR' (root password on stdin) or 'bin/$name task fail ID --message TEXT'. Other backend types and their settings: README.md, section 'Backends', and docs/backends/.",
  "backend": {
    "type": "manual"
  },
  "_configurations": "What the admin can order. id: 1-64 letters, digits, '.', '_', '-', starting with a letter or digit, unique; the web page sends it back with the order. descr: the text shown beside it (plain text, any language).",
  "configurations": [
    {
      "id": "1",
      "descr": "Example, 2 CPU, 4 GB RAM, 40 GB SSD"
    }
  ]
}
EOF
}

# put_file DEST MODE <SRC: write stdin to DEST atomically (a temp file in DEST's folder,
# then mv), so a plugin call running meanwhile sees the old file or the new, never half.
put_file() {
    tmp_file=$(mktemp "${1%/*}/.install.XXXXXX")
    cat >"$tmp_file"
    chmod "$2" "$tmp_file"
    mv -f "$tmp_file" "$1"
    tmp_file=
}

# install_program HOME: put the program files (program_files) into HOME. Each is replaced
# atomically, so a call made meanwhile finds a whole old or a whole new plugin.
install_program() {
    mkdir -p "$1/bin"
    chmod 0755 "$1/bin"
    put_file "$1/bin/$name" 0755 <"$source_py"
    if [ -n "$program_name" ]; then
        put_file "$1/bin/$program_name" 0755 <"$program_src"
    fi
}

# remove_old_layout HOME: older installs had a launcher in bin/NAME and the code in
# lib/provider.py; bin/NAME is now the whole plugin, so lib/ goes. 1.1.0 cached bin/NAME
# whole as __pycache__/NAME.cpython-XY.pyc; it now caches two parts under other names.
remove_old_layout() {
    if [ -d "$1/bin/__pycache__" ] && [ ! -L "$1/bin/__pycache__" ]; then
        rm -f "$1/bin/__pycache__/$name".cpython-*.pyc
    fi
    [ -d "$1/lib" ] || return 0
    rm -f "$1/lib/provider.py"
    rm -rf "$1/lib/__pycache__"
    rmdir "$1/lib" 2>/dev/null || :
}

# make_dir DIR MODE: create DIR with MODE if missing; an existing folder keeps its mode.
make_dir() {
    [ -d "$1" ] || mkdir -m "$2" "$1"
}

# ----------------------------------------------------------------------------- actions

# validate_with_plugin HOME: the plugin's own config validation (its 'configs' answer), as
# the installed plugin would see the config; a disabled provider is fine, a config error is not.
validate_with_plugin() {
    answer=$("$python" -I -S "$1/bin/$name" configs 2>/dev/null) || :
    case $answer in
        *'error N104, '*|*'error N110, '*)
            answer=${answer#*error N1[01][04], }
            answer=${answer%\"\}}
            answer=${answer#"the config $1/$conf_rel "}
            die 1 "config file '${config_src:-(the starting config)}' does not validate: $answer" ;;
    esac
}

# named_files CONFIG: the files CONFIG names (every "..._file" key, pool_key, the command
# and notify programs given with a "/"), one line each: "carry<TAB>REL<TAB>SOURCE<TAB>MODE" for a
# path relative to the home (or under /opt/webdir/providers/NAME/), looked for at the same
# relative path from the config's own home: the folder above it when it lies in an etc/
# folder (HOME/etc/NAME.conf), else its folder; "missing<TAB>REL<TAB>KEY" when not there;
# "master<TAB>PATH<TAB>KEY" for an absolute path elsewhere (it must exist on the master).
named_files() {
    "$python" -I -S - "$1" "/opt/webdir/providers/$name/" <<'PY'
import json, os, re, stat, sys
config, installed = sys.argv[1], sys.argv[2]
folder = os.path.dirname(os.path.abspath(config))
home = os.path.dirname(folder) if os.path.basename(folder) == "etc" else folder
with open(config, "rb") as handle:
    data = json.loads(handle.read().decode("utf-8-sig"))
named = []
def walk(value):
    if isinstance(value, dict):
        for key, item in value.items():
            if isinstance(item, str) and (key.endswith("_file") or key == "pool_key"):
                named.append((key, item, "0600"))
            elif (key in ("command", "notify") and isinstance(item, list) and item
                  and isinstance(item[0], str) and "/" in item[0]):
                named.append((key, item[0], "0700"))
            else:
                walk(item)
    elif isinstance(value, list):
        for item in value:
            walk(item)
walk(data)
seen = set()
for key, path, mode in named:
    if path.startswith(installed):
        path = path[len(installed):]
    if os.path.isabs(path):
        print("master\t%s\t%s" % (path, key))
        continue
    rel = os.path.normpath(path)
    if rel.startswith("..") or not re.match(r"^[A-Za-z0-9._/+-]+$", rel):
        print("missing\t%s\t%s: a path outside the home, or with other characters" % (rel, key))
    elif rel not in seen:
        seen.add(rel)
        source = os.path.join(home, rel)
        try:                    # the plugin's own rule: a regular file only its owner
            st = os.lstat(source)   # (this user or root) can change, never a symlink
        except OSError:
            st = None
        if st is None or not stat.S_ISREG(st.st_mode):
            print("missing\t%s\t%s" % (rel, key if st is None else
                                        key + ": not a regular file (a symlink?)"))
        elif st.st_uid not in (os.geteuid(), 0) or st.st_mode & 0o022:
            print("missing\t%s\t%s: another user owns it or may write it" % (rel, key))
        else:
            print("carry\t%s\t%s\t%s" % (rel, source, mode))
PY
}

# carry_named_files: named_files' files into $stage (their modes; folders 0700), their
# relative paths in $carried; refuses, naming each, when any is not there.
carry_named_files() {
    files=$(named_files "$config_src") || die 1 "cannot read the files config file '$config_src' names"
    missing=
    while IFS=$TAB read -r kind rel source mode; do
        case $kind in
            missing) missing="$missing $rel ($source)," ;;
            master) say "Not in the archive: $rel ($source) is a path on the master; it must exist there." ;;
            carry)
                case " $(program_files) $conf_rel $carried " in *" $rel "*) continue ;; esac
                mkdir -p -m 0700 "$stage/$(dirname "$rel")"
                put_file "$stage/$rel" "$mode" <"$source"
                carried="$carried $rel" ;;
        esac
    done <<FILES
$files
FILES
    if [ -n "$missing" ]; then
        die 1 "config file '$config_src' names files that are not beside it (looked for relative to the folder above its etc/, or to its own folder):${missing%,}; put each there (the archive carries them, 0600), or name the master's own path"
    fi
}

do_archive() {
    check_source
    check_python
    if [ -n "$config_src" ]; then
        validate_config "$config_src"
    fi
    stage=$(mktemp -d "${TMPDIR:-/tmp}/provider-archive.XXXXXX")
    install_program "$stage"
    mkdir -m 0700 "$stage/etc"
    carried=
    if [ -n "$config_src" ]; then
        put_file "$stage/$conf_rel" 0600 <"$config_src"
        carry_named_files
    else
        put_file "$stage/$conf_rel" 0600 <<EOF
$(starting_config)
EOF
    fi
    validate_with_plugin "$stage"
    # Python's tarfile rather than tar(1): the same member names (no "./"), modes and
    # root ownership whatever tar the host has. Files only, no folder entries: bx-provider
    # makes bin/ and etc/ itself. The archive holds the config: 0600 from its first byte,
    # written in the private stage folder (O_EXCL|O_NOFOLLOW) and renamed into place (on
    # another file system: a new random name beside FILE, made the same way, then renamed),
    # so no name someone else made first is ever followed or written. The finished FILE is
    # checked: a regular file, the one just written, ours, 0600.
    # shellcheck disable=SC2046 # program_files prints plain relative paths
    # shellcheck disable=SC2086 # $carried: plain relative paths (named_files checks them)
    "$python" -I -S - "$archive" "$stage" $(program_files) "$conf_rel" $carried <<'PY' || die 1 "cannot write archive '$archive'"
import binascii, errno, os, stat, sys, tarfile, time
out, stage, members = sys.argv[1], sys.argv[2], sys.argv[3:]
now = int(time.time())
os.umask(0o077)
FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
def create(path):           # a new file, never a name someone made first (nor a link)
    return os.fdopen(os.open(path, FLAGS, 0o600), "wb")
def copy_beside(built):     # out is on another file system: a new name in its folder
    folder = os.path.dirname(os.path.abspath(out))
    for _ in range(100):
        tmp = os.path.join(folder, ".%s.%s.tmp" % (os.path.basename(out),
                                                   binascii.hexlify(os.urandom(8)).decode()))
        try:
            f = create(tmp)
        except FileExistsError:
            continue
        try:
            with f, open(built, "rb") as source:
                f.write(source.read())
                f.flush()
                os.fsync(f.fileno())
                made = os.fstat(f.fileno())
            os.replace(tmp, out)
        except BaseException:
            os.unlink(tmp)
            raise
        return made
    sys.exit("no free temporary name in %s" % folder)
try:
    built = os.path.join(stage, "archive.tar.gz")   # stage: 0700, this user's alone
    with create(built) as raw:
        with tarfile.open(fileobj=raw, mode="w:gz", format=tarfile.USTAR_FORMAT) as tar:
            for rel in members:
                info = tar.gettarinfo(os.path.join(stage, rel), arcname=rel)
                info.uid = info.gid = 0
                info.uname = info.gname = "root"
                info.mtime = now
                with open(os.path.join(stage, rel), "rb") as f:
                    tar.addfile(info, f)
        raw.flush()
        os.fsync(raw.fileno())
        made = os.fstat(raw.fileno())
    try:
        os.replace(built, out)
    except OSError as e:
        if e.errno != errno.EXDEV:
            raise
        made = copy_beside(built)
    st = os.lstat(out)      # what is there now must be the file just made, ours, 0600
    problem = ("not a regular file" if not stat.S_ISREG(st.st_mode) else
               "not the file just written" if (st.st_dev, st.st_ino) != (made.st_dev, made.st_ino)
               else "owned by uid %d" % st.st_uid if st.st_uid != os.geteuid() else
               "mode %o" % stat.S_IMODE(st.st_mode) if stat.S_IMODE(st.st_mode) != 0o600 else None)
    if problem:
        sys.exit("%s is %s after the write: not safe, check who else can write its folder"
                 % (out, problem))
except Exception as e:
    sys.exit("%s: %s" % (type(e).__name__, e))
for rel in members:
    print("  %s" % rel)
PY
    say "Built $archive with the members above. Install it on the host with:"
    say "  /opt/webdir/bin/bx-provider -a install --provider $name --archive '$archive'"
    say "It holds the config ($conf_rel) and the files it names, with any tokens and passwords in them: it is mode 0600; keep it private."
    if [ -z "$config_src" ]; then
        say "Its etc/$name.conf is the starting config: the provider stays disabled until it is edited."
    fi
}

# ----------------------------------------------------------------------------- rented servers

TAB=$(printf '\t')

# held_servers: held= the tasks that rent a cloud server, or may (a create under way), as
# the installed plugin says (tasks --holding --json): one line each, TASK TAB BACKEND TAB
# SERVER_ID TAB NAME (printable text; "-" for none). Status 1 when it cannot be told
# (held_problem says why). Nothing installed, no state: none.
held_servers() {
    held= held_problem=
    [ -f "$home/bin/$name" ] || return 0
    [ -d "$home/var" ] || return 0
    check_python
    if ! answer=$("$home/bin/$name" tasks --holding --json </dev/null 2>&1); then
        held_problem="'$home/bin/$name tasks --holding' failed: $answer"
        return 1
    fi
    held=$(printf '%s\n' "$answer" | "$python" -I -S -c '
import json, sys
def text(value):
    return "".join(ch if ch.isprintable() and ch != "\t" else "?"
                   for ch in str("-" if value is None else value))[:120]
for task in json.load(sys.stdin)["holding"]:
    print("\t".join(text(task.get(key)) for key in ("task_id", "backend", "server_id", "name")))
') || { held_problem="cannot read the answer of '$home/bin/$name tasks --holding --json'"; return 1; }
}

# say_held LINES: one line for people per rented server
say_held() {
    printf '%s\n' "$1" | while IFS=$TAB read -r task backend server sname; do
        [ -n "$task" ] || continue
        if [ "$server" = - ]; then
            say "  task $task ($backend): no server id yet, a create may be under way (name $sname)"
        else
            say "  task $task ($backend): server $server, name $sname"
        fi
    done
}

# refuse_held LINES: stop, nothing changed by this call
refuse_held() {
    say "These tasks still rent a cloud server, which costs money and which nothing would" >&2
    say "delete once $name is gone:" >&2
    say_held "$1" >&2
    die 1 "nothing removed. Add --delete-servers to delete them first (through '$home/bin/$name task delete-server ID --yes'), or --keep-servers to go on and keep them rented; a task with no server id yet: wait for it, or run '$home/bin/$name task fail ID' and wait for its cleanup"
}

# check_held: before anything changes: refuse while a task rents a server (unless told)
check_held() {
    if ! held_servers; then
        [ "$servers" = keep ] || die 1 "cannot tell whether a task still rents a cloud server: $held_problem. Nothing removed; --keep-servers goes on without knowing"
        say "WARNING: cannot tell whether a task still rents a cloud server: $held_problem" >&2
        held=
    fi
    if [ -n "$held" ] && [ -z "$servers" ]; then
        refuse_held "$held"
    fi
}

# settle_held: after the workers stopped (none can rent another server now): delete the
# rented servers (--delete-servers), list them (--keep-servers), or refuse.
settle_held() {
    held_servers || :
    [ -n "$held" ] || return 0
    case $servers in
        keep)
            say "Kept rented (billed; nothing will delete them now: delete them in the cloud's console):"
            say_held "$held"
            return 0 ;;
        delete) ;;
        *) refuse_held "$held" ;;
    esac
    printf '%s\n' "$held" | while IFS=$TAB read -r task backend server sname; do
        [ -n "$task" ] && [ "$server" != - ] || continue
        say "Deleting server $server of task $task ($backend, $sname):"
        if ! "$home/bin/$name" task delete-server "$task" --yes </dev/null; then
            die 1 "the server of task $task was not deleted (above); nothing removed"
        fi
    done || exit 1
    held_servers || die 1 "cannot tell whether the servers were deleted: $held_problem; nothing removed"
    if [ -n "$held" ]; then
        say "Still rented after the deletions:" >&2
        say_held "$held" >&2
        die 1 "nothing removed: a task with no server id yet cannot be deleted from here; wait for it, or run '$home/bin/$name task fail ID' and wait for its cleanup"
    fi
    say "Deleted the servers above; no task rents one now."
}

# stop_workers: the provider's detached workers (`NAME worker ID`) end before its files
# go: each is the process holding a lock file of var/workers/ open whose name (comm) is
# "NAME worker ID" (cut to 15 bytes) for that very lock; SIGTERM (a worker stops its program and saves), SIGKILL
# after 20 s, each time only while the pid still has the start time it was found with.
stop_workers() {
    [ -d "$home/var/workers" ] || return 0
    check_python
    "$python" -I -S - "$home/var/workers" "$name" <<'PY' || die 1 "cannot stop the workers of $name"
import os, signal, stat, sys, time
folder = sys.argv[1]
locks = {}
for name in os.listdir(folder):
    task = name[:-5]
    if name.endswith(".lock") and task.isdigit():
        st = os.lstat(os.path.join(folder, name))
        if stat.S_ISREG(st.st_mode):
            locks[(st.st_dev, st.st_ino)] = task
def start_time(pid):         # None once the process is gone (or a zombie)
    try:
        with open("/proc/%d/stat" % pid, "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
        return None if fields[0] in (b"Z", b"X") else int(fields[19])
    except (OSError, IndexError, ValueError):
        return None
def comm(pid):
    try:
        with open("/proc/%d/comm" % pid, "rb") as f:
            return f.read().decode("utf-8", "replace").strip()
    except OSError:
        return None
workers = {}
for entry in os.listdir("/proc") if locks else []:
    pid = int(entry) if entry.isdigit() else os.getpid()
    try:
        fds = os.listdir("/proc/%d/fd" % pid) if pid != os.getpid() else []
    except OSError:
        continue
    for fd in fds:
        try:
            st = os.stat("/proc/%d/fd/%s" % (pid, fd))
        except OSError:
            continue
        task = locks.get((st.st_dev, st.st_ino))
        # "NAME worker ID" (1.3), or "_worker ID" (a 1.2 worker still running)
        if task is not None and comm(pid) in ((sys.argv[2] + " worker " + task)[:15],
                                              ("_worker " + task)[:15]):
            workers[pid] = (task, start_time(pid))
def alive(pid):
    return workers[pid][1] is not None and start_time(pid) == workers[pid][1]
for pid in sorted(workers):
    if alive(pid):
        os.kill(pid, signal.SIGTERM)
        print("Stopping the worker of task %s (pid %d)" % (workers[pid][0], pid))
deadline = time.monotonic() + 20
while any(alive(pid) for pid in workers) and time.monotonic() < deadline:
    time.sleep(0.05)
for pid in sorted(workers):
    if alive(pid):
        os.kill(pid, signal.SIGKILL)
        print("The worker of task %s (pid %d) did not stop within 20 s: killed" % (
            workers[pid][0], pid))
if workers:
    print("Stopped %d worker(s)." % len(workers))
PY
}

# keep_aside: move what is left of the home (config, state, logs, bx-provider's tasks/) out of
# PREFIX, which bx-provider lists folder by folder, to a dated folder in PREFIX-removed (0700:
# it holds configs with secrets). An empty home is just removed.
keep_aside() {
    [ -d "$home" ] || return 0
    if rmdir "$home" 2>/dev/null; then
        say "Removed the empty folder $home"
        return 0
    fi
    mkdir -p "$removed_dir"
    chmod 0700 "$removed_dir"
    dated=$removed_dir/$name-$(date +%Y%m%d-%H%M%S)
    kept=$dated
    n=1
    while [ -e "$kept" ]; do
        kept=$dated-$n
        n=$((n + 1))
    done
    left=
    for entry in "$home"/* "$home"/.[!.]* "$home"/..?*; do
        if [ -e "$entry" ] || [ -L "$entry" ]; then
            left="$left ${entry##*/}"
            [ ! -d "$entry" ] || [ -L "$entry" ] || left="$left/"
        fi
    done
    mv "$home" "$kept"
    say "Moved what was left of $home ($(printf '%s' "${left# }" | sed 's/ /, /g')) to"
    say "  $kept"
    say "bx-provider no longer lists $name. To bring it back: mv '$kept' '$home', then run install.sh again."
}

do_uninstall() {
    check_held
    stop_workers
    settle_held
    found=
    for rel in "bin/$name" "lib/provider.py"; do
        if [ -e "$home/$rel" ] || [ -L "$home/$rel" ]; then
            rm -f "$home/$rel"
            say "Removed $home/$rel"
            found=1
        fi
    done
    rm -rf "$home/bin/__pycache__" "$home/lib/__pycache__"
    rmdir "$home/lib" 2>/dev/null || :
    rmdir "$home/bin" 2>/dev/null || :
    if [ -z "$found" ]; then
        say "Nothing to remove: $name is not installed in $home"
    fi
    keep_aside
}

do_purge() {
    [ -d "$home" ] || { say "Nothing to remove: $home does not exist"; return 0; }
    check_held
    doomed=
    for sub in bin lib etc var log; do
        if [ -e "$home/$sub" ] || [ -L "$home/$sub" ]; then
            doomed="$doomed $sub"
        fi
    done
    if [ -z "$doomed" ]; then
        say "Nothing to remove in $home"
    else
        say "This deletes, with everything in them:"
        for sub in $doomed; do
            say "  $home/$sub/"
        done
        if [ -z "$yes" ]; then      # a terminal: checked before anything was done
            printf 'Delete them? [y/N] '
            answer=
            read -r answer || :
            case $answer in
                y|Y|yes|YES|Yes) ;;
                *) say "Nothing deleted."; exit 1 ;;
            esac
        fi
        stop_workers
        settle_held
        for sub in $doomed; do
            rm -rf "${home:?}/$sub"
            say "Deleted $home/$sub/"
        done
    fi
    keep_aside
}

do_install() {
    check_source
    check_python
    if [ -n "$config_src" ]; then
        validate_config "$config_src"
    fi
    if ! command -v python3 >/dev/null 2>&1; then
        say "WARNING: no python3 in PATH; bin/$name then looks for /usr/libexec/platform-python and /usr/bin/python3.x." >&2
    fi

    # Decide about the config before changing anything.
    config_note=
    if [ -n "$config_src" ] && [ -e "$conf" ]; then
        if cmp -s "$config_src" "$conf"; then
            config_note="unchanged (same as $config_src)"
            config_src=
        elif [ -z "$force" ]; then
            die 1 "$conf exists and differs from $config_src; nothing changed. Add --force to replace it (the old one is kept as a dated .bak)."
        fi
    fi

    if [ -e "$home/bin/$name" ]; then verb=Upgraded; else verb=Installed; fi
    umask 022
    install_program "$home"
    remove_old_layout "$home"
    make_dir "$home/etc" 0700
    make_dir "$home/var" 0700
    make_dir "$home/log" 0700

    if [ -n "$config_src" ]; then
        if [ -e "$conf" ]; then
            stamp=$(date +%Y%m%d-%H%M%S)
            backup=$conf.$stamp.bak
            n=1
            while [ -e "$backup" ]; do
                backup=$conf.$stamp-$n.bak
                n=$((n + 1))
            done
            cp -p "$conf" "$backup"
            chmod 0600 "$backup"
            config_note="installed from $config_src; the old one is kept as $backup"
        else
            config_note="installed from $config_src"
        fi
        put_file "$conf" 0600 <"$config_src"
    elif [ ! -e "$conf" ]; then
        put_file "$conf" 0600 <<EOF
$(starting_config)
EOF
        config_note="starting config written: the provider is DISABLED until you edit it"
    elif [ -z "$config_note" ]; then
        config_note="kept as it was"
    fi

    say "$verb $name in $home"
    say ""
    # Run as bx-provider runs it: its first run caches its bytecode, as this user.
    say "Running: $home/bin/$name check"
    check_ok=1
    "$home/bin/$name" check || check_ok=

    say ""
    say "Where everything is:"
    say "  script:  $home/bin/$name"
    if [ -n "$program_name" ]; then
        say "  program: $home/bin/$program_name"
    fi
    say "  config:  $conf ($config_note)"
    say "  state:   $home/var/"
    say "  log:     $home/log/$name.log"
    say "  tasks:   $home/tasks/ (bx-provider's; the plugin only reads it)"
    say "  test:    $home/bin/$name help"
    say ""
    if [ -n "$check_ok" ]; then
        say "The check passed."
    else
        say "The check reported problems (above): each line says what to do. Edit $conf"
        say "(docs/reference.md, section 'Config reference'), then run: $home/bin/$name check"
    fi
    if [ "$(id -u)" = 0 ]; then
        say "The files are owned by root (install.sh does no chown; bx-provider -a install chowns to bitrix)."
    fi
}

case $action in
    install) do_install ;;
    uninstall) do_uninstall ;;
    purge) do_purge ;;
    archive) do_archive ;;
esac
