'use strict';
// Command-line options of the small evaluation scripts (scripts/demo-model/evaluate.js, bench/solver-steps.js,
// bench/deepcache-quality.js): `--kebab-name VALUE` for each key of the defaults, read like its default (a number, a
// comma-separated list of numbers or of words, or text), and one positional argument: the model folder.
const flagOf = (key) => `--${key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;

function parseScriptOptions(argv, defaults) {
  const options = { ...defaults };
  const keyOf = new Map(
    Object.keys(defaults)
      .filter((key) => key !== 'model')
      .map((key) => [flagOf(key), key]),
  );
  for (let i = 0; i < argv.length; i += 1) {
    const arg = argv[i];
    if (!arg.startsWith('--')) {
      options.model = arg;
      continue;
    }
    const key = keyOf.get(arg);
    if (!key) throw new Error(`unknown option ${arg}; the options are ${[...keyOf.keys()].join(', ')}`);
    const text = argv[++i];
    if (text === undefined) throw new Error(`${arg} needs a value`);
    const like = defaults[key];
    const number = (s) => {
      const n = Number(s);
      if (Number.isNaN(n)) throw new Error(`${arg}: '${s}' is not a number`);
      return n;
    };
    if (Array.isArray(like)) options[key] = text.split(',').map((s) => (typeof like[0] === 'number' ? number(s) : s));
    else options[key] = typeof like === 'number' ? number(text) : text;
  }
  return options;
}

module.exports = { parseScriptOptions };
