# -*- coding: utf-8 -*-
"""The cloud layer's pieces, in-process: sha512-crypt, the password, config
validation of the cloud backends, user data, the ansible key look-up."""

import email
import os
import shutil
import tempfile
import time
import unittest
import warnings

from support import load_module

provider = load_module()

HETZNER = {"id": "cx22", "descr": "CX22", "server_type": "cx22", "image": "ubuntu-24.04"}
TIMEWEB = {"id": "2447", "descr": "Timeweb", "preset_id": 2447, "os_id": 99}


def config(backend, *configurations):
    return {"enabled": True, "backend": backend, "configurations": list(configurations)}


class Sha512CryptTest(unittest.TestCase):
    def test_published_vectors(self):
        crypt = provider.sha512_crypt
        self.assertEqual(crypt("Hello world!", "saltstring"),
                         "$6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJu"
                         "esI68u4OTLiBFdcbYEdFCoEOfaS35inz1")
        self.assertEqual(crypt("Hello world!", "saltstringsaltstring", 10000),
                         "$6$rounds=10000$saltstringsaltst$OW1/O6BYHV6BcXZu8QVeXbDWra3Oeqh0sbHb"
                         "bMCVNSnCM/UrjmM0Dp8vOuZeHBy/YTBmSK6H9qs/y3RnOaw5v.")

    def test_agrees_with_the_crypt_module_where_there_is_one(self):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                import crypt
            except ImportError:
                self.skipTest("no crypt module in this Python")
        for password in ("", "a", "x" * 130, "пароль", provider.generate_password()):
            for salt in ("", "ab", "0123456789abcdef", "./XYz"):
                self.assertEqual(provider.sha512_crypt(password, salt),
                                 crypt.crypt(password, "$6$" + salt))


class PasswordTest(unittest.TestCase):
    def test_long_plain_and_different(self):
        seen = set()
        for _ in range(50):
            password = provider.generate_password()
            self.assertGreaterEqual(len(password), 20)
            self.assertTrue(all(c in provider.PASSWORD_ALPHABET for c in password))
            self.assertTrue(any(c.isdigit() for c in password))
            seen.add(password)
        self.assertEqual(len(seen), 50)


class ValidationTest(unittest.TestCase):
    def problems(self, data):
        return provider.validate_config(data)

    def test_good_configs(self):
        self.assertEqual(self.problems(config({"type": "hetzner", "token_file": "/t"},
                                              HETZNER)), [])
        by_image = dict(TIMEWEB, id="img", image_id="6f3a0b1c-image")
        del by_image["os_id"]
        self.assertEqual(self.problems(config({"type": "timeweb", "token_env": "TW"},
                                              TIMEWEB, by_image)), [])

    def test_backend_settings(self):
        problems = self.problems(config({
            "type": "hetzner", "token_file": "", "api_url": "http://api.example.com/v1",
            "ssh_port": 70000, "ready_grace": -1, "timeout": 0, "pool_key": 5},
            HETZNER))
        for expected in ("$.backend.token_file: must not be empty",
                         "$.backend.api_url: must be an https:// URL",
                         "$.backend.ssh_port: must be a TCP port",
                         "$.backend.ready_grace: must be a finite number, 0 to",
                         "$.backend.timeout: must be greater than 0",
                         "$.backend.pool_key: must be a string, not integer"):
            self.assertTrue(any(p.startswith(expected) for p in problems), (expected, problems))

    def test_exactly_one_token_source(self):
        for backend in ({"type": "hetzner"},
                        {"type": "hetzner", "token_file": "/t", "token_env": "X"}):
            problems = self.problems(config(backend, HETZNER))
            self.assertEqual(len(problems), 1, problems)
            self.assertTrue(problems[0].startswith("$.backend: needs exactly one of "
                                                   "'token_file'"), problems)

    def test_plain_http_only_to_this_host(self):
        for url in ("http://127.0.0.1:8080/v1", "http://localhost/v1", "https://x.example/v1"):
            self.assertEqual(self.problems(config({"type": "hetzner", "token_env": "T",
                                                   "api_url": url}, HETZNER)), [], url)

    def test_configurations(self):
        problems = self.problems(config(
            {"type": "hetzner", "token_env": "T"},
            {"id": "a", "descr": "x", "image": "u", "login": "root", "user_data": "echo hi",
             "preset_id": 1}))
        self.assertIn("$.configurations[0]: missing key 'server_type' (a hetzner backend "
                      "needs server_type, image)", problems)
        self.assertTrue(any(p.startswith("$.configurations[0].login: must be \"password\"")
                            for p in problems), problems)
        self.assertTrue(any(p.startswith("$.configurations[0].user_data: must start with")
                            for p in problems), problems)
        self.assertTrue(any(p.startswith("$.configurations[0].preset_id: unknown key")
                            for p in problems), problems)

    def test_each_backend_checks_its_own_required_keys(self):
        for backend, item, key, needs in (
                ("hetzner", HETZNER, "image", "server_type, image"),
                ("timeweb", TIMEWEB, "preset_id", "preset_id")):
            item = dict(item)
            del item[key]
            self.assertEqual(self.problems(config({"type": backend, "token_env": "T"}, item)),
                             ["$.configurations[0]: missing key %r (a %s backend needs %s)"
                              % (key, backend, needs)])

    def test_timeweb_needs_one_of_os_id_and_image_id(self):
        both = dict(TIMEWEB, image_id="abc")
        neither = dict(TIMEWEB)
        del neither["os_id"]
        for item in (both, neither):
            self.assertEqual(self.problems(config({"type": "timeweb", "token_env": "T"}, item)),
                             ["$.configurations[0]: needs exactly one of 'os_id' or 'image_id'"])
        self.assertIn("$.configurations[0].preset_id: must be an integer, not string",
                      self.problems(config({"type": "timeweb", "token_env": "T"},
                                           dict(TIMEWEB, preset_id="2447"))))


class PiecesTest(unittest.TestCase):
    def test_mime_archive_keeps_each_part_whole(self):
        text = provider.mime_multipart([("text/cloud-config", "a.cfg", "#cloud-config\nx: 1\n"),
                                        ("text/x-shellscript", "b", "#!/bin/sh\necho привет")])
        parts = email.message_from_bytes(text.encode("utf-8")).get_payload()
        self.assertEqual(parts[0].get_payload(), "#cloud-config\nx: 1\n")
        self.assertEqual(parts[1].get_payload(decode=True).decode("utf-8"),
                         "#!/bin/sh\necho привет\n")

    def test_server_names_are_host_names(self):
        self.assertEqual(provider.server_name("provider", "24", "0a1b2c3d"),
                         "provider-24-0a1b2c3d")
        self.assertEqual(provider.server_name("My_Hoster.py", "7", "ff"), "my-hoster-py-7-ff")
        self.assertEqual(provider.server_name("__", "7", "ff"), "bx-7-ff")

    def test_error_text_never_raises_on_a_body_in_another_shape(self):
        bodies = (None, {}, [], "Bad Gateway", 502, {"message": "Bad Gateway"},
                  {"error": "boom"}, {"error": None}, {"error": {"message": 5, "code": 7}},
                  {"error": {"details": {"fields": ["x", {"name": "n", "messages": "m"}]}}},
                  {"message": {"text": "x"}, "response_id": 9}, {"message": 5})
        for backend_class in (provider.HetznerBackend, provider.TimewebBackend):
            backend = backend_class({"type": backend_class.TYPE, "token_env": "T"}, None, None)
            for body in bodies:
                code, text = backend.error_text(body)
                self.assertIsInstance(text, str, (backend_class.TYPE, body))
        hetzner = provider.HetznerBackend({"type": "hetzner", "token_env": "T"}, None, None)
        self.assertEqual(hetzner.error_text({"message": "Bad Gateway"}), (None, "Bad Gateway"))
        self.assertEqual(hetzner.error_text({"error": {
            "code": "invalid_input", "message": "invalid input",
            "details": {"fields": [{"name": "image", "messages": ["is required"]}]}}}),
            ("invalid_input", "invalid input [image: is required]"))

    def test_retry_wait(self):
        self.assertEqual(provider.retry_wait({"Retry-After": "3"}), 3.0)
        reset = provider.retry_wait({"RateLimit-Reset": str(int(time.time()) + 3600)})
        self.assertEqual(reset, provider.MAX_RETRY_WAIT)      # never sit out the hour
        self.assertIsNone(provider.retry_wait({}))

    def test_the_ansible_private_key_file(self):
        folder = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, folder)
        path = os.path.join(folder, "ansible.cfg")
        with open(path, "w") as handle:
            handle.write("[defaults]\ninventory = /etc/ansible/hosts\n"
                         "private_key_file = /etc/ansible/.ssh/id_rsa ; bitrix\n"
                         "log_path = /var/log/%(x)s.log\n")
        self.assertEqual(provider.ansible_private_key(path), "/etc/ansible/.ssh/id_rsa")
        self.assertIsNone(provider.ansible_private_key(os.path.join(folder, "none.cfg")))


if __name__ == "__main__":
    unittest.main()
