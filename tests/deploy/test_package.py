"""The .deb (cmake/install.cmake, deploy/debian/), built by cpack from this build tree (the ci
preset's, so no second build): its control data and files, a stripped binary whose debug
symbols are in the -dbgsym package, lintian, and dpkg installing it into a scratch root (the
maintainer scripts run against that root, never the system's), where the installed sluice
checks the shipped conffile; an upgrade keeps an edited conffile, and a purge leaves nothing."""
import gzip
import os
import pathlib
import re
import shutil
import subprocess
import tempfile
import unittest

ROOT = pathlib.Path(__file__).resolve().parents[2]
BUILD = os.environ.get("SLUICE_BUILD_DIR", "")
TOOLS = ("cpack", "dpkg", "dpkg-deb", "dpkg-shlibdeps", "readelf")
# Running dpkg as root on a scratch root is fine; otherwise fakeroot stands in for root.
AS_ROOT = [] if os.geteuid() == 0 else ["fakeroot"]

FILES = {
    "./etc/sluice/routes.yaml",
    "./usr/bin/sluice",
    "./usr/lib/systemd/system/sluice.service",
    "./usr/share/doc/sluice/changelog.gz",
    "./usr/share/doc/sluice/copyright",
    "./usr/share/doc/sluice/routes.example.yaml",
}


def run(args, **kw):
    kw.setdefault("timeout", 120)
    return subprocess.run(args, capture_output=True, text=True, **kw)


def missing_tools():
    return [t for t in TOOLS + tuple(AS_ROOT) if shutil.which(t) is None]


def project_version():
    cache = pathlib.Path(BUILD, "CMakeCache.txt").read_text()
    return re.search(r"^CMAKE_PROJECT_VERSION:STATIC=(.+)$", cache, flags=re.M).group(1)


def build_id(path):
    notes = run(["readelf", "-n", str(path)], check=True).stdout
    return re.search(r"Build ID: ([0-9a-f]+)", notes).group(1)


def has_debug_info(path):
    sections = run(["readelf", "-S", "-W", str(path)], check=True).stdout
    return ".debug_info" in sections


@unittest.skipUnless(BUILD, "SLUICE_BUILD_DIR is not set")
@unittest.skipIf(missing_tools(), f"needs {' '.join(TOOLS)} (scripts/deps)")
class PackageTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        out = pathlib.Path(cls.tmp.name)
        result = run(["cpack", "-G", "DEB", "-B", str(out / "cpack"),
                      "--config", str(pathlib.Path(BUILD, "CPackConfig.cmake"))], timeout=300)
        assert result.returncode == 0, result.stdout + result.stderr
        cls.version = project_version()
        cls.debs = sorted((out / "cpack").glob("*.deb"))
        cls.ddebs = sorted((out / "cpack").glob("*.ddeb"))
        assert len(cls.debs) == 1 and len(cls.ddebs) == 1, result.stdout
        cls.deb = cls.debs[0]
        # lintian takes a while on the sanitizer build's binary: it runs beside the other tests.
        # --no-cfg: the result must not depend on a user's lintianrc.
        cls.lintian = None
        if shutil.which("lintian"):
            cls.lintian = subprocess.Popen(["lintian", "--no-cfg", "--fail-on", "error",
                                            str(cls.deb)], stdout=subprocess.PIPE,
                                           stderr=subprocess.STDOUT, text=True)
        cls.tree = out / "tree"
        run(["dpkg-deb", "-x", str(cls.deb), str(cls.tree)], check=True)
        cls.dbg_tree = out / "dbg"
        run(["dpkg-deb", "-x", str(cls.ddebs[0]), str(cls.dbg_tree)], check=True)

    @classmethod
    def tearDownClass(cls):
        if cls.lintian:
            cls.lintian.kill()
            cls.lintian.communicate()
        cls.tmp.cleanup()

    def field(self, deb, name):
        return run(["dpkg-deb", "-f", str(deb), name], check=True).stdout.strip()

    def test_control(self):
        arch = run(["dpkg", "--print-architecture"], check=True).stdout.strip()
        self.assertEqual(self.deb.name, f"sluice_{self.version}_{arch}.deb")
        self.assertEqual(self.field(self.deb, "Package"), "sluice")
        self.assertEqual(self.field(self.deb, "Version"), self.version)
        self.assertEqual(self.field(self.deb, "Section"), "net")
        self.assertEqual(self.field(self.deb, "Priority"), "optional")
        description = self.field(self.deb, "Description").splitlines()
        self.assertEqual(description[0], "Appwrite Realtime to Kafka, webhooks and files")
        self.assertGreater(len(description), 1, "no extended description")
        # dpkg-shlibdeps computed these from the binary; ca-certificates is for TLS.
        # Prefixes: the names carry each distribution's ABI (libssl3 or libssl3t64, ...).
        depends = [d.split()[0] for d in self.field(self.deb, "Depends").split(", ")]
        for prefix in ("libc6", "libstdc++6", "librdkafka1", "libssl3", "libyaml-cpp0.",
                       "libboost-json1.", "libboost-url1.", "ca-certificates"):
            with self.subTest(prefix):
                self.assertTrue(any(d.startswith(prefix) for d in depends), depends)

    def test_depends_cover_every_linked_library(self):
        # What the container image relies on: installing the package brings every library.
        dynamic = run(["readelf", "-d", str(self.tree / "usr/bin/sluice")], check=True).stdout
        needed = re.findall(r"\(NEEDED\)\s+Shared library: \[(.+?)\]", dynamic)
        self.assertIn("librdkafka.so.1", needed)
        depends = {d.split()[0] for d in self.field(self.deb, "Depends").split(", ")}
        essential = {"libc6", "libgcc-s1"}  # in every Debian system
        for lib in needed:
            with self.subTest(lib):
                owner = run(["dpkg", "-S", f"*/{lib}"]).stdout
                owners = {line.split(":")[0] for line in owner.splitlines() if line}
                self.assertTrue(owners, f"no package ships {lib}")
                self.assertTrue(owners & (depends | essential), f"{lib} is in {owners}")

    def test_files(self):
        listing = run(["dpkg-deb", "-c", str(self.deb)], check=True).stdout.splitlines()
        entries = {line.split()[-1]: line.split()[:2] for line in listing}
        self.assertEqual({p for p in entries if not p.endswith("/")}, FILES)
        for path, (mode, owner) in entries.items():
            with self.subTest(path):
                self.assertEqual(owner, "root/root")
                expected = "drwxr-xr-x" if path.endswith("/") else (
                    "-rwxr-xr-x" if path == "./usr/bin/sluice" else "-rw-r--r--")
                self.assertEqual(mode, expected)
        conffiles = run(["dpkg-deb", "-I", str(self.deb), "conffiles"], check=True).stdout
        self.assertEqual(conffiles.split(), ["/etc/sluice/routes.yaml"])
        self.assertEqual((self.tree / "etc/sluice/routes.yaml").read_text(),
                         (ROOT / "config/routes.example.yaml").read_text())

    def test_binary_is_stripped_and_its_symbols_are_in_dbgsym(self):
        binary = self.tree / "usr/bin/sluice"
        self.assertFalse(has_debug_info(binary))
        self.assertNotIn(".symtab", run(["readelf", "-S", "-W", str(binary)]).stdout)
        self.assertEqual(self.field(self.ddebs[0], "Package"), "sluice-dbgsym")
        self.assertEqual(self.field(self.ddebs[0], "Depends"), f"sluice (= {self.version})")
        bid = build_id(binary)
        debug = self.dbg_tree / "usr/lib/debug/.build-id" / bid[:2] / f"{bid[2:]}.debug"
        self.assertTrue(debug.is_file(), f"no {debug.name} for build id {bid}")
        self.assertTrue(has_debug_info(debug))
        version = run([str(binary), "--version"])
        self.assertEqual(version.returncode, 0, version.stderr)
        self.assertTrue(version.stdout.startswith(f"sluice {self.version}"), version.stdout)

    def test_unit_is_the_one_that_checks_the_configuration(self):
        unit = (self.tree / "usr/lib/systemd/system/sluice.service").read_text()
        self.assertEqual(unit, (ROOT / "deploy/systemd/sluice.service").read_text())
        check = "/usr/bin/sluice --config %E/sluice/routes.yaml --check-config"
        self.assertIn(f"ExecStartPre={check}\n", unit)
        self.assertIn(f"ExecReload={check}\n", unit)

    def test_changelog_and_copyright(self):
        with gzip.open(self.tree / "usr/share/doc/sluice/changelog.gz", "rt") as f:
            first = f.readline()
        self.assertTrue(first.startswith(f"sluice ({self.version}) "), first)
        copyright = (self.tree / "usr/share/doc/sluice/copyright").read_text()
        self.assertTrue(copyright.startswith("Format: https://www.debian.org/doc/"))

    @unittest.skipIf(shutil.which("lintian") is None, "lintian is not installed (scripts/deps)")
    def test_lintian_reports_no_errors(self):
        # Warnings are allowed (the one left is no-manual-page); errors are not.
        output, _ = self.lintian.communicate(timeout=180)
        errors = [line for line in output.splitlines() if line.startswith("E:")]
        self.assertEqual(errors, [], output)
        self.assertEqual(self.lintian.returncode, 0, output)

    def dpkg(self, root, *args):
        # --force-script-chrootless runs the maintainer scripts on this system with
        # DPKG_ROOT=root (they only touch paths under it); --force-depends: the scratch root
        # has none of the libraries, the system running the test has them all.
        result = run(AS_ROOT + ["dpkg", f"--root={root}", "--force-script-chrootless",
                                "--force-depends", f"--log={root}/dpkg.log", *args])
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
        return result.stdout

    def check_config(self, root, creds):
        """The installed sluice on the installed conffile, with a placeholder for each secret
        it names, as an operator's environment and credentials would give them."""
        conffile = root / "etc/sluice/routes.yaml"
        text = "\n".join(line.split("#", 1)[0] for line in conffile.read_text().splitlines())
        env = dict(os.environ)
        for name in re.findall(r"\$\{env:([A-Za-z0-9_]+)\}", text):
            env[name] = "placeholder"
        for name in re.findall(r"\$\{credential:([A-Za-z0-9_.-]+)\}", text):
            (creds / name).write_text("placeholder")
        env["CREDENTIALS_DIRECTORY"] = str(creds)
        return run([str(root / "usr/bin/sluice"), "--config", str(conffile), "--check-config"],
                   env=env)

    def test_install_check_upgrade_purge_in_a_scratch_root(self):
        with tempfile.TemporaryDirectory() as tmp, tempfile.TemporaryDirectory() as creds:
            root = pathlib.Path(tmp)
            admin = root / "var/lib/dpkg"
            for d in ("info", "updates", "triggers"):
                (admin / d).mkdir(parents=True)
            (admin / "status").touch()
            (admin / "available").touch()

            self.dpkg(root, "--install", str(self.deb))
            status = self.dpkg(root, "--status", "sluice")
            self.assertIn("Status: install ok installed", status)
            self.assertRegex(status, r"Conffiles:\n /etc/sluice/routes.yaml [0-9a-f]{32}\n")
            for path in FILES:
                self.assertTrue((root / path).is_file(), path)
            result = self.check_config(root, pathlib.Path(creds))
            self.assertEqual(result.returncode, 0, result.stdout + result.stderr)

            # An operator's edit survives reinstalling (as it would an upgrade whose
            # conffile did not change).
            conffile = root / "etc/sluice/routes.yaml"
            edited = conffile.read_text() + "# edited by the operator\n"
            conffile.write_text(edited)
            self.dpkg(root, "--install", str(self.deb))
            self.assertEqual(conffile.read_text(), edited)

            # Remove keeps the configuration; purge takes it and the state systemd made.
            self.dpkg(root, "--remove", "sluice")
            self.assertFalse((root / "usr/bin/sluice").exists())
            self.assertEqual(conffile.read_text(), edited)
            state = root / "var/lib/private/sluice"
            state.mkdir(parents=True)
            (state / "dead-letters.jsonl").write_text("{}\n")
            (root / "var/lib/sluice").symlink_to("private/sluice")
            self.dpkg(root, "--purge", "sluice")
            left = sorted(str(p.relative_to(root)) for p in root.rglob("*")
                          if not p.is_dir() and p.parts[len(root.parts):][:3] !=
                          ("var", "lib", "dpkg") and p.name != "dpkg.log")
            self.assertEqual(left, [])
            self.assertFalse((root / "etc/sluice").exists())
            self.assertFalse((root / "var/lib/sluice").is_symlink())


if __name__ == "__main__":
    unittest.main(verbosity=2)
