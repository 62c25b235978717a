# -*- coding: utf-8 -*-
"""Fake Hetzner Cloud and Timeweb Cloud APIs, and a fake SSH banner, for tests.

Standard library only; Python 3.6 to 3.13.  Everything listens on 127.0.0.1, port 0.

    api = FakeHetzner(token="T", polls_per_status=1, ip_after_polls=2).start()
    ... point the plugin's backend "api_url" at api.url ...
    api.stop()

Both fakes follow their APIs' official definitions, named where each shape is made:
Hetzner hetznercloud/hcloud-go (hcloud/schema/, hcloud/error.go) and docs.hetzner.cloud;
Timeweb its OpenAPI (timeweb-cloud/sdk-go api/openapi.yaml).  Where they are silent, the fake
makes a guess that is marked "GUESS" below; a backend must not depend on a guess being exact.

Knobs common to both fakes (constructor keyword arguments, also plain attributes):

    token             the only accepted bearer token (others -> 401 with the provider's body)
    ipv4              public IPv4 given to created servers (default "127.0.0.1")
    polls_per_status  how many GETs that return a server it takes to move it one step along
                      status_sequence (0 = already final in the create response)
    ip_after_polls    the public IPv4 is shown once the server has been returned by this many
                      GETs (0 = already in the create response)
    status_sequence   list of statuses a new server walks through; last one is final
    unique_names      a create with a name that already exists -> 409
    tls               (certfile, keyfile): serve HTTPS with that certificate (url is https://)
    ignore_filters    (attribute) the server list ignores its filters, as a broken API might:
                      Hetzner every server for any label_selector/name, Timeweb the first page
                      for any offset with a meta.total that never ends

A "poll" is any GET response (by id or in a list) that contains the server.

Failure injection (all consume one "count" per matching request, first matching rule wins):

    api.fail_next(status, count=1, method=None, path=None, body=None, headers=None, apply=False,
                  raw=None)
        answer `count` matching requests with `status` and the provider's error body (or `body`).
        apply=True: the request is carried out first (e.g. the server IS created) and only
        the answer is replaced.  raw (bytes or str): send exactly that body instead, without a
        JSON Content-Type (b"": an empty body, as a load balancer's 502/503 may have);
        `headers` may add a Content-Type.
    api.rate_limit_next(count=1, reset_in=1, retry_after=True, method=None, path=None)
    api.server_error_next(count=1, method=None, path=None, apply=False)
    api.error_next(status, code, message, count=1, method=None, path=None, details=None)
        a documented error body with a chosen code (Hetzner `code`, Timeweb `error_code`).
    api.hang_next(seconds, count=1, method=None, path=None, apply=True)
        carry the request out (apply=True), then send nothing for `seconds` and close the
        connection without an answer.  stop() releases a hang at once.
    api.hang_next_create(seconds, count=1)   the same for POST /servers.
    api.drop_next(count=1, method=None, path=None), api.drop_next_create(count=1)
        carry the request out, then close the connection at once without an answer:
        an answer lost (as a timeout loses it) without waiting for a client's timeout.
    api.clear_failures()

`method` filters on the HTTP method; `path` is a regular expression searched in the path
below the API prefix (e.g. r"^/servers$" or r"^/servers/\\d+$").

Inspection:

    api.requests              list of dicts: method, path (below the prefix), query (dict of
                              lists), headers (dict; Authorization value replaced by
                              "Bearer <redacted>"), token_ok (bool), body (parsed JSON or None),
                              raw_body (str), status (answer status or None when hung)
    api.requests_for(method=None, path=None)   filtered copy (path = regex as above)
    api.create_requests()     the POST /servers records
    api.servers               dict id -> server record (the fake's internal state)
    api.server(id)            the record; api.set_status(id, status) pins a status;
    api.add_server(...)       pre-seed a server; api.remove_server(id) makes it vanish
    api.reset()               forget servers, requests and failure rules

SSHBannerServer(banner=..., silent=False, hold=0.2).start() -> .host, .port, .connections;
set .silent = True at any time to accept connections and send nothing.
"""

import json
import re
import socket
import socketserver
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, HTTPServer

from urllib.parse import urlsplit, parse_qs


__all__ = ["FakeHetzner", "FakeTimeweb", "SSHBannerServer"]


class _ThreadingHTTPServer(socketserver.ThreadingMixIn, HTTPServer):
    """http.server.ThreadingHTTPServer only exists from 3.7: build it here."""

    daemon_threads = True
    block_on_close = False  # 3.7+: do not join hung handler threads in server_close()
    allow_reuse_address = True
    tls = False

    def handle_error(self, request, client_address):
        # a TLS client that refuses our certificate hangs up mid-handshake: not news
        if self.tls and isinstance(sys.exc_info()[1], OSError):
            return
        HTTPServer.handle_error(self, request, client_address)


def wake(address):
    """Connect to a server's listening socket and hang up: its accept returns."""
    try:
        socket.create_connection(address, timeout=5).close()
    except OSError:
        pass                # not listening any more: nothing waits in accept


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"  # one request per connection, like a simple client expects
    server_version = "FakeCloud/1.0"

    def log_message(self, fmt, *args):  # keep test output clean
        pass

    def _dispatch(self):
        self.server.owner._handle(self)

    do_GET = _dispatch
    do_POST = _dispatch
    do_DELETE = _dispatch
    do_PUT = _dispatch
    do_PATCH = _dispatch


class _Answer(object):
    """What the fake decided to answer: status, JSON body (or None) and extra headers."""

    def __init__(self, status, body=None, headers=None, raw=None, reason=None):
        self.status = status
        self.body = body
        self.headers = dict(headers or {})
        self.raw = raw.encode("utf-8") if isinstance(raw, str) else raw   # sent as is
        self.reason = reason    # the status line's text (None: the standard phrase)


class Pause(object):
    """pause_next's handle: reached (a request waits), released (it goes on)."""

    def __init__(self):
        self.reached = threading.Event()
        self.released = threading.Event()

    def release(self):
        self.released.set()


class _FakeAPI(object):
    """Common machinery: server lifecycle, auth, recording, failure rules, server states."""

    prefix = ""                      # API path prefix, e.g. "/v1"
    other_prefixes = ()              # paths outside it that route() takes whole
    default_sequence = ["running"]
    CREATE_PATH = r"^/servers/?$"   # the create request's path (below the prefix)

    def __init__(self, token="test-token", ipv4="127.0.0.1", polls_per_status=1,
                 ip_after_polls=0, status_sequence=None, unique_names=True, tls=None):
        self.token = token
        self.tls = tls
        self.ipv4 = ipv4
        self.polls_per_status = polls_per_status
        self.ip_after_polls = ip_after_polls
        self.status_sequence = list(status_sequence or self.default_sequence)
        self.unique_names = unique_names
        self.ignore_filters = False
        self.lock = threading.RLock()
        self._stop_event = threading.Event()
        self.holds = []                 # hold_next's events
        self._httpd = None
        self._thread = None
        self.reset()

    # ---- lifecycle -------------------------------------------------------------------
    def start(self):
        self._stop_event.clear()
        self._httpd = _ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._httpd.owner = self
        if self.tls:
            import ssl
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(*self.tls)
            self._httpd.socket = context.wrap_socket(self._httpd.socket, server_side=True)
            self._httpd.tls = True
        self._thread = threading.Thread(target=self._serve, args=(self._httpd,))
        self._thread.daemon = True
        self._thread.start()
        return self

    def _serve(self, httpd):
        # handle_request blocks until a connection comes (no polling): stop() wakes
        # it with one of its own, so a test's clean-up does not wait out a poll interval
        httpd.timeout = None
        while not self._stop_event.is_set():
            httpd.handle_request()

    def stop(self):
        self._stop_event.set()  # releases hung handlers
        for release in self.holds:
            release.set()           # and held ones
        if self._httpd is not None:
            wake(self._httpd.server_address)
            self._thread.join(5)
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    @property
    def port(self):
        return self._httpd.server_address[1]

    @property
    def base_url(self):
        return "%s://127.0.0.1:%d" % ("https" if self.tls else "http", self.port)

    @property
    def url(self):
        """The value for the backend's "api_url" (includes the API prefix)."""
        return self.base_url + self.prefix

    def reset(self):
        with self.lock:
            self.servers = {}
            self.requests = []
            self.rules = []
            self._next_id = 4711
            self._next_action = 100

    # ---- failure rules ---------------------------------------------------------------
    def fail_next(self, status, count=1, method=None, path=None, body=None, headers=None,
                  apply=False, raw=None):
        if body is None and raw is None:
            body = self.error_body(status, self.default_code(status),
                                   "injected failure (HTTP %d)" % status)
        self._add_rule(dict(kind="answer", status=status, count=count, method=method,
                            path=path, body=body, headers=headers or {}, apply=apply,
                            raw=raw))

    def error_next(self, status, code, message, count=1, method=None, path=None,
                   details=None):
        self.fail_next(status, count=count, method=method, path=path,
                       body=self.error_body(status, code, message, details))

    def server_error_next(self, count=1, method=None, path=None, apply=False):
        self.fail_next(500, count=count, method=method, path=path, apply=apply)

    def rate_limit_next(self, count=1, reset_in=1, retry_after=True, method=None, path=None):
        self._add_rule(dict(kind="ratelimit", status=429, count=count, method=method,
                            path=path, reset_in=reset_in, retry_after=retry_after,
                            apply=False))

    def hang_next(self, seconds, count=1, method=None, path=None, apply=True):
        self._add_rule(dict(kind="hang", status=None, count=count, method=method, path=path,
                            seconds=seconds, apply=apply))

    def hang_next_create(self, seconds, count=1):
        self.hang_next(seconds, count=count, method="POST", path=self.CREATE_PATH, apply=True)

    def hold_next(self, method=None, path=None):
        """Carry the next matching request out, then keep its answer until the
        returned event is set (or stop()): a request the API is still busy with."""
        release = threading.Event()
        self.holds.append(release)
        self._add_rule(dict(kind="hold", status=None, count=1, method=method, path=path,
                            apply=True, release=release))
        return release

    def hold_next_create(self):
        return self.hold_next(method="POST", path=self.CREATE_PATH)

    def late_next_create(self, status=None):
        """The next create gets no answer (status None: the client's request_timeout ends
        it) or `status` (a gateway's 504) now, and is carried out only when the returned
        event is set: a create the API makes after the client gave up on it."""
        release = threading.Event()
        self.holds.append(release)
        self._add_rule(dict(kind="late", status=status, count=1, method="POST",
                            path=self.CREATE_PATH, apply=False, release=release,
                            body=self.error_body(status, self.default_code(status),
                                                 "injected late create (HTTP %d)" % status)
                            if status else None, headers={"Connection": "close"}, raw=None))
        return release

    def pause_next(self, method=None, path=None, skip=0):
        """The next matching request (after `skip` others) waits before anything is done
        for it until release() of the returned Pause; its `reached` is set meanwhile."""
        pause = Pause()
        self.holds.append(pause.released)
        self._add_rule(dict(kind="pause", status=None, count=1, method=method, path=path,
                            apply=True, skip=skip, pause=pause))
        return pause

    def drop_next(self, count=1, method=None, path=None):
        self.hang_next(0, count=count, method=method, path=path, apply=True)

    def drop_next_create(self, count=1):
        self.hang_next_create(0, count=count)

    def clear_failures(self):
        with self.lock:
            self.rules = []

    def _add_rule(self, rule):
        with self.lock:
            self.rules.append(rule)

    def _take_rule(self, method, path):
        with self.lock:
            for rule in self.rules:
                if rule["count"] <= 0:
                    continue
                if rule["method"] and rule["method"].upper() != method:
                    continue
                if rule["path"] and not re.search(rule["path"], path):
                    continue
                if rule.get("skip"):
                    rule["skip"] -= 1
                    continue
                rule["count"] -= 1
                return dict(rule)
        return None

    # ---- inspection ------------------------------------------------------------------
    def requests_for(self, method=None, path=None):
        with self.lock:
            return [dict(r) for r in self.requests
                    if (method is None or r["method"] == method.upper())
                    and (path is None or re.search(path, r["path"]))]

    def create_requests(self):
        return self.requests_for("POST", self.CREATE_PATH)

    def server(self, server_id):
        with self.lock:
            return self.servers.get(int(server_id))

    def set_status(self, server_id, status):
        """Pin a server to `status` (stops the automatic progression)."""
        with self.lock:
            rec = self.servers[int(server_id)]
            rec["pinned_status"] = status

    def remove_server(self, server_id):
        with self.lock:
            self.servers.pop(int(server_id), None)

    # ---- server records --------------------------------------------------------------
    def _new_record(self, name, request, labels=None, comment=""):
        with self.lock:
            self._next_id += 1
            sid = self._next_id
            rec = {
                "id": sid, "name": name, "labels": dict(labels or {}), "comment": comment,
                "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "polls": 0, "pinned_status": None, "ipv4": self.ipv4,
                "polls_per_status": self.polls_per_status,
                "ip_after_polls": self.ip_after_polls,
                "status_sequence": list(self.status_sequence),
                "request": request,
                "root_password": "Provider" + uuid.uuid4().hex[:12],
            }
            self.servers[sid] = rec
            return rec

    def add_server(self, name, labels=None, comment="", status=None, ipv4=None, **extra):
        """Pre-seed a server (as if made earlier, e.g. by a run that was killed)."""
        rec = self._new_record(name, dict(extra), labels=labels, comment=comment)
        rec["ipv4"] = ipv4 if ipv4 is not None else self.ipv4
        rec["ip_after_polls"] = 0
        if status:
            rec["pinned_status"] = status
        else:
            rec["polls_per_status"] = 0
        return rec

    @staticmethod
    def current_status(rec):
        if rec["pinned_status"]:
            return rec["pinned_status"]
        seq = rec["status_sequence"]
        pps = rec["polls_per_status"]
        if pps <= 0:
            return seq[-1]
        return seq[min(rec["polls"] // pps, len(seq) - 1)]

    @staticmethod
    def current_ipv4(rec):
        if rec["ipv4"] and rec["polls"] >= rec["ip_after_polls"]:
            return rec["ipv4"]
        return None

    def _observe(self, rec):
        """Render the server for a GET answer, then count the poll."""
        body = self.render(rec)
        rec["polls"] += 1
        return body

    # ---- HTTP ------------------------------------------------------------------------
    def _handle(self, h):
        split = urlsplit(h.path)
        path = split.path
        if self.prefix and path.startswith(self.prefix):
            path = path[len(self.prefix):] or "/"
        elif path.startswith(self.other_prefixes):
            pass                                # routed whole (an API's other version)
        elif self.prefix:
            path = "!outside-prefix!" + path
        query = parse_qs(split.query, keep_blank_values=True)
        method = h.command.upper()
        length = int(h.headers.get("Content-Length") or 0)
        raw = h.rfile.read(length).decode("utf-8", "replace") if length else ""
        token_ok = self.credential_ok(path, h.headers)
        headers = {}
        for key in h.headers.keys():
            headers[key] = h.headers[key]
        if "Authorization" in headers:
            headers["Authorization"] = "Bearer <redacted>"
        if "X-Auth-Token" in headers:
            headers["X-Auth-Token"] = "<redacted>"
        body = None
        bad_json = False
        if raw:
            try:
                body = json.loads(raw)
            except ValueError:
                bad_json = True
        rec = {"method": method, "path": path, "query": query, "headers": headers,
               "token_ok": token_ok, "body": body, "raw_body": raw, "status": None,
               "time": time.time()}
        with self.lock:
            self.requests.append(rec)

        rule = self._take_rule(method, path)
        if rule is not None and rule["kind"] == "late":
            self._late(h, rec, rule, (method, path, query, body))
            return
        if rule is not None and rule["kind"] == "pause":
            rule["pause"].reached.set()
            rule["pause"].released.wait(60)
            rule = None
        if rule is not None and not rule["apply"]:
            # rejected before anything happens
            if rule["kind"] == "hang":
                self._hang(h, rec, rule["seconds"])
                return
            answer = self._rule_answer(rule)
        else:
            if path.startswith("!outside-prefix!"):
                answer = _Answer(404, self.error_body(404, "not_found", "no such endpoint"))
            elif not token_ok and self.needs_token(method, path):
                answer = self.unauthorized()
            elif bad_json:
                answer = self.bad_json()
            else:
                with self.lock:
                    answer = self.route(method, path, query, body)
            if rule is not None:
                # the request was carried out; only the answer is replaced (or withheld)
                if rule["kind"] == "hang":
                    self._hang(h, rec, rule["seconds"])
                    return
                if rule["kind"] == "hold":
                    rule["release"].wait(60)
                else:
                    answer = self._rule_answer(rule)
        rec["status"] = answer.status
        self._send(h, answer)

    def _late(self, h, rec, rule, request):
        """late_next_create: answer now (or not at all), carry the create out on release."""
        if rule["status"]:          # (Connection: close: the client's next request goes
            rec["status"] = rule["status"]      # on a new connection, not to this thread)
            self._send(h, self._rule_answer(rule))
            h.close_connection = True
        if rule["release"].wait(60) and not self._stop_event.is_set():
            with self.lock:
                self.route(*request)
        if not rule["status"]:
            self._hang(h, rec, 0)

    def _hang(self, h, rec, seconds):
        self._stop_event.wait(seconds)
        rec["status"] = None
        h.close_connection = True
        try:
            h.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def _rule_answer(self, rule):
        if rule["kind"] == "ratelimit":
            return self.rate_limited(rule["reset_in"], rule["retry_after"])
        return _Answer(rule["status"], rule["body"], rule["headers"], rule.get("raw"))

    def _send(self, h, answer):
        data = b""
        json_body = answer.raw is None and answer.body is not None
        if answer.raw is not None:
            data = answer.raw
        elif json_body:
            data = json.dumps(answer.body).encode("utf-8")
        headers = self.common_headers()
        headers.update(answer.headers)
        try:
            h.send_response(answer.status, answer.reason)
            if json_body:
                h.send_header("Content-Type", "application/json")
            h.send_header("Content-Length", str(len(data)))
            for key, value in headers.items():
                h.send_header(key, str(value))
            h.end_headers()
            if data:
                h.wfile.write(data)
        except (OSError, socket.error):
            pass  # client gave up (its timeout); nothing to do

    # ---- provider specifics (overridden) ----------------------------------------------
    def credential_ok(self, path, headers):
        return headers.get("Authorization", "") == "Bearer " + self.token

    def common_headers(self):
        return {}

    def needs_token(self, method, path):
        """False for a path that hands tokens out (an IAM endpoint): no bearer token."""
        return True

    def error_body(self, status, code, message, details=None):
        raise NotImplementedError

    def default_code(self, status):
        raise NotImplementedError

    def unauthorized(self):
        raise NotImplementedError

    def bad_json(self):
        raise NotImplementedError

    def rate_limited(self, reset_in, retry_after):
        raise NotImplementedError

    def route(self, method, path, query, body):
        raise NotImplementedError

    def render(self, rec):
        raise NotImplementedError


# ======================================================================================
# Hetzner Cloud
# ======================================================================================

# the code a status gets when a test names none: the codes of hcloud-go hcloud/error.go and
# docs.hetzner.cloud "Errors" (unavailable: "a service or product is currently not
# available"); method_not_allowed is a GUESS (no code is documented for a wrong method)
_HZ_CODES = {400: "json_error", 401: "unauthorized", 403: "forbidden", 404: "not_found",
             405: "method_not_allowed", 409: "conflict", 412: "resource_unavailable",
             422: "invalid_input", 423: "locked", 429: "rate_limit_exceeded",
             500: "server_error", 503: "unavailable", 504: "timeout"}

_LABEL_NAME = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9_.-]{0,61}[A-Za-z0-9])?$")
_LABEL_VALUE = re.compile(r"^([A-Za-z0-9]([A-Za-z0-9_.-]{0,61}[A-Za-z0-9])?)?$")
_HOSTNAME = re.compile(r"^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$")


def _label_key_ok(key):
    if "/" in key:
        prefix, name = key.rsplit("/", 1)
        if not prefix or len(prefix) > 253 or prefix.startswith("hetzner.cloud"):
            return False
        if not all(_LABEL_NAME.match(p) for p in prefix.split(".")):
            return False
    else:
        name = key
    return bool(_LABEL_NAME.match(name))


def _split_selector(selector):
    """Split on commas that are not inside parentheses."""
    parts, depth, cur = [], 0, ""
    for ch in selector:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    parts.append(cur)
    return [p.strip() for p in parts if p.strip()]


def label_selector_matches(selector, labels):
    """Hetzner label-selector semantics (k=v, k==v, k!=v, k, !k, k in (..), k notin (..)).

    Raises ValueError on a selector it cannot parse.
    """
    for term in _split_selector(selector):
        m = re.match(r"^(\S+)\s+(in|notin)\s+\(([^)]*)\)$", term)
        if m:
            key, op, values = m.group(1), m.group(2), [v.strip() for v in m.group(3).split(",")]
            present = key in labels and labels[key] in values
            if (op == "in") != present:
                return False
            continue
        m = re.match(r"^([^=!\s]+)\s*(==|=|!=)\s*(\S*)$", term)
        if m:
            key, op, value = m.groups()
            if op == "!=":
                if labels.get(key) == value:
                    return False
            elif labels.get(key) != value:
                return False
            continue
        m = re.match(r"^(!?)([^=!\s()]+)$", term)
        if m:
            if bool(m.group(1)) == (m.group(2) in labels):
                return False
            continue
        raise ValueError("cannot parse label selector term %r" % term)
    return True


# GET /locations, /server_types, /images: a few entries each (shapes trimmed to what matters)
_HZ_CATALOG = {
    "locations": [{"name": "fsn1", "description": "Falkenstein DC Park 1", "country": "DE",
                   "city": "Falkenstein", "network_zone": "eu-central"},
                  {"name": "nbg1", "description": "Nuremberg DC Park 1", "country": "DE",
                   "city": "Nuremberg", "network_zone": "eu-central"},
                  {"name": "hel1", "description": "Helsinki DC Park 1", "country": "FI",
                   "city": "Helsinki", "network_zone": "eu-central"}],
    "server_types": [{"name": "cx22", "cores": 2, "memory": 4.0, "disk": 40},
                     {"name": "cx32", "cores": 4, "memory": 8.0, "disk": 80}],
    "images": [{"name": "ubuntu-24.04", "type": "system", "os_flavor": "ubuntu"},
               {"name": "rocky-9", "type": "system", "os_flavor": "rocky"}],
    # hcloud-go hcloud/schema/network.go Network (id, name, ip_range, ...), firewall.go
    # Firewall, placement_group.go PlacementGroup (type "spread"); listed as the others,
    # filtered by ?name= (hcloud/network.go NetworkListOpts, firewall.go FirewallListOpts,
    # placement_group.go PlacementGroupListOpts)
    # (loop-net: a network the test machine is in, for `check`; no real one is 127/8)
    "networks": [{"name": "bx-net", "ip_range": "10.0.0.0/16"},
                 {"name": "backup-net", "ip_range": "10.1.0.0/16"},
                 {"name": "loop-net", "ip_range": "127.0.0.0/8"}],
    "firewalls": [{"name": "bx-ssh"}, {"name": "bx-web"}],
    "placement_groups": [{"name": "bx-spread", "type": "spread"}],
}


class FakeHetzner(_FakeAPI):
    """Fake of https://api.hetzner.cloud/v1 (servers, locations, server types, images).

    Sources: hetznercloud/hcloud-go hcloud/schema/ (server.go: ServerCreateRequest,
    ServerCreateResponse, ServerGetResponse, ServerListResponse, ServerDeleteResponse;
    meta.go: the pagination; error.go: the error body; server_type.go, image.go,
    location.go), hcloud/error.go (the error codes), hcloud/server.go (ServerStatus),
    and docs.hetzner.cloud ("Errors", "Rate Limiting", "Labels", "Create a Server")."""

    prefix = "/v1"
    default_sequence = ["initializing", "starting", "running"]
    rate_limit = 3600

    def __init__(self, **kw):
        _FakeAPI.__init__(self, **kw)
        self.remaining = self.rate_limit
        self._last_refill = time.time()
        # a server's IPv4 in a private network it was created in: "PREFIX.<server id>"
        # (a test that must reach it over SSH sets a whole address: every server gets it)
        self.private_ip = "10.0.0."
        # GETs a deleted server still answers (as it was) before its delete action is done
        self.delete_lag = 0

    # ---- shapes ----------------------------------------------------------------------
    def error_body(self, status, code, message, details=None):
        # hcloud-go hcloud/schema/error.go: {"error": {"code", "message", "details"}}
        return {"error": {"code": code, "message": message, "details": details}}

    def default_code(self, status):
        return _HZ_CODES.get(status, "server_error" if status >= 500 else "invalid_input")

    def common_headers(self):
        # docs.hetzner.cloud "Rate Limiting": 3600 requests an hour per project;
        # documented behaviour: RateLimit-Remaining drops by one per request and recovers by
        # one per second; RateLimit-Reset is the UNIX time of full recovery
        now = time.time()
        with self.lock:
            gained = int(now - self._last_refill)
            self._last_refill += gained
            self.remaining = min(self.rate_limit, self.remaining + gained)
            self.remaining = max(0, self.remaining - 1)
            remaining = self.remaining
        return {"RateLimit-Limit": self.rate_limit, "RateLimit-Remaining": remaining,
                "RateLimit-Reset": int(now) + (self.rate_limit - remaining)}

    def unauthorized(self):
        return _Answer(401, self.error_body(401, "unauthorized", "unable to authenticate"))

    def bad_json(self):
        return _Answer(400, self.error_body(400, "json_error", "invalid JSON in request body"))

    def rate_limited(self, reset_in, retry_after):
        reset = int(time.time()) + int(reset_in)
        headers = {"RateLimit-Limit": self.rate_limit, "RateLimit-Remaining": 0,
                   "RateLimit-Reset": reset}
        if retry_after:  # GUESS: Hetzner Cloud's spec does not document Retry-After
            headers["Retry-After"] = int(reset_in)
        return _Answer(429, self.error_body(429, "rate_limit_exceeded", "limit of %d requests"
                                            " per hour reached" % self.rate_limit), headers)

    def resource_limit_next(self, count=1):
        """Convenience: next create fails with 403 resource_limit_exceeded."""
        self.error_next(403, "resource_limit_exceeded", "project limit exceeded", count=count,
                        method="POST", path=r"^/servers/?$",
                        details={"limits": [{"name": "project_limit"}]})

    def _action(self, command, server_id, status="running"):
        self._next_action += 1
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        return {"id": self._next_action, "command": command, "status": status,
                "progress": 0 if status == "running" else 100, "started": now,
                "finished": None if status == "running" else now,
                "resources": [{"id": server_id, "type": "server"}], "error": None}

    def render(self, rec):
        """hcloud-go hcloud/schema/server.go Server; status one of hcloud/server.go's
        ServerStatus: initializing, off, running, starting, stopping, migrating,
        rebuilding, deleting, unknown."""
        req = rec["request"] or {}
        ip = self.current_ipv4(rec)
        ipv4 = None
        if ip:
            ipv4 = {"id": rec["id"] + 9000, "ip": ip, "blocked": False,
                    "dns_ptr": "static.%s.clients.your-server.de" % ip}
        location = req.get("location") or "fsn1"
        return {
            "id": rec["id"], "name": rec["name"], "status": self.current_status(rec),
            "created": rec["created"],
            # hcloud-go hcloud/schema/server.go ServerPublicNet (firewalls: [{id, status}]),
            # ServerPrivateNet {network, ip, alias_ips, mac_address}
            "public_net": {"ipv4": ipv4, "ipv6": None, "floating_ips": [], "firewalls": [
                {"id": f["firewall"], "status": "applied"} for f in req.get("firewalls") or []]},
            "private_net": [{"network": n, "ip": self.private_address(rec), "alias_ips": [],
                             "mac_address": "86:00:00:00:00:%02x" % (rec["id"] % 256)}
                            for n in req.get("networks") or []],
            "server_type": {"id": 1, "name": req.get("server_type") or "cx22"},
            "location": {"id": 1, "name": location},
            "datacenter": {"id": 1, "name": location + "-dc1",
                           "location": {"id": 1, "name": location}},
            "image": {"id": 1, "type": "system", "name": req.get("image") or "ubuntu-24.04"},
            "iso": None, "rescue_enabled": False, "locked": False, "backup_window": None,
            "outgoing_traffic": 0, "ingoing_traffic": 0, "included_traffic": 21990232555520,
            "protection": {"delete": False, "rebuild": False},
            "labels": dict(rec["labels"]), "volumes": [], "load_balancers": [],
            "primary_disk_size": 40, "placement_group": {
                "id": req["placement_group"], "type": "spread"}
            if req.get("placement_group") else None,
        }

    def private_address(self, rec):
        prefix = self.private_ip
        return prefix + str(rec["id"]) if prefix.endswith(".") else prefix

    # ---- routes ----------------------------------------------------------------------
    def route(self, method, path, query, body):
        if path.rstrip("/") == "/servers":
            if method == "GET":
                return self._list(query)
            if method == "POST":
                return self._create(body)
            return _Answer(405, self.error_body(405, "method_not_allowed", "method not allowed"))
        m = re.match(r"^/servers/(\d+)/?$", path)
        if m:
            rec = self.servers.get(int(m.group(1)))
            if rec is None:              # hcloud-go hcloud/error.go ErrorCodeNotFound
                return _Answer(404, self.error_body(404, "not_found", "server with ID '%s' "
                                                    "not found" % m.group(1)))
            if method == "GET" and rec.get("listed_for") == 0:
                del self.servers[rec["id"]]      # its delete action done: gone
                return _Answer(404, self.error_body(404, "not_found", "server with ID '%s' "
                                                    "not found" % m.group(1)))
            if method == "GET":
                if rec.get("listed_for"):
                    rec["listed_for"] -= 1
                return _Answer(200, {"server": self._observe(rec)})
            if method == "DELETE":       # ServerDeleteResponse: {"action"}, carried out later
                if self.delete_lag:
                    rec.setdefault("listed_for", self.delete_lag)
                else:
                    del self.servers[rec["id"]]
                return _Answer(200, {"action": self._action("delete_server", rec["id"])})
            return _Answer(405, self.error_body(405, "method_not_allowed", "method not allowed"))
        m = re.match(r"^/(server_types|images|locations|networks|firewalls|placement_groups)"
                     r"/(\d+)/?$", path)
        if m and method == "GET":
            # GET /{collection}/{id}: {"server_type": {...}} (hcloud-go hcloud/schema/
            # server_type.go ServerTypeGetResponse, image.go ImageGetResponse, location.go
            # LocationGetResponse); an id it does not have: 404 not_found (hcloud-go
            # hcloud/error.go ErrorCodeNotFound)
            items = self._catalog(m.group(1))
            found = [i for i in items if str(i["id"]) == m.group(2)]
            if not found:
                return _Answer(404, self.error_body(404, "not_found", "%s with ID '%s' not "
                                                    "found" % (m.group(1)[:-1], m.group(2))))
            return _Answer(200, {m.group(1)[:-1]: found[0]})
        catalog = _HZ_CATALOG.get(path.rstrip("/").lstrip("/"))
        if catalog is not None and method == "GET":
            # the lists filter by name only (hcloud-go hcloud/server_type.go
            # ServerTypeListOpts, image.go ImageListOpts, location.go LocationListOpts):
            # an ?id= is ignored, as the real API ignores a parameter it does not know
            items = self._catalog(path.strip("/"))
            if "name" in query:
                items = [i for i in items if str(i["name"]) == query["name"][0]]
            return _Answer(200, {path.strip("/"): items, "meta": {"pagination": {
                "page": 1, "per_page": 25, "previous_page": None, "next_page": None,
                "last_page": 1, "total_entries": len(items)}}})
        return _Answer(404, self.error_body(404, "not_found", "not found"))

    @staticmethod
    def _catalog(collection):
        return [dict(item, id=index + 1) for index, item in enumerate(_HZ_CATALOG[collection])]

    def _list(self, query):
        # GET /servers: ServerListOpts (name, label_selector, status; page, per_page at most
        # 50: hcloud-go hcloud/client.go ListOpts); ServerListResponse + meta.pagination
        items = sorted(self.servers.values(), key=lambda r: r["id"])
        if self.ignore_filters:
            query = {}
        if "name" in query:
            items = [r for r in items if r["name"] == query["name"][0]]
        if "label_selector" in query:
            try:
                items = [r for r in items
                         if label_selector_matches(query["label_selector"][0], r["labels"])]
            except ValueError as exc:
                return _Answer(400, self.error_body(400, "invalid_input", str(exc)))
        if "status" in query:
            items = [r for r in items if self.current_status(r) in query["status"]]
        try:
            page = max(1, int(query.get("page", ["1"])[0]))
            per_page = min(50, max(1, int(query.get("per_page", ["25"])[0])))
        except ValueError:
            return _Answer(400, self.error_body(400, "invalid_input", "invalid page"))
        total = len(items)
        last = max(1, (total + per_page - 1) // per_page)
        chunk = items[(page - 1) * per_page:page * per_page]
        return _Answer(200, {
            "servers": [self._observe(r) for r in chunk],
            "meta": {"pagination": {"page": page, "per_page": per_page,
                                    "previous_page": page - 1 if page > 1 else None,
                                    "next_page": page + 1 if page < last else None,
                                    "last_page": last, "total_entries": total}}})

    def _invalid(self, field, message):
        # invalid_input (hcloud-go hcloud/error.go) with details.fields[{name, messages}]
        # (ErrorDetailsInvalidInput); the API answers it with HTTP 422 (seen in its answers;
        # hcloud-go does not say)
        return _Answer(422, self.error_body(
            422, "invalid_input", "invalid input in field '%s': %s" % (field, message),
            {"fields": [{"name": field, "messages": [message]}]}))

    def _create(self, body):
        """POST /servers: ServerCreateRequest (name, server_type and image required: an id
        or a name; user_data at most 32 KiB, docs.hetzner.cloud "Create a Server"; labels as
        in docs "Labels"); 201 ServerCreateResponse {server, action, next_actions,
        root_password (null with ssh_keys)}; a name in use: 409 uniqueness_error."""
        if not isinstance(body, dict):
            return self._invalid("body", "must be an object")
        for field in ("name", "server_type", "image"):
            if not isinstance(body.get(field), (str, int)) or body.get(field) in ("", None):
                return self._invalid(field, "is required")
        name = body["name"]
        if not isinstance(name, str) or not _HOSTNAME.match(name):
            return self._invalid("name", "must be a valid hostname")
        labels = body.get("labels") or {}
        if not isinstance(labels, dict):
            return self._invalid("labels", "must be an object")
        for key, value in labels.items():
            if not isinstance(value, str) or not _label_key_ok(key) \
                    or not _LABEL_VALUE.match(value):
                return self._invalid("labels", "invalid label %s=%r" % (key, value))
        user_data = body.get("user_data")
        if user_data is not None:
            if not isinstance(user_data, str):
                return self._invalid("user_data", "must be a string")
            if len(user_data.encode("utf-8")) > 32 * 1024:
                return self._invalid("user_data", "is too long")
        if self.unique_names and any(r["name"] == name for r in self.servers.values()):
            return _Answer(409, self.error_body(409, "uniqueness_error", "server name is "
                                                "already used", {"fields": [{"name": "name"}]}))
        problem = self._cluster_problem(body)
        if problem:
            return problem
        rec = self._new_record(name, body, labels=labels)
        server = self.render(rec)  # the create answer is not a poll
        next_actions = []
        if body.get("start_after_create", True):
            next_actions.append(self._action("start_server", rec["id"]))
        return _Answer(201, {
            "server": server,
            "action": self._action("create_server", rec["id"]),
            "next_actions": next_actions,
            "root_password": None if body.get("ssh_keys") else rec["root_password"],
        })

    def _cluster_problem(self, body):
        """ServerCreateRequest's networks []int64, firewalls []ServerCreateFirewalls
        {firewall int64}, placement_group int64 (hcloud-go hcloud/schema/server.go): ids
        only, each one the project has (else 404 not_found, as for any unknown id)."""
        wanted = [("networks", n) for n in body.get("networks") or []]
        firewalls = body.get("firewalls") or []
        if not isinstance(firewalls, list) or not all(
                isinstance(f, dict) and set(f) == {"firewall"} for f in firewalls):
            return self._invalid("firewalls", "must be a list of {\"firewall\": id}")
        wanted += [("firewalls", f["firewall"]) for f in firewalls]
        if "placement_group" in body:
            wanted.append(("placement_groups", body["placement_group"]))
        for collection, value in wanted:
            if not isinstance(value, int) or isinstance(value, bool):
                return self._invalid(collection, "must be an id (an integer)")
            if value not in [i["id"] for i in self._catalog(collection)]:
                return _Answer(404, self.error_body(404, "not_found", "%s with ID '%s' not "
                                                    "found" % (collection[:-1], value)))
        return None


# ======================================================================================
# Timeweb Cloud
# ======================================================================================

# the availability-zone schema's enum
_TW_ZONES = ("spb-1", "spb-2", "spb-3", "spb-4", "msk-1", "nsk-1", "ams-1", "ala-1", "fra-1")
_TW_CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
             409: "conflict", 423: "locked", 429: "too_many_requests",
             500: "internal_error"}  # GUESS except not_found / forbidden (documented)


class FakeTimeweb(_FakeAPI):
    """Fake of https://api.timeweb.cloud/api/v1 (servers, account status, presets; a VPC).

    Source: Timeweb Cloud's OpenAPI, timeweb-cloud/sdk-go api/openapi.yaml: the paths
    /api/v1/servers (getServers, createServer), /api/v1/servers/{server_id} (getServer,
    deleteServer), /api/v1/account/status, /api/v1/presets/servers, /api/v2/vpcs/{vpc_id}
    (getVPC); the schemas
    create-server, vds, availability-zone, getFinances_400_response (the error body)."""

    prefix = "/api/v1"
    other_prefixes = ("/api/v2/",)   # the VPCs: getVPC, GET /api/v2/vpcs/{vpc_id}
    default_sequence = ["installing", "on"]

    def __init__(self, delete_needs_confirmation=False, **kw):
        _FakeAPI.__init__(self, **kw)
        self.private_ip = "192.168.0.4"     # a server's IPv4 in the VPC a create named
        self.delete_needs_confirmation = delete_needs_confirmation
        self.vpcs = {}                      # VPC id -> its subnet_v4

    def error_body(self, status, code, message, details=None):
        # getFinances_400_response (and _401/_429/_500, getImage_404_response): status_code,
        # error_code, message (a string), response_id (uuid); error_code, response_id and
        # status_code required
        body = {"status_code": status, "error_code": code, "message": message,
                "response_id": str(uuid.uuid4())}
        return body

    def default_code(self, status):
        return _TW_CODES.get(status, "internal_error" if status >= 500 else "bad_request")

    def unauthorized(self):
        return _Answer(401, self.error_body(401, "unauthorized", "Unauthorized"))

    def bad_json(self):
        return _Answer(400, self.error_body(400, "bad_request", "invalid JSON"))

    def rate_limited(self, reset_in, retry_after):
        headers = {}
        if retry_after:  # GUESS: Timeweb does not document any rate-limit header
            headers["Retry-After"] = int(reset_in)
        return _Answer(429, self.error_body(429, "too_many_requests", "Too many requests"),
                       headers)

    def render(self, rec):
        """The vds schema: status one of its enum (installing, software_install,
        reinstalling, on, off, turning_on, turning_off, hard_turning_off, rebooting,
        hard_rebooting, removing, removed, cloning, transfer, blocked, configuring, no_paid,
        permanent_blocked); location one of ru-1, ru-2, ru-3, pl-1, kz-1, nl-1; networks[]
        with ips[] {type, ip, ptr, is_main}; disks[] status "done" in its example."""
        req = rec["request"] or {}
        ip = self.current_ipv4(rec)
        ips = []
        if ip:
            ips = [{"type": "ipv4", "ip": ip, "ptr": "", "is_main": True}]
        return {
            "id": rec["id"], "name": rec["name"], "comment": rec["comment"],
            "created_at": rec["created"],
            "os": {"id": req.get("os_id") or 0, "name": "ubuntu", "version": "22.04"},
            "software": None, "preset_id": req.get("preset_id"), "location": "ru-1",
            "configurator_id": None, "boot_mode": "std", "status": self.current_status(rec),
            "start_at": None, "is_ddos_guard": bool(req.get("is_ddos_guard", False)),
            "is_master_ssh": False, "is_dedicated_cpu": False, "gpu": 0,
            "cpu": 1, "cpu_frequency": "3.3", "ram": 1024,
            "disks": [{"id": rec["id"] + 100, "size": 15360, "used": 0, "type": "nvme",
                       "is_mounted": True, "is_system": True, "system_name": "vda",
                       "status": "done"}],
            "avatar_id": None, "vnc_pass": "vnc" + uuid.uuid4().hex[:8],
            "root_pass": rec["root_password"],
            "image": {"id": req["image_id"]} if req.get("image_id") else None,
            # vds_networks_inner: a VPC the create named is a "local" network with its id
            "networks": [{"type": "public", "ips": ips, "is_ddos_guard": False,
                          "bandwidth": 200}] + ([{
                              "type": "local", "id": req["network"]["id"], "ips": [{
                                  "ip": req["network"].get("local_ip") or self.private_ip,
                                  "type": "ipv4", "is_main": True}]}]
                              if req.get("network") else []),
            "cloud_init": req.get("cloud_init"), "is_qemu_agent": True,
            "availability_zone": req.get("availability_zone") or "spb-3",
        }

    def route(self, method, path, query, body):
        if path.rstrip("/") == "/servers":
            if method == "GET":
                return self._list(query)
            if method == "POST":
                return self._create(body)
            return _Answer(405, self.error_body(405, "method_not_allowed", "Method not allowed"))
        m = re.match(r"^/servers/(\d+)/?$", path)
        if m:
            rec = self.servers.get(int(m.group(1)))
            if rec is None:
                return _Answer(404, self.error_body(404, "not_found", "Server not found"))
            if method == "GET":
                return _Answer(200, {"server": self._observe(rec),
                                     "response_id": str(uuid.uuid4())})
            if method == "DELETE":
                # Timeweb Cloud's OpenAPI (timeweb-cloud/sdk-go api/openapi.yaml, deleteServer):
                # 200 {"server_delete": {"hash", "is_moved_in_quarantine"}}; with deletion by
                # confirmation on, the hash names a deletion that waits for the code sent to
                # the owner (a DELETE with ?hash=&code=) and nothing is deleted before it
                if self.delete_needs_confirmation and "code" not in query:
                    return _Answer(200, {"server_delete": {"hash": uuid.uuid4().hex,
                                                           "is_moved_in_quarantine": False},
                                         "response_id": str(uuid.uuid4())})
                del self.servers[rec["id"]]
                return _Answer(200, {"server_delete": {"is_moved_in_quarantine": False},
                                     "response_id": str(uuid.uuid4())})
            return _Answer(405, self.error_body(405, "method_not_allowed", "Method not allowed"))
        m = re.match(r"^/api/v2/vpcs/([^/]+)/?$", path)
        if m and method == "GET":
            # getVPC: 200 {"vpc": vpc, "response_id"} (createVPC_201_response; the vpc
            # schema's required fields), 404 for an unknown id
            if m.group(1) not in self.vpcs:
                return _Answer(404, self.error_body(404, "not_found", "VPC not found"))
            return _Answer(200, {"vpc": {
                "id": m.group(1), "name": "bx-vpc", "subnet_v4": self.vpcs[m.group(1)],
                "location": "ru-1", "created_at": "2026-01-01T00:00:00Z", "description": "",
                "availability_zone": "spb-3", "public_ip": None, "type": "ovn",
                "busy_address": []}, "response_id": str(uuid.uuid4())})
        if path.rstrip("/") == "/account/status" and method == "GET":
            return _Answer(200, {"status": {"is_blocked": False, "is_permanent_blocked": False,
                                            "is_send_bill_letters": True,
                                            "last_password_changed_at": None},
                                 "response_id": str(uuid.uuid4())})
        if path.rstrip("/") == "/presets/servers" and method == "GET":
            return _Answer(200, {"meta": {"total": 1}, "server_presets": [
                {"id": 2447, "location": "ru-1", "price": 477, "cpu": 1, "ram": 2048,
                 "disk": 30720, "disk_type": "nvme", "bandwidth": 200,
                 "description": "1 x 3.3 ГГц CPU • 2 Гб RAM • 30 Гб NVMe"}],
                "response_id": str(uuid.uuid4())})
        return _Answer(404, self.error_body(404, "not_found", "Not found"))

    def _list(self, query):
        # getServers: limit (default 100), offset (default 0); 200 {"meta": {"total"},
        # "servers": [vds], "response_id"}; no filter by name or comment
        items = sorted(self.servers.values(), key=lambda r: r["id"])
        try:
            limit = max(1, int(query.get("limit", ["100"])[0]))
            offset = max(0, int(query.get("offset", ["0"])[0]))
        except ValueError:
            return _Answer(400, self.error_body(400, "bad_request", "invalid limit/offset"))
        if self.ignore_filters:
            offset = 0
        chunk = items[offset:offset + limit]
        return _Answer(200, {"meta": {"total": 10 ** 9 if self.ignore_filters else len(items)},
                             "servers": [self._observe(r) for r in chunk],
                             "response_id": str(uuid.uuid4())})

    def _bad(self, message):
        # the spec's message is a string (getFinances_400_response)
        return _Answer(400, self.error_body(400, "bad_request", message))

    def _create(self, body):
        """createServer: the create-server schema (name required, at most 255 characters;
        comment at most 255; os_id or image_id, not both; preset_id or configuration;
        availability_zone from the availability-zone enum); 201 {"server": vds,
        "response_id"}; 409 conflict is among its answers (createDatabaseBackup_409_response)."""
        if not isinstance(body, dict):
            return self._bad("body must be an object")
        name = body.get("name")
        if not isinstance(name, str) or not name or len(name) > 255:
            return self._bad("name is required (max 255 characters)")
        if ("preset_id" in body) == ("configuration" in body):
            return self._bad("exactly one of preset_id or configuration is required")
        if ("os_id" in body) == ("image_id" in body):
            return self._bad("exactly one of os_id or image_id is required")
        comment = body.get("comment") or ""
        if not isinstance(comment, str) or len(comment) > 255:
            return self._bad("comment must be a string of at most 255 characters")
        if "cloud_init" in body and not isinstance(body["cloud_init"], str):
            return self._bad("cloud_init must be a string")
        if "availability_zone" in body and body["availability_zone"] not in _TW_ZONES:
            return self._bad("availability_zone must be one of " + ", ".join(_TW_ZONES))
        # create_server_network: {id, floating_ip, local_ip, ip (deprecated), ...}
        network = body.get("network", {})
        if not isinstance(network, dict) or not all(isinstance(network.get(k, ""), str)
                                                    for k in ("id", "local_ip")):
            return self._bad("network must be an object with id and local_ip strings")
        if self.unique_names and any(r["name"] == name for r in self.servers.values()):
            return _Answer(409, self.error_body(409, "conflict",  # GUESS: code not documented
                                                "Server with this name already exists"))
        rec = self._new_record(name, body, comment=comment)
        return _Answer(201, {"server": self.render(rec), "response_id": str(uuid.uuid4())})


# ======================================================================================
# SSH banner
# ======================================================================================

class SSHBannerServer(object):
    """A TCP socket on 127.0.0.1 that speaks an SSH banner (or, silent, nothing at all)."""

    def __init__(self, banner=b"SSH-2.0-OpenSSH_8.0\r\n", silent=False, hold=0.2,
                 silent_hold=30.0, host="127.0.0.1", port=0):
        self.banner = banner
        self.silent = silent
        self.hold = hold
        self.silent_hold = silent_hold
        self.host = host        # another loopback address (127.0.0.2) for a second server
        self.port = port or None    # 0: any free port, known once started
        self.connections = 0
        self._sock = None
        self._held = None       # stop(hold_port=True): the port kept, nothing listening
        self._thread = None
        self._stop = threading.Event()
        self._guard = threading.Lock()  # a fake's thread (a VM stopped) and a test's cleanup

    def start(self):
        with self._guard:
            self._stop.clear()
            self.release_port()
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((self.host, self.port or 0))
            sock.listen(16)
            self.port = sock.getsockname()[1]
            self._sock = sock
            self._thread = threading.Thread(target=self._serve, args=(sock,))
            self._thread.daemon = True
            self._thread.start()
        return self

    def stop(self, hold_port=False):
        """Stop listening; hold_port: keep the port bound (a connection is refused, as to a
        host whose sshd is down) so that no test beside this one takes it meanwhile."""
        self._stop.set()
        with self._guard:
            thread, self._thread = self._thread, None
            sock, self._sock = self._sock, None
        if thread is not None:
            wake((self.host, self.port))
            thread.join(5)
        if sock is not None:
            sock.close()
        with self._guard:
            if hold_port:
                self.hold_port()
            else:
                self.release_port()

    def hold_port(self):
        self.release_port()
        if self.port:
            # bound, not listening: a connection is refused; a bind to port 0 elsewhere
            # never picks a port a socket is bound to (the kernel's autobind)
            self._held = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            self._held.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            self._held.bind((self.host, self.port))

    def release_port(self):
        if self._held is not None:
            self._held.close()
            self._held = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def _serve(self, sock):
        while True:
            try:
                conn, _ = sock.accept()
            except OSError:
                break
            if self._stop.is_set():         # stop()'s own connection
                conn.close()
                break
            self.connections += 1
            t = threading.Thread(target=self._talk, args=(conn, self.silent))
            t.daemon = True
            t.start()

    def _talk(self, conn, silent):
        try:
            if silent:
                self._stop.wait(self.silent_hold)
            else:
                conn.sendall(self.banner)
                self._stop.wait(self.hold)
        except OSError:
            pass
        finally:
            try:
                conn.close()
            except OSError:
                pass
