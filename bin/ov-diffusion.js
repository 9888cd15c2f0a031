#!/usr/bin/env node
'use strict';
// The image server; see `ov-diffusion --help` and docs/server.md.
const { main } = require('../dist/launcher/main.js');

main(process.argv.slice(2), process.env, { signals: true }).then(
  (running) => {
    if (!running && process.exitCode) process.exit(process.exitCode);
  },
  (error) => {
    console.error(error);
    process.exit(1);
  },
);
