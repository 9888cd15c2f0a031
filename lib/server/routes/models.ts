// GET /models and /models/{id}: the OpenAI model list, with every served model and LoRA alias.
import express = require('express');
import { ApiError, shown } from '../errors';
import { ModelRegistry, ServedModel } from '../registry';

const OWNER = 'ov-diffusion';

/** The OpenAI fields, and once the model is loaded the schedulers its requests may name. */
function modelObject(id: string, served: ServedModel) {
  const schedulers = served.model?.schedulers;
  return { id, object: 'model', created: served.created, owned_by: OWNER, ...(schedulers ? { schedulers } : {}) };
}

export function modelRoutes(registry: ModelRegistry): express.Router {
  const router = express.Router();
  router.get('/models', (_req, res) => {
    res.locals.route = '/models';
    res.json({ object: 'list', data: registry.names().map(({ id, served }) => modelObject(id, served)) });
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
