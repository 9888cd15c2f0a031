'use strict';
// Case edit: image-to-image and inpainting against text-to-image with the same steps, ours and openvino_genai.
const path = require('path');
const { writeInputs } = require('../lib/inputs');
const { generationFigures, row } = require('../lib/figures');

async function run(session, m) {
  const o = session.opts;
  const rows = [];
  const inputs = writeInputs(path.join(session.tmp, 'inputs'), m.width, m.height);
  const result = { status: 'ok', rows, strength: o.strength, sides: {} };
  if (m.inChannels && m.inChannels !== 4)
    return { status: 'skipped', note: `the UNet has ${m.inChannels} input channels (a dedicated inpainting model)` };
  const v = (label, s, unit = 'ms') => ({ label, s, unit });
  for (const side of session.oracleOk ? ['ours', 'oracle'] : ['ours']) {
    const t2i = generationFigures(await session.t2i(m, side), 't2i');
    const spec = session.baseSpec(m, {
      inputs,
      runs: [
        session.t2iRun(m, { label: 'i2i', task: 'image2image', strength: o.strength }),
        session.t2iRun(m, { label: 'inpaint', task: 'inpainting', warmup: 0 }),
      ],
    });
    const res = await session.worker(side === 'ours' ? 'engine' : 'oracle', spec, `${m.id} · image-to-image + inpainting · ${side}`);
    const i2i = generationFigures(res, 'i2i');
    const inp = generationFigures(res, 'inpaint');
    result.sides[side] = { t2i, i2i, inpaint: inp, error: res.ok ? undefined : res.error };
    const who = side === 'ours' ? 'ours' : 'openvino_genai';
    if (i2i && i2i.generateMs) {
      rows.push(
        row(
          'edit',
          `${who}: image-to-image, strength ${o.strength} (${i2i.steps} of ${o.steps} steps run)`,
          v('image-to-image', i2i.generateMs),
          v('text-to-image', t2i.generateMs),
        ),
      );
      rows.push(row('edit', `${who}: image-to-image VAE encode`, v('VAE encode', i2i.vaeEncodeMs), null));
    }
    if (inp && inp.generateMs)
      rows.push(
        row('edit', `${who}: inpainting (${inp.steps} steps run)`, v('inpainting', inp.generateMs), v('text-to-image', t2i.generateMs)),
      );
  }
  const a = result.sides.ours,
    b = result.sides.oracle;
  if (a && b) {
    if (a.i2i && b.i2i)
      rows.push(
        row('edit', 'image-to-image: ours / openvino_genai', v('ours', a.i2i.generateMs), v('openvino_genai', b.i2i.generateMs), {
          goal: '<= 1.00',
        }),
      );
    if (a.inpaint && b.inpaint)
      rows.push(
        row('edit', 'inpainting: ours / openvino_genai', v('ours', a.inpaint.generateMs), v('openvino_genai', b.inpaint.generateMs), {
          goal: '<= 1.00',
        }),
      );
    const same = (x, y) => x && y && x.sha256.length === 1 && x.sha256[0] === y.sha256[0];
    result.parity = { image2image: same(a.i2i, b.i2i), inpainting: same(a.inpaint, b.inpaint) };
  }
  return result;
}

module.exports = {
  section: 6,
  title: 'Image-to-image and inpainting vs text-to-image (same steps)',
  description: 'image-to-image (strength 0.5) and inpainting vs text-to-image with the same steps',
  run,
};
