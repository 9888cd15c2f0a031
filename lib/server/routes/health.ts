// Liveness and readiness: KServe v2 paths (/v2/health/live, /v2/health/ready, /v2/models/{name}/ready) as OVMS, and
// Kubernetes-style /healthz and /readyz. Ready = every model loaded and not shutting down.
import express = require('express');
import { ModelRegistry } from '../registry';

export function healthRoutes(registry: ModelRegistry, draining: () => boolean = () => false): express.Router {
  const router = express.Router();
  const status = () => Object.fromEntries(registry.models.map((m) => [m.name, m.state]));
  const ready = () => registry.allReady && !draining();
  router.use((req, res, next) => {
    if (req.path === '/healthz' || req.path === '/readyz' || req.path.startsWith('/v2/'))
      res.locals.route = req.path.startsWith('/v2/') ? '/v2/health' : req.path;
    next();
  });
  router.get('/v2/health/live', (_req, res) => {
    res.status(200).end();
  });
  router.get('/v2/health/ready', (_req, res) => {
    res.status(ready() ? 200 : 503).end();
  });
  router.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });
  router.get('/readyz', (_req, res) => {
    res.status(ready() ? 200 : 503).json({ status: draining() ? 'stopping' : registry.allReady ? 'ready' : 'loading', models: status() });
  });
  router.get(/^\/v2\/models\/(.+?)(?:\/versions\/\d+)?\/ready$/, (req, res) => {
    const name = decodeURIComponent(/^\/v2\/models\/(.+?)(?:\/versions\/\d+)?\/ready$/.exec(req.path)![1]);
    const found = registry.find(name);
    res.status(found?.served.state === 'ready' ? 200 : 404).end();
  });
  return router;
}
