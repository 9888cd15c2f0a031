#!/usr/bin/env node
'use strict';
// Placeholder until the server lands: proves the runtime loads, then says what is missing.
const ovd = require('..');
console.log(`ov-diffusion: OpenVINO ${ovd.openvinoVersion()}, devices: ${ovd.availableDevices().join(', ')}`);
console.error('ov-diffusion: the image server is not built yet (see the open server issue).');
process.exit(2);
