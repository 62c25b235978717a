# -*- coding: utf-8 -*-
"""A fake Yandex Cloud for tests: Compute (instances, images), VPC (subnets) and the
Operation API on one server, IAM (tokens) and the instance metadata service on another.

Standard library only; Python 3.6 to 3.13; everything on 127.0.0.1, port 0.

    api = FakeYandex(polls_per_status=1).start()     # also starts api.iam
    ... backend: compute_url = operation_url = vpc_url = api.url,
                 iam_url = metadata_url = api.iam.url
    api.stop()

Sources: yandex-cloud/cloudapi (the protos the REST API is generated from:
yandex/cloud/compute/v1/instance_service.proto and instance.proto, image_service.proto,
yandex/cloud/vpc/v1/subnet.proto, yandex/cloud/operation/operation.proto,
yandex/cloud/iam/v1/iam_token_service.proto) and the REST reference
(yandex.cloud/docs/compute/api-ref, iam/api-ref, operation): int64 fields as JSON strings, empty lists left out, errors as
{"code": <gRPC code>, "message", "details"} with the HTTP status of that code, every
change an Operation polled at /operations/{id}. Where the reference is silent the fake
guesses (marked GUESS); a backend must not depend on a guess being exact.

The knobs and the failure rules of tests/helpers/fakecloud.py's _FakeAPI work here as there
(polls_per_status, ip_after_polls, fail_next, server_error_next, rate_limit_next,
hang_next, ...); paths are the full ones ("/compute/v1/instances"). Besides:

    op_polls              GETs of a create operation before it is done (default:
                          polls_per_status; 0 = done in the create answer)
    api.operation_fails_next(code, message)   the next create's operation ends with
                          that error and its instance is gone (an async failure)
    api.quota_next(count=1)                   creates refused with code 8 (HTTP 429)
    api.no_capacity_next(count=1)             creates refused: no resources in the zone
    SUBNETS               one subnet per zone (SUBNET: the one of ZONE)
    api.servers           id (str) -> record; api.operations id -> operation

The IAM fake (api.iam) checks a JWT like Yandex IAM (PS256, kid, iss, aud, iat/exp) and
its signature with the openssl command (public_key: a PEM file), takes the OAuth token
oauth_token, and answers the metadata token to a request with Metadata-Flavor: Google.
The token it issues is the one the Compute fake accepts (api.token), and every login
gets it again until api.iam.expire() makes it stale (401), as if it had expired; then
the next login gets a new one. api.iam.jwts holds every JWT it was sent.
"""

import base64
import json
import os
import re
import shutil
import subprocess
import tempfile
import threading
import time
import uuid

from .fakecloud import _Answer, _FakeAPI

__all__ = ["FakeYandex", "FakeYandexIAM", "YANDEX_JWT_AUDIENCE"]

YANDEX_JWT_AUDIENCE = "https://iam.api.cloud.yandex.net/iam/v1/tokens"
HTTP_OF_CODE = {1: 499, 2: 500, 3: 400, 4: 504, 5: 404, 6: 409, 7: 403, 8: 429, 9: 400,
                10: 409, 11: 400, 12: 501, 13: 500, 14: 503, 16: 401}
CODE_OF_HTTP = {400: 3, 401: 16, 403: 7, 404: 5, 409: 6, 429: 8, 500: 13, 501: 12,
                503: 14, 504: 4}
# yandex-cloud/cloudapi yandex/cloud/compute/v1/instance_service.proto CreateInstanceRequest: name `|[a-z]([-_a-z0-9]{0,61}[a-z0-9])?`;
# labels: keys `[a-z][-_./\\@0-9a-z]*` of 1 to 63, values `[-_./\\@0-9a-z]*` of at most 63,
# at most 64 of them; metadata values at most 256 KB, all of it less than 512 KB
NAME = re.compile(r"^[a-z]([-_a-z0-9]{0,61}[a-z0-9])?$")
LABEL_KEY = re.compile(r"^[a-z][-_./\\@0-9a-z]{0,62}$")
LABEL_VALUE = re.compile(r"^[-_./\\@0-9a-z]{0,63}$")
ZONES = ("ru-central1-a", "ru-central1-b", "ru-central1-d")
PLATFORMS = ("standard-v1", "standard-v2", "standard-v3")
DISK_TYPES = ("network-hdd", "network-ssd", "network-ssd-nonreplicated")
GIB = 1 << 30
NO_CAPACITY = "Not enough resources available in the zone to create the instance"


def stamp(seconds=None):
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + ".123456Z"


# google.rpc.Status, as the REST gateway of every Yandex Cloud API answers an error: code
# (a gRPC code), message, details; the HTTP status is the gRPC code's (google/rpc/code.proto)
def yandex_error(code, message):
    return {"code": code, "message": message, "details": [{
        "@type": "type.googleapis.com/google.rpc.RequestInfo",
        "requestId": str(uuid.uuid4())}]}


def error(code, message):
    return _Answer(HTTP_OF_CODE.get(code, 500), yandex_error(code, message))


def int64(value):
    """An int64 field's value as protobuf's JSON takes it (a number or a digit string)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return None


class _YandexShapes(object):
    """Error bodies and answers both Yandex fakes share."""

    def error_body(self, status, code, message, details=None):
        return yandex_error(code, message)

    def default_code(self, status):
        return CODE_OF_HTTP.get(status, 13 if status >= 500 else 3)

    def unauthorized(self):
        return error(16, "The token is invalid")    # GUESS: the exact wording

    def bad_json(self):
        return error(3, "Invalid JSON payload received")

    def rate_limited(self, reset_in, retry_after):
        answer = error(8, "Too many requests")
        if retry_after:      # GUESS: Yandex documents no Retry-After; as the other fakes
            answer.headers["Retry-After"] = int(reset_in)
        return answer


class FakeYandex(_YandexShapes, _FakeAPI):
    """Compute API v1 (instances, images), VPC's subnets and the Operation API."""

    default_sequence = ["PROVISIONING", "STARTING", "RUNNING"]
    CREATE_PATH = r"^/compute/v1/instances$"
    FOLDER = "b1gfolder0000000000a"
    SUBNETS = {"ru-central1-a": "e9bsubnet00000000000", "ru-central1-b": "e2lsubnet00000000000",
               "ru-central1-d": "fl8subnet00000000000"}
    ZONE = "ru-central1-a"
    SUBNET = SUBNETS[ZONE]
    IMAGES = {"fd8image0000000000u1": "ubuntu-2204-lts", "fd8image0000000000u0": "ubuntu-2204-lts",
              "fd8image0000000000al": "almalinux-9"}
    LATEST = {"ubuntu-2204-lts": "fd8image0000000000u1", "almalinux-9": "fd8image0000000000al"}

    def __init__(self, op_polls=None, iam=None, **kw):
        _FakeAPI.__init__(self, **kw)
        self.op_polls = op_polls
        self.private_ip = "10.128.0.24"     # every instance's primaryV4Address.address
        self.iam = iam if iam is not None else FakeYandexIAM(compute=self)

    def reset(self):
        _FakeAPI.reset(self)
        with self.lock:
            self.operations = {}
            self.operation_failures = []

    def start(self):
        _FakeAPI.start(self)
        self.iam.start()
        return self

    def stop(self):
        self.iam.stop()
        _FakeAPI.stop(self)

    # ---- knobs -------------------------------------------------------------------------
    def operation_fails_next(self, code, message):
        with self.lock:
            self.operation_failures.append((code, message))

    def quota_next(self, count=1):
        self.error_next(429, 8, "Quota limit compute.instances.count exceeded", count=count,
                        method="POST", path=self.CREATE_PATH)

    def no_capacity_next(self, count=1):
        self.error_next(429, 8, NO_CAPACITY, count=count, method="POST",   # GUESS: the wording
                        path=self.CREATE_PATH)

    # ---- records: Yandex ids are 20 lowercase letters and digits -------------------------
    def _new_record(self, name, request, labels=None, comment=""):
        with self.lock:
            rec = _FakeAPI._new_record(self, name, request, labels, comment)
            del self.servers[rec["id"]]
            rec["id"] = "fhm%017d" % rec["id"]
            self.servers[rec["id"]] = rec
            return rec

    def server(self, server_id):
        with self.lock:
            return self.servers.get(server_id)

    def set_status(self, server_id, status):
        with self.lock:
            self.servers[server_id]["pinned_status"] = status

    def remove_server(self, server_id):
        with self.lock:
            self.servers.pop(server_id, None)

    def render(self, rec):
        """instance.proto Instance; status one of PROVISIONING, RUNNING, STOPPING, STOPPED,
        STARTING, RESTARTING, UPDATING, ERROR, CRASHED, DELETING."""
        req = rec["request"] or {}
        spec = req.get("resourcesSpec") or {}
        nat = {"ipVersion": "IPV4"}
        if self.current_ipv4(rec):
            nat["address"] = self.current_ipv4(rec)
        interface = (req.get("networkInterfaceSpecs") or [{}])[0]
        return {
            "id": rec["id"], "folderId": self.FOLDER, "createdAt": rec["created"],
            "name": rec["name"], "labels": dict(rec["labels"]),
            "zoneId": req.get("zoneId", self.ZONE), "platformId": req.get("platformId",
                                                                           "standard-v3"),
            "resources": {"memory": str(spec.get("memory", 2 * GIB)),
                          "cores": str(spec.get("cores", 2)),
                          "coreFraction": str(spec.get("coreFraction", 100))},
            "status": self.current_status(rec),
            "bootDisk": {"mode": "READ_WRITE", "deviceName": "boot", "autoDelete": True,
                         "diskId": "fhmdisk" + rec["id"][7:]},
            # instance.proto NetworkInterface (securityGroupIds: the spec's), PlacementPolicy
            "networkInterfaces": [dict({
                "index": "0", "macAddress": "d0:0d:12:34:56:78",
                "subnetId": interface.get("subnetId", self.SUBNET),
                "primaryV4Address": {"address": self.private_ip, "oneToOneNat": nat}},
                **({"securityGroupIds": interface["securityGroupIds"]}
                   if interface.get("securityGroupIds") else {}))],
            "fqdn": "%s.ru-central1.internal" % rec["id"],
            "schedulingPolicy": {}, "networkSettings": {"type": "STANDARD"},
            "placementPolicy": dict(req.get("placementPolicy") or {}),
        }

    # ---- operations ----------------------------------------------------------------------
    def _operation(self, description, metadata_type, instance_id, polls, result=None):
        op_id = "fhmop%015d" % (len(self.operations) + 1)
        op = {"id": op_id, "description": description, "createdAt": stamp(),
              "createdBy": "ajesa0000000000000001", "modifiedAt": stamp(), "done": False,
              "metadata": {"@type": "type.googleapis.com/yandex.cloud.compute.v1." +
                           metadata_type, "instanceId": instance_id}}
        self.operations[op_id] = {"op": op, "polls_left": polls, "result": result}
        if polls <= 0:
            self._settle(op_id)
        return dict(op)

    def _settle(self, op_id):
        entry = self.operations[op_id]
        op = entry["op"]
        op["done"], op["modifiedAt"] = True, stamp()
        result = entry["result"]() if entry["result"] else {}
        op["error" if "code" in result else "response"] = result

    def _get_operation(self, op_id):
        entry = self.operations.get(op_id)
        if entry is None:
            return error(5, "Operation %s not found" % op_id)
        if not entry["op"]["done"]:
            entry["polls_left"] -= 1
            if entry["polls_left"] < 0:
                self._settle(op_id)
        return _Answer(200, dict(entry["op"]))

    # ---- routes: instance_service.proto (GET/POST /compute/v1/instances, GET/DELETE
    # /compute/v1/instances/{instance_id}: Create and Delete answer an Operation),
    # image_service.proto (GET /compute/v1/images/{image_id}, images:latestByFamily),
    # vpc/v1/subnet_service.proto (GET /vpc/v1/subnets/{subnet_id}), operation_service.proto
    # (GET /operations/{operation_id})
    def route(self, method, path, query, body):
        if path == "/compute/v1/instances":
            if method == "GET":
                return self._list(query)
            if method == "POST":
                return self._create(body)
        match = re.match(r"^/compute/v1/instances/([a-z0-9]+)$", path)
        if match:
            rec = self.servers.get(match.group(1))
            if rec is None:
                return error(5, "Instance %s not found" % match.group(1))
            if method == "GET":
                return _Answer(200, self._observe(rec))
            if method == "DELETE":
                del self.servers[rec["id"]]
                return _Answer(200, self._operation("Delete instance", "DeleteInstanceMetadata",
                                                    rec["id"], 1))
        if path == "/compute/v1/images:latestByFamily" and method == "GET":
            family = query.get("family", [""])[0]
            if query.get("folderId") != ["standard-images"] or family not in self.LATEST:
                return error(5, "Image family %s not found" % family)
            return _Answer(200, self._image(self.LATEST[family]))
        match = re.match(r"^/compute/v1/images/([a-z0-9]+)$", path)
        if match and method == "GET":
            if match.group(1) not in self.IMAGES:
                return error(5, "Image %s not found" % match.group(1))
            return _Answer(200, self._image(match.group(1)))
        match = re.match(r"^/vpc/v1/subnets/([a-z0-9]+)$", path)
        if match and method == "GET":
            zones = [zone for zone, subnet in self.SUBNETS.items() if subnet == match.group(1)]
            if not zones:
                return error(5, "Subnet %s not found" % match.group(1))
            return _Answer(200, {"id": match.group(1), "folderId": self.FOLDER,
                                 "createdAt": stamp(0), "name": "default-" + zones[0],
                                 "networkId": "enpnetwork0000000000", "zoneId": zones[0],
                                 "v4CidrBlocks": ["10.%d.0.0/24" % (128 + ZONES.index(
                                     zones[0]))]})
        match = re.match(r"^/operations/([a-z0-9]+)$", path)
        if match and method == "GET":
            return self._get_operation(match.group(1))
        return _Answer(404, {"code": 5, "message": "Not Found"})     # GUESS: the gateway's

    def _image(self, image_id):
        return {"id": image_id, "folderId": "standard-images", "createdAt": stamp(0),
                "name": self.IMAGES[image_id] + "-v20241028", "family": self.IMAGES[image_id],
                "storageSize": str(4 * GIB), "minDiskSize": str(8 * GIB), "status": "READY",
                "os": {"type": "LINUX"}}

    def _list(self, query):
        if query.get("folderId") != [self.FOLDER]:
            return error(7, "Permission denied to folder %s" % query.get("folderId"))
        items = sorted(self.servers.values(), key=lambda r: r["id"])
        if "filter" in query:
            match = re.match(r'^name\s*=\s*"([^"]*)"$', query["filter"][0])
            if not match:
                return error(3, "Invalid filter expression")
            items = [r for r in items if r["name"] == match.group(1)]
        # instance_service.proto ListInstancesRequest: page_size at most 1000 (its default
        # is not documented: GUESS 50), page_token, filter (name = "..."); the answer
        # ListInstancesResponse {instances, next_page_token}
        size = int64(query.get("pageSize", ["50"])[0]) or 50
        start = int64(query.get("pageToken", ["0"])[0]) or 0
        if size > 1000:
            return error(3, "Illegal argument pageSize")
        answer = {}
        if items[start:start + size]:        # protobuf's JSON leaves an empty list out
            answer["instances"] = [self._observe(r) for r in items[start:start + size]]
        if start + size < len(items):
            answer["nextPageToken"] = str(start + size)
        return _Answer(200, answer)

    def _create(self, body):
        problem = self._create_problem(body)
        if problem:
            return problem
        if any(r["name"] == body["name"] for r in self.servers.values()):
            return error(6, "Instance with name %s already exists" % body["name"])
        rec = self._new_record(body["name"], body, labels=body.get("labels"))
        failure = self.operation_failures.pop(0) if self.operation_failures else None
        polls = self.polls_per_status if self.op_polls is None else self.op_polls

        def result():
            if failure:
                self.servers.pop(rec["id"], None)
                return yandex_error(*failure)
            return self.render(rec)
        return _Answer(200, self._operation("Create instance", "CreateInstanceMetadata",
                                            rec["id"], polls, result))

    def _create_problem(self, body):
        """An error answer for a create body the real API refuses, or None
        (instance_service.proto CreateInstanceRequest: folder_id, zone_id, platform_id,
        resources_spec, boot_disk_spec, network_interface_specs required)."""
        if not isinstance(body, dict):
            return error(3, "Request body must be an object")
        if body.get("folderId") != self.FOLDER:
            return error(7, "Permission denied to folder %s" % body.get("folderId"))
        if not isinstance(body.get("name"), str) or not NAME.match(body["name"]):
            return error(3, "Illegal argument name")
        labels = body.get("labels") or {}
        if not isinstance(labels, dict) or len(labels) > 64 or not all(
                LABEL_KEY.match(k) and isinstance(v, str) and LABEL_VALUE.match(v)
                for k, v in labels.items()):
            return error(3, "Illegal argument labels")
        if body.get("zoneId") not in ZONES:
            return error(3, "Illegal argument zoneId")
        if body.get("platformId") not in PLATFORMS:
            return error(5, "Platform %s not found" % body.get("platformId"))
        spec = body.get("resourcesSpec") or {}
        memory, cores = int64(spec.get("memory")), int64(spec.get("cores"))
        if not isinstance(spec.get("memory"), str) or not memory or memory % (GIB // 4) \
                or not cores or int64(spec.get("coreFraction", 100)) not in (5, 20, 50, 100):
            return error(3, "Illegal argument resourcesSpec")
        metadata = body.get("metadata") or {}
        if not isinstance(metadata, dict) or not all(isinstance(v, str)
                                                     for v in metadata.values()):
            return error(3, "Illegal argument metadata")
        if any(len(v.encode("utf-8")) > 256 * 1024 for v in metadata.values()):
            return error(3, "Metadata value is too long")      # 256 KB a value
        if sum(len(k.encode("utf-8")) + len(v.encode("utf-8"))
               for k, v in metadata.items()) >= 512 * 1024:
            return error(3, "Metadata is too long")             # less than 512 KB in all
        disk = (body.get("bootDiskSpec") or {}).get("diskSpec") or {}
        if not isinstance(disk.get("size"), str) or not int64(disk["size"]) \
                or disk.get("typeId") not in DISK_TYPES:
            return error(3, "Illegal argument bootDiskSpec")
        if disk.get("imageId") not in self.IMAGES:
            return error(5, "Image %s not found" % disk.get("imageId"))
        interfaces = body.get("networkInterfaceSpecs")      # required (one or more)
        if not isinstance(interfaces, list) or not interfaces:
            return error(3, "Illegal argument networkInterfaceSpecs")
        subnet = interfaces[0].get("subnetId")
        if subnet not in self.SUBNETS.values():
            return error(5, "Subnet %s not found" % subnet)
        if self.SUBNETS.get(body["zoneId"]) != subnet:
            return error(3, "Subnet %s is not in zone %s" % (subnet, body["zoneId"]))
        nat = (interfaces[0].get("primaryV4AddressSpec") or {}).get("oneToOneNatSpec")
        if nat != {"ipVersion": "IPV4"}:
            return error(3, "Illegal argument primaryV4AddressSpec")
        # instance_service.proto NetworkInterfaceSpec.security_group_ids (repeated string),
        # PlacementPolicy.placement_group_id (string)
        groups = interfaces[0].get("securityGroupIds", [])
        if not isinstance(groups, list) or not all(isinstance(g, str) for g in groups):
            return error(3, "Illegal argument securityGroupIds")
        policy = body.get("placementPolicy", {})
        if not isinstance(policy, dict) or not isinstance(
                policy.get("placementGroupId", ""), str):
            return error(3, "Illegal argument placementPolicy")
        return None


class FakeYandexIAM(_YandexShapes, _FakeAPI):
    """IAM's POST /iam/v1/tokens and the metadata service's token, on one server.

    Sources: yandex-cloud/cloudapi yandex/cloud/iam/v1/iam_token_service.proto (Create:
    POST /iam/v1/tokens with one of yandex_passport_oauth_token or jwt; the answer
    CreateIamTokenResponse {iam_token, expires_at}); the JWT as the IAM docs "Creating an
    IAM token for a service account" describe it (PS256, kid, iss, aud, iat, exp); the
    metadata service as the Compute docs "Working with a service account inside a VM" do
    (Metadata-Flavor: Google; {access_token, expires_in, token_type})."""

    TOKEN_PATH = "/iam/v1/tokens"
    METADATA_PATH = "/computeMetadata/v1/instance/service-accounts/default/token"

    def __init__(self, compute, key_id="ajekey00000000000001", account_id="ajesa0000000000000001",
                 public_key=None, oauth_token=None, lifetime=12 * 3600, **kw):
        _FakeAPI.__init__(self, token="no bearer token here", **kw)
        self.compute = compute
        self.key_id = key_id
        self.account_id = account_id
        self.public_key = public_key
        self.oauth_token = oauth_token
        self.lifetime = lifetime
        self.issued = []
        self.jwts = []
        self.local = threading.local()

    def needs_token(self, method, path):
        return False

    def expire(self):
        """The token last issued stops working (401), as an expired one would."""
        self.compute.token = "expired-" + uuid.uuid4().hex

    def _handle(self, h):
        self.local.headers = h.headers
        _FakeAPI._handle(self, h)

    def _issue(self):
        """The token issued last while it works (one the Compute fake takes: tokens do
        not end at the next login), else a new one."""
        if self.compute.token in self.issued:
            return self.compute.token
        token = "t1.fake%s" % uuid.uuid4().hex
        self.issued.append(token)
        self.compute.token = token
        return token

    def route(self, method, path, query, body):
        if path == self.METADATA_PATH and method == "GET":
            if self.local.headers.get("Metadata-Flavor") != "Google":
                return _Answer(403, {"error": "Missing Metadata-Flavor:Google header"})
            return _Answer(200, {"access_token": self._issue(), "expires_in": self.lifetime,
                                 "token_type": "Bearer"})
        if path != self.TOKEN_PATH or method != "POST":
            return error(5, "Not Found")
        if not isinstance(body, dict):
            return error(3, "Request body must be an object")
        if "jwt" in body:
            self.jwts.append(body["jwt"])
            problem = self.jwt_problem(body["jwt"])
            if problem:
                return error(16, problem)
        elif "yandexPassportOauthToken" in body:
            if body["yandexPassportOauthToken"] != self.oauth_token:
                return error(16, "The OAuth token is invalid")      # GUESS: the wording
        else:
            return error(3, "Exactly one of jwt, yandexPassportOauthToken is required")
        return _Answer(200, {"iamToken": self._issue(),
                             "expiresAt": stamp(time.time() + self.lifetime)})

    def jwt_problem(self, jwt):
        """Why Yandex IAM would refuse this JWT, or None."""
        try:
            header, claims, signature = jwt.split(".")
            header, claims = [json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))
                                         .decode("utf-8")) for part in (header, claims)]
        except (ValueError, UnicodeDecodeError, AttributeError):
            return "Invalid JWT"
        if header != {"typ": "JWT", "alg": "PS256", "kid": self.key_id}:
            return "Unknown key or algorithm in the JWT header %r" % (header,)
        if claims.get("iss") != self.account_id or claims.get("aud") != YANDEX_JWT_AUDIENCE:
            return "Invalid issuer or audience"
        iat, exp = claims.get("iat"), claims.get("exp")
        if not isinstance(iat, int) or not isinstance(exp, int) or not 0 < exp - iat <= 3600 \
                or abs(iat - time.time()) > 300 or exp < time.time():
            return "Invalid iat or exp"
        if self.public_key and not openssl_verifies(jwt, self.public_key):
            return "JWT signature verification failed"
        return None


def openssl_verifies(jwt, public_key):
    """True when the openssl command accepts the JWT's PS256 signature (salt 32)."""
    folder = tempfile.mkdtemp(prefix="bxyandex-jwt-")
    try:
        signed, _, signature = jwt.rpartition(".")
        message, sig = os.path.join(folder, "message"), os.path.join(folder, "signature")
        with open(message, "wb") as handle:
            handle.write(signed.encode("ascii"))
        with open(sig, "wb") as handle:
            handle.write(base64.urlsafe_b64decode(signature + "=" * (-len(signature) % 4)))
        proc = subprocess.Popen(
            ["openssl", "dgst", "-sha256", "-verify", public_key, "-sigopt",
             "rsa_padding_mode:pss", "-sigopt", "rsa_pss_saltlen:32", "-signature", sig,
             message], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT)
        out = proc.communicate(timeout=60)[0]
        return proc.returncode == 0 and b"Verified OK" in out
    finally:
        shutil.rmtree(folder, True)
