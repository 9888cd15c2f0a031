// POST /images/generations (JSON, text-to-image), /images/edits (multipart: image-to-image, or inpainting with a
// mask) and /images/variations (multipart: image-to-image with an empty or configured prompt). Maps the request onto
// the library and the result onto the OpenAI response, as JSON or as server-sent events; no pipeline logic.
import express = require('express');
import type { Request, Response } from 'express';
import type { GenerationResult, StepProgress } from '../../diffusion-model';
import type { GeneratedImage } from '../../images';
import { RequestTimeouts, bodyStage } from '../body';
import { ApiError, badField } from '../errors';
import { BodyKind, ImageRequest, readFields } from '../fields';
import {
  EditFiles,
  Endpoint,
  GenerationContext,
  GenerationDefaults,
  LogFields,
  generationError,
  planGeneration,
  runGeneration,
} from '../generation';
import { IMAGE_ROUTE } from '../image-store';
import { ServerShuttingDown, handled, requestSignal } from '../inflight';
import type { Logger } from '../log';
import { MULTIPART_BODY_LIMIT, editFiles, parseMultipart, requireMultipart } from '../multipart';
import { encodeImage } from '../output';
import type { JobStore } from '../jobs';
import { EventStream } from '../sse';
import { labelRoute } from '../route-label';

/** Server-wide serving choices (the CLI's "Serving" flags). */
export interface ServingOptions extends GenerationDefaults {
  /** Base of response_format=url links (default: the request's protocol and Host). */
  publicUrl?: string;
  /** Interval of ": keep-alive" comments in streams. */
  keepAliveMs: number;
  /** How long a request body may take, and stall (body.ts). */
  timeouts: RequestTimeouts;
}

export interface ImageRouteContext extends GenerationContext {
  serving: ServingOptions;
  jobs: JobStore;
  logger: Logger;
  /** Logs and counts an error answered inside a stream (JSON errors go through the app's error handler). */
  reportError(res: Response, error: ApiError, cause: unknown): void;
}

/** What a request adds to its log line (app.ts writes it). */
export type RequestLogFields = LogFields;

/** Event type prefixes; variations do not stream (the API defines no events for them). */
const EVENT_PREFIX: Record<Endpoint, string> = { generations: 'image_generation', edits: 'image_edit', variations: '' };
/** JSON bodies (a prompt is at most a few KB; OVMS takes 1 MB too). */
const JSON_LIMIT = 1024 * 1024;

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
    quality: request.quality,
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
  // Before anything waits or decodes: uploaded images' headers are checked here (a decompression bomb is refused at once).
  const plan = await planGeneration(ctx, endpoint, readFields(body, kind), files);
  const { resolved, request, task, seed } = plan;
  const o = request.options;
  Object.assign(log, {
    model: resolved.name,
    task,
    size: o.width !== undefined || o.height !== undefined ? `${o.width ?? 'auto'}x${o.height ?? 'auto'}` : 'auto',
    n: o.numImagesPerPrompt ?? 1,
    steps: o.numInferenceSteps,
    scheduler: o.scheduler,
    seed,
    stream: request.stream || undefined,
    partial_images: request.stream || request.job ? request.partialImages : undefined,
  });
  if (request.job) {
    const job = await ctx.jobs.submit(plan, endpoint);
    log.job = job.id;
    res.status(202).setHeader('x-rng-seed', String(seed));
    res.setHeader('location', `${req.baseUrl}/images/jobs/${job.id}`);
    res.json(job.toJSON());
    return;
  }

  const signal = requestSignal(res);
  const stream = request.stream ? new EventStream(res, ctx.serving.keepAliveMs) : undefined;
  const events = EVENT_PREFIX[endpoint];
  let stepsRun = 0;
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
    const partials = stream && partialSender(stream, events, request, ctx.logger);
    const debug = ['DEBUG', 'TRACE'].includes(ctx.logger.level);
    const {
      result,
      encoded,
      usage: used,
    } = await runGeneration(ctx, plan, {
      signal,
      onStart: () => res.setHeader('x-rng-seed', String(seed)),
      onStep: ({ step, totalSteps, preview }: StepProgress) => {
        stepsRun += 1;
        ctx.metrics.step(resolved.served.name);
        if (debug) ctx.logger.debug(`${resolved.name}: image generation step ${step + 1}/${totalSteps}`);
        if (partials && preview?.length) partials.add(preview);
      },
      previews: stream ? request.partialImages : 0,
      previewMode: request.previewMode,
      log,
    });
    const metrics = result.metrics as Partial<GenerationResult['metrics']> | undefined;
    Object.assign(log, {
      size: `${result.width}x${result.height}`,
      scheduler: result.scheduler,
      steps_run: stepsRun,
      queue_ms: metrics?.queueMs !== undefined ? Math.round(metrics.queueMs) : undefined,
      generation_ms: metrics?.totalMs !== undefined ? Math.round(metrics.totalMs) : undefined,
    });
    const size = `${result.width}x${result.height}`;
    if (stream) {
      await partials!.done;
      for (const bytes of encoded) stream.send(imageEvent(`${events}.completed`, bytes, size, request, { seed, usage: used }));
      stream.end();
      return;
    }
    const data =
      request.responseFormat === 'url'
        ? await Promise.all(
            encoded.map(async (bytes) => ({
              url: `${baseUrl(req, ctx.serving)}${IMAGE_ROUTE}/${await ctx.store.put(bytes, request.outputFormat)}`,
              seed,
            })),
          )
        : encoded.map((bytes) => ({ b64_json: bytes.toString('base64'), seed }));
    res.json({
      created: unixNow(),
      data,
      background: 'opaque',
      quality: request.quality,
      output_format: request.outputFormat,
      size,
      usage: { ...used, output_tokens_details: { image_tokens: used.output_tokens, text_tokens: 0 } },
    });
  } catch (error) {
    const apiError = generationError(error, signal, resolved.served);
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
  }
}

export function imageRoutes(ctx: ImageRouteContext): express.Router {
  const router = express.Router();

  // Any content type but multipart is read as JSON, so `curl -d '{...}'` without a header works too.
  const json = bodyStage(
    express.json({ limit: JSON_LIMIT, type: (req) => !/^multipart\//i.test(String(req.headers['content-type'] ?? '')) }),
    { kind: 'json', maxBytes: JSON_LIMIT, timeouts: ctx.serving.timeouts },
  );
  router.post(
    '/images/generations',
    labelRoute('/images/generations'),
    json,
    handled(async (req, res) => {
      const body = req.body as unknown;
      if (typeof body !== 'object' || body === null || Array.isArray(body))
        throw new ApiError(400, 'images/generations takes a JSON object body', null, 'invalid_json');
      await generate(ctx, req, res, 'generations', body as Record<string, unknown>, 'json');
    }),
  );

  const multipart = (endpoint: Endpoint): express.RequestHandler[] => [
    labelRoute(`/images/${endpoint}`),
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
    router.all(path, labelRoute(path), (req) => {
      throw new ApiError(405, `${req.method} is not allowed on ${req.baseUrl}${path}; use POST`, null, 'method_not_allowed');
    });
  }
  return router;
}
