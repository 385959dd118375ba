"""`cmake --install` (cmake/install.cmake): the files packagers expect, with the unit's
ExecStart= pointing at the installed binary for the prefix given at install time."""
import os
import pathlib
import subprocess
import tempfile
import unittest

BUILD = os.environ.get("SLUICE_BUILD_DIR", "")


@unittest.skipUnless(BUILD, "SLUICE_BUILD_DIR is not set")
class InstallTest(unittest.TestCase):
    def install(self, prefix, destdir):
        env = dict(os.environ, DESTDIR=destdir)
        result = subprocess.run(["cmake", "--install", BUILD, "--prefix", prefix,
                                 "--component", "runtime"],
                                capture_output=True, text=True, env=env, timeout=120)
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)

    def check(self, prefix):
        with tempfile.TemporaryDirectory() as destdir:
            self.install(prefix, destdir)
            root = pathlib.Path(destdir + prefix)
            binary = root / "bin" / "sluice"
            self.assertTrue(os.access(binary, os.X_OK))
            self.assertTrue((root / "share" / "doc" / "sluice" / "routes.example.yaml").is_file())
            unit = (root / "lib" / "systemd" / "system" / "sluice.service").read_text()
            self.assertIn(f"ExecStart={prefix}/bin/sluice --config", unit)
            self.assertIn(f"ExecStartPre={prefix}/bin/sluice --config", unit)
            self.assertNotIn("/usr/bin/sluice" if prefix != "/usr" else "/usr/local", unit)
            version = subprocess.run([str(binary), "--version"], capture_output=True, text=True)
            self.assertEqual(version.returncode, 0)
            self.assertTrue(version.stdout.startswith("sluice "))

    def test_usr_prefix(self):
        self.check("/usr")

    def test_usr_local_prefix(self):
        self.check("/usr/local")


if __name__ == "__main__":
    unittest.main(verbosity=2)
