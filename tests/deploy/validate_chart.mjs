// Renders deploy/helm/kspan (with deploy/helm/render, Helm's template engine) in several
// configurations, validates every object against the Kubernetes API's JSON schemas
// (kubernetes-models, generated from the Kubernetes OpenAPI spec), checks what the agent
// needs of its DaemonSet (hostPID, the host mounts, the capabilities, the probes, the
// node name) and that the plain manifest deploy/kubernetes/kspan.yaml is the chart
// rendered with its defaults (no drift).
//
//   node validate_chart.mjs RENDER_BINARY REPO_ROOT
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { parseAllDocuments } from 'yaml';
import { DaemonSet } from 'kubernetes-models/apps/v1';
import { ServiceAccount } from 'kubernetes-models/v1';
import { ClusterRole, ClusterRoleBinding } from 'kubernetes-models/rbac.authorization.k8s.io/v1';

const [render, root] = process.argv.slice(2);
const chart = `${root}/deploy/helm/kspan`;
const models = { DaemonSet, ServiceAccount, ClusterRole, ClusterRoleBinding };
let failures = 0;
const check = (ok, what) => {
  if (!ok) {
    failures++;
    console.error(`FAIL: ${what}`);
  }
};

function renderChart(args) {
  return execFileSync(render, [...args, chart], { encoding: 'utf8' });
}

function objects(text) {
  return parseAllDocuments(text).map((d) => {
    if (d.errors.length) throw new Error(`invalid YAML: ${d.errors[0].message}`);
    return d.toJS();
  }).filter((o) => o);
}

function validate(objs, label) {
  const kinds = objs.map((o) => o.kind).sort().join(',');
  check(kinds === 'ClusterRole,ClusterRoleBinding,DaemonSet,ServiceAccount', `${label}: objects are ${kinds}`);
  for (const o of objs) {
    const Model = models[o.kind];
    if (!Model) continue;
    try {
      new Model(o).validate();
    } catch (e) {
      check(false, `${label}: ${o.kind} ${o.metadata?.name} against the Kubernetes schema: ${e.message}`);
    }
  }
  return Object.fromEntries(objs.map((o) => [o.kind, o]));
}

const DEFAULT_CAPS = ['BPF', 'PERFMON', 'DAC_READ_SEARCH', 'SYS_PTRACE', 'SYS_ADMIN'];

function checkDaemonSet(ds, label, { privileged = false, otlp = '', ui = false } = {}) {
  const pod = ds.spec.template.spec;
  const c = pod.containers.find((x) => x.name === 'kspan');
  check(pod.hostPID === true, `${label}: hostPID`);
  check(pod.tolerations?.some((t) => t.operator === 'Exists' && !t.key), `${label}: tolerates every taint`);
  const mounts = Object.fromEntries(c.volumeMounts.map((m) => [m.mountPath, m]));
  const volumes = Object.fromEntries(pod.volumes.map((v) => [v.name, v]));
  for (const path of ['/sys/kernel/btf', '/sys/kernel/tracing']) {
    const m = mounts[path];
    check(m && m.readOnly === true, `${label}: ${path} mounted read-only`);
    check(m && volumes[m.name]?.hostPath?.path === path, `${label}: ${path} is the host's`);
  }
  const sc = c.securityContext;
  if (privileged) {
    check(sc.privileged === true, `${label}: privileged`);
  } else {
    check(sc.privileged === false && sc.allowPrivilegeEscalation === false, `${label}: not privileged`);
    check(JSON.stringify(sc.capabilities?.drop) === '["ALL"]', `${label}: drops every capability`);
    check(JSON.stringify(sc.capabilities?.add) === JSON.stringify(DEFAULT_CAPS),
      `${label}: adds exactly ${DEFAULT_CAPS}: ${JSON.stringify(sc.capabilities?.add)}`);
    check(!sc.capabilities?.add?.includes('SYS_RESOURCE'), `${label}: never CAP_SYS_RESOURCE`);
  }
  check(sc.readOnlyRootFilesystem === true, `${label}: read-only root filesystem`);
  const port = c.ports.find((p) => p.name === 'metrics');
  check(port?.containerPort === 9464, `${label}: metrics port`);
  const args = ui ? '--listen 0.0.0.0:9464 --store-max-mib 128' : '--listen 0.0.0.0:9464 --ui false';
  check(c.args.join(' ') === args, `${label}: serves /healthz on it, UI ${ui ? 'on' : 'off'}: ${c.args}`);
  const store = (pod.volumes ?? []).find((v) => v.name === 'store');
  if (ui) {
    check(store?.emptyDir?.sizeLimit === '192Mi' && mounts['/var/lib/kspan']?.name === 'store',
      `${label}: the store in an emptyDir at /var/lib/kspan, its bound + 64 MiB`);
  } else {
    check(!store && !mounts['/var/lib/kspan'], `${label}: no store volume`);
  }
  for (const probe of ['livenessProbe', 'readinessProbe']) {
    check(c[probe]?.httpGet?.path === '/healthz' && c[probe]?.httpGet?.port === 'metrics', `${label}: ${probe} on /healthz`);
  }
  const env = Object.fromEntries(c.env.map((e) => [e.name, e]));
  check(env.K8S_NODE_NAME?.valueFrom?.fieldRef?.fieldPath === 'spec.nodeName', `${label}: node name from the downward API`);
  check(env.KSPAN_RESOURCE_ATTRIBUTES?.value.startsWith('k8s.node.name=$(K8S_NODE_NAME)'),
    `${label}: k8s.node.name on every span`);
  if (otlp) {
    check(env.KSPAN_OUTPUTS?.value === 'otlp' && env.OTEL_EXPORTER_OTLP_ENDPOINT?.value === otlp, `${label}: OTLP endpoint`);
  } else {
    check(env.KSPAN_OUTPUTS?.value === 'console' && !env.OTEL_EXPORTER_OTLP_ENDPOINT, `${label}: console without an endpoint`);
  }
  check(c.resources?.limits?.memory && c.resources?.requests?.memory, `${label}: memory request and limit`);
  check(pod.serviceAccountName === ds.metadata.name, `${label}: its own service account`);
}

function checkRbac(o, label) {
  const rules = o.ClusterRole.rules;
  check(JSON.stringify(rules) === JSON.stringify([{ apiGroups: [''], resources: ['pods'], verbs: ['get', 'list', 'watch'] }]),
    `${label}: reads pods and nothing else: ${JSON.stringify(rules)}`);
  const subject = o.ClusterRoleBinding.subjects[0];
  check(o.ClusterRoleBinding.roleRef.name === o.ClusterRole.metadata.name && subject.name === o.ServiceAccount.metadata.name &&
    subject.namespace === o.ServiceAccount.metadata.namespace, `${label}: the role is bound to the agent's account`);
}

// 1. Defaults.
const defaults = renderChart(['--release', 'kspan', '--namespace', 'kspan']);
const d = validate(objects(defaults), 'defaults');
checkDaemonSet(d.DaemonSet, 'defaults');
checkRbac(d, 'defaults');
// 2. An OTLP endpoint, a sampler, extra attributes, another release name.
const custom = validate(objects(renderChart(['--release', 'edge', '--namespace', 'observability',
  '--set', 'otlp.endpoint=http://collector.observability:4318', '--set', 'sampling.sampler=parentbased_traceidratio',
  '--set', 'sampling.arg=0.25', '--set', 'resourceAttributes.k8s\\.cluster\\.name=prod'])), 'custom');
checkDaemonSet(custom.DaemonSet, 'custom', { otlp: 'http://collector.observability:4318' });
checkRbac(custom, 'custom');
check(custom.DaemonSet.metadata.name === 'edge-kspan' && custom.DaemonSet.metadata.namespace === 'observability', 'custom: names');
const customEnv = Object.fromEntries(custom.DaemonSet.spec.template.spec.containers[0].env.map((e) => [e.name, e.value]));
check(customEnv.OTEL_TRACES_SAMPLER === 'parentbased_traceidratio' && customEnv.OTEL_TRACES_SAMPLER_ARG === '0.25', 'custom: sampler');
// 3. Privileged.
const priv = validate(objects(renderChart(['--set', 'privileged=true'])), 'privileged');
checkDaemonSet(priv.DaemonSet, 'privileged', { privileged: true });
// 4. The trace store and UI on.
const withUi = validate(objects(renderChart(['--set', 'ui.enabled=true', '--set', 'ui.storeMaxMib=128'])), 'ui');
checkDaemonSet(withUi.DaemonSet, 'ui', { ui: true });
// 5. The plain manifest is the chart's defaults, rendered.
const manifest = readFileSync(`${root}/deploy/kubernetes/kspan.yaml`, 'utf8');
const body = manifest.slice(manifest.indexOf('---'));
check(body === defaults, 'deploy/kubernetes/kspan.yaml differs from the chart rendered with its defaults ' +
  '(regenerate it: deploy/helm/render/build.sh /tmp/render /tmp/w && /tmp/render --release kspan --namespace kspan deploy/helm/kspan)');

if (failures) {
  console.error(`${failures} check(s) failed`);
  process.exit(1);
}
console.log('chart and manifest: every object valid against the Kubernetes schemas; every check held');
