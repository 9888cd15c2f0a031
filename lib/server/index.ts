// `require('ov-diffusion/server')`: the HTTP app, to mount in an Express app of your own or to listen on directly.
// The launcher (command line, config files, hub pulls) is not part of it; bin/ov-diffusion.js runs that.
export { createApp, App, AppOptions, ServingOptions } from './app';
export { ModelRegistry, ServedModelInit, ModelLike } from './registry';
export { ModelSettings, buildModelSettings } from './settings';
export { LoraName } from './loras';
export { Logger, createLogger, silentLogger } from './log';
export { createHttpServer, RequestTimeouts, DEFAULT_TIMEOUTS } from './body';
