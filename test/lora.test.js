'use strict';
// LoRA adapters: parity with openvino_genai's AdapterConfig, per-call switching, fuse mode, bad files.
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('fs');
const os = require('os');
const path = require('path');
const { DiffusionModel } = require('..');
const { fixture } = require('./helpers/paths');
const { printTable, unrepeatable } = require('./helpers/oracle');
const { lora, compareStyle, meanAbs, PROMPT } = require('./helpers/lora');

test('LoRA on linear layers matches openvino_genai exactly (SDXL: kohya, PEFT, old diffusers; SD 1.5: old diffusers)', async () => {
  const rows = [];
  for (const [model, style] of [
    ['sdxl', 'kohya'],
    ['sdxl', 'peft-unet'],
    ['sdxl', 'diffusers-legacy'],
    ['sd15', 'diffusers-legacy'],
  ]) {
    const result = await compareStyle(model, style);
    for (const r of result.report) assert.deepEqual(r.unmatchedKeys, [], `${model} ${style} ${r.name}: every key finds its layer`);
    rows.push(...result.rows);
  }
  printTable('LoRA parity, linear layers (ours vs openvino_genai)', rows);
  assert.deepEqual(
    rows.filter((r) => r.maxDiff > 1),
    [],
  );
  assert.deepEqual(unrepeatable(rows), [], 'the same call gave other pixels');
  // The adapters really change the image, so the equality above is not trivial.
  assert.ok(rows.filter((r) => !r.name.endsWith('none after adapters')).every((r) => r.adapterEffect > 5));
});

test('LoRA on SD 1.x 1x1 convolutions matches openvino_genai exactly (SD 1.5: kohya, PEFT)', async () => {
  const rows = [];
  for (const style of ['kohya', 'peft-unet']) rows.push(...(await compareStyle('sd15', style)).rows);
  printTable('LoRA parity, SD 1.5 with proj_in/proj_out convolutions (ours vs openvino_genai)', rows);
  assert.deepEqual(
    rows.filter((r) => r.maxDiff > 1),
    [],
  );
  assert.deepEqual(unrepeatable(rows), [], 'the same call gave other pixels');
  assert.ok(rows.filter((r) => !r.name.endsWith('none after adapters')).every((r) => r.adapterEffect > 5));
});

test('LoRA on SD3 and FLUX matches openvino_genai exactly (diffusers transformer keys; kohya-FLUX and XLabs with qkv splits; FLUX CLIP)', async () => {
  const rows = [];
  for (const [model, style] of [
    ['sd3', 'diffusers'],
    ['flux-dev', 'diffusers'],
    ['flux-dev', 'kohya'],
    ['flux-dev', 'xlabs'],
  ]) {
    const result = await compareStyle(model, style);
    for (const r of result.report) {
      assert.deepEqual(r.unmatchedKeys, [], `${model} ${style} ${r.name}: every key finds its layer`);
      assert.ok(r.matchedLayers > 0);
    }
    rows.push(...result.rows);
  }
  printTable('LoRA parity, SD3 / FLUX (ours vs openvino_genai)', rows);
  console.log(
    `adapter effect (mean |oracle with - oracle base|): ${rows.map((r) => `${r.name} ${r.adapterEffect.toFixed(1)}`).join('; ')}`,
  );
  assert.deepEqual(
    rows.filter((r) => r.maxDiff > 1),
    [],
  );
  assert.deepEqual(unrepeatable(rows), [], 'the same call gave other pixels');
  assert.ok(rows.filter((r) => !r.name.endsWith('none after adapters')).every((r) => r.adapterEffect > 2));
});

test("LoRA on the CPU plugin's f32 path (INFERENCE_PRECISION_HINT=f32) matches openvino_genai on every call", async () => {
  // The path every CPU without native BF16 takes by default. There, a fused LoRA node reading a model input directly
  // once kept reading the first buffer bound to it, so repeated calls drifted to black images.
  const rows = [];
  const f32 = { INFERENCE_PRECISION_HINT: 'f32' };
  for (const [model, style] of [
    ['sd15', 'kohya'],
    ['sdxl', 'kohya'],
  ])
    rows.push(...(await compareStyle(model, style, f32)).rows);
  printTable('LoRA parity with INFERENCE_PRECISION_HINT=f32 (ours vs openvino_genai)', rows);
  assert.deepEqual(
    rows.filter((r) => r.maxDiff > 1),
    [],
  );
  assert.deepEqual(unrepeatable(rows), [], 'the same call gave other pixels');
  assert.ok(rows.filter((r) => !r.name.endsWith('none after adapters')).every((r) => r.adapterEffect > 5));
});

test('PEFT files with unet./text_encoder. prefixes apply nothing, as in openvino_genai, and are reported', async () => {
  const { rows, report } = await compareStyle('sd15', 'peft');
  assert.deepEqual(
    rows.filter((r) => r.maxDiff > 1),
    [],
  );
  assert.deepEqual(unrepeatable(rows), [], 'the same call gave other pixels');
  for (const r of report) {
    assert.equal(r.matchedLayers, 0);
    assert.ok(r.unmatchedKeys.length > 0 && r.unmatchedKeys.every((k) => k.startsWith('lora_unet.')), r.unmatchedKeys[0]);
  }
});

test('adapters switch per call without reloading; presets and errors', async () => {
  const model = await DiffusionModel.load(fixture('sdxl'), {
    adapters: { a: lora('sdxl-kohya-a'), b: { path: lora('sdxl-kohya-b'), alpha: 0.4 } },
    adapterPresets: { blend: { a: 0.7, b: 0.4 } },
  });
  const run = (adapters) => model.text2image(PROMPT, { numInferenceSteps: 2, adapters }).then((r) => r.images[0].data);
  const base = await run(undefined);
  const withA = await run('a');
  const blend = await run('blend');
  assert.notDeepEqual(withA, base);
  assert.deepEqual(await run([{ name: 'a', alpha: 0.7 }, { name: 'b' }]), blend, 'preset = explicit list with the registered alpha');
  assert.deepEqual(await run({ a: 0.7, b: 0.4 }), blend);
  assert.deepEqual(await run([]), await run(undefined), 'no adapters twice gives the same image');
  assert.deepEqual(await run('a'), withA, 'switching back reproduces the image');
  await assert.rejects(run('nope'), { code: 'ERR_INVALID_ARGUMENT', message: /unknown adapter 'nope'.*registered: a, b/ });
  await assert.rejects(run(['a', 'a']), { code: 'ERR_INVALID_ARGUMENT', message: /twice/ });
  await assert.rejects(DiffusionModel.load(fixture('sdxl'), { adapters: { a: lora('sdxl-kohya-a') }, adapterPresets: { p: { x: 1 } } }), {
    code: 'ERR_INVALID_ARGUMENT',
    message: /unknown adapter 'x'/,
  });
  model.dispose();
});

test('fuse mode merges the adapters into the weights and refuses other choices', async () => {
  const dynamic = await DiffusionModel.load(fixture('sdxl'), { adapters: { a: lora('sdxl-kohya-a') } });
  const fused = await DiffusionModel.load(fixture('sdxl'), {
    adapters: { a: { path: lora('sdxl-kohya-a'), alpha: 0.8 } },
    adapterMode: 'fuse',
  });
  const opts = { numInferenceSteps: 2 };
  const base = (await dynamic.text2image(PROMPT, opts)).images[0].data;
  const viaStates = (await dynamic.text2image(PROMPT, { ...opts, adapters: { a: 0.8 } })).images[0].data;
  const viaFuse = (await fused.text2image(PROMPT, opts)).images[0].data;
  assert.ok(meanAbs(viaFuse, viaStates) < meanAbs(viaStates, base) / 4, 'fused weights give (almost) the dynamic result');
  await assert.rejects(fused.text2image(PROMPT, { ...opts, adapters: { a: 0.3 } }), { code: 'ERR_INVALID_ARGUMENT', message: /fused/ });
  dynamic.dispose();
  fused.dispose();
});

test('corrupt or truncated adapter files are clear errors, never crashes', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ovd-lora-'));
  const good = fs.readFileSync(lora('sd15-kohya-b'));
  const headerLength = Number(good.readBigUInt64LE(0));
  const header = JSON.parse(good.subarray(8, 8 + headerLength).toString());
  const withHeader = (h) => {
    const json = Buffer.from(JSON.stringify(h));
    const length = Buffer.alloc(8);
    length.writeBigUInt64LE(BigInt(json.length));
    return Buffer.concat([length, json, good.subarray(8 + headerLength)]);
  };
  const first = Object.keys(header).find((k) => k.endsWith('lora_down.weight'));
  const cases = {
    'too short': Buffer.from([1, 2, 3]),
    'header past the end': Buffer.concat([Buffer.from([255, 255, 255, 255, 0, 0, 0, 0]), Buffer.alloc(16)]),
    'truncated data': good.subarray(0, good.length - 100),
    'not JSON': Buffer.concat([Buffer.from([4, 0, 0, 0, 0, 0, 0, 0]), Buffer.from('{{{{')]),
    'offsets outside': withHeader({ ...header, [first]: { ...header[first], data_offsets: [0, 1e12] } }),
    'size mismatch': withHeader({ ...header, [first]: { ...header[first], shape: [999, 999] } }),
    'integer weights': withHeader({ ...header, [first]: { ...header[first], dtype: 'I32' } }),
    'missing up weight': withHeader(
      Object.fromEntries(Object.entries(header).filter(([k]) => k !== first.replace('lora_down', 'lora_up'))),
    ),
    'no LoRA pairs': withHeader({ __metadata__: {} }),
  };
  for (const [name, bytes] of Object.entries(cases)) {
    const file = path.join(dir, `${name.replace(/ /g, '-')}.safetensors`);
    fs.writeFileSync(file, bytes);
    await assert.rejects(
      DiffusionModel.load(fixture('sd15'), { adapters: { x: file } }),
      (e) => {
        assert.equal(e.code, 'ERR_INVALID_ARGUMENT', `${name}: ${e.message}`);
        assert.match(e.message, new RegExp(path.basename(file).replace(/\./g, '\\.')), name);
        return true;
      },
      name,
    );
  }
  await assert.rejects(DiffusionModel.load(fixture('sd15'), { adapters: { x: path.join(dir, 'missing.safetensors') } }), {
    code: 'ERR_MODEL_NOT_FOUND',
  });
});
