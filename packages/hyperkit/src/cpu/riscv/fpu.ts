/**
 * IEEE-754 binary32/binary64 arithmetic with RISC-V semantics: all five rounding modes, exact exception
 * flags (NV, DZ, OF, UF with tininess after rounding, NX) and canonical NaNs. Values travel as raw bits
 * (two int32 halves for binary64); the arithmetic is exact on BigInt significands and then rounded once,
 * which is slow but correct — FP is rare in the kernel paths we run.
 */

export const FLAG_NX = 1;
export const FLAG_UF = 2;
export const FLAG_OF = 4;
export const FLAG_DZ = 8;
export const FLAG_NV = 16;

export const RM_RNE = 0;
export const RM_RTZ = 1;
export const RM_RDN = 2;
export const RM_RUP = 3;
export const RM_RMM = 4;

interface Format {
  precision: number;
  emin: number;
  emax: number;
  bias: number;
  width: number;
  canonicalNaN: bigint;
}

export const F32: Format = {
  precision: 24,
  emin: -126,
  emax: 127,
  bias: 127,
  width: 32,
  canonicalNaN: 0x7fc00000n,
};
export const F64: Format = {
  precision: 53,
  emin: -1022,
  emax: 1023,
  bias: 1023,
  width: 64,
  canonicalNaN: 0x7ff8000000000000n,
};

const CLASS_ZERO = 0;
const CLASS_NORMAL = 1; // normal or subnormal
const CLASS_INF = 2;
const CLASS_QNAN = 3;
const CLASS_SNAN = 4;

interface Unpacked {
  cls: number;
  sign: boolean;
  /** value = sig * 2^exp for finite numbers. */
  sig: bigint;
  exp: number;
}

function bitLength(x: bigint): number {
  return x === 0n ? 0 : x.toString(2).length;
}

export function unpack(bits: bigint, f: Format): Unpacked {
  const fracBits = BigInt(f.precision - 1);
  const expMask = (1n << BigInt(f.width - f.precision)) - 1n;
  const sign = ((bits >> BigInt(f.width - 1)) & 1n) === 1n;
  const e = Number((bits >> fracBits) & expMask);
  const frac = bits & ((1n << fracBits) - 1n);
  if (e === Number(expMask)) {
    if (frac === 0n) return { cls: CLASS_INF, sign, sig: 0n, exp: 0 };
    const quiet = (frac >> (fracBits - 1n)) & 1n;
    return { cls: quiet ? CLASS_QNAN : CLASS_SNAN, sign, sig: 0n, exp: 0 };
  }
  if (e === 0) {
    if (frac === 0n) return { cls: CLASS_ZERO, sign, sig: 0n, exp: 0 };
    return { cls: CLASS_NORMAL, sign, sig: frac, exp: f.emin - (f.precision - 1) };
  }
  return { cls: CLASS_NORMAL, sign, sig: frac | (1n << fracBits), exp: e - f.bias - (f.precision - 1) };
}

/** Accumulated exception flags; the hart ORs them into fflags after each instruction. */
export class SoftFloat {
  flags = 0;

  private signBit(sign: boolean, f: Format): bigint {
    return sign ? 1n << BigInt(f.width - 1) : 0n;
  }

  private infinity(sign: boolean, f: Format): bigint {
    return this.signBit(sign, f) | (((1n << BigInt(f.width - f.precision)) - 1n) << BigInt(f.precision - 1));
  }

  private zero(sign: boolean, f: Format): bigint {
    return this.signBit(sign, f);
  }

  /** Rounds sig >> shift (with extra sticky) to an integer per rm; returns [rounded, inexact]. */
  private roundShift(
    sig: bigint,
    shift: number,
    sticky: boolean,
    sign: boolean,
    rm: number,
  ): [bigint, boolean] {
    let kept: bigint;
    let roundBit = false;
    let rest = sticky;
    if (shift > 0) {
      const s = BigInt(shift);
      kept = sig >> s;
      const rem = sig & ((1n << s) - 1n);
      const half = 1n << (s - 1n);
      roundBit = rem >= half;
      rest = rest || (rem & (half - 1n)) !== 0n;
    } else {
      kept = sig << BigInt(-shift);
    }
    const inexact = roundBit || rest;
    let up = false;
    switch (rm) {
      case RM_RNE:
        up = roundBit && (rest || (kept & 1n) === 1n);
        break;
      case RM_RTZ:
        break;
      case RM_RDN:
        up = inexact && sign;
        break;
      case RM_RUP:
        up = inexact && !sign;
        break;
      default:
        up = roundBit;
    }
    return [up ? kept + 1n : kept, inexact];
  }

  /** Rounds the exact value (-1)^sign * (sig + sticky) * 2^exp to format f. sig must be nonzero. */
  roundPack(sign: boolean, sig: bigint, exp: number, sticky: boolean, rm: number, f: Format): bigint {
    const p = f.precision;
    const e = exp + bitLength(sig) - 1;
    const minLsb = f.emin - p + 1;
    let lsb = Math.max(e - p + 1, minLsb);
    let [kept, inexact] = this.roundShift(sig, lsb - exp, sticky, sign, rm);
    if (e < f.emin && inexact) {
      // Tininess after rounding: round to p bits with an unbounded exponent and see if it reaches 2^emin.
      const [unbounded] = this.roundShift(sig, e - p + 1 - exp, sticky, sign, rm);
      const reaches = e === f.emin - 1 && unbounded === 1n << BigInt(p);
      if (!reaches) this.flags |= FLAG_UF;
    }
    if (kept === 1n << BigInt(p)) {
      kept >>= 1n;
      lsb += 1;
    }
    if (inexact) this.flags |= FLAG_NX;
    const normal = kept >= 1n << BigInt(p - 1);
    const resultExp = lsb + p - 1;
    if (normal && resultExp > f.emax) {
      this.flags |= FLAG_OF | FLAG_NX;
      const toInf = rm === RM_RNE || rm === RM_RMM || (rm === RM_RDN && sign) || (rm === RM_RUP && !sign);
      if (toInf) return this.infinity(sign, f);
      // largest finite
      return (
        this.signBit(sign, f) | (BigInt(f.emax + f.bias) << BigInt(p - 1)) | ((1n << BigInt(p - 1)) - 1n)
      );
    }
    if (kept === 0n) return this.zero(sign, f);
    if (!normal) return this.signBit(sign, f) | kept;
    return (
      this.signBit(sign, f) | (BigInt(resultExp + f.bias) << BigInt(p - 1)) | (kept - (1n << BigInt(p - 1)))
    );
  }

  private nanResult(a: Unpacked, b: Unpacked | undefined, c: Unpacked | undefined, f: Format): bigint {
    if (a.cls === CLASS_SNAN || b?.cls === CLASS_SNAN || c?.cls === CLASS_SNAN) this.flags |= FLAG_NV;
    return f.canonicalNaN;
  }

  private static isNaN(u: Unpacked): boolean {
    return u.cls === CLASS_QNAN || u.cls === CLASS_SNAN;
  }

  /** Exact sum of two finite values, rounded. */
  private addFinite(a: Unpacked, b: Unpacked, rm: number, f: Format): bigint {
    if (a.cls === CLASS_ZERO && b.cls === CLASS_ZERO) {
      if (a.sign === b.sign) return this.zero(a.sign, f);
      return this.zero(rm === RM_RDN, f);
    }
    if (a.cls === CLASS_ZERO) return this.roundPack(b.sign, b.sig, b.exp, false, rm, f);
    if (b.cls === CLASS_ZERO) return this.roundPack(a.sign, a.sig, a.exp, false, rm, f);
    const e = Math.min(a.exp, b.exp);
    const sa = (a.sign ? -a.sig : a.sig) << BigInt(a.exp - e);
    const sb = (b.sign ? -b.sig : b.sig) << BigInt(b.exp - e);
    const sum = sa + sb;
    if (sum === 0n) return this.zero(rm === RM_RDN, f);
    return this.roundPack(sum < 0n, sum < 0n ? -sum : sum, e, false, rm, f);
  }

  add(x: bigint, y: bigint, negateY: boolean, rm: number, f: Format): bigint {
    const a = unpack(x, f);
    const b = unpack(y, f);
    if (negateY) b.sign = !b.sign;
    if (SoftFloat.isNaN(a) || SoftFloat.isNaN(b)) return this.nanResult(a, b, undefined, f);
    if (a.cls === CLASS_INF || b.cls === CLASS_INF) {
      if (a.cls === CLASS_INF && b.cls === CLASS_INF && a.sign !== b.sign) {
        this.flags |= FLAG_NV;
        return f.canonicalNaN;
      }
      return this.infinity(a.cls === CLASS_INF ? a.sign : b.sign, f);
    }
    return this.addFinite(a, b, rm, f);
  }

  mul(x: bigint, y: bigint, rm: number, f: Format): bigint {
    const a = unpack(x, f);
    const b = unpack(y, f);
    if (SoftFloat.isNaN(a) || SoftFloat.isNaN(b)) return this.nanResult(a, b, undefined, f);
    const sign = a.sign !== b.sign;
    if (a.cls === CLASS_INF || b.cls === CLASS_INF) {
      if (a.cls === CLASS_ZERO || b.cls === CLASS_ZERO) {
        this.flags |= FLAG_NV;
        return f.canonicalNaN;
      }
      return this.infinity(sign, f);
    }
    if (a.cls === CLASS_ZERO || b.cls === CLASS_ZERO) return this.zero(sign, f);
    return this.roundPack(sign, a.sig * b.sig, a.exp + b.exp, false, rm, f);
  }

  /** (-1)^negProduct * x*y + (-1)^negAddend * z with a single rounding. */
  fma(
    x: bigint,
    y: bigint,
    z: bigint,
    negProduct: boolean,
    negAddend: boolean,
    rm: number,
    f: Format,
  ): bigint {
    const a = unpack(x, f);
    const b = unpack(y, f);
    const c = unpack(z, f);
    const infTimesZero =
      (a.cls === CLASS_INF && b.cls === CLASS_ZERO) || (a.cls === CLASS_ZERO && b.cls === CLASS_INF);
    if (SoftFloat.isNaN(a) || SoftFloat.isNaN(b) || SoftFloat.isNaN(c)) {
      if (infTimesZero) this.flags |= FLAG_NV;
      return this.nanResult(a, b, c, f);
    }
    if (infTimesZero) {
      this.flags |= FLAG_NV;
      return f.canonicalNaN;
    }
    const productSign = (a.sign !== b.sign) !== negProduct;
    const addendSign = c.sign !== negAddend;
    if (a.cls === CLASS_INF || b.cls === CLASS_INF) {
      if (c.cls === CLASS_INF && addendSign !== productSign) {
        this.flags |= FLAG_NV;
        return f.canonicalNaN;
      }
      return this.infinity(productSign, f);
    }
    if (c.cls === CLASS_INF) return this.infinity(addendSign, f);
    const productZero = a.cls === CLASS_ZERO || b.cls === CLASS_ZERO;
    const product: Unpacked = productZero
      ? { cls: CLASS_ZERO, sign: productSign, sig: 0n, exp: 0 }
      : { cls: CLASS_NORMAL, sign: productSign, sig: a.sig * b.sig, exp: a.exp + b.exp };
    return this.addFinite(product, { ...c, sign: addendSign }, rm, f);
  }

  div(x: bigint, y: bigint, rm: number, f: Format): bigint {
    const a = unpack(x, f);
    const b = unpack(y, f);
    if (SoftFloat.isNaN(a) || SoftFloat.isNaN(b)) return this.nanResult(a, b, undefined, f);
    const sign = a.sign !== b.sign;
    if (a.cls === CLASS_INF) {
      if (b.cls === CLASS_INF) {
        this.flags |= FLAG_NV;
        return f.canonicalNaN;
      }
      return this.infinity(sign, f);
    }
    if (b.cls === CLASS_INF) return this.zero(sign, f);
    if (b.cls === CLASS_ZERO) {
      if (a.cls === CLASS_ZERO) {
        this.flags |= FLAG_NV;
        return f.canonicalNaN;
      }
      this.flags |= FLAG_DZ;
      return this.infinity(sign, f);
    }
    if (a.cls === CLASS_ZERO) return this.zero(sign, f);
    const k = Math.max(0, f.precision + 3 + bitLength(b.sig) - bitLength(a.sig));
    const num = a.sig << BigInt(k);
    const q = num / b.sig;
    const r = num - q * b.sig;
    return this.roundPack(sign, q, a.exp - b.exp - k, r !== 0n, rm, f);
  }

  sqrt(x: bigint, rm: number, f: Format): bigint {
    const a = unpack(x, f);
    if (SoftFloat.isNaN(a)) return this.nanResult(a, undefined, undefined, f);
    if (a.cls === CLASS_ZERO) return x;
    if (a.sign) {
      this.flags |= FLAG_NV;
      return f.canonicalNaN;
    }
    if (a.cls === CLASS_INF) return x;
    let sig = a.sig;
    let exp = a.exp;
    if (exp & 1) {
      sig <<= 1n;
      exp -= 1;
    }
    const k = Math.max(0, f.precision + 3 - (bitLength(sig) >> 1));
    sig <<= BigInt(2 * k);
    exp -= 2 * k;
    const root = isqrt(sig);
    return this.roundPack(false, root, exp / 2, root * root !== sig, rm, f);
  }

  /** Converts between formats (binary64 <-> binary32), with NaN canonicalisation. */
  convert(x: bigint, from: Format, to: Format, rm: number): bigint {
    const a = unpack(x, from);
    if (SoftFloat.isNaN(a)) return this.nanResult(a, undefined, undefined, to);
    if (a.cls === CLASS_INF) return this.infinity(a.sign, to);
    if (a.cls === CLASS_ZERO) return this.zero(a.sign, to);
    return this.roundPack(a.sign, a.sig, a.exp, false, rm, to);
  }

  /** Integer (exact BigInt) to float. */
  fromInteger(v: bigint, rm: number, f: Format): bigint {
    if (v === 0n) return 0n;
    return this.roundPack(v < 0n, v < 0n ? -v : v, 0, false, rm, f);
  }

  /**
   * Float to integer in [min, max], rounding per rm; NaN gives max, out-of-range saturates with NV, and
   * inexact in-range results set NX.
   */
  toInteger(x: bigint, f: Format, rm: number, min: bigint, max: bigint): bigint {
    const a = unpack(x, f);
    if (SoftFloat.isNaN(a)) {
      this.flags |= FLAG_NV;
      return max;
    }
    if (a.cls === CLASS_INF) {
      this.flags |= FLAG_NV;
      return a.sign ? min : max;
    }
    if (a.cls === CLASS_ZERO) return 0n;
    let magnitude: bigint;
    let inexact = false;
    if (a.exp >= 0) magnitude = a.sig << BigInt(a.exp);
    else [magnitude, inexact] = this.roundShift(a.sig, -a.exp, false, a.sign, rm);
    const v = a.sign ? -magnitude : magnitude;
    if (v < min || v > max) {
      this.flags |= FLAG_NV;
      return a.sign ? min : max;
    }
    if (inexact) this.flags |= FLAG_NX;
    return v;
  }

  /** FMIN/FMAX per the 2.2 F spec (minimumNumber semantics, -0 < +0). */
  minMax(x: bigint, y: bigint, max: boolean, f: Format): bigint {
    const a = unpack(x, f);
    const b = unpack(y, f);
    if (a.cls === CLASS_SNAN || b.cls === CLASS_SNAN) this.flags |= FLAG_NV;
    const an = SoftFloat.isNaN(a);
    const bn = SoftFloat.isNaN(b);
    if (an && bn) return f.canonicalNaN;
    if (an) return y;
    if (bn) return x;
    const less = compareLess(a, b) || (a.cls === CLASS_ZERO && b.cls === CLASS_ZERO && a.sign && !b.sign);
    if (max) return less ? y : x;
    return less ? x : y;
  }

  /** FEQ (quiet) / FLT / FLE (signalling). op: 2 = eq, 1 = lt, 0 = le. */
  compare(x: bigint, y: bigint, op: number, f: Format): boolean {
    const a = unpack(x, f);
    const b = unpack(y, f);
    if (SoftFloat.isNaN(a) || SoftFloat.isNaN(b)) {
      if (op !== 2 || a.cls === CLASS_SNAN || b.cls === CLASS_SNAN) this.flags |= FLAG_NV;
      return false;
    }
    const eq = equalValues(a, b);
    if (op === 2) return eq;
    if (op === 1) return compareLess(a, b);
    return eq || compareLess(a, b);
  }
}

function isqrt(n: bigint): bigint {
  if (n < 2n) return n;
  let x = 1n << BigInt((bitLength(n) >> 1) + 1);
  for (;;) {
    const y = (x + n / x) >> 1n;
    if (y >= x) return x;
    x = y;
  }
}

function equalValues(a: Unpacked, b: Unpacked): boolean {
  if (a.cls === CLASS_ZERO && b.cls === CLASS_ZERO) return true;
  if (a.cls !== b.cls || a.sign !== b.sign) return false;
  if (a.cls === CLASS_INF) return true;
  return (
    a.sig * (1n << BigInt(a.exp - Math.min(a.exp, b.exp))) ===
    b.sig * (1n << BigInt(b.exp - Math.min(a.exp, b.exp)))
  );
}

/** a < b for non-NaN values (zeros compare equal). */
function compareLess(a: Unpacked, b: Unpacked): boolean {
  const va = signedMagnitude(a);
  const vb = signedMagnitude(b);
  if (va.inf !== vb.inf) return va.inf < vb.inf;
  if (va.inf !== 0) return false;
  const e = Math.min(a.exp, b.exp);
  const ma = va.sign * (a.cls === CLASS_ZERO ? 0n : a.sig << BigInt(a.exp - e));
  const mb = vb.sign * (b.cls === CLASS_ZERO ? 0n : b.sig << BigInt(b.exp - e));
  return ma < mb;
}

function signedMagnitude(u: Unpacked): { inf: number; sign: bigint } {
  return { inf: u.cls === CLASS_INF ? (u.sign ? -1 : 1) : 0, sign: u.sign ? -1n : 1n };
}

/** FCLASS result bit for raw bits. */
export function classify(x: bigint, f: Format): number {
  const a = unpack(x, f);
  const subnormal =
    a.cls === CLASS_NORMAL &&
    (x & (((1n << BigInt(f.width - f.precision)) - 1n) << BigInt(f.precision - 1))) === 0n;
  switch (a.cls) {
    case CLASS_INF:
      return a.sign ? 1 << 0 : 1 << 7;
    case CLASS_ZERO:
      return a.sign ? 1 << 3 : 1 << 4;
    case CLASS_SNAN:
      return 1 << 8;
    case CLASS_QNAN:
      return 1 << 9;
    default:
      if (subnormal) return a.sign ? 1 << 2 : 1 << 5;
      return a.sign ? 1 << 1 : 1 << 6;
  }
}
