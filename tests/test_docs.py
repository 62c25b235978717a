# -*- coding: utf-8 -*-
"""The documentation holds together: README.md is a front door of at most 300
lines that names the test command, and every relative link in README.md,
CHANGES.md and docs/**.md reaches a file that exists, and a heading there when
it names an #anchor (GitHub's slugs). Every page under docs/ is linked from
somewhere, so none is left where nobody finds it."""

import glob
import os
import re
import unittest

from helpers.support import ROOT

LINK = re.compile(r"\[(?:[^\]\\]|\\.)*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
INLINE_CODE = re.compile(r"`+[^`]*`+")


def pages():
    found = [os.path.join(ROOT, "README.md"), os.path.join(ROOT, "CHANGES.md")]
    found += sorted(glob.glob(os.path.join(ROOT, "docs", "**", "*.md"), recursive=True))
    return found


def prose(path):
    """(line number, text) of the lines outside fenced code blocks, with inline
    code removed: a link there is not a link."""
    with open(path, encoding="utf-8") as handle:
        lines = handle.read().split("\n")
    fence = None
    for number, line in enumerate(lines, 1):
        stripped = line.lstrip()
        if stripped.startswith("```") or stripped.startswith("~~~"):
            mark = stripped[:3]
            if fence is None:
                fence = mark
            elif fence == mark:
                fence = None
            continue
        if fence is None:
            yield number, line


def slug(heading):
    """GitHub's anchor for a heading: the rendered text, lower case, every
    character but letters, digits, '_', '-' and spaces dropped, spaces made '-'."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)
    text = text.replace("`", "").strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(path):
    seen = {}
    result = set()
    for _, line in prose(path):
        match = re.match(r"#{1,6}\s+(.*?)\s*#*\s*$", line)
        if not match:
            continue
        base = slug(match.group(1))
        count = seen.get(base, 0)
        seen[base] = count + 1
        result.add(base if count == 0 else "%s-%d" % (base, count))
    return result


def links(path):
    for number, line in prose(path):
        for match in LINK.finditer(INLINE_CODE.sub("", line)):
            yield number, match.group(1)


class SlugTest(unittest.TestCase):
    def test_github_slugs(self):
        self.assertEqual(slug("First contact: the server's host key"), "first-contact-the-servers-host-key")
        self.assertEqual(slug("Passwords: `password_ttl_days`"), "passwords-password_ttl_days")
        self.assertEqual(slug("State, archive and retention"), "state-archive-and-retention")
        self.assertEqual(slug("`manual` — an operator finishes each order"), "manual--an-operator-finishes-each-order")

    def test_a_repeated_heading_gets_a_number(self):
        import tempfile
        with tempfile.NamedTemporaryFile("w", suffix=".md", delete=False, encoding="utf-8") as handle:
            handle.write("# A\n\n## Notes\n\n```\n# not a heading\n```\n\n## Notes\n")
        try:
            self.assertEqual(anchors(handle.name), {"a", "notes", "notes-1"})
        finally:
            os.unlink(handle.name)


class LinksTest(unittest.TestCase):
    def test_every_relative_link_reaches_a_file_and_a_heading(self):
        broken = []
        checked = 0
        for page in pages():
            for number, target in links(page):
                if re.match(r"[a-z][a-z0-9+.-]*:", target):
                    continue                     # https:, mailto: ...
                checked += 1
                where = "%s:%d: %s" % (os.path.relpath(page, ROOT), number, target)
                path, _, anchor = target.partition("#")
                full = os.path.normpath(os.path.join(os.path.dirname(page), path)) if path else page
                if not full.startswith(ROOT + os.sep) or not os.path.exists(full):
                    broken.append(where + " (no such file)")
                elif anchor and (not full.endswith(".md") or anchor not in anchors(full)):
                    broken.append(where + " (no such heading)")
        self.assertGreater(checked, 50)
        self.assertEqual(broken, [])

    def test_every_page_is_linked_from_another(self):
        linked = set()
        for page in pages():
            for _, target in links(page):
                path = target.partition("#")[0]
                if path and not re.match(r"[a-z][a-z0-9+.-]*:", path):
                    linked.add(os.path.normpath(os.path.join(os.path.dirname(page), path)))
        orphans = [os.path.relpath(p, ROOT) for p in pages()[1:] if p not in linked]
        self.assertEqual(orphans, [])


class ReadmeTest(unittest.TestCase):
    def setUp(self):
        with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as handle:
            self.text = handle.read()

    def test_a_front_door_of_at_most_300_lines(self):
        self.assertLessEqual(len(self.text.split("\n")), 300)

    def test_it_names_the_test_command(self):
        self.assertIn("python3 tests/run.py", self.text)

    def test_one_line_per_backend_with_its_page(self):
        section = self.text.split("\n## Backends\n", 1)[1].split("\n## ", 1)[0]
        table = [line for line in section.split("\n") if line.startswith("| `")]
        for backend in ("manual", "pool", "command", "hetzner", "timeweb", "openstack", "yandex"):
            rows = [line for line in table if line.startswith("| `%s`" % backend)]
            self.assertEqual(len(rows), 1, backend)
            self.assertIn("](docs/backends/", rows[0])


class ErrorCodesTest(unittest.TestCase):
    def test_the_reference_lists_every_code_the_plugin_has(self):
        from helpers.support import load_module
        with open(os.path.join(ROOT, "docs", "reference.md"), encoding="utf-8") as handle:
            listed = [int(code) for code in re.findall(r"^\| N(\d+) \|", handle.read(), re.M)]
        self.assertEqual(listed, sorted(load_module().ERROR_CODES))


if __name__ == "__main__":
    unittest.main()
