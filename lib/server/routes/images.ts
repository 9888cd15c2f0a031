// POST /images/generations (JSON, text-to-image), /images/edits (multipart: image-to-image, or inpainting with a
// mask) and /images/variations (multipart: image-to-image with an empty or configured prompt). Maps the request onto
// the library and the result onto the OpenAI response, as JSON or as server-sent events; no pipeline logic.
import * as crypto from 'crypto';
import express = require('express');
import type { Request, Response } from 'express';
import sharp = require('sharp');
import type { CallPlan, GenerateOptions, GenerationResult, StepProgress, Task } from '../../diffusion-model';
import { DEFAULT_MAX_INPUT_PIXELS } from '../../images';
import { OvDiffusionError } from '../../errors';
import type { GeneratedImage } from '../../images';
import { RequestTimeouts, bodyStage } from '../body';
import { ApiError, badField, toApiError } from '../errors';
import { BodyKind, ImageRequest, buildImageRequest, readFields } from '../fields';
import { IMAGE_ROUTE, ImageStore } from '../image-store';
import { ClientDisconnected, ServerShuttingDown, handled, requestSignal } from '../inflight';
import type { Logger } from '../log';
import type { ServerMetrics } from '../metrics';
import { EditFiles, MULTIPART_BODY_LIMIT, editFiles, parseMultipart, requireMultipart } from '../multipart';
import { ImageParameters, encodeImage, imageTokens, usage } from '../output';
import { ModelLike, ModelRegistry, Resolved, ServedModel } from '../registry';
import { ModelSettings, sizeText } from '../settings';
import { MemoryAdmission, ModelMemoryProfile, estimateCallBytes, modelMemoryProfile } from '../memory';
import { EventStream } from '../sse';

/** Server-wide serving choices (the CLI's "Serving" flags). */
export interface ServingOptions {
  /** Seed of requests without rng_seed; undefined = a fresh random seed per request. */
  defaultRngSeed?: number;
  /** The generation parameters in a PNG text chunk. */
  pngMetadata: boolean;
  /** Base of response_format=url links (default: the request's protocol and Host). */
  publicUrl?: string;
  variationPrompt: string;
  /** Interval of ": keep-alive" comments in streams. */
  keepAliveMs: number;
  /** How long a request body may take, and stall (body.ts). */
  timeouts: RequestTimeouts;
}

export interface ImageRouteContext {
  registry: ModelRegistry;
  serving: ServingOptions;
  metrics: ServerMetrics;
  store: ImageStore;
  logger: Logger;
  /** Logs and counts an error answered inside a stream (JSON errors go through the app's error handler). */
  reportError(res: Response, error: ApiError, cause: unknown): void;
  /** Memory admission (off unless a budget is set). */
  memory?: MemoryAdmission;
}

/** What a request adds to its log line (app.ts writes it). */
export type RequestLogFields = Record<string, string | number | boolean | undefined>;

type Endpoint = 'generations' | 'edits' | 'variations';
/** Event type prefixes; variations do not stream (the API defines no events for them). */
const EVENT_PREFIX: Record<Endpoint, string> = { generations: 'image_generation', edits: 'image_edit', variations: '' };
const TASK_WORDS: Record<Task, string> = { text2image: 'text-to-image', image2image: 'image-to-image', inpainting: 'inpainting' };
/** JSON bodies (a prompt is at most a few KB; OVMS takes 1 MB too). */
const JSON_LIMIT = 1024 * 1024;
/** Random seeds stay below 2^32: the engine's Mersenne Twister is seeded with 32 bits, so every seed is a distinct image. */
const RANDOM_SEED_LIMIT = 2 ** 32;

/** The LoRA part of the generate options: the adapters the model name selects, with their alphas. */
function adapterOptions(resolved: Resolved, request: ImageRequest): Partial<GenerateOptions> {
  const { served, target } = resolved;
  const chosen = served.loras.resolve(target, request.loraAlphas);
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

/** Flow-matching models (SD3, FLUX) take FLOW_MATCH_EULER_DISCRETE only (the library says so); UNet models never take it. */
function checkScheduler(model: ModelLike, request: ImageRequest): void {
  if (request.options.scheduler === 'FLOW_MATCH_EULER_DISCRETE' && !/^(StableDiffusion3|Flux)/.test(model.className))
    throw badField(
      'scheduler',
      `${model.className} cannot run FLOW_MATCH_EULER_DISCRETE (it is for SD3 and FLUX models)`,
      'unsupported_value',
    );
}

function modelUnavailable(served: ServedModel, error: Error): ApiError {
  return new ApiError(503, `model '${served.name}' failed to load: ${error.message}`, 'model', 'model_unavailable');
}

/**
 * The loaded model; while it loads, requests wait for it like in OVMS, as many as its queue holds (then 503 with
 * Retry-After) and up to --queue_timeout.
 */
async function waitForModel(served: ServedModel, signal: AbortSignal): Promise<ModelLike> {
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

/** The error a failed generation is answered with; cancellations say why. */
function failure(error: unknown, signal: AbortSignal, served: ServedModel): ApiError {
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
function admitMemory(ctx: ImageRouteContext, served: ServedModel, plan: CallPlan, log: RequestLogFields): (() => void) | undefined {
  const memory = ctx.memory;
  if (!memory?.enabled || !served.path) return undefined;
  let profile = profiles.get(served.path);
  if (!profile) profiles.set(served.path, (profile = modelMemoryProfile(served.path)));
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

function checkPlan(plan: CallPlan, settings: ModelSettings, given: { size: boolean; image: boolean }): void {
  const max = settings.maxResolution;
  const size = `${plan.width}x${plan.height}`;
  const why = given.size
    ? ''
    : given.image
      ? ' (no size was given: image-to-image then follows the uploaded image)'
      : " (no size was given: the model's default)";
  const param = given.size ? 'size' : given.image ? 'image' : 'size';
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

function baseUrl(req: Request, serving: ServingOptions): string {
  return serving.publicUrl ?? `${req.protocol}://${req.get('host') ?? 'localhost'}`;
}

const unixNow = () => Math.floor(Date.now() / 1000);

/** A partial_image or completed event, with the fields the API marks required. */
function imageEvent(type: string, bytes: Buffer, size: string, request: ImageRequest, extra: Record<string, unknown>) {
  return {
    type,
    b64_json: bytes.toString('base64'),
    created_at: unixNow(),
    size,
    quality: 'auto',
    background: 'opaque',
    output_format: request.outputFormat,
    ...extra,
  };
}

/**
 * Streams the previews as partial_image events, in order and off the step callback (encoding is asynchronous).
 * `done` resolves when every preview given so far is sent.
 */
function partialSender(stream: EventStream, prefix: string, request: ImageRequest, logger: Logger) {
  let chain = Promise.resolve();
  let next = 0;
  return {
    add(images: GeneratedImage[]): void {
      const index = next++;
      chain = chain
        .then(async () => {
          const encoded = await Promise.all(images.map((image) => encodeImage(image, request)));
          encoded.forEach((bytes, i) =>
            stream.send(
              imageEvent(`${prefix}.partial_image`, bytes, `${images[i].width}x${images[i].height}`, request, {
                partial_image_index: index,
                ...(images.length > 1 ? { image_index: i } : {}),
              }),
            ),
          );
        })
        .catch((error: Error) => logger.warn(`a partial image failed to encode: ${error.message}`));
    },
    get done(): Promise<void> {
      return chain;
    },
  };
}

/** One request, from its fields to the answer (JSON or events). */
async function generate(
  ctx: ImageRouteContext,
  req: Request,
  res: Response,
  endpoint: Endpoint,
  body: Record<string, unknown>,
  kind: BodyKind,
  files?: EditFiles,
): Promise<void> {
  const log: RequestLogFields = {};
  res.locals.log = log;
  const fields = readFields(body, kind);
  if (endpoint === 'variations' && fields.stream)
    throw badField(
      'stream',
      'images/variations does not stream (the OpenAI API defines no variation events); use /images/edits with stream=true',
      'unsupported_value',
    );
  const resolved = ctx.registry.resolve(fields.model);
  const served = resolved.served;
  log.model = resolved.name;
  const request = buildImageRequest(fields, served.settings, endpoint === 'variations' ? { prompt: ctx.serving.variationPrompt } : {});
  if (request.responseFormat === 'url' && !ctx.store.enabled)
    throw badField(
      'response_format',
      'response_format url is turned off on this server (--image_url_ttl 0); use b64_json',
      'unsupported_value',
    );
  const task: Task = files?.mask ? 'inpainting' : files ? 'image2image' : 'text2image';
  const seed = request.options.seed ?? ctx.serving.defaultRngSeed ?? crypto.randomInt(RANDOM_SEED_LIMIT);
  const o = request.options;
  Object.assign(log, {
    task,
    size: o.width !== undefined || o.height !== undefined ? `${o.width ?? 'auto'}x${o.height ?? 'auto'}` : 'auto',
    n: o.numImagesPerPrompt ?? 1,
    steps: o.numInferenceSteps,
    scheduler: o.scheduler,
    seed,
    stream: request.stream || undefined,
    partial_images: request.stream ? request.partialImages : undefined,
  });

  // Read before anything waits or decodes: the header check refuses a decompression bomb at once.
  const inputSize = files && (await headerSize(files.image, 'image'));
  if (files?.mask) await headerSize(files.mask, 'mask');

  const signal = requestSignal(res);
  const stream = request.stream ? new EventStream(res, ctx.serving.keepAliveMs) : undefined;
  const events = EVENT_PREFIX[endpoint];
  let stepsRun = 0;
  let releaseMemory: (() => void) | undefined;
  let cancelledAt: { steps: number; time: number } | undefined;
  signal.addEventListener(
    'abort',
    () => {
      cancelledAt = { steps: stepsRun, time: performance.now() };
    },
    { once: true },
  );
  try {
    stream?.arm();
    const model = await waitForModel(served, signal);
    checkTask(resolved, model, task);
    checkScheduler(model, request);
    res.setHeader('x-rng-seed', String(seed));

    const partials = stream && partialSender(stream, events, request, ctx.logger);
    const debug = ['DEBUG', 'TRACE'].includes(ctx.logger.level);
    const onStep = ({ step, totalSteps, preview }: StepProgress) => {
      stepsRun += 1;
      ctx.metrics.step(served.name);
      if (debug) ctx.logger.debug(`${resolved.name}: image generation step ${step + 1}/${totalSteps}`);
      if (partials && preview?.length) partials.add(preview);
    };
    const options: GenerateOptions = {
      ...request.options,
      seed,
      ...adapterOptions(resolved, request),
      signal,
      onStep,
      ...(stream && request.partialImages ? { previews: request.partialImages } : {}),
      admit: (plan) => {
        checkPlan(plan, served.settings, { size: o.width !== undefined || o.height !== undefined, image: task === 'image2image' });
        releaseMemory = admitMemory(ctx, served, plan, log);
      },
    };
    let result: GenerationResult;
    if (task === 'text2image') result = await model.text2image(request.prompt, options);
    else if (task === 'image2image') result = await model.image2image(request.prompt, files!.image, options);
    else result = await model.inpaint(request.prompt, files!.image, files!.mask!, options);

    const metrics = result.metrics as Partial<GenerationResult['metrics']> | undefined;
    served.recordGeneration(metrics?.totalMs ?? 0);
    ctx.metrics.generation(served.name, task, result.images.length, metrics);
    Object.assign(log, {
      size: `${result.width}x${result.height}`,
      scheduler: result.scheduler,
      steps_run: stepsRun,
      queue_ms: metrics?.queueMs !== undefined ? Math.round(metrics.queueMs) : undefined,
      generation_ms: metrics?.totalMs !== undefined ? Math.round(metrics.totalMs) : undefined,
    });

    const parameters = (index: number): ImageParameters | undefined =>
      ctx.serving.pngMetadata
        ? {
            prompt: request.prompt,
            negativePrompt: o.negativePrompt,
            steps: o.numInferenceSteps ?? result.steps,
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
    const used = usage(request, inputTokens, { width: result.width, height: result.height, count: result.images.length });
    const size = `${result.width}x${result.height}`;
    if (stream) {
      await partials!.done;
      for (const bytes of encoded) stream.send(imageEvent(`${events}.completed`, bytes, size, request, { usage: used }));
      stream.end();
      return;
    }
    const data =
      request.responseFormat === 'url'
        ? await Promise.all(
            encoded.map(async (bytes) => ({
              url: `${baseUrl(req, ctx.serving)}${IMAGE_ROUTE}/${await ctx.store.put(bytes, request.outputFormat)}`,
            })),
          )
        : encoded.map((bytes) => ({ b64_json: bytes.toString('base64') }));
    res.json({
      created: unixNow(),
      data,
      background: 'opaque',
      output_format: request.outputFormat,
      size,
      usage: { ...used, output_tokens_details: { image_tokens: used.output_tokens, text_tokens: 0 } },
    });
  } catch (error) {
    const apiError = failure(error, signal, served);
    if (cancelledAt) {
      Object.assign(log, {
        cancelled: signal.reason instanceof ServerShuttingDown ? 'shutdown' : 'client',
        steps_run: stepsRun,
        steps_after_cancel: stepsRun - cancelledAt.steps,
        cancel_ms: Math.round(performance.now() - cancelledAt.time),
      });
    }
    if (!stream?.started) {
      stream?.stop();
      if (!res.headersSent) res.removeHeader('x-rng-seed');
      throw apiError;
    }
    log.error = apiError.code ?? String(apiError.status);
    ctx.reportError(res, apiError, error);
    stream.fail(apiError);
  } finally {
    releaseMemory?.();
  }
}

export function imageRoutes(ctx: ImageRouteContext): express.Router {
  const router = express.Router();
  const label =
    (path: string): express.RequestHandler =>
    (_req, res, next) => {
      res.locals.route = path;
      next();
    };

  // Any content type but multipart is read as JSON, so `curl -d '{...}'` without a header works too.
  const json = bodyStage(
    express.json({ limit: JSON_LIMIT, type: (req) => !/^multipart\//i.test(String(req.headers['content-type'] ?? '')) }),
    { kind: 'json', maxBytes: JSON_LIMIT, timeouts: ctx.serving.timeouts },
  );
  router.post(
    '/images/generations',
    label('/images/generations'),
    json,
    handled(async (req, res) => {
      const body = req.body as unknown;
      if (typeof body !== 'object' || body === null || Array.isArray(body))
        throw new ApiError(400, 'images/generations takes a JSON object body', null, 'invalid_json');
      await generate(ctx, req, res, 'generations', body as Record<string, unknown>, 'json');
    }),
  );

  const multipart = (endpoint: Endpoint): express.RequestHandler[] => [
    label(`/images/${endpoint}`),
    (req, _res, next) => next(requireMultipart(req.headers['content-type'], `images/${endpoint}`)),
    bodyStage(parseMultipart, { kind: 'multipart', maxBytes: MULTIPART_BODY_LIMIT, timeouts: ctx.serving.timeouts }),
  ];
  router.post(
    '/images/edits',
    ...multipart('edits'),
    handled(async (req, res) => {
      const body = (req.body ?? {}) as Record<string, unknown>;
      await generate(ctx, req, res, 'edits', body, 'multipart', editFiles(req.files as Express.Multer.File[] | undefined, body));
    }),
  );
  router.post(
    '/images/variations',
    ...multipart('variations'),
    handled(async (req, res) => {
      const body = (req.body ?? {}) as Record<string, unknown>;
      const files = editFiles(req.files as Express.Multer.File[] | undefined, body);
      if (files.mask)
        throw badField('mask', 'images/variations takes no mask: use /images/edits to repaint a masked area', 'unsupported_value');
      await generate(ctx, req, res, 'variations', body, 'multipart', files);
    }),
  );

  for (const path of ['/images/generations', '/images/edits', '/images/variations']) {
    router.all(path, label(path), (req) => {
      throw new ApiError(405, `${req.method} is not allowed on ${req.baseUrl}${path}; use POST`, null, 'method_not_allowed');
    });
  }
  return router;
}
