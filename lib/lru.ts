/** A small bounded map that forgets the least recently used entry first. */
export class Lru<V> {
  private readonly map = new Map<string, V>();
  constructor(private readonly capacity: number) {}

  get(key: string): V | undefined {
    const hit = this.map.get(key);
    if (hit !== undefined) {
      this.map.delete(key);
      this.map.set(key, hit);
    }
    return hit;
  }

  set(key: string, value: V): void {
    this.map.delete(key);
    this.map.set(key, value);
    if (this.map.size > this.capacity) this.map.delete(this.map.keys().next().value!);
  }

  delete(key: string): void {
    this.map.delete(key);
  }
}

/** An Lru whose entries also expire after `ttlMs`. */
export class TtlCache<V> {
  private readonly lru: Lru<{ value: V; until: number }>;
  constructor(capacity: number, private readonly ttlMs: number) {
    this.lru = new Lru(capacity);
  }

  get(key: string, now = Date.now()): V | undefined {
    const hit = this.lru.get(key);
    if (!hit) return undefined;
    if (hit.until <= now) {
      this.lru.delete(key);
      return undefined;
    }
    return hit.value;
  }

  set(key: string, value: V, now = Date.now()): void {
    this.lru.set(key, { value, until: now + this.ttlMs });
  }

  /** The cached value, or the loader's (cached when not undefined/null). */
  async getOrLoad(key: string, load: () => Promise<V | null | undefined>): Promise<V | null | undefined> {
    const hit = this.get(key);
    if (hit !== undefined) return hit;
    const value = await load();
    if (value !== undefined && value !== null) this.set(key, value);
    return value;
  }
}
