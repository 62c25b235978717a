#!/bin/sh
# provision-example.sh - an example program for provider.py's command backend.
#
# provider.py runs it once per order, in the background, with:
#   BXPROVIDER_TASK_ID    the order's task id ("24")
#   BXPROVIDER_CONFIG_ID  the configuration ordered ("1")
#   BXPROVIDER_PARAMS     that configuration's "params" as JSON ({"cpu": 2, ...})
#   and the same as one JSON line on stdin: {"task_id", "config_id", "params"}
#   plus the backend's "env" settings (here EXAMPLE_SERVER, EXAMPLE_DELAY).
#
# What it must do:
#   - print "progress: TEXT" lines on stderr: each becomes the order's message;
#   - on success: exit 0 with {"server": ADDR, "server_password": PW} as the
#     LAST line of stdout. The server must accept `ssh root@ADDR` on port 22
#     with that password (or hold the caller's pool key, with "" as password);
#   - on failure: exit non-zero; the last line of stderr is the order's message.
# Everything it prints goes to <home>/log/tasks/<task id>.log (the password
# from the result line is removed). It is killed after the backend's timeout.
#
# THIS EXAMPLE BUILDS NOTHING: after three short pauses it "hands out"
# EXAMPLE_SERVER (examples/command.conf: 192.0.2.10, a documentation address
# where no server is) with a password it made up, so a demo order finishes
# (with "ssh_probe": false) and "add to pool" of it fails. For production,
# replace the marked part with your hoster's API calls (curl, your CLI), so
# that the server and the password are real, and set "ssh_probe": true.
set -eu

delay=${EXAMPLE_DELAY:-2}
server=${EXAMPLE_SERVER:-}
if [ -z "$server" ]; then
    echo "EXAMPLE_SERVER is not set in the backend's env" >&2
    exit 2
fi

request=$(cat)          # the same data as the environment, for JSON-minded programs
echo "order $BXPROVIDER_TASK_ID: configuration $BXPROVIDER_CONFIG_ID"
echo "params: $BXPROVIDER_PARAMS"
echo "request on stdin: $request"

# A fresh root password: 20 letters and digits.
password=$(LC_ALL=C tr -dc 'A-Za-z0-9' </dev/urandom | dd bs=20 count=1 2>/dev/null)

# ---- replace from here: create the server through your hoster's API --------
echo "progress: creating the server" >&2
sleep "$delay"
echo "progress: setting the root password" >&2
# e.g. ssh root@"$server" "echo 'root:$password' | chpasswd"   (on a real server)
sleep "$delay"
echo "progress: waiting for the server to boot" >&2
sleep "$delay"
# ---- to here ----------------------------------------------------------------

# The result: the last line of stdout.
printf '{"server": "%s", "server_password": "%s"}\n' "$server" "$password"
