// `filter` in JavaScript: keeps a JSON message when a predicate on one of
// its fields holds and drops it otherwise. It exists to show (and test) that
// a sluice:handler can be written in JavaScript with the same behaviour as
// the Rust reference in guest-examples/rust/filter; ComponentizeJS turns it
// into a component (guest-examples/build-polyglot.sh).
//
// Config: {"field": "/level", "op": "eq", "value": "error"} where `field` is
// a JSON pointer and `op` is one of eq, ne, exists, missing, gt, lt
// (numbers). Non-JSON payloads are a `bad_json` handler error.
//
// Unlike serde_json (and so the Rust, Python and C filters), JSON.parse
// accepts nesting deeper than 127 levels and numbers beyond the range of a
// double (as Infinity). Refusing them would take a walk over the whole
// parsed tree, which costs 4-8x the parse itself in this interpreter
// (measured on a 64 KiB array of small objects).

const OPS = ['eq', 'ne', 'exists', 'missing', 'gt', 'lt'];
const MISSING = Symbol('missing');
const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

let filter = null;

// A world export returning result<_, string>: throwing a string is the err.
export function init(config) {
  filter = parseConfig(config);
}

// result<list<output>, handler-error>: a thrown {code, message} is the err.
export function handle(message) {
  let doc;
  try {
    doc = JSON.parse(utf8.decode(message.payload));
  } catch (e) {
    throw { code: 'bad_json', message: String(e.message ?? e) };
  }
  return keeps(doc) ? [{ topic: undefined, message }] : [];
}

export function handleBatch(messages) {
  return messages.map((m) => {
    try {
      return { tag: 'ok', val: handle(m) };
    } catch (e) {
      return { tag: 'err', val: e };
    }
  });
}

function parseConfig(text) {
  let cfg;
  try {
    cfg = JSON.parse(text.trim() === '' ? '{}' : text);
  } catch (e) {
    throw `invalid handler config: ${e.message}`;
  }
  if (cfg === null || typeof cfg !== 'object' || Array.isArray(cfg)) {
    throw 'invalid handler config: expected a JSON object';
  }
  for (const name of ['field', 'op']) {
    if (!Object.hasOwn(cfg, name)) throw `invalid handler config: missing field \`${name}\``;
    if (typeof cfg[name] !== 'string') throw `invalid handler config: \`${name}\` must be a string`;
  }
  if (!OPS.includes(cfg.op)) {
    throw `invalid handler config: unknown op ${JSON.stringify(cfg.op)}, expected one of ${OPS.join(', ')}`;
  }
  if (cfg.field !== '' && !cfg.field.startsWith('/')) {
    throw `field must be a JSON pointer like /a/b, got ${JSON.stringify(cfg.field)}`;
  }
  return {
    path: cfg.field === '' ? [] : cfg.field.slice(1).split('/').map(unescape),
    op: cfg.op,
    value: Object.hasOwn(cfg, 'value') ? cfg.value : null,
  };
}

// RFC 6901 reference tokens, decoded in the order serde_json uses.
function unescape(token) {
  return token.replaceAll('~1', '/').replaceAll('~0', '~');
}

function lookup(doc, path) {
  let cur = doc;
  for (const token of path) {
    if (Array.isArray(cur)) {
      if (!/^(0|[1-9][0-9]*)$/.test(token) || Number(token) >= cur.length) return MISSING;
      cur = cur[Number(token)];
    } else if (cur !== null && typeof cur === 'object' && Object.hasOwn(cur, token)) {
      cur = cur[token];
    } else {
      return MISSING;
    }
  }
  return cur;
}

function keeps(doc) {
  const found = lookup(doc, filter.path);
  const { op, value } = filter;
  switch (op) {
    case 'eq': return found !== MISSING && same(found, value);
    case 'ne': return found === MISSING || !same(found, value);
    case 'exists': return found !== MISSING;
    case 'missing': return found === MISSING;
    case 'gt': return typeof found === 'number' && typeof value === 'number' && found > value;
    case 'lt': return typeof found === 'number' && typeof value === 'number' && found < value;
  }
  return false;
}

// Deep JSON equality; numbers by value, object keys in any order.
function same(a, b) {
  if (a === b) return true;
  if (a === null || b === null || typeof a !== 'object' || typeof b !== 'object') return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  if (Array.isArray(a)) return a.length === b.length && a.every((x, i) => same(x, b[i]));
  const keys = Object.keys(a);
  return keys.length === Object.keys(b).length
    && keys.every((k) => Object.hasOwn(b, k) && same(a[k], b[k]));
}
