// One image generation as the server runs it, whatever answers it (a JSON response or a stream): the model and
// fields a request names, waiting for the model to load, the library call with the adapters the model name selects,
// the metrics, and the encoded images. The routes (routes/images.ts) map HTTP onto this and the outcome onto the
// OpenAI answer.
import * as crypto from 'crypto';
import sharp = require('sharp');
import type { CallPlan, GenerateOptions, GenerationResult, StepProgress, Task } from '../diffusion-model';
import { DEFAULT_MAX_INPUT_PIXELS } from '../images';
import { OvDiffusionError } from '../errors';
import { ApiError, badField, toApiError } from './errors';
import { ClientDisconnected, ServerShuttingDown } from './inflight';
import { Fields, ImageRequest, buildImageRequest, qualitySteps } from './fields';
import type { PreviewMode } from '../parameters';
import type { ImageStore } from './image-store';
import type { ServerMetrics } from './metrics';
import { ImageParameters, Usage, encodeImage, imageTokens, usage } from './output';
import { ModelLike, ModelRegistry, Resolved, ServedModel } from './registry';
import { MemoryAdmission, ModelMemoryProfile, estimateCallBytes, modelMemoryProfile } from './memory';
import { ModelSettings, sizeText } from './settings';

export type Endpoint = 'generations' | 'edits' | 'variations';

/** The uploaded image (and mask) of an edit or variation. */
export interface EditFiles {
  image: Buffer;
  mask?: Buffer;
}

/** Server-wide generation choices (part of the CLI's "Serving" flags). */
export interface GenerationDefaults {
  /** Seed of requests without rng_seed; undefined = a fresh random seed per request. */
  defaultRngSeed?: number;
  /** The generation parameters in a PNG text chunk. */
  pngMetadata: boolean;
  variationPrompt: string;
}

export interface GenerationContext {
  registry: ModelRegistry;
  serving: GenerationDefaults;
  metrics: ServerMetrics;
  store: ImageStore;
  /** Memory admission (off unless a budget is set). */
  memory?: MemoryAdmission;
}

/** What a generation adds to its request's log line. */
export type LogFields = Record<string, string | number | boolean | undefined>;

const TASK_WORDS: Record<Task, string> = { text2image: 'text-to-image', image2image: 'image-to-image', inpainting: 'inpainting' };
/** Random seeds stay below 2^32: the engine's Mersenne Twister is seeded with 32 bits, so every seed is a distinct image. */
const RANDOM_SEED_LIMIT = 2 ** 32;

/** What a request asks for, checked as far as it can be before its model is ready. */
export interface GenerationPlan {
  resolved: Resolved;
  request: ImageRequest;
  task: Task;
  seed: number;
  files?: EditFiles;
  /** The uploaded image's size, from its header. */
  inputSize?: ImageSize;
}

export async function planGeneration(
  ctx: GenerationContext,
  endpoint: Endpoint,
  fields: Fields,
  files?: EditFiles,
): Promise<GenerationPlan> {
  if (endpoint === 'variations' && fields.stream)
    throw badField(
      'stream',
      'images/variations does not stream (the OpenAI API defines no variation events); use /images/edits with stream=true',
      'unsupported_value',
    );
  const resolved = ctx.registry.resolve(fields.model);
  const request = buildImageRequest(
    fields,
    resolved.served.settings,
    endpoint === 'variations' ? { prompt: ctx.serving.variationPrompt } : {},
  );
  if (request.responseFormat === 'url' && !ctx.store.enabled)
    throw badField(
      'response_format',
      'response_format url is turned off on this server (--image_url_ttl 0); use b64_json',
      'unsupported_value',
    );
  const task: Task = files?.mask ? 'inpainting' : files ? 'image2image' : 'text2image';
  const seed = request.options.seed ?? ctx.serving.defaultRngSeed ?? crypto.randomInt(RANDOM_SEED_LIMIT);
  const inputSize = files && (await headerSize(files.image, 'image'));
  if (files?.mask) await headerSize(files.mask, 'mask');
  return { resolved, request, task, seed, files, inputSize };
}

export interface GenerationOutcome {
  result: GenerationResult;
  /** The images in the requested output format. */
  encoded: Buffer[];
  usage: Usage;
  /** What PNG outputs carry (undefined with --no_png_metadata), per image of the batch. */
  parameters: (index: number) => ImageParameters | undefined;
}

export interface RunOptions {
  signal: AbortSignal;
  onStep?: (progress: StepProgress) => void;
  /** Previews to deliver through onStep, and how they are made. */
  previews?: number;
  previewMode?: PreviewMode;
  /** Called once the model is ready and the task fits it, just before the generation is queued. */
  onStart?: () => void;
  /** The request's log line, for the memory estimate. */
  log?: LogFields;
  /** Called while the model loads, once the call waits for it (it counts against the queue). */
  onLoadWait?: () => void;
  /** Called when the call passed every check and enters the model's queue (a full queue then refuses it). */
  onQueued?: (call: CallPlan) => void;
  /** When the call waits for a slot: its 1-based place in the model's queue, at once and as it moves up (the library's onQueuePosition). */
  onPosition?: (position: number) => void;
  /** Called when the call has a slot and starts running. */
  onRunning?: () => void;
}

/** The error a failed generation is answered with: cancellations say why, a full queue gives the limits and Retry-After. */
export function generationError(error: unknown, signal: AbortSignal, served: ServedModel): ApiError {
  if (signal.aborted && signal.reason instanceof ServerShuttingDown)
    return new ApiError(503, 'the server is shutting down; the generation was cancelled', null, 'shutting_down').withHeader(
      'x-should-retry',
      'true',
    );
  if (signal.aborted && signal.reason instanceof ClientDisconnected)
    return new ApiError(499, 'the client disconnected; the generation was cancelled', null, 'cancelled');
  const apiError = toApiError(error);
  if (error instanceof OvDiffusionError && (error.code === 'ERR_QUEUE_FULL' || error.code === 'ERR_QUEUE_TIMEOUT')) {
    const { maxConcurrency, maxQueue } = served.settings;
    const limits = `'${served.name}' runs ${maxConcurrency} at once and queues ${maxQueue} (--max_concurrency, --max_queue_size)`;
    const answer = new ApiError(apiError.status, `${apiError.message}. ${limits}`, null, apiError.code);
    return answer.withHeader('retry-after', served.retryAfterSeconds());
  }
  return apiError;
}

/** Waits for the model, generates, records the metrics and encodes the images. */
export async function runGeneration(ctx: GenerationContext, plan: GenerationPlan, run: RunOptions): Promise<GenerationOutcome> {
  const { resolved, request, task, seed, files, inputSize } = plan;
  const { served } = resolved;
  const model = await waitForModel(served, run.signal, run.onLoadWait);
  checkTask(resolved, model, task);
  run.onStart?.();
  const steps = request.options.numInferenceSteps ?? qualitySteps(request.quality, model.className, served.settings);
  const options: GenerateOptions = {
    ...request.options,
    ...(steps !== undefined ? { numInferenceSteps: steps } : {}),
    seed,
    ...adapterOptions(resolved, model, request),
    signal: run.signal,
    onStep: run.onStep,
    ...(run.previews ? { previews: run.previews, previewMode: run.previewMode } : {}),
    ...(run.onRunning ? { onRunning: run.onRunning } : {}),
    ...(run.onPosition ? { onQueuePosition: run.onPosition } : {}),
    admit: (call) => {
      checkPlan(call, served.settings, {
        size: request.options.width !== undefined || request.options.height !== undefined,
        image: task === 'image2image' ? inputSize : undefined,
      });
      releaseMemory = admitMemory(ctx, served, model.className, call, run.log ?? {});
      run.onQueued?.(call);
    },
  };
  let releaseMemory: (() => void) | undefined;
  let result: GenerationResult;
  try {
    if (task === 'text2image') result = await model.text2image(request.prompt, options);
    else if (task === 'image2image') result = await model.image2image(request.prompt, files!.image, options);
    else result = await model.inpaint(request.prompt, files!.image, files!.mask!, options);
  } finally {
    releaseMemory?.();
  }

  const metrics = result.metrics as Partial<GenerationResult['metrics']> | undefined;
  served.recordGeneration(metrics?.totalMs ?? 0);
  ctx.metrics.generation(served.name, task, result.images.length, metrics);

  const o = request.options;
  const parameters = (index: number): ImageParameters | undefined =>
    ctx.serving.pngMetadata
      ? {
          prompt: request.prompt,
          negativePrompt: o.negativePrompt,
          steps: options.numInferenceSteps ?? result.steps,
          scheduler: result.scheduler,
          seed,
          guidanceScale: o.guidanceScale,
          strength: o.strength,
          width: result.width,
          height: result.height,
          model: resolved.name,
          adapters: Array.isArray(options.adapters) ? (options.adapters as ImageParameters['adapters']) : undefined,
          batch: result.images.length > 1 ? { size: result.images.length, index } : undefined,
        }
      : undefined;
  const encoded = await Promise.all(result.images.map((image, i) => encodeImage(image, request, parameters(i))));
  const inputTokens = inputSize ? imageTokens(inputSize.width, inputSize.height) : 0;
  return {
    result,
    encoded,
    usage: usage(request, inputTokens, { width: result.width, height: result.height, count: result.images.length }),
    parameters,
  };
}

/** The LoRA part of the generate options: the adapters the model name selects, with their alphas. */
function adapterOptions(resolved: Resolved, model: ModelLike, request: ImageRequest): Partial<GenerateOptions> {
  const { served, target } = resolved;
  const chosen = served.loras.resolve(target, request.loraAlphas, model);
  return served.loras.isEmpty ? {} : { adapters: chosen };
}

function checkTask(resolved: Resolved, model: ModelLike, task: Task): void {
  if (model.supports(task)) return;
  const what = `'${resolved.name}' (${model.className}) serves ${model.tasks.map((t) => TASK_WORDS[t]).join(', ')} only`;
  if (task === 'image2image' && model.supports('inpainting'))
    throw badField('mask', `${what}: it is a dedicated inpainting model, so it needs a mask (on /images/edits)`, 'model_not_supported');
  if (task === 'text2image' && model.supports('inpainting'))
    throw badField(
      'model',
      `${what}: it is a dedicated inpainting model; send the image and a mask to /images/edits`,
      'model_not_supported',
    );
  throw badField('model', `${what}, not ${TASK_WORDS[task]}`, 'model_not_supported');
}

function modelUnavailable(served: ServedModel, error: Error): ApiError {
  return new ApiError(503, `model '${served.name}' failed to load: ${error.message}`, 'model', 'model_unavailable');
}

/**
 * The loaded model; while it loads, requests wait for it like in OVMS, as many as its queue holds (then 503 with
 * Retry-After) and up to --queue_timeout.
 */
async function waitForModel(served: ServedModel, signal: AbortSignal, onWait?: () => void): Promise<ModelLike> {
  if (served.model) return served.model;
  if (served.error) throw modelUnavailable(served, served.error);
  const { maxConcurrency, maxQueue, queueTimeoutMs } = served.settings;
  if (served.loadWaiters >= maxConcurrency + maxQueue) {
    throw new ApiError(
      503,
      `model '${served.name}' is still loading and ${served.loadWaiters} requests already wait for it; try again later`,
      null,
      'model_loading',
    )
      .withHeader('retry-after', 5)
      .withHeader('x-should-retry', 'true');
  }
  served.loadWaiters += 1;
  onWait?.();
  try {
    return await new Promise<ModelLike>((resolve, reject) => {
      const timer =
        queueTimeoutMs > 0
          ? setTimeout(
              () =>
                reject(
                  new ApiError(
                    503,
                    `model '${served.name}' did not finish loading within ${queueTimeoutMs / 1000} s (--queue_timeout); try again later`,
                    null,
                    'queue_timeout',
                  ).withHeader('retry-after', 5),
                ),
              queueTimeoutMs,
            )
          : undefined;
      const onAbort = () => reject(signal.reason);
      if (signal.aborted) onAbort();
      signal.addEventListener('abort', onAbort, { once: true });
      served.ready
        .then(resolve, (error: Error) => reject(modelUnavailable(served, error)))
        .finally(() => {
          clearTimeout(timer);
          signal.removeEventListener('abort', onAbort);
        });
    });
  } finally {
    served.loadWaiters -= 1;
  }
}

interface ImageSize {
  width: number;
  height: number;
}

/**
 * The uploaded image's size from its header, before anything is decoded: an upload whose pixels exceed the decode
 * limit (a small, highly compressed PNG can declare 8192x8192 or more) is refused here with a 413.
 */
async function headerSize(bytes: Buffer, param: string): Promise<ImageSize> {
  let width: number | undefined;
  let height: number | undefined;
  try {
    // Reading the header only; the pixel limit is checked below, with a message of its own.
    ({ width, height } = await sharp(bytes, { limitInputPixels: false }).metadata());
  } catch (error) {
    throw badField(param, `${param}: cannot read the image header (${(error as Error).message})`, 'invalid_image');
  }
  if (!width || !height) throw badField(param, `${param}: the image header gives no size`, 'invalid_image');
  if (width * height > DEFAULT_MAX_INPUT_PIXELS)
    throw new ApiError(
      413,
      `${param} is ${width}x${height} (${width * height} pixels), over the limit of ${DEFAULT_MAX_INPUT_PIXELS} pixels`,
      param,
      'image_too_large',
    );
  return { width, height };
}

/**
 * Every size limit, applied to what the call will really run (the library reports it after the model's defaults,
 * e.g. image-to-image at the input's own size): max_resolution, the fixed sizes of --resolution, and n.
 */
const profiles = new Map<string, ModelMemoryProfile>();
const MIB = 2 ** 20;
const mib = (bytes: number) => Math.ceil(bytes / MIB);

/**
 * Reserves the call's estimated peak memory, or refuses it: 400 when it could not fit even alone (the client must ask
 * for less), 503 with Retry-After when the requests admitted before it hold the memory. Returns the release.
 */
function admitMemory(
  ctx: GenerationContext,
  served: ServedModel,
  className: string,
  plan: CallPlan,
  log: LogFields,
): (() => void) | undefined {
  const memory = ctx.memory;
  if (!memory?.enabled || !served.path) return undefined;
  let profile = profiles.get(served.path);
  if (!profile) profiles.set(served.path, (profile = modelMemoryProfile(served.path, className)));
  const bytes = estimateCallBytes(profile, plan);
  ctx.metrics.memoryEstimate(served.name, bytes);
  log.memory_estimate_mib = mib(bytes);
  const what = `${plan.width}x${plan.height}, ${plan.numImagesPerPrompt} image(s)`;
  return memory.admit(served.name, served.settings.maxConcurrency, bytes, (kind, d) =>
    kind === 'never'
      ? badField(
          plan.numImagesPerPrompt > 1 ? 'n' : 'size',
          `this request needs about ${mib(d.needBytes)} MiB at its peak (${what}); the memory budget leaves ${mib(d.freeBytes)} MiB ` +
            `beside the loaded models (--memory_budget ${mib(d.budgetBytes)} MiB): ask for a smaller size or fewer images`,
          'insufficient_memory',
        )
      : new ApiError(
          503,
          `not enough memory free now: this request needs about ${mib(d.needBytes)} MiB at its peak (${what}), ` +
            `${mib(d.freeBytes)} MiB of the --memory_budget are free while other requests run; try again later`,
          null,
          'memory_busy',
        )
          .withHeader('retry-after', served.retryAfterSeconds())
          .withHeader('x-should-retry', 'true'),
  );
}

/** `given.image`: the uploaded image's size, for image-to-image (whose size without `size` is the image's for some
 *  families, the model's default for others: the plan says which). */
function checkPlan(plan: CallPlan, settings: ModelSettings, given: { size: boolean; image?: ImageSize }): void {
  const max = settings.maxResolution;
  const size = `${plan.width}x${plan.height}`;
  const followsImage = given.image !== undefined && given.image.width === plan.width && given.image.height === plan.height;
  const why = given.size
    ? ''
    : followsImage
      ? ' (no size was given: image-to-image then follows the uploaded image)'
      : given.image
        ? " (no size was given: this model's image-to-image then runs at the model's default size)"
        : " (no size was given: the model's default)";
  const param = given.size ? 'size' : followsImage ? 'image' : 'size';
  if (plan.width > max.width || plan.height > max.height)
    throw badField(
      param,
      `the output would be ${size}${why}, over max_resolution ${sizeText(max)}; ask for a smaller size`,
      'size_too_large',
    );
  if (settings.resolutions.length && !settings.resolutions.some((r) => r.width === plan.width && r.height === plan.height))
    throw badField(
      param,
      `the output would be ${size}${why}, not a size this model serves; allowed: ${settings.resolutions.map(sizeText).join(', ')}`,
      'unsupported_size',
    );
  if (plan.numImagesPerPrompt > settings.maxNumImagesPerPrompt)
    throw badField(
      'n',
      `the call would make ${plan.numImagesPerPrompt} images, over max_num_images_per_prompt ${settings.maxNumImagesPerPrompt}`,
    );
  if (plan.numInferenceSteps > settings.maxNumInferenceSteps)
    throw badField(
      'num_inference_steps',
      `the call would run ${plan.numInferenceSteps} steps, over max_num_inference_steps ${settings.maxNumInferenceSteps}`,
    );
}
