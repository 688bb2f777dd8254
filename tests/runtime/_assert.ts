// Minimal assertions (jsr:@std/assert is unreachable here).
export class AssertionError extends Error {
  override name = "AssertionError";
}

/** Throws unless `cond` is truthy. */
export function assert(cond: unknown, msg = "assertion failed"): asserts cond {
  if (!cond) throw new AssertionError(msg);
}

function canon(v: unknown): string {
  return JSON.stringify(v, (_k, x) => {
    if (x instanceof Uint8Array || x instanceof Float32Array || x instanceof Float64Array) {
      return { [x.constructor.name]: Array.from(x) };
    }
    if (x && typeof x === "object" && !Array.isArray(x)) {
      return Object.fromEntries(Object.keys(x).sort().map((k) => [k, x[k]]));
    }
    return x;
  });
}

/** Deep equality through a canonical JSON form (typed arrays compared by value). */
export function assertEquals(actual: unknown, expected: unknown, msg?: string): void {
  const a = canon(actual);
  const e = canon(expected);
  if (a !== e) throw new AssertionError(`${msg ? msg + ": " : ""}expected ${e}, got ${a}`);
}

/** Throws unless `s` matches `re`. */
export function assertMatch(s: string, re: RegExp, msg?: string): void {
  if (!re.test(s)) {
    throw new AssertionError(`${msg ? msg + ": " : ""}${JSON.stringify(s)} does not match ${re}`);
  }
}

/** Throws unless `s` contains `part`. */
export function assertStringIncludes(s: string, part: string, msg?: string): void {
  if (!s.includes(part)) {
    throw new AssertionError(
      `${msg ? msg + ": " : ""}${JSON.stringify(s)} does not contain ${JSON.stringify(part)}`,
    );
  }
}
