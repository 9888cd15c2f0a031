'use strict';
// Starting servers for tests (an Express app from createApp on 127.0.0.1, or the real CLI as a child process) and
// the requests and checks the family server tests make against them.
const assert = require('node:assert/strict');
const fs = require('fs');
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
 * The CLI on `args`, started before a test file's tests and stopped after them (the file's one server): {url, post,
 * postImage, postRefused, assertModelReport}.
 * post(route, body) sends JSON, or a FormData as multipart, to /v3/images/<route> and returns {status, json}.
 */
function cliForTests(args) {
  const test = require('node:test'); // here, not at the top: scripts use this file too
  let server;
  const handle = {
    url: undefined,
    async post(route, body) {
      const res = await fetch(
        `${handle.url}/v3/images/${route}`,
        body instanceof FormData
          ? { method: 'POST', body }
          : {
              method: 'POST',
              headers: { 'content-type': 'application/json' },
              body: JSON.stringify(body),
            },
      );
      return { status: res.status, json: await res.json() };
    },
    /** post(), asserting a 400 (`label` heads the failure message): the response's error ({message, param, ...}). */
    async postRefused(route, body, label) {
      const res = await handle.post(route, body);
      assert.equal(res.status, 400, `${label ? `${label}: ` : ''}${JSON.stringify(res.json).slice(0, 300)}`);
      return res.json.error;
    },
    /** Asserts what /v3/models/<name> reports: its class, family and tasks (in any order). */
    async assertModelReport(name, { className, family, tasks }) {
      const model = await (await fetch(`${handle.url}/v3/models/${name}`)).json();
      assert.deepEqual(
        { className: model.class_name, family: model.family, tasks: [...model.tasks].sort() },
        { className, family, tasks: [...tasks].sort() },
      );
    },
    /** post(), asserting a 200: the response's first image, decoded ({data, info}). */
    async postImage(route, body) {
      const res = await handle.post(route, body);
      assert.equal(res.status, 200, JSON.stringify(res.json).slice(0, 300));
      return firstImagePixels(res.json);
    },
  };
  test.before(async () => {
    server = await startCli(args);
    handle.url = server.url;
  });
  test.after(async () => {
    await server?.stop();
  });
  return handle;
}

/** An images response's first image (b64_json), decoded: sharp's {data, info}. */
const firstImagePixels = async (json) =>
  require('sharp')(Buffer.from(json.data[0].b64_json, 'base64')).raw().toBuffer({ resolveWithObject: true });

/** Asserts that `data`, a server's image, is the library's pixels for the same call: generate(model) on the model at `dir`. */
async function assertLibraryPixels(data, dir, generate, message = 'the server returns the library pixels') {
  const { DiffusionModel } = require('../..');
  const { pixels } = require('./oracle');
  const model = await DiffusionModel.load(dir);
  const mine = await generate(model);
  model.dispose();
  assert.ok(Buffer.compare(data, Buffer.from(pixels(mine))) === 0, message);
}

/** A multipart body: the text `fields`, and `files` (field name -> PNG path) sent as <field>.png. */
function imageForm(fields, files) {
  const body = new FormData();
  for (const [k, v] of Object.entries(fields)) body.append(k, v);
  for (const [k, file] of Object.entries(files)) body.append(k, new Blob([fs.readFileSync(file)]), `${k}.png`);
  return body;
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

module.exports = { listen, withApp, runCli, startCli, cliForTests, firstImagePixels, assertLibraryPixels, imageForm, parseSse, CLI };
