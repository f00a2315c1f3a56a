// Bounded writes on a gRPC stream: grpc-js buffers every call.write() without limit, so we
// hold back while the stream reports backpressure, keep at most `limit` messages queued, and
// let the caller coalesce messages that supersede older ones (progress reports).

export interface WritableStream<T> {
  write(msg: T, cb?: (err?: Error | null) => void): boolean;
  once(event: "drain", listener: () => void): unknown;
}

export class BoundedWriter<T> {
  private queue: T[] = [];
  private waiting = false;
  private closed = false;

  constructor(
    private readonly stream: WritableStream<T>,
    private readonly limit: number,
    private readonly onOverflow: (dropped: T) => void,
  ) {}

  /** Queues msg; `replaceable(m)` picks a queued message msg may overwrite (coalescing). */
  send(msg: T, replaceable?: (queued: T) => boolean): void {
    if (this.closed) return;
    if (replaceable) {
      const i = this.queue.findIndex(replaceable);
      if (i >= 0) {
        this.queue[i] = msg;
        return;
      }
    }
    if (this.queue.length >= this.limit) {
      this.onOverflow(msg);
      return;
    }
    this.queue.push(msg);
    this.flush();
  }

  get pending(): number {
    return this.queue.length;
  }

  close(): void {
    this.closed = true;
    this.queue = [];
  }

  private flush(): void {
    while (!this.waiting && !this.closed && this.queue.length > 0) {
      const msg = this.queue.shift() as T;
      let ok: boolean;
      try {
        ok = this.stream.write(msg);
      } catch {
        this.close();
        return;
      }
      if (!ok) {
        this.waiting = true;
        this.stream.once("drain", () => {
          this.waiting = false;
          this.flush();
        });
      }
    }
  }
}
