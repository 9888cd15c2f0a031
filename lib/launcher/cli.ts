// Command-line parsing and validation, with OVMS's flag names, meanings and messages. Pure: no I/O except the
// existence check of local LoRA files, which OVMS also does while parsing.
import { DEFAULT_TIMEOUTS } from '../server/body';
import { parseMemorySize } from '../server/memory';
import { JOB_DEFAULTS } from '../server/jobs';
import { LOG_LEVELS, LogLevel } from '../server/log';
import type { LoraSpec } from './lora-sources';
import { parseSourceLoras } from './lora-sources';
import {
  MODEL_OPTION_NAMES,
  ModelFlags,
  parsePluginConfig,
  parseResolution,
  parsePositiveInt,
  parseFloatValue,
  parseNonNegativeInt,
  parseSeconds,
} from '../server/settings';

export const DEFAULT_REST_PORT = 8000;
/** How long images of response_format=url stay downloadable (OpenAI's URLs last 60 minutes). */
export const DEFAULT_IMAGE_URL_TTL_SECONDS = 3600;
/** SIGTERM: how long in-flight requests may run on before they are cancelled (under Kubernetes' 30 s kill). */
export const DEFAULT_SHUTDOWN_TIMEOUT_SECONDS = 20;
/** Receiving requests (lib/server/body.ts): headers, a whole body, the longest pause within a body. */
export const DEFAULT_HEADERS_TIMEOUT_SECONDS = DEFAULT_TIMEOUTS.headersTimeoutMs / 1000;
export const DEFAULT_REQUEST_TIMEOUT_SECONDS = DEFAULT_TIMEOUTS.requestTimeoutMs / 1000;
export const DEFAULT_BODY_TIMEOUT_SECONDS = DEFAULT_TIMEOUTS.bodyTimeoutMs / 1000;
/** --memory_budget's default: this share of the machine's (or the container's) memory. */
export const DEFAULT_MEMORY_BUDGET_SHARE = 0.9;
const OVMS_TASKS = ['text_generation', 'embeddings', 'rerank', 'text2speech', 'speech2text'];
export const WEIGHT_FORMATS = ['fp32', 'fp16', 'int8', 'int4', 'mxfp4', 'nf4'];

export class CliError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CliError';
  }
}

export interface CliOptions {
  help: boolean;
  version: boolean;
  restPort: number;
  restBindAddress: string;
  restWorkers?: number;
  modelRepositoryPath?: string;
  sourceModel?: string;
  modelName?: string;
  modelPath?: string;
  pull: boolean;
  overwriteModels: boolean;
  weightFormat?: string;
  extraQuantizationParams?: string;
  configPath?: string;
  apiKeyFile?: string;
  logLevel: LogLevel;
  /** The seed of requests without rng_seed: undefined = a fresh random one per request; 42 = OVMS's behaviour. */
  defaultRngSeed?: number;
  /** Write the generation parameters into PNG outputs (a "parameters" tEXt chunk). */
  pngMetadata: boolean;
  /** Serve the web playground at / (off with --no_playground). */
  playground: boolean;
  imageUrlTtlSeconds: number;
  /** Background jobs kept at once (0: background: true is refused). */
  maxJobs: number;
  /** How long a finished background job (status, events, images) is kept. */
  jobTtlSeconds: number;
  /** Base of the image URLs of response_format=url (default: from the request's Host header). */
  publicUrl?: string;
  /** The prompt of /images/variations requests that give none. */
  variationPrompt: string;
  shutdownTimeoutSeconds: number;
  headersTimeoutSeconds: number;
  /** 0 = no limit. */
  requestTimeoutSeconds: number;
  /** 0 = no limit. */
  bodyTimeoutSeconds: number;
  /** /metrics needs the API key too (when one is set). */
  metricsApiKey: boolean;
  /** Memory admission budget in bytes; 0 = off; undefined = the default (a share of the machine's memory). */
  memoryBudgetBytes?: number;
  /** Options of the one model given on the command line (with --config_path they come from the file). */
  model: ModelFlags;
  loras: LoraSpec[];
}

type Kind = 'bool' | 'string';
interface FlagSpec {
  kind: Kind;
  arg?: string;
  help: string;
  group: 'server' | 'serving' | 'model' | 'pull' | 'image';
}

const FLAGS: Record<string, FlagSpec> = {
  help: { kind: 'bool', group: 'server', help: 'Show this help and exit.' },
  version: { kind: 'bool', group: 'server', help: 'Show the version and exit.' },
  rest_port: {
    kind: 'string',
    arg: 'PORT',
    group: 'server',
    help: `HTTP port (default ${DEFAULT_REST_PORT}; 0 picks a free port and logs it).`,
  },
  rest_bind_address: { kind: 'string', arg: 'ADDRESS', group: 'server', help: 'Address to listen on (default 0.0.0.0).' },
  rest_workers: {
    kind: 'string',
    arg: 'N',
    group: 'server',
    help: 'Accepted for OVMS compatibility; generation never blocks the HTTP threads here.',
  },
  config_path: {
    kind: 'string',
    arg: 'FILE',
    group: 'server',
    help: 'JSON file listing several models to serve (OVMS config.json format).',
  },
  api_key_file: {
    kind: 'string',
    arg: 'FILE',
    group: 'server',
    help: 'File whose first line is the API key clients must send as "Authorization: Bearer <key>" (else env API_KEY).',
  },
  log_level: { kind: 'string', arg: 'LEVEL', group: 'server', help: 'TRACE, DEBUG, INFO (default), WARNING or ERROR.' },
  metrics_enable: { kind: 'bool', group: 'server', help: 'Accepted for OVMS command lines; Prometheus /metrics is always served.' },
  metrics_api_key: {
    kind: 'bool',
    group: 'server',
    help: '/metrics needs the API key as well (default: open, like the health checks, for scrapers on the inside network).',
  },
  headers_timeout: {
    kind: 'string',
    arg: 'SECONDS',
    group: 'server',
    help: `Longest wait for a request's headers, then 408 (default ${DEFAULT_HEADERS_TIMEOUT_SECONDS}).`,
  },
  request_timeout: {
    kind: 'string',
    arg: 'SECONDS',
    group: 'server',
    help: `Longest time to receive a request body, then 408; 0 = no limit (default ${DEFAULT_REQUEST_TIMEOUT_SECONDS}). Generation time is not counted.`,
  },
  memory_budget: {
    kind: 'string',
    arg: 'SIZE',
    group: 'server',
    help: `Memory the server may use (models and request peaks), e.g. 12GB; requests that cannot fit are refused before they start; 0 = off (default ${DEFAULT_MEMORY_BUDGET_SHARE * 100}% of the machine's memory).`,
  },
  body_timeout: {
    kind: 'string',
    arg: 'SECONDS',
    group: 'server',
    help: `Longest pause while a request body is received, then 408; 0 = no limit (default ${DEFAULT_BODY_TIMEOUT_SECONDS}).`,
  },
  default_rng_seed: {
    kind: 'string',
    arg: 'N|random',
    group: 'serving',
    help: 'Seed of requests without rng_seed: random (default, a fresh one per request) or a number (42 = OVMS).',
  },
  no_png_metadata: { kind: 'bool', group: 'serving', help: 'Do not write prompt, seed, steps, scheduler and model into PNG outputs.' },
  no_playground: { kind: 'bool', group: 'serving', help: 'Do not serve the web playground page at / (the API is unchanged).' },
  image_url_ttl: {
    kind: 'string',
    arg: 'SECONDS',
    group: 'serving',
    help: `How long response_format=url images stay downloadable (default ${DEFAULT_IMAGE_URL_TTL_SECONDS}).`,
  },
  max_jobs: {
    kind: 'string',
    arg: 'N',
    group: 'serving',
    help: `Background jobs (background: true) kept at once, finished ones included; 0 turns jobs off (default ${JOB_DEFAULTS.maxJobs}).`,
  },
  job_ttl: {
    kind: 'string',
    arg: 'SECONDS',
    group: 'serving',
    help: `How long a finished background job and its images are kept (default ${JOB_DEFAULTS.ttlSeconds}).`,
  },
  public_url: {
    kind: 'string',
    arg: 'URL',
    group: 'serving',
    help: "Base of those image URLs, e.g. https://images.example.com (default: the request's Host).",
  },
  variation_prompt: {
    kind: 'string',
    arg: 'TEXT',
    group: 'serving',
    help: 'Prompt of /images/variations requests that give none (default empty).',
  },
  shutdown_timeout: {
    kind: 'string',
    arg: 'SECONDS',
    group: 'serving',
    help: `SIGTERM: in-flight requests may finish for this long, then are cancelled (default ${DEFAULT_SHUTDOWN_TIMEOUT_SECONDS}).`,
  },
  model_name: { kind: 'string', arg: 'NAME', group: 'model', help: 'Name clients use in the "model" field (default: --source_model).' },
  model_path: {
    kind: 'string',
    arg: 'DIR',
    group: 'model',
    help: 'Local model folder in OpenVINO format (optimum-intel layout); needs --model_name.',
  },
  task: { kind: 'string', arg: 'TASK', group: 'model', help: 'image_generation (the only task this server has; optional).' },
  max_concurrency: {
    kind: 'string',
    arg: 'N',
    group: 'model',
    help: 'Requests one model runs at once; more wait in order (default: --num_streams, else 2). Not in OVMS.',
  },
  max_queue_size: {
    kind: 'string',
    arg: 'N',
    group: 'model',
    help: 'Requests that may wait for one model beyond --max_concurrency; more get 429 (default 32). Not in OVMS.',
  },
  queue_timeout: {
    kind: 'string',
    arg: 'SECONDS',
    group: 'model',
    help: 'Longest wait for a free slot before a 503 queue_timeout; 0 = no limit (default 300). Not in OVMS.',
  },
  source_model: {
    kind: 'string',
    arg: 'REPO',
    group: 'pull',
    help: 'Hugging Face repository to pull into --model_repository_path, then serve (unless --pull).',
  },
  model_repository_path: {
    kind: 'string',
    arg: 'DIR',
    group: 'pull',
    help: 'Where pulled models go (default: env OVMS_MODEL_REPOSITORY_PATH).',
  },
  pull: { kind: 'bool', group: 'pull', help: 'Only download the model (and its LoRA files), then exit.' },
  overwrite_models: { kind: 'bool', group: 'pull', help: 'Delete and download again a model (and LoRA files) already present.' },
  'weight-format': {
    kind: 'string',
    arg: 'FMT',
    group: 'pull',
    help: `Convert a non-OpenVINO source with optimum-cli at this precision (${WEIGHT_FORMATS.join(', ')}; default int8).`,
  },
  extra_quantization_params: { kind: 'string', arg: 'ARGS', group: 'pull', help: 'Extra optimum-cli arguments, e.g. "--group-size 64".' },
  target_device: {
    kind: 'string',
    arg: 'DEVICE',
    group: 'image',
    help: 'One device, or three: text encoder, denoiser, VAE (e.g. "GPU GPU CPU"). Default CPU.',
  },
  plugin_config: {
    kind: 'string',
    arg: 'JSON',
    group: 'image',
    help: 'OpenVINO properties for every submodel, e.g. \'{"PERFORMANCE_HINT":"LATENCY"}\'.',
  },
  cache_dir: { kind: 'string', arg: 'DIR', group: 'image', help: 'OpenVINO compiled-model cache folder.' },
  resolution: {
    kind: 'string',
    arg: '"WxH ..."',
    group: 'image',
    help: 'One size: the only size served; several: the allowed sizes (the first is the default).',
  },
  max_resolution: {
    kind: 'string',
    arg: 'WxH',
    group: 'image',
    help: 'Largest width and height a request may ask for (default 4096x4096; enforced).',
  },
  default_resolution: {
    kind: 'string',
    arg: 'WxH',
    group: 'image',
    help: "Size used when a request gives none (default: the model's own).",
  },
  num_images_per_prompt: { kind: 'string', arg: 'N', group: 'image', help: 'With one --resolution: the only n served.' },
  guidance_scale: { kind: 'string', arg: 'G', group: 'image', help: 'With one --resolution: the only guidance_scale served.' },
  max_num_images_per_prompt: { kind: 'string', arg: 'N', group: 'image', help: 'Largest n per request (default 10).' },
  default_num_inference_steps: { kind: 'string', arg: 'N', group: 'image', help: 'Steps when a request gives none (default 50).' },
  max_num_inference_steps: { kind: 'string', arg: 'N', group: 'image', help: 'Largest num_inference_steps per request (default 100).' },
  default_guidance_scale: {
    kind: 'string',
    arg: 'G',
    group: 'image',
    help: "guidance_scale when a request gives none (default: the model's, e.g. 7.5 for SD 1.x; the demo model: 2).",
  },
  deepcache_interval: {
    kind: 'string',
    arg: 'N',
    group: 'image',
    help: 'UNet models: load with DeepCache; requests without deepcache_interval run the whole UNet every N-th step, the shallow part between (3 is common; 1 = no caching, requests may still ask). Not in OVMS.',
  },
  deepcache_branch: {
    kind: 'string',
    arg: 'B',
    group: 'image',
    help: 'With --deepcache_interval: where the UNet is cut (0, the default: only the last up layer runs on cached steps, fastest; higher: more layers, slower, closer to the uncached image).',
  },
  num_streams: { kind: 'string', arg: 'N', group: 'image', help: 'OpenVINO NUM_STREAMS.' },
  source_loras: {
    kind: 'string',
    arg: 'LIST',
    group: 'image',
    help: 'LoRA adapters: "alias=org/repo@file.safetensors[:alpha],alias2=https://.../f.safetensors,alias3=/path/f.safetensors,blend=@alias:0.5+@alias2:0.4".',
  },
};

const GROUP_TITLES: Record<FlagSpec['group'], string> = {
  server: 'Server',
  serving: 'Serving (not in OVMS)',
  model: 'Model',
  pull: 'Pulling from the Hugging Face hub',
  image: 'Image generation (per model)',
};

export function helpText(): string {
  const lines = [
    'Usage: ov-diffusion [options]',
    '',
    'An OpenAI-compatible image generation server on OpenVINO, with the OpenVINO Model Server (OVMS) flags.',
    'With no model options it serves a tiny random-weight demo model.',
    '',
    'Examples:',
    '  ov-diffusion --rest_port 8000 --model_repository_path ./models --source_model OpenVINO/stable-diffusion-v1-5-int8-ov',
    '  ov-diffusion --rest_port 8000 --model_name sd15 --model_path ./models/OpenVINO/stable-diffusion-v1-5-int8-ov',
    '  ov-diffusion --rest_port 8000 --config_path ./models/config.json',
  ];
  for (const group of Object.keys(GROUP_TITLES) as Array<FlagSpec['group']>) {
    lines.push('', `${GROUP_TITLES[group]}:`);
    for (const [name, spec] of Object.entries(FLAGS)) {
      if (spec.group !== group) continue;
      const left = `  --${name}${spec.arg ? ` ${spec.arg}` : ''}`;
      lines.push(left.length < 40 ? `${left.padEnd(40)}${spec.help}` : `${left}\n${' '.repeat(40)}${spec.help}`);
    }
  }
  lines.push('', 'Environment: HF_ENDPOINT, HF_TOKEN (pulling), OVMS_MODEL_REPOSITORY_PATH, API_KEY.', 'Docs: docs/server.md');
  return lines.join('\n');
}

/** Splits argv into flag values; accepts "--flag value" and "--flag=value". */
function tokenize(argv: string[]): Map<string, string | true> {
  const values = new Map<string, string | true>();
  for (let i = 0; i < argv.length; i++) {
    const token = argv[i];
    if (!token.startsWith('--') || token === '--') throw new CliError(`unexpected argument '${token}' (options start with --; see --help)`);
    const eq = token.indexOf('=');
    const name = token.slice(2, eq < 0 ? undefined : eq);
    const spec = FLAGS[name];
    if (!spec) {
      const hint = Object.keys(FLAGS).find((known) => known.replace(/[-_]/g, '') === name.replace(/[-_]/g, '').toLowerCase());
      throw new CliError(`unknown option '--${name}'${hint ? ` (did you mean --${hint}?)` : ''}; see --help`);
    }
    if (values.has(name)) throw new CliError(`option '--${name}' is given more than once`);
    if (spec.kind === 'bool') {
      const text = eq < 0 ? 'true' : token.slice(eq + 1);
      if (text !== 'true' && text !== 'false') throw new CliError(`option '--${name}' takes no value, or =true / =false (got '${text}')`);
      if (text === 'true') values.set(name, true);
      continue;
    }
    let value: string;
    if (eq >= 0) value = token.slice(eq + 1);
    else {
      if (i + 1 >= argv.length || (argv[i + 1].startsWith('--') && argv[i + 1].length > 2 && FLAGS[argv[i + 1].slice(2).split('=')[0]]))
        throw new CliError(`option '--${name}' needs a value${spec.arg ? ` (${spec.arg})` : ''}`);
      value = argv[++i];
    }
    values.set(name, value);
  }
  return values;
}

function rngSeed(text: string | undefined): number | undefined {
  if (text === undefined || text.toLowerCase() === 'random') return undefined;
  if (!/^\d+$/.test(text) || !Number.isSafeInteger(Number(text)))
    throw new CliError(`--default_rng_seed must be random or an integer 0..${Number.MAX_SAFE_INTEGER} (got '${text}')`);
  return Number(text);
}

function publicUrl(text: string | undefined): string | undefined {
  if (text === undefined) return undefined;
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new CliError(`--public_url must be an absolute http(s) URL, e.g. https://images.example.com (got '${text}')`);
  }
  if (!/^https?:$/.test(url.protocol)) throw new CliError(`--public_url must be an http or https URL (got '${text}')`);
  return text.replace(/\/+$/, '');
}

function port(text: string): number {
  if (!/^\d+$/.test(text) || Number(text) > 65535) throw new CliError(`--rest_port must be a port number 0-65535 (got '${text}')`);
  return Number(text);
}

/** Parses argv (without node and the script) and the environment into validated options. Throws CliError. */
export function parseArgs(argv: string[], env: NodeJS.ProcessEnv = process.env): CliOptions {
  const values = tokenize(argv);
  const str = (name: string) => {
    const v = values.get(name);
    if (v === undefined) return undefined;
    if (typeof v !== 'string') throw new CliError(`option '--${name}' needs a value`);
    if (v.trim() === '' && name !== 'source_loras' && name !== 'variation_prompt')
      throw new CliError(`option '--${name}' must not be empty`);
    return v;
  };
  const flag = (name: string) => values.get(name) === true;
  const wrap = <T>(fn: () => T): T => {
    try {
      return fn();
    } catch (error) {
      if (error instanceof CliError) throw error;
      throw new CliError((error as Error).message);
    }
  };

  const logLevelText = str('log_level') ?? 'INFO';
  const logLevel = LOG_LEVELS.find((level) => level === logLevelText.toUpperCase());
  if (!logLevel) throw new CliError(`--log_level must be one of ${LOG_LEVELS.join(', ')} (got '${logLevelText}')`);

  const task = str('task');
  if (task !== undefined && task !== 'image_generation') {
    if (OVMS_TASKS.includes(task)) throw new CliError(`--task ${task} is not served by ov-diffusion: it serves image_generation only`);
    throw new CliError(`--task parameter unsupported value: '${task}' (ov-diffusion serves image_generation)`);
  }

  const restWorkersText = str('rest_workers');
  const model: ModelFlags = {};
  for (const name of MODEL_OPTION_NAMES) {
    const value = str(name);
    if (value !== undefined) (model as Record<string, string>)[name] = value;
  }
  wrap(() => validateModelFlagSyntax(model));

  const options: CliOptions = {
    help: flag('help'),
    version: flag('version'),
    restPort: values.has('rest_port') ? port(str('rest_port')!) : DEFAULT_REST_PORT,
    restBindAddress: str('rest_bind_address') ?? '0.0.0.0',
    restWorkers: restWorkersText === undefined ? undefined : wrap(() => parsePositiveInt('rest_workers', restWorkersText)),
    modelRepositoryPath: str('model_repository_path') ?? (env.OVMS_MODEL_REPOSITORY_PATH || undefined),
    sourceModel: str('source_model'),
    modelName: str('model_name'),
    modelPath: str('model_path'),
    pull: flag('pull'),
    overwriteModels: flag('overwrite_models'),
    weightFormat: str('weight-format'),
    extraQuantizationParams: str('extra_quantization_params'),
    configPath: str('config_path'),
    apiKeyFile: str('api_key_file'),
    logLevel,
    defaultRngSeed: rngSeed(str('default_rng_seed')),
    pngMetadata: !flag('no_png_metadata'),
    playground: !flag('no_playground'),
    imageUrlTtlSeconds: values.has('image_url_ttl')
      ? wrap(() => parseSeconds('image_url_ttl', str('image_url_ttl')!))
      : DEFAULT_IMAGE_URL_TTL_SECONDS,
    maxJobs: values.has('max_jobs') ? wrap(() => parseNonNegativeInt('max_jobs', str('max_jobs')!)) : JOB_DEFAULTS.maxJobs,
    jobTtlSeconds: values.has('job_ttl') ? wrap(() => parseSeconds('job_ttl', str('job_ttl')!)) : JOB_DEFAULTS.ttlSeconds,
    publicUrl: publicUrl(str('public_url')),
    variationPrompt: (values.get('variation_prompt') as string | undefined) ?? '',
    shutdownTimeoutSeconds: values.has('shutdown_timeout')
      ? wrap(() => parseSeconds('shutdown_timeout', str('shutdown_timeout')!))
      : DEFAULT_SHUTDOWN_TIMEOUT_SECONDS,
    headersTimeoutSeconds: values.has('headers_timeout')
      ? wrap(() => parseSeconds('headers_timeout', str('headers_timeout')!))
      : DEFAULT_HEADERS_TIMEOUT_SECONDS,
    requestTimeoutSeconds: values.has('request_timeout')
      ? wrap(() => parseSeconds('request_timeout', str('request_timeout')!))
      : DEFAULT_REQUEST_TIMEOUT_SECONDS,
    bodyTimeoutSeconds: values.has('body_timeout')
      ? wrap(() => parseSeconds('body_timeout', str('body_timeout')!))
      : DEFAULT_BODY_TIMEOUT_SECONDS,
    metricsApiKey: flag('metrics_api_key'),
    memoryBudgetBytes: values.has('memory_budget') ? wrap(() => parseMemorySize('--memory_budget', str('memory_budget')!)) : undefined,
    model,
    loras: [],
  };
  if (options.help || options.version) return options;
  if (options.headersTimeoutSeconds <= 0) throw new CliError('--headers_timeout must be more than 0 seconds');
  if (options.jobTtlSeconds <= 0) throw new CliError('--job_ttl must be more than 0 seconds (--max_jobs 0 turns jobs off)');
  validateModes(options);
  const device = model.target_device ?? '';
  if (model.source_loras !== undefined) options.loras = wrap(() => parseSourceLoras(model.source_loras!, { device }));
  return options;
}

/** The value checks OVMS does while parsing (the cross-field rules run when the model settings are built). */
export function validateModelFlagSyntax(model: ModelFlags): void {
  for (const name of ['max_resolution', 'default_resolution'] as const) {
    const value = model[name];
    if (value !== undefined && !/^\d+x\d+$/.test(value))
      throw new CliError(`Invalid ${name} format. Expected WxH, e.g., 1024x1024 (got '${value}')`);
    if (value !== undefined) parseResolution(name, value);
  }
  for (const name of [
    'max_num_images_per_prompt',
    'default_num_inference_steps',
    'max_num_inference_steps',
    'num_streams',
    'num_images_per_prompt',
    'max_concurrency',
  ] as const) {
    if (model[name] !== undefined) parsePositiveInt(name, model[name]!);
  }
  if (model.max_queue_size !== undefined) parseNonNegativeInt('max_queue_size', model.max_queue_size);
  if (model.queue_timeout !== undefined) parseSeconds('queue_timeout', model.queue_timeout);
  if (model.guidance_scale !== undefined) parseFloatValue('guidance_scale', model.guidance_scale);
  if (model.plugin_config !== undefined) parsePluginConfig(model.plugin_config);
}

function validateModes(o: CliOptions): void {
  const modelFlags = Object.keys(o.model).filter((name) => name !== 'cache_dir');
  if (o.configPath) {
    const clash = ['source_model', 'model_name', 'model_path', 'pull'].filter((name) =>
      name === 'pull' ? o.pull : (o as unknown as Record<string, unknown>)[camel(name)] !== undefined,
    );
    if (clash.length)
      throw new CliError(
        `Use config_path or model_path with model_name: --config_path cannot be combined with ${clash.map((c) => `--${c}`).join(', ')}`,
      );
    if (modelFlags.length)
      throw new CliError(`--${modelFlags[0]} applies to a single model; with --config_path put it in the model's entry in the config file`);
  }
  if (o.pull && !o.sourceModel && o.modelName && !o.modelPath) o.sourceModel = o.modelName;
  if (!o.sourceModel && o.modelName && !o.modelPath && !o.configPath) {
    if (!o.modelRepositoryPath)
      throw new CliError(
        'Use config_path or model_path with model_name: --model_name needs --model_path, --source_model or --model_repository_path',
      );
    o.sourceModel = o.modelName;
  }
  if (o.pull && !o.sourceModel) throw new CliError('--pull needs --source_model (the Hugging Face repository to download)');
  if (o.modelPath && !o.modelName) throw new CliError('Use config_path or model_path with model_name: --model_path needs --model_name');
  if (o.sourceModel) {
    if (!o.modelRepositoryPath)
      throw new CliError('model_repository_path parameter is required for pull mode (or set OVMS_MODEL_REPOSITORY_PATH)');
    if (!/^[A-Za-z0-9][\w.-]*\/[\w.-]+$/.test(o.sourceModel) || o.sourceModel.includes('..'))
      throw new CliError(
        `--source_model must be a Hugging Face repository id like OpenVINO/stable-diffusion-v1-5-int8-ov (got '${o.sourceModel}')`,
      );
    o.modelName ??= o.sourceModel;
  }
  if (o.weightFormat !== undefined || o.extraQuantizationParams !== undefined) {
    if (!o.sourceModel) throw new CliError('--weight-format and --extra_quantization_params apply to pulling: they need --source_model');
    if (/^openvino\//i.test(o.sourceModel)) throw new CliError('--weight-format parameter unsupported for OpenVINO models.');
  }
  if (o.weightFormat !== undefined && !WEIGHT_FORMATS.includes(o.weightFormat))
    throw new CliError(`--weight-format must be one of ${WEIGHT_FORMATS.join(', ')} (got '${o.weightFormat}')`);
  if (o.overwriteModels && !o.sourceModel) throw new CliError('--overwrite_models applies to pulling: it needs --source_model');
}

function camel(name: string): string {
  return name.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase());
}
