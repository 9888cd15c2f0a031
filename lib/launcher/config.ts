// Where the models to serve come from besides the command line: an OVMS-style --config_path JSON file listing several
// models, and the graph.pbtxt that OVMS (and its export_model.py) writes next to a model, whose image-generation
// options are read as defaults. After a pull, graph.pbtxt is written so OVMS could serve the same folder.
import * as fs from 'fs';
import * as path from 'path';
import type { LoraSpec } from './lora-sources';
import { MODEL_OPTION_NAMES, ModelFlags, ModelOptionName } from '../server/settings';
import type { Logger } from '../server/log';

export interface ModelEntry {
  name: string;
  /** The model folder (model_index.json and the IR submodels). */
  path: string;
  flags: ModelFlags;
  /** Adapters from graph.pbtxt (local paths); --source_loras in flags is parsed separately. */
  graphLoras: LoraSpec[];
}

export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

// ---- graph.pbtxt (protobuf text format, the subset OVMS graphs use) ----

type PbValue = string | number | boolean | PbMessage;
interface PbMessage {
  [field: string]: PbValue[];
}

function tokenizePbtxt(text: string): string[] {
  const tokens: string[] = [];
  const re = /\s+|#[^\n]*|("(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')|(\[[^\]]*\])|([{}:<>;,])|([^\s{}:<>;,"'#[\]]+)/gy;
  let match: RegExpExecArray | null;
  while (re.lastIndex < text.length && (match = re.exec(text))) {
    const token = match[1] ?? match[2] ?? match[3] ?? match[4];
    if (token !== undefined && token !== ';' && token !== ',') tokens.push(token);
  }
  if (re.lastIndex < text.length) throw new ConfigError(`graph.pbtxt: cannot read the text at offset ${re.lastIndex}`);
  return tokens;
}

function unquote(token: string): PbValue {
  if (/^["']/.test(token)) {
    return token.slice(1, -1).replace(/\\(["'\\nt])/g, (_, c: string) => ({ n: '\n', t: '\t' })[c] ?? c);
  }
  if (token === 'true' || token === 'false') return token === 'true';
  const number = Number(token);
  return Number.isFinite(number) && /^[-+]?[\d.]/.test(token) ? number : token;
}

export function parsePbtxt(text: string): PbMessage {
  const tokens = tokenizePbtxt(text);
  let i = 0;
  const message = (close?: string): PbMessage => {
    const out: PbMessage = {};
    while (i < tokens.length && tokens[i] !== close) {
      const field = tokens[i++];
      if (tokens[i] === ':') i++;
      let value: PbValue;
      if (tokens[i] === '{' || tokens[i] === '<') {
        const end = tokens[i++] === '{' ? '}' : '>';
        value = message(end);
        if (tokens[i++] !== end) throw new ConfigError(`graph.pbtxt: '${field}' is not closed`);
      } else {
        if (i >= tokens.length) throw new ConfigError(`graph.pbtxt: '${field}' has no value`);
        let text = tokens[i++];
        // Adjacent string literals concatenate.
        while (/^["']/.test(text) && i < tokens.length && /^["']/.test(tokens[i]))
          text = `"${String(unquote(text))}${String(unquote(tokens[i++]))}"`;
        value = unquote(text);
      }
      (out[field] ??= []).push(value);
    }
    return out;
  };
  return message();
}

/** Finds the first message with a models_path field (the ImageGenCalculator node options), wherever it sits. */
function findImageGenOptions(message: PbMessage): PbMessage | undefined {
  if (message.models_path) return message;
  for (const values of Object.values(message)) {
    for (const value of values) {
      if (typeof value === 'object') {
        const found = findImageGenOptions(value);
        if (found) return found;
      }
    }
  }
  return undefined;
}

const GRAPH_FLAG_FIELDS: Partial<Record<string, ModelOptionName>> = {
  device: 'target_device',
  plugin_config: 'plugin_config',
  resolution: 'resolution',
  max_resolution: 'max_resolution',
  default_resolution: 'default_resolution',
  num_images_per_prompt: 'num_images_per_prompt',
  guidance_scale: 'guidance_scale',
  max_num_images_per_prompt: 'max_num_images_per_prompt',
  default_num_inference_steps: 'default_num_inference_steps',
  max_num_inference_steps: 'max_num_inference_steps',
  default_guidance_scale: 'default_guidance_scale',
};

export interface GraphOptions {
  modelsPath: string;
  flags: ModelFlags;
  loras: LoraSpec[];
}

/** Reads dir/graph.pbtxt when present: the model folder it points at, its options and its LoRA adapters. */
export function readGraph(dir: string, logger?: Logger): GraphOptions | undefined {
  const file = path.join(dir, 'graph.pbtxt');
  if (!fs.existsSync(file)) return undefined;
  const options = findImageGenOptions(parsePbtxt(fs.readFileSync(file, 'utf8')));
  if (!options) throw new ConfigError(`${file} has no image generation node (no models_path)`);
  const first = (field: string) => options[field]?.[0];
  const flags: ModelFlags = {};
  for (const [field, flag] of Object.entries(GRAPH_FLAG_FIELDS)) {
    const value = first(field);
    if (value !== undefined && typeof value !== 'object') flags[flag!] = String(value);
  }
  const loras: LoraSpec[] = [];
  for (const adapter of (options.lora_adapters ?? []) as PbMessage[]) {
    const alias = String(adapter.alias?.[0] ?? '');
    const loraPath = path.resolve(dir, String(adapter.path?.[0] ?? ''));
    const mode = adapter.mode?.[0];
    if (mode !== undefined && mode !== 'DYNAMIC') logger?.warn(`${file}: LoRA '${alias}' mode ${String(mode)} is served as DYNAMIC`);
    const alpha = adapter.alpha?.[0];
    loras.push({
      kind: 'adapter',
      alias,
      source: { type: 'local', path: loraPath, file: path.basename(loraPath) },
      alpha: typeof alpha === 'number' ? alpha : undefined,
    });
  }
  for (const composite of (options.composite_lora_adapters ?? []) as PbMessage[]) {
    const components = ((composite.components ?? []) as PbMessage[]).map((c) => {
      const alpha = c.alpha?.[0];
      return { alias: String(c.adapter_alias?.[0] ?? ''), alpha: typeof alpha === 'number' ? alpha : undefined };
    });
    loras.push({ kind: 'composite', alias: String(composite.alias?.[0] ?? ''), components });
  }
  return { modelsPath: path.resolve(dir, String(first('models_path'))), flags, loras };
}

const quote = (text: string) => JSON.stringify(text);

/** Writes graph.pbtxt in OVMS's layout (the graph `ovms --pull --task image_generation` writes). */
export function writeGraph(
  dir: string,
  flags: ModelFlags,
  loras: Array<{ alias: string; path: string; alpha?: number }>,
  composites: LoraSpec[],
): void {
  const lines = ['models_path: "./"'];
  if (flags.target_device) lines.push(`device: ${quote(flags.target_device)}`);
  const plugin: Record<string, unknown> = flags.plugin_config ? JSON.parse(flags.plugin_config) : {};
  if (flags.num_streams) plugin.NUM_STREAMS = flags.num_streams;
  if (flags.cache_dir) plugin.CACHE_DIR = flags.cache_dir.replace(/\\/g, '/');
  if (Object.keys(plugin).length) lines.push(`plugin_config: '${JSON.stringify(plugin)}'`);
  for (const field of [
    'resolution',
    'num_images_per_prompt',
    'guidance_scale',
    'max_resolution',
    'default_resolution',
    'max_num_images_per_prompt',
    'default_num_inference_steps',
    'max_num_inference_steps',
    'default_guidance_scale',
  ] as const) {
    const value = flags[field];
    if (value === undefined) continue;
    lines.push(/resolution/.test(field) ? `${field}: ${quote(value)}` : `${field}: ${value}`);
  }
  for (const lora of loras) {
    lines.push(
      `lora_adapters { alias: ${quote(lora.alias)} path: ${quote(lora.path)}${lora.alpha !== undefined ? ` alpha: ${lora.alpha}` : ''} mode: DYNAMIC }`,
    );
  }
  for (const spec of composites) {
    if (spec.kind !== 'composite') continue;
    const parts = spec.components.map(
      (c) => `components { adapter_alias: ${quote(c.alias)}${c.alpha !== undefined && c.alpha !== 1 ? ` alpha: ${c.alpha}` : ''} }`,
    );
    lines.push(`composite_lora_adapters { alias: ${quote(spec.alias)} ${parts.join(' ')} }`);
  }
  const text = [
    '# File created with: ov-diffusion',
    'input_stream: "HTTP_REQUEST_PAYLOAD:input"',
    'output_stream: "HTTP_RESPONSE_PAYLOAD:output"',
    'node: {',
    '  name: "ImageGenExecutor"',
    '  calculator: "ImageGenCalculator"',
    '  input_stream: "HTTP_REQUEST_PAYLOAD:input"',
    '  input_side_packet: "IMAGE_GEN_NODE_RESOURCES:pipes"',
    '  output_stream: "HTTP_RESPONSE_PAYLOAD:output"',
    '  node_options: {',
    '    [type.googleapis.com / mediapipe.ImageGenCalculatorOptions]: {',
    ...lines.map((line) => `      ${line}`),
    '    }',
    '  }',
    '}',
    '',
  ].join('\n');
  fs.writeFileSync(path.join(dir, 'graph.pbtxt'), text);
}

// ---- --config_path ----

/** Keys of OVMS model entries that mean nothing for diffusion models; accepted with a warning. */
const IGNORED_OVMS_KEYS = new Set([
  'graph_path',
  'subconfig',
  'nireq',
  'model_version_policy',
  'shape',
  'batch_size',
  'layout',
  'stateful',
  'version',
]);

function flagText(name: string, value: unknown, where: string): string {
  if (name === 'plugin_config' && typeof value === 'object' && value !== null) return JSON.stringify(value);
  if (typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean') return String(value);
  throw new ConfigError(`${where}: ${name} must be a string or a number`);
}

/**
 * Reads an OVMS config.json: {"model_config_list": [{"config": {"name", "base_path", ...}}], "mediapipe_config_list":
 * [{"name", "base_path"}]}. Relative base paths resolve against the file's folder. Besides name and base_path an entry
 * may carry the per-model flags by their CLI names (target_device, max_resolution, source_loras, ...).
 */
export function readConfigFile(file: string, logger?: Logger): Array<{ name: string; basePath: string; flags: ModelFlags }> {
  let json: unknown;
  try {
    json = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (error) {
    throw new ConfigError(`--config_path ${file}: ${(error as Error).message}`);
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) throw new ConfigError(`${file}: the config must be a JSON object`);
  const root = json as Record<string, unknown>;
  for (const key of Object.keys(root)) {
    if (
      !['model_config_list', 'mediapipe_config_list', 'custom_node_library_config_list', 'pipeline_config_list', 'monitoring'].includes(key)
    )
      throw new ConfigError(`${file}: unknown key '${key}' (expected model_config_list and/or mediapipe_config_list)`);
  }
  const raw: Array<[unknown, string]> = [];
  for (const [list, unwrap] of [
    ['model_config_list', true],
    ['mediapipe_config_list', false],
  ] as const) {
    const entries = root[list];
    if (entries === undefined) continue;
    if (!Array.isArray(entries)) throw new ConfigError(`${file}: ${list} must be an array`);
    entries.forEach((entry, index) => raw.push([unwrap ? (entry as { config?: unknown })?.config : entry, `${file}: ${list}[${index}]`]));
  }
  if (!raw.length) throw new ConfigError(`${file}: no models listed (model_config_list or mediapipe_config_list)`);
  const names = new Set<string>();
  return raw.map(([entry, where]) => {
    if (typeof entry !== 'object' || entry === null)
      throw new ConfigError(`${where}: expected an object${where.includes('model_config_list') ? ' {"config": {...}}' : ''}`);
    const e = entry as Record<string, unknown>;
    if (typeof e.name !== 'string' || !e.name) throw new ConfigError(`${where}: "name" is required`);
    if (typeof e.base_path !== 'string' || !e.base_path) throw new ConfigError(`${where}: "base_path" is required`);
    if (names.has(e.name)) throw new ConfigError(`${where}: the name '${e.name}' is listed twice`);
    names.add(e.name);
    const flags: ModelFlags = {};
    for (const [key, value] of Object.entries(e)) {
      if (key === 'name' || key === 'base_path') continue;
      if ((MODEL_OPTION_NAMES as readonly string[]).includes(key)) flags[key as ModelOptionName] = flagText(key, value, where);
      else if (IGNORED_OVMS_KEYS.has(key)) logger?.warn(`${where}: '${key}' does not apply to image generation models; ignored`);
      else throw new ConfigError(`${where}: unknown option '${key}' (per-model options: ${MODEL_OPTION_NAMES.join(', ')})`);
    }
    return { name: e.name, basePath: path.resolve(path.dirname(file), e.base_path), flags };
  });
}

/** A model folder to serve: graph.pbtxt options (if any) are defaults under the given flags. */
export function modelEntry(name: string, dir: string, flags: ModelFlags, logger?: Logger): ModelEntry {
  const graph = readGraph(dir, logger);
  if (!graph) return { name, path: dir, flags, graphLoras: [] };
  logger?.info(`${name}: read ${path.join(dir, 'graph.pbtxt')}`);
  return {
    name,
    path: graph.modelsPath,
    flags: { ...graph.flags, ...flags },
    graphLoras: flags.source_loras !== undefined ? [] : graph.loras,
  };
}
