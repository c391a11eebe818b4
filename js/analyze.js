'use strict';
// The analysis behind js/validate.js: parses a function's source text with
// the vendored acorn parser and runs a small scope analysis over the ESTree
// AST.  Every identifier reference that resolves to no binding inside the
// function and is not an ECMAScript global is free; js/validate.js decides
// which free names are errors (the decisions are listed there).
//
// Kept apart from js/validate.js so that a start whose functions are all in
// the validation record (js/validation_memo.js) never compiles it: this file
// is loaded at the first source that has to be parsed.
//
// Uses nothing but ECMAScript: it also runs inside the embedded V8 shell.
//
//   analyse(source, nameHint) -> { error, free, source, name, kind, inert }
//     error: null, or { message, identifier, line, column } (plain data);
//     free:  [{ name, start, line, column }], sorted by position.

// acorn (250 KB) is loaded at the first validation, not with the package:
// ~8 ms that a program which loads Threader at start-up and uses it later
// should not pay up front.
let acorn = null;

// The global object properties of ECMA-262 (2023 edition, including Annex B's
// escape/unescape) and ECMA-402's Intl, plus WebAssembly, which the worker
// keeps because it is pure compute.
const GLOBAL_NAMES = [
  // value properties
  'globalThis', 'Infinity', 'NaN', 'undefined',
  // function properties
  'eval', 'isFinite', 'isNaN', 'parseFloat', 'parseInt',
  'decodeURI', 'decodeURIComponent', 'encodeURI', 'encodeURIComponent',
  'escape', 'unescape',
  // constructors
  'AggregateError', 'Array', 'ArrayBuffer', 'BigInt', 'BigInt64Array',
  'BigUint64Array', 'Boolean', 'DataView', 'Date', 'Error', 'EvalError',
  'FinalizationRegistry', 'Float32Array', 'Float64Array', 'Function',
  'Int8Array', 'Int16Array', 'Int32Array', 'Map', 'Number', 'Object',
  'Promise', 'Proxy', 'RangeError', 'ReferenceError', 'RegExp', 'Set',
  'SharedArrayBuffer', 'String', 'Symbol', 'SyntaxError', 'TypeError',
  'Uint8Array', 'Uint8ClampedArray', 'Uint16Array', 'Uint32Array', 'URIError',
  'WeakMap', 'WeakRef', 'WeakSet',
  // other properties
  'Atomics', 'JSON', 'Math', 'Reflect',
  // ECMA-402 and WebAssembly
  'Intl', 'WebAssembly',
];
// The validator looks names up in a private set; the exported one is a
// frozen copy.  Object.freeze does not reach a Set's entries (an internal
// slot), so its mutators are shadowed too.
const GLOBALS = new Set(GLOBAL_NAMES);
const ECMASCRIPT_GLOBALS = new Set(GLOBAL_NAMES);
for (const method of ['add', 'delete', 'clear']) {
  Object.defineProperty(ECMASCRIPT_GLOBALS, method, {
    value() { throw new TypeError('ECMASCRIPT_GLOBALS is frozen'); },
  });
}
Object.freeze(ECMASCRIPT_GLOBALS);

const ACORN_OPTIONS = {
  ecmaVersion: 'latest',
  sourceType: 'script',
  // Lets `import.meta` and import/export declarations parse so that they can
  // be reported with a clear message instead of a syntax error.
  allowImportExportEverywhere: true,
  allowReturnOutsideFunction: false,
  allowHashBang: false,
};

// ---------------------------------------------------------------------------
// Rejections.

function rejection(message, source, offset, identifier) {
  const details = { message, identifier, line: undefined, column: undefined };
  if (offset !== undefined) {
    const pos = positionOf(source, offset);
    details.line = pos.line;
    details.column = pos.column;
    details.message = message + ' (at ' + pos.line + ':' + pos.column +
      ' of the function)';
  }
  return details;
}

// Internal: thrown while analysing, caught by analyse().
class Rejection {
  constructor(details) { this.details = details; }
}

// 1-based line and column (UTF-16 units) of `offset` in `text`, with the
// line terminators of ECMAScript (LF, CR, CRLF, LS, PS).
function positionOf(text, offset) {
  let line = 1;
  let lineStart = 0;
  if (offset > text.length) offset = text.length;
  if (offset < 0) offset = 0;
  for (let i = 0; i < offset; i++) {
    const c = text.charCodeAt(i);
    if (c === 10 || c === 0x2028 || c === 0x2029) {
      line++;
      lineStart = i + 1;
    } else if (c === 13) {
      if (i + 1 < offset && text.charCodeAt(i + 1) === 10) i++;
      line++;
      lineStart = i + 1;
    }
  }
  return { line, column: offset - lineStart + 1 };
}

// ---------------------------------------------------------------------------
// Scope analysis.

class Scope {
  // kind: 'global' | 'name' (function/class self name) | 'params' | 'var'
  // (function body, static block) | 'block' | 'class'
  constructor(parent, kind, strict) {
    this.parent = parent;
    this.kind = kind;
    this.names = new Set();
    this.strict = strict;
    this.varScope = kind === 'var' || kind === 'global' ? this
      : parent.varScope;
  }
}

function hasUseStrict(statements) {
  for (let i = 0; i < statements.length; i++) {
    const s = statements[i];
    if (s.type !== 'ExpressionStatement' || typeof s.directive !== 'string') {
      return false;
    }
    if (s.directive === 'use strict') return true;
  }
  return false;
}

// Math's own functions (ES2023): each reads its arguments and returns a
// number.  A name Math inherits (`Math.constructor`, `Math.__defineGetter__`)
// is not among them.
const MATH_FUNCTIONS = new Set(['abs', 'acos', 'acosh', 'asin', 'asinh',
  'atan', 'atan2', 'atanh', 'cbrt', 'ceil', 'clz32', 'cos', 'cosh', 'exp',
  'expm1', 'floor', 'fround', 'hypot', 'imul', 'log', 'log10', 'log1p',
  'log2', 'max', 'min', 'pow', 'random', 'round', 'sign', 'sin', 'sinh',
  'sqrt', 'tan', 'tanh', 'trunc']);

// `Math.f` (not `Math[f]`, not `Math.f.call`) as a callee.
function isMathCall(callee) {
  return callee.type === 'MemberExpression' && !callee.computed &&
    callee.object.type === 'Identifier' && callee.object.name === 'Math' &&
    callee.property.type === 'Identifier' &&
    MATH_FUNCTIONS.has(callee.property.name);
}

class Analyzer {
  // `offset`: length of the wrapper text before the function's own text.
  constructor(source, offset) {
    this.source = source;
    this.offset = offset;
    this.refs = [];  // { name, start, scope }
    // Whether the function is inert (see isInert); cleared by the first
    // construct that could run user code or write to an existing object.
    this.inert = true;
    this.functions = 0;  // function bodies entered, the task's own first
    this.mathCalls = new Set();  // starts of `Math` in `Math.f(...)` callees
  }

  // Inert: running the function cannot change any object that existed before
  // it ran, so the worker may skip lockdown's verify() after its tasks
  // (js/lockdown.js, v8c/worker.cc).  The function
  //   - defines no function, method, accessor or class (so no code of the
  //     task runs but its own body, in the order it is written);
  //   - assigns (=, op=, ++, --, destructuring, for-in/of targets) only to
  //     variables, never to a property, and deletes nothing;
  //   - calls nothing but `Math.<name>(...)` with `Math` the global, and
  //     constructs nothing (no `new`, no tagged template).
  // Whatever else it evaluates reads: property loads may run intrinsic
  // getters, operators the intrinsic valueOf / toString / iterators of the
  // task's data (deserialized, so plain data with untouched prototypes), and
  // none of those writes.  A write to an undeclared name targets globalThis,
  // which is frozen.  Math.random advances the task's own seeded state,
  // which C++ reseeds before every task.
  isInert() {
    if (!this.inert) return false;
    for (const r of this.refs) {
      if (r.name !== 'Math' || !this.mathCalls.has(r.start)) continue;
      if (Analyzer.declaringScope(r) !== null) return false;  // a local `Math`
    }
    return true;
  }

  reject(message, node, identifier) {
    throw new Rejection(rejection(message, this.source,
      node.start - this.offset, identifier));
  }

  ref(node, scope) {
    this.refs.push({ name: node.name, start: node.start - this.offset, scope });
  }

  // Free references, sorted by position, that no scope binds.
  // The scope inside the function that declares a reference's name, or
  // null if it is free.
  static declaringScope(ref) {
    let s = ref.scope;
    while (s !== null && !s.names.has(ref.name)) s = s.parent;
    return s;
  }

  freeReferences() {
    const free = [];
    for (const r of this.refs) {
      if (Analyzer.declaringScope(r) === null && !GLOBALS.has(r.name)) {
        free.push({ name: r.name, start: r.start });
      }
    }
    free.sort((a, b) => a.start - b.start);
    return free;
  }

  // --- functions and classes ----------------------------------------------

  func(node, outer) {
    if (++this.functions > 1) this.inert = false;
    let scope = outer;
    if (node.type === 'FunctionExpression' && node.id) {
      scope = new Scope(scope, 'name', outer.strict);
      scope.names.add(node.id.name);
    }
    const isBlock = node.body.type === 'BlockStatement';
    const strict = outer.strict || (isBlock && hasUseStrict(node.body.body));
    const params = new Scope(scope, 'params', strict);
    if (node.type !== 'ArrowFunctionExpression') params.names.add('arguments');
    for (const p of node.params) this.declarePattern(p, params);
    for (const p of node.params) this.patternExpressions(p, params);
    if (isBlock) {
      const body = new Scope(params, 'var', strict);
      this.statements(node.body.body, body);
    } else {
      this.expr(node.body, params);
    }
  }

  klass(node, outer) {
    this.inert = false;
    const scope = new Scope(outer, 'class', true);
    if (node.id) scope.names.add(node.id.name);
    if (node.superClass) this.expr(node.superClass, scope);
    for (const member of node.body.body) {
      switch (member.type) {
        case 'MethodDefinition':
          if (member.computed) this.expr(member.key, scope);
          this.func(member.value, scope);
          break;
        case 'PropertyDefinition':
          if (member.computed) this.expr(member.key, scope);
          if (member.value) {
            // An initializer is evaluated like the body of a method.
            const init = new Scope(scope, 'var', true);
            this.expr(member.value, init);
          }
          break;
        case 'StaticBlock':
          this.statements(member.body, new Scope(scope, 'var', true));
          break;
        default:
          this.reject('unsupported class member ' + member.type, member);
      }
    }
  }

  // --- patterns -------------------------------------------------------------

  // Binding names of a declaration pattern into `target`.
  declarePattern(p, target) {
    switch (p.type) {
      case 'Identifier':
        target.names.add(p.name);
        break;
      case 'ObjectPattern':
        for (const prop of p.properties) {
          if (prop.type === 'RestElement') this.declarePattern(prop.argument, target);
          else this.declarePattern(prop.value, target);
        }
        break;
      case 'ArrayPattern':
        for (const el of p.elements) if (el) this.declarePattern(el, target);
        break;
      case 'RestElement':
        this.declarePattern(p.argument, target);
        break;
      case 'AssignmentPattern':
        this.declarePattern(p.left, target);
        break;
      default:
        this.reject('unsupported binding pattern ' + p.type, p);
    }
  }

  // Expressions inside a declaration pattern: defaults and computed keys.
  patternExpressions(p, scope) {
    switch (p.type) {
      case 'Identifier':
        break;
      case 'ObjectPattern':
        for (const prop of p.properties) {
          if (prop.type === 'RestElement') {
            this.patternExpressions(prop.argument, scope);
          } else {
            if (prop.computed) this.expr(prop.key, scope);
            this.patternExpressions(prop.value, scope);
          }
        }
        break;
      case 'ArrayPattern':
        for (const el of p.elements) if (el) this.patternExpressions(el, scope);
        break;
      case 'RestElement':
        this.patternExpressions(p.argument, scope);
        break;
      case 'AssignmentPattern':
        this.patternExpressions(p.left, scope);
        this.expr(p.right, scope);
        break;
      default:
        this.reject('unsupported binding pattern ' + p.type, p);
    }
  }

  // Assignment targets (`x = 1`, `[a, b.c] = v`, `for (x of y)`): the names
  // are references, not declarations.
  target(p, scope) {
    switch (p.type) {
      case 'Identifier':
        this.ref(p, scope);
        break;
      case 'MemberExpression':
        this.inert = false;
        this.expr(p, scope);
        break;
      case 'ObjectPattern':
        for (const prop of p.properties) {
          if (prop.type === 'RestElement') {
            this.target(prop.argument, scope);
          } else {
            if (prop.computed) this.expr(prop.key, scope);
            this.target(prop.value, scope);
          }
        }
        break;
      case 'ArrayPattern':
        for (const el of p.elements) if (el) this.target(el, scope);
        break;
      case 'RestElement':
        this.target(p.argument, scope);
        break;
      case 'AssignmentPattern':
        this.target(p.left, scope);
        this.expr(p.right, scope);
        break;
      case 'ParenthesizedExpression':
        this.target(p.expression, scope);
        break;
      default:
        this.reject('unsupported assignment target ' + p.type, p);
    }
  }

  // --- statements -------------------------------------------------------------

  statements(list, scope) {
    for (let i = 0; i < list.length; i++) this.stmt(list[i], scope);
  }

  declaration(decl, scope) {
    const target = decl.kind === 'var' ? scope.varScope : scope;
    for (const d of decl.declarations) {
      this.declarePattern(d.id, target);
      this.patternExpressions(d.id, scope);
      if (d.init) this.expr(d.init, scope);
    }
  }

  stmt(node, scope) {
    switch (node.type) {
      case 'ExpressionStatement':
        this.expr(node.expression, scope);
        break;
      case 'BlockStatement':
        this.statements(node.body, new Scope(scope, 'block', scope.strict));
        break;
      case 'EmptyStatement':
      case 'DebuggerStatement':
      case 'BreakStatement':      // labels are not identifiers
      case 'ContinueStatement':
        break;
      case 'VariableDeclaration':
        this.declaration(node, scope);
        break;
      case 'FunctionDeclaration':
        scope.names.add(node.id.name);
        // Annex B: in sloppy code a block-level function is also var-scoped.
        if (!scope.strict) scope.varScope.names.add(node.id.name);
        this.func(node, scope);
        break;
      case 'ClassDeclaration':
        scope.names.add(node.id.name);
        this.klass(node, scope);
        break;
      case 'ReturnStatement':
      case 'ThrowStatement':
        if (node.argument) this.expr(node.argument, scope);
        break;
      case 'IfStatement':
        this.expr(node.test, scope);
        this.stmt(node.consequent, scope);
        if (node.alternate) this.stmt(node.alternate, scope);
        break;
      case 'LabeledStatement':
        this.stmt(node.body, scope);
        break;
      case 'WhileStatement':
        this.expr(node.test, scope);
        this.stmt(node.body, scope);
        break;
      case 'DoWhileStatement':
        this.stmt(node.body, scope);
        this.expr(node.test, scope);
        break;
      case 'ForStatement': {
        const loop = new Scope(scope, 'block', scope.strict);
        if (node.init) {
          if (node.init.type === 'VariableDeclaration') this.declaration(node.init, loop);
          else this.expr(node.init, loop);
        }
        if (node.test) this.expr(node.test, loop);
        if (node.update) this.expr(node.update, loop);
        this.stmt(node.body, loop);
        break;
      }
      case 'ForInStatement':
      case 'ForOfStatement': {
        const loop = new Scope(scope, 'block', scope.strict);
        if (node.left.type === 'VariableDeclaration') this.declaration(node.left, loop);
        else this.target(node.left, loop);
        this.expr(node.right, loop);
        this.stmt(node.body, loop);
        break;
      }
      case 'SwitchStatement': {
        this.expr(node.discriminant, scope);
        const body = new Scope(scope, 'block', scope.strict);
        for (const c of node.cases) {
          if (c.test) this.expr(c.test, body);
          this.statements(c.consequent, body);
        }
        break;
      }
      case 'TryStatement':
        this.stmt(node.block, scope);
        if (node.handler) {
          const c = new Scope(scope, 'block', scope.strict);
          if (node.handler.param) {
            this.declarePattern(node.handler.param, c);
            this.patternExpressions(node.handler.param, c);
          }
          this.stmt(node.handler.body, c);
        }
        if (node.finalizer) this.stmt(node.finalizer, scope);
        break;
      case 'WithStatement':
        this.reject('`with` statements are not allowed in a threader ' +
          'function (they make names impossible to resolve): use a local ' +
          'variable for the object instead', node, 'with');
        break;
      case 'ImportDeclaration':
      case 'ExportNamedDeclaration':
      case 'ExportDefaultDeclaration':
      case 'ExportAllDeclaration':
        this.reject('`' + (node.type === 'ImportDeclaration' ? 'import' : 'export') +
          '` declarations are not allowed: modules ' +
          'cannot be loaded inside the worker. Pass the values you need in ' +
          'data, or inject pure helpers via opts.with', node,
          node.type === 'ImportDeclaration' ? 'import' : 'export');
        break;
      default:
        this.reject('unsupported syntax (' + node.type + ')', node);
    }
  }

  // --- expressions ------------------------------------------------------------

  exprs(list, scope) {
    for (let i = 0; i < list.length; i++) {
      const e = list[i];
      if (e !== null) this.expr(e, scope);  // holes in array literals
    }
  }

  expr(node, scope) {
    switch (node.type) {
      case 'Identifier':
        this.ref(node, scope);
        break;
      case 'Literal':
      case 'ThisExpression':
      case 'Super':
      case 'PrivateIdentifier':  // `#x in obj`; private names are not variables
        break;
      case 'TemplateLiteral':
        this.exprs(node.expressions, scope);
        break;
      case 'TaggedTemplateExpression':
        this.inert = false;
        this.expr(node.tag, scope);
        this.exprs(node.quasi.expressions, scope);
        break;
      case 'ArrayExpression':
        this.exprs(node.elements, scope);
        break;
      case 'ObjectExpression':
        for (const prop of node.properties) {
          if (prop.type === 'SpreadElement') {
            this.expr(prop.argument, scope);
            continue;
          }
          if (prop.computed) this.expr(prop.key, scope);
          // A non-computed key is a name, not a reference; a shorthand
          // `{ x }` has the reference `x` as its value.
          if (prop.kind !== 'init' || prop.method) this.func(prop.value, scope);
          else this.expr(prop.value, scope);
        }
        break;
      case 'FunctionExpression':
      case 'ArrowFunctionExpression':
        this.func(node, scope);
        break;
      case 'ClassExpression':
        this.klass(node, scope);
        break;
      case 'UnaryExpression':  // including `typeof x`: still a reference
        if (node.operator === 'delete') this.inert = false;
        this.expr(node.argument, scope);
        break;
      case 'SpreadElement':
      case 'AwaitExpression':
        this.expr(node.argument, scope);
        break;
      case 'YieldExpression':
        if (node.argument) this.expr(node.argument, scope);
        break;
      case 'UpdateExpression':
        this.target(node.argument, scope);
        break;
      case 'BinaryExpression':
      case 'LogicalExpression':
        this.expr(node.left, scope);
        this.expr(node.right, scope);
        break;
      case 'AssignmentExpression':
        this.target(node.left, scope);
        this.expr(node.right, scope);
        break;
      case 'ConditionalExpression':
        this.expr(node.test, scope);
        this.expr(node.consequent, scope);
        this.expr(node.alternate, scope);
        break;
      case 'SequenceExpression':
        this.exprs(node.expressions, scope);
        break;
      case 'MemberExpression':
        this.expr(node.object, scope);
        if (node.computed) this.expr(node.property, scope);
        break;
      case 'ChainExpression':
      case 'ParenthesizedExpression':
        this.expr(node.expression, scope);
        break;
      case 'CallExpression':
      case 'NewExpression':
        if (node.type === 'CallExpression' && isMathCall(node.callee)) {
          this.mathCalls.add(node.callee.object.start - this.offset);
        } else {
          this.inert = false;
        }
        this.expr(node.callee, scope);
        this.exprs(node.arguments, scope);
        break;
      case 'MetaProperty':
        if (node.meta.name === 'import') {
          this.reject('`import.meta` is not available inside the worker ' +
            '(a threader function is not a module): pass what you need in ' +
            'data', node, 'import.meta');
        }
        break;  // new.target
      case 'ImportExpression':
        this.reject('`import()` is not available inside the worker: ' +
          'modules cannot be loaded there. Pass the values you need in data, ' +
          'or inject pure helpers via opts.with', node, 'import');
        break;
      default:
        this.reject('unsupported syntax (' + node.type + ')', node);
    }
  }
}

// ---------------------------------------------------------------------------
// Parsing the function's text.

function tryParse(text) {
  try {
    if (acorn === null) acorn = require('./vendor/acorn');
    return { ast: acorn.parse(text, ACORN_OPTIONS), error: null };
  } catch (error) {
    if (error instanceof SyntaxError && typeof error.pos === 'number') {
      return { ast: null, error };
    }
    throw error;
  }
}

function singleExpression(ast) {
  if (ast === null || ast.body.length !== 1) return null;
  const statement = ast.body[0];
  if (statement.type !== 'ExpressionStatement') return null;
  return statement.expression;
}

const NOT_SUPPORTED_YET = ' are not supported yet as threader functions: ' +
  'pass a plain synchronous function or arrow function';

// Classifies the text.  Returns { node, offset, kind, shipped, name } or
// throws a Rejection.
function classify(source, nameHint) {
  // 1. A function, arrow function or class expression.
  const asExpr = '(' + source + '\n)';
  const first = tryParse(asExpr);
  const expr = singleExpression(first.ast);
  if (expr !== null) {
    const at = expr.start - 1;
    switch (expr.type) {
      case 'ArrowFunctionExpression':
      case 'FunctionExpression': {
        if (expr.async || expr.generator) {
          const what = expr.async && expr.generator ? 'async generator functions'
            : expr.async ? 'async functions' : 'generator functions';
          throw new Rejection(rejection(what + NOT_SUPPORTED_YET, source, at));
        }
        return {
          node: expr, offset: 1,
          kind: expr.type === 'ArrowFunctionExpression' ? 'arrow' : 'function',
          shipped: source.slice(at, expr.end - 1),
          name: expr.id ? expr.id.name : '',
        };
      }
      case 'ClassExpression':
        throw new Rejection(rejection('a class cannot be a threader ' +
          'function (class constructors cannot be called without new): pass ' +
          'a function, and define or instantiate the class inside it',
          source, at));
      default:
        throw new Rejection(rejection('expected the source of a function, ' +
          'got ' + expr.type, source, at));
    }
  }
  if (first.ast !== null) {
    throw new Rejection(rejection('expected the source of a single ' +
      'function expression', source, 0));
  }

  // 2. A method, getter or setter: `f(x) { ... }`, `get x() { ... }`.
  const asMethod = '({' + source + '\n})';
  const second = tryParse(asMethod);
  const obj = singleExpression(second.ast);
  if (obj !== null && obj.type === 'ObjectExpression' &&
      obj.properties.length === 1 && obj.properties[0].type === 'Property') {
    const prop = obj.properties[0];
    const at = prop.start - 2;
    if (prop.kind === 'get' || prop.kind === 'set') {
      throw new Rejection(rejection((prop.kind === 'get' ? 'a getter' :
        'a setter') + ' cannot be a threader function: pass a plain ' +
        'function or arrow function', source, at));
    }
    if (prop.method) {
      const fn = prop.value;
      if (fn.async || fn.generator) {
        const what = fn.async && fn.generator ? 'async generator methods'
          : fn.async ? 'async methods' : 'generator methods';
        throw new Rejection(rejection(what + NOT_SUPPORTED_YET, source, at));
      }
      let key;
      let name;
      if (!prop.computed && prop.key.type === 'Identifier') {
        name = prop.key.name;
        key = JSON.stringify(name);
      } else if (!prop.computed && prop.key.type === 'Literal') {
        name = String(prop.key.value);
        key = prop.key.raw;
      } else {
        name = nameHint || 'anonymous';
        key = JSON.stringify(name);
      }
      // The value (a FunctionExpression) starts at the parameter list.
      const shipped = '({' + key + source.slice(fn.start - 2, fn.end - 2) +
        '})[' + key + ']';
      return { node: fn, offset: 2, kind: 'method', shipped, name };
    }
  }

  // 3. A private method `#m() {}` (only reachable from inside its class).
  if (second.ast === null) {
    const third = tryParse('(class {' + source + '\n})');
    const cls = singleExpression(third.ast);
    if (cls !== null && cls.type === 'ClassExpression' &&
        cls.body.body.length === 1 &&
        cls.body.body[0].type === 'MethodDefinition' &&
        cls.body.body[0].key.type === 'PrivateIdentifier') {
      throw new Rejection(rejection('a private method cannot be a threader ' +
        'function: pass a plain function or arrow function', source, 0));
    }
  }

  // Report the syntax error of the parse that got further.
  let error = first.error;
  let prefix = 1;
  if (second.error && second.error.pos - 2 > error.pos - 1) {
    error = second.error;
    prefix = 2;
  }
  let text = String(error.message);
  const paren = text.lastIndexOf(' (');
  if (paren > 0) text = text.slice(0, paren);
  throw new Rejection(rejection('could not parse the function\'s source: ' +
    text, source, Math.min(Math.max(error.pos - prefix, 0), source.length)));
}

// Full analysis of one source text: { error, free, source, name, kind }.
function analyse(source, nameHint) {
  try {
    const c = classify(source, nameHint);
    const analyzer = new Analyzer(source, c.offset);
    analyzer.func(c.node, new Scope(null, 'global', false));
    const free = analyzer.freeReferences();
    // Positions are computed once, here, rather than on every throw.
    for (const f of free) {
      const pos = positionOf(source, f.start);
      f.line = pos.line;
      f.column = pos.column;
    }
    return {
      error: null, free, source: c.shipped, name: c.name, kind: c.kind,
      inert: analyzer.isInert(),
    };
  } catch (e) {
    if (e instanceof Rejection) return { error: e.details, free: [] };
    if (e instanceof RangeError) {  // stack overflow on absurd nesting
      return {
        error: rejection('the function is too deeply nested to validate',
          source, undefined),
        free: [],
      };
    }
    throw e;
  }
}

module.exports = { analyse, ECMASCRIPT_GLOBALS };
