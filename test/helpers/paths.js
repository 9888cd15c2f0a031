'use strict';
const path = require('path');

const ROOT = path.resolve(__dirname, '..', '..');
const FIXTURES = path.join(ROOT, 'test', 'fixtures');
const fixture = (name) => path.join(FIXTURES, name);

module.exports = { ROOT, FIXTURES, fixture };
