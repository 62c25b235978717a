# -*- coding: utf-8 -*-
"""A fake OpenStack cloud for tests: Keystone v3, Nova (compute v2.1), Neutron (network
v2.0) and Glance (image v2), each on its own 127.0.0.1 port, sharing one cloud.

Sources: openstack/keystone (api-ref/source/v3/authenticate-v3.inc "Password
authentication with scoped authorization", "Authenticating with an Application Credential";
keystone/exception.py for the error body), openstack/nova (api-ref "Create Server", "List
Servers Detailed", "Delete Server", "List Flavors", "Server status", "API Versions";
nova/api/openstack/compute/schemas/servers.py for the create body;
nova/api/openstack/compute/rest_api_version_history.rst for the microversions;
nova/api/openstack/wsgi.py for the error body), openstack/neutron api-ref ("Floating IPs",
"Ports", "Networks"; neutron-lib's faults for the error body), openstack/glance api-ref
("List images", "Show image"). Shapes the references leave open are marked GUESS.

    api = FakeOpenStack(token="PASSWORD", polls_per_status=0).start()
    api.url            the Keystone auth_url (https when tls=(cert, key))
    api.compute_url    Nova's base (what the catalog says)
    api.keystone, api.neutron, api.glance   the other services (requests, rules)
    api.stop()

The object tests hold is Nova itself, with the knobs and failure rules of
tests/helpers/fakecloud.py's _FakeAPI (fail_next, rate_limit_next, hang_next_create, ...;
paths below /v2.1, e.g. r"^/servers$"). Server ids are UUIDs.

Keystone: the user USER in domain DOMAIN with password `token`, project PROJECT
(id PROJECT_ID) in DOMAIN, or the application credential APP_ID / APP_SECRET.
    api.token_ttl        seconds a new token lives (default 3600)
    api.logins           tokens issued, in order
    api.revoke_tokens()  every token issued so far is refused from now on (401)
    api.regions          regions in the catalog (default ["RegionOne"])
Nova: api.max_servers (quota of instances, None: none), api.floating (servers get
only a private address; a floating IP gives the public one), api.max_microversion (the
highest compute microversion served, default "2.96"; its version document at the compute
base says so, and a request asking for a higher one is answered 406, as Nova does).
Neutron: the external network EXT_NET; api.floating_ips (id -> record).
Glance: the images in IMAGES.
"""

import base64
import re
import threading
import time
import uuid

from urllib.parse import urlsplit

from .fakecloud import _Answer, _FakeAPI

__all__ = ["FakeOpenStack", "USER", "DOMAIN", "PROJECT", "PROJECT_ID", "APP_ID",
           "APP_SECRET", "EXT_NET", "PRIVATE_NET", "IMAGES", "FLAVORS"]

USER, DOMAIN, PROJECT = "bx-service", "123456", "bitrix-project"
PROJECT_ID = "0f8a0c5e7d2b4a1f9e3c6b5a4d3c2b1a"
APP_ID, APP_SECRET = "4b1e2c3d4e5f60718293a4b5c6d7e8f9", "app-secret-for-tests"
EXT_NET = "3c1f4d2e-0000-4000-8000-0000000e7e70"
PRIVATE_NET = "9a8b7c6d-0000-4000-8000-00000000b1a5"
FLAVORS = [{"id": "1011", "name": "SL1.1-2048"}, {"id": "3021", "name": "SL1.2-4096"}]
IMAGES = [
    {"id": "8e2d1c9b-0000-4000-8000-000000000001", "name": "Ubuntu 22.04 LTS 64-bit",
     "status": "active", "created_at": "2026-01-10T10:00:00Z"},
    {"id": "8e2d1c9b-0000-4000-8000-000000000002", "name": "Ubuntu 22.04 LTS 64-bit",
     "status": "active", "created_at": "2026-06-01T10:00:00Z"},      # the newest of the name
    {"id": "8e2d1c9b-0000-4000-8000-000000000003", "name": "Rocky Linux 9",
     "status": "active", "created_at": "2026-03-01T10:00:00Z"},
]
# nova/api/openstack/wsgi.py Fault._fault_names (any other status: "computeFault")
NOVA_CODES = {400: "badRequest", 401: "unauthorized", 403: "forbidden", 404: "itemNotFound",
              409: "conflictingRequest", 413: "overLimit", 429: "overLimit",
              500: "computeFault", 503: "serviceUnavailable"}
# keystone/exception.py Unauthorized: {"error": {"code", "title", "message"}}
UNAUTHORIZED = {"error": {"code": 401, "title": "Unauthorized",
                          "message": "The request you have made requires authentication."}}


def stamp(seconds):
    return time.strftime("%Y-%m-%dT%H:%M:%S.000000Z", time.gmtime(seconds))


class _Service(_FakeAPI):
    """Keystone, Neutron or Glance: shares the cloud's lock and state."""

    def __init__(self, cloud, **kw):
        self.cloud = cloud
        _FakeAPI.__init__(self, token=cloud.token, tls=cloud.tls, **kw)
        self.lock = cloud.lock

    def credential_ok(self, path, headers):
        return self.cloud.token_valid(headers.get("X-Auth-Token"))

    def unauthorized(self):
        return _Answer(401, UNAUTHORIZED)

    def bad_json(self):
        return _Answer(400, self.error_body(400, "BadRequest", "invalid JSON"))

    def rate_limited(self, reset_in, retry_after):
        return _Answer(429, self.error_body(429, "OverLimit", "rate limited"),
                       {"Retry-After": int(reset_in)} if retry_after else {})

    def default_code(self, status):
        return "HTTP%d" % status


class FakeKeystone(_Service):
    prefix = "/identity/v3"

    def credential_ok(self, path, headers):
        return True                      # logging in needs no token

    def error_body(self, status, code, message, details=None):
        return {"error": {"code": status, "title": code, "message": message}}

    def route(self, method, path, query, body):
        """POST /v3/auth/tokens: 201, the token in X-Subject-Token, the body {"token":
        {methods, issued_at, expires_at, user, project, catalog}} (authenticate-v3.inc);
        wrong credentials: 401 Unauthorized."""
        if path != "/auth/tokens" or method != "POST":
            return _Answer(404, self.error_body(404, "Not Found", "not found"))
        auth = (body or {}).get("auth") if isinstance(body, dict) else None
        identity = auth.get("identity") if isinstance(auth, dict) else None
        if not isinstance(identity, dict) or not self.cloud.credentials_ok(
                identity, auth.get("scope")):
            return _Answer(401, UNAUTHORIZED)
        token = "gAAAAA" + uuid.uuid4().hex + uuid.uuid4().hex
        issued = time.time()
        self.cloud.tokens[token] = issued + self.cloud.token_ttl
        self.cloud.logins.append(token)
        return _Answer(201, {"token": {
            "methods": identity.get("methods"), "issued_at": stamp(issued),
            "expires_at": stamp(issued + self.cloud.token_ttl),
            "user": {"id": uuid.uuid4().hex, "name": USER, "domain": {"name": DOMAIN}},
            "project": {"id": PROJECT_ID, "name": PROJECT, "domain": {"name": DOMAIN}},
            "catalog": self.cloud.catalog()}}, {"X-Subject-Token": token})


class FakeNeutron(_Service):
    prefix = "/v2.0"

    def error_body(self, status, code, message, details=None):
        # neutron-lib neutron_lib/api/faults.py: {"NeutronError": {"type", "message",
        # "detail"}}, type the exception's name (NetworkNotFound, OverQuota, ...)
        return {"NeutronError": {"type": code, "message": message, "detail": ""}}

    def route(self, method, path, query, body):
        """GET /v2.0/ports?device_id=, GET and POST /v2.0/floatingips (?port_id=; 201
        {"floatingip"}; status ACTIVE, DOWN or ERROR), DELETE /v2.0/floatingips/{id}
        (204), GET /v2.0/networks/{id}, GET /v2.0/security-groups (neutron api-ref)."""
        cloud = self.cloud
        if path == "/ports" and method == "GET":
            device = query.get("device_id", [None])[0]
            return _Answer(200, {"ports": [p for p in cloud.ports.values()
                                           if device is None or p["device_id"] == device]})
        if path == "/floatingips" and method == "GET":
            port = query.get("port_id", [None])[0]
            return _Answer(200, {"floatingips": [f for f in cloud.floating_ips.values()
                                                 if port is None or f["port_id"] == port]})
        if path == "/floatingips" and method == "POST":
            return self.create_floating_ip((body or {}).get("floatingip") or {})
        found = re.match(r"^/floatingips/([-0-9a-f]+)$", path)
        if found and method == "DELETE":
            if cloud.floating_ips.pop(found.group(1), None) is None:
                return _Answer(404, self.error_body(404, "FloatingIPNotFound",
                                                    "Floating IP %s could not be found"
                                                    % found.group(1)))
            return _Answer(204)
        if path == "/security-groups" and method == "GET":
            # neutron api-ref "List security groups": {"security_groups": [{id, name,
            # project_id, description, security_group_rules, ...}]}
            return _Answer(200, {"security_groups": [{
                "id": "5ec0%028x" % n, "name": name, "project_id": PROJECT_ID,
                "description": "", "security_group_rules": []}
                for n, name in enumerate(cloud.security_groups)]})
        if path == "/subnets" and method == "GET":
            # neutron api-ref "List subnets": ?network_id= filters; {"subnets": [{id,
            # network_id, ip_version, cidr, ...}]}
            subnets = [{"id": "5b0e0000-0000-4000-8000-00000000000%d" % n, "network_id": net,
                        "ip_version": 4, "cidr": cidr, "name": name}
                       for n, (net, cidr, name) in enumerate((
                           (PRIVATE_NET, "192.168.0.0/24", "private-subnet"),
                           (EXT_NET, "127.0.0.0/8", "external-subnet")))]
            wanted = query.get("network_id", [None])[0]
            return _Answer(200, {"subnets": [s for s in subnets
                                             if wanted is None or s["network_id"] == wanted]})
        found = re.match(r"^/networks/([^/]+)$", path)
        if found and method == "GET":
            name = {EXT_NET: "external-network", PRIVATE_NET: "private"}.get(found.group(1))
            if name is None:
                return _Answer(404, self.error_body(404, "NetworkNotFound", "Network %s could "
                                                    "not be found." % found.group(1)))
            return _Answer(200, {"network": {"id": found.group(1), "name": name,
                                             "router:external": name != "private"}})
        return _Answer(404, self.error_body(404, "HTTPNotFound", "not found"))

    def create_floating_ip(self, request):
        cloud = self.cloud
        if request.get("floating_network_id") != EXT_NET:
            return _Answer(404, self.error_body(404, "NetworkNotFound", "Network %s could not "
                                                "be found." % request.get("floating_network_id")))
        port = cloud.ports.get(request.get("port_id"))
        if port is None:
            return _Answer(404, self.error_body(404, "PortNotFound", "Port %s could not be "
                                                "found." % request.get("port_id")))
        fip = {"id": str(uuid.uuid4()), "floating_ip_address": cloud.ipv4,
               "floating_network_id": EXT_NET, "port_id": port["id"],
               "fixed_ip_address": port["fixed_ips"][0]["ip_address"], "status": "DOWN",
               "description": request.get("description", ""), "project_id": PROJECT_ID}
        cloud.floating_ips[fip["id"]] = fip
        return _Answer(201, {"floatingip": fip})


class FakeGlance(_Service):
    prefix = "/v2"

    def error_body(self, status, code, message, details=None):
        return None          # GUESS: Glance answers errors as text/plain pages

    def route(self, method, path, query, body):
        """GET /v2/images?name=&status= ({"images", "first", "schema"}), GET
        /v2/images/{id} (the image itself) (glance api-ref "List images", "Show image")."""
        if path == "/images" and method == "GET":
            images = [i for i in IMAGES if query.get("name", [i["name"]])[0] == i["name"]
                      and query.get("status", [i["status"]])[0] == i["status"]]
            return _Answer(200, {"images": images, "first": "/v2/images",
                                 "schema": "/v2/schemas/images"})
        found = re.match(r"^/images/([^/]+)$", path)
        if found and method == "GET":
            for image in IMAGES:
                if image["id"] == found.group(1):
                    return _Answer(200, image)
        return _Answer(404, raw="404 Not Found\n\nNo image found with ID %s\n\n"
                       % path.rsplit("/", 1)[-1], headers={"Content-Type": "text/plain"})


class FakeOpenStack(_FakeAPI):
    """Nova, plus the cloud around it (see the module's docstring)."""

    prefix = "/v2.1"
    default_sequence = ["BUILD", "ACTIVE"]
    CREATE_PATH = r"^/servers$"

    def __init__(self, floating=False, regions=("RegionOne",), token_ttl=3600,
                 max_microversion="2.96", **kw):
        kw.setdefault("token", "password-for-tests")
        self.asked = threading.local()          # the request's headers, in its thread
        _FakeAPI.__init__(self, **kw)
        self.max_microversion = max_microversion
        self.security_groups = ["default", "ssh"]       # the project's groups, by name
        # nova api-ref "List Server Groups": {"server_groups": [{id, name, policy, members,
        # ...}]} (no name filter); the hints a create carried are kept in its record
        self.server_groups = [{"id": "5e1f0000-0000-4000-8000-00000000a001",
                               "name": "bx-spread", "policy": "anti-affinity",
                               "members": [], "rules": {}}]
        # a server's fixed address: "PREFIX<n>" (a test that must reach it over SSH sets
        # a whole address: every server gets it)
        self.fixed_ip = "192.168.0."
        self.floating = floating
        self.regions = list(regions)
        self.token_ttl = token_ttl
        self.max_servers = None
        self.tokens, self.logins = {}, []
        self.keystone = FakeKeystone(self)
        self.neutron = FakeNeutron(self)
        self.glance = FakeGlance(self)

    def reset(self):
        _FakeAPI.reset(self)
        self.ports, self.floating_ips = {}, {}

    def start(self):
        _FakeAPI.start(self)
        for service in (self.keystone, self.neutron, self.glance):
            service.start()
        return self

    def stop(self):
        for service in (self.keystone, self.neutron, self.glance):
            service.stop()
        _FakeAPI.stop(self)

    @property
    def url(self):
        return self.keystone.url

    @property
    def compute_url(self):
        return self.base_url + self.prefix

    # ---- Keystone's side -------------------------------------------------------------
    def credentials_ok(self, identity, scope):
        methods = identity.get("methods")
        if methods == ["application_credential"]:
            cred = identity.get("application_credential") or {}
            return cred.get("id") == APP_ID and cred.get("secret") == APP_SECRET
        user = ((identity.get("password") or {}).get("user")) or {}
        project = (scope or {}).get("project") or {}
        scoped = project.get("id") == PROJECT_ID or (
            project.get("name") == PROJECT and (project.get("domain") or {}).get("name") == DOMAIN)
        return methods == ["password"] and user.get("name") == USER and scoped \
            and (user.get("domain") or {}).get("name") == DOMAIN \
            and user.get("password") == self.token

    def token_valid(self, token):
        with self.lock:
            return token is not None and self.tokens.get(token, 0) > time.time()

    def revoke_tokens(self):
        with self.lock:
            self.tokens.clear()

    def catalog(self):
        def service(kind, url):
            return {"type": kind, "id": uuid.uuid4().hex, "endpoints": [
                {"id": uuid.uuid4().hex, "interface": interface, "region": region,
                 "region_id": region, "url": url if interface == "public" and
                 region == self.regions[0] else "https://%s.%s.invalid/" % (interface, region)}
                for region in self.regions for interface in ("internal", "public")]}
        return [service("identity", self.keystone.url), service("compute", self.compute_url),
                service("network", self.neutron.base_url),
                service("image", self.glance.base_url)]

    def credential_ok(self, path, headers):
        self.asked.headers = headers
        return self.token_valid(headers.get("X-Auth-Token"))

    def _handle(self, h):
        self.asked.bare = urlsplit(h.path).path == self.prefix     # no "/" after v2.1
        _FakeAPI._handle(self, h)

    # ---- microversions: openstack/nova nova/api/openstack/api_version_request.py and
    # wsgi.py; api-ref "Microversions": the header "OpenStack-API-Version: compute X.Y" (or
    # the older "X-OpenStack-Nova-API-Version: X.Y"), "latest" is the highest; none: 2.1
    @staticmethod
    def _tuple(text):
        major, minor = text.split(".")
        return int(major), int(minor)

    def microversion(self):
        """The request's microversion, or an _Answer 406 when it is not served."""
        headers = getattr(self.asked, "headers", {})
        asked = None
        for key in headers.keys():
            if key.lower() == "openstack-api-version":
                service, _, asked = headers[key].strip().partition(" ")
                asked = asked.strip() if service == "compute" else None
        for key in headers.keys():
            if asked is None and key.lower() == "x-openstack-nova-api-version":
                asked = headers[key].strip()
        if asked is None:
            return "2.1"
        if asked == "latest":
            return self.max_microversion
        if not re.match(r"^[0-9]+\.[0-9]+$", asked):
            return _Answer(400, self.error_body(400, "badRequest", "API Version String %s "
                                                "is of invalid format. Must be of format "
                                                "MajorNum.MinorNum." % asked))
        if not self._tuple("2.1") <= self._tuple(asked) <= self._tuple(self.max_microversion):
            # wsgi.py: HTTPNotAcceptable; 406 is not in Fault's names: "computeFault"
            return _Answer(406, self.error_body(
                406, "computeFault", "Version %s is not supported by the API. Minimum is 2.1 "
                "and maximum is %s." % (asked, self.max_microversion)))
        return asked

    def version_document(self):
        """GET of the compute base's "/" (api-ref "Show Details of Specific API Version";
        nova/api/openstack/compute/routes.py maps "/" to the version controller)."""
        return _Answer(200, {"version": {
            "id": "v2.1", "status": "CURRENT", "version": self.max_microversion,
            "min_version": "2.1", "updated": "2013-07-23T11:33:21Z",
            "links": [{"rel": "self", "href": self.compute_url + "/"}],
            "media-types": [{"base": "application/json",
                             "type": "application/vnd.openstack.compute+json;version=2.1"}]}})

    # ---- Nova's shapes ---------------------------------------------------------------
    def error_body(self, status, code, message, details=None):
        return {code: {"code": status, "message": message}}

    def default_code(self, status):
        return NOVA_CODES.get(status, "computeFault" if status >= 500 else "badRequest")

    def unauthorized(self):
        return _Answer(401, UNAUTHORIZED)

    def bad_json(self):
        return _Answer(400, self.error_body(400, "badRequest", "Malformed request body"))

    def rate_limited(self, reset_in, retry_after):
        body = {"overLimit": {"code": 429, "message": "This request was rate-limited.",
                              "retryAfter": str(int(reset_in))}}
        return _Answer(429, body, {"Retry-After": int(reset_in)} if retry_after else {})

    def quota_next(self, count=1):
        """The next create is refused: no instances left in the project's quota."""
        self.error_next(403, "forbidden", "Quota exceeded for instances: Requested 1, but "
                        "already used 10 of 10 instances", count=count, method="POST",
                        path=r"^/servers$")

    def _new_record(self, name, request, labels=None, comment=""):
        with self.lock:
            rec = _FakeAPI._new_record(self, name, request, labels, comment)
            del self.servers[rec["id"]]
            rec["id"] = "%08x-%s" % (rec["id"], str(uuid.uuid4())[9:])    # sorts as made
            self.servers[rec["id"]] = rec
            port = {"id": str(uuid.uuid4()), "device_id": rec["id"],
                    "network_id": PRIVATE_NET if self.floating else EXT_NET,
                    "fixed_ips": [{"ip_address": self.fixed_ip + str(len(self.ports) + 10)
                                   if self.fixed_ip.endswith(".") else self.fixed_ip}]}
            self.ports[port["id"]] = port
            return rec

    def server(self, server_id):
        with self.lock:
            return self.servers.get(str(server_id))

    def set_status(self, server_id, status):
        with self.lock:
            self.servers[str(server_id)]["pinned_status"] = status

    def remove_server(self, server_id):
        with self.lock:
            self.servers.pop(str(server_id), None)

    def render(self, rec):
        status = self.current_status(rec)
        ports = [p for p in self.ports.values() if p["device_id"] == rec["id"]]
        private = [{"addr": p["fixed_ips"][0]["ip_address"], "version": 4,
                    "OS-EXT-IPS:type": "fixed"} for p in ports]
        addresses = {"private": private}
        ip = self.current_ipv4(rec)
        if self.floating:
            addresses["private"] = private + [
                {"addr": f["floating_ip_address"], "version": 4, "OS-EXT-IPS:type": "floating"}
                for f in self.floating_ips.values() if f["port_id"] in [p["id"] for p in ports]]
        elif ip:
            addresses["external-network"] = [
                {"addr": "2a00:ab00::%x" % len(self.servers), "version": 6,
                 "OS-EXT-IPS:type": "fixed"},
                {"addr": ip, "version": 4, "OS-EXT-IPS:type": "fixed"}]
        server = {"id": rec["id"], "name": rec["name"], "status": status,
                  "metadata": dict(rec["labels"]), "addresses": addresses,
                  "created": rec["created"], "tenant_id": PROJECT_ID,
                  "security_groups": rec.get("security_groups", [{"name": "default"}]),
                  "OS-EXT-AZ:availability_zone":
                      (rec["request"] or {}).get("availability_zone") or "ru-9a"}
        if status == "ERROR":
            server["fault"] = {"code": 500, "message": "No valid host was found. There are "
                                                      "not enough hosts available."}
        return server

    def route(self, method, path, query, body):
        version = self.microversion()
        if isinstance(version, _Answer):
            return version
        if path == "/" and method == "GET":
            if getattr(self.asked, "bare", False):     # routes.py: ('', '/'), a redirect
                return _Answer(302, raw=b"", headers={"Location": self.compute_url + "/"})
            return self.version_document()
        if path == "/servers" and method == "POST":
            return self._create(body, self._tuple(version))
        if path == "/os-server-groups" and method == "GET":
            return _Answer(200, {"server_groups": [dict(g) for g in self.server_groups]})
        if path == "/flavors" and method == "GET":          # api-ref "List Flavors"
            return _Answer(200, {"flavors": [dict(f, links=[]) for f in FLAVORS]})
        if path == "/servers/detail" and method == "GET":
            # api-ref "List Servers Detailed": name is a regular expression; limit, marker
            # (an unknown marker: 400 "marker [X] not found"); {"servers": [...]}
            pattern = query.get("name", [""])[0]
            items = [r for r in sorted(self.servers.values(), key=lambda r: r["id"])
                     if re.search(pattern, r["name"])]
            if "marker" in query:
                ids = [r["id"] for r in items]
                if query["marker"][0] not in ids:
                    return _Answer(400, self.error_body(400, "badRequest", "marker [%s] not "
                                                        "found" % query["marker"][0]))
                items = items[ids.index(query["marker"][0]) + 1:]
            items = items[:int(query.get("limit", [1000])[0])]
            return _Answer(200, {"servers": [self._observe(r) for r in items]})
        found = re.match(r"^/servers/([-0-9a-f]+)$", path)
        if found:
            rec = self.servers.get(found.group(1))
            if rec is None:
                return _Answer(404, self.error_body(404, "itemNotFound",
                                                    "Instance %s could not be found."
                                                    % found.group(1)))
            if method == "GET":
                return _Answer(200, {"server": self._observe(rec)})
            if method == "DELETE":          # api-ref "Delete Server": 204, no body
                del self.servers[rec["id"]]
                for port_id in [p for p, port in self.ports.items()
                                if port["device_id"] == rec["id"]]:
                    del self.ports[port_id]
                    for fip in self.floating_ips.values():    # left, unattached: billed
                        if fip["port_id"] == port_id:
                            fip["port_id"], fip["fixed_ip_address"] = None, None
                return _Answer(204)
        return _Answer(404, self.error_body(404, "itemNotFound", "not found"))

    def _create(self, body, version=(2, 1)):
        """api-ref "Create Server": 202 {"server": {id, links, OS-DCF:diskConfig,
        security_groups, adminPass}}; the body as schemas/servers.py takes it."""
        server = (body or {}).get("server") if isinstance(body, dict) else None
        if not isinstance(server, dict):
            return self._bad("Invalid input for field/attribute server.")
        if not isinstance(server.get("name"), str) or not server["name"]:
            return self._bad("Invalid input for field/attribute name.")
        if server.get("flavorRef") not in [f["id"] for f in FLAVORS]:
            return self._bad("Flavor %s could not be found." % server.get("flavorRef"))
        volumes = server.get("block_device_mapping_v2") or []
        image = server.get("imageRef") or (volumes[0].get("uuid") if volumes else None)
        if image not in [i["id"] for i in IMAGES]:
            return self._bad("Can not find requested image")
        # nova/api/openstack/compute/schemas/servers.py: from 2.37 `networks` is required
        # and may be "auto" or "none"; before, it is an optional list; volume_type in a
        # block device from 2.67 (additionalProperties false: refused before)
        networks = server.get("networks")
        if version >= (2, 37) and networks is None:
            return self._bad("Invalid input for field/attribute server. Value: ... "
                             "'networks' is a required property")
        if version < (2, 37) and networks is not None and not isinstance(networks, list):
            return self._bad("Invalid input for field/attribute networks. Value: %s. %r is "
                             "not of type 'array'" % (networks, networks))
        if version >= (2, 37) and isinstance(networks, list) and not all(
                isinstance(n, dict) and ("uuid" not in n or re.match(
                    r"^[0-9a-fA-F]{8}(-?[0-9a-fA-F]{4}){3}-?[0-9a-fA-F]{12}$", str(n["uuid"])))
                for n in networks):              # 2.37: uuid strictly in UUID format
            return self._bad("Invalid input for field/attribute uuid. Value: %s. is not a "
                             "'uuid'" % networks)
        if version < (2, 67) and any("volume_type" in v for v in volumes):
            return self._bad("Invalid input for field/attribute 0. Value: ... Additional "
                             "properties are not allowed ('volume_type' was unexpected)")
        try:
            user_data = base64.b64decode(server.get("user_data", ""), validate=True)
        except ValueError:
            return self._bad("User data needs to be valid base 64.")
        # openstack/nova nova/api/openstack/compute/schemas/servers.py: user_data is a
        # base64 string of maxLength 65535 (characters of the base64 text)
        if len(server.get("user_data", "")) > 65535:
            return self._bad("User data too large. User data must be no larger than 65535 "
                             "bytes once base64 encoded.")
        # schemas/servers.py: security_groups is an array of {"name": ...} (nothing else);
        # a name the project does not have: 400 "Unable to find security_group with name or
        # id 'X'" (nova/network/neutron.py, SecurityGroupNotFound; GUESS: exact wording)
        groups = server.get("security_groups", [{"name": "default"}])
        if not isinstance(groups, list) or not all(
                isinstance(g, dict) and set(g) == {"name"} and isinstance(g["name"], str)
                for g in groups):
            return self._bad("Invalid input for field/attribute security_groups.")
        for group in groups:
            if group["name"] not in self.security_groups:
                return self._bad("Unable to find security_group with name or id '%s'"
                                 % group["name"])
        # schemas/servers.py: os:scheduler_hints, a top-level key beside server; its group
        # a server group's UUID (an unknown one: 400, GUESS: exact wording)
        hints = body.get("os:scheduler_hints", {})
        if not isinstance(hints, dict) or ("group" in hints and not re.match(
                r"^[0-9a-fA-F]{8}(-?[0-9a-fA-F]{4}){3}-?[0-9a-fA-F]{12}$", str(hints["group"]))):
            return self._bad("Invalid input for field/attribute os:scheduler_hints.")
        if "group" in hints and hints["group"] not in [g["id"] for g in self.server_groups]:
            return self._bad("Unable to find server group %s" % hints["group"])
        live = len(self.servers)
        if self.max_servers is not None and live >= self.max_servers:
            return _Answer(403, self.error_body(403, "forbidden", "Quota exceeded for "
                                                "instances: Requested 1, but already used %d "
                                                "of %d instances" % (live, self.max_servers)))
        rec = self._new_record(server["name"], server, labels=server.get("metadata") or {})
        rec["user_data"] = user_data.decode("utf-8")
        rec["security_groups"] = [dict(g) for g in groups]
        return _Answer(202, {"server": {"id": rec["id"], "links": [],
                                        "OS-DCF:diskConfig": "MANUAL",
                                        "security_groups": rec["security_groups"],
                                        "adminPass": rec["root_password"]}})

    def _bad(self, message):
        return _Answer(400, self.error_body(400, "badRequest", message))

