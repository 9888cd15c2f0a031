'use strict';
// The Helm chart (deploy/helm/ov-diffusion): helm template with the default values and the variants in its ci/
// folder; every rendered object validated against the Kubernetes OpenAPI schemas of a current release
// (kubernetes-validate, strict) and the CRD schemas of KEDA and prometheus-operator (@kubernetes-models); and the
// invariants against our own server: the container's arguments parse with the real CLI parser, the probes answer on
// the app, ports and selectors line up, the grace period covers the drain, the autoscalers' metrics are in /metrics.
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('fs');
const os = require('os');
const path = require('path');
const { spawnSync } = require('child_process');
const tools = require('./helpers/deploy-tools');
const { fakeModel } = require('./helpers/server-fakes');
const { withApp } = require('./helpers/server-http');

const skip = tools.missingTools([tools.HELM, tools.KUBERNETES_VALIDATE, path.join(tools.NPM_TOOLS, 'yaml')]);
const VARIANTS = {
  defaults: [],
  ...Object.fromEntries(
    fs
      .readdirSync(path.join(tools.CHART, 'ci'))
      .filter((f) => f.endsWith('.yaml'))
      .map((f) => [f.replace(/-values\.yaml$/, ''), [path.join(tools.CHART, 'ci', f)]]),
  ),
};
const CRD_KINDS = {
  'keda.sh/v1alpha1/ScaledObject': ['@kubernetes-models/keda', 'keda.sh/v1alpha1/ScaledObject'],
  'monitoring.coreos.com/v1/ServiceMonitor': ['@kubernetes-models/prometheus-operator', 'monitoring.coreos.com/v1/ServiceMonitor'],
};

/** server.maxGenerationSeconds of a variant: its values file over the chart's values.yaml. */
function maxGenerationSeconds(name) {
  const YAML = tools.requireTool('yaml');
  const read = (f) => YAML.parse(fs.readFileSync(f, 'utf8'));
  const files = [path.join(tools.CHART, 'values.yaml'), ...VARIANTS[name]];
  return files
    .map((f) => read(f).server?.maxGenerationSeconds)
    .filter((v) => v !== undefined)
    .at(-1);
}

const rendered = new Map();
function render(name) {
  if (!rendered.has(name)) {
    const r = tools.helmTemplate({ values: VARIANTS[name] });
    assert.equal(r.status, 0, `helm template (${name}) failed:\n${r.stderr}`);
    rendered.set(name, { text: r.stdout, objects: tools.parseManifests(r.stdout) });
  }
  return rendered.get(name);
}
const ofKind = (objects, kind) => objects.filter((o) => o.kind === kind);
const one = (objects, kind) => {
  const found = ofKind(objects, kind);
  assert.equal(found.length, 1, `one ${kind} expected, got ${found.length}`);
  return found[0];
};
const flagValue = (args, name) => {
  const i = args.indexOf(name);
  return i < 0 ? undefined : args[i + 1];
};

test('helm template renders the defaults and every ci/ variant', { skip }, () => {
  for (const name of Object.keys(VARIANTS)) {
    const { objects } = render(name);
    assert.ok(objects.length >= 2, `${name}: ${objects.length} objects`);
    for (const o of objects)
      assert.ok(o.apiVersion && o.kind && o.metadata?.name, `${name}: incomplete object ${JSON.stringify(o).slice(0, 200)}`);
  }
  for (const name of Object.keys(VARIANTS)) {
    const r = spawnSync(tools.HELM, ['lint', '--strict', tools.CHART, ...VARIANTS[name].flatMap((f) => ['--values', f])], {
      encoding: 'utf8',
    });
    assert.equal(r.status, 0, `helm lint --strict (${name}):\n${r.stdout}${r.stderr}`);
  }
  const kinds = (name) => new Set(render(name).objects.map((o) => o.kind));
  assert.deepEqual([...kinds('defaults')].sort(), ['Deployment', 'PodDisruptionBudget', 'Service']);
  for (const kind of ['PersistentVolumeClaim', 'Ingress', 'ServiceMonitor', 'ScaledObject']) assert.ok(kinds('keda-pull').has(kind), kind);
  for (const kind of ['Secret', 'HorizontalPodAutoscaler', 'ServiceMonitor']) assert.ok(kinds('hpa-path').has(kind), kind);
  assert.ok(!kinds('minimal').has('PodDisruptionBudget'));
});

test(
  `every rendered object passes the Kubernetes ${tools.KUBERNETES_VERSION} OpenAPI schemas (strict) or its CRD schema`,
  { skip },
  async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ovd-chart-'));
    try {
      let core = 0;
      let crds = 0;
      for (const name of Object.keys(VARIANTS)) {
        const { objects } = render(name);
        for (const [i, o] of objects.entries()) {
          const key = `${o.apiVersion}/${o.kind}`;
          if (CRD_KINDS[key]) {
            const [pkg, sub] = CRD_KINDS[key];
            const mod = await import(path.join(tools.NPM_TOOLS, pkg, `${sub}.js`));
            const Model = mod[o.kind] ?? mod.default;
            assert.doesNotThrow(() => new Model(o).validate(), `${name}: ${key} ${o.metadata.name}`);
            crds++;
            continue;
          }
          const file = path.join(dir, `${name}-${i}-${o.kind}.json`);
          fs.writeFileSync(file, JSON.stringify(o));
          core++;
        }
      }
      const files = fs.readdirSync(dir).map((f) => path.join(dir, f));
      const r = spawnSync(tools.KUBERNETES_VALIDATE, ['--strict', '-k', tools.KUBERNETES_VERSION, ...files], {
        encoding: 'utf8',
        timeout: 120000,
      });
      assert.equal(r.status, 0, `kubernetes-validate:\n${r.stdout}\n${r.stderr}`);
      const passed = (r.stdout.match(/ passed for resource /g) ?? []).length;
      assert.equal(passed, core, `kubernetes-validate reported ${passed} valid of ${core}:\n${r.stdout}`);
      assert.ok(crds >= 3, `CRD objects validated: ${crds}`);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  },
);

test('the validators reject what they should (a wrong field, a wrong CRD field)', { skip }, async () => {
  const { objects } = render('keda-pull');
  const deployment = structuredClone(one(objects, 'Deployment'));
  deployment.spec.template.spec.containers[0].readinessProbe.httpGet.pathh = '/readyz';
  const file = path.join(os.tmpdir(), `ovd-bad-${process.pid}.json`);
  fs.writeFileSync(file, JSON.stringify(deployment));
  try {
    const r = spawnSync(tools.KUBERNETES_VALIDATE, ['--strict', '-k', tools.KUBERNETES_VERSION, file], { encoding: 'utf8' });
    assert.notEqual(r.status, 0, r.stdout);
    assert.match(r.stdout + r.stderr, /pathh/);
  } finally {
    fs.rmSync(file, { force: true });
  }
  const scaled = structuredClone(one(objects, 'ScaledObject'));
  scaled.spec.minReplicaCount = 'two';
  const { ScaledObject } = await import(path.join(tools.NPM_TOOLS, '@kubernetes-models/keda/keda.sh/v1alpha1/ScaledObject.js'));
  assert.throws(() => new ScaledObject(scaled).validate());
});

test('the container arguments are valid flags of our CLI and match the ports, volumes and grace period', { skip }, () => {
  const { parseArgs } = require('../dist/launcher/cli');
  for (const name of Object.keys(VARIANTS)) {
    const { objects } = render(name);
    const deployment = one(objects, 'Deployment');
    const pod = deployment.spec.template.spec;
    const [server] = pod.containers;
    const options = parseArgs(server.args, {});
    const what = `${name}: ${server.args.join(' ')}`;
    // Ports: the flag, the container port named http, the Service's target, the Ingress backend, the ServiceMonitor.
    const httpPort = server.ports.find((p) => p.name === 'http');
    assert.equal(options.restPort, httpPort.containerPort, what);
    const service = one(objects, 'Service');
    assert.equal(service.spec.ports[0].targetPort, 'http');
    for (const probe of ['startupProbe', 'readinessProbe', 'livenessProbe']) assert.equal(server[probe].httpGet.port, 'http', probe);
    for (const ing of ofKind(objects, 'Ingress')) {
      const backend = ing.spec.rules[0].http.paths[0].backend.service;
      assert.equal(backend.name, service.metadata.name);
      assert.ok(service.spec.ports.some((p) => p.name === backend.port.name));
      assert.equal(ing.metadata.annotations['nginx.ingress.kubernetes.io/proxy-buffering'], 'off', 'SSE needs unbuffered responses');
      assert.ok(Number(ing.metadata.annotations['nginx.ingress.kubernetes.io/proxy-read-timeout']) >= options.shutdownTimeoutSeconds);
    }
    for (const sm of ofKind(objects, 'ServiceMonitor')) {
      assert.ok(service.spec.ports.some((p) => p.name === sm.spec.endpoints[0].port));
      assert.equal(sm.spec.endpoints[0].path, '/metrics');
      assert.deepEqual(sm.spec.selector.matchLabels, service.spec.selector);
      if (options.metricsApiKey) assert.ok(sm.spec.endpoints[0].authorization, `${name}: /metrics needs the key, the scraper has none`);
    }
    // Selectors reach the pods.
    const podLabels = deployment.spec.template.metadata.labels;
    for (const selector of [
      service.spec.selector,
      deployment.spec.selector.matchLabels,
      ...ofKind(objects, 'PodDisruptionBudget').map((p) => p.spec.selector.matchLabels),
    ])
      for (const [k, v] of Object.entries(selector)) assert.equal(podLabels[k], v, `${name}: selector ${k}`);
    // Grace: preStop sleep + the server's --shutdown_timeout fit in terminationGracePeriodSeconds, and the drain lets
    // the longest generation finish.
    const preStop = server.lifecycle.preStop.sleep.seconds;
    assert.ok(
      pod.terminationGracePeriodSeconds > preStop + options.shutdownTimeoutSeconds,
      `${name}: grace ${pod.terminationGracePeriodSeconds} <= ${preStop} + ${options.shutdownTimeoutSeconds}`,
    );
    const valuesMax = maxGenerationSeconds(name);
    assert.ok(
      options.shutdownTimeoutSeconds >= valuesMax,
      `${name}: --shutdown_timeout ${options.shutdownTimeoutSeconds} < max generation ${valuesMax}`,
    );
    // Read-only root filesystem: every path the server writes is a mounted volume.
    assert.equal(server.securityContext.readOnlyRootFilesystem, true);
    assert.equal(pod.securityContext.runAsNonRoot, true);
    assert.ok(pod.securityContext.runAsUser > 0);
    const mounts = new Map(server.volumeMounts.map((m) => [m.mountPath, m]));
    assert.ok(mounts.has('/tmp'), 'os.tmpdir() holds response_format=url images');
    const cacheDir = flagValue(server.args, '--cache_dir');
    if (cacheDir)
      assert.ok(mounts.has(cacheDir) && !mounts.get(cacheDir).readOnly, `${name}: --cache_dir ${cacheDir} is not a writable volume`);
    const modelPath = flagValue(server.args, '--model_path');
    if (modelPath)
      assert.ok(
        [...mounts.keys()].some((m) => modelPath.startsWith(`${m}/`)),
        `${name}: --model_path ${modelPath} is on no volume`,
      );
    const keyFile = flagValue(server.args, '--api_key_file');
    if (keyFile) {
      assert.ok(mounts.has(path.dirname(keyFile)), `${name}: ${keyFile}`);
      const volume = pod.volumes.find((v) => v.name === mounts.get(path.dirname(keyFile)).name);
      assert.equal(volume.secret.items[0].path, path.basename(keyFile));
    }
    const volumeNames = new Set(pod.volumes.map((v) => v.name));
    for (const c of [...pod.containers, ...(pod.initContainers ?? [])])
      for (const m of c.volumeMounts) assert.ok(volumeNames.has(m.name), m.name);
    // The pull init container: valid flags too, and it pulls to where the server reads.
    for (const init of pod.initContainers ?? []) {
      const pull = parseArgs(init.args, {});
      assert.equal(pull.pull, true);
      assert.equal(path.posix.join(pull.modelRepositoryPath, pull.sourceModel), modelPath);
    }
    // The autoscalers target this Deployment.
    for (const so of ofKind(objects, 'ScaledObject')) assert.equal(so.spec.scaleTargetRef.name, deployment.metadata.name);
    for (const hpa of ofKind(objects, 'HorizontalPodAutoscaler')) assert.equal(hpa.spec.scaleTargetRef.name, deployment.metadata.name);
    assert.equal(
      deployment.spec.replicas === undefined,
      ofKind(objects, 'ScaledObject').length + ofKind(objects, 'HorizontalPodAutoscaler').length > 0,
      'replicas is left to the autoscaler',
    );
  }
});

test('the probes answer on our server: readiness follows the model load and the drain, liveness stays up', { skip }, async () => {
  const { objects } = render('defaults');
  const [server] = one(objects, 'Deployment').spec.template.spec.containers;
  const paths = Object.fromEntries(['startupProbe', 'readinessProbe', 'livenessProbe'].map((p) => [p, server[p].httpGet.path]));
  // A model that loads only when told to, and a generation that runs while the probes are asked.
  let loaded;
  const gate = new Promise((resolve) => {
    loaded = resolve;
  });
  const { buildModelSettings } = require('../dist/server/settings');
  const model = gate.then(() => fakeModel({ delayMs: 400 }));
  await withApp(
    [{ name: 'sd', model, settings: buildModelSettings({}) }],
    async (url, app) => {
      const status = async (p) => (await fetch(url + p)).status;
      assert.equal(await status(paths.startupProbe), 503, 'startup passes before the model is loaded');
      assert.equal(await status(paths.readinessProbe), 503);
      assert.equal(await status(paths.livenessProbe), 200, 'liveness must answer while loading');
      loaded();
      await model;
      await new Promise((r) => setTimeout(r, 20));
      assert.equal(await status(paths.startupProbe), 200);
      assert.equal(await status(paths.readinessProbe), 200);
      const generation = fetch(`${url}/v1/images/generations`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ prompt: 'x', size: '64x64' }),
      });
      await new Promise((r) => setTimeout(r, 100));
      assert.equal(await status(paths.livenessProbe), 200, 'liveness during a generation');
      assert.equal(await status(paths.readinessProbe), 200, 'readiness during a generation');
      assert.equal((await generation).status, 200);
      const drained = app.drain(5000);
      assert.equal(await status(paths.readinessProbe), 503, 'readiness turns 503 while draining');
      assert.equal(await status(paths.livenessProbe), 200);
      await drained;
    },
    { processMetrics: true },
  );
});

test("the autoscalers' metrics are in our /metrics output", { skip }, async () => {
  const names = new Set();
  for (const so of ofKind(render('keda-pull').objects, 'ScaledObject'))
    for (const t of so.spec.triggers) for (const m of t.metadata.query.matchAll(/\b(ov_diffusion_[a-z_]+)\b/g)) names.add(m[1]);
  for (const hpa of ofKind(render('hpa-path').objects, 'HorizontalPodAutoscaler'))
    for (const m of hpa.spec.metrics) names.add(m.pods.metric.name);
  assert.ok(names.has('ov_diffusion_queue_depth'), [...names].join(', '));
  const { buildModelSettings } = require('../dist/server/settings');
  await withApp(
    [{ name: 'sd', model: fakeModel(), settings: buildModelSettings({}) }],
    async (url) => {
      await new Promise((r) => setTimeout(r, 20));
      const text = await (await fetch(`${url}/metrics`)).text();
      for (const name of names) assert.match(text, new RegExp(`^# TYPE ${name} gauge$`, 'm'), `${name} is not a gauge in /metrics`);
      assert.match(text, /^ov_diffusion_queue_depth\{model="sd"\} 0$/m);
    },
    { processMetrics: true },
  );
});

test('the chart refuses unsafe values', { skip }, () => {
  const cases = [
    [{ 'server.maxGenerationSeconds': 200, 'server.shutdownTimeoutSeconds': 100 }, /shutdownTimeoutSeconds .* must be at least/],
    [{ 'autoscaling.keda.enabled': true, 'autoscaling.hpa.enabled': true }, /enable one autoscaler/],
    [{ 'model.mode': 'path', 'model.path': 'x' }, /needs a models volume/],
    [{ 'model.mode': 'pull', 'models.existingClaim': 'm' }, /needs model.source/],
    [{ 'sizing.profile': 'huge' }, /sizing.profile/],
  ];
  for (const [set, message] of cases) {
    const r = tools.helmTemplate({ set });
    assert.notEqual(r.status, 0, JSON.stringify(set));
    assert.match(r.stderr, message);
  }
});
