/**
 * Error messages quote hostile input (header snippets from the JSON parser, tensor and file
 * names). This makes such text safe to show as one terminal line.
 */

/** Control characters (C0, DEL, C1), line/paragraph separators and bidi overrides. */
const UNPRINTABLE = /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;

/** Escapes unprintable characters as `\uXXXX` and cuts the text to `max` characters. */
export function printable(text: string, max = 2000): string {
  const safe = text.replace(UNPRINTABLE, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
  return safe.length > max ? `${safe.slice(0, max - 3)}...` : safe;
}
