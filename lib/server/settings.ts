// Per-model serving settings: the OVMS image-generation options (from the command line, a config file entry or a
// graph.pbtxt), checked with OVMS's graph-load rules, and turned into library load options and request limits.
import type { LoadOptions } from '../diffusion-model';

/** The per-model option names, as OVMS spells them on the command line and in graph.pbtxt. */
export const MODEL_OPTION_NAMES = [
  'target_device',
  'plugin_config',
  'cache_dir',
  'resolution',
  'max_resolution',
  'default_resolution',
  'num_images_per_prompt',
  'guidance_scale',
  'max_num_images_per_prompt',
  'default_num_inference_steps',
  'max_num_inference_steps',
  'default_guidance_scale',
  'deepcache_interval',
  'deepcache_branch',
  'num_streams',
  'source_loras',
  'max_concurrency',
  'max_queue_size',
  'queue_timeout',
] as const;
export type ModelOptionName = (typeof MODEL_OPTION_NAMES)[number];
/** Raw option values as text, before validation. */
export type ModelFlags = Partial<Record<ModelOptionName, string>>;

export interface Size {
  width: number;
  height: number;
}

export interface ModelSettings {
  device?: LoadOptions['device'];
  properties: Record<string, string | number | boolean>;
  /** The allowed request sizes (from --resolution); empty = any size up to maxResolution. */
  resolutions: Size[];
  maxResolution: Size;
  defaultResolution?: Size;
  maxNumImagesPerPrompt: number;
  defaultNumInferenceSteps: number;
  /** guidance_scale when a request gives none; undefined = the model's own default. */
  defaultGuidanceScale?: number;
  maxNumInferenceSteps: number;
  /** Set: the UNet is loaded with DeepCache, and this is deepcache_interval when a request gives none. */
  deepcacheInterval?: number;
  /** With deepcacheInterval: where DeepCache cuts the UNet (LoadOptions.deepcache.branch); default 0. */
  deepcacheBranch?: number;
  /** With exactly one --resolution, the only n and guidance_scale a request may ask for. */
  staticNumImagesPerPrompt?: number;
  staticGuidanceScale?: number;
  /** With exactly one --resolution: the static shapes the model is compiled for (OVMS reshapes the same way). */
  reshape?: { width: number; height: number; numImagesPerPrompt: number; guidanceScale?: number };
  maxConcurrency: number;
  /** Requests that may wait for a slot beyond maxConcurrency; more get 429. */
  maxQueue: number;
  /** Longest wait for a slot (or for the model to load), in ms; 0 = no limit. */
  queueTimeoutMs: number;
}

export const DEFAULTS = {
  maxResolution: { width: 4096, height: 4096 },
  maxNumImagesPerPrompt: 10,
  defaultNumInferenceSteps: 50,
  maxNumInferenceSteps: 100,
  maxConcurrency: 2,
  maxQueue: 32,
  queueTimeoutSeconds: 300,
};
/** OVMS compares request values with these when no static value is configured. */
const STATIC_DEFAULT_GUIDANCE = 7.5;

export function parseResolution(name: string, text: string): Size {
  const match = /^(\d+)x(\d+)$/.exec(text);
  if (!match) throw new Error(`${name}: '${text}' is not WxH, e.g. 512x512`);
  const width = Number(match[1]);
  const height = Number(match[2]);
  if (!(width > 0 && height > 0) || !Number.isSafeInteger(width) || !Number.isSafeInteger(height))
    throw new Error(`${name}: width and height in '${text}' must be greater than 0`);
  return { width, height };
}

export function parsePositiveInt(name: string, text: string): number {
  if (!/^\d+$/.test(text.trim()) || Number(text) > 0xffffffff) throw new Error(`${name} must be a positive integer (got '${text}')`);
  const value = Number(text);
  if (value <= 0) throw new Error(`${name} must be greater than 0`);
  return value;
}

export function parseNonNegativeInt(name: string, text: string): number {
  if (!/^\d+$/.test(text.trim()) || Number(text) > 0xffffffff) throw new Error(`${name} must be a non-negative integer (got '${text}')`);
  return Number(text);
}

/** Seconds, fractions allowed; 0 is allowed (callers give it a meaning, e.g. "no limit"). */
export function parseSeconds(name: string, text: string): number {
  const value = Number(text);
  if (text.trim() === '' || !Number.isFinite(value) || value < 0 || value > 365 * 24 * 3600)
    throw new Error(`${name} must be a number of seconds >= 0 (got '${text}')`);
  return value;
}

export function parseFloatValue(name: string, text: string): number {
  const value = Number(text);
  if (text.trim() === '' || !Number.isFinite(value)) throw new Error(`${name} must be a number (got '${text}')`);
  return value;
}

export function parsePluginConfig(text: string): Record<string, string | number | boolean> {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new Error(`plugin_config is not valid JSON: ${(error as Error).message}`, { cause: error });
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw new Error('plugin_config must be a JSON object, e.g. {"PERFORMANCE_HINT":"LATENCY"}');
  for (const [key, v] of Object.entries(value)) {
    if (!['string', 'number', 'boolean'].includes(typeof v))
      throw new Error(`plugin_config: the value of ${key} must be a string, a number or a boolean`);
  }
  return value as Record<string, string | number | boolean>;
}

const sizeText = (s: Size) => `${s.width}x${s.height}`;

/** Whether any submodel runs on an NPU: it needs static shapes, and its LoRA adapters are fused in at load. */
export function onNpu(device: LoadOptions['device']): boolean {
  const devices = typeof device === 'string' ? [device] : device ? Object.values(device) : [];
  return devices.some((d) => d?.includes('NPU'));
}

/** Splits the device string into one or three devices, like OVMS (extra spaces collapse; other counts fail). */
export function parseDevice(text: string): LoadOptions['device'] {
  const tokens = text.trim().split(/\s+/).filter(Boolean);
  if (tokens.length === 1) return tokens[0];
  if (tokens.length === 3) return { textEncoder: tokens[0], denoiser: tokens[1], vae: tokens[2] };
  throw new Error(`target_device must be one device or three (text encoder, denoiser, VAE), got ${tokens.length}: '${text}'`);
}

/** Validates the raw options together (OVMS's graph-load rules) and builds the settings. Throws Error with the reason. */
export function buildModelSettings(flags: ModelFlags): ModelSettings {
  const device = flags.target_device !== undefined ? parseDevice(flags.target_device) : undefined;
  const properties: ModelSettings['properties'] = flags.plugin_config !== undefined ? parsePluginConfig(flags.plugin_config) : {};
  if (flags.cache_dir !== undefined) {
    if ('CACHE_DIR' in properties) throw new Error('Doubled CACHE_DIR parameter in plugin config.');
    properties.CACHE_DIR = flags.cache_dir.replace(/\\/g, '/');
  }
  const numStreams = flags.num_streams !== undefined ? parsePositiveInt('num_streams', flags.num_streams) : undefined;
  if (numStreams !== undefined) {
    if ('NUM_STREAMS' in properties && numStreams !== 1) throw new Error('Doubled NUM_STREAMS parameter in plugin config.');
    properties.NUM_STREAMS = String(numStreams);
  }

  const resolutions: Size[] = [];
  if (flags.resolution !== undefined) {
    for (const entry of flags.resolution.trim().split(/\s+/).filter(Boolean)) {
      const size = parseResolution('resolution', entry);
      if (resolutions.some((r) => r.width === size.width && r.height === size.height))
        throw new Error(`resolution: ${entry} is listed twice`);
      resolutions.push(size);
    }
    if (!resolutions.length) throw new Error('resolution: give one or more WxH sizes');
  }
  const maxResolution =
    flags.max_resolution !== undefined ? parseResolution('max_resolution', flags.max_resolution) : DEFAULTS.maxResolution;
  let defaultResolution =
    flags.default_resolution !== undefined ? parseResolution('default_resolution', flags.default_resolution) : undefined;
  const staticNumImagesPerPrompt =
    flags.num_images_per_prompt !== undefined ? parsePositiveInt('num_images_per_prompt', flags.num_images_per_prompt) : undefined;
  const staticGuidanceScale = flags.guidance_scale !== undefined ? parseFloatValue('guidance_scale', flags.guidance_scale) : undefined;

  if ((staticNumImagesPerPrompt !== undefined || staticGuidanceScale !== undefined) && resolutions.length !== 1)
    throw new Error(
      'num_images_per_prompt and guidance_scale fix the batch and guidance of a static shape: they need exactly one --resolution',
    );
  if (flags.max_resolution !== undefined && resolutions.length)
    throw new Error('max_resolution cannot be combined with resolution: the resolution list already bounds the sizes');
  if (flags.max_num_images_per_prompt !== undefined && resolutions.length === 1)
    throw new Error('max_num_images_per_prompt cannot be combined with a single resolution (a static shape); use num_images_per_prompt');
  if (onNpu(device) && resolutions.length !== 1) throw new Error('NPU needs a static shape: give exactly one --resolution');
  if (defaultResolution && (defaultResolution.width > maxResolution.width || defaultResolution.height > maxResolution.height))
    throw new Error(`default_resolution ${sizeText(defaultResolution)} exceeds max_resolution ${sizeText(maxResolution)}`);
  if (resolutions.length) {
    if (defaultResolution && !resolutions.some((r) => r.width === defaultResolution!.width && r.height === defaultResolution!.height))
      throw new Error(
        `default_resolution ${sizeText(defaultResolution)} is not one of the resolutions ${resolutions.map(sizeText).join(' ')}`,
      );
    defaultResolution ??= resolutions[0];
  }
  const maxConcurrency =
    flags.max_concurrency !== undefined
      ? parsePositiveInt('max_concurrency', flags.max_concurrency)
      : (numStreams ?? DEFAULTS.maxConcurrency);
  const maxQueue = flags.max_queue_size !== undefined ? parseNonNegativeInt('max_queue_size', flags.max_queue_size) : DEFAULTS.maxQueue;
  const queueTimeoutMs =
    1000 * (flags.queue_timeout !== undefined ? parseSeconds('queue_timeout', flags.queue_timeout) : DEFAULTS.queueTimeoutSeconds);
  const maxNumInferenceSteps =
    flags.max_num_inference_steps !== undefined
      ? parsePositiveInt('max_num_inference_steps', flags.max_num_inference_steps)
      : DEFAULTS.maxNumInferenceSteps;
  const defaultNumInferenceSteps =
    flags.default_num_inference_steps !== undefined
      ? parsePositiveInt('default_num_inference_steps', flags.default_num_inference_steps)
      : Math.min(DEFAULTS.defaultNumInferenceSteps, maxNumInferenceSteps);
  if (defaultNumInferenceSteps > maxNumInferenceSteps)
    throw new Error(`default_num_inference_steps ${defaultNumInferenceSteps} exceeds max_num_inference_steps ${maxNumInferenceSteps}`);
  const defaultGuidanceScale =
    flags.default_guidance_scale !== undefined ? parseFloatValue('default_guidance_scale', flags.default_guidance_scale) : undefined;
  if (defaultGuidanceScale !== undefined && defaultGuidanceScale < 0)
    throw new Error(`default_guidance_scale must be >= 0 (got ${defaultGuidanceScale})`);
  if (defaultGuidanceScale !== undefined && resolutions.length === 1)
    throw new Error('default_guidance_scale cannot be combined with one --resolution: guidance_scale fixes the guidance of a static shape');

  const deepcacheInterval =
    flags.deepcache_interval !== undefined ? parsePositiveInt('deepcache_interval', flags.deepcache_interval) : undefined;
  const deepcacheBranch =
    flags.deepcache_branch !== undefined ? parseNonNegativeInt('deepcache_branch', flags.deepcache_branch) : undefined;
  if (deepcacheBranch !== undefined && deepcacheInterval === undefined)
    throw new Error('deepcache_branch needs --deepcache_interval (which loads the model with DeepCache)');

  return {
    device,
    properties,
    resolutions,
    maxResolution: resolutions.length
      ? { width: Math.max(...resolutions.map((r) => r.width)), height: Math.max(...resolutions.map((r) => r.height)) }
      : maxResolution,
    defaultResolution,
    maxNumImagesPerPrompt:
      flags.max_num_images_per_prompt !== undefined
        ? parsePositiveInt('max_num_images_per_prompt', flags.max_num_images_per_prompt)
        : (staticNumImagesPerPrompt ?? DEFAULTS.maxNumImagesPerPrompt),
    defaultNumInferenceSteps,
    maxNumInferenceSteps,
    defaultGuidanceScale,
    deepcacheInterval,
    deepcacheBranch,
    staticNumImagesPerPrompt: resolutions.length === 1 ? (staticNumImagesPerPrompt ?? 1) : undefined,
    staticGuidanceScale: resolutions.length === 1 ? (staticGuidanceScale ?? STATIC_DEFAULT_GUIDANCE) : undefined,
    reshape:
      resolutions.length === 1
        ? {
            ...resolutions[0],
            numImagesPerPrompt: staticNumImagesPerPrompt ?? 1,
            ...(staticGuidanceScale !== undefined ? { guidanceScale: staticGuidanceScale } : {}),
          }
        : undefined,
    maxConcurrency,
    maxQueue,
    queueTimeoutMs,
  };
}

export function loadOptions(settings: ModelSettings): LoadOptions {
  const options: LoadOptions = {
    device: settings.device,
    properties: settings.properties,
    maxConcurrency: settings.maxConcurrency,
    maxQueue: settings.maxQueue,
  };
  if (settings.queueTimeoutMs > 0) options.queueTimeoutMs = settings.queueTimeoutMs;
  if (settings.reshape) options.reshape = settings.reshape;
  if (settings.deepcacheInterval !== undefined) options.deepcache = { branch: settings.deepcacheBranch ?? 0 };
  return options;
}

export { sizeText };
