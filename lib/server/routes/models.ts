// GET /models and /models/{id}: the OpenAI model list, with every served model and LoRA alias. GET /images/models:
// what each of those names accepts (tasks, LoRA alphas, schedulers, limits), for forms such as the playground's.
import express = require('express');
import { modelFamily } from '../../families';
import { ApiError, shown } from '../errors';
import { SCHEDULERS } from '../fields';
import { ModelRegistry, ServedModel } from '../registry';
import { sizeText } from '../settings';
import { labelRoute } from '../route-label';

const OWNER = 'ov-diffusion';

/** The OpenAI model object, plus (once the model has loaded) its pipeline class, family, tasks and the schedulers its requests may name. */
function modelObject(id: string, served: ServedModel) {
  const base = { id, object: 'model', created: served.created, owned_by: OWNER };
  const model = served.model;
  if (!model) return base;
  return {
    ...base,
    class_name: model.className,
    family: modelFamily(model.className) ?? null,
    tasks: [...model.tasks],
    schedulers: [...model.schedulers],
  };
}

/** One routable name's options. The model-dependent ones (tasks, class, alphas) are null while the model loads. */
function modelOptions(registry: ModelRegistry, id: string, served: ServedModel) {
  const { target } = registry.find(id)!;
  const { settings, model, loras } = served;
  const alphas = model && target.kind !== 'base' ? model.adapterChoices(target.alias) : undefined;
  return {
    id,
    object: 'image.model_options',
    base_model: served.name,
    kind: target.kind === 'base' ? 'model' : target.kind,
    state: served.state,
    class_name: model?.className ?? null,
    tasks: model ? [...model.tasks] : null,
    // The adapters this name runs, with their default alphas; lora_alphas may override them unless the adapters are static.
    lora_alphas: alphas ? Object.fromEntries(alphas.map((choice) => [choice.name, choice.alpha])) : target.kind === 'base' ? {} : null,
    lora_alphas_allowed: !loras.isEmpty && !loras.staticMode,
    schedulers: model ? [...model.schedulers] : SCHEDULERS,
    sizes: settings.resolutions.map(sizeText),
    default_size: settings.defaultResolution ? sizeText(settings.defaultResolution) : null,
    max_size: sizeText(settings.maxResolution),
    default_num_inference_steps: settings.defaultNumInferenceSteps,
    default_guidance_scale: settings.defaultGuidanceScale ?? null,
    // null: loaded without DeepCache (requests may not set deepcache_interval above 1)
    default_deepcache_interval: settings.deepcacheInterval ?? null,
    max_num_inference_steps: settings.maxNumInferenceSteps,
    max_n: settings.maxNumImagesPerPrompt,
    fixed_n: settings.staticNumImagesPerPrompt ?? null,
    fixed_guidance_scale: settings.staticGuidanceScale ?? null,
  };
}

export function modelRoutes(registry: ModelRegistry): express.Router {
  const router = express.Router();
  router.get('/models', (_req, res) => {
    res.locals.route = '/models';
    res.json({ object: 'list', data: registry.names().map(({ id, served }) => modelObject(id, served)) });
  });
  router.get('/images/models', labelRoute('/images/models'), (_req, res) => {
    res.json({ object: 'list', data: registry.names().map(({ id, served }) => modelOptions(registry, id, served)) });
  });
  // Model ids contain slashes (OpenVINO/stable-diffusion-v1-5-int8-ov): take the rest of the path, encoded or not.
  router.get(/^\/models\/(.+)$/, (req, res) => {
    res.locals.route = '/models/{id}';
    const raw = req.path.slice('/models/'.length);
    let id: string;
    try {
      id = decodeURIComponent(raw);
    } catch {
      throw new ApiError(400, `malformed model id ${shown(raw, 200)}`, 'model', 'invalid_value');
    }
    const found = registry.find(id);
    if (!found) throw new ApiError(404, `The model ${shown(id, 200)} does not exist on this server`, 'model', 'model_not_found');
    res.json(modelObject(id, found.served));
  });
  return router;
}
