/**
 * Reusable buffers for large answers. A receive answer of a thousand 1 KiB messages is a 1 MiB
 * buffer; a fresh one per answer costs more than everything else in encoding it (the memory is
 * new to the process each time: the kernel zeroes every page on first touch), and the garbage
 * collector then chases the external memory. A buffer is handed back once the answer has been
 * written to the socket, and the next answer of its size class writes into it again.
 *
 * Size classes are powers of two from `minBytes` to `maxBytes`; a request beyond `maxBytes` gets
 * a buffer of its own that is never kept. At most `keepPerClass` idle buffers are kept per class.
 */
export class BufferPool {
  readonly #minBytes: number;
  readonly #maxBytes: number;
  readonly #keepPerClass: number;
  readonly #idle = new Map<number, Buffer[]>();
  /** Buffers handed out and not yet back, by the pool's own view of them. */
  readonly #out = new WeakSet<ArrayBufferLike>();

  constructor(options: { minBytes?: number; maxBytes?: number; keepPerClass?: number } = {}) {
    this.#minBytes = options.minBytes ?? 64 * 1024;
    this.#maxBytes = options.maxBytes ?? 16 * 1024 * 1024;
    this.#keepPerClass = options.keepPerClass ?? 4;
  }

  #classOf(bytes: number): number {
    let size = this.#minBytes;
    while (size < bytes) size *= 2;
    return size;
  }

  /** A buffer of at least `bytes` (its contents are old: write before reading). */
  acquire(bytes: number): Buffer {
    if (bytes > this.#maxBytes) return Buffer.allocUnsafeSlow(bytes);
    const size = this.#classOf(bytes);
    const buf = this.#idle.get(size)?.pop() ?? Buffer.allocUnsafeSlow(size);
    this.#out.add(buf.buffer);
    return buf;
  }

  /**
   * Takes back a buffer `acquire` gave (a view of it is enough); nothing may use it afterwards.
   * Anything else, or a buffer given back twice, is ignored.
   */
  release(view: Buffer): void {
    if (!this.#out.has(view.buffer)) return;
    this.#out.delete(view.buffer);
    const buf = Buffer.from(view.buffer, 0, view.buffer.byteLength);
    let idle = this.#idle.get(buf.length);
    if (idle === undefined) {
      idle = [];
      this.#idle.set(buf.length, idle);
    }
    if (idle.length < this.#keepPerClass) idle.push(buf);
  }

  /** Idle buffers kept, for tests and metrics. */
  get idleCount(): number {
    let n = 0;
    for (const list of this.#idle.values()) n += list.length;
    return n;
  }
}
