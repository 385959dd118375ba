"""deploy/Dockerfile, statically (no Docker daemon in the test environment): the stages, a
non-root numeric user, and a runtime package list that covers every shared library the built
sluice links against."""
import os
import pathlib
import re
import shutil
import subprocess
import unittest

ROOT = pathlib.Path(__file__).resolve().parents[2]
DOCKERFILE = (ROOT / "deploy" / "Dockerfile").read_text()
SLUICE = os.environ.get("SLUICE_BIN", "")
# Sanitizer runtimes come from the ci preset only; the image is built with the release preset.
SANITIZER_LIBS = ("libasan", "libubsan", "liblsan", "libtsan")


def stages():
    """[(FROM line, body)] per stage, with line continuations joined."""
    text = re.sub(r"\\\n", " ", DOCKERFILE)
    parts = re.split(r"^FROM ", text, flags=re.M)[1:]
    return [(p.splitlines()[0], p) for p in parts]


def runtime_packages():
    _, body = stages()[-1]
    m = re.search(r"apt-get install ([^&]*)", body)
    return {w for w in m.group(1).split() if not w.startswith("-")}


class DockerfileTest(unittest.TestCase):
    def test_stages(self):
        s = stages()
        self.assertEqual(len(s), 2)
        self.assertEqual(s[0][0], "debian:bookworm AS build")
        self.assertIn("scripts/deps", s[0][1])
        self.assertIn("cmake --preset release", s[0][1])
        self.assertEqual(s[1][0], "debian:bookworm-slim")

    def test_runtime_runs_as_non_root(self):
        _, body = stages()[-1]
        users = re.findall(r"^USER (\S+)", body, flags=re.M)
        self.assertEqual(len(users), 1)
        uid, _, gid = users[0].partition(":")
        self.assertTrue(uid.isdigit() and int(uid) > 0, users)
        self.assertTrue(gid.isdigit() and int(gid) > 0, users)
        self.assertIn('ENTRYPOINT ["/usr/bin/sluice"]', body)
        # The chart's runAsUser must be the image's user.
        values = (ROOT / "deploy" / "helm" / "sluice" / "values.yaml").read_text()
        self.assertIn(f"runAsUser: {uid}", values)

    def test_runtime_has_no_build_packages(self):
        for package in runtime_packages():
            with self.subTest(package):
                self.assertFalse(package.endswith("-dev"), package)
                self.assertNotIn(package, {"build-essential", "cmake", "g++", "gcc"})

    @unittest.skipUnless(SLUICE and shutil.which("readelf") and shutil.which("dpkg"),
                         "needs SLUICE_BIN, readelf and dpkg")
    def test_runtime_packages_cover_the_linked_libraries(self):
        dynamic = subprocess.run(["readelf", "-d", SLUICE], capture_output=True, text=True,
                                 check=True).stdout
        needed = re.findall(r"\(NEEDED\)\s+Shared library: \[(.+?)\]", dynamic)
        self.assertTrue(needed)
        packages = runtime_packages()
        essential = {"libc6", "libgcc-s1"}  # in every Debian image
        for lib in needed:
            if lib.startswith(SANITIZER_LIBS):
                continue
            with self.subTest(lib):
                owner = subprocess.run(["dpkg", "-S", f"*/{lib}"], capture_output=True,
                                       text=True).stdout
                owners = {line.split(":")[0] for line in owner.splitlines() if line}
                self.assertTrue(owners, f"no package ships {lib}")
                self.assertTrue(owners & (packages | essential),
                                f"{lib} comes from {owners}, not in the runtime stage")


if __name__ == "__main__":
    unittest.main(verbosity=2)
