'use strict';
// A local stand-in for the Hugging Face hub on 127.0.0.1, serving folders in the hub's URL layout:
//   GET /api/models/{repo}/tree/{revision}?recursive=true  file list with sizes, git oids and LFS sha256 (paginated by Link)
//   GET /api/models/{repo}                                  {id, siblings: [{rfilename}]}
//   GET /{repo}/resolve/{revision}/{path}                    the file, with HTTP Range (206 / 416)
// It can demand a token, cut a download short after some bytes to test resuming, or stall one mid-file (`stall`).
// Every request is logged.
const crypto = require('crypto');
const fs = require('fs');
const http = require('http');
const path = require('path');

const LFS = /\.(bin|safetensors|onnx|xml)$/;

function walk(dir, prefix = '') {
  return fs
    .readdirSync(dir, { withFileTypes: true })
    .sort((a, b) => a.name.localeCompare(b.name))
    .flatMap((entry) => {
      const rel = prefix ? `${prefix}/${entry.name}` : entry.name;
      return entry.isDirectory() ? walk(path.join(dir, entry.name), rel) : [rel];
    });
}

function describe(dir, rel) {
  const bytes = fs.readFileSync(path.join(dir, rel));
  const gitOid = crypto.createHash('sha1').update(`blob ${bytes.length}\0`).update(bytes).digest('hex');
  const entry = { type: 'file', path: rel, size: bytes.length, oid: gitOid };
  if (LFS.test(rel)) entry.lfs = { oid: crypto.createHash('sha256').update(bytes).digest('hex'), size: bytes.length, pointerSize: 134 };
  return entry;
}

/**
 * repos: {'org/name': folder}. options: token (required Bearer token), pageSize (tree entries per page),
 * interrupt: {file, afterBytes, times} (the first `times` downloads of that file stop after afterBytes),
 * corrupt: {file} (serve wrong bytes of the right length for that file).
 */
async function startHubServer(repos, options = {}) {
  const log = [];
  const interruptsLeft = { count: options.interrupt?.times ?? 0 };
  const server = http.createServer((req, res) => {
    const url = new URL(req.url, 'http://hub');
    log.push({ method: req.method, path: decodeURIComponent(url.pathname), range: req.headers.range, auth: req.headers.authorization });
    const send = (status, body, headers = {}) => {
      res.writeHead(status, { 'content-type': 'application/json', ...headers });
      res.end(typeof body === 'string' ? body : JSON.stringify(body));
    };
    if (options.token && req.headers.authorization !== `Bearer ${options.token}`)
      return send(401, { error: 'Invalid credentials in Authorization header' });
    const findRepo = (rest) => Object.keys(repos).find((repo) => rest === repo || rest.startsWith(`${repo}/`));

    let match = /^\/api\/models\/(.+)\/tree\/([^/]+)\/?$/.exec(url.pathname);
    if (match) {
      const repo = decodeURIComponent(match[1]);
      if (!repos[repo]) return send(404, { error: 'Repository not found' });
      const entries = walk(repos[repo]).map((rel) => describe(repos[repo], rel));
      const pageSize = options.pageSize ?? 1000;
      const cursor = Number(url.searchParams.get('cursor') ?? 0);
      const page = entries.slice(cursor, cursor + pageSize);
      const headers = {};
      if (cursor + pageSize < entries.length) {
        const next = new URL(url);
        next.searchParams.set('cursor', String(cursor + pageSize));
        headers.Link = `<http://${req.headers.host}${next.pathname}${next.search}>; rel="next"`;
      }
      return send(200, page, headers);
    }
    match = /^\/api\/models\/(.+)$/.exec(url.pathname);
    if (match) {
      const repo = decodeURIComponent(match[1]);
      if (!repos[repo]) return send(404, { error: 'Repository not found' });
      return send(200, { id: repo, siblings: walk(repos[repo]).map((rfilename) => ({ rfilename })) });
    }
    const rest = decodeURIComponent(url.pathname.slice(1));
    const repo = findRepo(rest);
    match = repo && new RegExp(`^${repo.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}/resolve/([^/]+)/(.+)$`).exec(rest);
    if (!match) return send(404, { error: 'Entry not found' });
    const file = path.join(repos[repo], match[2]);
    if (!fs.existsSync(file) || !file.startsWith(repos[repo])) return send(404, { error: 'Entry not found' });
    let bytes = fs.readFileSync(file);
    if (options.corrupt?.file === match[2]) bytes = Buffer.alloc(bytes.length, 7);
    let start = 0;
    const range = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
    if (range) {
      start = Number(range[1]);
      if (start >= bytes.length) return send(416, { error: 'Range Not Satisfiable' }, { 'content-range': `bytes */${bytes.length}` });
    }
    const body = bytes.subarray(start);
    res.writeHead(range ? 206 : 200, {
      'content-type': 'application/octet-stream',
      'content-length': body.length,
      'accept-ranges': 'bytes',
      ...(range ? { 'content-range': `bytes ${start}-${bytes.length - 1}/${bytes.length}` } : {}),
    });
    if (options.stall?.file === match[2] && body.length > options.stall.afterBytes) {
      // Sends the first bytes, then nothing more (the connection stays open): a download caught mid-file.
      res.write(body.subarray(0, options.stall.afterBytes));
      return undefined;
    }
    if (options.interrupt?.file === match[2] && interruptsLeft.count > 0 && body.length > options.interrupt.afterBytes) {
      interruptsLeft.count -= 1;
      res.write(body.subarray(0, options.interrupt.afterBytes), () => setTimeout(() => res.socket.destroy(), 20));
      return undefined;
    }
    res.end(body);
    return undefined;
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${server.address().port}`,
    log,
    downloads: () => log.filter((r) => r.path.includes('/resolve/')),
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(resolve);
      }),
  };
}

module.exports = { startHubServer, walk };
