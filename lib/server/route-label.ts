// The route a request is counted and logged under (the metrics' `route` label, the log line's `path`): set by the
// route that takes the request, read once it is answered.
import type { RequestHandler, Response } from 'express';

/** Middleware that files the request under `path` (a route pattern, not the concrete URL). */
export function labelRoute(path: string): RequestHandler {
  return (_req, res, next) => {
    res.locals.route = path;
    next();
  };
}

export function routeLabel(res: Response): string {
  return (res.locals.route as string | undefined) ?? (res.statusCode === 404 ? 'unmatched' : 'other');
}
