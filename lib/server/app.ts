// The Express app: routes under /v3, /v1 (and OVMS's /v3/v1), API-key auth, health, /metrics, the images of
// response_format=url, OpenAI-shaped errors, one log line per request, and the drain a shutdown runs. No listen().
import * as crypto from 'crypto';
import express = require('express');
import type { RequestHandler, Response } from 'express';
import { DEFAULT_TIMEOUTS, RequestTimeouts, refuseExpectation } from './body';
import { ApiError, errorHandler, notFound } from './errors';
import { ImageStore } from './image-store';
import { InFlight, whenHandled } from './inflight';
import { JOB_DEFAULTS, JobStore } from './jobs';
import { Logger, silentLogger } from './log';
import { MemoryAdmission } from './memory';
import { ServerMetrics } from './metrics';
import { ModelRegistry, ServedModelInit } from './registry';
import { healthRoutes } from './routes/health';
import { jobRoutes } from './routes/jobs';
import { ImageRouteContext, RequestLogFields, ServingOptions, imageRoutes } from './routes/images';
import { modelRoutes } from './routes/models';
import { playgroundRoutes } from './playground';
import { DEFAULT_KEEP_ALIVE_MS } from './sse';
import { routeLabel } from './route-label';

export type { ServingOptions } from './routes/images';

export interface AppOptions {
  /** The models to serve (or a registry built from them). */
  models: ServedModelInit[] | ModelRegistry;
  /** When set, /v1 and /v3 requests need "Authorization: Bearer <apiKey>". */
  apiKey?: string;
  /** /metrics needs the API key as well (default: open like the health checks; see docs/server.md). */
  metricsApiKey?: boolean;
  logger?: Logger;
  serving?: Partial<Omit<ServingOptions, 'timeouts'>> & { timeouts?: Partial<RequestTimeouts> };
  /** How long response_format=url images are kept, in seconds (0: url refused). Default 3600. */
  imageUrlTtlSeconds?: number;
  /** Add prom-client's process metrics (CPU, memory, event loop) to /metrics. */
  processMetrics?: boolean;
  /**
   * Memory admission (lib/server/memory.ts): the bytes the process may use, loaded models and request peaks together;
   * requests that cannot fit are refused before they start. Needs the models' folders (ServedModelInit.path).
   * Default 0: off (the CLI's --memory_budget defaults to 90% of the machine's memory).
   */
  memoryBudgetBytes?: number;
  /** Background jobs: how many are kept (0: background: true is refused) and how long finished ones stay, in seconds. */
  jobs?: { maxJobs?: number; ttlSeconds?: number };
  /** The web playground at / (lib/server/playground.ts). Default true; the CLI's --no_playground turns it off. */
  playground?: boolean;
}

export interface App extends express.Express {
  registry: ModelRegistry;
  metrics: ServerMetrics;
  images: ImageStore;
  inflight: InFlight;
  jobs: JobStore;
  /**
   * Refuses new API requests, lets those in progress (and background jobs) finish for graceMs, then cancels the rest.
   * Returns how many were cancelled.
   */
  drain(graceMs: number): Promise<number>;
  /** Deletes the stored images, cancels and forgets the jobs. */
  dispose(): void;
}

export const API_PREFIXES = ['/v3/v1', '/v3', '/v1'];
const QUIET_ROUTES = new Set(['/v2/health', '/healthz', '/readyz', '/metrics', '/playground/{file}']);

function apiKeyCheck(apiKey: string): RequestHandler {
  const expected = crypto.createHash('sha256').update(`Bearer ${apiKey}`).digest();
  return (req, _res, next) => {
    const given = crypto
      .createHash('sha256')
      .update(String(req.headers.authorization ?? ''))
      .digest();
    if (crypto.timingSafeEqual(given, expected)) return next();
    next(
      new ApiError(
        401,
        'Unauthorized request due to invalid or missing api-key: send "Authorization: Bearer <key>"',
        null,
        'invalid_api_key',
      ),
    );
  };
}

/** key=value pairs; values with spaces or quotes are JSON strings. */
function logfmt(fields: RequestLogFields): string {
  return Object.entries(fields)
    .filter(([, v]) => v !== undefined && v !== '')
    .map(([k, v]) => `${k}=${typeof v === 'string' && /[\s"=]/.test(v) ? JSON.stringify(v) : String(v)}`)
    .join(' ');
}

/** One structured line per request (health and metrics at DEBUG), and the HTTP metrics. */
function requestLog(logger: Logger, metrics: ServerMetrics): RequestHandler {
  return (req, res, next) => {
    const started = performance.now();
    const id = crypto.randomUUID();
    res.setHeader('x-request-id', id);
    // Written when the response is over and the handler too (a cancelled generation ends after its client left).
    res.on('close', () =>
      whenHandled(res).then(() => {
        const ms = performance.now() - started;
        const route = routeLabel(res);
        // A response the client cut off (before or during a stream) is a 499, as nginx logs it.
        const status = res.writableFinished ? res.statusCode : 499;
        metrics.request(req.method, route, status, ms / 1000);
        const line = `request ${logfmt({
          id,
          method: req.method,
          path: req.originalUrl,
          status,
          time_ms: Math.round(ms),
          ...(res.locals.log as RequestLogFields | undefined),
        })}`;
        if (QUIET_ROUTES.has(route) || req.path.startsWith('/v2/')) logger.debug(line);
        else logger.info(line);
      }),
    );
    next();
  };
}

export function createApp(options: AppOptions): App {
  const registry = options.models instanceof ModelRegistry ? options.models : new ModelRegistry(options.models);
  const logger = options.logger ?? silentLogger();
  const memory = new MemoryAdmission({ budgetBytes: options.memoryBudgetBytes ?? 0 });
  const metrics = new ServerMetrics(registry, { processMetrics: options.processMetrics, memory });
  const images = new ImageStore((options.imageUrlTtlSeconds ?? 3600) * 1000);
  const inflight = new InFlight();
  const serving: ServingOptions = {
    pngMetadata: true,
    variationPrompt: '',
    keepAliveMs: DEFAULT_KEEP_ALIVE_MS,
    ...options.serving,
    timeouts: { ...DEFAULT_TIMEOUTS, ...options.serving?.timeouts },
  };

  const reportError = (res: Response, error: ApiError, cause: unknown) => {
    metrics.error(routeLabel(res), error.code ?? String(error.status));
    if (error.status >= 500)
      logger.error(
        `${error.status} ${error.message}${cause instanceof Error && cause.stack && !(cause instanceof ApiError) ? `\n${cause.stack}` : ''}`,
      );
    else logger.debug(`${error.status} ${error.message}`);
  };
  const jobs = new JobStore(
    { registry, serving, metrics, store: images, logger, memory },
    {
      maxJobs: options.jobs?.maxJobs ?? JOB_DEFAULTS.maxJobs,
      ttlMs: (options.jobs?.ttlSeconds ?? JOB_DEFAULTS.ttlSeconds) * 1000,
    },
  );
  metrics.watchJobs(() => jobs.counts());
  const context: ImageRouteContext = { registry, serving, metrics, store: images, logger, reportError, memory, jobs };

  const app = express();
  app.disable('x-powered-by');
  app.set('query parser', 'simple');
  app.use(requestLog(logger, metrics));
  app.use(refuseExpectation);
  app.use(healthRoutes(registry, () => inflight.draining));
  if (options.apiKey && options.metricsApiKey) app.use('/metrics', apiKeyCheck(options.apiKey));
  app.use(metrics.router());
  app.use(images.router());
  if (options.playground ?? true) app.use(playgroundRoutes());
  app.use(API_PREFIXES, inflight.middleware());
  if (options.apiKey) app.use(API_PREFIXES, apiKeyCheck(options.apiKey));
  for (const prefix of API_PREFIXES) {
    app.use(prefix, imageRoutes(context));
    app.use(prefix, jobRoutes(jobs, serving.keepAliveMs));
    app.use(prefix, modelRoutes(registry));
  }
  app.use(notFound);
  app.use(
    errorHandler((error, cause, res) => {
      const log = (res.locals.log ??= {}) as RequestLogFields;
      log.error ??= error.code ?? String(error.status);
      reportError(res, error, cause);
    }),
  );
  return Object.assign(app, {
    registry,
    metrics,
    images,
    inflight,
    jobs,
    // Background jobs get the same grace as requests (their event streams are requests, and end with them).
    drain: async (graceMs: number) => {
      const [requests, cancelledJobs] = await Promise.all([inflight.drain(graceMs), jobs.drain(graceMs)]);
      return requests + cancelledJobs;
    },
    dispose: () => {
      jobs.close();
      images.close();
    },
  });
}
