#!/bin/sh
# notify-telegram.sh - a notify hook for provider.py: each event as a Telegram message.
#
# In the config (top level): "notify": ["bin/notify-telegram.sh"]  (relative to the home;
# root-owned, mode 0755: a hook others could change is never run). It runs in the home
# folder with one JSON object on stdin: event, provider, task_id, config_id, status,
# message, server, server_id. Its output goes to log/tasks/ID.log.
# The bot's token and the chat id are files only root can read (never the config):
#   etc/telegram.token, etc/telegram.chat
set -eu
token=$(cat etc/telegram.token)
chat=$(cat etc/telegram.chat)
event=$(cat)
# the URL (it holds the token) goes to curl on stdin, never on its command line (ps)
printf 'url = "https://api.telegram.org/bot%s/sendMessage"\n' "$token" |
    curl -sS --max-time 20 -o /dev/null -w 'telegram: HTTP %{http_code}\n' -K - \
        --data-urlencode "chat_id=$chat" --data-urlencode "text=$event"
