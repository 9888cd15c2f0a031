// Prometheus metrics (prom-client), one registry per app: HTTP requests by route and status, errors by code, queue
// depth and running jobs per model (read at scrape time), denoising step time, generation and queue-wait time.
import express = require('express');
import * as client from 'prom-client';
import type { GenerationMetrics, Task } from '../diffusion-model';
import type { MemoryAdmission } from './memory';
import type { JobStatus } from './jobs';
import type { ModelRegistry } from './registry';

const PREFIX = 'ov_diffusion_';
const STEP_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
const LONG_BUCKETS = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600];
const MIB = 2 ** 20;
const MEMORY_BUCKETS = [16, 64, 256, 512, 1024, 2048, 4096, 8192, 16384, 32768].map((m) => m * MIB);

export class ServerMetrics {
  readonly registry = new client.Registry();
  private readonly requests: client.Counter<'method' | 'route' | 'status'>;
  private readonly requestSeconds: client.Histogram<'route'>;
  private readonly errors: client.Counter<'route' | 'code'>;
  private readonly steps: client.Counter<'model'>;
  private readonly stepSeconds: client.Histogram<'model'>;
  private readonly generationSeconds: client.Histogram<'model' | 'task'>;
  private readonly queueSeconds: client.Histogram<'model'>;
  private readonly images: client.Counter<'model' | 'task'>;
  private readonly memoryEstimates: client.Histogram<'model'>;
  private readonly jobsFinished: client.Counter<'status'>;
  private readonly acceptErrors: client.Counter<'code'>;

  constructor(models: ModelRegistry, options: { processMetrics?: boolean; memory?: MemoryAdmission } = {}) {
    const registers = [this.registry];
    const counter = <L extends string>(name: string, help: string, labelNames: L[]) =>
      new client.Counter<L>({ name: `${PREFIX}${name}`, help, labelNames, registers });
    const histogram = <L extends string>(name: string, help: string, labelNames: L[], buckets = LONG_BUCKETS) =>
      new client.Histogram<L>({ name: `${PREFIX}${name}`, help, labelNames, buckets, registers });
    // A per-model value read from the registry at scrape time.
    const perModel = (name: string, help: string, value: (m: ModelRegistry['models'][number]) => number) =>
      new client.Gauge({
        name: `${PREFIX}${name}`,
        help,
        labelNames: ['model'],
        registers,
        collect() {
          for (const m of models.models) this.set({ model: m.name }, value(m));
        },
      });

    this.requests = counter('http_requests_total', 'HTTP requests answered, by route (without the /v1 or /v3 prefix) and status', [
      'method',
      'route',
      'status',
    ]);
    this.requestSeconds = histogram('http_request_duration_seconds', 'Time from request to the end of the response', ['route']);
    this.errors = counter('errors_total', 'Error answers (JSON and mid-stream) and cancellations, by route and error code', [
      'route',
      'code',
    ]);
    perModel('queue_depth', 'Requests waiting for a generation slot (or for the model to load)', (m) => m.waiting);
    perModel('running_jobs', 'Generations running now', (m) => m.running);
    perModel('model_ready', '1 when the model is loaded, 0 while loading or after a failed load', (m) => (m.state === 'ready' ? 1 : 0));
    this.steps = counter('denoising_steps_total', 'Denoising steps run (counted as they finish)', ['model']);
    this.stepSeconds = histogram('step_duration_seconds', 'Time of one denoising step', ['model'], STEP_BUCKETS);
    this.generationSeconds = histogram(
      'generation_duration_seconds',
      'Engine time of a finished generation (text encoding to VAE decode)',
      ['model', 'task'],
    );
    this.queueSeconds = histogram('queue_wait_seconds', 'Time a generation waited for a free slot', ['model']);
    this.images = counter('images_generated_total', 'Images generated', ['model', 'task']);
    this.memoryEstimates = histogram(
      'memory_estimate_bytes',
      'Estimated peak memory of each admitted or refused request, on top of the loaded models (lib/server/memory.ts)',
      ['model'],
      MEMORY_BUCKETS,
    );
    const memory = options.memory;
    if (memory) {
      const gauge = (name: string, help: string, value: () => number) =>
        new client.Gauge({
          name: `${PREFIX}${name}`,
          help,
          registers,
          collect() {
            this.set(value());
          },
        });
      gauge('memory_budget_bytes', 'The memory budget (--memory_budget; 0 = no admission control)', () => memory.budgetBytes);
      gauge('memory_baseline_bytes', 'Resident memory when no request was admitted (the loaded models)', () => memory.baselineBytes);
      gauge('memory_reserved_bytes', 'Estimated peak of the admitted requests that can run at once', () => memory.reservedBytes);
    }
    this.jobsFinished = counter('jobs_finished_total', 'Background jobs finished, by final status', ['status']);
    this.acceptErrors = counter(
      'accept_errors_total',
      'Connections the server could not accept, as Node reports them (at the descriptor limit libuv closes them unreported)',
      ['code'],
    );
    // With them, ov_diffusion_process_open_fds and _max_fds: at the limit, new connections are closed unanswered.
    if (options.processMetrics) client.collectDefaultMetrics({ register: this.registry, prefix: PREFIX });
  }

  request(method: string, route: string, status: number, seconds: number): void {
    this.requests.inc({ method, route, status: String(status) });
    this.requestSeconds.observe({ route }, seconds);
  }

  acceptError(code: string): void {
    this.acceptErrors.inc({ code });
  }

  error(route: string, code: string): void {
    this.errors.inc({ route, code });
  }

  memoryEstimate(model: string, bytes: number): void {
    this.memoryEstimates.observe({ model }, bytes);
  }

  step(model: string): void {
    this.steps.inc({ model });
  }

  generation(model: string, task: Task, images: number, metrics: Partial<GenerationMetrics> | undefined): void {
    this.images.inc({ model, task }, images);
    for (const ms of metrics?.stepMs ?? []) this.stepSeconds.observe({ model }, ms / 1000);
    if (typeof metrics?.totalMs === 'number') this.generationSeconds.observe({ model, task }, metrics.totalMs / 1000);
    if (typeof metrics?.queueMs === 'number') this.queueSeconds.observe({ model }, metrics.queueMs / 1000);
  }

  /** Background jobs kept now by status, read at scrape time. */
  watchJobs(counts: () => Record<JobStatus, number>): void {
    new client.Gauge({
      name: `${PREFIX}jobs`,
      help: 'Background jobs kept now, by status (finished ones stay until --job_ttl or --max_jobs evicts them)',
      labelNames: ['status'],
      registers: [this.registry],
      collect() {
        for (const [status, n] of Object.entries(counts())) this.set({ status }, n);
      },
    });
  }

  jobFinished(status: JobStatus): void {
    this.jobsFinished.inc({ status });
  }

  /** GET /metrics in the Prometheus text format. */
  router(): express.Router {
    const router = express.Router();
    router.get('/metrics', async (_req, res) => {
      res.locals.route = '/metrics';
      res.setHeader('content-type', this.registry.contentType);
      res.end(await this.registry.metrics());
    });
    return router;
  }
}
