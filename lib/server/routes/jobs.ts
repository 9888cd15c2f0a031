// The background jobs over HTTP: GET /images/jobs (recent jobs, paginated), GET /images/jobs/{id},
// GET /images/jobs/{id}/events (server-sent events, resumable with Last-Event-ID), GET /images/jobs/{id}/content
// and DELETE /images/jobs/{id}. Jobs are created by POST /images/{generations,edits,variations} with background: true.
import express = require('express');
import type { Request } from 'express';
import type { OutputFormat } from '../../images';
import { ApiError, badField, shown } from '../errors';
import { handled } from '../inflight';
import { JOB_OBJECT, Job, JobStore } from '../jobs';
import { EventStream } from '../sse';
import { labelRoute } from '../route-label';

const CONTENT_TYPES: Record<OutputFormat, string> = { png: 'image/png', jpeg: 'image/jpeg', webp: 'image/webp' };
const LIST_LIMIT = { default: 20, max: 100 };

function findJob(jobs: JobStore, req: Request): Job {
  const id = String(req.params.id);
  const job = jobs.get(id);
  if (!job) throw new ApiError(404, `no job ${shown(id, 80)} (unknown, deleted or expired)`, 'id', 'job_not_found');
  return job;
}

/** A non-negative integer query or header value, or 400. */
function count(name: string, text: string, max = Number.MAX_SAFE_INTEGER): number {
  if (!/^\d{1,15}$/.test(text) || Number(text) > max)
    throw badField(name, `${name} must be an integer from 0 to ${max}, got ${shown(text)}`);
  return Number(text);
}

function query(req: Request, name: string): string | undefined {
  const value = req.query[name];
  if (value === undefined) return undefined;
  if (typeof value !== 'string') throw badField(name, `${name} is given more than once`);
  return value;
}

export function jobRoutes(jobs: JobStore, keepAliveMs: number): express.Router {
  const router = express.Router();

  router.get(
    '/images/jobs',
    labelRoute('/images/jobs'),
    handled(async (req, res) => {
      const limitText = query(req, 'limit');
      const limit = limitText === undefined ? LIST_LIMIT.default : count('limit', limitText, LIST_LIMIT.max);
      if (limit < 1) throw badField('limit', `limit must be from 1 to ${LIST_LIMIT.max}`);
      const order = query(req, 'order') ?? 'desc';
      if (order !== 'asc' && order !== 'desc') throw badField('order', `order must be asc or desc, got ${shown(order)}`);
      const after = query(req, 'after');
      if (after !== undefined && !jobs.get(after))
        throw badField('after', `after: no job ${shown(after, 80)} (unknown, deleted or expired)`, 'job_not_found');
      const { jobs: page, hasMore } = jobs.list(limit, order, after);
      res.json({
        object: 'list',
        data: page.map((job) => job.toJSON()),
        first_id: page[0]?.id ?? null,
        last_id: page.at(-1)?.id ?? null,
        has_more: hasMore,
      });
    }),
  );

  router.get(
    '/images/jobs/:id',
    labelRoute('/images/jobs/:id'),
    handled(async (req, res) => {
      res.json(findJob(jobs, req).toJSON());
    }),
  );

  router.delete(
    '/images/jobs/:id',
    labelRoute('/images/jobs/:id'),
    handled(async (req, res) => {
      const job = findJob(jobs, req);
      if (job.finished) {
        jobs.delete(job);
        res.json({ id: job.id, object: `${JOB_OBJECT}.deleted`, deleted: true });
        return;
      }
      await jobs.cancel(job);
      res.json(job.toJSON());
    }),
  );

  router.get(
    '/images/jobs/:id/content',
    labelRoute('/images/jobs/:id/content'),
    handled(async (req, res) => {
      const job = findJob(jobs, req);
      const indexText = query(req, 'index');
      const format = (query(req, 'format') ?? job.plan.request.outputFormat) as OutputFormat;
      if (!Object.hasOwn(CONTENT_TYPES, format))
        throw badField('format', `format must be png, jpeg or webp, got ${shown(format)}`, 'unsupported_value');
      if (job.status !== 'completed')
        throw new ApiError(
          409,
          `job ${job.id} is ${job.status}: its images can be read once it is completed`,
          null,
          job.finished ? 'job_not_completed' : 'job_not_ready',
        );
      const images = job.outcome!.encoded.length;
      const index = indexText === undefined ? 0 : count('index', indexText);
      if (index >= images) throw badField('index', `index must be below ${images} (the job made ${images} image(s)), got ${index}`);
      const bytes = await job.content(index, format);
      res.setHeader('content-type', CONTENT_TYPES[format]);
      res.setHeader('content-disposition', `inline; filename="${job.id}-${index}.${format === 'jpeg' ? 'jpg' : format}"`);
      res.setHeader('x-rng-seed', String(job.plan.seed));
      res.end(bytes);
    }),
  );

  router.get(
    '/images/jobs/:id/events',
    labelRoute('/images/jobs/:id/events'),
    handled(async (req, res) => {
      const job = findJob(jobs, req);
      const lastText = req.headers['last-event-id'] ?? query(req, 'last_event_id');
      const lastId = lastText === undefined || lastText === '' ? 0 : count('Last-Event-ID', String(lastText));
      const stream = new EventStream(res, keepAliveMs);
      stream.begin();
      stream.arm();
      await new Promise<void>((resolve) => {
        // The replay may reach the end before subscribe() returns its unsubscribe.
        const subscription: { stop?: () => void; over: boolean } = { over: false };
        const end = () => {
          if (subscription.over) return;
          subscription.over = true;
          subscription.stop?.();
          stream.end();
          resolve();
        };
        res.on('close', end);
        subscription.stop = job.subscribe(lastId, (event) => {
          if (event.id <= lastId) return; // a Last-Event-ID ahead of the job: those ids are not sent twice
          stream.send(event.data, event.id);
          if (/\.(completed|failed|cancelled)$/.test(event.data.type)) end();
        });
        if (subscription.over) subscription.stop();
        // Every event was sent before (a reconnect after the end): nothing more will come.
        else if (job.finished && lastId >= job.events.length) end();
      });
    }),
  );

  const paths: Array<[string, string]> = [
    ['/images/jobs', 'GET'],
    ['/images/jobs/:id', 'GET or DELETE'],
    ['/images/jobs/:id/content', 'GET'],
    ['/images/jobs/:id/events', 'GET'],
  ];
  for (const [path, allowed] of paths) {
    router.all(path, labelRoute(path), (req) => {
      throw new ApiError(405, `${req.method} is not allowed on ${req.baseUrl}${req.path}; use ${allowed}`, null, 'method_not_allowed');
    });
  }
  return router;
}
