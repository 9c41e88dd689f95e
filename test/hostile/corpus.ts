/**
 * The hostile-input corpus, generated from the API's own OpenAPI document so that a route added
 * later is covered without touching this file. For every operation it makes requests that must
 * be refused: bad credentials, hostile path parameters (SQL, traversal, unicode, NUL, numbers
 * that are not numbers, another tenant's ids), hostile query parameters, and bodies with one
 * field made hostile at a time (wrong types, out of range, NaN/Infinity as strings, unicode,
 * NUL, SQL fragments, deep nesting, unknown fields), plus whole-body attacks (10,000-deep JSON,
 * broken JSON, prototype poisoning, wrong content types, oversize bodies).
 *
 * Each mutated body is classified with Ajv against the route's schema: a schema-invalid body must
 * be refused by validation; a schema-valid one is kept only when its value is one the service
 * itself must refuse (NUL characters, non-numbers in numeric fields, objects where text is
 * expected), so a valid request never slips in and writes.
 */
import { Ajv, type ValidateFunction } from 'ajv';
import addFormatsPlugin from 'ajv-formats';

export interface HostileRequest {
  /** What the request tries, for the report. */
  kind: string;
  method: string;
  url: string;
  /** Route template (OpenAPI path) it belongs to. */
  route: string;
  as: 'none' | 'garbage' | 'super' | 'tenantA';
  headers?: Record<string, string>;
  payload?: string | Buffer;
}

type Schema = Record<string, unknown> & {
  type?: string;
  properties?: Record<string, Schema>;
  required?: string[];
  anyOf?: Schema[];
  enum?: unknown[];
  items?: Schema;
  format?: string;
  pattern?: string;
  minLength?: number;
  maxLength?: number;
  minimum?: number;
  maximum?: number;
  minItems?: number;
  nullable?: boolean;
};

interface Operation {
  parameters?: Array<{ in: string; name: string; required?: boolean; schema: Schema }>;
  requestBody?: { content: Record<string, { schema: Schema }> };
}

export interface OpenApiDoc {
  paths: Record<string, Record<string, Operation>>;
}

const addFormats = addFormatsPlugin as unknown as (ajv: Ajv) => Ajv;
const strictAjv = addFormats(new Ajv({ strict: false, coerceTypes: false, useDefaults: false }));
const coercingAjv = addFormats(new Ajv({ strict: false, coerceTypes: 'array', useDefaults: false }));

export const MB_STRING = 'A'.repeat(1024 * 1024);

/** Strings that probe parsers, SQL building, path handling and text storage. */
export const HOSTILE_STRINGS: Array<[string, string]> = [
  ['sql-quote', "1' OR '1'='1"],
  ['sql-drop', "x'; DROP TABLE users; --"],
  ['sql-union', '1 UNION SELECT password_hash FROM user_credentials--'],
  ['sql-comment', '/**/OR/**/1=1'],
  ['traversal', '../../etc/passwd'],
  ['traversal-win', '..\\..\\windows\\win.ini'],
  ['nul', 'abc\u0000def'],
  ['rtl', '\u202Egnp.exe'],
  ['zero-width', 'A\u200B\u200C\u200DB\uFEFF'],
  ['emoji', '💥🏦👨‍👩‍👧'],
  ['lone-surrogate', 'x\uD800y'],
  ['nan', 'NaN'],
  ['infinity', 'Infinity'],
  ['neg-infinity', '-Infinity'],
  ['huge-exp', '1e309'],
  ['negative', '-1'],
  ['big-int', '99999999999999999999999999'],
  ['formula', '=HYPERLINK("http://127.0.0.1/x","y")'],
  ['template', '${7*7}{{7*7}}'],
  ['html', '<script>alert(1)</script>'],
  ['crlf', 'a\r\nSet-Cookie: x=y'],
  ['long-1k', 'x'.repeat(1000)],
  ['empty', ''],
  ['spaces', '   '],
];

/** Values of the wrong JSON type (which ones are wrong depends on the field). */
const TYPE_PROBES: Array<[string, unknown]> = [
  ['number', 12345],
  ['float', -0.5],
  ['bool', true],
  ['null', null],
  ['array', ['x']],
  ['object', { a: 1 }],
  ['string', 'str'],
  ['max-safe', Number.MAX_SAFE_INTEGER * 8],
  ['tiny', -1e300],
];

export function deepJson(depth: number, kind: 'array' | 'object'): string {
  return kind === 'array' ? '['.repeat(depth) + ']'.repeat(depth) : '{"a":'.repeat(depth) + '1' + '}'.repeat(depth);
}

function deepValue(depth: number): unknown {
  let v: unknown = 1;
  for (let i = 0; i < depth; i++) v = { a: v };
  return v;
}

const HAND_BASES: Record<string, Record<string, unknown>> = {
  'POST /api/v1/predictions/annual': {
    company: { symbol: 'HSTL', name: 'Hostile Co', sector: 'Industrials' },
    reporting_year: '2024',
    long_term_debt_to_total_capital: 35.2,
    total_debt_to_ebitda: 2.1,
    net_income_margin: 7.5,
    ebit_to_interest_expense: 6.3,
    return_on_assets: 4.9,
  },
  'POST /api/v1/predictions/quarterly': {
    company: { symbol: 'HSTQ', name: 'Hostile Q', sector: 'Industrials' },
    reporting_year: '2024',
    reporting_quarter: 'Q1',
    total_debt_to_ebitda: 2.1,
    sga_to_revenue: 20,
    long_term_debt_to_total_capital: 35,
    return_on_capital: 8,
  },
};

let counter = 0;
/** A valid example value for a schema (the base a single hostile field is put into). */
export function sample(s: Schema | undefined): unknown {
  if (!s || Object.keys(s).length === 0 || (s.description && Object.keys(s).length === 1)) return 'x';
  if (s.anyOf) {
    const opt = s.anyOf.find((o) => !(o.enum && o.enum.length === 1 && o.enum[0] === null)) ?? s.anyOf[0];
    return sample(opt);
  }
  if (s.enum) return s.enum.find((e) => e !== null);
  switch (s.type) {
    case 'object': {
      const out: Record<string, unknown> = {};
      for (const k of s.required ?? []) out[k] = sample(s.properties?.[k]);
      return out;
    }
    case 'array':
      return Array.from({ length: Math.max(1, s.minItems ?? 1) }, () => sample(s.items));
    case 'integer':
    case 'number':
      return s.minimum ?? 1;
    case 'boolean':
      return true;
    case 'string': {
      if (s.format === 'uuid') return '00000000-0000-4000-8000-000000000001';
      if (s.format === 'email') return `hostile${++counter}@example.com`;
      if (s.format === 'date-time') return '2024-01-01T00:00:00Z';
      if (s.pattern) {
        if (s.pattern.includes('[0-9]{4}-[0-9]{2}-[0-9]{2}')) return '2024-01-01';
        if (s.pattern.includes('[0-9]{4}')) return '2024';
        if (s.pattern.includes('A-Za-z0-9_.-')) return `hostile_${++counter}`;
        return 'HSTL';
      }
      return 'x'.repeat(Math.max(3, s.minLength ?? 1));
    }
    default:
      return 'x';
  }
}

function isNumberish(s: Schema | undefined): boolean {
  if (!s) return false;
  if (s.type === 'number' || s.type === 'integer') return true;
  return !!s.anyOf?.some((o) => o.type === 'number' || o.type === 'integer');
}

function untyped(s: Schema | undefined): boolean {
  return !s || (!s.type && !s.anyOf && !s.enum);
}

/**
 * A schema-valid value the service must still refuse: text with NUL (PostgreSQL cannot store it),
 * anything but a number in a numeric field, structure where text is expected.
 */
function mustBeRefusedAnyway(field: Schema | undefined, v: unknown): boolean {
  if (typeof v === 'string' && v.includes('\u0000')) return true;
  if (typeof v === 'string' && /[\uD800-\uDFFF]/.test(v) && !/[\uD800-\uDBFF][\uDC00-\uDFFF]/.test(v)) return true;
  if (isNumberish(field) && typeof v === 'string') return !/^-?\d+(\.\d+)?$/.test(v.trim()) || v.length > 30;
  if (untyped(field) && v !== null && typeof v === 'object') return true;
  return false;
}

function validatorFor(ajv: Ajv, schema: Schema): ValidateFunction {
  return ajv.compile(schema);
}

/** encodeURIComponent, with lone surrogates sent as the invalid UTF-8 they would be (%ED%A0%80). */
function encodeLoose(v: string): string {
  try {
    return encodeURIComponent(v);
  } catch {
    return v.split(/([\uD800-\uDFFF])/).map((p) => (/^[\uD800-\uDFFF]$/.test(p) ? '%ED%A0%80' : encodeURIComponent(p))).join('');
  }
}

/** Fill a path template ("/companies/{id}") with the given values. */
function fill(path: string, values: Record<string, string>): string {
  return path.replace(/\{(\w+)\}/g, (_, k: string) => encodeLoose(values[k] ?? '00000000-0000-4000-8000-000000000001'));
}

export interface CorpusInput {
  doc: OpenApiDoc;
  /** Ids that belong to the other tenant (B): any {id} parameter is tried with each. */
  foreignIds: string[];
  /** Routes reachable without a session (their 4xx comes from validation or credentials). */
  publicRoutes: Set<string>;
  /** Routes left out of the corpus (liveness, docs), each with the reason in the test. */
  skip: Set<string>;
}

export function generateCorpus(input: CorpusInput): HostileRequest[] {
  const out: HostileRequest[] = [];
  for (const [route, ops] of Object.entries(input.doc.paths)) {
    for (const [m, op] of Object.entries(ops)) {
      const method = m.toUpperCase();
      const key = `${method} ${route}`;
      if (input.skip.has(key)) continue;
      const params = op.parameters ?? [];
      const pathParams = params.filter((p) => p.in === 'path');
      const queryParams = params.filter((p) => p.in === 'query');
      const bodySchema = op.requestBody?.content?.['application/json']?.schema;
      const fillValues: Record<string, string> = {};
      for (const p of pathParams) fillValues[p.name] = String(sample(p.schema));
      const baseQuery = new URLSearchParams();
      for (const p of queryParams) if (p.required) baseQuery.set(p.name, String(sample(p.schema)));
      const qs = (q: URLSearchParams) => (q.toString() ? `?${q}` : '');
      const baseBody = bodySchema ? (HAND_BASES[key] ?? (sample(bodySchema) as Record<string, unknown>)) : undefined;
      const json = (v: unknown) => ({ headers: { 'content-type': 'application/json' }, payload: JSON.stringify(v) });
      const baseUrl = fill('/' + route.replace(/^\//, ''), fillValues) + qs(baseQuery);
      const push = (r: Omit<HostileRequest, 'route'>) => out.push({ ...r, route: key });
      const isPublic = input.publicRoutes.has(key);

      // 1. Credentials: none, garbage, hostile bearer strings (public routes: sent with a broken body instead).
      if (!isPublic) {
        for (const [k, auth] of [
          ['no-token', undefined],
          ['garbage-token', 'Bearer not-a-token'],
          ['sql-token', "Bearer ' OR 1=1--"],
          ['unicode-token', 'Bearer \u202E💥'],
          ['long-token', 'Bearer ' + 'a'.repeat(8000)],
          ['basic-auth', 'Basic YWRtaW46YWRtaW4='],
          ['empty-bearer', 'Bearer '],
        ] as const) {
          push({ kind: `auth:${k}`, method, url: baseUrl, as: 'none', headers: { ...(auth ? { authorization: auth } : {}), ...(baseBody ? { 'content-type': 'application/json' } : {}) }, ...(baseBody ? { payload: JSON.stringify(baseBody) } : {}) });
        }
      }
      const who: HostileRequest['as'] = isPublic ? 'none' : 'super';

      // 2. Path parameters: hostile strings (must fail validation) and the other tenant's ids.
      for (const p of pathParams) {
        const v = validatorFor(coercingAjv, p.schema);
        for (const [k, s] of HOSTILE_STRINGS) {
          if (s === '' || v({ x: s }.x)) continue;
          push({ kind: `path:${p.name}:${k}`, method, url: fill('/' + route.replace(/^\//, ''), { ...fillValues, [p.name]: s }) + qs(baseQuery), as: who, ...(baseBody ? json(baseBody) : {}) });
        }
        if (p.schema.format === 'uuid') {
          for (const id of input.foreignIds) {
            // The other tenant's object, as tenant A's admin, with a valid body: 403/404 and nothing changes.
            push({ kind: `path:${p.name}:foreign-id`, method, url: fill('/' + route.replace(/^\//, ''), { ...fillValues, [p.name]: id }) + qs(baseQuery), as: 'tenantA', ...(baseBody ? json(baseBody) : {}) });
          }
        }
      }
      // Raw (not encoded) traversal and encoded NUL in the path.
      if (pathParams.length > 0) {
        const raw = '/' + route.replace(/^\//, '').replace(/\{\w+\}/, '..%2F..%2F..%2Fetc%2Fpasswd');
        push({ kind: 'path:raw-traversal', method, url: raw, as: who, ...(baseBody ? json(baseBody) : {}) });
        push({ kind: 'path:encoded-nul', method, url: '/' + route.replace(/^\//, '').replace(/\{\w+\}/, '%00'), as: who, ...(baseBody ? json(baseBody) : {}) });
      }

      // 3. Query parameters: each one hostile in turn (kept only when its schema refuses it, or
      //    when the value must be refused anyway, as NUL).
      for (const p of queryParams) {
        const v = validatorFor(coercingAjv, p.schema);
        const candidates: Array<[string, string]> = [...HOSTILE_STRINGS, ['mb-string', MB_STRING.slice(0, 20_000)], ['array', '']];
        for (const [k, s] of candidates) {
          const q = new URLSearchParams(baseQuery);
          if (k === 'array') {
            q.append(p.name, 'a');
            q.append(p.name, 'b');
          } else q.set(p.name, s);
          const holder = { x: k === 'array' ? ['a', 'b'] : s };
          const valid = v(holder.x);
          if (valid && !s.includes('\u0000')) continue;
          push({ kind: `query:${p.name}:${k}`, method, url: fill('/' + route.replace(/^\//, ''), fillValues) + qs(q), as: who, ...(baseBody ? json(baseBody) : {}) });
        }
      }

      // 4. Bodies: one field hostile at a time, then whole-body attacks.
      if (bodySchema && baseBody) {
        const validate = validatorFor(strictAjv, bodySchema);
        const fields: Array<{ path: string[]; schema: Schema | undefined }> = [];
        const walk = (s: Schema | undefined, at: string[], depth: number) => {
          for (const [k, sub] of Object.entries(s?.properties ?? {})) {
            fields.push({ path: [...at, k], schema: sub });
            if (depth < 1 && sub.type === 'object') walk(sub, [...at, k], depth + 1);
          }
        };
        walk(bodySchema, [], 0);
        const setAt = (obj: Record<string, unknown>, p: string[], value: unknown) => {
          const copy = structuredClone(obj);
          let cur: Record<string, unknown> = copy;
          for (const seg of p.slice(0, -1)) {
            if (typeof cur[seg] !== 'object' || cur[seg] === null) cur[seg] = {};
            cur = cur[seg] as Record<string, unknown>;
          }
          cur[p[p.length - 1]!] = value;
          return copy;
        };
        for (const f of fields) {
          const probes: Array<[string, unknown]> = [
            ...TYPE_PROBES,
            ...HOSTILE_STRINGS,
            ['deep-100', deepValue(100)],
            ['deep-array', JSON.parse(deepJson(200, 'array'))],
          ];
          if (typeof f.schema?.maxLength === 'number') probes.push(['over-maxLength', 'y'.repeat(f.schema.maxLength + 1)]);
          if (typeof f.schema?.minimum === 'number') probes.push(['below-minimum', f.schema.minimum - 1]);
          if (typeof f.schema?.maximum === 'number') probes.push(['above-maximum', f.schema.maximum + 1]);
          for (const [k, value] of probes) {
            const body = setAt(baseBody, f.path, value);
            const valid = validate(body);
            if (valid && !mustBeRefusedAnyway(f.schema, value)) continue;
            push({ kind: `body:${f.path.join('.')}:${k}`, method, url: baseUrl, as: who, ...json(body) });
          }
        }
        const whole: Array<[string, string, string]> = [
          ['unknown-field', JSON.stringify({ ...baseBody, hostile_unknown_field: 1 }), 'application/json'],
          ['proto-poison', JSON.stringify(baseBody).replace(/^\{/, '{"__proto__":{"isAdmin":true},'), 'application/json'],
          ['constructor-poison', JSON.stringify(baseBody).replace(/^\{/, '{"constructor":{"prototype":{"isAdmin":true}},'), 'application/json'],
          ['deep-10000-array', deepJson(10_000, 'array'), 'application/json'],
          ['deep-10000-object', deepJson(10_000, 'object'), 'application/json'],
          ['deep-100000-array', deepJson(100_000, 'array'), 'application/json'],
          ['broken-json', '{"a": ', 'application/json'],
          ['trailing-garbage', JSON.stringify(baseBody) + 'xx', 'application/json'],
          ['json-array', JSON.stringify([baseBody]), 'application/json'],
          ['json-string', JSON.stringify('hello'), 'application/json'],
          ['json-null', 'null', 'application/json'],
          ['json-number', '1e309', 'application/json'],
          ['empty-json', '', 'application/json'],
          ['mb-string-field', JSON.stringify({ ...baseBody, [Object.keys(baseBody)[0] ?? 'x']: MB_STRING }), 'application/json'],
          ['2mb-body', JSON.stringify({ ...baseBody, pad: MB_STRING + MB_STRING }), 'application/json'],
          ['text-plain', JSON.stringify(baseBody), 'text/plain'],
          ['form-urlencoded', 'a=1&b=2', 'application/x-www-form-urlencoded'],
          ['xml', '<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><x>&e;</x>', 'application/xml'],
          ['invalid-utf8', Buffer.from([0x7b, 0x22, 0x61, 0x22, 0x3a, 0x22, 0xff, 0xfe, 0x22, 0x7d]).toString('latin1'), 'application/json'],
        ];
        for (const [k, payload, type] of whole) {
          push({ kind: `body:${k}`, method, url: baseUrl, as: who, headers: { 'content-type': type }, payload: k === 'invalid-utf8' ? Buffer.from(payload, 'latin1') : payload });
        }
      } else if (method !== 'GET' && method !== 'HEAD' && !isPublic) {
        // Body-less writes (logout, deletes…) given a hostile body by an unauthenticated caller.
        push({ kind: 'body:deep-10000-unauthenticated', method, url: baseUrl, as: 'garbage', headers: { 'content-type': 'application/json' }, payload: deepJson(10_000, 'array') });
      }
      if (method === 'GET' && !isPublic && queryParams.some((p) => p.name === 'limit')) {
        // A GET with a body (ignored or refused, never a crash), junk headers and a bad limit.
        push({ kind: 'get:junk-headers', method, url: baseUrl + (baseUrl.includes('?') ? '&' : '?') + 'limit=-5', as: who, headers: { 'x-forwarded-for': "1.1.1.1, ' OR 1=1", 'accept-language': '💥'.repeat(100), 'content-type': 'application/json' }, payload: deepJson(10_000, 'object') });
      }
    }
  }
  return out;
}
