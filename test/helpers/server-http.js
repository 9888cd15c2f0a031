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
    close: () => new Promise((resolve) => {
      server.closeAllConnections();
      server.close(resolve);
    }),
  };
}

const CLI = path.join(ROOT, 'bin', 'ov-diffusion.js');

/** Runs the CLI to completion: {status, stdout, stderr}. */
function runCli(args, { env = {}, timeoutMs = 120000, cwd = ROOT } = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], { cwd, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => { stdout += d; });
    child.stderr.on('data', (d) => { stderr += d; });
    const timer = setTimeout(() => { child.kill('SIGKILL'); reject(new Error(`timeout: ${stderr}`)); }, timeoutMs);
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
function startCli(args, { env = {}, timeoutMs = 120000 } = {}) {
  const child = spawn(process.execPath, [CLI, '--rest_port', '0', '--rest_bind_address', '127.0.0.1', ...args],
    { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  let url;
  const stop = () => new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    child.once('exit', resolve);
    child.kill('SIGTERM');
  });
  const started = new Promise((resolve, reject) => {
    const timer = setTimeout(() => { child.kill('SIGKILL'); reject(new Error(`the server did not get ready:\n${output}`)); }, timeoutMs);
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

module.exports = { listen, runCli, startCli, CLI };
