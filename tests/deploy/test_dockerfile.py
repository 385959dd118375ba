"""deploy/Dockerfile, statically (no Docker daemon in the test environment): the stages, a
non-root numeric user, and a runtime that installs the .deb the build stage makes with cpack
and nothing else (test_package.py checks that package's Depends cover every linked library)."""
import pathlib
import re
import unittest

ROOT = pathlib.Path(__file__).resolve().parents[2]
DOCKERFILE = (ROOT / "deploy" / "Dockerfile").read_text()


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
        self.assertIn("cpack --config build/release/CPackConfig.cmake -B /out", s[0][1])
        self.assertEqual(s[1][0], "debian:bookworm-slim")
        self.assertIn("--mount=type=bind,from=build,source=/out,target=/pkg", s[1][1])

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

    def test_runtime_installs_only_the_package(self):
        # Its Depends, computed by dpkg-shlibdeps, bring exactly the libraries sluice needs.
        self.assertEqual(runtime_packages(), {"/pkg/sluice_*.deb"})
        _, body = stages()[-1]
        self.assertNotIn("COPY --from=build", body)
        # The chart's README points at the example there; slim images drop /usr/share/doc.
        self.assertIn("path-include /usr/share/doc/sluice/*", body)


if __name__ == "__main__":
    unittest.main(verbosity=2)
