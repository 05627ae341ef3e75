// Pure pieces of the proxy, no sockets: JSON parameter and result conversions, command tags, endpoint naming,
// the rate limiter, SCRAM both ways, and the wire reader on hostile input.
import { describe, expect, it } from 'vitest';
import { parseConnectionString } from '../proxy/http/conn-string.ts';
import { endpointFromAddress, endpointFromHost, endpointFromOptions, normalizeEndpointId, parsePasswordHack, splitOptions } from '../proxy/endpoint-id.ts';
import { ProxyError } from '../proxy/errors.ts';
import { paramToText, parseArray, textToJson } from '../proxy/http/json-values.ts';
import { MessageReader, ProtocolError } from '../lib/pg-wire/index.ts';
import { EndpointRateLimiter } from '../proxy/compute/rate-limit.ts';
import { ScramClient, ScramServer, makeVerifier, parseVerifier } from '../proxy/auth/scram.ts';
import { parseCommandTag, startTransactionSql } from '../proxy/http/sql-executor.ts';

describe('JSON values', () => {
  it('parameters: Neon json.rs rules', () => {
    expect(paramToText(null)).toBeNull();
    expect(paramToText('x')).toBe('x');
    expect(paramToText(true)).toBe('true');
    expect(paramToText(1.5)).toBe('1.5');
    expect(paramToText({ a: [1] })).toBe('{"a":[1]}');
    expect(paramToText([1, null, 'a"b\\c', [true], { k: 'v' }])).toBe('{1,NULL,"a\\"b\\\\c",{true},"{\\"k\\":\\"v\\"}"}');
  });

  it('results without raw text: numbers, bools, json, arrays by element type', () => {
    expect(textToJson('t', 16)).toBe(true);
    expect(textToJson('-32768', 21)).toBe(-32768);
    expect(textToJson('9007199254740993', 20)).toBe('9007199254740993');
    expect(textToJson('-Infinity', 701)).toBe('-Infinity');
    expect(textToJson('1e+300', 701)).toBe(1e300);
    expect(textToJson('{"a": [1, 2]}', 3802)).toEqual({ a: [1, 2] });
    expect(textToJson('{{1,2},{3,NULL}}', 1007)).toEqual([[1, 2], [3, null]]);
    expect(textToJson('[2:3]={t,f}', 1000)).toEqual([true, false]);
    expect(textToJson('{"a,b","c\\"d",NULL,"NULL"}', 1009)).toEqual(['a,b', 'c"d', null, 'NULL']);
    expect(textToJson('{"{\\"x\\": 1}"}', 3807)).toEqual([{ x: 1 }]);
    expect(textToJson('{}', 1007)).toEqual([]);
    expect(() => parseArray('{1,2', 23)).toThrow();
  });
});

describe('command tags and transactions', () => {
  it('parses like node-postgres', () => {
    expect(parseCommandTag('INSERT 0 3')).toEqual({ command: 'INSERT', rowCount: 3 });
    expect(parseCommandTag('UPDATE 2')).toEqual({ command: 'UPDATE', rowCount: 2 });
    expect(parseCommandTag('SELECT 0')).toEqual({ command: 'SELECT', rowCount: 0 });
    expect(parseCommandTag('CREATE TABLE')).toEqual({ command: 'CREATE', rowCount: null });
    expect(parseCommandTag('DROP TABLE')).toEqual({ command: 'DROP', rowCount: null });
    expect(parseCommandTag('')).toEqual({ command: '', rowCount: null });
  });

  it('builds START TRANSACTION like Neon', () => {
    expect(startTransactionSql({ isolationLevel: 'Serializable', readOnly: true, deferrable: true })).toBe('START TRANSACTION ISOLATION LEVEL SERIALIZABLE, READ ONLY, DEFERRABLE');
    expect(startTransactionSql({ isolationLevel: null, readOnly: false, deferrable: false })).toBe('START TRANSACTION');
  });
});

describe('endpoint naming', () => {
  it('normalises and finds endpoints', () => {
    expect(normalizeEndpointId('Ep-Cool-Name-123-pooler')).toBe('ep-cool-name-123');
    expect(splitOptions('endpoint=ep-a  -c x=a\\ b')).toEqual(['endpoint=ep-a', '-c', 'x=a b']);
    expect(endpointFromOptions('endpoint=ep-a -c search_path=x neon_flag=1')).toEqual({ endpoint: 'ep-a', forward: '-c search_path=x' });
    expect(endpointFromOptions('endpoint=ep-a project=ep-b').endpoint).toBeNull();
    expect(endpointFromHost('ep-a.lakebase.local:443', ['lakebase.local'])).toBe('ep-a');
    expect(endpointFromHost('api.lakebase.local', ['lakebase.local'])).toBeNull();
    expect(endpointFromHost('ep-a.other.domain', ['lakebase.local'])).toBeNull();
    expect(endpointFromAddress('ep-a.lakebase.local:5432')).toBe('ep-a');
    expect(endpointFromAddress('127.0.0.1:5432')).toBeNull();
    expect(parsePasswordHack('endpoint=ep-a;pa;ss')).toEqual({ endpoint: 'ep-a', password: 'pa;ss' });
    expect(parsePasswordHack('project=ep-a$pass')).toEqual({ endpoint: 'ep-a', password: 'pass' });
    expect(parsePasswordHack('plain')).toBeNull();
  });

  it('Neon-Connection-String parsing', () => {
    expect(parseConnectionString('postgresql://U%40x:p%2Fw@Ep-ABC-pooler.Example.COM:5432/my%20db?options=x', undefined)).toEqual({
      user: 'U@x', password: 'p/w', database: 'my db', endpointId: 'ep-abc',
    });
    expect(() => parseConnectionString('postgresql://u:p@h.x/db', 'Bearer x')).toThrow(ProxyError);
    expect(() => parseConnectionString('postgresql://u:p@[::1]/db', undefined)).toThrow('missing hostname');
    // Beyond Neon: the endpoint may come from options, so an IP host works for a local lakebase.
    expect(parseConnectionString('postgresql://u:p@127.0.0.1:5432/db?options=endpoint%3Dep-quiet-lake-123', undefined).endpointId).toBe('ep-quiet-lake-123');
    expect(parseConnectionString('postgresql://u:p@127.0.0.1/db?options=endpoint%3Dep-b-pooler', undefined).endpointId).toBe('ep-b');
    expect(parseConnectionString('postgresql://u:p@ep-a.x.y/db?options=endpoint%3Dep-b', undefined).endpointId).toBe('ep-a');
    expect(() => parseConnectionString('postgresql://ü:p@h.x/db', undefined)).toThrow('invalid header: neon-connection-string');
  });
});

describe('rate limiter', () => {
  it('enforces every window and recovers', () => {
    const rl = new EndpointRateLimiter([{ rps: 2, windowMs: 1000 }, { rps: 1, windowMs: 10_000 }]);
    const t = 1_000_000;
    expect([rl.tryAcquire('a', t), rl.tryAcquire('a', t), rl.tryAcquire('a', t)]).toEqual([true, true, false]);
    expect(rl.tryAcquire('b', t)).toBe(true); // per endpoint
    expect(rl.tryAcquire('a', t + 2500)).toBe(true);
    const many = Array.from({ length: 20 }, (_, i) => rl.tryAcquire('a', t + 3000 + i * 600)).filter(Boolean).length;
    // 20 attempts over 12 s at 1.7/s: the 10 s window (1/s on average, sliding estimate) refuses about half
    expect(many).toBeGreaterThanOrEqual(8);
    expect(many).toBeLessThanOrEqual(13);
  });
});

describe('SCRAM', () => {
  it('client and server agree; a wrong password fails', async () => {
    const v = parseVerifier(await makeVerifier('secret'))!;
    for (const [pw, ok] of [['secret', true], ['Secret', false]] as const) {
      const server = new ScramServer(v);
      const client = new ScramClient(pw);
      const serverFirst = server.clientFirst(client.first());
      const serverFinal = server.clientFinal(await client.final(serverFirst));
      expect(serverFinal !== null).toBe(ok);
      if (serverFinal) expect(client.verifyServerFinal(serverFinal)).toBe(true);
    }
    expect(() => new ScramServer(v).clientFirst('p=tls-server-end-point,,n=,r=abc')).toThrow();
  });
});

describe('wire reader', () => {
  it('rejects hostile lengths instead of buffering forever', () => {
    const r = new MessageReader();
    r.push(Buffer.from([0x51, 0x7f, 0xff, 0xff, 0xff]));
    expect(() => r.next(1000)).toThrow(ProtocolError);
    const s = new MessageReader();
    s.push(Buffer.from([0, 0, 0, 2, 0, 0]));
    expect(() => s.nextStartup(10_000)).toThrow(ProtocolError);
  });
});
