// `ov-diffusion`: parse the flags, pull what is missing, load the models and serve them.
import * as fs from 'fs';
import type * as http from 'http';
import type { AddressInfo } from 'net';
import * as path from 'path';
import { DiffusionModel, LoadOptions } from '../diffusion-model';
import { PACKAGE_ROOT } from '../binding';
import { DEMO_INPAINT_MODEL_DIR, DEMO_LORA_FILES, DEMO_MODEL_DIR, openvinoVersion } from '../index';
import { App, createApp } from '../server/app';
import { RequestTimeouts, createHttpServer } from '../server/body';
import { watchDescriptors } from '../server/descriptors';
import { CliError, CliOptions, DEFAULT_MEMORY_BUDGET_SHARE, helpText, parseArgs } from './cli';
import { machineMemoryBytes } from '../server/memory';
import { ConfigError, ModelEntry, modelEntry, readConfigFile, writeGraph } from './config';
import * as hub from './hub';
import { Logger, createLogger } from '../server/log';
import { LoraAdapterSpec, LoraSpec, loraFilePath, loraLoadOptions, parseSourceLoras } from './lora-sources';
import { ModelRegistry, ServedModelInit } from '../server/registry';
import { ModelSettings, buildModelSettings, loadOptions, onNpu } from '../server/settings';

export const EXIT_USAGE = 2;
export const EXIT_FAILURE = 1;
export const DEMO_MODEL_NAME = 'demo';
export const DEMO_INPAINT_MODEL_NAME = 'demo-inpaint';

export interface RunningServer {
  server: http.Server;
  app: App;
  registry: ModelRegistry;
  url: string;
  /** Resolves when every model is loaded; rejects when one fails. */
  ready: Promise<void>;
  /** Stops at once: closes every connection, releases the models, deletes the stored images. */
  close(): Promise<void>;
  /**
   * Stops gracefully: no new connections or requests (readiness turns 503), requests in progress may finish for
   * graceMs, then are cancelled (the engine stops at its next step), then close().
   */
  shutdown(graceMs: number): Promise<void>;
  logger: Logger;
  /** --shutdown_timeout, in ms. */
  shutdownGraceMs: number;
}

function readApiKey(options: CliOptions, env: NodeJS.ProcessEnv): string | undefined {
  if (options.apiKeyFile) {
    let text: string;
    try {
      text = fs.readFileSync(options.apiKeyFile, 'utf8');
    } catch (error) {
      throw new ConfigError(`--api_key_file: cannot read ${options.apiKeyFile}: ${(error as Error).message}`);
    }
    const key = text.split(/\r?\n/)[0].trim();
    if (!key) throw new ConfigError(`--api_key_file ${options.apiKeyFile}: the first line is empty`);
    return key;
  }
  return env.API_KEY?.trim() || undefined;
}

interface Prepared {
  entry: ModelEntry;
  settings: ModelSettings;
  loras: LoraSpec[];
}

function prepareEntry(entry: ModelEntry, cliLoras: LoraSpec[] | undefined): Prepared {
  try {
    const settings = buildModelSettings(entry.flags);
    const device = entry.flags.target_device ?? '';
    const loras =
      cliLoras ?? (entry.flags.source_loras !== undefined ? parseSourceLoras(entry.flags.source_loras, { device }) : entry.graphLoras);
    return { entry, settings, loras };
  } catch (error) {
    throw new ConfigError(`model '${entry.name}': ${(error as Error).message}`);
  }
}

function checkModelFolder(entry: ModelEntry): void {
  if (!fs.existsSync(entry.path)) throw new ConfigError(`model '${entry.name}': the folder ${entry.path} does not exist`);
  if (!fs.existsSync(path.join(entry.path, 'model_index.json')))
    throw new ConfigError(
      `model '${entry.name}': ${entry.path} is not a diffusion model in OpenVINO format (no model_index.json); ` +
        'export one with optimum-cli export openvino, or pull one with --source_model OpenVINO/...',
    );
}

interface DemoVocabulary {
  shapes: string[];
  colours: Record<string, unknown>;
  sizes: Record<string, unknown>;
  positions: Record<string, unknown>;
  /** How the model is meant to be run (its model card): the guidance it was measured at. */
  generation?: { guidance_scale?: number };
}

/** The vocabulary the demo model was trained on, shipped beside it (undefined for the random placeholder). */
function demoVocabulary(dir: string): DemoVocabulary | undefined {
  const file = path.join(dir, 'vocabulary.json');
  return fs.existsSync(file) ? (JSON.parse(fs.readFileSync(file, 'utf8')) as DemoVocabulary) : undefined;
}

/** What the demo model can draw, in one line. */
function demoVocabularyLine(v: DemoVocabulary): string {
  return (
    `it draws one or two ${Object.keys(v.sizes).join('/')} ${v.shapes.join(', ')} in ${Object.keys(v.colours).join(', ')} ` +
    `(${Object.keys(v.positions).length} positions, plain or coloured backgrounds) at 128x128, ` +
    'e.g. "a big red circle on a white background"'
  );
}

/** Without model flags: the embedded demo model, its inpainting variant and its style LoRA (those that are present). */
function demoEntries(options: CliOptions, logger: Logger): ModelEntry[] {
  const vocabulary = demoVocabulary(DEMO_MODEL_DIR);
  const loras: LoraSpec[] = Object.entries(DEMO_LORA_FILES)
    .filter(([, file]) => fs.existsSync(file))
    .map(([alias, file]) => ({ kind: 'adapter', alias, source: { type: 'local', path: file, file: path.basename(file) } }));
  // the guidance the model is meant for, unless the command line decides the guidance itself
  const guidance = vocabulary?.generation?.guidance_scale;
  const ownGuidance = ['default_guidance_scale', 'guidance_scale', 'resolution'].some(
    (f) => options.model[f as keyof typeof options.model] !== undefined,
  );
  const flags = guidance !== undefined && !ownGuidance ? { ...options.model, default_guidance_scale: String(guidance) } : options.model;
  const entries: ModelEntry[] = [{ name: DEMO_MODEL_NAME, path: DEMO_MODEL_DIR, flags, graphLoras: loras }];
  if (fs.existsSync(path.join(DEMO_INPAINT_MODEL_DIR, 'model_index.json')))
    entries.push({ name: DEMO_INPAINT_MODEL_NAME, path: DEMO_INPAINT_MODEL_DIR, flags, graphLoras: [] });
  logger.warn(
    `no model given: serving the embedded demo model${entries.length > 1 ? 's' : ''} ${entries.map((e) => `'${e.name}'`).join(' and ')} ` +
      `(${path.dirname(DEMO_MODEL_DIR)}): ` +
      (vocabulary
        ? `a small model trained on coloured shapes: ${demoVocabularyLine(vocabulary)}` +
          (flags.default_guidance_scale !== undefined ? `, at guidance_scale ${flags.default_guidance_scale} by default` : '') +
          (loras.length ? `; LoRA ${loras.map((l) => `'${l.alias}'`).join(', ')} (put the word in the prompt too)` : '') +
          '. '
        : 'a tiny model with random weights: its images are noise. ') +
      'To serve a real model: ov-diffusion --rest_port 8000 --model_repository_path ./models ' +
      '--source_model OpenVINO/stable-diffusion-v1-5-int8-ov (see docs/server.md)',
  );
  return entries;
}

/** Pulls --source_model (and its LoRA files), writing graph.pbtxt as OVMS does. Returns the model folder. */
async function pullSource(options: CliOptions, logger: Logger): Promise<string> {
  const target = path.resolve(options.modelPath ?? path.join(options.modelRepositoryPath!, ...options.sourceModel!.split('/')));
  await hub.pullModel({
    repo: options.sourceModel!,
    target,
    overwrite: options.overwriteModels,
    logger,
    weightFormat: options.weightFormat,
    extraQuantizationParams: options.extraQuantizationParams,
  });
  const adapters = options.loras.filter((l): l is LoraAdapterSpec => l.kind === 'adapter');
  await hub.pullLoras(adapters, target, { logger, overwrite: options.overwriteModels });
  writeGraph(
    target,
    options.model,
    adapters.map((a) => ({
      alias: a.alias,
      alpha: a.alpha,
      path: a.source.type === 'local' ? a.source.path : path.relative(target, loraFilePath(a, target)!).split(path.sep).join('/'),
    })),
    options.loras,
  );
  return target;
}

async function pullMissingLoras(prepared: Prepared, overwrite: boolean, logger: Logger): Promise<void> {
  const remote = prepared.loras.filter((l): l is LoraAdapterSpec => l.kind === 'adapter' && l.source.type !== 'local');
  const missing = remote.filter(
    (l) => overwrite || !loraFilePath(l, prepared.entry.path) || !fs.existsSync(loraFilePath(l, prepared.entry.path)!),
  );
  if (!missing.length) return;
  await hub.pullLoras(missing, prepared.entry.path, { logger, overwrite });
}

/** Works out the models from the options (pulling as needed). Undefined for --pull, which only downloads. */
export async function modelEntries(options: CliOptions, logger: Logger): Promise<Prepared[] | undefined> {
  let entries: ModelEntry[];
  let cliLoras: LoraSpec[] | undefined = options.model.source_loras !== undefined ? options.loras : undefined;
  if (options.configPath) {
    entries = readConfigFile(options.configPath, logger).map((e) =>
      modelEntry(
        e.name,
        e.basePath,
        options.model.cache_dir !== undefined && e.flags.cache_dir === undefined
          ? { ...e.flags, cache_dir: options.model.cache_dir }
          : e.flags,
        logger,
      ),
    );
    cliLoras = undefined;
  } else if (options.sourceModel) {
    const dir = await pullSource(options, logger);
    if (options.pull) {
      logger.info(`pulled ${options.sourceModel} into ${dir}; exiting (--pull)`);
      return undefined;
    }
    entries = [{ name: options.modelName!, path: dir, flags: options.model, graphLoras: [] }];
  } else if (options.modelPath) {
    entries = [modelEntry(options.modelName!, path.resolve(options.modelPath), options.model, logger)];
  } else {
    entries = demoEntries(options, logger);
  }
  const prepared = entries.map((entry) => prepareEntry(entry, entries.length === 1 ? cliLoras : undefined));
  for (const p of prepared) {
    checkModelFolder(p.entry);
    await pullMissingLoras(p, options.overwriteModels, logger);
  }
  return prepared;
}

/**
 * Why the compile cache folder cannot be written, or undefined. OpenVINO then compiles at every start without a word:
 * the server still works, but a user who set --cache_dir should hear that it has no effect.
 */
export function unwritableCacheDir(dir: string): string | undefined {
  try {
    fs.mkdirSync(dir, { recursive: true });
    fs.accessSync(dir, fs.constants.W_OK);
    return undefined;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code ?? String(error);
  }
}

function loadModel(p: Prepared, logger: Logger): ServedModelInit {
  const load: LoadOptions = { ...loadOptions(p.settings), ...loraLoadOptions(p.loras, p.entry.path, onNpu(p.settings.device)) };
  const cacheDir = p.settings.properties.CACHE_DIR;
  const why = typeof cacheDir === 'string' && cacheDir !== '' ? unwritableCacheDir(cacheDir) : undefined;
  if (why)
    logger.warn(
      `'${p.entry.name}': the compile cache ${String(cacheDir)} cannot be written (${why}): every start compiles the model again`,
    );
  logger.info(`loading '${p.entry.name}' from ${p.entry.path}`);
  const model = DiffusionModel.load(p.entry.path, load).then((m) => {
    logger.info(
      `'${p.entry.name}' loaded: ${m.className} (${m.tasks.join(', ')}) in ${Math.round(m.loadMs)} ms, up to ${p.settings.maxConcurrency} requests at once`,
    );
    if (p.loras.length) logger.info(`'${p.entry.name}' LoRA names: ${p.loras.map((l) => l.alias).join(', ')}`);
    return m;
  });
  return { name: p.entry.name, model, settings: p.settings, loras: p.loras, path: p.entry.path };
}

/** The address to open in a browser: a wildcard bind (0.0.0.0, ::) is reachable as localhost. */
function browserUrl(address: AddressInfo): string {
  const wildcard = address.address === '0.0.0.0' || address.address === '::';
  const host = wildcard ? 'localhost' : address.family === 'IPv6' ? `[${address.address}]` : address.address;
  return `http://${host}:${address.port}`;
}

/** Starts the server: listens first (so liveness answers during loading), then loads the models. */
export async function start(options: CliOptions, logger: Logger, env: NodeJS.ProcessEnv = process.env): Promise<RunningServer | undefined> {
  const apiKey = readApiKey(options, env);
  const prepared = await modelEntries(options, logger);
  if (!prepared) return undefined;
  const registry = new ModelRegistry(prepared.map((p) => loadModel(p, logger)));
  const timeouts: RequestTimeouts = {
    headersTimeoutMs: options.headersTimeoutSeconds * 1000,
    requestTimeoutMs: options.requestTimeoutSeconds * 1000,
    bodyTimeoutMs: options.bodyTimeoutSeconds * 1000,
  };
  const budget = options.memoryBudgetBytes ?? Math.floor(machineMemoryBytes() * DEFAULT_MEMORY_BUDGET_SHARE);
  logger.info(
    budget
      ? `memory budget ${Math.round(budget / 2 ** 20)} MiB${options.memoryBudgetBytes === undefined ? ` (${DEFAULT_MEMORY_BUDGET_SHARE * 100}% of this machine's)` : ''}: requests whose estimated peak does not fit are refused`
      : 'memory admission is off (--memory_budget 0)',
  );
  const app = createApp({
    models: registry,
    apiKey,
    metricsApiKey: options.metricsApiKey,
    memoryBudgetBytes: budget,
    logger,
    processMetrics: true,
    imageUrlTtlSeconds: options.imageUrlTtlSeconds,
    jobs: { maxJobs: options.maxJobs, ttlSeconds: options.jobTtlSeconds },
    playground: options.playground,
    serving: {
      defaultRngSeed: options.defaultRngSeed,
      pngMetadata: options.pngMetadata,
      publicUrl: options.publicUrl,
      variationPrompt: options.variationPrompt,
      timeouts,
    },
  });
  const server = createHttpServer(app, timeouts);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.restPort, options.restBindAddress, () => {
      server.off('error', reject);
      resolve();
    });
  });
  watchDescriptors(server, logger, app.metrics);
  const address = server.address() as AddressInfo;
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  const url = `http://${host}:${address.port}`;
  // The port is bound first, so that liveness answers and requests can wait while the models load; "listening" is
  // said only once they have loaded (a failed load is reported instead, and the process exits).
  logger.info(`loading the models; ${url} is bound meanwhile (liveness answers, requests wait for the load)`);
  const ready = Promise.all(
    registry.models.map((m) =>
      m.ready.catch((error: Error) => {
        throw new Error(`model '${m.name}' failed to load: ${error.message}`, { cause: error });
      }),
    ),
  ).then(() => {
    const routes = `/v3 and /v1: images/generations, images/edits, images/variations, images/jobs, models; /metrics${options.metricsApiKey && apiKey ? ' (with the key)' : ''}`;
    logger.info(`REST server listening on ${url} (${routes})${apiKey ? ', API key required' : ''}`);
    if (options.playground) logger.info(`playground: open ${browserUrl(address)}/ in a browser (--no_playground turns it off)`);
    logger.info(
      `ready: serving ${registry
        .names()
        .map((n) => `'${n.id}'`)
        .join(', ')}`,
    );
  });
  let closing: Promise<void> | undefined;
  const close = () =>
    (closing ??= (async () => {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      await closed;
      for (const m of registry.models) m.model?.dispose();
      app.dispose();
    })());
  const shutdown = async (graceMs: number) => {
    server.close();
    server.closeIdleConnections();
    const running = app.inflight.size;
    if (running) logger.info(`stopping: no new requests; ${running} in progress may finish within ${graceMs / 1000} s`);
    const cancelled = await app.drain(graceMs);
    if (cancelled) logger.warn(`stopping: cancelled ${cancelled} request(s) still running after ${graceMs / 1000} s`);
    await close();
    logger.info('stopped');
  };
  return { server, app, registry, url, ready, close, shutdown, logger, shutdownGraceMs: options.shutdownTimeoutSeconds * 1000 };
}

/** The CLI entry point; sets process.exitCode on failure. With signals, SIGTERM/SIGINT stop the server gracefully. */
export async function main(
  argv: string[] = process.argv.slice(2),
  env: NodeJS.ProcessEnv = process.env,
  { signals = false }: { signals?: boolean } = {},
): Promise<RunningServer | undefined> {
  let options: CliOptions;
  try {
    options = parseArgs(argv, env);
  } catch (error) {
    if (!(error instanceof CliError)) throw error;
    process.stderr.write(`ov-diffusion: error: ${error.message}\nRun 'ov-diffusion --help' for the options.\n`);
    process.exitCode = EXIT_USAGE;
    return undefined;
  }
  if (options.help) {
    process.stdout.write(`${helpText()}\n`);
    return undefined;
  }
  if (options.version) {
    const pkg = JSON.parse(fs.readFileSync(path.join(PACKAGE_ROOT, 'package.json'), 'utf8')) as { version: string };
    process.stdout.write(`ov-diffusion ${pkg.version}\nOpenVINO ${openvinoVersion()}\n`);
    return undefined;
  }
  const logger = createLogger(options.logLevel);
  let running: RunningServer | undefined;
  try {
    running = await start(options, logger, env);
    if (!running) return undefined;
    if (signals) handleSignals(running);
    await running.ready;
    return running;
  } catch (error) {
    logger.error((error as Error).message);
    if (options.logLevel === 'DEBUG' || options.logLevel === 'TRACE') logger.debug(String((error as Error).stack));
    process.exitCode = error instanceof ConfigError ? EXIT_USAGE : EXIT_FAILURE;
    await running?.close();
    return undefined;
  }
}

/**
 * Stops on SIGTERM/SIGINT: no new requests, those in progress finish within the grace period or are cancelled,
 * models are released, exit 0. A second signal exits at once (130).
 */
export function handleSignals(running: RunningServer): void {
  const { logger } = running;
  const graceSeconds = running.shutdownGraceMs / 1000;
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) {
      logger.warn(`${signal} again: exiting now`);
      process.exit(130);
    }
    stopping = true;
    logger.info(`${signal}: shutting down (grace period ${graceSeconds} s)`);
    running.shutdown(graceSeconds * 1000).then(
      () => process.exit(0),
      (error: Error) => {
        logger.error(`shutdown failed: ${error.message}`);
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
  // Under `npm start`, npm is the process users see and kill; it does not pass SIGTERM on, so the server would
  // outlive it. When the parent goes away (this process is re-parented), stop as if it had been sent SIGTERM.
  if (process.env.npm_lifecycle_event) {
    const parent = process.ppid;
    const watch = setInterval(() => {
      if (process.ppid === parent) return;
      clearInterval(watch);
      stop('parent process exited');
    }, ORPHAN_CHECK_MS).unref();
  }
}

/** How often a server started by npm checks that npm still runs. */
const ORPHAN_CHECK_MS = 1000;
