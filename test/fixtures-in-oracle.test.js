'use strict';
// Every fixture loads and generates in each openvino_genai pipeline that applies to it (with and
// without a LoRA adapter): test/oracle/check_fixtures.py, run with the pinned oracle.
const test = require('node:test');
const assert = require('node:assert/strict');
const path = require('path');
const { spawnSync } = require('child_process');
const { ROOT } = require('./helpers/paths');

test('every fixture runs in the openvino_genai pipelines that apply to it', () => {
  const python = path.join(ROOT, '.cache', 'oracle-venv', 'bin', 'python');
  const r = spawnSync(python, [path.join(ROOT, 'test', 'oracle', 'check_fixtures.py')], { encoding: 'utf8', cwd: ROOT });
  const summary = r.stdout.trim().split('\n').pop();
  assert.equal(r.status, 0, `${r.stdout.slice(-3000)}\n${r.stderr.slice(-2000)}`);
  const [, passed, failed] = summary.match(/(\d+) passed, (\d+) failed/) || [];
  assert.equal(Number(failed), 0, summary);
  assert.ok(Number(passed) >= 100, summary);
  assert.match(r.stdout, /flux-fill/, 'the FluxFill fixture is checked too');
});
