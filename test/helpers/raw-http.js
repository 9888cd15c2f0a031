'use strict';
// Raw HTTP for tests that a fetch client cannot express: half-sent bodies, false Content-Length, Expect headers,
// malformed request lines, clients that leave mid-upload. Requests are written with node's net module, piece by
// piece; the answer is read off the socket, 1xx interim answers included.
const net = require('net');

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** A request head: `POST /path HTTP/1.1` and headers (an object; Host is added). */
function head(method, path, headers = {}) {
  const lines = [`${method} ${path} HTTP/1.1`, 'Host: test'];
  for (const [name, value] of Object.entries(headers)) {
    for (const v of Array.isArray(value) ? value : [value]) lines.push(`${name}: ${v}`);
  }
  return Buffer.from(`${lines.join('\r\n')}\r\n\r\n`, 'latin1');
}

/** A whole request with a body and its Content-Length (unless headers give one, or transfer-encoding). */
function request(method, path, headers = {}, body = Buffer.alloc(0)) {
  const bytes = Buffer.isBuffer(body) ? body : Buffer.from(body);
  const names = Object.keys(headers).map((n) => n.toLowerCase());
  const extra = names.includes('content-length') || names.includes('transfer-encoding') ? {} : { 'Content-Length': bytes.length };
  return Buffer.concat([head(method, path, { ...headers, ...extra }), bytes]);
}

/** A multipart/form-data body: parts are {name, value} or {name, filename, type, data}. */
function multipart(parts, boundary = 'ovdBoundary7MA4YWxkTrZu0gW') {
  const chunks = [];
  for (const part of parts) {
    if (part.raw !== undefined) {
      chunks.push(Buffer.from(part.raw, 'latin1'));
      continue;
    }
    let disposition = `form-data; name="${part.name}"`;
    if (part.filename !== undefined) disposition += `; filename="${part.filename}"`;
    const lines = [`--${boundary}`, `Content-Disposition: ${disposition}`];
    if (part.filename !== undefined) lines.push(`Content-Type: ${part.type ?? 'image/png'}`);
    chunks.push(Buffer.from(`${lines.join('\r\n')}\r\n\r\n`, 'utf8'));
    chunks.push(Buffer.isBuffer(part.data) ? part.data : Buffer.from(part.value ?? part.data ?? '', 'utf8'));
    chunks.push(Buffer.from('\r\n'));
  }
  chunks.push(Buffer.from(`--${boundary}--\r\n`));
  return { body: Buffer.concat(chunks), contentType: `multipart/form-data; boundary=${boundary}`, boundary };
}

/** Parses one HTTP response out of `buffer`: {status, headers, body} or undefined while incomplete. */
function parseResponse(buffer, closed) {
  const end = buffer.indexOf('\r\n\r\n');
  if (end < 0) return undefined;
  const [statusLine, ...lines] = buffer.subarray(0, end).toString('latin1').split('\r\n');
  const status = Number(statusLine.split(' ')[1]);
  const headers = {};
  for (const line of lines) {
    const i = line.indexOf(':');
    headers[line.slice(0, i).trim().toLowerCase()] = line.slice(i + 1).trim();
  }
  const rest = buffer.subarray(end + 4);
  if (status >= 100 && status < 200) return { status, headers, interim: true, consumed: end + 4 };
  if (headers['content-length'] !== undefined) {
    const length = Number(headers['content-length']);
    if (rest.length < length) return undefined;
    return { status, headers, body: rest.subarray(0, length), consumed: end + 4 + length };
  }
  if (headers['transfer-encoding'] === 'chunked') {
    const parts = [];
    let o = 0;
    for (;;) {
      const lineEnd = rest.indexOf('\r\n', o);
      if (lineEnd < 0) return undefined;
      const size = parseInt(rest.toString('latin1', o, lineEnd), 16);
      if (size === 0) return { status, headers, body: Buffer.concat(parts), consumed: buffer.length };
      if (rest.length < lineEnd + 2 + size + 2) return undefined;
      parts.push(rest.subarray(lineEnd + 2, lineEnd + 2 + size));
      o = lineEnd + 2 + size + 2;
    }
  }
  return closed ? { status, headers, body: rest, consumed: buffer.length } : undefined;
}

/**
 * Sends `pieces` (Buffers, strings, or {wait: ms}) on a fresh connection and resolves with the first final answer:
 * {status, headers, body, json, interim: [1xx statuses], ms, closedBy}. Rejects after timeoutMs without one (a hang).
 * With abortAfterWrite the socket is destroyed once everything is written, and resolves with {aborted: true}.
 */
function send(url, pieces, { timeoutMs = 8000, abortAfterWrite = false } = {}) {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const socket = net.connect(Number(port), hostname);
    let buffer = Buffer.alloc(0);
    const interim = [];
    let done = false;
    const finish = (error, value) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      if (error) reject(error);
      else resolve(value);
    };
    const timer = setTimeout(
      () => finish(new Error(`no answer within ${timeoutMs} ms (got ${JSON.stringify(buffer.toString('latin1').slice(0, 200))})`)),
      timeoutMs,
    );
    const tryParse = (closed) => {
      for (;;) {
        const parsed = parseResponse(buffer, closed);
        if (!parsed) {
          if (closed)
            finish(new Error(`connection closed without an answer (got ${JSON.stringify(buffer.toString('latin1').slice(0, 200))})`));
          return;
        }
        buffer = buffer.subarray(parsed.consumed);
        if (parsed.interim) {
          interim.push(parsed.status);
          continue;
        }
        let json;
        try {
          json = JSON.parse(parsed.body.toString('utf8'));
        } catch {
          json = undefined;
        }
        finish(null, { status: parsed.status, headers: parsed.headers, body: parsed.body, json, interim, ms: performance.now() - started });
        return;
      }
    };
    socket.on('data', (data) => {
      buffer = Buffer.concat([buffer, data]);
      tryParse(false);
    });
    socket.on('close', () => tryParse(true));
    socket.on('error', () => {
      // A server that answers and closes while the client still writes may reset the connection; the answer read
      // so far counts.
      tryParse(true);
    });
    socket.on('connect', async () => {
      for (const piece of pieces) {
        if (done) return;
        if (piece && typeof piece === 'object' && 'wait' in piece) await sleep(piece.wait);
        else if (!socket.destroyed) socket.write(piece);
      }
      if (abortAfterWrite) {
        await sleep(50);
        finish(null, { aborted: true, interim, ms: performance.now() - started });
      }
    });
  });
}

module.exports = { head, request, multipart, send, sleep };
