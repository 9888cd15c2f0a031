// The playground's calls to the server's API (docs/server.md): relative URLs, so the page works wherever the app is
// mounted; the API key as "Authorization: Bearer"; job events read from a fetch stream (EventSource cannot send the
// key), resumed with Last-Event-ID when the connection drops.

/** An error as the API words it: {"error": {"message", "type", "param", "code"}}. */
export class ApiFailure extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly code: string | null = null,
    readonly param: string | null = null,
  ) {
    super(message);
    this.name = 'ApiFailure';
  }
}

export interface ModelOptions {
  id: string;
  base_model: string;
  kind: 'model' | 'adapter' | 'composite';
  state: 'loading' | 'ready' | 'failed';
  class_name: string | null;
  tasks: string[] | null;
  lora_alphas: Record<string, number> | null;
  lora_alphas_allowed: boolean;
  schedulers: string[];
  sizes: string[];
  default_size: string | null;
  max_size: string;
  default_num_inference_steps: number;
  default_guidance_scale: number | null;
  max_num_inference_steps: number;
  max_n: number;
  fixed_n: number | null;
  fixed_guidance_scale: number | null;
}

export interface JobObject {
  id: string;
  status: 'queued' | 'in_progress' | 'completed' | 'failed' | 'cancelled';
  progress: number;
  step: number;
  total_steps: number | null;
  queue_position: number | null;
  seed: number;
  n: number;
  size: string | null;
  model: string;
  output_format: string;
  error: { code: string | null; message: string; param: string | null } | null;
  timings: { queue_ms: number | null; generation_ms: number | null; total_ms: number | null };
}

export interface JobEvent {
  id: number;
  type: string;
  data: { type: string; job: JobObject; [key: string]: unknown };
}

const FINAL_EVENTS = /\.(completed|failed|cancelled)$/;

export class Api {
  key = '';

  private headers(extra: Record<string, string> = {}): Record<string, string> {
    return this.key ? { ...extra, authorization: `Bearer ${this.key}` } : extra;
  }

  private async send(method: string, path: string, body?: BodyInit, contentType?: string): Promise<Response> {
    let res: Response;
    try {
      res = await fetch(path, { method, headers: this.headers(contentType ? { 'content-type': contentType } : {}), body });
    } catch (error) {
      throw new ApiFailure(0, `the server cannot be reached: ${(error as Error).message}`, 'network_error');
    }
    if (!res.ok) throw await failure(res);
    return res;
  }

  async json<T>(method: string, path: string, body?: unknown): Promise<T> {
    const res = await this.send(
      method,
      path,
      body === undefined ? undefined : JSON.stringify(body),
      body === undefined ? undefined : 'application/json',
    );
    return (await res.json()) as T;
  }

  /** POSTs a form (multipart; the browser sets the boundary). */
  async form<T>(path: string, form: FormData): Promise<T> {
    return (await (await this.send('POST', path, form)).json()) as T;
  }

  async blob(path: string): Promise<Blob> {
    return (await this.send('GET', path)).blob();
  }

  /**
   * Follows a job's events until its last one (completed, failed or cancelled). A dropped connection is resumed
   * from the last event seen; `signal` stops following.
   */
  async follow(jobId: string, onEvent: (event: JobEvent) => void, signal?: AbortSignal): Promise<void> {
    let lastId = 0;
    for (let attempt = 0; attempt < 5 && !signal?.aborted; attempt++) {
      let res: Response;
      try {
        res = await fetch(`v3/images/jobs/${encodeURIComponent(jobId)}/events`, {
          headers: this.headers(lastId ? { 'last-event-id': String(lastId) } : {}),
          signal,
        });
      } catch {
        await pause(500 * (attempt + 1));
        continue;
      }
      if (!res.ok) throw await failure(res);
      let finished = false;
      try {
        await readEvents(res, (event) => {
          lastId = event.id || lastId;
          onEvent(event);
          if (FINAL_EVENTS.test(event.type)) finished = true;
        });
      } catch {
        // a dropped stream: resume below
      }
      if (finished || signal?.aborted) return;
      await pause(500 * (attempt + 1));
    }
    if (!signal?.aborted) throw new ApiFailure(0, 'lost the connection to the job events', 'network_error');
  }
}

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function failure(res: Response): Promise<ApiFailure> {
  const text = await res.text();
  try {
    const { error } = JSON.parse(text) as { error: { message: string; code?: string | null; param?: string | null } };
    return new ApiFailure(res.status, error.message, error.code ?? null, error.param ?? null);
  } catch {
    return new ApiFailure(res.status, `HTTP ${res.status}: ${text.slice(0, 200) || res.statusText}`);
  }
}

/** Parses a text/event-stream body: "id:", "event:" and "data:" lines, a blank line ends an event. */
async function readEvents(res: Response, onEvent: (event: JobEvent) => void): Promise<void> {
  const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  let fields: { id?: string; event?: string; data: string[] } = { data: [] };
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value;
    let newline: number;
    while ((newline = buffer.indexOf('\n')) >= 0) {
      const line = buffer.slice(0, newline).replace(/\r$/, '');
      buffer = buffer.slice(newline + 1);
      if (line === '') {
        if (fields.data.length) {
          const data = JSON.parse(fields.data.join('\n')) as JobEvent['data'];
          onEvent({ id: Number(fields.id ?? 0), type: fields.event ?? data.type, data });
        }
        fields = { data: [] };
      } else if (!line.startsWith(':')) {
        const colon = line.indexOf(':');
        const name = colon < 0 ? line : line.slice(0, colon);
        const text = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
        if (name === 'data') fields.data.push(text);
        else if (name === 'id') fields.id = text;
        else if (name === 'event') fields.event = text;
      }
    }
  }
}
