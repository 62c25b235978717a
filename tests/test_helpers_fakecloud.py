# -*- coding: utf-8 -*-
"""Self-test of tests/helpers/fakecloud.py: the fakes answer like the documented APIs.

Standard library only (unittest + urllib); Python 3.6 to 3.13.
Run: python3 -m unittest tests.test_helpers_fakecloud
(or from tests/: python3 -m unittest test_helpers_fakecloud)
"""

import json
import os
import socket
import sys
import time
import unittest
from urllib.error import HTTPError, URLError
from urllib.parse import quote
from urllib.request import Request, urlopen

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from helpers.fakecloud import (FakeHetzner, FakeTimeweb, SSHBannerServer,  # noqa: E402
                               label_selector_matches)

TOKEN = "s3cret-token"


def call(api, method, path, body=None, token=TOKEN, timeout=5):
    """Return (status, headers, parsed JSON body or None)."""
    data = None
    headers = {"Authorization": "Bearer " + token, "Accept": "application/json"}
    if body is not None:
        data = json.dumps(body).encode("utf-8")
        headers["Content-Type"] = "application/json"
    req = Request(api.url + path, data=data, headers=headers, method=method)
    try:
        resp = urlopen(req, timeout=timeout)
        status, hdrs, raw = resp.status, resp.headers, resp.read()
    except HTTPError as exc:
        status, hdrs, raw = exc.code, exc.headers, exc.read()
    return status, hdrs, (json.loads(raw.decode("utf-8")) if raw else None)


HZ_CREATE = {"name": "bx-7", "server_type": "cx22", "image": "ubuntu-24.04",
             "location": "fsn1", "labels": {"bitrix-provider": "hz", "task": "7"},
             "user_data": "#cloud-config\nchpasswd:\n  expire: false\n",
             "start_after_create": True}

TW_CREATE = {"name": "bx-7", "preset_id": 2447, "os_id": 99, "availability_zone": "spb-3",
             "cloud_init": "#cloud-config\nchpasswd:\n  expire: false\n",
             "comment": "bitrix-provider tw task 7", "is_ddos_guard": False}


class HetznerTest(unittest.TestCase):

    def setUp(self):
        self.api = FakeHetzner(token=TOKEN, polls_per_status=1, ip_after_polls=2).start()
        self.addCleanup(self.api.stop)

    def test_url_has_v1_prefix(self):
        self.assertTrue(self.api.url.startswith("http://127.0.0.1:"))
        self.assertTrue(self.api.url.endswith("/v1"))

    def test_bad_token_is_401_with_documented_body(self):
        status, _, body = call(self.api, "GET", "/servers", token="wrong")
        self.assertEqual(status, 401)
        self.assertEqual(body["error"]["code"], "unauthorized")
        self.assertIn("message", body["error"])
        rec = self.api.requests[-1]
        self.assertFalse(rec["token_ok"])
        self.assertEqual(rec["headers"]["Authorization"], "Bearer <redacted>")
        self.assertNotIn("wrong", json.dumps(rec["headers"]))

    def test_token_never_recorded(self):
        call(self.api, "POST", "/servers", HZ_CREATE)
        self.assertNotIn(TOKEN, json.dumps(self.api.requests, default=str))
        self.assertTrue(self.api.requests[-1]["token_ok"])

    def test_create_shape_and_state_walk(self):
        status, _, body = call(self.api, "POST", "/servers", HZ_CREATE)
        self.assertEqual(status, 201)
        for key in ("server", "action", "next_actions", "root_password"):
            self.assertIn(key, body)
        server = body["server"]
        self.assertEqual(server["status"], "initializing")
        self.assertIsNone(server["public_net"]["ipv4"])
        self.assertEqual(server["labels"], HZ_CREATE["labels"])
        self.assertEqual(body["action"]["command"], "create_server")
        self.assertEqual(body["next_actions"][0]["command"], "start_server")
        self.assertTrue(body["root_password"])  # no ssh_keys -> Hetzner makes one
        sid = server["id"]
        seen = []
        for _ in range(4):
            status, _, got = call(self.api, "GET", "/servers/%d" % sid)
            self.assertEqual(status, 200)
            ipv4 = got["server"]["public_net"]["ipv4"]
            seen.append((got["server"]["status"], ipv4 and ipv4["ip"]))
        self.assertEqual(seen, [("initializing", None), ("starting", None),
                                ("running", "127.0.0.1"), ("running", "127.0.0.1")])
        created = self.api.create_requests()
        self.assertEqual(len(created), 1)
        self.assertIn("expire: false", created[0]["body"]["user_data"])

    def test_root_password_null_with_ssh_keys(self):
        body = dict(HZ_CREATE, ssh_keys=["pool"])
        _, _, got = call(self.api, "POST", "/servers", body)
        self.assertIsNone(got["root_password"])

    def test_configurable_ip_and_immediate_running(self):
        api = FakeHetzner(token=TOKEN, polls_per_status=0, ip_after_polls=0,
                          ipv4="192.0.2.10").start()
        self.addCleanup(api.stop)
        _, _, got = call(api, "POST", "/servers", HZ_CREATE)
        self.assertEqual(got["server"]["status"], "running")
        self.assertEqual(got["server"]["public_net"]["ipv4"]["ip"], "192.0.2.10")

    def test_lookup_by_label_and_name(self):
        call(self.api, "POST", "/servers", HZ_CREATE)
        call(self.api, "POST", "/servers", dict(HZ_CREATE, name="bx-8",
                                                labels={"bitrix-provider": "hz", "task": "8"}))
        sel = quote("bitrix-provider=hz,task=8")
        _, _, got = call(self.api, "GET", "/servers?label_selector=" + sel)
        self.assertEqual([s["name"] for s in got["servers"]], ["bx-8"])
        _, _, got = call(self.api, "GET", "/servers?label_selector=" + quote("task in (7,8)"))
        self.assertEqual(len(got["servers"]), 2)
        _, _, got = call(self.api, "GET", "/servers?name=bx-7")
        self.assertEqual([s["name"] for s in got["servers"]], ["bx-7"])
        _, _, got = call(self.api, "GET", "/servers?name=nope")
        self.assertEqual(got["servers"], [])
        self.assertEqual(got["meta"]["pagination"]["total_entries"], 0)

    def test_pagination(self):
        for i in range(3):
            call(self.api, "POST", "/servers", dict(HZ_CREATE, name="s%d" % i))
        _, _, got = call(self.api, "GET", "/servers?per_page=2&page=1")
        self.assertEqual(len(got["servers"]), 2)
        self.assertEqual(got["meta"]["pagination"]["next_page"], 2)
        _, _, got = call(self.api, "GET", "/servers?per_page=2&page=2")
        self.assertEqual(len(got["servers"]), 1)
        self.assertIsNone(got["meta"]["pagination"]["next_page"])

    def test_documented_errors(self):
        status, _, got = call(self.api, "POST", "/servers", {"name": "x"})
        self.assertEqual((status, got["error"]["code"]), (422, "invalid_input"))
        self.assertEqual(got["error"]["details"]["fields"][0]["name"], "server_type")
        status, _, got = call(self.api, "POST", "/servers",
                              dict(HZ_CREATE, labels={"bad key!": "x"}))
        self.assertEqual((status, got["error"]["code"]), (422, "invalid_input"))
        status, _, got = call(self.api, "POST", "/servers",
                              dict(HZ_CREATE, user_data="x" * (32 * 1024 + 1)))
        self.assertEqual(status, 422)
        call(self.api, "POST", "/servers", HZ_CREATE)
        status, _, got = call(self.api, "POST", "/servers", HZ_CREATE)
        self.assertEqual((status, got["error"]["code"]), (409, "uniqueness_error"))
        self.api.resource_limit_next()
        status, _, got = call(self.api, "POST", "/servers", dict(HZ_CREATE, name="other"))
        self.assertEqual((status, got["error"]["code"]), (403, "resource_limit_exceeded"))
        self.api.error_next(412, "resource_unavailable", "server type unavailable")
        status, _, got = call(self.api, "GET", "/servers")
        self.assertEqual((status, got["error"]["code"]), (412, "resource_unavailable"))
        status, _, got = call(self.api, "GET", "/servers/999999")
        self.assertEqual((status, got["error"]["code"]), (404, "not_found"))

    def test_rate_limit_headers_everywhere(self):
        _, hdrs, _ = call(self.api, "GET", "/servers")
        self.assertEqual(hdrs["RateLimit-Limit"], "3600")
        self.assertTrue(int(hdrs["RateLimit-Remaining"]) < 3600)
        self.assertTrue(int(hdrs["RateLimit-Reset"]) >= int(time.time()))

    def test_429_with_reset_and_retry_after(self):
        self.api.rate_limit_next(count=2, reset_in=3)
        for _ in range(2):
            status, hdrs, got = call(self.api, "GET", "/servers")
            self.assertEqual(status, 429)
            self.assertEqual(got["error"]["code"], "rate_limit_exceeded")
            self.assertEqual(hdrs["RateLimit-Remaining"], "0")
            self.assertAlmostEqual(int(hdrs["RateLimit-Reset"]), time.time() + 3, delta=2)
            self.assertEqual(hdrs["Retry-After"], "3")
        status, _, _ = call(self.api, "GET", "/servers")
        self.assertEqual(status, 200)
        self.api.rate_limit_next(retry_after=False)
        status, hdrs, _ = call(self.api, "GET", "/servers")
        self.assertEqual(status, 429)
        self.assertIsNone(hdrs.get("Retry-After"))

    def test_429_not_applied(self):
        self.api.rate_limit_next(method="POST")
        status, _, _ = call(self.api, "POST", "/servers", HZ_CREATE)
        self.assertEqual(status, 429)
        self.assertEqual(self.api.servers, {})

    def test_500s_then_ok(self):
        self.api.server_error_next(count=2, method="GET")
        self.assertEqual(call(self.api, "GET", "/servers")[0], 500)
        status, _, got = call(self.api, "GET", "/servers")
        self.assertEqual((status, got["error"]["code"]), (500, "server_error"))
        self.assertEqual(call(self.api, "GET", "/servers")[0], 200)

    def test_raw_bodies_as_a_load_balancer_sends_them(self):
        self.api.fail_next(503, method="GET", raw=b"")
        self.api.fail_next(502, method="POST", path=r"^/servers$", apply=True,
                           raw="<html>502 Bad Gateway</html>", headers={"Content-Type":
                                                                         "text/html"})
        status, hdrs, got = call(self.api, "GET", "/servers")
        self.assertEqual((status, got, hdrs["Content-Length"]), (503, None, "0"))
        self.assertIsNone(hdrs.get("Content-Type"))
        req = Request(self.api.url + "/servers", data=json.dumps(HZ_CREATE).encode("utf-8"),
                      headers={"Authorization": "Bearer " + TOKEN}, method="POST")
        with self.assertRaises(HTTPError) as caught:
            urlopen(req, timeout=5)
        self.assertEqual(caught.exception.code, 502)
        self.assertEqual(caught.exception.headers["Content-Type"], "text/html")
        self.assertEqual(caught.exception.read(), b"<html>502 Bad Gateway</html>")
        self.assertEqual(len(self.api.servers), 1)           # carried out all the same
        self.assertEqual(call(self.api, "GET", "/servers")[0], 200)

    def test_500_after_create_applied(self):
        self.api.server_error_next(method="POST", path=r"^/servers$", apply=True)
        self.assertEqual(call(self.api, "POST", "/servers", HZ_CREATE)[0], 500)
        self.assertEqual(len(self.api.servers), 1)

    def test_create_applied_but_answer_hangs(self):
        self.api.hang_next_create(60)
        start = time.time()
        with self.assertRaises((socket.timeout, URLError, OSError)):
            call(self.api, "POST", "/servers", HZ_CREATE, timeout=0.5)
        self.assertLess(time.time() - start, 30)    # the client's timeout, not the hang
        self.assertEqual(len(self.api.servers), 1)  # the server WAS made
        self.assertEqual(len(self.api.create_requests()), 1)
        _, _, got = call(self.api, "GET", "/servers?label_selector=" + quote("task=7"))
        self.assertEqual(len(got["servers"]), 1)

    def test_stop_releases_a_hang(self):
        api = FakeHetzner(token=TOKEN).start()
        api.hang_next(60, method="GET")
        try:
            call(api, "GET", "/servers", timeout=0.3)
        except (socket.timeout, URLError, OSError):
            pass
        start = time.time()
        api.stop()
        self.assertLess(time.time() - start, 30)    # released, not the hang's 60 s

    def test_delete(self):
        _, _, got = call(self.api, "POST", "/servers", HZ_CREATE)
        sid = got["server"]["id"]
        status, _, got = call(self.api, "DELETE", "/servers/%d" % sid)
        self.assertEqual(status, 200)
        self.assertEqual(got["action"]["command"], "delete_server")
        self.assertEqual(call(self.api, "GET", "/servers/%d" % sid)[0], 404)
        self.assertEqual(call(self.api, "DELETE", "/servers/%d" % sid)[0], 404)

    def test_pinned_status_and_preseed(self):
        rec = self.api.add_server("old", labels={"task": "3"})
        _, _, got = call(self.api, "GET", "/servers/%d" % rec["id"])
        self.assertEqual(got["server"]["status"], "running")
        self.assertEqual(got["server"]["public_net"]["ipv4"]["ip"], "127.0.0.1")
        self.api.set_status(rec["id"], "off")
        _, _, got = call(self.api, "GET", "/servers/%d" % rec["id"])
        self.assertEqual(got["server"]["status"], "off")

    def test_cheap_check_endpoint(self):
        status, _, got = call(self.api, "GET", "/locations")
        self.assertEqual(status, 200)
        self.assertTrue(got["locations"])
        self.assertEqual(call(self.api, "GET", "/locations", token="bad")[0], 401)

    def test_bad_json(self):
        req = Request(self.api.url + "/servers", data=b"{not json", method="POST",
                      headers={"Authorization": "Bearer " + TOKEN,
                               "Content-Type": "application/json"})
        with self.assertRaises(HTTPError) as ctx:
            urlopen(req, timeout=5)
        self.assertEqual(ctx.exception.code, 400)
        self.assertEqual(json.loads(ctx.exception.read().decode())["error"]["code"],
                         "json_error")


class LabelSelectorTest(unittest.TestCase):

    def test_terms(self):
        labels = {"a": "1", "b": "2", "empty": ""}
        self.assertTrue(label_selector_matches("a=1", labels))
        self.assertTrue(label_selector_matches("a==1,b=2", labels))
        self.assertFalse(label_selector_matches("a=1,b=3", labels))
        self.assertTrue(label_selector_matches("a!=2", labels))
        self.assertTrue(label_selector_matches("a,!c", labels))
        self.assertFalse(label_selector_matches("!a", labels))
        self.assertTrue(label_selector_matches("b in (1,2)", labels))
        self.assertTrue(label_selector_matches("b notin (3, 4)", labels))
        self.assertTrue(label_selector_matches("empty=", labels))
        with self.assertRaises(ValueError):
            label_selector_matches("a in 1", labels)


class TimewebTest(unittest.TestCase):

    def setUp(self):
        self.api = FakeTimeweb(token=TOKEN, polls_per_status=2, ip_after_polls=1).start()
        self.addCleanup(self.api.stop)

    def test_url_has_api_v1_prefix(self):
        self.assertTrue(self.api.url.endswith("/api/v1"))

    def test_bad_token(self):
        status, _, body = call(self.api, "GET", "/servers", token="nope")
        self.assertEqual(status, 401)
        self.assertEqual(body["status_code"], 401)
        self.assertIn("error_code", body)
        self.assertIn("response_id", body)

    def test_create_and_walk(self):
        status, _, body = call(self.api, "POST", "/servers", TW_CREATE)
        self.assertEqual(status, 201)
        server = body["server"]
        self.assertEqual(server["status"], "installing")
        self.assertEqual(server["networks"][0]["type"], "public")
        self.assertEqual(server["networks"][0]["ips"], [])
        self.assertTrue(server["root_pass"])
        self.assertEqual(server["comment"], TW_CREATE["comment"])
        sid = server["id"]
        seen = []
        for _ in range(3):
            _, _, got = call(self.api, "GET", "/servers/%d" % sid)
            ips = [ip["ip"] for net in got["server"]["networks"] if net["type"] == "public"
                   for ip in net["ips"] if ip["type"] == "ipv4" and ip["is_main"]]
            seen.append((got["server"]["status"], ips))
        self.assertEqual(seen, [("installing", []), ("installing", ["127.0.0.1"]),
                                ("on", ["127.0.0.1"])])
        self.assertIn("expire: false", self.api.create_requests()[0]["body"]["cloud_init"])

    def test_validation(self):
        bad = dict(TW_CREATE, image_id="abc")
        status, _, got = call(self.api, "POST", "/servers", bad)
        self.assertEqual((status, got["status_code"]), (400, 400))
        self.assertIsInstance(got["message"], str)     # getFinances_400_response: a string
        self.assertEqual(call(self.api, "POST", "/servers", dict(
            TW_CREATE, availability_zone="mars-1"))[0], 400)   # the availability-zone enum
        nopreset = dict(TW_CREATE)
        del nopreset["preset_id"]
        self.assertEqual(call(self.api, "POST", "/servers", nopreset)[0], 400)
        call(self.api, "POST", "/servers", TW_CREATE)
        self.assertEqual(call(self.api, "POST", "/servers", TW_CREATE)[0], 409)
        self.api.error_next(403, "forbidden", "You do not have access for the attempted action")
        status, _, got = call(self.api, "POST", "/servers", dict(TW_CREATE, name="n2"))
        self.assertEqual((status, got["error_code"]), (403, "forbidden"))

    def test_list_limit_offset(self):
        for i in range(3):
            call(self.api, "POST", "/servers", dict(TW_CREATE, name="s%d" % i))
        _, _, got = call(self.api, "GET", "/servers?limit=2&offset=0")
        self.assertEqual(got["meta"]["total"], 3)
        self.assertEqual([s["name"] for s in got["servers"]], ["s0", "s1"])
        _, _, got = call(self.api, "GET", "/servers?limit=2&offset=2")
        self.assertEqual([s["name"] for s in got["servers"]], ["s2"])

    def test_delete_and_confirmation(self):
        _, _, got = call(self.api, "POST", "/servers", TW_CREATE)
        sid = got["server"]["id"]
        self.api.delete_needs_confirmation = True      # the hash: deleted once confirmed
        status, _, got = call(self.api, "DELETE", "/servers/%d" % sid)
        self.assertEqual(status, 200)
        self.assertTrue(got["server_delete"]["hash"])
        self.assertEqual(call(self.api, "GET", "/servers/%d" % sid)[0], 200)
        self.api.delete_needs_confirmation = False
        status, _, got = call(self.api, "DELETE", "/servers/%d" % sid)
        self.assertEqual(status, 200)
        self.assertNotIn("hash", got["server_delete"])
        status, _, got = call(self.api, "GET", "/servers/%d" % sid)
        self.assertEqual((status, got["error_code"]), (404, "not_found"))

    def test_429_and_500(self):
        self.api.rate_limit_next(reset_in=2)
        status, hdrs, got = call(self.api, "GET", "/servers")
        self.assertEqual((status, got["status_code"]), (429, 429))
        self.assertEqual(hdrs["Retry-After"], "2")
        self.api.server_error_next()
        self.assertEqual(call(self.api, "GET", "/servers")[0], 500)
        self.assertEqual(call(self.api, "GET", "/servers")[0], 200)

    def test_hang_create(self):
        self.api.hang_next_create(3)
        with self.assertRaises((socket.timeout, URLError, OSError)):
            call(self.api, "POST", "/servers", TW_CREATE, timeout=0.5)
        _, _, got = call(self.api, "GET", "/servers")
        self.assertEqual([s["name"] for s in got["servers"]], ["bx-7"])

    def test_cheap_endpoints(self):
        status, _, got = call(self.api, "GET", "/account/status")
        self.assertEqual(status, 200)
        self.assertIn("status", got)
        status, _, got = call(self.api, "GET", "/presets/servers")
        self.assertEqual(status, 200)
        self.assertTrue(got["server_presets"])


class SSHBannerTest(unittest.TestCase):

    def test_banner(self):
        with SSHBannerServer() as srv:
            sock = socket.create_connection((srv.host, srv.port), timeout=2)
            try:
                data = sock.recv(64)
            finally:
                sock.close()
            self.assertEqual(data, b"SSH-2.0-OpenSSH_8.0\r\n")
            self.assertEqual(srv.connections, 1)

    def test_silent(self):
        with SSHBannerServer(silent=True) as srv:
            sock = socket.create_connection((srv.host, srv.port), timeout=2)
            sock.settimeout(0.4)
            try:
                with self.assertRaises(socket.timeout):
                    sock.recv(64)
            finally:
                sock.close()

    def test_switch_at_runtime_and_stop_is_quick(self):
        srv = SSHBannerServer().start()
        srv.silent = True
        sock = socket.create_connection((srv.host, srv.port), timeout=2)
        sock.settimeout(0.3)
        with self.assertRaises(socket.timeout):
            sock.recv(64)
        thread = srv._thread
        srv.stop()
        sock.close()
        self.assertFalse(thread.is_alive())     # it ended, not left behind by join's timeout


if __name__ == "__main__":
    unittest.main()
