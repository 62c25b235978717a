# -*- coding: utf-8 -*-
"""The Yandex Cloud backend: its PS256 JWT (checked with the openssl command,
not only with our own code) and the backend against tests/fake_yandex.py."""

import base64
import json
import os
import shutil
import subprocess
import tempfile
import unittest

from support import load_module

provider = load_module()

KEYS = {}       # made once per run: openssl's RSA key generation is the slow part


def openssl(*args, **kwargs):
    """Run the openssl command; skips the test when there is none."""
    if shutil.which("openssl") is None:
        raise unittest.SkipTest("no openssl command on PATH")
    proc = subprocess.Popen(("openssl",) + args, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    out = proc.communicate(timeout=60)[0]
    if kwargs.get("check", True) and proc.returncode != 0:
        raise AssertionError("openssl %s: %s" % (" ".join(args), out.decode("utf-8", "replace")))
    return proc.returncode, out.decode("utf-8", "replace")


def rsa_key(name="main", bits=2048):
    """(folder, private PKCS#8 PEM path, public PEM path) of a test key, made once."""
    if name not in KEYS:
        folder = tempfile.mkdtemp(prefix="bxyandex-key-")
        private, public = os.path.join(folder, "key.pem"), os.path.join(folder, "pub.pem")
        openssl("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:%d" % bits,
                "-out", private)
        openssl("pkey", "-in", private, "-pubout", "-out", public)
        KEYS[name] = (folder, private, public)
    return KEYS[name]


def tearDownModule():
    for folder, _, _ in KEYS.values():
        shutil.rmtree(folder, True)


def read(path):
    with open(path) as handle:
        return handle.read()


def unpad(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def openssl_verifies(jwt, public):
    """True when the openssl command accepts the JWT's PS256 signature."""
    folder = tempfile.mkdtemp(prefix="bxyandex-jwt-")
    try:
        signed, _, signature = jwt.rpartition(".")
        message, sig = os.path.join(folder, "message"), os.path.join(folder, "signature")
        with open(message, "wb") as handle:
            handle.write(signed.encode("ascii"))
        with open(sig, "wb") as handle:
            handle.write(unpad(signature))
        code, out = openssl("dgst", "-sha256", "-verify", public, "-sigopt",
                            "rsa_padding_mode:pss", "-sigopt", "rsa_pss_saltlen:32",
                            "-signature", sig, message, check=False)
        return code == 0 and "Verified OK" in out
    finally:
        shutil.rmtree(folder, True)


class JWTTest(unittest.TestCase):
    def test_the_jwt_has_yandexs_header_and_claims_and_openssl_verifies_it(self):
        _, private, public = rsa_key()
        key = provider.rsa_private_key(read(private))
        jwt = provider.yandex_jwt("ajekey123", "ajesa456", key, 1700000000)
        header, claims, _ = jwt.split(".")
        self.assertEqual(json.loads(unpad(header).decode()),
                         {"typ": "JWT", "alg": "PS256", "kid": "ajekey123"})
        self.assertEqual(json.loads(unpad(claims).decode()), {
            "iss": "ajesa456", "aud": "https://iam.api.cloud.yandex.net/iam/v1/tokens",
            "iat": 1700000000, "exp": 1700003600})
        self.assertNotIn("=", jwt)
        self.assertTrue(openssl_verifies(jwt, public))
        again = provider.yandex_jwt("ajekey123", "ajesa456", key, 1700000000)
        self.assertNotEqual(again, jwt)           # a fresh random salt every time
        self.assertTrue(openssl_verifies(again, public))
        other = base64.urlsafe_b64encode(unpad(claims).replace(b"ajesa456", b"ajesa457"))
        forged = ".".join((header, other.decode().rstrip("="), jwt.rsplit(".", 1)[1]))
        self.assertFalse(openssl_verifies(forged, public))     # openssl really checks

    def test_a_key_as_yc_writes_it_and_a_pkcs1_key(self):
        folder, private, public = rsa_key()
        text = "PLEASE DO NOT REMOVE THIS LINE! Yandex.Cloud SA Key ID <ajekey123>\n" + \
            read(private)
        key = provider.rsa_private_key(text)
        pkcs1 = os.path.join(folder, "pkcs1.pem")
        code, out = openssl("rsa", "-in", private, "-traditional", "-out", pkcs1, check=False)
        if code != 0 or "BEGIN RSA PRIVATE KEY" not in read(pkcs1):
            self.skipTest("this openssl cannot write a PKCS#1 key: %s" % out)
        self.assertEqual(provider.rsa_private_key(read(pkcs1)), key)
        self.assertTrue(openssl_verifies(provider.yandex_jwt("k", "s", key, 1), public))

    def test_keys_that_cannot_sign_are_refused_with_the_reason(self):
        _, private, _ = rsa_key()
        good = read(private)
        body = "".join(good.splitlines()[1:-1])
        der = base64.b64decode(body)
        cases = {
            "no -----BEGIN PRIVATE KEY-----": ["", "{}", good.replace("PRIVATE", "PUBLIC"),
                                               good.replace("-----BEGIN PRIVATE KEY-----",
                                                            "-----BEGIN RSA PRIVATE KEY-----")],
            "not base64": [good.replace(body[10:14], "!!!!")],
            "ends early": [pem(der[:300])],
            "not an RSA key": [pem(der.replace(b"\x2a\x86\x48\x86\xf7\x0d\x01\x01\x01",
                                               b"\x2a\x86\x48\xce\x3d\x02\x01\x01\x01"))],
            "not a DER sequence": [pem(b"\x04\x03abc")],
        }
        for reason, texts in cases.items():
            for text in texts:
                with self.assertRaises(ValueError) as caught:
                    provider.rsa_private_key(text)
                self.assertIn(reason, str(caught.exception))

    def test_a_key_whose_numbers_do_not_fit_is_refused_before_it_signs(self):
        key = provider.rsa_private_key(read(rsa_key()[1]))
        broken = dict(key, dp=key["dp"] + 2)
        with self.assertRaises(ValueError) as caught:
            provider.yandex_jwt("k", "s", broken, 1)
        self.assertIn("does not verify", str(caught.exception))
        with self.assertRaises(ValueError):
            provider.rsa_private_key(read(rsa_key("short", 1024)[1]))


def pem(der):
    text = base64.b64encode(der).decode("ascii")
    lines = [text[i:i + 64] for i in range(0, len(text), 64)]
    return "-----BEGIN PRIVATE KEY-----\n%s\n-----END PRIVATE KEY-----\n" % "\n".join(lines)


if __name__ == "__main__":
    unittest.main()
