// JSON <-> Postgres text for SQL over HTTP. Parameters: JSON values to untyped text (Neon's json.rs rules).
// Results without Neon-Raw-Text-Output: Postgres text to JSON by type (numbers, bools, json, arrays).

export type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

/** A request parameter as the text bound to Postgres (null = SQL NULL). */
export function paramToText(v: Json): string | null {
  if (v === null) return null;
  if (typeof v === 'string') return v;
  if (Array.isArray(v)) return arrayLiteral(v);
  return JSON.stringify(v);
}

function quoteArrayElement(s: string): string {
  return '"' + s.replace(/[\\"]/g, (c) => '\\' + c) + '"';
}

/** A Postgres array literal: strings quoted, null as NULL, nested arrays recursing, objects quoted JSON. */
function arrayLiteral(items: Json[]): string {
  const parts = items.map((item): string => {
    if (item === null) return 'NULL';
    if (Array.isArray(item)) return arrayLiteral(item);
    if (typeof item === 'string') return quoteArrayElement(item);
    if (typeof item === 'object') return quoteArrayElement(JSON.stringify(item));
    return JSON.stringify(item);
  });
  return '{' + parts.join(',') + '}';
}

// Built-in array type OIDs and their element types (PostgreSQL 15's pg_type; box[] left out: it uses ';').
// Arrays of other types (user enums, domains) stay strings: the proxy does no pg_type lookup.
const ARRAY_ELEMENT: Record<number, number> = {
  143: 142, 199: 114, 210: 71, 270: 75, 271: 5069, 272: 81, 273: 83, 629: 628, 651: 650, 719: 718, 775: 774,
  791: 790, 1000: 16, 1001: 17, 1002: 18, 1003: 19, 1005: 21, 1006: 22, 1007: 23, 1008: 24, 1009: 25, 1010: 27,
  1011: 28, 1012: 29, 1013: 30, 1014: 1042, 1015: 1043, 1016: 20, 1017: 600, 1018: 601, 1019: 602,
  1021: 700, 1022: 701, 1027: 604, 1028: 26, 1034: 1033, 1040: 829, 1041: 869, 1115: 1114, 1182: 1082,
  1183: 1083, 1185: 1184, 1187: 1186, 1231: 1700, 1263: 2275, 1270: 1266, 1561: 1560, 1563: 1562, 2201: 1790,
  2207: 2202, 2208: 2203, 2209: 2204, 2210: 2205, 2211: 2206, 2949: 2970, 2951: 2950, 3221: 3220, 3643: 3614,
  3644: 3642, 3645: 3615, 3735: 3734, 3770: 3769, 3807: 3802, 3905: 3904, 3907: 3906, 3909: 3908, 3911: 3910,
  3913: 3912, 3927: 3926, 4073: 4072, 4090: 4089, 4097: 4096, 4192: 4191, 5039: 5038, 6150: 4451, 6151: 4532,
  6152: 4533, 6153: 4534, 6155: 4535, 6157: 4536,
};

/** One text value to JSON according to its type OID (Neon's pg_text_to_json). */
export function textToJson(text: string | null, typeId: number): Json {
  if (text === null) return null;
  const elem = ARRAY_ELEMENT[typeId];
  if (elem !== undefined) return parseArray(text, elem);
  switch (typeId) {
    case 16:
      return text === 't';
    case 21:
    case 23:
      return Number.parseInt(text, 10);
    case 700:
    case 701: {
      const n = Number(text);
      return Number.isFinite(n) ? n : text;
    }
    case 114:
    case 3802:
      return JSON.parse(text) as Json;
    default:
      return text;
  }
}

/** Parses a Postgres array literal (any nesting, optional `[lo:hi]=` bounds prefix). */
export function parseArray(text: string, elemType: number): Json {
  let i = 0;
  if (text[0] === '[') {
    const eq = text.indexOf('=');
    if (eq > 0) i = eq + 1;
  }
  const parseLevel = (): Json[] => {
    if (text[i] !== '{') throw new Error('malformed array literal');
    i++;
    const out: Json[] = [];
    if (text[i] === '}') {
      i++;
      return out;
    }
    for (;;) {
      if (text[i] === '{') out.push(parseLevel());
      else if (text[i] === '"') {
        i++;
        let s = '';
        while (i < text.length && text[i] !== '"') {
          if (text[i] === '\\') i++;
          s += text[i++];
        }
        i++;
        out.push(textToJson(s, elemType));
      } else {
        let j = i;
        while (j < text.length && text[j] !== ',' && text[j] !== '}') j++;
        const raw = text.slice(i, j).trim();
        i = j;
        out.push(raw.toUpperCase() === 'NULL' ? null : textToJson(raw, elemType));
      }
      if (text[i] === ',') i++;
      else if (text[i] === '}') {
        i++;
        return out;
      } else throw new Error('malformed array literal');
    }
  };
  return parseLevel();
}
