"""`filter` in Python: keeps a JSON message when a predicate on one of its
fields holds and drops it otherwise. It exists to show (and test) that a
sluice:handler can be written in Python with the same behaviour as the Rust
reference in guest-examples/rust/filter; componentize-py turns it into a
component (guest-examples/build-polyglot.sh).

Config: {"field": "/level", "op": "eq", "value": "error"} where `field` is a
JSON pointer and `op` is one of eq, ne, exists, missing, gt, lt (numbers).
Non-JSON payloads are a `bad_json` handler error.
"""

import json
import re

import wit_world
from componentize_py_types import Err, Ok
from wit_world.imports.types import HandlerError, Message, Output

OPS = ("eq", "ne", "exists", "missing", "gt", "lt")
MISSING = object()
INDEX = re.compile(r"0|[1-9][0-9]*")
# serde_json's nesting limit, which the Rust and C filters share. CPython's
# own parser has none that works here: deep input exhausts the Wasm stack
# (a trap) before RecursionError, so `too_deep` looks first.
DEPTH_MAX = 127
NOT_STRUCTURAL = bytes(c for c in range(256) if c not in b'"[]{}')
STRING = re.compile(rb'"[^"]*"')

# The instance's filter; init runs once per instance, before any message.
FILTER = None


def number(text):
    """Every JSON number is a float, so that all four filters compare
    numbers alike (1 == 1.0, 64-bit floats); too large is bad JSON."""
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise ValueError(f"number out of range: {text[:32]}")
    return value


def no_constant(name):
    raise ValueError(f"{name} is not JSON")


def too_deep(data):
    """True when arrays and objects in `data` (bytes) nest deeper than
    DEPTH_MAX, or may in bytes that are not JSON anyway. Only C-speed bytes
    operations, since a Python loop over the input would cost more than
    the parse: drop escaped quotes and backslashes, keep only quotes and
    brackets, drop strings, then peel the innermost pairs a level a round."""
    if data.count(b"[") + data.count(b"{") <= DEPTH_MAX:
        return False
    t = data.replace(b"\\\\", b"").replace(b'\\"', b"")
    # Dropping two adjacent quotes keeps every bracket inside or outside a
    # string as it was; what is left between quotes then is brackets.
    t = t.translate(None, NOT_STRUCTURAL).replace(b'""', b"")
    if b'"' in t:
        t = STRING.sub(b"", t)
    rounds = 0
    while t and rounds <= DEPTH_MAX:
        # "." marks a peeled pair, so "{[]}" loses one level, not two.
        peeled = t.replace(b"[]", b".").replace(b"{}", b".").replace(b".", b"")
        if peeled == t:
            break  # unbalanced: what is left opens without closing
        t, rounds = peeled, rounds + 1
    return rounds + t.count(b"[") + t.count(b"{") > DEPTH_MAX


def parse(data):
    """JSON from UTF-8 bytes, refusing what serde_json refuses."""
    if too_deep(data):
        raise ValueError("recursion limit exceeded")
    text = data.decode("utf-8")  # json.loads would also take UTF-16 and UTF-32
    return json.loads(text, parse_int=number, parse_float=number, parse_constant=no_constant)


class Filter:
    def __init__(self, config):
        try:
            cfg = parse(config.encode() if config.strip() else b"{}")
        except ValueError as e:
            raise Err(f"invalid handler config: {e}")
        if not isinstance(cfg, dict):
            raise Err("invalid handler config: expected a JSON object")
        for name in ("field", "op"):
            if name not in cfg:
                raise Err(f"invalid handler config: missing field `{name}`")
            if not isinstance(cfg[name], str):
                raise Err(f"invalid handler config: `{name}` must be a string")
        if cfg["op"] not in OPS:
            raise Err(
                f"invalid handler config: unknown op {json.dumps(cfg['op'])}, "
                f"expected one of {', '.join(OPS)}"
            )
        field = cfg["field"]
        if field and not field.startswith("/"):
            raise Err(f"field must be a JSON pointer like /a/b, got {json.dumps(field)}")
        # RFC 6901 tokens, decoded in the order serde_json uses.
        self.path = [t.replace("~1", "/").replace("~0", "~") for t in field.split("/")[1:]]
        self.op = cfg["op"]
        self.value = cfg.get("value")

    def lookup(self, doc):
        for token in self.path:
            if isinstance(doc, list):
                if not INDEX.fullmatch(token) or int(token) >= len(doc):
                    return MISSING
                doc = doc[int(token)]
            elif isinstance(doc, dict) and token in doc:
                doc = doc[token]
            else:
                return MISSING
        return doc

    def keeps(self, doc):
        found, op, value = self.lookup(doc), self.op, self.value
        if op == "eq":
            return found is not MISSING and same(found, value)
        if op == "ne":
            return found is MISSING or not same(found, value)
        if op == "exists":
            return found is not MISSING
        if op == "missing":
            return found is MISSING
        both_numbers = type(found) is float and type(value) is float
        return both_numbers and (found > value if op == "gt" else found < value)


def same(a, b):
    """Deep JSON equality. Python's own == says True == 1.0, JSON does not."""
    if type(a) is not type(b):
        return False
    if isinstance(a, list):
        return len(a) == len(b) and all(map(same, a, b))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(v, b[k]) for k, v in a.items())
    return a == b


def handle(message: Message):
    try:
        doc = parse(message.payload)
    except ValueError as e:  # UnicodeDecodeError and JSONDecodeError too
        raise Err(HandlerError(code="bad_json", message=str(e)))
    return [Output(topic=None, message=message)] if FILTER.keeps(doc) else []


class WitWorld(wit_world.WitWorld):
    def init(self, config: str) -> None:
        global FILTER
        FILTER = Filter(config)

    def handle(self, message: Message) -> list[Output]:
        return handle(message)

    def handle_batch(self, messages: list[Message]):
        results = []
        for m in messages:
            try:
                results.append(Ok(handle(m)))
            except Err as e:
                results.append(e)
        return results
