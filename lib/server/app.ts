// The Express app: routes under /v3, /v1 (and OVMS's /v3/v1), API-key auth, health, OpenAI-shaped errors. No listen().
import * as crypto from 'crypto';
import express = require('express');
import type { RequestHandler } from 'express';
import { ApiError, errorHandler, notFound } from './errors';
import { Logger, silentLogger } from './log';
import { ModelRegistry, ServedModelInit } from './registry';
import { healthRoutes } from './routes/health';
import { imageRoutes } from './routes/images';
import { modelRoutes } from './routes/models';

export interface AppOptions {
  /** The models to serve (or a registry built from them). */
  models: ServedModelInit[] | ModelRegistry;
  /** When set, /v1 and /v3 requests need "Authorization: Bearer <apiKey>". */
  apiKey?: string;
  logger?: Logger;
}

export const API_PREFIXES = ['/v3/v1', '/v3', '/v1'];

function apiKeyCheck(apiKey: string): RequestHandler {
  const expected = crypto.createHash('sha256').update(`Bearer ${apiKey}`).digest();
  return (req, _res, next) => {
    const given = crypto.createHash('sha256').update(String(req.headers.authorization ?? '')).digest();
    if (crypto.timingSafeEqual(given, expected)) return next();
    next(new ApiError(401, 'Unauthorized request due to invalid or missing api-key: send "Authorization: Bearer <key>"',
      null, 'invalid_api_key'));
  };
}

function requestLog(logger: Logger): RequestHandler {
  return (req, res, next) => {
    const started = performance.now();
    const id = crypto.randomUUID();
    res.setHeader('x-request-id', id);
    res.on('finish', () => {
      const line = `${req.method} ${req.originalUrl} ${res.statusCode} ${Math.round(performance.now() - started)}ms`;
      if (req.path.startsWith('/v2/health') || req.path === '/healthz' || req.path === '/readyz') logger.debug(line);
      else logger.info(line);
    });
    next();
  };
}

export function createApp(options: AppOptions): express.Express & { registry: ModelRegistry } {
  const registry = options.models instanceof ModelRegistry ? options.models : new ModelRegistry(options.models);
  const logger = options.logger ?? silentLogger();
  const app = express();
  app.disable('x-powered-by');
  app.set('query parser', 'simple');
  app.use(requestLog(logger));
  app.use(healthRoutes(registry));
  if (options.apiKey) app.use(API_PREFIXES, apiKeyCheck(options.apiKey));
  for (const prefix of API_PREFIXES) {
    app.use(prefix, imageRoutes(registry, logger));
    app.use(prefix, modelRoutes(registry));
  }
  app.use(notFound);
  app.use(errorHandler((error, cause) => {
    if (error.status >= 500) logger.error(`${error.status} ${error.message}${cause instanceof Error && cause.stack && !(cause instanceof ApiError) ? `\n${cause.stack}` : ''}`);
    else logger.debug(`${error.status} ${error.message}`);
  }));
  return Object.assign(app, { registry });
}
