'use strict';
// The models a run measures: --model specs resolved to folders, their default size, their size on disk.
const fs = require('fs');
const path = require('path');
const { spawnSync } = require('child_process');
const { ROOT } = require('./workers');
const { log } = require('./log');

const RANDOM_MODEL = 'sd15-int8-random';
// Full-size random-weight models (.cache/bench-models/NAME), each with the script that builds it and its cost.
const RANDOM_MODELS = {
  [RANDOM_MODEL]: { script: 'make-sd15-random-int8.sh', cost: '~5-10 min, ~12 GB RAM' },
  'sdxl-int8-random': { script: 'make-sdxl-random-int8.sh', cost: 'about an hour on 2 cores, see make_sdxl_random.py' },
  'zimage-int8-random': {
    script: 'make-zimage-random-int8.sh',
    cost: 'see make_zimage_random.py; needs swap beside 24 GB of RAM',
  },
};

function resolveModel(spec, opts) {
  if (RANDOM_MODELS[spec]) {
    const dir = path.join(ROOT, '.cache', 'bench-models', spec);
    const script = path.join('scripts', 'bench-models', RANDOM_MODELS[spec].script);
    if (!fs.existsSync(path.join(dir, 'bench-model.json'))) {
      if (!opts.generate) throw new Error(`${dir} is missing; build it with bash ${script}`);
      log(`${spec} is missing: building it (bash ${script}; ${RANDOM_MODELS[spec].cost})`);
      const r = spawnSync('bash', [path.join(ROOT, script)], {
        cwd: ROOT,
        stdio: 'inherit',
      });
      if (r.status !== 0) throw new Error('building the random model failed');
    }
    return {
      id: spec,
      dir,
      kind: 'random-full-size',
      info: JSON.parse(fs.readFileSync(path.join(dir, 'bench-model.json'), 'utf8')),
    };
  }
  if (spec.startsWith('fixture:')) {
    const name = spec.slice('fixture:'.length);
    const dir = path.join(ROOT, 'test', 'fixtures', name);
    if (!fs.existsSync(path.join(dir, 'model_index.json'))) throw new Error(`no fixture ${dir}`);
    return { id: `fixture-${name}`, dir, kind: 'tiny-fixture' };
  }
  const dir = path.resolve(spec);
  if (!fs.existsSync(path.join(dir, 'model_index.json'))) throw new Error(`${dir} is not a model folder (no model_index.json)`);
  return { id: path.basename(dir), dir, kind: 'folder' };
}

function modelDefaults(dir) {
  const read = (rel) => {
    try {
      return JSON.parse(fs.readFileSync(path.join(dir, rel), 'utf8'));
    } catch {
      return {};
    }
  };
  const index = read('model_index.json');
  const unet = read('unet/config.json');
  const vae = read('vae_decoder/config.json');
  const scale = vae.block_out_channels ? 2 ** (vae.block_out_channels.length - 1) : 8;
  const sample = unet.sample_size || 64;
  return { className: index._class_name, width: sample * scale, height: sample * scale, inChannels: unet.in_channels };
}

function dirBytes(dir) {
  let total = 0;
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, entry.name);
    total += entry.isDirectory() ? dirBytes(p) : fs.statSync(p).size;
  }
  return total;
}

module.exports = { RANDOM_MODEL, RANDOM_MODELS, resolveModel, modelDefaults, dirBytes };
