#!/usr/bin/python3
"""The Debian maintainer scripts, checked without building the package
(the system test builds and installs it, but only as root and late in CI).

1. The debhelper token stands alone on its line, once per script:
   dh_installdeb replaces the token wherever it stands, a comment
   included, so a comment naming it became shell commands and the rest
   of the comment line a command of its own (postinst failed with
   ",: not found" and the package could not be installed).
2. Each script is valid POSIX shell (sh -n).

Run by ``make check`` (PORTER_SRCDIR locates the tree), or:
    PORTER_SRCDIR=. /usr/bin/python3 tests/packaging/test_maintscripts.py
"""

import glob
import os
import subprocess
import unittest

SRCDIR = os.environ.get("PORTER_SRCDIR") or os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", "..")
TOKEN = "#" + "DEBHELPER" + "#"
SCRIPTS = sorted(p for p in glob.glob(os.path.join(SRCDIR, "debian", "*"))
                 if os.path.basename(p).split(".")[-1] in
                 ("postinst", "preinst", "prerm", "postrm", "config"))


class MaintainerScripts(unittest.TestCase):
    def test_scripts_found(self):
        self.assertTrue(SCRIPTS, "no maintainer scripts under debian/")

    def test_token_alone_once(self):
        for path in SCRIPTS:
            with open(path) as f:
                lines = f.read().splitlines()
            with self.subTest(script=os.path.basename(path)):
                hits = [(i + 1, l) for i, l in enumerate(lines) if TOKEN in l]
                self.assertEqual(len(hits), 1, "%s: the token on lines %s"
                                 % (path, [h[0] for h in hits]))
                self.assertEqual(hits[0][1].strip(), TOKEN,
                                 "%s:%d: the token shares its line" % (path, hits[0][0]))

    def test_valid_shell(self):
        for path in SCRIPTS:
            with self.subTest(script=os.path.basename(path)):
                r = subprocess.run(["sh", "-n", path], capture_output=True, text=True)
                self.assertEqual(r.returncode, 0, r.stderr)


if __name__ == "__main__":
    unittest.main()
