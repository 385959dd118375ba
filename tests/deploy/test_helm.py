"""deploy/helm/sluice without Helm: values.yaml against values.schema.json, the README table in
sync with values.yaml, the chart's copies of the alert rules and dashboard in sync with their
sources, templates that reference only existing values, every value used, and the chart's
example routes accepted by `sluice --check-config`.

Needs PyYAML and jsonschema (Debian: python3-yaml python3-jsonschema); exits 77 (ctest: skipped)
without them."""
import copy
import json
import os
import pathlib
import re
import subprocess
import sys
import tempfile
import unittest

try:
    import jsonschema
    import yaml
except ImportError as e:  # pragma: no cover
    print(f"skipped: {e}")
    sys.exit(77)

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import chart_files  # noqa: E402
import helm_readme  # noqa: E402

CHART = helm_readme.CHART
SLUICE = os.environ.get("SLUICE_BIN", "")
VALUES_TEXT = (CHART / "values.yaml").read_text()
VALUES = yaml.safe_load(VALUES_TEXT)
SCHEMA = json.loads((CHART / "values.schema.json").read_text())
TEMPLATES = {p.name: p.read_text() for p in (CHART / "templates").rglob("*") if p.is_file()}
REF_RE = re.compile(r"\.Values((?:\.[A-Za-z0-9_]+)+)")


def leaf_paths(values, prefix=""):
    """Dotted paths of every value, stopping at lists, scalars, empty maps and `config` (which
    is the routes file, free-form for the chart)."""
    for key, value in values.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict) and value and path != "config":
            yield from leaf_paths(value, path + ".")
        else:
            yield path


def exists(values, path):
    for part in path.split("."):
        if not isinstance(values, dict) or part not in values:
            return False
        values = values[part]
    return True


class SchemaTest(unittest.TestCase):
    def validate(self, values):
        jsonschema.validate(values, SCHEMA, cls=jsonschema.Draft7Validator)

    def test_schema_is_valid_draft7(self):
        jsonschema.Draft7Validator.check_schema(SCHEMA)

    def test_default_values_validate(self):
        self.validate(VALUES)

    def test_config_forms_validate(self):
        for config in ({}, "appwrite: {}\n", {"appwrite": {}, "sinks": {"a": {}}, "routes": [{}]}):
            with self.subTest(config=config):
                self.validate(dict(copy.deepcopy(VALUES), config=config))

    def test_every_option_turned_on_validates(self):
        values = copy.deepcopy(VALUES)
        values["reload"]["enabled"] = True
        values["secrets"]["data"] = {"session": "s3cret", "hook-secret": "h"}
        values["persistence"].update(enabled=True, storageClass="fast", emptyDirSizeLimit="1Gi")
        values["metrics"]["serviceMonitor"]["enabled"] = True
        values["metrics"]["prometheusRule"]["enabled"] = True
        values["metrics"]["grafanaDashboard"]["enabled"] = True
        values["configCheck"]["enabled"] = False
        values["networkPolicy"].update(enabled=True, metricsFrom=[{"podSelector": {}}],
                                       egress=[{"ports": [{"port": 443}]}])
        values["extraEnv"] = [{"name": "X", "value": "1"}]
        self.validate(values)

    def test_rejects_mistakes(self):
        mistakes = [
            ("unknown top-level key", lambda v: v.update(replicas=2)),
            ("typo in a nested key", lambda v: v["persistence"].update(enable=True)),
            ("port as text", lambda v: v["admin"].update(port="http")),
            ("port out of range", lambda v: v["service"].update(port=70000)),
            ("bad pull policy", lambda v: v["image"].update(pullPolicy="Sometimes")),
            ("bad duration", lambda v: v["metrics"]["serviceMonitor"].update(interval="5")),
            ("secret name with a slash", lambda v: v["secrets"].update(data={"a/b": "x"})),
            ("config without routes", lambda v: v.update(config={"appwrite": {}, "sinks": {"a": {}}})),
            ("config as a list", lambda v: v.update(config=["appwrite"])),
            ("config as an empty string", lambda v: v.update(config="")),
            ("grace shorter than the drain", lambda v: v.update(terminationGracePeriodSeconds=5)),
        ]
        for name, mutate in mistakes:
            with self.subTest(name):
                values = copy.deepcopy(VALUES)
                mutate(values)
                with self.assertRaises(jsonschema.ValidationError):
                    self.validate(values)


class ReadmeTest(unittest.TestCase):
    def test_table_is_generated_from_values(self):
        readme = (CHART / "README.md").read_text()
        self.assertEqual(helm_readme.render(readme, VALUES_TEXT), readme,
                         "run tests/deploy/helm_readme.py --write")

    def test_every_value_is_documented(self):
        documented = {path for path, _ in helm_readme.documented_keys(VALUES_TEXT)}
        for path in leaf_paths(VALUES):
            parts = path.split(".")
            prefixes = {".".join(parts[:i]) for i in range(1, len(parts) + 1)}
            with self.subTest(path):
                self.assertTrue(prefixes & documented, f"{path} has no `# --` comment")


class ChartFilesTest(unittest.TestCase):
    def test_copies_match_their_sources(self):
        stale = chart_files.stale()
        self.assertEqual(stale, [], "run tests/deploy/chart_files.py --write")


class TemplateReferencesTest(unittest.TestCase):
    def references(self):
        for name, text in TEMPLATES.items():
            for m in REF_RE.finditer(text):
                yield name, m.group(1)[1:]

    def test_references_exist(self):
        refs = list(self.references())
        self.assertGreater(len(refs), 30)
        for name, path in refs:
            with self.subTest(f"{name}: .Values.{path}"):
                self.assertTrue(exists(VALUES, path), f"{name} uses .Values.{path}")

    def test_every_value_is_used(self):
        used = {path for _, path in self.references()}
        for path in leaf_paths(VALUES):
            parts = path.split(".")
            prefixes = {".".join(parts[:i]) for i in range(1, len(parts) + 1)}
            # A parent used whole (`toYaml .Values.resources`), or through the root passed
            # to a helper as `.root`.
            with self.subTest(path):
                self.assertTrue(prefixes & used or self.used_through_root(path),
                                f".Values.{path} is never used")

    def used_through_root(self, path):
        return any(f".root.Values.{path}" in text for text in TEMPLATES.values())

    def test_workload_contract(self):
        deployment = TEMPLATES["deployment.yaml"]
        self.assertIn("type: Recreate", deployment)
        self.assertIn("type: RollingUpdate", deployment)
        self.assertIn("replicas: 1", deployment)
        self.assertIn("path: /healthz", deployment)
        self.assertIn("path: /readyz", deployment)
        self.assertIn("checksum/config", deployment)
        self.assertIn("--watch-config", deployment)
        ctx = VALUES["securityContext"]
        self.assertEqual(ctx["capabilities"]["drop"], ["ALL"])
        self.assertTrue(ctx["readOnlyRootFilesystem"])
        self.assertFalse(ctx["allowPrivilegeEscalation"])
        self.assertTrue(VALUES["podSecurityContext"]["runAsNonRoot"])
        self.assertEqual(VALUES["podSecurityContext"]["seccompProfile"]["type"], "RuntimeDefault")


@unittest.skipUnless(SLUICE, "SLUICE_BIN is not set")
class DefaultConfigTest(unittest.TestCase):
    def test_example_routes_pass_check_config(self):
        # Used while `config` is empty; the pod gets secrets as credentials.
        self.assertEqual(VALUES["config"], {})
        with tempfile.TemporaryDirectory() as tmp:
            routes = pathlib.Path(tmp) / "routes.yaml"
            routes.write_text((CHART / "files" / "routes.default.yaml").read_text())
            creds = pathlib.Path(tmp) / "creds"
            creds.mkdir()
            (creds / "session").write_text("token")
            result = subprocess.run(
                [SLUICE, "--config", str(routes), "--check-config"], capture_output=True,
                text=True, timeout=60, env=dict(os.environ, CREDENTIALS_DIRECTORY=str(creds)))
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
