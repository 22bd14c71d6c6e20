import * as fs from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { errorCodes, isErrorCode } from '../../../core/errors.ts';
import { validateMessage } from '../../../core/validate.ts';
import { openApiDocument, renderOpenApiJson, sendRequestMaxBytes, type Json, type JsonObject } from './openapi.ts';

const docsFile = new URL('../../../docs/openapi.json', import.meta.url);
const brokerSource = fs.readFileSync(new URL('../broker.ts', import.meta.url), 'utf8');

const httpMethods = ['get', 'put', 'post', 'delete', 'patch', 'head', 'options'] as const;

function isObject(value: Json | undefined): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function obj(value: Json | undefined, what: string): JsonObject {
  if (!isObject(value)) throw new Error(`${what} is not an object`);
  return value;
}

const paths = obj(openApiDocument['paths'], 'paths');

/** Every operation of the document as [METHOD, path, operation]. */
function operations(): Array<[string, string, JsonObject]> {
  const out: Array<[string, string, JsonObject]> = [];
  for (const [path, item] of Object.entries(paths)) {
    for (const method of httpMethods) {
      const op = obj(item, path)[method];
      if (op !== undefined) out.push([method.toUpperCase(), path, obj(op, `${method} ${path}`)]);
    }
  }
  return out;
}

/** `r.on('METHOD', '/path', (req, res, p) => this.#handler(...))` in `#routes()`, as written. */
function brokerRoutes(): Array<{ method: string; path: string; handler: string | undefined }> {
  const body = /#routes\(\): void \{([\s\S]*?)\n {2}\}/.exec(brokerSource)?.[1];
  if (body === undefined) throw new Error('could not find #routes() in broker.ts');
  const routes = [];
  for (const line of body.split('\n')) {
    const m = /r\.on\('([A-Z]+)',\s*'([^']+)'/.exec(line);
    if (m === null) continue;
    routes.push({ method: m[1] as string, path: m[2] as string, handler: /this\.#(\w+)\(req/.exec(line)?.[1] });
  }
  return routes;
}

const toOpenApiPath = (path: string): string => path.replace(/:(\w+)/g, '{$1}');

/** Visits every value of the document with its JSON pointer. */
function walk(value: Json, pointer: string, visit: (value: Json, pointer: string) => void): void {
  visit(value, pointer);
  if (Array.isArray(value)) value.forEach((v, i) => walk(v, `${pointer}/${i}`, visit));
  else if (isObject(value)) {
    for (const [k, v] of Object.entries(value)) walk(v, `${pointer}/${k.replaceAll('~', '~0').replaceAll('/', '~1')}`, visit);
  }
}

function resolvePointer(pointer: string): Json | undefined {
  let node: Json | undefined = openApiDocument;
  for (const raw of pointer.replace(/^#\//, '').split('/')) {
    const key = raw.replaceAll('~1', '/').replaceAll('~0', '~');
    node = Array.isArray(node) ? node[Number(key)] : isObject(node) ? node[key] : undefined;
    if (node === undefined) return undefined;
  }
  return node;
}

/** The error codes an error response narrows `error.code` to. */
function responseCodes(response: JsonObject): string[] {
  const schema = obj(obj(obj(response['content'], 'content')['application/json'], 'json')['schema'], 'schema');
  const allOf = schema['allOf'] as Json[];
  const narrowed = obj(allOf[1], 'allOf[1]');
  const code = obj(obj(obj(obj(narrowed['properties'], 'p')['error'], 'e')['properties'], 'p')['code'], 'code');
  return code['enum'] as string[];
}

function property(schemaName: string, name: string): JsonObject {
  const schemas = obj(obj(openApiDocument['components'], 'components')['schemas'], 'schemas');
  return obj(obj(obj(schemas[schemaName], schemaName)['properties'], 'properties')[name], name);
}

describe('docs/openapi.json', () => {
  it('is the served document', () => {
    const onDisk = fs.existsSync(docsFile) ? fs.readFileSync(docsFile, 'utf8') : '';
    expect(onDisk === renderOpenApiJson(), 'docs/openapi.json is out of date: run `npx tsx bin/write-openapi.ts`').toBe(true);
  });
});

describe('openApiDocument', () => {
  it('is OpenAPI 3.1 and survives JSON unchanged', () => {
    expect(openApiDocument['openapi']).toBe('3.1.0');
    expect(JSON.parse(JSON.stringify(openApiDocument))).toEqual(openApiDocument);
  });

  it('describes every route of broker.ts, and no other', () => {
    const routes = brokerRoutes();
    expect(routes.length).toBeGreaterThan(10);
    const registered = routes.map((r) => `${r.method} ${toOpenApiPath(r.path)}`).sort();
    // /healthz is answered in #handle before routing, so that it works while the broker stops.
    expect(brokerSource).toContain("req.method === 'GET' && url.pathname === '/healthz'");
    const expected = [...registered, 'GET /healthz'].sort();
    const documented = operations().map(([method, path]) => `${method} ${path}`).sort();
    expect(documented).toEqual(expected);
  });

  it('declares every path parameter of every operation, and none other', () => {
    for (const [method, path, op] of operations()) {
      const item = obj(paths[path], path);
      const declared = [...((item['parameters'] as Json[] | undefined) ?? []), ...((op['parameters'] as Json[] | undefined) ?? [])]
        .map((p) => {
          const param = obj(isObject(p) && typeof p['$ref'] === 'string' ? resolvePointer(p['$ref']) : p, 'parameter');
          return param;
        })
        .filter((p) => p['in'] === 'path')
        .map((p) => p['name'])
        .sort();
      const inPath = [...path.matchAll(/\{(\w+)\}/g)].map((m) => m[1]).sort();
      expect(declared, `${method} ${path}`).toEqual(inPath);
    }
  });

  it('has a unique operationId on every operation', () => {
    const ids = operations().map(([, , op]) => op['operationId']);
    expect(ids.every((id) => typeof id === 'string' && id.length > 0)).toBe(true);
    expect(new Set(ids).size).toBe(ids.length);
  });

  it('resolves every $ref', () => {
    const refs: string[] = [];
    walk(openApiDocument, '#', (value, pointer) => {
      if (isObject(value) && '$ref' in value) {
        expect(typeof value['$ref'], pointer).toBe('string');
        refs.push(value['$ref'] as string);
      }
    });
    expect(refs.length).toBeGreaterThan(50);
    const unresolved = refs.filter((r) => !r.startsWith('#/') || resolvePointer(r) === undefined);
    expect(unresolved).toEqual([]);
  });

  it('lists only error codes of core/errors.ts, each under its own HTTP status', () => {
    let seen = 0;
    for (const [method, path, op] of operations()) {
      for (const [status, response] of Object.entries(obj(op['responses'], 'responses'))) {
        if (Number(status) < 400) continue;
        const codes = responseCodes(obj(response, status));
        expect(codes.length, `${method} ${path} ${status}`).toBeGreaterThan(0);
        for (const code of codes) {
          expect(isErrorCode(code), `${method} ${path} ${status}: ${code}`).toBe(true);
          if (!isErrorCode(code)) continue;
          expect(errorCodes[code].http, `${method} ${path}: ${code}`).toBe(Number(status));
          expect(String(obj(response, status)['description']), `${method} ${path}: ${code}`).toContain(`\`${code}\``);
          seen++;
        }
      }
    }
    expect(seen).toBeGreaterThan(100);
  });

  it('enumerates exactly the error codes of core/errors.ts', () => {
    const schemas = obj(obj(openApiDocument['components'], 'components')['schemas'], 'schemas');
    expect(obj(schemas['ErrorCode'], 'ErrorCode')['enum']).toEqual(Object.keys(errorCodes));
  });

  it('asks for an API key everywhere but /healthz and /v1/openapi.json, and says what a missing one answers', () => {
    expect(openApiDocument['security']).toEqual([{ bearerAuth: [] }]);
    for (const [method, path, op] of operations()) {
      const open = `${method} ${path}` === 'GET /healthz' || `${method} ${path}` === 'GET /v1/openapi.json';
      if (open) {
        expect(op['security'], `${method} ${path}`).toEqual([]);
        continue;
      }
      expect(op['security'], `${method} ${path}`).toBeUndefined();
      const unauthorized = obj(obj(op['responses'], 'responses')['401'], `${method} ${path} 401`);
      expect(responseCodes(unauthorized)).toContain('UNAUTHORIZED');
    }
    // The one route that authenticates nobody.
    expect(brokerSource).toMatch(/r\.on\('GET', '\/v1\/openapi\.json', async \(_req, res\) => sendJson\(res, 200, openApiDocument\)\);/);
  });

  it('gives the body limit each handler reads with', () => {
    const constants: Record<string, number> = { maxRequestBytes: sendRequestMaxBytes };
    expect(brokerSource).toContain('const maxRequestBytes = Math.ceil((limits.sendBatchMaxBytes * 4) / 3) + 4 * 1024 * 1024;');
    let checked = 0;
    for (const route of brokerRoutes()) {
      if (route.handler === undefined) continue;
      const handler = new RegExp(`async #${route.handler}\\([\\s\\S]*?\\n {2}\\}\\n`).exec(brokerSource)?.[0];
      expect(handler, route.handler).toBeDefined();
      const read = /read(?:Body|Json)\(req, ([^)]+)\)/.exec(handler as string)?.[1];
      const op = obj(obj(paths[toOpenApiPath(route.path)], route.path)[route.method.toLowerCase()], route.handler);
      if (read === undefined) {
        expect(op['requestBody'], `${route.handler} reads no body`).toBeUndefined();
        continue;
      }
      const limit = /^[\d\s*]+$/.test(read) ? read.split('*').reduce((p, n) => p * Number(n.trim()), 1) : constants[read.trim()];
      expect(limit, `${route.handler}: ${read}`).toBeTypeOf('number');
      expect(obj(op['requestBody'], `${route.handler} requestBody`)['x-max-bytes'], route.handler).toBe(limit);
      checked++;
    }
    expect(checked).toBe(16);
  });
});

describe('MessageInput patterns agree with validation', () => {
  // The characters where the rules have edges: controls, '|', blanks, line separators, astral.
  const unit = fc.constantFrom('a', 'Z', '0', '-', ' ', '\t', '\n', '\u0000', '\u001f', '\u007f', '\u0085', '\u009f', '\u00a0', '|', '\u2028', 'é', '😀', '\ufeff');
  const text = fc.string({ unit, maxLength: 8 });
  const accepts = (message: Record<string, unknown>): boolean => {
    try {
      validateMessage({ topic: 't', body: new Uint8Array([1]), ...message }, { nowMs: 0 });
      return true;
    } catch {
      return false;
    }
  };
  const matches = (pattern: Json | undefined, s: string): boolean => new RegExp(pattern as string, 'u').test(s);

  it('tag', () => {
    const pattern = property('MessageInput', 'tag')['pattern'];
    fc.assert(fc.property(text, (s) => matches(pattern, s) === accepts({ tag: s })));
  });

  it('keys', () => {
    const pattern = obj(property('MessageInput', 'keys')['items'], 'items')['pattern'];
    fc.assert(fc.property(text, (s) => matches(pattern, s) === accepts({ keys: [s] })));
  });

  it('messageGroup', () => {
    const pattern = property('MessageInput', 'messageGroup')['pattern'];
    fc.assert(fc.property(text, (s) => matches(pattern, s) === accepts({ messageGroup: s })));
  });

  it('property names and values', () => {
    const properties = property('MessageInput', 'properties');
    const namePattern = obj(properties['propertyNames'], 'propertyNames')['pattern'];
    const valuePattern = obj(properties['additionalProperties'], 'additionalProperties')['pattern'];
    fc.assert(fc.property(text, (s) => matches(namePattern, `x${s}`) === accepts({ properties: { [`x${s}`]: 'v' } })));
    fc.assert(fc.property(text, (s) => matches(valuePattern, s) === accepts({ properties: { name: s } })));
  });

  it('base64 bodies', () => {
    // broker.ts `decodeBodies`: a multiple of 4 characters of the alphabet, then up to two '='.
    const brokerAccepts = (s: string): boolean => s.length % 4 === 0 && /^[A-Za-z0-9+/]*={0,2}$/.test(s);
    const then = obj(findBase64Then()['then'], 'then');
    const pattern = obj(obj(then['properties'], 'then.properties')['body'], 'then.properties.body')['pattern'];
    const b64 = fc.string({ unit: fc.constantFrom('A', 'z', '0', '+', '/', '=', '-', ' '), maxLength: 12 });
    fc.assert(fc.property(b64, (s) => matches(pattern, s) === brokerAccepts(s)));
    fc.assert(fc.property(fc.uint8Array({ maxLength: 40 }), (bytes) => matches(pattern, Buffer.from(bytes).toString('base64'))));
  });
});

/** The `then` branch of MessageInput that applies to base64 bodies. */
function findBase64Then(): JsonObject {
  const schemas = obj(obj(openApiDocument['components'], 'components')['schemas'], 'schemas');
  const allOf = obj(schemas['MessageInput'], 'MessageInput')['allOf'] as Json[];
  const branch = allOf.map((s) => obj(s, 'allOf')).find((s) => s['then'] !== undefined);
  return obj(branch, 'base64 branch');
}
