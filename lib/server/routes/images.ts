// POST /images/generations (JSON, text-to-image) and POST /images/edits (multipart: image-to-image, or inpainting
// with a mask). Maps the request onto the library and the result onto the OpenAI response; no pipeline logic.
import express = require('express');
import type { Response } from 'express';
import type { GenerateOptions, GenerationResult, Task } from '../../diffusion-model';
import { ApiError, badField } from '../errors';
import { BodyKind, ImageRequest, buildImageRequest, readFields } from '../fields';
import { adaptersNotAvailable, libraryHasAdapters } from '../loras';
import { editFiles, parseMultipart, requireMultipart } from '../multipart';
import type { Logger } from '../log';
import { ModelLike, ModelRegistry, Resolved } from '../registry';

const TASK_WORDS: Record<Task, string> = { text2image: 'text-to-image', image2image: 'image-to-image', inpainting: 'inpainting' };
const JSON_LIMIT = '1mb';

/** Aborts the generation when the client goes away before the answer. */
function disconnectSignal(res: Response): AbortSignal {
  const controller = new AbortController();
  res.on('close', () => {
    if (!res.writableFinished) controller.abort(new Error('client disconnected'));
  });
  return controller.signal;
}

/** The LoRA part of the generate options: the adapters the model name selects, with their alphas. */
function adapterOptions(resolved: Resolved, model: ModelLike, request: ImageRequest): Partial<GenerateOptions> {
  const { served, target } = resolved;
  const active = served.loras.resolve(target, request.loraAlphas);
  if (served.loras.isEmpty) return {};
  if (!libraryHasAdapters(model)) {
    if (target.kind !== 'base') throw adaptersNotAvailable(resolved.name);
    return {};
  }
  return { adapters: active };
}

function checkTask(resolved: Resolved, model: ModelLike, task: Task): void {
  if (model.supports(task)) return;
  const what = `'${resolved.name}' (${model.className}) serves ${model.tasks.map((t) => TASK_WORDS[t]).join(', ')} only`;
  if (task === 'image2image' && model.supports('inpainting'))
    throw badField('mask', `${what}: it is a dedicated inpainting model, so /images/edits needs a mask`, 'model_not_supported');
  if (task === 'text2image' && model.supports('inpainting'))
    throw badField('model', `${what}: it is a dedicated inpainting model; send the image and a mask to /images/edits`, 'model_not_supported');
  throw badField('model', `${what}, not ${TASK_WORDS[task]}`, 'model_not_supported');
}

async function respond(res: Response, result: GenerationResult, request: ImageRequest): Promise<void> {
  const quality = request.outputFormat === 'png' ? undefined : request.outputCompression;
  const encoded = await Promise.all(result.images.map((image) => image.encode(request.outputFormat, { quality })));
  res.json({
    created: Math.floor(Date.now() / 1000),
    data: encoded.map((bytes) => ({ b64_json: bytes.toString('base64') })),
    background: 'opaque',
    output_format: request.outputFormat,
    size: `${result.width}x${result.height}`,
  });
}

interface Prepared { resolved: Resolved; model: ModelLike; request: ImageRequest; options: GenerateOptions }

/** Per-step progress in the log at DEBUG, as OVMS does ("Image Generation Step: i/N"). */
function stepLogger(logger: Logger | undefined, name: string): Pick<GenerateOptions, 'onStep'> {
  if (!logger || !['DEBUG', 'TRACE'].includes(logger.level)) return {};
  return { onStep: ({ step, totalSteps }) => logger.debug(`${name}: image generation step ${step + 1}/${totalSteps}`) };
}

async function prepare(registry: ModelRegistry, body: Record<string, unknown>, kind: BodyKind, task: Task, res: Response,
  logger?: Logger): Promise<Prepared> {
  const fields = readFields(body, kind);
  const resolved = registry.resolve(fields.model);
  const request = buildImageRequest(fields, resolved.served.settings, kind);
  const model = await resolved.served.ready.catch((error: Error) => {
    throw new ApiError(503, `model '${resolved.served.name}' failed to load: ${error.message}`, 'model', 'model_unavailable');
  });
  checkTask(resolved, model, task);
  const options = {
    ...request.options, ...adapterOptions(resolved, model, request), ...stepLogger(logger, resolved.name), signal: disconnectSignal(res),
  };
  return { resolved, model, request, options };
}

export function imageRoutes(registry: ModelRegistry, logger?: Logger): express.Router {
  const router = express.Router();

  // Any content type but multipart is read as JSON, so `curl -d '{...}'` without a header works too.
  const json = express.json({ limit: JSON_LIMIT, type: (req) => !/^multipart\//i.test(String(req.headers['content-type'] ?? '')) });
  router.post('/images/generations', json, async (req, res) => {
    const body = req.body as unknown;
    if (typeof body !== 'object' || body === null || Array.isArray(body))
      throw new ApiError(400, 'images/generations takes a JSON object body', null, 'invalid_json');
    const { model, request, options } = await prepare(registry, body as Record<string, unknown>, 'json', 'text2image', res, logger);
    await respond(res, await model.text2image(request.prompt, options), request);
  });

  router.post('/images/edits', (req, _res, next) => next(requireMultipart(req.headers['content-type'])), parseMultipart, async (req, res) => {
    const body = (req.body ?? {}) as Record<string, unknown>;
    const files = editFiles(req.files as Express.Multer.File[] | undefined, body);
    const task: Task = files.mask ? 'inpainting' : 'image2image';
    const { model, request, options } = await prepare(registry, body, 'multipart', task, res, logger);
    const result = files.mask
      ? await model.inpaint(request.prompt, files.image, files.mask, options)
      : await model.image2image(request.prompt, files.image, options);
    await respond(res, result, request);
  });

  for (const path of ['/images/generations', '/images/edits']) {
    router.all(path, (req) => {
      throw new ApiError(405, `${req.method} is not allowed on ${req.baseUrl}${path}; use POST`, null, 'method_not_allowed');
    });
  }
  router.all('/images/variations', () => {
    throw new ApiError(404, 'images/variations is not served: use /images/edits for image-to-image', null, 'unknown_url');
  });
  return router;
}
