import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { SkyrocketError } from './errors.ts';
import {
  compileSqlFilter,
  parseSqlFilter,
  sqlFilterLimits,
  sqlFilterProperties,
  type SqlCondition,
  type SqlFilterProperties,
  type SqlOperand,
} from './sql-filter.ts';

const matches = (expression: string, properties: SqlFilterProperties = {}): boolean =>
  compileSqlFilter(expression).matches(properties);

function errorOf(run: () => unknown): SkyrocketError {
  try {
    run();
  } catch (error) {
    if (error instanceof SkyrocketError) return error;
    throw error;
  }
  throw new Error('expected a SkyrocketError, but nothing was thrown');
}

/** Each row: expression, properties, whether the message matches. */
type Row = [string, Record<string, string>, boolean];

function checkRows(rows: Row[]): void {
  for (const [expression, properties, expected] of rows) {
    expect({ expression, properties, matches: matches(expression, properties) }).toEqual({
      expression,
      properties,
      matches: expected,
    });
  }
}

describe('compileSqlFilter: operators', () => {
  it('= and <> compare strings exactly', () => {
    checkRows([
      ["region = 'eu'", { region: 'eu' }, true],
      ["region = 'eu'", { region: 'EU' }, false],
      ["region = 'eu'", { region: 'eu ' }, false],
      ["region <> 'eu'", { region: 'us' }, true],
      ["region <> 'eu'", { region: 'eu' }, false],
      ["'eu' = region", { region: 'eu' }, true],
      ["a = b", { a: 'x', b: 'x' }, true],
      ["a = b", { a: 'x', b: 'y' }, false],
      ["a <> b", { a: 'x', b: 'y' }, true],
      ["a = ''", { a: '' }, true],
    ]);
  });

  it('= and <> against a number read the property as that number', () => {
    checkRows([
      ['n = 5', { n: '5' }, true],
      ['n = 5', { n: '+5' }, true],
      ['n = 5', { n: '05' }, true],
      ['n = 5', { n: '6' }, false],
      ['n <> 5', { n: '6' }, true],
      ['n = 5L', { n: '5' }, true],
      ['n = 5.0', { n: '5' }, true],
      ['n = 5.0', { n: ' 5 ' }, true],
      ['n = 5.0', { n: '5e0' }, true],
      ['n = 5.0', { n: '5d' }, true],
      ['5 = n', { n: '5' }, true],
      ['n = -3', { n: '-3' }, true],
      ['n = - -3', { n: '3' }, true],
      ['n = +3', { n: '3' }, true],
    ]);
  });

  it('< <= > >= order numbers', () => {
    checkRows([
      ['n > 5', { n: '6' }, true],
      ['n > 5', { n: '5' }, false],
      ['n >= 5', { n: '5' }, true],
      ['n < 5', { n: '-10' }, true],
      ['n <= 5', { n: '5' }, true],
      ['n <= 5', { n: '6' }, false],
      ['5 < n', { n: '6' }, true],
      ['5 > n', { n: '6' }, false],
      ['n > 2.5', { n: '3' }, true],
      ['n > 2.5', { n: '2.5' }, false],
      ['n > 1e3', { n: '1001' }, true],
      ['n > .5', { n: '0.75' }, true],
      ['n > 5.', { n: '5.5' }, true],
      ['n < 1.5E+2', { n: '149.9' }, true],
      // Two properties are both read as doubles.
      ['a < b', { a: '9', b: '10' }, true],
      ['a < b', { a: '9.5', b: ' 10 ' }, true],
      ['a > b', { a: '9', b: '10' }, false],
      ['1 < 2.5', {}, true],
      ['3 <= 2', {}, false],
    ]);
  });

  it('compares longs beyond 2^53 exactly, and longs with doubles as doubles', () => {
    checkRows([
      ['n = 9007199254740993', { n: '9007199254740993' }, true],
      ['n = 9007199254740993', { n: '9007199254740992' }, false],
      ['n > 9007199254740992', { n: '9007199254740993' }, true],
      ['n = 9223372036854775807', { n: '9223372036854775807' }, true],
      ['n < -9223372036854775807', { n: '-9223372036854775808' }, true],
      ['n = 1700000000000', { n: '1700000000000' }, true],
      // RocketMQ would read a 13-digit property as an int against a small literal and fail; we do not.
      ['n > 0', { n: '1700000000000' }, true],
      // Against a double, a long property is a double: 2^53 + 1 rounds to 2^53.
      ['n = 9007199254740992.0', { n: '9007199254740993' }, true],
    ]);
  });

  it('orders doubles as Double.compareTo: NaN above all, -0.0 below 0.0', () => {
    checkRows([
      ['n > 1.0', { n: 'NaN' }, true],
      ['n > 1.0', { n: 'Infinity' }, true],
      ['n < 1.0', { n: '-Infinity' }, true],
      ['n = 0.0', { n: '-0' }, false],
      ['n < 0.0', { n: '-0.0' }, true],
      ['n = -0.0', { n: '-0' }, true],
      ['a = b', { a: 'NaN', b: 'NaN' }, true],
      ['a >= b', { a: 'NaN', b: 'NaN' }, true],
    ]);
  });

  it('= and <> against TRUE and FALSE read "true" in any case as true', () => {
    checkRows([
      ['flag = TRUE', { flag: 'true' }, true],
      ['flag = TRUE', { flag: 'TRUE' }, true],
      ['flag = TRUE', { flag: 'yes' }, false],
      ['flag = FALSE', { flag: 'yes' }, true],
      ['flag <> FALSE', { flag: 'True' }, true],
      ['TRUE = flag', { flag: 'true' }, true],
      ['TRUE = TRUE', {}, true],
      ['TRUE = FALSE', {}, false],
      ["'TRUE' = TRUE", {}, true],
      // A boolean never equals a number.
      ['5 = TRUE', {}, false],
      ['5 <> TRUE', {}, true],
    ]);
  });

  it('BETWEEN and NOT BETWEEN include both bounds', () => {
    checkRows([
      ['n BETWEEN 1 AND 10', { n: '1' }, true],
      ['n BETWEEN 1 AND 10', { n: '10' }, true],
      ['n BETWEEN 1 AND 10', { n: '11' }, false],
      ['n BETWEEN 1 AND 10', { n: '0' }, false],
      ['n BETWEEN -1.5 AND 1.5', { n: '-1.5' }, true],
      ['n NOT BETWEEN 1 AND 10', { n: '11' }, true],
      ['n NOT BETWEEN 1 AND 10', { n: '5' }, false],
      ['n BETWEEN lo AND hi', { n: '5', lo: '1', hi: '9' }, true],
      ['n BETWEEN 5 AND 5', { n: '5' }, true],
      ['n NOT BETWEEN 10 AND 1', { n: '5' }, true],
      ['3 BETWEEN 1 AND 5', {}, true],
    ]);
  });

  it('IN and NOT IN compare strings exactly', () => {
    checkRows([
      ["TAGS IN ('a', 'b')", { TAGS: 'b' }, true],
      ["TAGS IN ('a', 'b')", { TAGS: 'c' }, false],
      ["TAGS IN ('a')", { TAGS: 'A' }, false],
      ["TAGS NOT IN ('a', 'b')", { TAGS: 'c' }, true],
      ["TAGS NOT IN ('a', 'b')", { TAGS: 'a' }, false],
      ["n IN ('1', '2', '3', '4', '5', '6')", { n: '6' }, true],
      ["n IN ('1')", { n: '01' }, false],
      ["s IN ('it''s')", { s: "it's" }, true],
    ]);
  });

  it('CONTAINS, STARTSWITH, ENDSWITH and their NOT forms', () => {
    checkRows([
      ["s CONTAINS 'ell'", { s: 'hello' }, true],
      ["s CONTAINS 'xyz'", { s: 'hello' }, false],
      ["s NOT CONTAINS 'xyz'", { s: 'hello' }, true],
      ["s NOT CONTAINS 'ell'", { s: 'hello' }, false],
      ["s STARTSWITH 'he'", { s: 'hello' }, true],
      ["s STARTSWITH 'lo'", { s: 'hello' }, false],
      ["s NOT STARTSWITH 'lo'", { s: 'hello' }, true],
      ["s ENDSWITH 'lo'", { s: 'hello' }, true],
      ["s ENDSWITH 'he'", { s: 'hello' }, false],
      ["s NOT ENDSWITH 'he'", { s: 'hello' }, true],
      ["s CONTAINS 'E'", { s: 'hello' }, false],
      // RocketMQ answers FALSE for an empty search, positive or negated.
      ["s CONTAINS ''", { s: 'hello' }, false],
      ["s NOT CONTAINS ''", { s: 'hello' }, false],
      ["s NOT STARTSWITH ''", { s: 'hello' }, false],
      ["'hello' STARTSWITH 'he'", {}, true],
      ["5 CONTAINS '5'", {}, false],
    ]);
  });

  it('IS NULL and IS NOT NULL test presence; an empty string is present', () => {
    checkRows([
      ['a IS NULL', {}, true],
      ['a IS NULL', { a: '' }, false],
      ['a IS NOT NULL', { a: '' }, true],
      ['a IS NOT NULL', {}, false],
      ["'x' IS NULL", {}, false],
      ["'x' IS NOT NULL", {}, true],
    ]);
  });

  it('AND, OR, NOT, TRUE, FALSE and parentheses', () => {
    checkRows([
      ["a = '1' AND b = '2'", { a: '1', b: '2' }, true],
      ["a = '1' AND b = '2'", { a: '1', b: '3' }, false],
      ["a = '1' OR b = '2'", { a: '0', b: '2' }, true],
      ["a = '1' OR b = '2'", { a: '0', b: '0' }, false],
      // AND binds tighter than OR.
      ["a = '1' OR a = '2' AND b = '9'", { a: '1', b: '0' }, true],
      ["(a = '1' OR a = '2') AND b = '9'", { a: '1', b: '0' }, false],
      ["NOT (a = '1')", { a: '2' }, true],
      ["NOT (a = '1')", { a: '1' }, false],
      ["NOT NOT (a = '1')", { a: '1' }, true],
      ['TRUE', {}, true],
      ['FALSE', {}, false],
      ['NOT TRUE', {}, false],
      ['NOT FALSE', {}, true],
      ["TRUE AND a = '1'", { a: '1' }, true],
      ["FALSE OR a = '1'", { a: '1' }, true],
      ["((a = '1'))", { a: '1' }, true],
    ]);
  });
});

describe('compileSqlFilter: missing properties, UNKNOWN and errors', () => {
  it('a comparison with a missing property is UNKNOWN, which never matches, even negated', () => {
    checkRows([
      ["a = 'x'", {}, false],
      ["a <> 'x'", {}, false],
      ["NOT (a = 'x')", {}, false],
      ["NOT (a <> 'x')", {}, false],
      ['a > 5', {}, false],
      ['NOT (a > 5)', {}, false],
      ['a BETWEEN 1 AND 5', {}, false],
      ['a NOT BETWEEN 1 AND 5', {}, false],
      ['NOT (a BETWEEN 1 AND 5)', {}, false],
      ["a IN ('x')", {}, false],
      ["a NOT IN ('x')", {}, false],
      ["NOT (a IN ('x'))", {}, false],
      ['5 < a', {}, false],
      ['a = b', { b: 'x' }, false],
      ['a < b', { a: '1' }, false],
    ]);
  });

  it('keeps RocketMQ\'s = asymmetry: a missing property on the right of = is FALSE, not UNKNOWN', () => {
    checkRows([
      ["'x' = a", {}, false],
      ["'x' <> a", {}, true],
      ["NOT ('x' = a)", {}, true],
      ['5 <> a', {}, true],
      ['a = b', { a: 'x' }, false],
      ['a <> b', { a: 'x' }, true],
      ['a = b', {}, true],
    ]);
  });

  it('uses three-valued AND and OR: FALSE AND UNKNOWN is FALSE, TRUE OR UNKNOWN is TRUE', () => {
    checkRows([
      ["NOT (a = 'x' AND b = 'y')", { b: 'z' }, true],
      ["NOT (a = 'x' AND b = 'y')", { b: 'y' }, false],
      ["a = 'x' OR b = 'y'", { b: 'y' }, true],
      ["NOT (a = 'x' OR b = 'y')", { b: 'z' }, false],
      ["NOT (b = 'y' OR a = 'x')", { b: 'z' }, false],
    ]);
  });

  it('string operators are FALSE (not UNKNOWN) for a missing property', () => {
    checkRows([
      ["a CONTAINS 'x'", {}, false],
      ["a NOT CONTAINS 'x'", {}, false],
      ["NOT (a CONTAINS 'x')", {}, true],
      ["NOT (a NOT STARTSWITH 'x')", {}, true],
      ["NOT (a ENDSWITH 'x')", {}, true],
    ]);
  });

  it('a property that is not the number it is compared with ends the evaluation without a match', () => {
    checkRows([
      ['n > 5', { n: 'abc' }, false],
      ['NOT (n > 5)', { n: 'abc' }, false],
      ['n = 5', { n: '' }, false],
      ['n <> 5', { n: 'abc' }, false],
      ['NOT (n = 5)', { n: 'abc' }, false],
      // An integer literal needs an integer property; a decimal takes either.
      ['n = 5', { n: '5.0' }, false],
      ['n <> 5', { n: '5.0' }, false],
      ['n = 5', { n: ' 5' }, false],
      ['n = 5', { n: '9223372036854775808' }, false],
      ['n = 5.0', { n: '0x5' }, false],
      ['a < b', { a: '1', b: 'x' }, false],
      ['n BETWEEN 1 AND 10', { n: 'x' }, false],
      ['n NOT BETWEEN 1 AND 10', { n: 'x' }, false],
      // Left to right, stopping early, as RocketMQ's exception does.
      ["n > 5 OR s = 'x'", { n: 'abc', s: 'x' }, false],
      ["s = 'x' OR n > 5", { n: 'abc', s: 'x' }, true],
      ["s = 'y' AND n > 5", { n: 'abc', s: 'x' }, false],
      ["NOT (s = 'y' AND n > 5)", { n: 'abc', s: 'x' }, true],
      ["NOT (s = 'x' AND n > 5)", { n: 'abc', s: 'x' }, false],
      // Two literals that cannot be compared: the filter compiles and matches nothing.
      ["'abc' = 5", {}, false],
      ["'abc' <> 5", {}, false],
      ["'5' = 5", {}, true],
    ]);
  });

  it('reads only own properties: Object.prototype members are missing', () => {
    checkRows([
      ['constructor IS NULL', {}, true],
      ['toString IS NULL', {}, true],
      ['hasOwnProperty IS NULL', {}, true],
      ["constructor = 'x'", { constructor: 'x' }, true],
    ]);
    expect(matches('a IS NULL', { a: undefined })).toBe(true);
    expect(matches('a IS NULL', Object.create({ a: 'inherited' }) as SqlFilterProperties)).toBe(true);
    expect(matches("a = 'x'", Object.assign(Object.create(null), { a: 'x' }) as SqlFilterProperties)).toBe(true);
  });
});

describe('compileSqlFilter: lexical rules', () => {
  it('reads keywords in any case and property names exactly', () => {
    checkRows([
      ["a = '1' and b = '2' Or c Is not Null", { a: '1', b: '2' }, true],
      ["n between 1 And 3 AND s not in ('x') and s contains 'y' AND s startsWith 'y' and s EndsWith 'y'", { n: '2', s: 'y' }, true],
      ['not (true)', {}, false],
      ["Region = 'eu'", { region: 'eu' }, false],
      ["region = 'eu'", { region: 'eu' }, true],
      ["$a_1 = 'x' AND _b$ = 'y'", { $a_1: 'x', _b$: 'y' }, true],
    ]);
  });

  it('decodes doubled quotes and keeps every other character in strings', () => {
    checkRows([
      ["s = 'it''s'", { s: "it's" }, true],
      ["s = ''''", { s: "'" }, true],
      ["s = 'a\nb -- not a comment /* nor this */'", { s: 'a\nb -- not a comment /* nor this */' }, true],
      ["s = '日本 🚀'", { s: '日本 🚀' }, true],
    ]);
  });

  it('skips whitespace and comments', () => {
    checkRows([
      ["\t a\n=\r'x'\f", { a: 'x' }, true],
      ["a = 'x' -- trailing comment\n AND b = 'y'", { a: 'x', b: 'y' }, true],
      ["a = 'x' -- comment to the end", { a: 'x' }, true],
      ["a /* inline */ = /* ** */ 'x'", { a: 'x' }, true],
      ["a='x'AND b='y'", { a: 'x', b: 'y' }, true],
      ['n>=1AND n<=3', { n: '2' }, true],
    ]);
  });

  it('reads integers as longs (with an optional L) and decimals as doubles', () => {
    const literal = (text: string): SqlOperand => {
      const tree = parseSqlFilter(`a = ${text}`);
      if (tree.kind !== 'compare') throw new Error(`expected a comparison, got ${tree.kind}`);
      return tree.right;
    };
    expect(literal('0')).toEqual({ kind: 'long', value: 0n });
    expect(literal('42L')).toEqual({ kind: 'long', value: 42n });
    expect(literal('42l')).toEqual({ kind: 'long', value: 42n });
    expect(literal('-9223372036854775807')).toEqual({ kind: 'long', value: -9223372036854775807n });
    expect(literal('5.')).toEqual({ kind: 'double', value: 5 });
    expect(literal('.5')).toEqual({ kind: 'double', value: 0.5 });
    expect(literal('5e2')).toEqual({ kind: 'double', value: 500 });
    expect(literal('5E-2')).toEqual({ kind: 'double', value: 0.05 });
    expect(literal('007.5')).toEqual({ kind: 'double', value: 7.5 });
    expect(Object.is((literal('-0.0') as { value: number }).value, -0)).toBe(true);
  });
});

describe('compileSqlFilter: errors', () => {
  it('rejects malformed expressions with the position and what was expected', () => {
    const cases: [string, string][] = [
      ["(a = 'x' AND b = 'y'", "expected ')' at position 21, found end of expression"],
      ["(a = 'x' AND b = 'y' c", "expected ')' at position 22, found 'c'"],
      ['', 'expected a condition at position 1, found end of expression'],
      ['   ', 'expected a condition at position 4, found end of expression'],
      ['a = ', 'expected an operand at position 5, found end of expression'],
      ['a', 'expected an operator (=, <>, <, <=, >, >=, BETWEEN, IN, IS, CONTAINS, STARTSWITH, ENDSWITH) after a at position 2'],
      ['a AND b', 'at position 3, found AND'],
      ["a = 'x')", "expected end of expression (unbalanced ')') at position 8, found ')'"],
      ["a = 'x' b = 'y'", "expected AND, OR or end of expression at position 9, found 'b'"],
      ["a = 'x' AND", 'expected a condition at position 12, found end of expression'],
      ["a = 'x' OR OR b = 'y'", 'expected a condition at position 12, found OR'],
      ['NOT a = 1', "expected '(' after NOT, as in NOT (a = 1), at position 5, found 'a'"],
      ['NOT', "expected '(' after NOT, as in NOT (a = 1), at position 4, found end of expression"],
      ['a = NULL', 'expected an operand (NULL goes only in IS NULL) at position 5, found NULL'],
      ['a <> NULL', 'at position 6, found NULL'],
      ['a IS 5', 'expected NULL or NOT NULL at position 6'],
      ['a IS NOT 5', 'expected NULL at position 10'],
      ['a NOT LIKE 5', 'expected BETWEEN, IN, CONTAINS, STARTSWITH or ENDSWITH after NOT at position 7'],
      ['a BETWEEN 1 OR 5', 'expected AND at position 13, found OR'],
      ['a BETWEEN 10 AND 1', 'BETWEEN needs its lower bound first at position 11'],
      ['a BETWEEN 1.5 AND 1', 'BETWEEN needs its lower bound first at position 11'],
      ["a BETWEEN 'a' AND 'b'", 'BETWEEN compares numbers and properties, not a string at position 11'],
      ["a > 'x'", "'>' compares numbers and properties, not a string at position 5"],
      ['TRUE < a', "'<' compares numbers and properties, not a boolean at position 1"],
      ["TRUE = 'x'", 'cannot compare TRUE with a string at position 8'],
      ['FALSE <> 1', 'cannot compare FALSE with a number at position 10'],
      ["a IN ()", 'expected a string at position 7'],
      ['a IN (1)', "expected a string at position 7, found '1'"],
      ["a IN ('x' 'y')", "expected ',' or ')' at position 11, found a string"],
      ["a IN 'x'", "expected '(' at position 6"],
      ["'a' IN ('a')", 'IN needs a property on its left at position 1'],
      ['a CONTAINS b', 'expected a string at position 12'],
      ["a = 'it''s", "unterminated string: expected a closing ' at position 5"],
      ['a = 1 /* no end', "unterminated comment: expected '*/' at position 7"],
      ['a != 1', "unexpected character \"!\" (use '<>') at position 3"],
      ['a = "x"', 'unexpected character "\\"" (strings take single quotes) at position 5'],
      ['a == 1', 'at position 4, found \'=\''],
      ['a = 1 && b = 2', 'unexpected character "&" at position 7'],
      ['a.b = 1', 'unexpected character "." at position 2'],
      ['a = 007', 'an integer may not start with 0 at position 5'],
      ['a = 9223372036854775808', 'integer out of the signed 64-bit range at position 5'],
      ['a = 1e999', 'decimal out of the double range at position 5'],
      ['a = - b', 'expected a number after a sign at position 7'],
      ['a = 5.5L', "at position 8, found 'L'"],
      ['1a = 1', "at position 2, found 'a'"],
      ['a = 1 = 2', "expected AND, OR or end of expression at position 7, found '='"],
      ['(a = 1) = TRUE', "at position 9, found '='"],
      ['NOT TRUE = a', "at position 10, found '='"],
      ['in = 1', 'expected a condition at position 1, found IN'],
      ["日本 = 'x'", 'unexpected character "日" at position 1'],
      ["s = '🚀' AND", 'expected a condition at position 12, found end of expression'],
    ];
    for (const [expression, message] of cases) {
      const error = errorOf(() => compileSqlFilter(expression));
      expect({ expression, code: error.code, field: error.field, message: error.message }).toEqual({
        expression,
        code: 'INVALID_FILTER_EXPRESSION',
        field: 'filter.expression',
        message: expect.stringContaining(message),
      });
      expect(error.retriable).toBe(false);
    }
    expect(errorOf(() => compileSqlFilter('(', 'subscriptions[2].expression')).field).toBe('subscriptions[2].expression');
    expect(errorOf(() => compileSqlFilter(42 as unknown as string)).message).toMatch(/must be a string/);
  });

  it('bounds the length of the expression in UTF-8 bytes', () => {
    const max = sqlFilterLimits.expressionMaxBytes;
    const sized = (bytes: number, filler = 'x') => `s = '${filler.repeat((bytes - 6) / Buffer.byteLength(filler))}'`;
    expect(matches(sized(max), { s: 'x'.repeat(max - 6) })).toBe(true);
    expect(errorOf(() => compileSqlFilter(sized(max + 2))).message).toBe(
      `SQL filter expression is ${max + 2} bytes; at most ${max}`,
    );
    expect(() => compileSqlFilter(sized(max + 2, 'é'))).toThrow(/bytes; at most/);
  });

  it('bounds the nesting of parentheses and NOTs', () => {
    const max = sqlFilterLimits.nestingMaxDepth;
    const parens = (n: number) => `${'('.repeat(n)}a = 'x'${')'.repeat(n)}`;
    const nots = (n: number) => `${'NOT '.repeat(n)}TRUE`;
    expect(matches(parens(max), { a: 'x' })).toBe(true);
    expect(matches(nots(max))).toBe(max % 2 === 0);
    expect(errorOf(() => compileSqlFilter(parens(max + 1))).message).toBe(
      `parentheses and NOTs nest deeper than ${max} at position ${max + 1}`,
    );
    expect(() => compileSqlFilter(nots(max + 1))).toThrow(`nest deeper than ${max} at position ${4 * max + 1}`);
    expect(() => compileSqlFilter(`${'NOT ('.repeat(max / 2)}TRUE${')'.repeat(max / 2 - 1)}`)).toThrow(/expected '\)'/);
    expect(() => compileSqlFilter(`${'NOT ('.repeat(max / 2 + 1)}TRUE${')'.repeat(max / 2 + 1)}`)).toThrow(/nest deeper/);
    // Long AND/OR chains are not nesting: they stay flat.
    const chain = Array.from({ length: 400 }, (_, i) => `a='${i % 10}'`).join(' OR ');
    expect(matches(chain, { a: '7' })).toBe(true);
  });
});

describe('sqlFilterProperties', () => {
  it('exposes user properties, TAGS and KEYS joined by a space', () => {
    const properties = sqlFilterProperties({ tag: 'paid', keys: ['order-1', 'user-9'], properties: { region: 'eu' } });
    expect({ ...properties }).toEqual({ region: 'eu', TAGS: 'paid', KEYS: 'order-1 user-9' });
    expect(Object.getPrototypeOf(properties)).toBeNull();
    const filter = compileSqlFilter("TAGS IN ('paid', 'shipped') AND KEYS CONTAINS 'order-1' AND region = 'eu'");
    expect(filter.matches(properties)).toBe(true);
    expect(filter.expression).toBe("TAGS IN ('paid', 'shipped') AND KEYS CONTAINS 'order-1' AND region = 'eu'");
  });

  it('leaves TAGS and KEYS missing when the message has no tag or keys', () => {
    const properties = sqlFilterProperties({ keys: [], properties: {} });
    expect({ ...properties }).toEqual({});
    expect(matches('TAGS IS NULL AND KEYS IS NULL', properties)).toBe(true);
    expect({ ...sqlFilterProperties({}) }).toEqual({});
  });
});

// ---------------------------------------------------------------------------------------------
// Property tests: random trees, printed to text, compiled, and compared with a reference
// evaluator that walks the tree directly.
// ---------------------------------------------------------------------------------------------

const longMax = 2n ** 63n - 1n;
const keywordSet = new Set(['NOT', 'AND', 'OR', 'BETWEEN', 'IN', 'IS', 'NULL', 'TRUE', 'FALSE', 'CONTAINS', 'STARTSWITH', 'ENDSWITH']);

/** A few names, so that trees and messages share properties; and arbitrary identifiers. */
const namePool = ['a', 'b', 'n', 'TAGS', 'KEYS', '$x', '_y', 'Region'];
const poolName = fc.constantFrom(...namePool);
const anyName = fc
  .stringMatching(/^[A-Za-z_$][A-Za-z0-9_$]{0,8}$/)
  .filter((name) => !keywordSet.has(name.toUpperCase()));

/** Values chosen to sit on the edges of RocketMQ's conversions. */
const valuePool = [
  '', '0', '5', '-5', '+5', '05', '5.0', '5.5', ' 5 ', '1e3', '1E3', '5d', '5f', 'NaN', '-NaN', 'Infinity',
  '-Infinity', '-0', '-0.0', '.5', '5.', '0x10', '9223372036854775807', '9223372036854775808',
  '-9223372036854775808', '123456789012345678', 'true', 'TRUE', 'false', 'abc', "it's", 'a b', 'ell', 'he', 'lo',
];
const stringValue = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom(...valuePool) },
  fc.string({ maxLength: 6 }),
  fc.string({ unit: 'binary', maxLength: 4 }),
);

/** Literals mostly drawn from the values above, so that comparisons land on their edges. */
const longLiteral = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom(0n, 5n, -5n, 1000n, 16n, longMax, -longMax, 9007199254740993n, 123456789012345678n) },
  fc.bigInt({ min: -20n, max: 20n }),
  fc.bigInt({ min: -longMax, max: longMax }),
);
const doubleLiteral = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom(0, -0, 0.5, -0.5, 5, -5, 5.5, 1000, 16, 1e300, 5e-324, 9007199254740992) },
  fc.double({ noNaN: true, noDefaultInfinity: true }),
);

function operandArbitrary(name: fc.Arbitrary<string>) {
  const property = name.map((n): SqlOperand => ({ kind: 'property', name: n }));
  const long = longLiteral.map((value): SqlOperand => ({ kind: 'long', value }));
  const double = doubleLiteral.map((value): SqlOperand => ({ kind: 'double', value }));
  const string = stringValue.map((value): SqlOperand => ({ kind: 'string', value }));
  const boolean = fc.boolean().map((value): SqlOperand => ({ kind: 'boolean', value }));
  return {
    any: fc.oneof({ weight: 4, arbitrary: property }, long, double, string, boolean),
    numeric: fc.oneof({ weight: 3, arbitrary: property }, long, double),
  };
}

function conditionArbitrary(name: fc.Arbitrary<string>): fc.Arbitrary<SqlCondition> {
  const operand = operandArbitrary(name);
  const isLiteral = (o: SqlOperand) => o.kind !== 'property';
  const equality = fc
    .record({ kind: fc.constant('compare' as const), operator: fc.constantFrom('=' as const, '<>' as const), left: operand.any, right: operand.any })
    .filter((c) => !(c.left.kind === 'boolean' && isLiteral(c.right) && c.right.kind !== 'boolean'));
  const ordering = fc.record({
    kind: fc.constant('compare' as const),
    operator: fc.constantFrom('<' as const, '<=' as const, '>' as const, '>=' as const),
    left: operand.numeric,
    right: operand.numeric,
  });
  const between = fc
    .record({ kind: fc.constant('between' as const), negated: fc.boolean(), value: operand.numeric, low: operand.numeric, high: operand.numeric })
    .filter((c) => c.negated || !isLiteral(c.low) || !isLiteral(c.high) || compareNumbers(literalValue(c.low), literalValue(c.high)) <= 0);
  const inList = fc.record({
    kind: fc.constant('in' as const),
    negated: fc.boolean(),
    property: name,
    values: fc.array(stringValue, { minLength: 1, maxLength: 4 }),
  });
  const text = fc.record({
    kind: fc.constant('text' as const),
    operator: fc.constantFrom('CONTAINS' as const, 'STARTSWITH' as const, 'ENDSWITH' as const),
    negated: fc.boolean(),
    operand: operand.any,
    search: stringValue,
  });
  const isNull = fc.record({ kind: fc.constant('isNull' as const), negated: fc.boolean(), operand: operand.any });
  const constant = fc.record({ kind: fc.constant('constant' as const), value: fc.boolean() });
  const leaf: fc.Arbitrary<SqlCondition> = fc.oneof(
    { weight: 3, arbitrary: equality },
    { weight: 2, arbitrary: ordering },
    between,
    inList,
    text,
    isNull,
    constant,
  );
  return fc.letrec<{ condition: SqlCondition }>((tie) => ({
    condition: fc.oneof(
      { maxDepth: 4, depthSize: 'small' },
      { weight: 3, arbitrary: leaf },
      fc.record({ kind: fc.constant('and' as const), operands: fc.array(tie('condition'), { minLength: 2, maxLength: 4 }) }),
      fc.record({ kind: fc.constant('or' as const), operands: fc.array(tie('condition'), { minLength: 2, maxLength: 4 }) }),
      fc.record({ kind: fc.constant('not' as const), operand: tie('condition') }),
    ),
  })).condition;
}

// --- the printer ------------------------------------------------------------------------------

interface Style {
  keywordCase: 'upper' | 'lower' | 'mixed';
  gap: string;
  longSuffix: boolean;
}

const styleArbitrary: fc.Arbitrary<Style> = fc.record({
  keywordCase: fc.constantFrom('upper' as const, 'lower' as const, 'mixed' as const),
  gap: fc.constantFrom(' ', '  ', '\n', '\t', ' /* gap */ ', ' -- gap\n', '\r\n'),
  longSuffix: fc.boolean(),
});

function print(condition: SqlCondition, style: Style): string {
  const k = (keyword: string) =>
    style.keywordCase === 'upper'
      ? keyword
      : style.keywordCase === 'lower'
        ? keyword.toLowerCase()
        : [...keyword].map((c, i) => (i % 2 === 0 ? c.toLowerCase() : c)).join('');
  const join = (...parts: string[]) => parts.join(style.gap);
  const quote = (s: string) => `'${s.replaceAll("'", "''")}'`;
  const operand = (o: SqlOperand): string => {
    switch (o.kind) {
      case 'property':
        return o.name;
      case 'string':
        return quote(o.value);
      case 'long':
        return (o.value < 0n ? `-${-o.value}` : `${o.value}`) + (style.longSuffix ? 'L' : '');
      case 'double': {
        let text = String(Math.abs(o.value));
        if (!/[.e]/.test(text)) text += '.0';
        return (o.value < 0 || Object.is(o.value, -0) ? '-' : '') + text;
      }
      case 'boolean':
        return k(o.value ? 'TRUE' : 'FALSE');
    }
  };
  const group = (c: SqlCondition) => join('(', print(c, style), ')');
  const not = (negated: boolean) => (negated ? [k('NOT')] : []);
  switch (condition.kind) {
    case 'or':
      return condition.operands.map((c) => (c.kind === 'or' ? group(c) : print(c, style))).join(`${style.gap}${k('OR')}${style.gap}`);
    case 'and':
      return condition.operands
        .map((c) => (c.kind === 'or' || c.kind === 'and' ? group(c) : print(c, style)))
        .join(`${style.gap}${k('AND')}${style.gap}`);
    case 'not':
      return join(k('NOT'), group(condition.operand));
    case 'constant':
      return k(condition.value ? 'TRUE' : 'FALSE');
    case 'compare':
      return join(operand(condition.left), condition.operator, operand(condition.right));
    case 'between':
      return join(operand(condition.value), ...not(condition.negated), k('BETWEEN'), operand(condition.low), k('AND'), operand(condition.high));
    case 'in':
      return join(condition.property, ...not(condition.negated), k('IN'), '(', condition.values.map(quote).join(`,${style.gap}`), ')');
    case 'text':
      return join(operand(condition.operand), ...not(condition.negated), k(condition.operator), quote(condition.search));
    case 'isNull':
      return join(operand(condition.operand), k('IS'), ...not(condition.negated), k('NULL'));
  }
}

// --- the reference evaluator ------------------------------------------------------------------

/** TRUE, FALSE, UNKNOWN, and ERROR (RocketMQ threw: the evaluation ends, nothing matches). */
type Truth = 'T' | 'F' | 'U' | 'E';
type Value =
  | null
  | { t: 'string'; v: string }
  | { t: 'long'; v: bigint }
  | { t: 'double'; v: number }
  | { t: 'boolean'; v: boolean };
type NumberValue = Extract<Value, { t: 'long' | 'double' }>;

const tf = (b: boolean): Truth => (b ? 'T' : 'F');
const negate = (t: Truth): Truth => (t === 'T' ? 'F' : t === 'F' ? 'T' : t);

/** Java's Long.valueOf. */
function javaLong(s: string): NumberValue | undefined {
  if (!/^[+-]?[0-9]+$/.test(s)) return undefined;
  const v = BigInt(s.replace(/^\+/, ''));
  return v < -longMax - 1n || v > longMax ? undefined : { t: 'long', v };
}

/** Java's Double.valueOf, without hexadecimal. */
function javaDouble(s: string): NumberValue | undefined {
  const trimmed = s.replace(/^[\x00-\x20]+|[\x00-\x20]+$/g, '');
  if (/^[+-]?(NaN|Infinity)$/.test(trimmed)) return { t: 'double', v: Number(trimmed) };
  const m = /^([+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?)[fFdD]?$/.exec(trimmed);
  return m === null ? undefined : { t: 'double', v: Number(m[1]) };
}

/** Java's Double.compare. */
function doubleCompare(a: number, b: number): number {
  if (Number.isNaN(a) || Number.isNaN(b)) return Number(Number.isNaN(a)) - Number(Number.isNaN(b));
  if (a !== b) return a < b ? -1 : 1;
  return Number(Object.is(b, -0)) - Number(Object.is(a, -0));
}

function compareNumbers(a: NumberValue, b: NumberValue): number {
  if (a.t === 'long' && b.t === 'long') return a.v < b.v ? -1 : a.v > b.v ? 1 : 0;
  return doubleCompare(Number(a.v), Number(b.v));
}

function literalValue(o: SqlOperand): NumberValue {
  if (o.kind === 'long') return { t: 'long', v: o.value };
  if (o.kind === 'double') return { t: 'double', v: o.value };
  throw new Error('not a number');
}

/** A string read as the type of the number it meets. */
const convert = (s: string, like: NumberValue) => (like.t === 'long' ? javaLong(s) : javaDouble(s));

function valueOf(o: SqlOperand, properties: SqlFilterProperties): Value {
  switch (o.kind) {
    case 'property': {
      const v = Object.hasOwn(properties, o.name) ? properties[o.name] : undefined;
      return v === undefined ? null : { t: 'string', v };
    }
    case 'string':
      return { t: 'string', v: o.value };
    case 'long':
      return { t: 'long', v: o.value };
    case 'double':
      return { t: 'double', v: o.value };
    case 'boolean':
      return { t: 'boolean', v: o.value };
  }
}

function equal(l: Value, r: Value): Truth {
  if (l === null) return r === null ? 'T' : 'U';
  if (r === null) return 'F';
  if (l.t === 'string' && r.t === 'string') return tf(l.v === r.v);
  if (l.t === 'boolean' && r.t === 'boolean') return tf(l.v === r.v);
  if (l.t === 'string' || r.t === 'string') {
    const [s, other] = l.t === 'string' ? [l.v, r] : [(r as { v: string }).v, l];
    if (other.t === 'boolean') return tf((s.toLowerCase() === 'true') === other.v);
    if (other.t === 'string') throw new Error('unreachable');
    const n = convert(s, other);
    return n === undefined ? 'E' : tf(compareNumbers(n, other) === 0);
  }
  if (l.t === 'boolean' || r.t === 'boolean') return 'F';
  return tf(compareNumbers(l, r) === 0);
}

function order(operator: string, l: Value, r: Value): Truth {
  if (l === null || r === null) return 'U';
  let a: Value | undefined = l;
  let b: Value | undefined = r;
  if (a.t === 'string' && b.t === 'string') {
    a = javaDouble(a.v);
    b = javaDouble(b.v);
  } else if (a.t === 'string') {
    a = convert(a.v, b as NumberValue);
  } else if (b.t === 'string') {
    b = convert(b.v, a as NumberValue);
  }
  if (a === undefined || b === undefined) return 'E';
  const c = compareNumbers(a as NumberValue, b as NumberValue);
  return tf(operator === '<' ? c < 0 : operator === '<=' ? c <= 0 : operator === '>' ? c > 0 : c >= 0);
}

function reference(condition: SqlCondition, properties: SqlFilterProperties): Truth {
  const run = (c: SqlCondition) => reference(c, properties);
  switch (condition.kind) {
    case 'constant':
      return tf(condition.value);
    case 'and': {
      let result: Truth = 'T';
      for (const c of condition.operands) {
        const t = run(c);
        if (t === 'F' || t === 'E') return t;
        if (t === 'U') result = 'U';
      }
      return result;
    }
    case 'or': {
      let result: Truth = 'F';
      for (const c of condition.operands) {
        const t = run(c);
        if (t === 'T' || t === 'E') return t;
        if (t === 'U') result = 'U';
      }
      return result;
    }
    case 'not':
      return negate(run(condition.operand));
    case 'compare': {
      const l = valueOf(condition.left, properties);
      const r = valueOf(condition.right, properties);
      if (condition.operator === '=') return equal(l, r);
      if (condition.operator === '<>') return negate(equal(l, r));
      return order(condition.operator, l, r);
    }
    case 'between': {
      const { value, low, high } = condition;
      return condition.negated
        ? run({ kind: 'or', operands: [{ kind: 'compare', operator: '<', left: value, right: low }, { kind: 'compare', operator: '>', left: value, right: high }] })
        : run({ kind: 'and', operands: [{ kind: 'compare', operator: '>=', left: value, right: low }, { kind: 'compare', operator: '<=', left: value, right: high }] });
    }
    case 'in': {
      const v = valueOf({ kind: 'property', name: condition.property }, properties);
      return v === null ? 'U' : tf(condition.values.includes((v as { v: string }).v) !== condition.negated);
    }
    case 'text': {
      const v = valueOf(condition.operand, properties);
      if (condition.search === '' || v === null || v.t !== 'string') return 'F';
      const hit =
        condition.operator === 'CONTAINS' ? v.v.includes(condition.search)
        : condition.operator === 'STARTSWITH' ? v.v.startsWith(condition.search)
        : v.v.endsWith(condition.search);
      return tf(hit !== condition.negated);
    }
    case 'isNull':
      return tf((valueOf(condition.operand, properties) === null) !== condition.negated);
  }
}

const propertiesArbitrary = fc.dictionary(poolName, stringValue, { maxKeys: namePool.length });

describe('compileSqlFilter: properties', () => {
  it('parse(print(tree)) is the tree, whatever the case of keywords and the whitespace', () => {
    fc.assert(
      fc.property(conditionArbitrary(fc.oneof(poolName, anyName)), styleArbitrary, (tree, style) => {
        expect(parseSqlFilter(print(tree, style))).toEqual(tree);
      }),
      { numRuns: 400 },
    );
  });

  it('matches agrees with the reference evaluator on random trees and messages', () => {
    let matched = 0;
    fc.assert(
      fc.property(conditionArbitrary(poolName), styleArbitrary, fc.array(propertiesArbitrary, { minLength: 1, maxLength: 5 }), (tree, style, messages) => {
        const filter = compileSqlFilter(print(tree, style));
        for (const properties of messages) {
          const expected = reference(tree, properties) === 'T';
          if (expected) matched++;
          expect(filter.matches(properties)).toBe(expected);
        }
      }),
      { numRuns: 3000 },
    );
    // The generators must produce matches as well as misses, or the comparison proves little.
    expect(matched).toBeGreaterThan(1000);
  });

  it('never throws anything but INVALID_FILTER_EXPRESSION, and compiled filters never throw', () => {
    const tokens = [
      'a', 'b', 'TAGS', "'x'", "'it''s'", "'", '5', '-', '+', '1.5', '.5', '1e3', '007', '5L', '(', ')', ',', '=', '<>', '<', '<=', '>',
      '>=', '!=', 'AND', 'OR', 'NOT', 'BETWEEN', 'IN', 'IS', 'NULL', 'TRUE', 'FALSE', 'CONTAINS', 'STARTSWITH', 'ENDSWITH',
      '--', '/*', '*/', '\n', '.', 'e', '$', '"', '🚀', '\u0000',
    ];
    const soup = fc.array(fc.constantFrom(...tokens), { maxLength: 30 }).chain((parts) =>
      fc.constantFrom(' ', '').map((gap) => parts.join(gap)),
    );
    const mutated = fc
      .tuple(conditionArbitrary(poolName), styleArbitrary, fc.nat(), fc.string({ unit: 'binary', maxLength: 2 }))
      .map(([tree, style, at, insert]) => {
        const text = print(tree, style);
        const i = at % (text.length + 1);
        return text.slice(0, i) + insert + text.slice(i + 1);
      });
    const expression = fc.oneof(fc.string({ unit: 'binary', maxLength: 40 }), fc.string({ maxLength: 40 }), soup, mutated);
    fc.assert(
      fc.property(expression, propertiesArbitrary, (text, properties) => {
        let filter;
        try {
          filter = compileSqlFilter(text);
        } catch (error) {
          expect(error).toBeInstanceOf(SkyrocketError);
          expect((error as SkyrocketError).code).toBe('INVALID_FILTER_EXPRESSION');
          const position = /at position (\d+)/.exec((error as Error).message);
          expect(position).not.toBeNull();
          expect(Number(position![1])).toBeGreaterThanOrEqual(1);
          expect(Number(position![1])).toBeLessThanOrEqual(Array.from(text).length + 1);
          return;
        }
        expect(typeof filter.matches(properties)).toBe('boolean');
      }),
      { numRuns: 2000 },
    );
  });
});
