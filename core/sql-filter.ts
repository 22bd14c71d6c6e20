/**
 * RocketMQ's SQL92 message filter (`MessageSelector.bySql`), compiled once and evaluated by the
 * broker against each message's properties.
 *
 * The language and its evaluation follow RocketMQ 5's `filter` module (`SelectorParser.jj`,
 * `ComparisonExpression`, `LogicExpression`, `UnaryExpression`, `ConstantExpression`) and the
 * broker's `ExpressionMessageFilter`, so a subscription written for RocketMQ selects the same
 * messages here. Where RocketMQ would accept an expression that can only be a mistake, this
 * parser rejects it with a position instead of running it differently: every expression it
 * accepts means what it means in RocketMQ (the exceptions are listed under "Deviations").
 *
 * Grammar (EBNF; keywords are case-insensitive, identifiers are not):
 *
 *   filter      = orExpr EOF ;
 *   orExpr      = andExpr { "OR" andExpr } ;
 *   andExpr     = unary { "AND" unary } ;
 *   unary       = "NOT" negatable | primary ;
 *   negatable   = "(" orExpr ")" | "NOT" negatable | "TRUE" | "FALSE" ;
 *   primary     = "(" orExpr ")"
 *               | operand compareOp operand
 *               | operand [ "NOT" ] "BETWEEN" operand "AND" operand
 *               | identifier [ "NOT" ] "IN" "(" string { "," string } ")"
 *               | operand [ "NOT" ] ( "CONTAINS" | "STARTSWITH" | "ENDSWITH" ) string
 *               | operand "IS" [ "NOT" ] "NULL"
 *               | "TRUE" | "FALSE" ;             (a boolean followed by no operator)
 *   compareOp   = "=" | "<>" | "<" | "<=" | ">" | ">=" ;
 *   operand     = identifier | string | number | "TRUE" | "FALSE" ;
 *   number      = { "+" | "-" } ( integer | decimal ) ;
 *   integer     = ( "0" | nonZeroDigit { digit } ) [ "L" | "l" ] ;        (a Java long)
 *   decimal     = digit { digit } "." { digit } [ exponent ]               (a Java double)
 *               | "." digit { digit } [ exponent ]
 *               | digit { digit } exponent ;
 *   exponent    = ( "E" | "e" ) [ "+" | "-" ] digit { digit } ;
 *   string      = "'" { any character but "'" | "''" } "'" ;
 *   identifier  = ( letter | "_" | "$" ) { letter | digit | "_" | "$" } ;   (not a keyword)
 *   keyword     = NOT | AND | OR | BETWEEN | IN | IS | NULL | TRUE | FALSE
 *               | CONTAINS | STARTSWITH | ENDSWITH ;
 *
 * Whitespace is space, tab, CR, LF and form feed; `-- …` runs to the end of the line and
 * `/* … *\/` is a comment. AND binds tighter than OR; parentheses and NOTs nest at most
 * `sqlFilterLimits.nestingMaxDepth` deep, and the text is at most `expressionMaxBytes` long.
 *
 * Rules checked at compile time, as RocketMQ checks them when it builds the expression:
 * `<`, `<=`, `>`, `>=` and BETWEEN take identifiers and numbers only; `=` and `<>` do not take
 * TRUE or FALSE on the left of a string or number literal; BETWEEN with two number bounds needs
 * low <= high; NULL appears only in IS [NOT] NULL; an integer fits a signed 64-bit long and a
 * decimal is finite.
 *
 * Evaluation. A property's value is a string, or null when the message lacks it. A condition is
 * TRUE, FALSE or UNKNOWN (SQL's three-valued logic, as RocketMQ's `LogicExpression` implements
 * it), and the message matches only when the whole expression is TRUE:
 * - `NOT UNKNOWN` is UNKNOWN, so `NOT (a = 'x')` does not match a message without `a`.
 *   `FALSE AND UNKNOWN` is FALSE and `TRUE OR UNKNOWN` is TRUE; AND and OR evaluate left to right
 *   and stop as soon as the answer is known.
 * - Comparing with a missing property is UNKNOWN (`a = 'x'`, `a <> 'x'`, `a > 5`, `a IN (…)`,
 *   `a NOT IN (…)`, BETWEEN), with one asymmetry kept from RocketMQ: in `=` and `<>` a missing
 *   property on the *right* of a present value gives FALSE for `=` (so TRUE for `<>`).
 *   `a = b` with both missing is TRUE.
 * - IS NULL / IS NOT NULL are never UNKNOWN. CONTAINS, STARTSWITH, ENDSWITH and their NOT forms
 *   are FALSE for a missing property and for an empty search string (so `a NOT CONTAINS 'x'`
 *   does not match a message without `a`, while `NOT (a CONTAINS 'x')` does).
 * - A number literal decides how the property is read: against an integer the property must be
 *   a Java long (`[+-]digits`, no spaces); against a decimal it must be a Java double (trimmed;
 *   `NaN`, `Infinity`, exponents and a trailing `d`/`f` allowed). Two properties under `<`, `>`,
 *   `<=`, `>=` are both read as doubles. Doubles order as `Double.compareTo` does (NaN above
 *   everything, -0.0 below 0.0). `=` between two strings is exact string equality; against TRUE
 *   or FALSE a property is true when it equals "true" ignoring case.
 * - A property that cannot be read as the number it is compared with makes RocketMQ's evaluation
 *   throw, and its broker then drops the message. That is ERROR here: it ends the evaluation at
 *   once (even inside NOT or OR) and the message does not match. Because AND and OR stop early,
 *   `b = 'x' OR a > 5` matches `{b: 'x', a: 'abc'}` while `a > 5 OR b = 'x'` does not, as in
 *   RocketMQ.
 *
 * Deviations from RocketMQ, all rejecting or reading more, never matching differently by accident:
 * - A bare property as a condition (`a`, `NOT a`, `a AND b`) is rejected: RocketMQ casts it to a
 *   boolean that is FALSE for every string, so it could never be meant.
 * - RocketMQ's NOT binds to the next operand (`NOT a = 1` is `(NOT a) = 1`, always FALSE), so NOT
 *   must be followed by `(`, NOT, TRUE or FALSE here. Conditions compared as values
 *   (`(a = 1) = TRUE`, chains like `a = b = c`) and signs before anything but a number are
 *   rejected for the same reason.
 * - Integer literals compare as longs everywhere. RocketMQ keeps those within ±2^31 as Java ints
 *   and then reads the property with `Integer.valueOf`, so `ts > 0` would fail on a millisecond
 *   timestamp there; it matches here.
 * - `TRUE = a` converts `a` as `a = TRUE` does; RocketMQ throws a ClassCastException (no match).
 * - RocketMQ rejects the decimal literal `0.0` (its underflow check compares with
 *   `Double.MIN_VALUE`); it is accepted here. A `--` comment may end at the end of the text.
 * - Properties are read as longs and doubles from ASCII digits only; Java also accepts other
 *   Unicode digits in longs and hexadecimal doubles (`0x1p3`), which are ERROR here.
 *
 * Compiling turns the tree into closures, specialised at compile time on the operand kinds, so
 * evaluation neither re-reads the expression nor runs a regular expression; converting a property
 * to a number is a hand-written scan (about 0.1 µs for a six-condition filter).
 */
import assert from 'node:assert/strict';
import { SkyrocketError } from './errors.ts';
import { utf8Length } from './validate.ts';

/** Bounds on one SQL filter expression. */
export const sqlFilterLimits = {
  /**
   * UTF-8 bytes of the expression text. RocketMQ sets none; a subscription is stored and sent on
   * every heartbeat, and 4 KiB holds a few hundred conditions.
   */
  expressionMaxBytes: 4 * 1024,
  /** Parentheses and NOTs open inside one another; it bounds recursion in parse and evaluation. */
  nestingMaxDepth: 64,
} as const;

/**
 * The names under which `sqlFilterProperties` exposes a message's system fields, as RocketMQ
 * stores them in its property map: the tag, and the keys joined by one space.
 */
export const sqlFilterSystemProperties = { tag: 'TAGS', keys: 'KEYS' } as const;

/** A message's properties as a filter reads them; a missing or undefined name is SQL NULL. */
export type SqlFilterProperties = Readonly<Record<string, string | undefined>>;

export interface SqlFilter {
  /** The expression as given. */
  readonly expression: string;
  /** Whether the expression is TRUE for a message with these properties. Never throws. */
  matches(properties: SqlFilterProperties): boolean;
}

export type SqlCompareOperator = '=' | '<>' | '<' | '<=' | '>' | '>=';
export type SqlTextOperator = 'CONTAINS' | 'STARTSWITH' | 'ENDSWITH';

/** A value in a condition: a property, or a literal of one of RocketMQ's constant types. */
export type SqlOperand =
  | { readonly kind: 'property'; readonly name: string }
  | { readonly kind: 'string'; readonly value: string }
  /** A Java long. */
  | { readonly kind: 'long'; readonly value: bigint }
  /** A Java double. */
  | { readonly kind: 'double'; readonly value: number }
  | { readonly kind: 'boolean'; readonly value: boolean };

/**
 * The parsed expression. AND and OR are n-ary (`a AND b AND c` is one node); parentheses leave
 * no node of their own, but a parenthesised AND inside an AND stays a separate node.
 */
export type SqlCondition =
  | { readonly kind: 'or'; readonly operands: readonly SqlCondition[] }
  | { readonly kind: 'and'; readonly operands: readonly SqlCondition[] }
  | { readonly kind: 'not'; readonly operand: SqlCondition }
  | { readonly kind: 'constant'; readonly value: boolean }
  | { readonly kind: 'compare'; readonly operator: SqlCompareOperator; readonly left: SqlOperand; readonly right: SqlOperand }
  | { readonly kind: 'between'; readonly negated: boolean; readonly value: SqlOperand; readonly low: SqlOperand; readonly high: SqlOperand }
  | { readonly kind: 'in'; readonly negated: boolean; readonly property: string; readonly values: readonly string[] }
  | { readonly kind: 'text'; readonly operator: SqlTextOperator; readonly negated: boolean; readonly operand: SqlOperand; readonly search: string }
  | { readonly kind: 'isNull'; readonly negated: boolean; readonly operand: SqlOperand };

/**
 * Compiles a RocketMQ SQL92 filter expression.
 *
 * @param field the request field named in the error
 * @default field 'filter.expression'
 * @throws SkyrocketError INVALID_FILTER_EXPRESSION, with the 1-based position (in characters)
 *   and what was expected there, e.g. `expected ')' at position 17, found end of expression`.
 */
export function compileSqlFilter(expression: string, field = 'filter.expression'): SqlFilter {
  const evaluate = compileCondition(parseSqlFilter(expression, field));
  return {
    expression,
    matches: (properties) => evaluate(properties) === TRUE,
  };
}

/** Parses an expression into its tree; `compileSqlFilter` is this plus compilation. */
export function parseSqlFilter(expression: string, field = 'filter.expression'): SqlCondition {
  if (typeof expression !== 'string') {
    throw new SkyrocketError('INVALID_FILTER_EXPRESSION', 'a SQL filter expression must be a string', { field });
  }
  const bytes = utf8Length(expression);
  if (bytes > sqlFilterLimits.expressionMaxBytes) {
    throw new SkyrocketError(
      'INVALID_FILTER_EXPRESSION',
      `SQL filter expression is ${bytes} bytes; at most ${sqlFilterLimits.expressionMaxBytes}`,
      { field },
    );
  }
  return new Parser(expression, field).parse();
}

/** What the broker passes to `matches`: user properties, `TAGS` and `KEYS`. */
export interface SqlFilterMessage {
  readonly tag?: string | undefined;
  readonly keys?: readonly string[] | undefined;
  readonly properties?: Readonly<Record<string, string>> | undefined;
}

/**
 * The properties a filter sees for a message: the user properties, `TAGS` (the tag) and `KEYS`
 * (the keys joined by one space, as RocketMQ stores them). User properties cannot collide with
 * these, since both names are reserved. RocketMQ's other system properties (`UNIQ_KEY`,
 * `__SHARDINGKEY`, delay and transaction properties) are not exposed.
 */
export function sqlFilterProperties(message: SqlFilterMessage): Record<string, string> {
  const out: Record<string, string> = Object.create(null);
  if (message.properties !== undefined) {
    for (const name of Object.keys(message.properties)) {
      const value = message.properties[name];
      if (value !== undefined) out[name] = value;
    }
  }
  if (message.tag !== undefined) out[sqlFilterSystemProperties.tag] = message.tag;
  if (message.keys !== undefined && message.keys.length > 0) {
    out[sqlFilterSystemProperties.keys] = message.keys.join(' ');
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Lexer
// ---------------------------------------------------------------------------------------------

const keywords = new Set([
  'NOT', 'AND', 'OR', 'BETWEEN', 'IN', 'IS', 'NULL', 'TRUE', 'FALSE', 'CONTAINS', 'STARTSWITH', 'ENDSWITH',
]);

const compareOperators: ReadonlySet<string> = new Set<SqlCompareOperator>(['=', '<>', '<', '<=', '>', '>=']);
const textOperators: ReadonlySet<string> = new Set<SqlTextOperator>(['CONTAINS', 'STARTSWITH', 'ENDSWITH']);

interface Token {
  readonly kind: 'word' | 'string' | 'integer' | 'decimal' | 'symbol' | 'end';
  /** The text as written; for a string, its decoded value. */
  readonly text: string;
  /** The upper-cased text when the word is a keyword. */
  readonly keyword: string | undefined;
  /** Index of the first UTF-16 unit in the expression. */
  readonly start: number;
}

const longMax = (1n << 63n) - 1n;

function describe(token: Token): string {
  switch (token.kind) {
    case 'end':
      return 'end of expression';
    case 'string':
      return 'a string';
    default:
      return token.keyword ?? `'${token.text}'`;
  }
}

function isIdentifierStart(c: number): boolean {
  return (c >= 0x61 && c <= 0x7a) || (c >= 0x41 && c <= 0x5a) || c === 0x5f || c === 0x24;
}

function isDigit(c: number): boolean {
  return c >= 0x30 && c <= 0x39;
}

function isIdentifierPart(c: number): boolean {
  return isIdentifierStart(c) || isDigit(c);
}

class Parser {
  readonly #expression: string;
  readonly #field: string;
  readonly #tokens: Token[];
  #index = 0;
  #depth = 0;

  constructor(expression: string, field: string) {
    this.#expression = expression;
    this.#field = field;
    this.#tokens = this.#lex();
  }

  parse(): SqlCondition {
    const condition = this.#or();
    const token = this.#peek();
    if (token.kind !== 'end') {
      // A trailing ')' is the most common slip; say so rather than list every operator.
      this.#fail(token, token.text === ')' ? "expected end of expression (unbalanced ')')" : 'expected AND, OR or end of expression');
    }
    return condition;
  }

  // --- errors -------------------------------------------------------------------------------

  #failAt(start: number, message: string, found?: string): never {
    const position = Array.from(this.#expression.slice(0, start)).length + 1;
    const suffix = found === undefined ? '' : `, found ${found}`;
    throw new SkyrocketError('INVALID_FILTER_EXPRESSION', `${message} at position ${position}${suffix}`, {
      field: this.#field,
    });
  }

  /** Fails at a token: `expected ')' at position 17, found AND`. */
  #fail(token: Token, expected: string): never {
    this.#failAt(token.start, expected, describe(token));
  }

  /** Rejects a well-formed token that breaks one of RocketMQ's rules: no "found" to add. */
  #reject(token: Token, message: string): never {
    this.#failAt(token.start, message);
  }

  // --- lexer --------------------------------------------------------------------------------

  #lex(): Token[] {
    const s = this.#expression;
    const n = s.length;
    const tokens: Token[] = [];
    let i = 0;
    for (;;) {
      const c = s.charCodeAt(i);
      if (c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d || c === 0x0c) {
        i++;
        continue;
      }
      if (c === 0x2d && s.charCodeAt(i + 1) === 0x2d) {
        // `--` comment: to the end of the line. RocketMQ needs the line break; we also take the end.
        while (i < n && s.charCodeAt(i) !== 0x0a && s.charCodeAt(i) !== 0x0d) i++;
        continue;
      }
      if (c === 0x2f && s.charCodeAt(i + 1) === 0x2a) {
        const close = s.indexOf('*/', i + 2);
        if (close < 0) this.#failAt(i, "unterminated comment: expected '*/'");
        i = close + 2;
        continue;
      }
      const start = i;
      if (i >= n) {
        tokens.push({ kind: 'end', text: '', keyword: undefined, start: n });
        return tokens;
      }
      if (isIdentifierStart(c)) {
        while (i < n && isIdentifierPart(s.charCodeAt(i))) i++;
        const text = s.slice(start, i);
        const upper = text.toUpperCase();
        tokens.push({ kind: 'word', text, keyword: keywords.has(upper) ? upper : undefined, start });
        continue;
      }
      if (isDigit(c) || (c === 0x2e && isDigit(s.charCodeAt(i + 1)))) {
        const token = this.#lexNumber(start);
        tokens.push(token);
        i = start + token.length;
        continue;
      }
      if (c === 0x27) {
        let value = '';
        let from = i + 1;
        for (;;) {
          const quote = s.indexOf("'", from);
          if (quote < 0) this.#failAt(start, "unterminated string: expected a closing '");
          value += s.slice(from, quote);
          if (s.charCodeAt(quote + 1) === 0x27) {
            value += "'";
            from = quote + 2;
            continue;
          }
          i = quote + 1;
          break;
        }
        tokens.push({ kind: 'string', text: value, keyword: undefined, start });
        continue;
      }
      const next = s.charCodeAt(i + 1);
      let symbol: string | undefined;
      if (c === 0x3c) symbol = next === 0x3e ? '<>' : next === 0x3d ? '<=' : '<';
      else if (c === 0x3e) symbol = next === 0x3d ? '>=' : '>';
      else if (c === 0x3d || c === 0x28 || c === 0x29 || c === 0x2c || c === 0x2b || c === 0x2d) symbol = s[i];
      if (symbol === undefined) {
        const character = String.fromCodePoint(s.codePointAt(i)!);
        const hint = c === 0x21 && next === 0x3d ? " (use '<>')" : c === 0x22 ? " (strings take single quotes)" : '';
        this.#failAt(i, `unexpected character ${JSON.stringify(character)}${hint}`);
      }
      tokens.push({ kind: 'symbol', text: symbol, keyword: undefined, start });
      i += symbol.length;
    }
  }

  /** Scans the longest number at `start`, as JavaCC's longest match does. */
  #lexNumber(start: number): Token & { readonly length: number } {
    const s = this.#expression;
    let i = start;
    let decimal = false;
    while (isDigit(s.charCodeAt(i))) i++;
    if (s.charCodeAt(i) === 0x2e) {
      decimal = true;
      i++;
      while (isDigit(s.charCodeAt(i))) i++;
    }
    const e = s.charCodeAt(i);
    if (e === 0x45 || e === 0x65) {
      const sign = s.charCodeAt(i + 1);
      const digitsAt = sign === 0x2b || sign === 0x2d ? i + 2 : i + 1;
      if (isDigit(s.charCodeAt(digitsAt))) {
        decimal = true;
        i = digitsAt;
        while (isDigit(s.charCodeAt(i))) i++;
      }
    }
    if (!decimal) {
      if (i - start > 1 && s.charCodeAt(start) === 0x30) {
        this.#failAt(start, 'an integer may not start with 0');
      }
      const suffix = s.charCodeAt(i);
      if (suffix === 0x4c || suffix === 0x6c) i++;
    }
    const text = s.slice(start, i);
    return { kind: decimal ? 'decimal' : 'integer', text, keyword: undefined, start, length: i - start };
  }

  // --- parser -------------------------------------------------------------------------------

  #peek(): Token {
    return this.#tokens[this.#index]!;
  }

  #advance(): Token {
    const token = this.#tokens[this.#index]!;
    if (token.kind !== 'end') this.#index++;
    return token;
  }

  #isKeyword(keyword: string): boolean {
    return this.#peek().keyword === keyword;
  }

  #isSymbol(symbol: string): boolean {
    const token = this.#peek();
    return token.kind === 'symbol' && token.text === symbol;
  }

  #expectSymbol(symbol: string, expected = `'${symbol}'`): void {
    if (!this.#isSymbol(symbol)) this.#fail(this.#peek(), `expected ${expected}`);
    this.#advance();
  }

  /** Enters a parenthesis or a NOT, bounding the depth of the tree and of evaluation. */
  #enter(token: Token): void {
    this.#depth++;
    if (this.#depth > sqlFilterLimits.nestingMaxDepth) {
      this.#failAt(token.start, `parentheses and NOTs nest deeper than ${sqlFilterLimits.nestingMaxDepth}`);
    }
  }

  #or(): SqlCondition {
    const first = this.#and();
    if (!this.#isKeyword('OR')) return first;
    const operands = [first];
    while (this.#isKeyword('OR')) {
      this.#advance();
      operands.push(this.#and());
    }
    return { kind: 'or', operands };
  }

  #and(): SqlCondition {
    const first = this.#unary();
    if (!this.#isKeyword('AND')) return first;
    const operands = [first];
    while (this.#isKeyword('AND')) {
      this.#advance();
      operands.push(this.#unary());
    }
    return { kind: 'and', operands };
  }

  #unary(): SqlCondition {
    if (!this.#isKeyword('NOT')) return this.#primary();
    const not = this.#advance();
    this.#enter(not);
    const operand = this.#negatable();
    this.#depth--;
    return { kind: 'not', operand };
  }

  #negatable(): SqlCondition {
    const token = this.#peek();
    if (this.#isSymbol('(')) return this.#group();
    if (token.keyword === 'NOT') return this.#unary();
    if (token.keyword === 'TRUE' || token.keyword === 'FALSE') {
      this.#advance();
      return { kind: 'constant', value: token.keyword === 'TRUE' };
    }
    // RocketMQ would read `NOT a = 1` as `(NOT a) = 1`, which never matches.
    this.#fail(token, "expected '(' after NOT, as in NOT (a = 1),");
  }

  #group(): SqlCondition {
    const open = this.#advance();
    this.#enter(open);
    const inner = this.#or();
    this.#expectSymbol(')', "')'");
    this.#depth--;
    return inner;
  }

  #primary(): SqlCondition {
    if (this.#isSymbol('(')) return this.#group();
    const leftToken = this.#peek();
    const left = this.#operand('a condition');
    const token = this.#peek();

    if (token.kind === 'symbol' && compareOperators.has(token.text)) {
      const operator = token.text as SqlCompareOperator;
      this.#advance();
      const rightToken = this.#peek();
      const right = this.#operand('an operand');
      if (operator === '=' || operator === '<>') {
        if (left.kind === 'boolean' && right.kind !== 'boolean' && right.kind !== 'property') {
          this.#reject(rightToken, `cannot compare ${left.value ? 'TRUE' : 'FALSE'} with a ${right.kind === 'string' ? 'string' : 'number'}`);
        }
      } else {
        this.#requireNumeric(left, leftToken, `'${operator}'`);
        this.#requireNumeric(right, rightToken, `'${operator}'`);
      }
      return { kind: 'compare', operator, left, right };
    }

    if (token.keyword === 'IS') {
      this.#advance();
      const negated = this.#isKeyword('NOT');
      if (negated) this.#advance();
      if (!this.#isKeyword('NULL')) this.#fail(this.#peek(), negated ? 'expected NULL' : 'expected NULL or NOT NULL');
      this.#advance();
      return { kind: 'isNull', negated, operand: left };
    }

    let negated = false;
    if (token.keyword === 'NOT') {
      negated = true;
      this.#advance();
      const after = this.#peek().keyword;
      if (after !== 'BETWEEN' && after !== 'IN' && (after === undefined || !textOperators.has(after))) {
        this.#fail(this.#peek(), 'expected BETWEEN, IN, CONTAINS, STARTSWITH or ENDSWITH after NOT');
      }
    }
    const keyword = this.#peek().keyword;

    if (keyword === 'BETWEEN') {
      this.#advance();
      this.#requireNumeric(left, leftToken, 'BETWEEN');
      const lowToken = this.#peek();
      const low = this.#operand('a number or property');
      this.#requireNumeric(low, lowToken, 'BETWEEN');
      if (!this.#isKeyword('AND')) this.#fail(this.#peek(), 'expected AND');
      this.#advance();
      const highToken = this.#peek();
      const high = this.#operand('a number or property');
      this.#requireNumeric(high, highToken, 'BETWEEN');
      // RocketMQ checks the bounds of BETWEEN only, not of NOT BETWEEN.
      if (!negated && isNumber(low) && isNumber(high) && compareNumbers(low, high) > 0) {
        this.#reject(lowToken, 'BETWEEN needs its lower bound first');
      }
      return { kind: 'between', negated, value: left, low, high };
    }

    if (keyword === 'IN') {
      if (left.kind !== 'property') this.#reject(leftToken, 'IN needs a property on its left');
      this.#advance();
      this.#expectSymbol('(');
      const values = [this.#string()];
      while (this.#isSymbol(',')) {
        this.#advance();
        values.push(this.#string());
      }
      this.#expectSymbol(')', "',' or ')'");
      return { kind: 'in', negated, property: left.name, values };
    }

    if (keyword !== undefined && textOperators.has(keyword)) {
      this.#advance();
      return { kind: 'text', operator: keyword as SqlTextOperator, negated, operand: left, search: this.#string() };
    }

    if (left.kind === 'boolean') return { kind: 'constant', value: left.value };
    this.#fail(
      token,
      left.kind === 'property'
        ? `expected an operator (=, <>, <, <=, >, >=, BETWEEN, IN, IS, CONTAINS, STARTSWITH, ENDSWITH) after ${left.name}`
        : 'expected an operator (=, <>, <, <=, >, >=, BETWEEN, IS, CONTAINS, STARTSWITH, ENDSWITH)',
    );
  }

  #requireNumeric(operand: SqlOperand, token: Token, operator: string): void {
    if (operand.kind === 'string' || operand.kind === 'boolean') {
      this.#reject(token, `${operator} compares numbers and properties, not a ${operand.kind}`);
    }
  }

  #string(): string {
    const token = this.#peek();
    if (token.kind !== 'string') this.#fail(token, 'expected a string');
    this.#advance();
    return token.text;
  }

  #operand(expected: string): SqlOperand {
    let token = this.#advance();
    let negative = false;
    let signed = false;
    while (token.kind === 'symbol' && (token.text === '-' || token.text === '+')) {
      if (token.text === '-') negative = !negative;
      signed = true;
      token = this.#advance();
    }
    if (token.kind === 'integer') {
      const digits = token.text.endsWith('L') || token.text.endsWith('l') ? token.text.slice(0, -1) : token.text;
      const magnitude = BigInt(digits);
      if (magnitude > longMax) this.#reject(token, 'integer out of the signed 64-bit range');
      return { kind: 'long', value: negative ? -magnitude : magnitude };
    }
    if (token.kind === 'decimal') {
      const magnitude = Number(token.text);
      if (!Number.isFinite(magnitude)) this.#reject(token, 'decimal out of the double range');
      return { kind: 'double', value: negative ? -magnitude : magnitude };
    }
    if (signed) this.#fail(token, 'expected a number after a sign');
    if (token.kind === 'string') return { kind: 'string', value: token.text };
    if (token.kind === 'word') {
      if (token.keyword === 'TRUE' || token.keyword === 'FALSE') return { kind: 'boolean', value: token.keyword === 'TRUE' };
      if (token.keyword === undefined) return { kind: 'property', name: token.text };
      if (token.keyword === 'NULL') this.#fail(token, `expected ${expected} (NULL goes only in IS NULL)`);
    }
    this.#fail(token, `expected ${expected}`);
  }
}

// ---------------------------------------------------------------------------------------------
// Evaluation
// ---------------------------------------------------------------------------------------------

/** SQL's three truth values, plus ERROR: RocketMQ threw, and the message does not match. */
const FALSE = 0;
const TRUE = 1;
const UNKNOWN = 2;
const ERROR = 3;
type Truth = typeof FALSE | typeof TRUE | typeof UNKNOWN | typeof ERROR;

type Evaluate = (properties: SqlFilterProperties) => Truth;

function not(truth: Truth): Truth {
  return truth === TRUE ? FALSE : truth === FALSE ? TRUE : truth;
}

function truth(value: boolean): Truth {
  return value ? TRUE : FALSE;
}

/** Reads a property; names of `Object.prototype` members (`constructor`) are not properties. */
function read(properties: SqlFilterProperties, name: string): string | undefined {
  const value = properties[name];
  return typeof value === 'string' && Object.hasOwn(properties, name) ? value : undefined;
}

/** Java's `Long.valueOf`: an optional sign and ASCII digits, within the signed 64-bit range. */
function parseJavaLong(s: string): number | bigint | undefined {
  const n = s.length;
  const first = s.charCodeAt(0);
  const negative = first === 0x2d;
  const from = negative || first === 0x2b ? 1 : 0;
  if (from === n) return undefined;
  for (let i = from; i < n; i++) {
    if (!isDigit(s.charCodeAt(i))) return undefined;
  }
  if (n - from <= 15) {
    let value = 0;
    for (let i = from; i < n; i++) value = value * 10 + (s.charCodeAt(i) - 0x30);
    return negative ? -value : value;
  }
  const magnitude = BigInt(s.slice(from));
  const value = negative ? -magnitude : magnitude;
  return value > longMax || value < -longMax - 1n ? undefined : value;
}

/**
 * Java's `Double.valueOf` on decimal text: trimmed of characters up to U+0020, an optional sign,
 * `NaN`, `Infinity`, or digits with an optional point and exponent and an optional `d`/`f` suffix.
 */
function parseJavaDouble(s: string): number | undefined {
  let start = 0;
  let end = s.length;
  while (start < end && s.charCodeAt(start) <= 0x20) start++;
  while (end > start && s.charCodeAt(end - 1) <= 0x20) end--;
  let i = start;
  const first = s.charCodeAt(i);
  const sign = first === 0x2d ? -1 : 1;
  if (first === 0x2d || first === 0x2b) i++;
  if (end - i === 3 && s.startsWith('NaN', i)) return Number.NaN;
  if (end - i === 8 && s.startsWith('Infinity', i)) return sign * Number.POSITIVE_INFINITY;
  const mantissa = i;
  let digits = 0;
  while (i < end && isDigit(s.charCodeAt(i))) {
    i++;
    digits++;
  }
  if (i < end && s.charCodeAt(i) === 0x2e) {
    i++;
    while (i < end && isDigit(s.charCodeAt(i))) {
      i++;
      digits++;
    }
  }
  if (digits === 0) return undefined;
  if (i < end && (s.charCodeAt(i) | 0x20) === 0x65) {
    i++;
    if (i < end && (s.charCodeAt(i) === 0x2b || s.charCodeAt(i) === 0x2d)) i++;
    const exponentDigits = i;
    while (i < end && isDigit(s.charCodeAt(i))) i++;
    if (i === exponentDigits) return undefined;
  }
  const numberEnd = i;
  if (i < end) {
    const suffix = s.charCodeAt(i) | 0x20;
    if (suffix === 0x64 || suffix === 0x66) i++;
  }
  if (i !== end) return undefined;
  return sign * Number(s.slice(mantissa, numberEnd));
}

/** Java's `Double.compare`: NaN above everything and equal to itself, -0.0 below 0.0. */
function compareJavaDoubles(a: number, b: number): number {
  if (a < b) return -1;
  if (a > b) return 1;
  if (a === b) {
    if (a !== 0) return 0;
    const aNegative = Object.is(a, -0);
    return aNegative === Object.is(b, -0) ? 0 : aNegative ? -1 : 1;
  }
  const aNaN = Number.isNaN(a);
  return aNaN === Number.isNaN(b) ? 0 : aNaN ? 1 : -1;
}

/** Compares longs held as numbers (safe integers) or bigints; `<` across the two is exact. */
function compareLongs(a: number | bigint, b: number | bigint): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function isNumber(operand: SqlOperand): operand is Extract<SqlOperand, { kind: 'long' | 'double' }> {
  return operand.kind === 'long' || operand.kind === 'double';
}

/** RocketMQ's numeric comparison: long with long exactly, anything with a double as doubles. */
function compareNumbers(a: Extract<SqlOperand, { kind: 'long' | 'double' }>, b: Extract<SqlOperand, { kind: 'long' | 'double' }>): number {
  if (a.kind === 'long' && b.kind === 'long') return compareLongs(a.value, b.value);
  return compareJavaDoubles(Number(a.value), Number(b.value));
}

/** Java's `Boolean.valueOf(String)`. */
function isJavaTrue(s: string): boolean {
  return s.length === 4 && s.toLowerCase() === 'true';
}

/** A long literal in the form `parseJavaLong` returns, so the two compare without conversion. */
function runtimeLong(value: bigint): number | bigint {
  return value >= BigInt(Number.MIN_SAFE_INTEGER) && value <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(value) : value;
}

const orderTests: Record<SqlCompareOperator, (comparison: number) => boolean> = {
  '=': (c) => c === 0,
  '<>': (c) => c !== 0,
  '<': (c) => c < 0,
  '<=': (c) => c <= 0,
  '>': (c) => c > 0,
  '>=': (c) => c >= 0,
};

function compileCondition(condition: SqlCondition): Evaluate {
  switch (condition.kind) {
    case 'constant': {
      const value = truth(condition.value);
      return () => value;
    }
    case 'and':
      return compileAnd(condition.operands.map(compileCondition));
    case 'or':
      return compileOr(condition.operands.map(compileCondition));
    case 'not': {
      const operand = compileCondition(condition.operand);
      return (properties) => not(operand(properties));
    }
    case 'compare':
      return compileCompare(condition.operator, condition.left, condition.right);
    case 'between': {
      // RocketMQ builds BETWEEN as (v >= low AND v <= high), NOT BETWEEN as (v < low OR v > high).
      const { value, low, high } = condition;
      return condition.negated
        ? compileOr([compileCompare('<', value, low), compileCompare('>', value, high)])
        : compileAnd([compileCompare('>=', value, low), compileCompare('<=', value, high)]);
    }
    case 'in': {
      const { property, negated } = condition;
      const values = new Set(condition.values);
      return (properties) => {
        const value = read(properties, property);
        return value === undefined ? UNKNOWN : truth(values.has(value) !== negated);
      };
    }
    case 'text':
      return compileText(condition);
    case 'isNull': {
      const { operand, negated } = condition;
      if (operand.kind !== 'property') {
        const value = truth(negated);
        return () => value;
      }
      const name = operand.name;
      return (properties) => truth((read(properties, name) === undefined) !== negated);
    }
  }
}

function compileAnd(operands: readonly Evaluate[]): Evaluate {
  const n = operands.length;
  return (properties) => {
    let result: Truth = TRUE;
    for (let i = 0; i < n; i++) {
      const t = operands[i]!(properties);
      if (t === FALSE || t === ERROR) return t;
      if (t === UNKNOWN) result = UNKNOWN;
    }
    return result;
  };
}

function compileOr(operands: readonly Evaluate[]): Evaluate {
  const n = operands.length;
  return (properties) => {
    let result: Truth = FALSE;
    for (let i = 0; i < n; i++) {
      const t = operands[i]!(properties);
      if (t === TRUE || t === ERROR) return t;
      if (t === UNKNOWN) result = UNKNOWN;
    }
    return result;
  };
}

function compileText(condition: Extract<SqlCondition, { kind: 'text' }>): Evaluate {
  const { operand, negated, search, operator } = condition;
  const test =
    operator === 'CONTAINS'
      ? (s: string) => s.includes(search)
      : operator === 'STARTSWITH'
        ? (s: string) => s.startsWith(search)
        : (s: string) => s.endsWith(search);
  // RocketMQ answers FALSE, not UNKNOWN, for an empty search, a missing property and a non-string.
  if (search === '' || (operand.kind !== 'property' && operand.kind !== 'string')) return () => FALSE;
  if (operand.kind === 'string') {
    const value = truth(test(operand.value) !== negated);
    return () => value;
  }
  const name = operand.name;
  return (properties) => {
    const value = read(properties, name);
    return value === undefined ? FALSE : truth(test(value) !== negated);
  };
}

function compileCompare(operator: SqlCompareOperator, left: SqlOperand, right: SqlOperand): Evaluate {
  if (operator === '<>') {
    const equal = compileCompare('=', left, right);
    return (properties) => not(equal(properties));
  }
  const test = orderTests[operator];
  if (left.kind !== 'property' && right.kind !== 'property') {
    const value = compareConstants(operator, left, right);
    return () => value;
  }
  if (left.kind === 'property' && right.kind === 'property') return compareProperties(operator, left.name, right.name);

  const propertyOnLeft = left.kind === 'property';
  const name = left.kind === 'property' ? left.name : (right as { name: string }).name;
  const literal = propertyOnLeft ? right : left;
  // RocketMQ's `=`: null = value is UNKNOWN, value = null is FALSE. Ordering with null is UNKNOWN.
  const missing: Truth = operator === '=' && !propertyOnLeft ? FALSE : UNKNOWN;
  const sign = propertyOnLeft ? 1 : -1;
  switch (literal.kind) {
    case 'string': {
      assert(operator === '=', 'the parser lets strings into = and <> only');
      const want = literal.value;
      return (properties) => {
        const value = read(properties, name);
        return value === undefined ? missing : truth(value === want);
      };
    }
    case 'boolean': {
      assert(operator === '=', 'the parser lets booleans into = and <> only');
      const want = literal.value;
      return (properties) => {
        const value = read(properties, name);
        return value === undefined ? missing : truth(isJavaTrue(value) === want);
      };
    }
    case 'long': {
      const want = runtimeLong(literal.value);
      return (properties) => {
        const value = read(properties, name);
        if (value === undefined) return missing;
        const number = parseJavaLong(value);
        return number === undefined ? ERROR : truth(test(sign * compareLongs(number, want)));
      };
    }
    case 'double': {
      const want = literal.value;
      return (properties) => {
        const value = read(properties, name);
        if (value === undefined) return missing;
        const number = parseJavaDouble(value);
        return number === undefined ? ERROR : truth(test(sign * compareJavaDoubles(number, want)));
      };
    }
    case 'property':
      assert.fail('one operand is a literal');
  }
}

function compareProperties(operator: Exclude<SqlCompareOperator, '<>'>, a: string, b: string): Evaluate {
  if (operator === '=') {
    return (properties) => {
      const left = read(properties, a);
      const right = read(properties, b);
      if (left === undefined) return right === undefined ? TRUE : UNKNOWN;
      return right === undefined ? FALSE : truth(left === right);
    };
  }
  const test = orderTests[operator];
  // RocketMQ orders two strings by reading both as doubles.
  return (properties) => {
    const left = read(properties, a);
    if (left === undefined) return UNKNOWN;
    const right = read(properties, b);
    if (right === undefined) return UNKNOWN;
    const l = parseJavaDouble(left);
    const r = parseJavaDouble(right);
    return l === undefined || r === undefined ? ERROR : truth(test(compareJavaDoubles(l, r)));
  };
}

type Literal = Exclude<SqlOperand, { kind: 'property' }>;

/** Two literals, evaluated once at compile time with RocketMQ's conversions. */
function compareConstants(operator: Exclude<SqlCompareOperator, '<>'>, left: Literal, right: Literal): Truth {
  const test = orderTests[operator];
  if (operator !== '=') {
    assert(isNumber(left) && isNumber(right), 'the parser lets numbers only into ordering');
    return truth(test(compareNumbers(left, right)));
  }
  if (left.kind === 'string' && right.kind === 'string') return truth(left.value === right.value);
  if (left.kind === 'boolean' && right.kind === 'boolean') return truth(left.value === right.value);
  if (left.kind === 'string' || right.kind === 'string') {
    const [text, other, sign] = left.kind === 'string' ? [left.value, right, 1] : [(right as { value: string }).value, left, -1];
    if (other.kind === 'boolean') return truth(isJavaTrue(text) === other.value);
    if (other.kind === 'long') {
      const number = parseJavaLong(text);
      return number === undefined ? ERROR : truth(test(sign * compareLongs(number, other.value)));
    }
    if (other.kind === 'double') {
      const number = parseJavaDouble(text);
      return number === undefined ? ERROR : truth(test(sign * compareJavaDoubles(number, other.value)));
    }
    assert.fail('strings were handled above');
  }
  // A boolean against a number: RocketMQ's comparison answers -1, never equal.
  if (left.kind === 'boolean' || right.kind === 'boolean') return FALSE;
  assert(isNumber(left) && isNumber(right));
  return truth(test(compareNumbers(left, right)));
}
