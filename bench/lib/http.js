'use strict';
// Minimal HTTP client for the server cases: keep-alive, timings measured from send to the last byte.
const http = require('http');

const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });

/**
 * One request. `marks`: strings to watch for in the body (e.g. SSE event names); the result's `markMs` gives the
 * time each first appeared, from the start of the request.
 */
function request(url, { method = 'GET', body, headers = {}, marks = [] } = {}) {
  return new Promise((resolve, reject) => {
    const payload = body === undefined ? undefined : Buffer.from(typeof body === 'string' ? body : JSON.stringify(body));
    const start = performance.now();
    const req = http.request(
      url,
      {
        method,
        agent,
        headers: { ...(payload ? { 'content-type': 'application/json', 'content-length': payload.length } : {}), ...headers },
      },
      (res) => {
        const chunks = [];
        let firstByteMs;
        const markMs = {};
        let tail = '';
        res.on('data', (c) => {
          const now = performance.now() - start;
          if (firstByteMs === undefined) firstByteMs = now;
          chunks.push(c);
          if (marks.length) {
            const text = tail + c.toString('latin1');
            for (const mark of marks) if (markMs[mark] === undefined && text.includes(mark)) markMs[mark] = now;
            tail = text.slice(-200);
          }
        });
        res.on('end', () => {
          const buffer = Buffer.concat(chunks);
          resolve({ status: res.statusCode, headers: res.headers, body: buffer, ms: performance.now() - start, firstByteMs, markMs });
        });
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    if (payload) req.write(payload);
    req.end();
  });
}

/**
 * Sends GET `url` every `intervalMs` until stop() and records each answer's latency (ms). Requests are not
 * serialized: a slow answer does not delay the next send, as a monitoring client would behave.
 */
function startProbe(url, intervalMs = 10) {
  const latencies = [];
  let failures = 0;
  let inFlight = 0;
  let stopped = false;
  const timer = setInterval(() => {
    if (stopped) return;
    inFlight += 1;
    request(url)
      .then(
        (r) => {
          if (r.status === 200) latencies.push(r.ms);
          else failures += 1;
        },
        () => {
          failures += 1;
        },
      )
      .finally(() => {
        inFlight -= 1;
      });
  }, intervalMs);
  return {
    async stop() {
      stopped = true;
      clearInterval(timer);
      while (inFlight > 0) await new Promise((r) => setTimeout(r, 5));
      return { latencies, failures };
    },
  };
}

module.exports = { request, startProbe, agent };
