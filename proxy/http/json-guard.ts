// Limits Neon's proxy gets from serde_json and this one must check itself before JSON.parse: nesting deeper than
// serde_json's recursion limit (128) and numbers beyond f64 (JSON.parse makes `1e999` Infinity, which would be
// bound as 'null'). One pass over the text, outside strings; errors carry serde_json's wording and position.

/** serde_json's default recursion limit: the 128th nested `[` or `{` is refused. */
export const MAX_JSON_DEPTH = 127;

/** Why a body was refused (serde_json's message, e.g. `recursion limit exceeded at line 1 column 129`), or null. */
export function jsonLimitViolation(text: string): string | null {
  let depth = 0;
  let inString = false;
  let line = 1;
  let lineStart = 0;
  const at = (i: number): string => `at line ${line} column ${i - lineStart + 1}`;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c) i++; // backslash: skip the escaped character
      else if (c === 0x22) inString = false;
      continue;
    }
    if (c === 0x22) inString = true;
    else if (c === 0x5b || c === 0x7b) {
      if (++depth > MAX_JSON_DEPTH) return `recursion limit exceeded ${at(i)}`;
    } else if (c === 0x5d || c === 0x7d) depth--;
    else if (c === 0x0a) {
      line++;
      lineStart = i + 1;
    } else if (c === 0x2d || (c >= 0x30 && c <= 0x39)) {
      let j = i + 1;
      while (j < text.length && isNumberChar(text.charCodeAt(j))) j++;
      const token = text.slice(i, j);
      // Only an exponent or a very long mantissa can leave f64's range.
      if ((token.length > 300 || /[eE]/.test(token)) && !Number.isFinite(Number(token))) return `number out of range ${at(j - 1)}`;
      i = j - 1;
    }
  }
  return null;
}

/** 0-9 e E + - . */
function isNumberChar(c: number): boolean {
  return (c >= 0x30 && c <= 0x39) || c === 0x65 || c === 0x45 || c === 0x2b || c === 0x2d || c === 0x2e;
}
