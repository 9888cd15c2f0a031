// Background image jobs (`background: true`): a generation that runs without its client, shaped like OpenAI's
// asynchronous media jobs (the Videos API): queued -> in_progress -> completed / failed / cancelled, with progress,
// queue position, numbered events (replayed from Last-Event-ID) and the images kept for a while. Jobs use
// runGeneration like synchronous requests, so they share the model's slots, queue limits and metrics.
import * as crypto from 'crypto';
import type { CallPlan, GenerationResult, StepProgress } from '../diffusion-model';
import type { GeneratedImage, OutputFormat } from '../images';
import { ApiError } from './errors';
import { Endpoint, GenerationContext, GenerationOutcome, GenerationPlan, generationError, runGeneration } from './generation';
import { ServerShuttingDown } from './inflight';
import type { Logger } from './log';
import { encodeImage } from './output';

export type JobStatus = 'queued' | 'in_progress' | 'completed' | 'failed' | 'cancelled';
const FINISHED: ReadonlySet<JobStatus> = new Set(['completed', 'failed', 'cancelled']);

export const JOB_DEFAULTS = { maxJobs: 100, ttlSeconds: 3600 };
export const JOB_OBJECT = 'image.job';
/** Event types, each prefixed "image_job.". */
export type JobEventType = 'queued' | 'queue_position' | 'in_progress' | 'step' | 'partial_image' | 'completed' | 'failed' | 'cancelled';

export interface JobEvent {
  /** 1-based, in order; the SSE id. */
  id: number;
  data: { type: string; [key: string]: unknown };
}

export interface JobStoreOptions {
  /** Jobs kept at once (any status); a new job evicts the oldest finished one, or is refused when all are active. 0: jobs off. */
  maxJobs: number;
  /** How long a finished job (its status, events and images) is kept, in ms. */
  ttlMs: number;
}

/** Cancelled by DELETE /images/jobs/{id}. */
class JobCancelled extends Error {
  constructor() {
    super('the job was cancelled');
    this.name = 'JobCancelled';
  }
}

const unixNow = () => Math.floor(Date.now() / 1000);
const round = (ms: number | undefined) => (ms === undefined ? null : Math.round(ms));

export class Job {
  readonly id = `imgjob_${crypto.randomBytes(12).toString('hex')}`;
  readonly createdAt = unixNow();
  status: JobStatus = 'queued';
  step = 0;
  totalSteps?: number;
  position: number | null = null;
  startedAt?: number;
  completedAt?: number;
  expiresAt?: number;
  error?: ApiError;
  outcome?: GenerationOutcome;
  readonly events: JobEvent[] = [];
  readonly controller = new AbortController();
  /** Settles when the job has finished (never rejects). */
  done!: Promise<void>;
  private readonly listeners = new Set<(event: JobEvent) => void>();
  private readonly submittedMs = performance.now();
  private runningMs?: number;
  private finishedMs?: number;
  /** Events that wait for an image to encode, in order. */
  private chain = Promise.resolve();
  expiry?: NodeJS.Timeout;

  constructor(
    readonly plan: GenerationPlan,
    readonly endpoint: Endpoint,
  ) {}

  get finished(): boolean {
    return FINISHED.has(this.status);
  }

  get progress(): number {
    if (this.status === 'completed') return 100;
    if (!this.totalSteps) return 0;
    // The decode and the encoding follow the last step: 99 until the images are ready.
    return Math.min(99, Math.floor((100 * this.step) / this.totalSteps));
  }

  /** The job object (GET /images/jobs/{id}, and the `job` of every event). */
  toJSON(): Record<string, unknown> {
    const { request, resolved, seed, task } = this.plan;
    const result = this.outcome?.result;
    const o = request.options;
    return {
      id: this.id,
      object: JOB_OBJECT,
      model: resolved.name,
      status: this.status,
      progress: this.progress,
      created_at: this.createdAt,
      started_at: this.startedAt ?? null,
      completed_at: this.completedAt ?? null,
      expires_at: this.expiresAt ?? null,
      error: this.error ? { code: this.error.code, message: this.error.message, param: this.error.param } : null,
      endpoint: this.endpoint,
      task,
      step: this.step,
      total_steps: this.totalSteps ?? null,
      queue_position: this.position,
      seed,
      n: result?.images.length ?? o.numImagesPerPrompt ?? 1,
      size: result ? `${result.width}x${result.height}` : o.width && o.height ? `${o.width}x${o.height}` : null,
      quality: request.quality,
      output_format: request.outputFormat,
      timings: {
        queue_ms: round(this.runningMs !== undefined ? this.runningMs - this.submittedMs : undefined),
        generation_ms: round((result?.metrics as Partial<GenerationResult['metrics']> | undefined)?.totalMs),
        total_ms: round(this.finishedMs !== undefined ? this.finishedMs - this.submittedMs : undefined),
      },
      usage: this.outcome ? this.outcome.usage : null,
    };
  }

  /** Appends an event (with the job as it is now) and tells the listeners. */
  emit(type: JobEventType, fields: Record<string, unknown> = {}): void {
    const event: JobEvent = { id: this.events.length + 1, data: { type: `image_job.${type}`, ...fields, job: this.toJSON() } };
    this.events.push(event);
    for (const listener of this.listeners) listener(event);
  }

  /** Runs fn after the events already waiting to be emitted (image encodes). */
  later(fn: () => Promise<void> | void): Promise<void> {
    this.chain = this.chain.then(fn);
    return this.chain;
  }

  /** Hears every event after `afterId` (the missed ones at once), until the job finishes. Returns the unsubscribe. */
  subscribe(afterId: number, listener: (event: JobEvent) => void): () => void {
    for (const event of this.events.slice(Math.max(0, afterId))) listener(event);
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  markRunning(): void {
    this.runningMs = performance.now();
    this.startedAt = unixNow();
    this.status = 'in_progress';
    this.position = null;
  }

  markFinished(status: JobStatus, ttlMs: number): void {
    this.finishedMs = performance.now();
    this.completedAt = unixNow();
    this.expiresAt = this.completedAt + Math.ceil(ttlMs / 1000);
    this.status = status;
    this.position = null;
  }

  /** Image `index` in `format`: the stored bytes in the requested format, otherwise encoded from the pixels. */
  async content(index: number, format: OutputFormat): Promise<Buffer> {
    const outcome = this.outcome!;
    const { request } = this.plan;
    if (format === request.outputFormat) return outcome.encoded[index];
    const image: GeneratedImage = outcome.result.images[index];
    return encodeImage(image, { ...request, outputFormat: format }, outcome.parameters(index));
  }
}

/** The jobs of one app, in creation order. */
export class JobStore {
  private readonly jobs = new Map<string, Job>();

  constructor(
    private readonly ctx: GenerationContext & { logger: Logger },
    readonly options: JobStoreOptions,
  ) {}

  get enabled(): boolean {
    return this.options.maxJobs > 0;
  }

  counts(): Record<JobStatus, number> {
    const counts: Record<JobStatus, number> = { queued: 0, in_progress: 0, completed: 0, failed: 0, cancelled: 0 };
    for (const job of this.jobs.values()) counts[job.status] += 1;
    return counts;
  }

  get(id: string): Job | undefined {
    return this.jobs.get(id);
  }

  /** Newest first (desc) or oldest first (asc), after the job `after` in that order. */
  list(limit: number, order: 'asc' | 'desc', after?: string): { jobs: Job[]; hasMore: boolean } {
    const all = [...this.jobs.values()];
    if (order === 'desc') all.reverse();
    const start = after === undefined ? 0 : all.findIndex((j) => j.id === after) + 1;
    return { jobs: all.slice(start, start + limit), hasMore: all.length > start + limit };
  }

  /** Room for one more job: the oldest finished jobs go first; when every kept job is active, 429. */
  private makeRoom(): void {
    for (const job of this.jobs.values()) {
      if (this.jobs.size < this.options.maxJobs) return;
      if (job.finished) this.remove(job);
    }
    if (this.jobs.size >= this.options.maxJobs)
      throw new ApiError(
        429,
        `${this.jobs.size} jobs are queued or running, the most this server keeps (--max_jobs ${this.options.maxJobs}); try again later`,
        null,
        'too_many_jobs',
      ).withHeader('retry-after', 5);
  }

  private remove(job: Job): void {
    clearTimeout(job.expiry);
    this.jobs.delete(job.id);
  }

  /**
   * Starts a job. Resolves with it once it is queued for its model (or waits for the model to load); a call refused
   * before that (a full queue, a bad value the model finds) rejects with the error a synchronous request would get,
   * and no job is kept.
   */
  async submit(plan: GenerationPlan, endpoint: Endpoint): Promise<Job> {
    if (!this.enabled)
      throw new ApiError(400, 'background jobs are turned off on this server (--max_jobs 0)', 'background', 'unsupported_value');
    this.makeRoom();
    const job = new Job(plan, endpoint);
    const { served } = plan.resolved;
    const { metrics, logger } = this.ctx;
    this.jobs.set(job.id, job);
    let accepted = false;
    let refused = false;
    let accept!: () => void;
    const acceptance = new Promise<void>((resolve) => {
      accept = () => {
        if (accepted || refused) return;
        accepted = true;
        job.emit('queued');
        resolve();
      };
    });
    let partialIndex = 0;
    const run = runGeneration(this.ctx, plan, {
      signal: job.controller.signal,
      previews: plan.request.partialImages,
      previewMode: plan.request.previewMode,
      onLoadWait: () => accept(),
      // A full queue refuses the call within the same turn of the event loop; after it, the call is queued.
      onQueued: (call: CallPlan) => {
        job.totalSteps = call.numInferenceSteps;
        setImmediate(() => accept());
      },
      onPosition: (position) => {
        if (job.status !== 'queued' || job.position === position) return;
        job.position = position;
        if (accepted) job.emit('queue_position', { queue_position: position });
      },
      onRunning: () => {
        accept();
        job.markRunning();
        job.emit('in_progress');
      },
      onStep: ({ step, totalSteps, preview }: StepProgress) => {
        metrics.step(served.name);
        job.step = step + 1;
        job.totalSteps = totalSteps;
        job.emit('step', { step: step + 1, total_steps: totalSteps });
        if (preview?.length) {
          const index = partialIndex++;
          const encoding = Promise.all(preview.map((image) => encodeImage(image, plan.request)));
          void job.later(async () => {
            try {
              const encoded = await encoding;
              encoded.forEach((bytes, i) =>
                job.emit('partial_image', {
                  partial_image_index: index,
                  ...(encoded.length > 1 ? { image_index: i } : {}),
                  size: `${preview[i].width}x${preview[i].height}`,
                  output_format: plan.request.outputFormat,
                  b64_json: bytes.toString('base64'),
                }),
              );
            } catch (error) {
              logger.warn(`job ${job.id}: a partial image failed to encode: ${(error as Error).message}`);
            }
          });
        }
      },
    });
    job.done = run.then(
      (outcome) =>
        job.later(() => {
          accept();
          job.outcome = outcome;
          job.step = job.totalSteps ?? job.step;
          this.finish(job, 'completed');
        }),
      (error: unknown) =>
        job.later(() => {
          const signal = job.controller.signal;
          const cancelled = signal.aborted && signal.reason instanceof JobCancelled;
          if (!cancelled) job.error = generationError(error, signal, served);
          if (!accepted) {
            refused = true;
            return;
          }
          this.finish(job, cancelled ? 'cancelled' : 'failed');
        }),
    );
    await Promise.race([acceptance, job.done]);
    if (!accepted) {
      this.remove(job);
      throw job.error ?? new ApiError(500, 'the job ended before it was queued', null, 'internal_error');
    }
    logger.debug(`job ${job.id} queued: model=${plan.resolved.name} seed=${plan.seed}`);
    return job;
  }

  private finish(job: Job, status: JobStatus): void {
    job.markFinished(status, this.options.ttlMs);
    // The uploads of an edit are not needed any more (the results are kept until the TTL).
    job.plan.files = undefined;
    this.ctx.metrics.jobFinished(status);
    if (status === 'failed' && job.error) {
      this.ctx.metrics.error('/images/jobs', job.error.code ?? String(job.error.status));
      if (job.error.status >= 500) this.ctx.logger.error(`job ${job.id} failed: ${job.error.status} ${job.error.message}`);
    }
    const { timings } = job.toJSON() as { timings: Record<string, number | null> };
    const fields: Record<string, string | number | null | undefined> = {
      id: job.id,
      status,
      model: job.plan.resolved.name,
      task: job.plan.task,
      seed: job.plan.seed,
      steps_run: job.step,
      ...timings,
      error: job.error?.code ?? undefined,
    };
    const line = Object.entries(fields)
      .filter(([, v]) => v !== undefined && v !== null)
      .map(([k, v]) => `${k}=${String(v)}`)
      .join(' ');
    this.ctx.logger.info(`job ${line}`);
    job.emit(status);
    job.expiry = setTimeout(() => {
      if (this.jobs.get(job.id) === job) this.remove(job);
    }, this.options.ttlMs);
    job.expiry.unref();
  }

  /** Cancels an active job and waits until it has stopped (the engine stops at its next step). */
  async cancel(job: Job): Promise<void> {
    if (!job.finished) job.controller.abort(new JobCancelled());
    await job.done;
  }

  /** Forgets a finished job. */
  delete(job: Job): void {
    this.remove(job);
  }

  private get active(): Job[] {
    return [...this.jobs.values()].filter((j) => !j.finished);
  }

  /** Lets active jobs finish for graceMs, then cancels the rest (failed, shutting_down). Returns how many were cancelled. */
  async drain(graceMs: number, settleMs = 10000): Promise<number> {
    const settled = (ms: number) =>
      new Promise<boolean>((resolve) => {
        const timer = setTimeout(() => resolve(false), ms);
        void Promise.all(this.active.map((j) => j.done)).then(() => {
          clearTimeout(timer);
          resolve(true);
        });
      });
    if (!this.active.length || (await settled(graceMs))) return 0;
    const left = this.active;
    for (const job of left) job.controller.abort(new ServerShuttingDown());
    await settled(settleMs);
    return left.length;
  }

  /** Cancels what runs and forgets everything. */
  close(): void {
    for (const job of this.jobs.values()) {
      if (!job.finished) job.controller.abort(new ServerShuttingDown());
      clearTimeout(job.expiry);
    }
    this.jobs.clear();
  }
}
