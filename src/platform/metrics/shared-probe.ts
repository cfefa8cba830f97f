/**
 * One probe at a time, its result reused for a while. A scrape asks for the latest result: one
 * younger than `maxAgeMs` is answered at once; otherwise the probe under way is joined, or one is
 * started. However often and however many scrapers ask, the expensive look (every node of the
 * cluster, the control database) never runs twice at once, and at most once per `maxAgeMs`.
 */

/** A probe's result and when it was taken. */
export interface Probed<T> {
  value: T;
  /** When the probe finished (Date.now()). */
  at: number;
  tookMs: number;
}

export interface SharedProbeOptions<T> {
  /** The probe; it reports its own failures in its value (a rejection is a bug, answered as one). */
  probe: () => Promise<T>;
  /** How long a result is reused; 0: only probes under way are shared. */
  maxAgeMs: number;
  /** How long a caller waits for a probe under way before taking the last result (a hung node must not hang scrapes). */
  waitMs: number;
}

export class SharedProbe<T> {
  readonly #options: SharedProbeOptions<T>;
  #last: Probed<T> | null = null;
  #running: Promise<Probed<T>> | null = null;
  #started = 0;

  constructor(options: SharedProbeOptions<T>) {
    this.#options = options;
  }

  /** How many probes have started. */
  get started(): number {
    return this.#started;
  }

  /**
   * The latest result: a fresh one as is, else the probe under way (started now if none is). When
   * that takes longer than `waitMs`, the last result however old (null before the first), while
   * the probe goes on for later callers.
   */
  async get(): Promise<Probed<T> | null> {
    const last = this.#last;
    if (last && Date.now() - last.at < this.#options.maxAgeMs) return last;
    const running = this.#start();
    let timer: NodeJS.Timeout | undefined;
    const gaveUp = new Promise<null>((resolve) => {
      timer = setTimeout(() => {
        resolve(null);
      }, this.#options.waitMs);
    });
    try {
      return (await Promise.race([running, gaveUp])) ?? this.#last;
    } finally {
      clearTimeout(timer);
    }
  }

  /** Waits for the probe under way, if any (before closing what it uses). */
  async settled(): Promise<void> {
    await this.#running?.catch(() => undefined);
  }

  #start(): Promise<Probed<T>> {
    if (this.#running) return this.#running;
    this.#started++;
    const began = Date.now();
    const running = this.#options.probe().then((value) => {
      const at = Date.now();
      const probed = { value, at, tookMs: at - began };
      this.#last = probed;
      return probed;
    });
    this.#running = running;
    // Cleared either way; a rejection still reaches the callers that await `running`.
    void running.then(
      () => {
        this.#clear(running);
      },
      () => {
        this.#clear(running);
      },
    );
    return running;
  }

  #clear(running: Promise<Probed<T>>): void {
    if (this.#running === running) this.#running = null;
  }
}
