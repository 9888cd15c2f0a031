'use strict';
// The command line (OVMS flag names, meanings and messages), the per-model settings rules OVMS checks at graph load,
// the --source_loras grammar (OVMS's ImageGenCLILoraParsingTest cases), config files and graph.pbtxt.
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('fs');
const os = require('os');
const path = require('path');
const { parseArgs, helpText, CliError } = require('../dist/launcher/cli');
const { buildModelSettings, loadOptions } = require('../dist/server/settings');
const { loraLoadOptions, parseSourceLoras } = require('../dist/launcher/lora-sources');
const { AdapterRegistry } = require('../dist/adapters');
const { LoraRouter } = require('../dist/server/loras');
const { readConfigFile, readGraph, writeGraph, modelEntry, parsePbtxt } = require('../dist/launcher/config');
const { runCli } = require('./helpers/server-http');

const made = [];
const tmp = (name) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `ovd-${name}-`));
  made.push(dir);
  return dir;
};
test.after(() => {
  for (const dir of made) fs.rmSync(dir, { recursive: true, force: true });
});
const parse = (argv, env = {}) => parseArgs(argv, env);
const rejects = (argv, pattern, env = {}) =>
  assert.throws(
    () => parse(argv, env),
    (e) => e instanceof CliError && pattern.test(e.message),
    argv.join(' '),
  );

test('defaults: port 8000 on 0.0.0.0, INFO, the demo model (no model flags)', () => {
  const o = parse([]);
  assert.equal(o.restPort, 8000);
  assert.equal(o.restBindAddress, '0.0.0.0');
  assert.equal(o.logLevel, 'INFO');
  assert.equal(o.sourceModel, undefined);
  assert.equal(o.modelPath, undefined);
  assert.deepEqual(o.model, {});
});

test('the seed commands parse: pull-and-serve, NPU with a static resolution, model_path + model_name, --flag=value', () => {
  const pull = parse([
    '--rest_port',
    '8000',
    '--model_repository_path',
    './models/',
    '--task',
    'image_generation',
    '--source_model',
    'OpenVINO/stable-diffusion-v1-5-int8-ov',
  ]);
  assert.equal(pull.sourceModel, 'OpenVINO/stable-diffusion-v1-5-int8-ov');
  assert.equal(pull.modelName, 'OpenVINO/stable-diffusion-v1-5-int8-ov', 'model_name defaults to source_model');
  const npu = parse([
    '--rest_port',
    '8000',
    '--model_repository_path',
    '/models',
    '--task',
    'image_generation',
    '--source_model',
    'OpenVINO/stable-diffusion-v1-5-int8-ov',
    '--target_device',
    'NPU NPU NPU',
    '--resolution',
    '512x512',
    '--cache_dir',
    '/models/cache',
  ]);
  assert.deepEqual(npu.model, { target_device: 'NPU NPU NPU', resolution: '512x512', cache_dir: '/models/cache' });
  const settings = buildModelSettings(npu.model);
  assert.deepEqual(settings.device, { textEncoder: 'NPU', denoiser: 'NPU', vae: 'NPU' });
  assert.deepEqual(settings.properties, { CACHE_DIR: '/models/cache' });
  const local = parse([
    '--rest_port=9000',
    '--model_name',
    'OpenVINO/stable-diffusion-v1-5-int8-ov',
    '--model_path',
    './models/stable-diffusion-v1-5/stable-diffusion-v1-5',
  ]);
  assert.equal(local.restPort, 9000);
  assert.equal(local.modelPath, './models/stable-diffusion-v1-5/stable-diffusion-v1-5');
  const convert = parse([
    '--model_repository_path',
    'models',
    '--source_model',
    'stable-diffusion-v1-5/stable-diffusion-inpainting',
    '--weight-format',
    'int8',
    '--target_device',
    'GPU',
  ]);
  assert.equal(convert.weightFormat, 'int8');
  const loras = parse([
    '--model_repository_path',
    'm',
    '--source_model',
    'OpenVINO/stable-diffusion-xl-base-1.0-int8-ov',
    '--source_loras',
    'xray=DoctorDiffusion/doctor-diffusion-s-xray-xl-lora@DD-xray-v1.safetensors,ukiyo=KappaNeuro/ukiyo-e-art@Ukiyo-e%20Art.safetensors,blend=@xray:0.5+@ukiyo:0.4',
  ]);
  assert.deepEqual(
    loras.loras.map((l) => l.alias),
    ['xray', 'ukiyo', 'blend'],
  );
  assert.equal(loras.loras[1].source.file, 'Ukiyo-e Art.safetensors');
});

test('OVMS positiveAllChangedImageGeneration: every image flag parses and builds settings', () => {
  const o = parse([
    '--model_name',
    'm',
    '--model_path',
    '/m',
    '--task',
    'image_generation',
    '--target_device',
    'GPU GPU NPU',
    '--resolution',
    ' 3000x4000 200x700 100x200',
    '--default_resolution',
    '200x700',
    '--max_num_images_per_prompt',
    '7',
    '--default_num_inference_steps',
    '2',
    '--max_num_inference_steps',
    '3',
    '--num_streams',
    '14',
    '--cache_dir',
    '/cache',
    '--plugin_config',
    '{"PERFORMANCE_HINT":"LATENCY"}',
    '--log_level',
    'DEBUG',
    '--rest_workers',
    '4',
  ]);
  assert.equal(o.model.resolution, ' 3000x4000 200x700 100x200', 'kept raw');
  assert.throws(() => buildModelSettings(o.model), /NPU needs a static shape/);
  const settings = buildModelSettings({ ...o.model, target_device: 'GPU GPU CPU' });
  assert.deepEqual(settings.resolutions, [
    { width: 3000, height: 4000 },
    { width: 200, height: 700 },
    { width: 100, height: 200 },
  ]);
  assert.deepEqual(settings.defaultResolution, { width: 200, height: 700 });
  assert.deepEqual(settings.properties, { PERFORMANCE_HINT: 'LATENCY', CACHE_DIR: '/cache', NUM_STREAMS: '14' });
  assert.equal(settings.maxNumImagesPerPrompt, 7);
  assert.equal(settings.defaultNumInferenceSteps, 2);
  assert.equal(settings.maxNumInferenceSteps, 3);
  assert.equal(settings.maxConcurrency, 14, 'num_streams sets the concurrency default');
  assert.equal(settings.staticGuidanceScale, undefined, 'several resolutions do not pin guidance (unlike OVMS)');
});

test('unknown flags, bad values and bad combinations are refused with a clear message', () => {
  rejects(['--x', 'val'], /unknown option '--x'/);
  rejects(['--restport', '1'], /did you mean --rest_port/);
  rejects(['positional'], /unexpected argument/);
  rejects(['--rest_port'], /needs a value/);
  rejects(['--rest_port', 'abc'], /port number/);
  rejects(['--rest_port', '70000'], /port number/);
  rejects(['--rest_port', '1', '--rest_port', '2'], /more than once/);
  rejects(['--pull=maybe'], /true \/ =false/);
  rejects(['--log_level', 'LOUD'], /--log_level must be one of/);
  rejects(['--task', 'text_generation'], /image_generation only/);
  rejects(['--task', 'painting'], /--task parameter unsupported value/);
  rejects(['--max_resolution', '12'], /Invalid max_resolution format\. Expected WxH, e\.g\., 1024x1024/);
  rejects(['--default_resolution', 'auto'], /Invalid default_resolution format/);
  for (const flag of ['max_num_images_per_prompt', 'default_num_inference_steps', 'max_num_inference_steps', 'num_streams'])
    rejects([`--${flag}`, '0'], new RegExp(`${flag} must be greater than 0`));
  rejects(['--guidance_scale', 'high'], /guidance_scale must be a number/);
  rejects(['--plugin_config', 'NUM_STREAMS=2'], /plugin_config is not valid JSON/);
  rejects(['--plugin_config', '[1]'], /must be a JSON object/);
  rejects(['--model_path', '/m'], /model_path needs --model_name/);
  rejects(['--model_name', 'm'], /needs --model_path, --source_model or --model_repository_path/);
  rejects(['--source_model', 'OpenVINO/x'], /model_repository_path parameter is required for pull mode/);
  rejects(['--pull'], /--pull needs --source_model/);
  rejects(['--config_path', 'c.json', '--model_name', 'm', '--model_path', '/m'], /config_path cannot be combined/);
  rejects(['--config_path', 'c.json', '--target_device', 'GPU'], /put it in the model's entry/);
  rejects(
    ['--model_repository_path', 'm', '--source_model', 'OpenVINO/x', '--weight-format', 'int8'],
    /--weight-format parameter unsupported for OpenVINO models\./,
  );
  rejects(['--model_repository_path', 'm', '--source_model', 'org/x', '--weight-format', 'int3'], /--weight-format must be one of/);
  rejects(['--model_repository_path', 'm', '--source_model', '../escape'], /Hugging Face repository id/);
  rejects(['--source_loras', 'a=org/repo@'], /Empty filename after @/);
});

test('the serving flags (not in OVMS): defaults, values and errors; queue limits per model', () => {
  const d = parse([]);
  assert.equal(d.defaultRngSeed, undefined, 'a random seed per request');
  assert.equal(d.pngMetadata, true);
  assert.equal(d.playground, true);
  assert.equal(parse(['--no_playground']).playground, false);
  assert.equal(d.imageUrlTtlSeconds, 3600);
  assert.equal(d.publicUrl, undefined);
  assert.equal(d.variationPrompt, '');
  assert.equal(d.shutdownTimeoutSeconds, 20);
  const o = parse([
    '--default_rng_seed',
    '42',
    '--no_png_metadata',
    '--image_url_ttl',
    '90',
    '--public_url',
    'https://img.example.com/base/',
    '--variation_prompt',
    'a variation',
    '--shutdown_timeout',
    '2.5',
    '--metrics_enable',
  ]);
  assert.deepEqual(
    [o.defaultRngSeed, o.pngMetadata, o.imageUrlTtlSeconds, o.publicUrl, o.variationPrompt, o.shutdownTimeoutSeconds],
    [42, false, 90, 'https://img.example.com/base', 'a variation', 2.5],
  );
  assert.equal(parse(['--default_rng_seed', 'RANDOM']).defaultRngSeed, undefined);
  assert.equal(parse(['--variation_prompt', '']).variationPrompt, '');
  rejects(['--default_rng_seed', '-1'], /--default_rng_seed must be random or an integer/);
  rejects(['--image_url_ttl', 'soon'], /image_url_ttl must be a number of seconds/);
  assert.deepEqual([d.maxJobs, d.jobTtlSeconds], [100, 3600]);
  const jobs = parse(['--max_jobs', '0', '--job_ttl', '1.5']);
  assert.deepEqual([jobs.maxJobs, jobs.jobTtlSeconds], [0, 1.5]);
  rejects(['--max_jobs', '-1'], /max_jobs must be a non-negative integer/);
  rejects(['--job_ttl', '0'], /--job_ttl must be more than 0 seconds/);
  rejects(['--job_ttl', 'later'], /job_ttl must be a number of seconds/);
  rejects(['--shutdown_timeout', '-1'], /shutdown_timeout must be a number of seconds/);
  rejects(['--public_url', 'images.example.com'], /--public_url must be an absolute http\(s\) URL/);
  rejects(['--public_url', 'ftp://x'], /--public_url must be an http or https URL/);
  rejects(['--max_queue_size', '-1'], /max_queue_size must be a non-negative integer/);
  rejects(['--queue_timeout', 'x'], /queue_timeout must be a number of seconds/);
  const q = parse(['--model_name', 'm', '--model_path', '/m', '--max_concurrency', '3', '--max_queue_size', '0', '--queue_timeout', '0']);
  const settings = buildModelSettings(q.model);
  assert.deepEqual([settings.maxConcurrency, settings.maxQueue, settings.queueTimeoutMs], [3, 0, 0]);
  assert.deepEqual(
    loadOptions(settings),
    { device: undefined, properties: {}, maxConcurrency: 3, maxQueue: 0 },
    'queue_timeout 0: no limit',
  );
  assert.equal(loadOptions(buildModelSettings({ queue_timeout: '1.5' })).queueTimeoutMs, 1500);
  rejects(['--config_path', 'c.json', '--max_queue_size', '4'], /put it in the model's entry/);
});

test('--model_name alone with a repository path is the source model (OVMS); --pull with --model_name too', () => {
  assert.equal(parse(['--model_name', 'OpenVINO/x', '--model_repository_path', 'r']).sourceModel, 'OpenVINO/x');
  assert.equal(parse(['--pull', '--model_name', 'OpenVINO/x'], { OVMS_MODEL_REPOSITORY_PATH: '/r' }).modelRepositoryPath, '/r');
});

test('settings: OVMS graph-load rules (ImageGenCalculatorOptionsNegative) and defaults (PositiveAllRequiredFields)', () => {
  const d = buildModelSettings({});
  assert.deepEqual(d.maxResolution, { width: 4096, height: 4096 });
  assert.equal(d.maxNumImagesPerPrompt, 10);
  assert.equal(d.defaultNumInferenceSteps, 50);
  assert.equal(d.maxNumInferenceSteps, 100);
  assert.equal(d.defaultResolution, undefined);
  assert.deepEqual(d.properties, {});
  assert.equal(d.device, undefined);
  const bad = [
    [{ default_resolution: '4097x256' }, /exceeds max_resolution/],
    [{ resolution: 'auto' }, /not WxH/],
    [{ guidance_scale: '7' }, /need exactly one --resolution/],
    [{ num_images_per_prompt: '2' }, /need exactly one --resolution/],
    [{ resolution: '512x512 256x256', max_resolution: '1024x1024' }, /max_resolution cannot be combined/],
    [{ resolution: '512x512', max_resolution: '1024x1024' }, /max_resolution cannot be combined/],
    [{ resolution: '512x512 256x256', default_resolution: '128x128' }, /not one of the resolutions/],
    [{ resolution: '512x512 256x256', target_device: 'NPU' }, /NPU needs a static shape/],
    [{ target_device: 'NPU' }, /NPU needs a static shape/],
    [{ resolution: '512x512 256x256', target_device: 'CPU NPU CPU' }, /NPU needs a static shape/],
    [{ resolution: '512x512 51x' }, /not WxH/],
    [{ resolution: '512x512 512x512' }, /listed twice/],
    [{ target_device: 'CPU GPU' }, /one device or three/],
    [{ target_device: 'CPU GPU CPU GPU' }, /one device or three/],
    [{ resolution: '512x512 256x256', guidance_scale: '7' }, /need exactly one --resolution/],
    [{ resolution: '512x512', max_num_images_per_prompt: '4' }, /max_num_images_per_prompt cannot be combined/],
    [{ plugin_config: '{"CACHE_DIR":"/a"}', cache_dir: '/b' }, /Doubled CACHE_DIR/],
    [{ plugin_config: '{"NUM_STREAMS":"2"}', num_streams: '4' }, /Doubled NUM_STREAMS/],
    [{ max_num_inference_steps: '10', default_num_inference_steps: '20' }, /exceeds max_num_inference_steps/],
  ];
  for (const [flags, pattern] of bad) assert.throws(() => buildModelSettings(flags), pattern, JSON.stringify(flags));
  assert.deepEqual(buildModelSettings({ target_device: '  GPU.0   MULTI:GPU.0,GPU.1   AUTO  ' }).device, {
    textEncoder: 'GPU.0',
    denoiser: 'MULTI:GPU.0,GPU.1',
    vae: 'AUTO',
  });
  assert.equal(buildModelSettings({ max_num_inference_steps: '20' }).defaultNumInferenceSteps, 20, 'the default never exceeds the maximum');
  const single = buildModelSettings({ resolution: '512x512', target_device: 'NPU' });
  assert.equal(single.staticNumImagesPerPrompt, 1);
  assert.equal(single.staticGuidanceScale, 7.5);
  assert.equal(buildModelSettings({ plugin_config: '{"NUM_STREAMS":"2"}', num_streams: '1' }).properties.NUM_STREAMS, '1');
  // One resolution is a static shape for the library; several are only a list of allowed sizes.
  assert.deepEqual(loadOptions(buildModelSettings({ resolution: '512x256', num_images_per_prompt: '2', guidance_scale: '7' })), {
    device: undefined,
    properties: {},
    maxConcurrency: 2,
    maxQueue: 32,
    queueTimeoutMs: 300000,
    reshape: { width: 512, height: 256, numImagesPerPrompt: 2, guidanceScale: 7 },
  });
  assert.deepEqual(loadOptions(buildModelSettings({ resolution: '512x512', target_device: 'NPU' })).reshape, {
    width: 512,
    height: 512,
    numImagesPerPrompt: 1,
  });
  assert.equal(loadOptions(buildModelSettings({ resolution: '512x512 256x256' })).reshape, undefined);
});

test('--source_loras: the OVMS grammar and its errors (ImageGenCLILoraParsingTest)', () => {
  const dir = tmp('loras');
  const local = path.join(dir, 'model.safetensors');
  fs.writeFileSync(local, 'x');
  const p = (text, options) => parseSourceLoras(text, options);
  assert.deepEqual(p('pokemon=juliensimon/sd-pokemon-lora'), [
    { kind: 'adapter', alias: 'pokemon', source: { type: 'hf', repo: 'juliensimon/sd-pokemon-lora', file: undefined }, alpha: undefined },
  ]);
  assert.equal(p('pokemon=juliensimon/sd-pokemon-lora@custom_lora.safetensors')[0].source.file, 'custom_lora.safetensors');
  assert.equal(p('a=o/a,b=o/b').length, 2);
  assert.deepEqual(p(''), []);
  assert.equal(p('a=o/a,').length, 1, 'a trailing comma is harmless');
  assert.deepEqual(p('u=https://host/path/weights.safetensors:0.5')[0], {
    kind: 'adapter',
    alias: 'u',
    source: { type: 'url', url: 'https://host/path/weights.safetensors', file: 'weights.safetensors' },
    alpha: 0.5,
  });
  assert.equal(p('u=http://host/w.safetensors')[0].alpha, undefined);
  assert.equal(
    p('u=https://host:8080/w.safetensors')[0].source.url,
    'https://host:8080/w.safetensors',
    'a URL port is not an alpha (OVMS quirk fixed)',
  );
  assert.deepEqual(p(`l=${local}:0.6`)[0].source, { type: 'local', path: local, file: 'model.safetensors' });
  assert.equal(p(`l=${local}:0.6`)[0].alpha, 0.6);
  assert.equal(p('a=o/a:0.75')[0].alpha, 0.75);
  assert.equal(p('a=o/a:1.0')[0].alpha, 1);
  const mixed = p(`h=o/h@f.safetensors,u=https://x/y.safetensors,l=${local}`);
  assert.deepEqual(
    mixed.map((m) => m.source.type),
    ['hf', 'url', 'local'],
  );
  assert.deepEqual(p('pokemon=o/p,anime=o/a,both=@pokemon+@anime')[2], {
    kind: 'composite',
    alias: 'both',
    components: [
      { alias: 'pokemon', alpha: undefined },
      { alias: 'anime', alpha: undefined },
    ],
  });
  assert.deepEqual(
    p('both=@pokemon:0.7+@anime:0.5,pokemon=o/p,anime=o/a')[2].components,
    [
      { alias: 'pokemon', alpha: 0.7 },
      { alias: 'anime', alpha: 0.5 },
    ],
    'entry order does not matter',
  );
  assert.deepEqual(
    p(
      'landscape=civitai/landscapes-lora@Fantastic_Landscape.safetensors,portrait=org/portrait-lora,scenic_blend=@landscape:0.3+@portrait:0.8',
    ).map((s) => s.alias),
    ['landscape', 'portrait', 'scenic_blend'],
  );
  assert.equal(p('my-lora_v1.0=o/r')[0].alias, 'my-lora_v1.0');
  const errors = [
    ['juliensimon/sd-pokemon-lora', /Missing alias in --source_loras entry/],
    ['a=o/a,,b=o/b', /Missing alias/],
    ['=org/repo', /Alias and source must not be empty/],
    ['a=', /Alias and source must not be empty/],
    ['a=org/repo@', /Empty filename after @/],
    ['https://host/w.safetensors', /Missing alias/],
    ['u=https://host/w.bin', /URL must point to a \.safetensors file/],
    ['u=https://host/', /Cannot extract filename/],
    [`l=${path.join(dir, 'model.bin')}`, /Local path must point to a \.safetensors file/],
    [`l=${path.join(dir, 'missing.safetensors')}`, /Local LoRA file does not exist/],
    ['/abs/path.safetensors', /Missing alias/],
    ['c=@unknown', /Composite LoRA references unknown adapter 'unknown'/],
    ['a=o/a,c=@a+b', /Each component must start with @/],
    ['a=o/a,c=@a:high', /Invalid alpha 'high'/],
    ['a=o/a,c=@', /Empty adapter reference/],
    ['a=o/a:abc', /Invalid alpha value 'abc'/],
    ['a=o/a:0.5abc', /Invalid alpha value '0\.5abc'/],
    ['a=o/a@some.safetensors:wikingowie', /Invalid alpha value 'wikingowie'/],
    ['a=o/a:2.5.32', /Invalid alpha value '2\.5\.32'/],
    ['my pokemon=o/a', /Invalid LoRA alias 'my pokemon'/],
    ['my/pokemon=o/a', /Invalid LoRA alias/],
    ['poke@mon=o/a', /Invalid LoRA alias/],
    ['a=o/a, b=o/b', /Invalid LoRA alias ' b'/],
    ['a=o/a,a=o/b', /defined twice/],
  ];
  for (const [text, pattern] of errors) assert.throws(() => p(text), pattern, text);
  assert.throws(() => p('a=o/a,b=o/b', { device: 'NPU' }), /NPU device with multiple LoRA adapters requires composite definitions/);
  assert.equal(p('a=o/a,b=o/b,c=@a+@b', { device: 'NPU' }).length, 3);
  assert.throws(() => p('a=o/a,b=o/b,c=@a', { device: 'NPU' }), /not part of the composite/);
  assert.equal(p('a=o/a', { device: 'NPU' }).length, 1);
  const specs = p('a=o/a@a.safetensors:0.8,b=o/b@b.safetensors,c=@a+@b:0.3');
  const router = new LoraRouter(specs, false);
  const { adapters, adapterPresets } = loraLoadOptions(specs, '/models/m', false);
  const registry = new AdapterRegistry(adapters, adapterPresets);
  const model = { adapterChoices: (selection) => registry.choices(selection) };
  assert.deepEqual(router.resolve(router.target('c'), { a: 0.1 }, model), [
    { name: 'a', alpha: 0.1 },
    { name: 'b', alpha: 0.3 },
  ]);
  assert.deepEqual(router.resolve(router.target('base'), { a: -0.5 }, model), []);
});

test('--source_loras become library load options: composites are presets; on NPU the composite alphas are fused', () => {
  const specs = parseSourceLoras('a=o/a@a.safetensors:0.8,b=o/b@b.safetensors,c=@a:0.25+@b');
  assert.deepEqual(loraLoadOptions(specs, '/m', false), {
    adapters: { a: { path: '/m/loras/o/a/a.safetensors', alpha: 0.8 }, b: { path: '/m/loras/o/b/b.safetensors', alpha: undefined } },
    adapterPresets: { c: { a: 0.25, b: 1 } },
  });
  const npu = loraLoadOptions(parseSourceLoras('a=o/a@a.safetensors:0.8,b=o/b@b.safetensors,c=@a:0.25+@b', { device: 'NPU' }), '/m', true);
  assert.equal(npu.adapterMode, 'fuse');
  assert.deepEqual(npu.adapters, {
    a: { path: '/m/loras/o/a/a.safetensors', alpha: 0.25 },
    b: { path: '/m/loras/o/b/b.safetensors', alpha: 1 },
  });
  // A request for the composite then restates exactly the fused alphas, which the engine accepts.
  const registry = new AdapterRegistry(npu.adapters, npu.adapterPresets);
  assert.deepEqual(registry.choices('c'), [
    { name: 'a', alpha: 0.25 },
    { name: 'b', alpha: 1 },
  ]);
  assert.deepEqual(registry.choices('a'), [{ name: 'a', alpha: 0.25 }]);
});

test('--config_path: OVMS config.json with model_config_list and mediapipe_config_list, per-model options', () => {
  const dir = tmp('config');
  const file = path.join(dir, 'config.json');
  fs.writeFileSync(
    file,
    JSON.stringify({
      model_config_list: [
        {
          config: {
            name: 'sd',
            base_path: 'sd15',
            target_device: 'CPU',
            max_num_inference_steps: 20,
            plugin_config: { PERFORMANCE_HINT: 'LATENCY' },
            nireq: 2,
          },
        },
      ],
      mediapipe_config_list: [{ name: 'inpaint', base_path: '/abs/inpaint' }],
    }),
  );
  const warnings = [];
  const entries = readConfigFile(file, { warn: (m) => warnings.push(m) });
  assert.deepEqual(entries, [
    {
      name: 'sd',
      basePath: path.join(dir, 'sd15'),
      flags: { target_device: 'CPU', max_num_inference_steps: '20', plugin_config: '{"PERFORMANCE_HINT":"LATENCY"}' },
    },
    { name: 'inpaint', basePath: '/abs/inpaint', flags: {} },
  ]);
  assert.match(warnings[0], /nireq/);
  const bad = [
    ['{', /config_path/],
    ['{"model_config_list": [{"config": {"base_path": "x"}}]}', /"name" is required/],
    ['{"model_config_list": [{"config": {"name": "x"}}]}', /"base_path" is required/],
    ['{"model_config_list": [{"config": {"name": "x", "base_path": "a"}}, {"config": {"name": "x", "base_path": "b"}}]}', /listed twice/],
    ['{"model_config_list": [{"config": {"name": "x", "base_path": "a", "target_devise": "CPU"}}]}', /unknown option 'target_devise'/],
    ['{"models": []}', /unknown key 'models'/],
    ['{}', /no models listed/],
  ];
  for (const [text, pattern] of bad) {
    fs.writeFileSync(file, text);
    assert.throws(() => readConfigFile(file), pattern, text);
  }
});

test('graph.pbtxt: written in the OVMS layout, read back as model options; an export_model.py graph is understood', () => {
  const dir = tmp('graph');
  writeGraph(
    dir,
    {
      target_device: 'GPU',
      plugin_config: '{"NUM_STREAMS":"14"}',
      cache_dir: 'C:\\cache',
      max_resolution: '3000x4000',
      default_resolution: '300x400',
      max_num_images_per_prompt: '7',
      default_num_inference_steps: '2',
      max_num_inference_steps: '3',
    },
    [{ alias: 'a', path: 'loras/org/a/a.safetensors', alpha: 0.5 }],
    [{ kind: 'composite', alias: 'c', components: [{ alias: 'a', alpha: 0.7 }] }],
  );
  const text = fs.readFileSync(path.join(dir, 'graph.pbtxt'), 'utf8');
  assert.match(text, /calculator: "ImageGenCalculator"/);
  assert.match(text, /plugin_config: '\{"NUM_STREAMS":"14","CACHE_DIR":"C:\/cache"\}'/);
  const graph = readGraph(dir);
  assert.equal(graph.modelsPath, dir);
  assert.deepEqual(graph.flags, {
    target_device: 'GPU',
    plugin_config: '{"NUM_STREAMS":"14","CACHE_DIR":"C:/cache"}',
    max_resolution: '3000x4000',
    default_resolution: '300x400',
    max_num_images_per_prompt: '7',
    default_num_inference_steps: '2',
    max_num_inference_steps: '3',
  });
  assert.equal(graph.loras[0].source.path, path.join(dir, 'loras/org/a/a.safetensors'));
  assert.deepEqual(graph.loras[1], { kind: 'composite', alias: 'c', components: [{ alias: 'a', alpha: 0.7 }] });
  // A hand-written graph as export_model.py makes it, with models_path pointing elsewhere; flags override it.
  fs.writeFileSync(
    path.join(dir, 'graph.pbtxt'),
    `input_stream: "HTTP_REQUEST_PAYLOAD:input"
output_stream: "HTTP_RESPONSE_PAYLOAD:output"
node: {
  name: "ImageGenExecutor"
  calculator: "ImageGenCalculator"
  input_side_packet: "IMAGE_GEN_NODE_RESOURCES:pipes"
  node_options: {
    [type.googleapis.com / mediapipe.ImageGenCalculatorOptions]: {
      models_path: "./model"  # relative to the graph
      device: "CPU"
      resolution: "512x512 256x256"
      max_num_inference_steps: 40
    }
  }
}
`,
  );
  const entry = modelEntry('sd', dir, { max_num_inference_steps: '30' });
  assert.equal(entry.path, path.join(dir, 'model'));
  assert.deepEqual(entry.flags, { target_device: 'CPU', resolution: '512x512 256x256', max_num_inference_steps: '30' });
  assert.deepEqual(parsePbtxt('a: 1 b { c: "x" c: \'y\' } d: true'), { a: [1], b: [{ c: ['x', 'y'] }], d: [true] });
});

test('the binary: --help lists the flags and exits 0; bad input exits non-zero with the reason', async () => {
  const help = await runCli(['--help']);
  assert.equal(help.status, 0);
  for (const flag of [
    '--rest_port',
    '--rest_bind_address',
    '--model_repository_path',
    '--task',
    '--source_model',
    '--model_name',
    '--model_path',
    '--pull',
    '--overwrite_models',
    '--target_device',
    '--plugin_config',
    '--cache_dir',
    '--resolution',
    '--max_resolution',
    '--default_resolution',
    '--num_images_per_prompt',
    '--guidance_scale',
    '--max_num_images_per_prompt',
    '--default_num_inference_steps',
    '--max_num_inference_steps',
    '--num_streams',
    '--source_loras',
    '--api_key_file',
    '--log_level',
    '--config_path',
    '--weight-format',
    '--extra_quantization_params',
    '--max_concurrency',
    '--max_queue_size',
    '--queue_timeout',
    '--default_rng_seed',
    '--no_png_metadata',
    '--image_url_ttl',
    '--public_url',
    '--variation_prompt',
    '--shutdown_timeout',
    '--metrics_enable',
  ]) {
    assert.ok(help.stdout.includes(flag), flag);
  }
  assert.equal(help.stdout, `${helpText()}\n`);
  const unknown = await runCli(['--x', 'val']);
  assert.equal(unknown.status, 2);
  assert.match(unknown.stderr, /unknown option '--x'/);
  const badValue = await runCli(['--num_streams', '0']);
  assert.equal(badValue.status, 2);
  assert.match(badValue.stderr, /num_streams must be greater than 0/);
  const missing = await runCli(['--model_name', 'm', '--model_path', path.join(os.tmpdir(), 'no-such-model-dir')]);
  assert.equal(missing.status, 2);
  assert.match(missing.stderr, /does not exist/);
  const notModel = await runCli(['--model_name', 'm', '--model_path', tmp('empty')]);
  assert.equal(notModel.status, 2);
  assert.match(notModel.stderr, /no model_index\.json/);
  const version = await runCli(['--version']);
  assert.equal(version.status, 0);
  assert.match(version.stdout, /^ov-diffusion \d+\.\d+\.\d+\nOpenVINO /);
});

test('the request timeout flags and --metrics_api_key: defaults, values and errors', () => {
  const defaults = parse([]);
  assert.deepEqual(
    [defaults.headersTimeoutSeconds, defaults.requestTimeoutSeconds, defaults.bodyTimeoutSeconds, defaults.metricsApiKey],
    [60, 300, 30, false],
  );
  const set = parse(['--headers_timeout', '5', '--request_timeout=0', '--body_timeout', '2.5', '--metrics_api_key']);
  assert.deepEqual([set.headersTimeoutSeconds, set.requestTimeoutSeconds, set.bodyTimeoutSeconds, set.metricsApiKey], [5, 0, 2.5, true]);
  rejects(['--headers_timeout', '0'], /--headers_timeout must be more than 0/);
  rejects(['--request_timeout', '-1'], /request_timeout must be a number of seconds >= 0/);
  rejects(['--body_timeout', 'soon'], /body_timeout must be a number of seconds >= 0/);
  rejects(['--metrics_api_key=maybe'], /takes no value/);
});

test('every flag of --help is documented in docs/server.md', () => {
  const doc = fs.readFileSync(path.join(__dirname, '..', 'docs', 'server.md'), 'utf8');
  const flags = [...helpText().matchAll(/^ {2}--([\w-]+)/gm)].map((m) => m[1]);
  assert.ok(flags.length > 40, `${flags.length} flags`);
  const missing = flags.filter((flag) => !doc.includes(`--${flag}`));
  assert.deepEqual(missing, []);
});
