# -*- coding: utf-8 -*-
"""A fake Proxmox VE API for tests: nodes, a cloud-init template, clones, their config,
resize, start, stop and destroy, each change a task (UPID) polled at its status.

Standard library only; Python 3.6 to 3.13; on 127.0.0.1, port 0; https with tls=(cert,
key) (tests/helpers/cloudbase.py's self_signed makes a pair), as pveproxy serves.

    api = FakeProxmox(token=SECRET, polls_per_status=1, tls=(cert, key)).start()
    ... backend: api_url = api.base_url (the plugin appends /api2/json), token_id =
        api.token_id, tls_fingerprint = api.fingerprint() ...
    api.stop()

Sources (read for their facts, nothing copied):
  - pve-http-server src/PVE/APIServer/AnyEvent.pm: the API under /api2/json; an API
    token in "Authorization: PVEAPIToken=USER@REALM!TOKENID=SECRET"; a request body
    form-encoded or application/json; a DELETE with a body refused ("Unexpected content
    for method 'DELETE'", HTTP 501): DELETE parameters go in the query string; an
    error's text is the status line's reason phrase.
  - pve-http-server src/PVE/APIServer/Formatter/Standard.pm prepare_response_data:
    every answer {"data": ...}, parameter errors added as {"errors": {name: text}}
    (HTTP 400 "Parameter verification failed." from pve-common PVE/JSONSchema.pm).
  - pve-manager PVE/API2/Cluster.pm: GET /cluster/nextid (the next free VMID, as a
    string; ?vmid=N answers N when free, else a parameter error), GET
    /cluster/resources?type=vm (id "qemu/N", vmid, node, type, template, and name and
    status from pvestatd's last round: a new VM is listed at once, its name later).
  - pve-manager PVE/API2/Tasks.pm: GET /nodes/{node}/tasks/{upid}/status ({status:
    running|stopped, exitstatus: "OK" | "WARNINGS: N" | the error}); the UPID format
    UPID:NODE:PID:PSTART:STARTTIME:TYPE:ID:USER: (pve-common PVE/Tools.pm upid_encode).
  - qemu-server PVE/API2/Qemu.pm: POST .../qemu/{vmid}/clone (newid, name, description,
    full, target, storage only with a full clone, pool; clone_vm writes a temporary config
    at once, "# qmclone temporary file\nlock: clone\n" (the comment becomes the
    description), and the VM's name, description and disks only once its disk is copied
    (here: when the clone task ends); a VMID in use: "VM N already exists"), GET/POST/PUT
    .../config (POST runs as a task and answers its UPID, PUT answers null), PUT
    .../resize (disk, size "32G" or "+1G"; a UPID on current versions; "shrinking disks
    is not supported"), POST .../status/start|stop (UPIDs; "VM N already running"),
    GET .../status/current, DELETE .../qemu/{vmid} (purge, destroy-unreferenced-disks;
    "VM N is running - destroy failed"), GET /nodes/{node}/qemu (the node's VMs from
    their config files, PVE/QemuServer.pm vmstatus: name "VM N" when the config has none,
    lock when it has one); a missing VM: HTTP 500 "Configuration file
    'nodes/NODE/qemu-server/N.conf' does not exist" (PVE/QemuConfig.pm load_config).
  - qemu-server PVE/QemuServer.pm and PVE/QemuServer/Cloudinit.pm: ciuser, cipassword
    (a crypt hash kept as it is), sshkeys URI-encoded, ipconfig0 "ip=ADDR/PREFIX,gw=GW",
    nameserver, tags ([a-z0-9_][a-z0-9_+.-]*, separated by ";").
Where they are silent the fake guesses (marked GUESS); a backend must not depend on it.

Knobs and inspection besides fakecloud.py's _FakeAPI (fail_next, server_error_next,
hang_next, drop_next_create, hold_next_create, requests, requests_for, create_requests):

    polls_per_status   GETs of a task's status (or of its VM) before it has stopped (0:
                       stopped at once)
    api.long_clones()  every clone runs until api.end_clones() (a big disk copied)
    resources_lag      /cluster/resources listings before a new VM's name shows in them
    on_start(address), on_stop(address)   called when a VM starts or stops (the address
                       of its ipconfig0): a test's SSH banner comes and goes with it
    api.take_next_vmid()   another admin takes the VMID nextid answers next
    api.task_fails_next(kind, exitstatus)   the next task of that kind ("qmclone",
                       "qmconfig", "resize", "qmstart") ends with that exit status (a
                       failed clone's VM is removed, as qemu-server does)
    api.servers        vmid (int) -> record (its "config", "status", "node"); the template
                       is in api.templates, not here
    api.add_server(name, description=..., ...)   a VM made outside this test
"""

import hashlib
import re
import ssl
import time
from urllib.parse import unquote

from .fakecloud import _Answer, _FakeAPI

__all__ = ["FakeProxmox", "TOKEN_ID", "TEMPLATE_ID"]

TOKEN_ID = "bitrix@pve!provider"
TEMPLATE_ID = 9000
TAG = re.compile(r"^[a-z0-9_][a-z0-9_+.\-]*$")
KNOWN_CONFIG = {"ciuser", "cipassword", "sshkeys", "ipconfig0", "nameserver", "cores",
                "memory", "tags", "net0", "description", "name"}


def pve_error(status, message, errors=None):
    """An error as pveproxy sends it: the text in the status line, {"data": null}."""
    body = {"data": None}
    if errors:
        body["errors"] = errors
    return _Answer(status, body, reason=message)


def missing(node, vmid):
    return pve_error(500, "Configuration file 'nodes/%s/qemu-server/%s.conf' does not exist"
                     % (node, vmid))


class FakeProxmox(_FakeAPI):
    prefix = "/api2/json"
    CREATE_PATH = r"^/nodes/[^/]+/qemu/\d+/clone$"
    NODES = ("pve1", "pve2")
    STORAGES = ("local-lvm", "ceph-vm")
    POOLS = ("bitrix",)

    def __init__(self, token_id=TOKEN_ID, resources_lag=1, on_start=None, on_stop=None,
                 **kw):
        self.token_id = token_id
        self.resources_lag = resources_lag
        self.on_start, self.on_stop = on_start, on_stop
        _FakeAPI.__init__(self, **kw)

    def reset(self):
        _FakeAPI.reset(self)
        with self.lock:
            self.templates = {TEMPLATE_ID: {
                "vmid": TEMPLATE_ID, "node": "pve1", "status": "stopped", "config": {
                    "name": "rocky9-cloud", "template": 1, "boot": "order=scsi0",
                    "scsi0": "local-lvm:base-9000-disk-0,size=10G",
                    "ide2": "local-lvm:vm-9000-cloudinit,media=cdrom",
                    "net0": "virtio=BC:24:11:00:00:01,bridge=vmbr0", "cores": 1,
                    "memory": 2048, "serial0": "socket", "vga": "serial0"}}}
            self.tasks = {}
            self.next_vmid = 100
            self.taken = 0
            self.task_failures = {}
            self.clones_run = False
            self._pid = 4000

    # ---- knobs -----------------------------------------------------------------------
    def take_next_vmid(self):
        with self.lock:
            self.taken += 1

    def task_fails_next(self, kind, exitstatus):
        with self.lock:
            self.task_failures[kind] = exitstatus

    def fingerprint(self):
        """The SHA-256 fingerprint of the served certificate, AA:BB:... (pveproxy's)."""
        with open(self.tls[0]) as handle:
            der = ssl.PEM_cert_to_DER_cert(handle.read())
        digest = hashlib.sha256(der).hexdigest().upper()
        return ":".join(digest[i:i + 2] for i in range(0, 64, 2))

    def add_server(self, name, description="", node="pve1", status="stopped", ipconfig0=None,
                   **extra):
        """A VM made outside the test (another admin's, an earlier run's)."""
        with self.lock:
            vmid = self._free_vmid()
            config = {"name": name, "description": description,
                      "scsi0": "local-lvm:vm-%d-disk-0,size=10G" % vmid}
            if ipconfig0:
                config["ipconfig0"] = ipconfig0
            config.update(extra)
            rec = {"id": vmid, "vmid": vmid, "node": node, "status": status, "config": config,
                   "lists": self.resources_lag, "request": {}, "name": name}
            self.servers[vmid] = rec
            return rec

    def set_status(self, server_id, status):
        with self.lock:
            self.servers[int(server_id)]["status"] = status

    # ---- shapes ----------------------------------------------------------------------
    def credential_ok(self, path, headers):
        return headers.get("Authorization", "") == "PVEAPIToken=%s=%s" % (self.token_id,
                                                                         self.token)

    def error_body(self, status, code, message, details=None):
        return {"data": None}

    def default_code(self, status):
        return None

    def unauthorized(self):
        # pve-manager PVE/HTTPServer.pm auth_handler: a PVE::Exception, code 401; the
        # reason text is a GUESS (pveproxy also waits 3 s first: not here)
        return pve_error(401, "authentication failure")

    def bad_json(self):
        return pve_error(400, "Parameter verification failed.")     # GUESS

    def rate_limited(self, reset_in, retry_after):
        # GUESS: pveproxy has no rate limit; a reverse proxy in front of it may
        headers = {"Retry-After": int(reset_in)} if retry_after else {}
        return _Answer(429, {"data": None}, headers, reason="Too Many Requests")

    # ---- records ---------------------------------------------------------------------
    def _free_vmid(self):
        while self.next_vmid in self.servers or self.next_vmid in self.templates:
            self.next_vmid += 1
        return self.next_vmid

    def _vm(self, node, vmid):
        rec = self.servers.get(int(vmid)) or self.templates.get(int(vmid))
        return rec if rec is not None and rec["node"] == node else None

    def _task(self, node, kind, vmid, done=None, failed=None, vm=None):
        self._pid += 1
        upid = "UPID:%s:%08X:%08X:%08X:%s:%s:%s:" % (node, self._pid, 1000 + self._pid,
                                                       int(time.time()), kind, vmid,
                                                       self.token_id)
        exitstatus = self.task_failures.pop(kind, "OK")
        left = 10 ** 9 if kind == "qmclone" and self.clones_run else self.polls_per_status
        self.tasks[upid] = {"node": node, "type": kind, "id": str(vmid), "done": done,
                            "vm": vm or vmid,
                            "failed": failed, "left": left,
                            "exitstatus": exitstatus, "stopped": False}
        if left <= 0:
            self._stop_task(self.tasks[upid])
        return _Answer(200, {"data": upid})

    def long_clones(self):
        self.clones_run = True

    def end_clones(self):
        with self.lock:
            self.clones_run = False
            for task in self.tasks.values():
                if task["type"] == "qmclone" and not task["stopped"]:
                    task["left"] = 0            # stops at its next look

    def _stop_task(self, task):
        if task["stopped"]:
            return
        task["stopped"] = True
        ok = task["exitstatus"] == "OK" or task["exitstatus"].startswith("WARNINGS")
        action = task["done"] if ok else task["failed"]
        if action:
            action()

    # ---- routes ----------------------------------------------------------------------
    def route(self, method, path, query, body):
        path = unquote(path)
        params = dict((key, values[-1]) for key, values in query.items())
        if method == "DELETE" and body is not None:
            return pve_error(501, "Unexpected content for method 'DELETE'")
        body = body if isinstance(body, dict) else {}
        for handler in (self._cluster, self._node, self._vm_route):
            answer = handler(method, path, params, body)
            if answer is not None:
                return answer
        return pve_error(501, "Method '%s %s' not implemented" % (method, path))   # GUESS

    def _cluster(self, method, path, params, body):
        if method != "GET":
            return None
        if path == "/version":
            return _Answer(200, {"data": {"version": "8.2.4", "release": "8.2",
                                          "repoid": "faa83925c9641325"}})
        if path == "/nodes":
            return _Answer(200, {"data": [{"node": n, "status": "online", "type": "node",
                                           "id": "node/" + n} for n in self.NODES]})
        if path == "/cluster/nextid":
            return self._nextid(params)
        if path == "/cluster/resources":
            return _Answer(200, {"data": self._resources()})
        match = re.match(r"^/pools/([^/]+)$", path)
        if match:
            if match.group(1) not in self.POOLS:
                return pve_error(500, "pool '%s' does not exist" % match.group(1))
            return _Answer(200, {"data": {"members": []}})
        return None

    def _nextid(self, params):
        vmid = self._free_vmid()
        if self.taken:                   # another admin's clone takes it meanwhile
            self.taken -= 1
            self.add_server("someone-elses-%d" % vmid, description="not ours")
        if "vmid" in params:
            wanted = int(params["vmid"])
            if wanted in self.servers or wanted in self.templates:
                return pve_error(400, "Parameter verification failed.",
                                 {"vmid": "VM %d already exists" % wanted})
            return _Answer(200, {"data": wanted})
        return _Answer(200, {"data": str(vmid)})

    def _resources(self):
        items = []
        for rec in list(self.templates.values()) + list(self.servers.values()):
            item = {"id": "qemu/%d" % rec["vmid"], "vmid": rec["vmid"], "node": rec["node"],
                    "type": "qemu", "template": rec["config"].get("template", 0)}
            if rec.get("lists", self.resources_lag) >= self.resources_lag:
                item.update(name=rec["config"].get("name"), status=rec["status"])
            else:                        # pvestatd's next round tells its name
                rec["lists"] = rec.get("lists", 0) + 1
            items.append(item)
        return items

    def _node(self, method, path, params, body):
        match = re.match(r"^/nodes/([^/]+)(/.*)?$", path)
        if not match:
            return None
        node, rest = match.group(1), match.group(2) or ""
        if node not in self.NODES:
            return pve_error(595, "no such cluster node '%s'" % node)      # GUESS
        if method == "GET" and rest == "/status":
            return _Answer(200, {"data": {"uptime": 1000, "cpu": 0.01}})
        if method == "GET" and rest == "/storage":
            return _Answer(200, {"data": [{"storage": s, "content": "images,rootdir",
                                           "type": "lvmthin", "active": 1, "enabled": 1}
                                          for s in self.STORAGES]})
        if method == "GET" and rest == "/qemu":
            return _Answer(200, {"data": [self._listed(rec) for rec in list(
                self.templates.values()) + list(self.servers.values()) if rec["node"] == node]})
        task = re.match(r"^/tasks/(UPID:[^/]+)/status$", rest)
        if method == "GET" and task:
            return self._task_status(task.group(1))
        return None

    def _listed(self, rec):
        item = {"vmid": rec["vmid"], "name": rec["config"].get("name") or "VM %d" % rec["vmid"],
                "status": rec["status"],
                "cpus": rec["config"].get("cores", 1), "maxmem": 1 << 31}
        for key in ("template", "lock", "tags"):
            if key in rec["config"]:
                item[key] = rec["config"][key]
        return item

    def _tick(self, task):
        """One look at a running task (its status, or its VM's): it stops after
        polls_per_status of them, as if that long had passed."""
        if not task["stopped"]:
            task["left"] -= 1
            if task["left"] < 0:
                self._stop_task(task)

    def _task_status(self, upid):
        task = self.tasks.get(upid)
        if task is None:
            return pve_error(500, "no such task")                          # GUESS
        self._tick(task)
        status = {"upid": upid, "node": task["node"], "type": task["type"], "id": task["id"],
                  "user": self.token_id, "status": "stopped" if task["stopped"] else "running"}
        if task["stopped"]:
            status["exitstatus"] = task["exitstatus"]
        return _Answer(200, {"data": status})

    def _vm_route(self, method, path, params, body):
        match = re.match(r"^/nodes/([^/]+)/qemu/(\d+)(/.*)?$", path)
        if not match:
            return None
        node, vmid, rest = match.group(1), int(match.group(2)), match.group(3) or ""
        if method == "POST" and rest == "/clone":
            return self._clone(node, vmid, body)
        rec = self._vm(node, vmid)
        if rec is None:
            return missing(node, vmid)
        config = rec["config"]
        if method == "GET":         # a VM's task runs on: one without its UPID ends too
            for task in list(self.tasks.values()):
                if task["vm"] == vmid:
                    self._tick(task)
        if method == "GET" and rest == "/config":
            return _Answer(200, {"data": dict(config, digest="0" * 40)})
        if method == "GET" and rest == "/status/current":
            current = {"vmid": vmid, "name": config.get("name"), "status": rec["status"],
                       "qmpstatus": rec["status"]}
            if "lock" in config:
                current["lock"] = config["lock"]
            return _Answer(200, {"data": current})
        if config.get("lock") and method != "GET":
            return pve_error(500, "VM is locked (%s)" % config["lock"])
        if method in ("POST", "PUT") and rest == "/config":
            return self._config(rec, body, method)
        if method == "PUT" and rest == "/resize":
            return self._resize(rec, body)
        if method == "POST" and rest in ("/status/start", "/status/stop"):
            return self._power(rec, rest.split("/")[-1])
        if method == "DELETE" and rest == "":
            return self._destroy(rec, params)
        return None

    def _clone(self, node, vmid, body):
        template = self._vm(node, vmid)
        if template is None:
            return missing(node, vmid)
        errors = {}
        newid = body.get("newid")
        if not isinstance(newid, int) and not (isinstance(newid, str) and newid.isdigit()):
            errors["newid"] = "value does not look like a valid VM ID"
        full = str(body.get("full", "1" if template["config"].get("template") else "0")) == "1"
        if body.get("storage") and not full:
            errors["storage"] = "parameter 'storage' not allowed for linked clones"
        target = body.get("target", node)
        if target not in self.NODES:
            errors["target"] = "no such cluster node '%s'" % target
        if errors:
            return pve_error(400, "Parameter verification failed.", errors)
        newid = int(newid)
        if newid in self.servers or newid in self.templates:
            return pve_error(500, "VM %d already exists on node '%s'" % (
                newid, self.servers.get(newid, self.templates.get(newid))["node"]))
        if body.get("pool") and body["pool"] not in self.POOLS:
            return pve_error(500, "pool '%s' does not exist" % body["pool"])
        config = dict((k, v) for k, v in template["config"].items() if k != "template")
        config.update(name=body.get("name") or "Copy-of-VM-%d" % vmid)
        config["scsi0"] = "%s:vm-%d-disk-0,size=10G" % (body.get("storage") or "local-lvm", newid)
        if body.get("description"):
            config["description"] = body["description"]
        rec = {"id": newid, "vmid": newid, "node": target, "status": "stopped",
               "config": {"lock": "clone", "description": " qmclone temporary file\n"},
               "lists": 0, "request": body, "name": config["name"], "pool": body.get("pool")}
        self.servers[newid] = rec
        self.next_vmid = max(self.next_vmid, newid + 1)

        def done():                     # the disk copied: the VM's own config, unlocked
            rec["config"] = config

        def failed():                    # qemu-server removes a failed clone's config
            self.servers.pop(newid, None)
        return self._task(node, "qmclone", vmid, done, failed, vm=newid)

    def _config(self, rec, body, method):
        errors = {}
        for key, value in body.items():
            if key not in KNOWN_CONFIG and not re.match(r"^(scsi|virtio|net)\d+$", key):
                errors[key] = "property is not defined in schema and the schema does not " \
                              "allow additional properties"
            elif key == "tags" and not all(TAG.match(t) for t in re.split(r"[;, ]+", value)
                                           if t):
                errors[key] = "invalid format - invalid tag"
            elif key == "sshkeys" and re.search(r"[^A-Za-z0-9%\-_.!~*'()]", value):
                errors[key] = "invalid urlencoded string"     # GUESS: it must come encoded
            elif key == "ipconfig0" and not re.match(
                    r"^ip=\d+\.\d+\.\d+\.\d+/\d+(,gw=\d+\.\d+\.\d+\.\d+)?$", value):
                errors[key] = "invalid format"
        if errors:
            return pve_error(400, "Parameter verification failed.", errors)
        if method == "PUT":
            rec["config"].update(body)
            return _Answer(200, {"data": None})
        return self._task(rec["node"], "qmconfig", rec["vmid"],
                          lambda: rec["config"].update(body))

    def _resize(self, rec, body):
        disk, size = body.get("disk"), str(body.get("size", ""))
        value = rec["config"].get(disk) if disk else None
        if not isinstance(value, str):
            return pve_error(500, "disk '%s' does not exist" % disk)
        now = int(re.search(r"size=(\d+)G", value).group(1))
        match = re.match(r"^(\+?)(\d+)G$", size)
        if not match:
            return pve_error(400, "Parameter verification failed.",
                             {"size": "value does not match the regex pattern"})
        new = now + int(match.group(2)) if match.group(1) else int(match.group(2))
        if new < now:
            return pve_error(500, "shrinking disks is not supported")
        return self._task(rec["node"], "resize", rec["vmid"], lambda: rec["config"].update(
            {disk: re.sub(r"size=\d+G", "size=%dG" % new, value)}))

    def _address(self, rec):
        match = re.match(r"^ip=([\d.]+)/", rec["config"].get("ipconfig0", ""))
        return match.group(1) if match else None

    def _power(self, rec, what):
        if what == "start" and rec["status"] == "running":
            return pve_error(500, "VM %d already running" % rec["vmid"])

        def done():
            rec["status"] = "running" if what == "start" else "stopped"
            hook = self.on_start if what == "start" else self.on_stop
            if hook and self._address(rec):
                hook(self._address(rec))
        return self._task(rec["node"], "qm" + what, rec["vmid"], done)

    def _destroy(self, rec, params):
        if rec["status"] == "running":
            return pve_error(500, "VM %d is running - destroy failed" % rec["vmid"])
        if rec["vmid"] in self.templates:
            return pve_error(500, "not deleting a template in this fake")   # GUESS
        rec["destroy_params"] = params
        self.servers.pop(rec["vmid"], None)          # GUESS: gone at once (a task really)
        return self._task(rec["node"], "qmdestroy", rec["vmid"])
