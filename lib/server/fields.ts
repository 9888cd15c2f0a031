// The request fields of /images/generations (JSON) and /images/edits (multipart text parts): types, coercion,
// defaults and limits, mapped onto the library's GenerateOptions. JSON null and empty multipart values mean "default".
import type { GenerateOptions } from '../diffusion-model';
import {
  GENERATION_PARAMETERS,
  PREVIEW_MODES,
  ParameterSpec,
  ParameterType,
  PreviewMode,
  SCHEDULER_NAMES,
  SchedulerName,
} from '../parameters';
import type { OutputFormat } from '../images';
import { badField, shown } from './errors';
import { ModelSettings, Size, sizeText } from './settings';

export type BodyKind = 'json' | 'multipart';
type FieldType = 'string' | 'int' | 'float' | 'bool' | 'object' | 'string_or_bool';

const TYPE_OF_PARAMETER: Record<ParameterType, FieldType> = {
  string: 'string',
  int: 'int',
  float: 'float',
  scheduler: 'string',
  taylorseer: 'object',
};

/** The request fields of the generation parameters (lib/parameters.ts), with the types they are read as. */
type HttpParameter = Extract<(typeof GENERATION_PARAMETERS)[number], { type: 'string' | 'int' | 'float' | 'scheduler' }>;
type ParameterFieldTypes = {
  [P in HttpParameter as P['field']]: P['type'] extends 'int' ? 'int' : P['type'] extends 'float' ? 'float' : 'string';
};
const PARAMETER_FIELDS = GENERATION_PARAMETERS.filter((p): p is HttpParameter => !('http' in p && p.http === false));

/**
 * Every field the server reads: the generation parameters, and the fields of the request itself. Anything else
 * (style, user, ...) is tolerated and ignored; docs/server.md lists them. `background` is two fields in one: a string
 * is OpenAI's transparency choice (auto, opaque; transparent is refused), the boolean true asks for a background job.
 */
export const FIELD_TYPES = {
  ...(Object.fromEntries(PARAMETER_FIELDS.map((p) => [p.field, TYPE_OF_PARAMETER[p.type]])) as ParameterFieldTypes),
  model: 'string',
  prompt: 'string',
  size: 'string',
  n: 'int',
  response_format: 'string',
  lora_alphas: 'object',
  output_format: 'string',
  output_compression: 'int',
  background: 'string_or_bool',
  quality: 'string',
  stream: 'bool',
  partial_images: 'int',
  preview_mode: 'string',
} as const satisfies Record<string, FieldType>;
type FieldName = keyof typeof FIELD_TYPES;
type FieldValue<T extends FieldType> = T extends 'string'
  ? string
  : T extends 'bool'
    ? boolean
    : T extends 'object'
      ? Record<string, number>
      : T extends 'string_or_bool'
        ? string | boolean
        : number;
export type Fields = { [K in FieldName]?: FieldValue<(typeof FIELD_TYPES)[K]> };

const INT = /^[+-]?\d+$/;
const FLOAT = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;
const TYPE_WORDS: Record<FieldType, string> = {
  string: 'a string',
  int: 'an integer',
  float: 'a number',
  bool: 'a boolean',
  object: 'an object',
  string_or_bool: 'a string or a boolean',
};

function parseAlphas(value: unknown, kind: BodyKind): Record<string, number> {
  let object = value;
  if (kind === 'multipart' && typeof value === 'string') {
    try {
      object = JSON.parse(value);
    } catch {
      throw badField('lora_alphas', 'lora_alphas field must be valid JSON, e.g. {"alias": 0.5}');
    }
  }
  if (typeof object !== 'object' || object === null || Array.isArray(object))
    throw badField('lora_alphas', 'lora_alphas must be an object mapping adapter aliases to numbers');
  const out: Record<string, number> = {};
  for (const [key, v] of Object.entries(object)) {
    // Multipart clients that flatten objects send lora_alphas[alias]=0.5, which arrives as text.
    const number = typeof v === 'number' ? v : kind === 'multipart' && typeof v === 'string' && FLOAT.test(v) ? Number(v) : NaN;
    if (!Number.isFinite(number)) throw badField('lora_alphas', `lora_alphas value for ${shown(key)} must be a number, got ${shown(v)}`);
    out[key] = number;
  }
  return out;
}

function coerce(name: FieldName, type: FieldType, value: unknown, kind: BodyKind): unknown {
  if (type === 'object') return parseAlphas(value, kind);
  if (kind === 'multipart') {
    if (Array.isArray(value)) throw badField(name, `${name} is given more than once`);
    if (typeof value !== 'string') throw badField(name, `${name} must be a text field`);
    if (type === 'string') return value;
    if (type === 'string_or_bool') return value === 'true' ? true : value === 'false' ? false : value;
    if (type === 'bool') {
      if (value !== 'true' && value !== 'false') throw badField(name, `${name} must be true or false (got ${shown(value)})`);
      return value === 'true';
    }
    if (!(type === 'int' ? INT : FLOAT).test(value)) throw badField(name, `${name} must be ${TYPE_WORDS[type]} (got ${shown(value)})`);
    return Number(value);
  }
  const ok =
    type === 'string'
      ? typeof value === 'string'
      : type === 'string_or_bool'
        ? typeof value === 'string' || typeof value === 'boolean'
        : type === 'bool'
          ? typeof value === 'boolean'
          : type === 'int'
            ? Number.isInteger(value)
            : typeof value === 'number' && Number.isFinite(value);
  if (!ok) throw badField(name, `${name} must be ${TYPE_WORDS[type]}, got ${shown(value)}`);
  return value;
}

/** Reads the known fields with their types. Multipart empty values and JSON nulls count as absent. */
export function readFields(body: Record<string, unknown>, kind: BodyKind): Fields {
  const fields: Record<string, unknown> = {};
  for (const [name, type] of Object.entries(FIELD_TYPES) as Array<[FieldName, FieldType]>) {
    const value = body[name];
    if (value === undefined || value === null || (kind === 'multipart' && value === '')) continue;
    fields[name] = coerce(name, type, value, kind);
  }
  return fields as Fields;
}

/** The engine's schedulers (LMS_DISCRETE runs DDIM, as in openvino_genai); AUTO = the model folder's own. */
export const SCHEDULERS: readonly SchedulerName[] = SCHEDULER_NAMES;

export type ResponseFormat = 'b64_json' | 'url';

/** OpenAI's quality words; dall-e-3's standard and hd are taken as auto and high. */
export type Quality = 'low' | 'medium' | 'high' | 'auto';
const QUALITY_WORDS: Record<string, Quality> = { low: 'low', medium: 'medium', high: 'high', auto: 'auto', standard: 'auto', hd: 'high' };

/**
 * The step counts of `quality` per model family (by the model folder's pipeline class), the only place they are
 * declared (docs/server.md's table is generated from it). `auto` is the server's default (--default_num_inference_steps);
 * every count is capped at --max_num_inference_steps; num_inference_steps, when given, wins over quality.
 * The first matching row applies.
 */
export const QUALITY_STEPS: ReadonlyArray<{ family: string; prefixes: readonly string[]; low: number; medium: number; high: number }> = [
  { family: 'LCM', prefixes: ['LatentConsistency'], low: 2, medium: 4, high: 8 },
  { family: 'FLUX Fill', prefixes: ['FluxFill'], low: 20, medium: 30, high: 50 },
  { family: 'SD3, FLUX', prefixes: ['StableDiffusion3', 'Flux'], low: 10, medium: 20, high: 28 },
  { family: 'SD 1.x/2.x, SDXL (and any other)', prefixes: [''], low: 15, medium: 30, high: 50 },
];

/** The steps a quality means for a model class (undefined for auto: the server's default applies). */
export function qualitySteps(quality: Quality, className: string, settings: ModelSettings): number | undefined {
  if (quality === 'auto') return undefined;
  const row = QUALITY_STEPS.find((r) => r.prefixes.some((prefix) => className.startsWith(prefix)))!;
  return Math.min(row[quality], settings.maxNumInferenceSteps);
}

export interface ImageRequest {
  prompt: string;
  options: GenerateOptions;
  loraAlphas?: Record<string, number>;
  outputFormat: OutputFormat;
  outputCompression?: number;
  responseFormat: ResponseFormat;
  /** Answer as server-sent events. */
  stream: boolean;
  /** Previews to stream before the final image (0..3). */
  partialImages: number;
  /** How they are made: 'fast' (default; the model's fitted latent-to-RGB map) or 'full' (a VAE decode each). */
  previewMode: PreviewMode;
  /** The quality asked for; low/medium/high set the steps once the model's family is known (qualitySteps). */
  quality: Quality;
  /** background: true: run as a background job (answered 202 with the job). */
  job: boolean;
}

export interface RequestDefaults {
  /** Used when the request gives no prompt (variations); an empty prompt is then allowed. */
  prompt?: string;
}

function parseSize(text: string): Size | undefined {
  if (text === 'auto') return undefined;
  const match = /^(0|[1-9]\d*)x(0|[1-9]\d*)$/.exec(text);
  if (!match) throw badField('size', `size must be WxH (e.g. 512x512) or auto, got ${shown(text)}`);
  const size = { width: Number(match[1]), height: Number(match[2]) };
  if (!(size.width > 0 && size.height > 0) || !Number.isSafeInteger(size.width) || !Number.isSafeInteger(size.height))
    throw badField('size', 'size field values must be greater than 0');
  return size;
}

function range(name: string, value: number | undefined, min: number, max: number, why = '') {
  if (value === undefined) return;
  if (value < min) throw badField(name, `${name} must be at least ${min}${why}, got ${value}`);
  if (value > max) throw badField(name, `${name} must be at most ${max}${why}, got ${value}`);
}

/**
 * Checks the fields against the model's limits (OVMS's checks, plus max_resolution, which OVMS documents but does not
 * enforce) and builds the library options. Unset generation options are left to the model, except the step count,
 * which is always the configured default like in OVMS.
 */
export function buildImageRequest(f: Fields, settings: ModelSettings, defaults: RequestDefaults = {}): ImageRequest {
  const prompt = f.prompt ?? defaults.prompt;
  if (prompt === undefined) throw badField('prompt', 'prompt is required', 'missing_required_parameter');
  const responseFormat = (f.response_format ?? 'b64_json') as ResponseFormat;
  if (!['b64_json', 'url'].includes(responseFormat))
    throw badField(
      'response_format',
      `Unsupported response_format: ${shown(f.response_format)}. Use b64_json or url.`,
      'unsupported_value',
    );
  const stream = f.stream === true;
  if (stream && responseFormat === 'url')
    throw badField(
      'response_format',
      'a stream carries its images as b64_json: leave response_format out, or send stream=false for url',
      'unsupported_value',
    );
  range('partial_images', f.partial_images, 0, 3);
  const previewMode = (f.preview_mode ?? 'fast') as PreviewMode;
  if (!PREVIEW_MODES.includes(previewMode))
    throw badField(
      'preview_mode',
      `preview_mode must be one of ${PREVIEW_MODES.join(', ')} (got ${shown(f.preview_mode)})`,
      'unsupported_value',
    );
  let scheduler: SchedulerName | undefined;
  if (f.scheduler !== undefined) {
    scheduler = SCHEDULERS.find((name) => name === f.scheduler!.toUpperCase());
    if (!scheduler)
      throw badField('scheduler', `scheduler must be one of ${SCHEDULERS.join(', ')} (got ${shown(f.scheduler)})`, 'unsupported_value');
  }
  const job = f.background === true;
  if (typeof f.background === 'string' && !['auto', 'opaque'].includes(f.background))
    throw badField(
      'background',
      f.background === 'transparent'
        ? 'background transparent is not supported: these models make opaque images (use auto or opaque; background: true, a boolean, runs a background job)'
        : `background must be auto or opaque (a string), or true to run a background job (a boolean); got ${shown(f.background)}`,
      'unsupported_value',
    );
  if (job && stream)
    throw badField(
      'stream',
      'a background job is not streamed: follow GET /images/jobs/{id}/events instead (leave stream out)',
      'unsupported_value',
    );
  if (job && responseFormat === 'url')
    throw badField(
      'response_format',
      "a background job's images are read from GET /images/jobs/{id}/content; leave response_format out",
      'unsupported_value',
    );
  let quality: Quality = 'auto';
  if (f.quality !== undefined) {
    if (!Object.hasOwn(QUALITY_WORDS, f.quality))
      throw badField(
        'quality',
        `quality must be low, medium, high or auto (or standard, hd), got ${shown(f.quality)}`,
        'unsupported_value',
      );
    quality = QUALITY_WORDS[f.quality];
  }
  const outputFormat = (f.output_format ?? 'png') as OutputFormat;
  if (!['png', 'jpeg', 'webp'].includes(outputFormat))
    throw badField('output_format', `output_format must be png, jpeg or webp, got ${shown(f.output_format)}`, 'unsupported_value');
  range('output_compression', f.output_compression, 0, 100);

  if (f.size !== undefined && (f.width !== undefined || f.height !== undefined))
    throw badField(f.width !== undefined ? 'width' : 'height', 'give either size or width/height, not both');
  if (f.n !== undefined && f.num_images_per_prompt !== undefined)
    throw badField('num_images_per_prompt', 'give either n or num_images_per_prompt, not both');
  const sizeParam = f.size !== undefined ? 'size' : undefined;
  let size: Partial<Size> = f.size !== undefined ? (parseSize(f.size) ?? {}) : { width: f.width, height: f.height };
  for (const axis of ['width', 'height'] as const) {
    if (size[axis] !== undefined && size[axis]! <= 0) throw badField(sizeParam ?? axis, `${axis} must be higher than 0`);
  }
  if (size.width === undefined && size.height === undefined && settings.defaultResolution) size = { ...settings.defaultResolution };

  if (settings.resolutions.length && (size.width !== undefined || size.height !== undefined)) {
    if (size.width === undefined || size.height === undefined)
      throw badField(size.width === undefined ? 'width' : 'height', 'this model serves fixed sizes: give both width and height (or size)');
    if (!settings.resolutions.some((r) => r.width === size.width && r.height === size.height))
      throw badField(
        sizeParam ?? 'width',
        `size ${size.width}x${size.height} is not served by this model; allowed: ${settings.resolutions.map(sizeText).join(', ')}`,
        'unsupported_size',
      );
  }
  const max = settings.maxResolution;
  if ((size.width ?? 0) > max.width || (size.height ?? 0) > max.height) {
    const axis = (size.width ?? 0) > max.width ? 'width' : 'height';
    throw badField(
      sizeParam ?? axis,
      `${axis} ${size[axis]} exceeds the largest size this model serves (max_resolution ${sizeText(max)})`,
      'size_too_large',
    );
  }

  const nParam = f.n !== undefined ? 'n' : 'num_images_per_prompt';
  const n = f.n ?? f.num_images_per_prompt;
  if (n !== undefined && n <= 0) throw badField(nParam, 'num_images_per_prompt/n must be higher than 0');
  if (settings.staticNumImagesPerPrompt !== undefined && n !== undefined && n !== settings.staticNumImagesPerPrompt)
    throw badField(
      nParam,
      `this model is compiled for ${settings.staticNumImagesPerPrompt} image(s) per request; n must be ${settings.staticNumImagesPerPrompt}`,
    );
  range(nParam, n, 1, settings.maxNumImagesPerPrompt, ' (max_num_images_per_prompt)');
  if (f.num_inference_steps !== undefined && f.num_inference_steps <= 0)
    throw badField('num_inference_steps', 'num_inference_steps must be higher than 0');
  range('num_inference_steps', f.num_inference_steps, 1, settings.maxNumInferenceSteps, ' (max_num_inference_steps)');
  if (settings.staticGuidanceScale !== undefined && f.guidance_scale !== undefined && f.guidance_scale !== settings.staticGuidanceScale)
    throw badField('guidance_scale', `this model is compiled for guidance_scale ${settings.staticGuidanceScale}`);
  if (f.max_sequence_length !== undefined && f.max_sequence_length <= 0)
    throw badField('max_sequence_length', 'max_sequence_length must be higher than 0');
  // The checks above are OVMS's, in its words; every other bound comes from the parameter table.
  for (const p of PARAMETER_FIELDS) {
    const { min, max } = p as ParameterSpec;
    if (min !== undefined || max !== undefined) range(p.field, f[p.field] as number | undefined, min ?? -Infinity, max ?? Infinity);
  }

  // Each parameter's field, as the table maps it; then what the request words its own way (size, n, the scheduler's
  // case) and the server's step default.
  const options: GenerateOptions = {};
  for (const p of PARAMETER_FIELDS) (options as Record<string, unknown>)[p.name] = f[p.field];
  Object.assign(options, {
    width: size.width,
    height: size.height,
    numImagesPerPrompt: n,
    // With quality low/medium/high and no num_inference_steps, the steps are set when the model's family is known.
    numInferenceSteps: f.num_inference_steps ?? (quality === 'auto' ? settings.defaultNumInferenceSteps : undefined),
    guidanceScale: f.guidance_scale ?? settings.defaultGuidanceScale,
    deepcacheInterval: f.deepcache_interval ?? settings.deepcacheInterval,
    scheduler,
  });
  for (const key of Object.keys(options) as Array<keyof GenerateOptions>) if (options[key] === undefined) delete options[key];
  return {
    prompt,
    options,
    loraAlphas: f.lora_alphas,
    outputFormat,
    outputCompression: f.output_compression,
    responseFormat,
    stream,
    partialImages: f.partial_images ?? 0,
    previewMode,
    quality,
    job,
  };
}
