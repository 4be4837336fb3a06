/**
 * A seeded xorshift32 generator for fuzz tests: deterministic, so a failure replays from its seed.
 * Returns uint32s; `int`, `pick` and `chance` derive from them.
 */
export function seededRandom(seed: number): {
  u32: () => number;
  int: (n: number) => number;
  pick: <T>(items: readonly T[]) => T;
  chance: (p: number) => boolean;
} {
  let x = seed >>> 0 || 1;
  const u32 = () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x;
  };
  return {
    u32,
    int: (n) => u32() % n,
    pick: <T>(items: readonly T[]): T => items[u32() % items.length] as T,
    chance: (p) => u32() / 0x1_0000_0000 < p,
  };
}
