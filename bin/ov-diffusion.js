#!/usr/bin/env node
'use strict';
// The image server; see `ov-diffusion --help` and docs/server.md.
const { main, handleSignals } = require('../dist/server/main.js');

main().then((running) => {
  if (running) handleSignals(running);
  else if (process.exitCode) process.exit(process.exitCode);
}, (error) => {
  console.error(error);
  process.exit(1);
});
