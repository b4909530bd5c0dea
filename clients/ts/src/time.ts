// Timestamps as govlog's Go code reads them.

/** An instant: whole seconds since the Unix epoch and nanoseconds (0 to 999,999,999). */
export interface Instant {
  readonly sec: number;
  readonly nsec: number;
}

/** compareInstants returns -1, 0 or 1. */
export function compareInstants(a: Instant, b: Instant): number {
  if (a.sec !== b.sec) return a.sec < b.sec ? -1 : 1;
  if (a.nsec !== b.nsec) return a.nsec < b.nsec ? -1 : 1;
  return 0;
}

function isLeap(y: number): boolean {
  return y % 4 === 0 && (y % 100 !== 0 || y % 400 === 0);
}

function daysIn(month: number, year: number): number {
  return month === 2 ? (isLeap(year) ? 29 : 28) : [31, 0, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][month - 1]!;
}

/** daysFromCivil is the number of days from 1970-01-01 to a proleptic Gregorian date. */
function daysFromCivil(y: number, m: number, d: number): number {
  y -= m <= 2 ? 1 : 0;
  const era = Math.floor(y / 400);
  const yoe = y - era * 400;
  const doy = Math.floor((153 * (m + (m > 2 ? -3 : 9)) + 2) / 5) + d - 1;
  const doe = yoe * 365 + Math.floor(yoe / 4) - Math.floor(yoe / 100) + doy;
  return era * 146097 + doe - 719468;
}

// What Go's time.Parse(time.RFC3339Nano, s) accepts: its RFC 3339 fast path
// and, when that fails, the general layout parser, which also takes a
// one-digit hour, a comma before the fraction, and zone offsets up to
// ±24:60. A fraction may have any number of digits; the tenth and later
// are ignored.
const RFC3339 = /^([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{1,2}):([0-9]{2}):([0-9]{2})(?:[.,]([0-9]+))?(?:Z|([+-])([0-9]{2}):([0-9]{2}))$/;

/**
 * parseRFC3339 reads a timestamp as Go's time.Parse(time.RFC3339Nano)
 * does, or returns undefined.
 */
export function parseRFC3339(s: string): Instant | undefined {
  const m = RFC3339.exec(s);
  if (!m) return undefined;
  const [year, month, day, hour, min, sec] = m.slice(1, 7).map(Number) as [number, number, number, number, number, number];
  if (month < 1 || month > 12 || day < 1 || day > daysIn(month, year) || hour > 23 || min > 59 || sec > 59) return undefined;
  let offset = 0;
  if (m[8]) {
    const oh = Number(m[9]);
    const om = Number(m[10]);
    if (oh > 24 || om > 60) return undefined;
    offset = (oh * 60 + om) * 60 * (m[8] === "-" ? -1 : 1);
  }
  const nsec = m[7] ? Number(m[7].slice(0, 9).padEnd(9, "0")) : 0;
  return { sec: daysFromCivil(year, month, day) * 86400 + hour * 3600 + min * 60 + sec - offset, nsec };
}

const LOGGED_AT = /^([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.([0-9]{9}))?Z$/;

/**
 * parseUTC reads a UTC timestamp written exactly in one form: with exactly
 * 9 fractional digits (an entry's logged_at) or none (authorized_until).
 */
export function parseUTC(s: string, fraction: boolean): Instant | undefined {
  const m = LOGGED_AT.exec(s);
  if (!m || (m[7] !== undefined) !== fraction) return undefined;
  return parseRFC3339(s);
}

/** addSeconds returns t plus n whole seconds. */
export function addSeconds(t: Instant, n: number): Instant {
  return { sec: t.sec + n, nsec: t.nsec };
}
