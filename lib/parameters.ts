// The generation parameters, declared once. Everything else derives from this table: the library's option types
// (GenerateOptions), the server's request fields and their checks, the native conversion (the addon reads each
// parameter by `field`; a test compares this table with the engine's own list), the parameter table in docs/server.md
// (scripts/docs-parameters.js), and the `param` of errors, which the engine reports by `field`.
//
// name: the library option (camelCase). field: the engine's name, which is also the OVMS/OpenAI request field.
// type: how a value is read. min/max: the range every layer accepts (a model or server may narrow it).
// http: false for parameters that only the library takes.

/**
 * Solvers openvino_genai lacks (UNet models), matched against diffusers: DPM-Solver++ 2M with the timesteps' own,
 * Karras or exponential sigmas, and its SDE form; UniPC; Heun (two UNet calls per step).
 */
export const EXTRA_SOLVER_NAMES = [
  'DPMPP_2M',
  'DPMPP_2M_KARRAS',
  'DPMPP_2M_EXPONENTIAL',
  'DPMPP_2M_SDE',
  'DPMPP_2M_SDE_KARRAS',
  'DPMPP_2M_SDE_EXPONENTIAL',
  'UNIPC',
  'HEUN',
] as const;

export const SCHEDULER_NAMES = [
  'AUTO',
  'DDIM',
  'EULER_DISCRETE',
  'EULER_ANCESTRAL_DISCRETE',
  'PNDM',
  'LCM',
  'FLOW_MATCH_EULER_DISCRETE',
  'LMS_DISCRETE',
  ...EXTRA_SOLVER_NAMES,
] as const;
export type SchedulerName = (typeof SCHEDULER_NAMES)[number];

/** How step previews are made: 'fast', a fitted linear latent-to-RGB map (almost free); 'full', a VAE decode each. */
export const PREVIEW_MODES = ['fast', 'full'] as const;
export type PreviewMode = (typeof PREVIEW_MODES)[number];

/** TaylorSeer transformer-call cache (SD3/FLUX); unset fields take the oracle's defaults 3, 6, -2. */
export interface TaylorSeerOptions {
  cacheInterval?: number;
  disableCacheBeforeStep?: number;
  disableCacheAfterStep?: number;
}

/**
 * A registered LoRA adapter chosen for one call; without alpha, its registered alpha applies. One shape at every layer:
 * the server's aliases and composites and the library's selections and presets all become a list of these, which the
 * engine reads as its AdapterChoice.
 */
export interface AdapterChoice {
  name: string;
  alpha?: number;
}

export type ParameterType = 'string' | 'int' | 'float' | 'scheduler' | 'taylorseer';

export interface ParameterSpec {
  readonly name: string;
  readonly field: string;
  readonly type: ParameterType;
  readonly min?: number;
  readonly max?: number;
  readonly http?: false;
  /** Which families use it, and its default: one line for the docs. */
  readonly doc: string;
}

export const GENERATION_PARAMETERS = [
  { name: 'prompt2', field: 'prompt_2', type: 'string', doc: 'SDXL, SD3: the second CLIP encoder; FLUX: T5. Default: the prompt.' },
  { name: 'prompt3', field: 'prompt_3', type: 'string', doc: 'SD3 with T5: the T5 prompt. Default: the prompt.' },
  {
    name: 'negativePrompt',
    field: 'negative_prompt',
    type: 'string',
    doc: 'Needs classifier-free guidance (guidance_scale > 1); not for FLUX, FLUX.2 klein or LCM. Z-Image: default the empty prompt when guidance_scale > 0. Qwen-Image: guidance is on only with a negative prompt.',
  },
  {
    name: 'negativePrompt2',
    field: 'negative_prompt_2',
    type: 'string',
    doc: 'SDXL, SD3: for the second encoder. Default: negative_prompt.',
  },
  { name: 'negativePrompt3', field: 'negative_prompt_3', type: 'string', doc: 'SD3 with T5. Default: negative_prompt.' },
  {
    name: 'width',
    field: 'width',
    type: 'int',
    min: 1,
    doc: 'Default: the model size (image-to-image: the input size; Z-Image 1024; FLUX.2 klein 128 x the VAE scale, image-to-image the input size rounded down; Qwen-Image 128 x the VAE scale, image-to-image too). Multiple of the VAE scale (FLUX, FLUX.2 klein, Qwen-Image, Z-Image: 2x, SD3: x patch).',
  },
  { name: 'height', field: 'height', type: 'int', min: 1, doc: 'As width.' },
  {
    name: 'numInferenceSteps',
    field: 'num_inference_steps',
    type: 'int',
    min: 1,
    doc: 'Default: 50 (LCM 4, SD3 and FLUX 28, FLUX Fill 50, FLUX.2 klein 50, Qwen-Image 50, Z-Image 50; Z-Image-Turbo wants 8-9). The server sends its configured default (50).',
  },
  {
    name: 'guidanceScale',
    field: 'guidance_scale',
    type: 'float',
    doc: 'Default: 7.5 (SDXL 5, LCM 8.5, SD3 7, FLUX 3.5 and 7 for edits, FLUX Fill 30, FLUX.2 klein 4: used above 1 only by non-distilled models, Qwen-Image 4: used above 1 with a negative prompt, Z-Image 5: guidance is on above 0, Z-Image-Turbo wants 0); FLUX without guidance embeds takes none.',
  },
  {
    name: 'guidanceRescale',
    field: 'guidance_rescale',
    type: 'float',
    min: 0,
    max: 1,
    doc: 'UNet models with guidance_scale > 1 (SD 1.x/2.x, SDXL): rescales the guided prediction to the spread of the text-conditioned one (arXiv 2305.08891), against washed-out or over-exposed images at strong guidance; 0.7 is common. Default 0 (off, as openvino_genai).',
  },
  {
    name: 'deepcacheInterval',
    field: 'deepcache_interval',
    type: 'int',
    min: 1,
    doc: 'UNet models (SD 1.x/2.x, SDXL, LCM) loaded with DeepCache (library load option deepcache, server --deepcache_interval): every n-th UNet call runs the whole UNet, the calls between only its shallow part on the cached deep feature (arXiv 2312.00858; 3 is common). Default 1 (no caching: the uncached pixels); the server sends its --deepcache_interval.',
  },
  { name: 'numImagesPerPrompt', field: 'num_images_per_prompt', type: 'int', min: 1, doc: 'Images per call (server: also n). Default 1.' },
  { name: 'seed', field: 'rng_seed', type: 'int', min: 0, max: Number.MAX_SAFE_INTEGER, doc: 'Random seed. Library default 42.' },
  {
    name: 'strength',
    field: 'strength',
    type: 'float',
    min: 0,
    max: 1,
    doc: 'Image-to-image and inpainting: how much is repainted. Default 0.8 (SDXL 0.3, SD3, FLUX, Qwen-Image and Z-Image 0.6); inpainting 1 (SDXL 0.9999). No effect on FLUX.2 klein (its image-to-image conditions every step on the image).',
  },
  {
    name: 'maxSequenceLength',
    field: 'max_sequence_length',
    type: 'int',
    min: 1,
    doc: 'SD3 and FLUX: T5 tokens, at most 512. Default 256 (FLUX 512). Z-Image and FLUX.2 klein: Qwen3 tokens of the chat-formatted prompt, default 512 (klein: at most 512; the library also takes 0, no text tokens, as openvino_genai). Qwen-Image: tokens after the 34-token prefix of its prompt template, default 512, 1..1024.',
  },
  {
    name: 'scheduler',
    field: 'scheduler',
    type: 'scheduler',
    doc: `One of ${SCHEDULER_NAMES.join(', ')}. Default AUTO: the model folder's. UNet models take all but FLOW_MATCH_EULER_DISCRETE, SD3, FLUX, FLUX.2 klein, Qwen-Image and Z-Image only that one (a model lists its own in /v3/models).`,
  },
  {
    name: 'taylorseer',
    field: 'taylorseer',
    type: 'taylorseer',
    http: false,
    doc: 'SD3/FLUX transformer-call cache: true, false or {cacheInterval, disableCacheBeforeStep, disableCacheAfterStep}. Default: on for text-to-image.',
  },
] as const satisfies readonly ParameterSpec[];

type Spec = (typeof GENERATION_PARAMETERS)[number];
type ValueOf<T extends ParameterType> = T extends 'string'
  ? string
  : T extends 'scheduler'
    ? SchedulerName
    : T extends 'taylorseer'
      ? boolean | TaylorSeerOptions
      : number;

/** The generation parameters as library options (camelCase), all optional: unset ones take the model's defaults. */
export type GenerationParameters = { [S in Spec as S['name']]?: ValueOf<S['type']> };
/** The same keyed by the engine's names, as the native addon reads them. */
export type EngineParameters = { [S in Spec as S['field']]?: ValueOf<S['type']> };
export type ParameterName = Spec['name'];
export type ParameterField = Spec['field'];

const BY_FIELD = new Map<string, ParameterSpec>(GENERATION_PARAMETERS.map((p) => [p.field, p]));

/** The library option name for an engine parameter name (errors from the engine name the latter). */
export function parameterNameOf(field: string): string | undefined {
  return BY_FIELD.get(field)?.name;
}

/** Library options -> the engine's names; unset values are left out. */
export function toEngineParameters(options: GenerationParameters): EngineParameters {
  const out: Record<string, unknown> = {};
  for (const p of GENERATION_PARAMETERS) {
    const value = options[p.name];
    if (value !== undefined && value !== null) out[p.field] = value;
  }
  return out as EngineParameters;
}
