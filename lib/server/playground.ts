// The web playground: GET / is the page, GET /playground/* its script and style. They are built from
// lib/playground/ into dist/playground/ by scripts/build.js (no CDN, nothing fetched at run time). The page calls the
// API routes of the same app by relative URLs, so it works wherever the app is mounted. It holds no data: it is
// served without the API key, and asks for the key when the API answers 401.
import * as fs from 'fs';
import * as path from 'path';
import express = require('express');
import { ApiError } from './errors';
import { labelRoute } from './route-label';

/** dist/playground, beside dist/server. */
export const PLAYGROUND_DIR = path.join(__dirname, '..', 'playground');

// Only the page's own files: no inline script, no other origin (images arrive as data: previews and blob: results).
const CONTENT_SECURITY_POLICY = "default-src 'self'; img-src 'self' data: blob:; style-src 'self'; object-src 'none'; base-uri 'self'";

export function playgroundRoutes(dir = PLAYGROUND_DIR): express.Router {
  const router = express.Router();
  const page = path.join(dir, 'index.html');
  router.get('/', labelRoute('/'), (req, res) => {
    // Mounted under a path (/ai), the page's relative URLs need its trailing slash.
    const [pathname, search] = req.originalUrl.split(/\?(.*)/s);
    if (!pathname.endsWith('/')) return res.redirect(308, `${pathname}/${search ? `?${search}` : ''}`);
    if (!fs.existsSync(page))
      throw new ApiError(404, `the playground page is not built (${page} is missing): run npm run build`, null, 'not_found');
    res.setHeader('content-security-policy', CONTENT_SECURITY_POLICY);
    res.setHeader('cache-control', 'no-cache');
    res.sendFile(page);
  });
  router.use('/playground', labelRoute('/playground/{file}'), express.static(dir, { index: false, fallthrough: true, maxAge: 0 }));
  return router;
}
