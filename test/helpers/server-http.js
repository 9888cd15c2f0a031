'use strict';
// Starting servers for tests: an Express app from createApp on 127.0.0.1, or the real CLI as a child process.
const http = require('http');
const path = require('path');
const { spawn } = require('child_process');
const { ROOT } = require('./paths');

/** Listens on a free loopback port; returns {url, close}. */
async function listen(app) {
  const server = http.createServer(app);
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${server.address().port}`;
  return {
    url,
    server,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(resolve);
      }),
  };
}

/** Runs fn(url, app) against createApp({models, ...options}) on a loopback port; closes and disposes after. */
async function withApp(models, fn, options = {}) {
  const { createApp } = require('../../dist/server/app');
  const app = createApp({ models, ...options });
  const server = await listen(app);
  try {
    return await fn(server.url, app);
  } finally {
    await server.close();
    app.dispose();
  }
}

const CLI = path.join(ROOT, 'bin', 'ov-diffusion.js');

/** Runs the CLI to completion: {status, stdout, stderr}. */
function runCli(args, { env = {}, timeoutMs = 120000, cwd = ROOT } = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], { cwd, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => {
      stdout += d;
    });
    child.stderr.on('data', (d) => {
      stderr += d;
    });
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`timeout: ${stderr}`));
    }, timeoutMs);
    child.on('exit', (status, signal) => {
      clearTimeout(timer);
      resolve({ status, signal, stdout, stderr });
    });
  });
}

/**
 * Starts the CLI serving on a free loopback port and waits until it is ready (every model loaded).
 * Returns {url, child, output(), stop()}.
 */
function startCli(args, { env = {}, timeoutMs = 120000, prefix = [] } = {}) {
  // prefix: a command that runs the server, e.g. setpriv to drop root's privileges
  const [command, ...argv] = [...prefix, process.execPath, CLI, '--rest_port', '0', '--rest_bind_address', '127.0.0.1', ...args];
  const child = spawn(command, argv, {
    cwd: ROOT,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  let url;
  const stop = () =>
    new Promise((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) return resolve();
      child.once('exit', resolve);
      child.kill('SIGTERM');
    });
  const started = new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`the server did not get ready:\n${output}`));
    }, timeoutMs);
    const onData = (data) => {
      output += data;
      const match = /listening on (http:\/\/[^\s]+)/.exec(output);
      if (match) url = match[1];
      if (url && /\]\[info\] ready: /.test(output)) {
        clearTimeout(timer);
        resolve();
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`the server exited with ${code}:\n${output}`));
    });
  });
  return started.then(() => ({ url, child, output: () => output, stop }));
}

/**
 * Splits a server-sent event body by the WHATWG rules the OpenAI clients follow: {events: [{event, data (parsed
 * JSON), raw}], comments: [text]}. Throws when an event's data is not JSON (every client would).
 */
function parseSse(text) {
  const events = [];
  const comments = [];
  for (const block of text.split(/\r\n\r\n|\n\n|\r\r/)) {
    if (!block) continue;
    let event;
    const data = [];
    for (const line of block.split(/\r\n|\n|\r/)) {
      if (line.startsWith(':')) comments.push(line.slice(1).trim());
      else if (line.startsWith('event:')) event = line.slice(6).trim();
      else if (line.startsWith('data:')) data.push(line.slice(5).replace(/^ /, ''));
    }
    if (data.length) events.push({ event, data: JSON.parse(data.join('\n')), raw: block });
    else if (event !== undefined) throw new Error(`an event without data: ${block}`);
  }
  return { events, comments };
}

module.exports = { listen, withApp, runCli, startCli, parseSse, CLI };
