'use strict';
// Locates or provisions the OpenVINO Runtime this package runs on.
//
// Layout: <package>/runtime/site-packages/{openvino,openvino_tokenizers}/ holds the contents of the
// pinned PyPI wheels. The addon's RUNPATH points at runtime/site-packages/openvino/libs relative to
// the .node file, so no LD_LIBRARY_PATH is needed. An existing installation (a site-packages folder
// that already has both packages, e.g. a venv) can be used instead by naming it in
// OV_DIFFUSION_OPENVINO_DIR: runtime/site-packages then becomes a link to it.
const fs = require('fs');
const path = require('path');
const { spawnSync } = require('child_process');

const ROOT = path.resolve(__dirname, '..');
const RUNTIME_DIR = path.join(ROOT, 'runtime');
const SITE_PACKAGES = path.join(RUNTIME_DIR, 'site-packages');
const ENV_VAR = 'OV_DIFFUSION_OPENVINO_DIR';
// What the library reads at run time (lib/binding.ts): the installed runtime's files, written by this installer
// once they are all present, so the library needs no knowledge of the wheels' layout.
const MANIFEST = path.join(RUNTIME_DIR, 'openvino-runtime.json');

function pinnedVersions() {
  return require(path.join(ROOT, 'package.json')).openvino;
}

/** The release as the shared library names it: 2026.4.1 -> libopenvino.so.2641. */
function libraryTag(version) {
  const [year, minor, patch] = version.split('.');
  return `${year.slice(-2)}${minor}${patch}`;
}

function runtimePaths(sitePackages = SITE_PACKAGES) {
  const tag = libraryTag(pinnedVersions().openvino);
  return {
    sitePackages,
    libDir: path.join(sitePackages, 'openvino', 'libs'),
    openvinoLibrary: path.join(sitePackages, 'openvino', 'libs', `libopenvino.so.${tag}`),
    cmakeDir: path.join(sitePackages, 'openvino', 'cmake'),
    tokenizersLibrary: path.join(sitePackages, 'openvino_tokenizers', 'lib', 'libopenvino_tokenizers.so'),
  };
}

/** Names what is missing from a site-packages folder for the pinned release, or [] when complete. */
function missingPieces(sitePackages) {
  const p = runtimePaths(sitePackages);
  return [p.openvinoLibrary, p.cmakeDir, p.tokenizersLibrary].filter((f) => !fs.existsSync(f));
}

function describeFix() {
  const v = pinnedVersions();
  return [
    'Fix one of:',
    `  - install python3 with pip (Debian: apt-get install python3 python3-pip) and run npm install again;`,
    `  - or set ${ENV_VAR} to a site-packages folder that has openvino==${v.openvino} and`,
    `    openvino-tokenizers==${v['openvino-tokenizers']} installed, and run npm install again.`,
  ].join('\n');
}

function findPython() {
  for (const candidate of [process.env.PYTHON, 'python3', 'python'].filter(Boolean)) {
    const r = spawnSync(candidate, ['-m', 'pip', '--version'], { encoding: 'utf8' });
    if (r.status === 0) return candidate;
  }
  return null;
}

// The wheels per Node.js architecture (what the addon is loaded into). openvino 2026.4.1 is tagged manylinux_2_28_x86_64
// and manylinux_2_35_aarch64 (glibc >= 2.35 on arm64); openvino-tokenizers 2026.4.1.0 manylinux_2_28_x86_64 and
// manylinux_2_31_aarch64. pip needs every tag it may accept named when it installs for another machine.
const WHEEL_PLATFORMS = {
  x64: { machine: 'x86_64', tags: ['manylinux_2_28_x86_64', 'manylinux2014_x86_64'] },
  arm64: { machine: 'aarch64', tags: ['manylinux_2_35_aarch64', 'manylinux_2_31_aarch64', 'manylinux2014_aarch64'] },
};

/** The machine pip's Python runs as (platform.machine()), or null when it cannot be asked. */
function pythonMachine(python) {
  const r = spawnSync(python, ['-c', 'import platform; print(platform.machine())'], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : null;
}

/**
 * pip arguments that select the wheels for `arch` (a Node.js arch name). None when pip's Python runs on that machine
 * already (pip then checks this machine's glibc itself, as on any install); otherwise explicit platform tags, as for
 * a cross build (scripts/cross/build-linux-arm64.sh) or a Python of another architecture than node (e.g. x86-64
 * Python under emulation on an arm64 machine).
 */
function wheelSelection(arch, machine) {
  const wanted = WHEEL_PLATFORMS[arch];
  if (!wanted) throw new Error(`no OpenVINO wheels are known for linux-${arch}; supported: ${Object.keys(WHEEL_PLATFORMS).join(', ')}`);
  if (machine === wanted.machine) return [];
  return [...wanted.tags.flatMap((tag) => ['--platform', tag]), '--only-binary=:all:', '--implementation', 'cp'];
}

/** pip install of the pinned wheels for `arch` into `target`; throws with the fix. */
function installWheels(python, target, arch = process.arch) {
  const v = pinnedVersions();
  const selection = wheelSelection(arch, pythonMachine(python));
  const r = spawnSync(
    python,
    [
      '-m',
      'pip',
      'install',
      '--disable-pip-version-check',
      '--no-deps',
      '--no-warn-script-location',
      ...selection,
      '--target',
      target,
      `openvino==${v.openvino}`,
      `openvino-tokenizers==${v['openvino-tokenizers']}`,
    ],
    { stdio: 'inherit' },
  );
  if (r.status !== 0) throw new Error(`pip could not install the OpenVINO wheels for linux-${arch} (exit ${r.status}).\n${describeFix()}`);
  const missing = missingPieces(target);
  if (missing.length) throw new Error(`the installed wheels lack:\n  ${missing.join('\n  ')}`);
}

function log(message) {
  process.stderr.write(`ov-diffusion: ${message}\n`);
}

/** Records the complete installation for the library (see MANIFEST); returns its paths. */
function recordInstallation() {
  const paths = runtimePaths();
  // Relative to the package, so a moved package (a copied node_modules, a container layer) still finds them.
  const relative = (file) => path.relative(ROOT, file).split(path.sep).join('/');
  const manifest = {
    openvino: pinnedVersions().openvino,
    tokenizersLibrary: relative(paths.tokenizersLibrary),
    required: [relative(paths.openvinoLibrary), relative(paths.tokenizersLibrary)],
  };
  fs.writeFileSync(MANIFEST, `${JSON.stringify(manifest, null, 2)}\n`);
  return paths;
}

/** Makes runtime/site-packages usable for the pinned release; returns its paths. Throws with the fix. */
function provisionRuntime() {
  const external = process.env[ENV_VAR];
  if (external) {
    const dir = path.resolve(external);
    const missing = missingPieces(dir);
    if (missing.length) throw new Error(`${ENV_VAR}=${dir} lacks:\n  ${missing.join('\n  ')}\n${describeFix()}`);
    fs.mkdirSync(RUNTIME_DIR, { recursive: true });
    fs.rmSync(SITE_PACKAGES, { recursive: true, force: true });
    fs.symlinkSync(dir, SITE_PACKAGES, 'dir');
    log(`using the OpenVINO installation in ${dir}`);
    return recordInstallation();
  }
  if (missingPieces(SITE_PACKAGES).length === 0) return recordInstallation();

  const python = findPython();
  if (!python) throw new Error(`the OpenVINO Runtime is not installed and no python3 with pip was found.\n${describeFix()}`);
  const v = pinnedVersions();
  const staging = `${SITE_PACKAGES}.partial`;
  fs.rmSync(staging, { recursive: true, force: true });
  log(`installing openvino==${v.openvino} and openvino-tokenizers==${v['openvino-tokenizers']} from PyPI into ${SITE_PACKAGES}`);
  installWheels(python, staging);
  // Swap in only a complete installation, so an interrupted install is never picked up.
  fs.rmSync(SITE_PACKAGES, { recursive: true, force: true });
  fs.renameSync(staging, SITE_PACKAGES);
  return recordInstallation();
}

module.exports = {
  provisionRuntime,
  installWheels,
  wheelSelection,
  findPython,
  WHEEL_PLATFORMS,
  runtimePaths,
  missingPieces,
  pinnedVersions,
  libraryTag,
  ENV_VAR,
  MANIFEST,
  ROOT,
};

if (require.main === module) {
  try {
    const p = provisionRuntime();
    console.log(JSON.stringify(p, null, 2));
  } catch (e) {
    log(e.message);
    process.exit(1);
  }
}
