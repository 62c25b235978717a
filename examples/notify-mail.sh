#!/bin/sh
# notify-mail.sh - a notify hook for provider.py: each event as a mail (mail(1), e.g.
# from s-nail or mailx). In the config (top level):
#   "notify": ["bin/notify-mail.sh", "admin@example.com"]
# It runs in the home folder with one JSON object on stdin: event, provider, task_id,
# config_id, status, message, server, server_id. Its output goes to log/tasks/ID.log.
set -eu
to=${1:-root}
event=$(cat)
what=$(printf '%s' "$event" | sed -n 's/.*"event": "\([a-z_]*\)".*"task_id": "\([0-9]*\)".*/task \2: \1/p')
printf '%s\n' "$event" | mail -s "provider.py ${what:-event}" "$to"
