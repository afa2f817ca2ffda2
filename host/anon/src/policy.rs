//! A policy says what to do with personal data in a message: rules by JSON
//! path (`$.user.email` → pseudonymize) and free-text scanning of every
//! other string with chosen detectors and operators. Non-JSON text is
//! scanned whole. JSON in gives valid JSON out: a replaced number becomes a
//! string, a dropped field disappears, nothing is spliced into the text.
//! What was done is counted per entity kind in an [`Audit`], never with the
//! values.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

use crate::detect::{Detector, DetectorConfig};
use crate::entity::EntityKind;
use crate::operator::{Operator, Pseudonymizer, guess};

/// Why a policy was refused; shown to whoever deployed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyError(pub String);

impl std::fmt::Display for PolicyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for PolicyError {}

/// Why one message could not be handled (the message is dead-lettered).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApplyError {
    /// Declared or looking like JSON, but not valid JSON.
    BadJson(String),
    /// Not UTF-8 text: it cannot be scanned, so it is not passed on.
    Binary,
    /// The host refused a token (no vault, vault full, value too long).
    Tokenize(String),
}

impl std::fmt::Display for ApplyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ApplyError::BadJson(e) => write!(f, "invalid JSON: {e}"),
            ApplyError::Binary => {
                f.write_str("the payload is not UTF-8 text and cannot be scanned")
            }
            ApplyError::Tokenize(e) => write!(f, "tokenize refused: {e}"),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyDoc {
    #[serde(default)]
    rules: Vec<RuleDoc>,
    #[serde(default = "scan_on")]
    scan: ScanDoc,
}

fn scan_on() -> ScanDoc {
    ScanDoc::default()
}

#[derive(Debug, Deserialize)]
struct RuleDoc {
    path: String,
    /// The kind of what the path holds, for tags, format-preserving
    /// pseudonyms and the audit (default: detected from the value).
    #[serde(default)]
    entity: Option<String>,
    #[serde(flatten)]
    op: Operator,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ScanDoc {
    /// `false` turns free-text scanning off.
    #[serde(default)]
    enabled: Option<bool>,
    #[serde(flatten)]
    detector: DetectorFields,
    /// The operator for every kind without its own (default: replace).
    #[serde(default)]
    default: Option<Operator>,
    /// Per kind: `{"EMAIL": {"op": "pseudonymize"}}`.
    #[serde(default)]
    operators: BTreeMap<String, Operator>,
}

#[derive(Debug, Default, Deserialize)]
struct DetectorFields {
    #[serde(default)]
    entities: Option<Vec<String>>,
    #[serde(default)]
    phone_regions: Option<Vec<String>>,
    #[serde(default)]
    min_confidence: Option<f32>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Seg {
    Key(String),
    AnyKey,
    Index(usize),
    AnyIndex,
}

#[derive(Debug, Clone)]
struct Rule {
    path: Vec<Seg>,
    entity: Option<EntityKind>,
    op: Operator,
}

/// A checked policy, ready to apply to many messages.
#[derive(Debug, Clone)]
pub struct Policy {
    rules: Vec<Rule>,
    /// Finds entities: in every string when scanning is on, and in the
    /// value of a rule that names no entity kind (to pick the tag).
    detector: Detector,
    scan: bool,
    default_op: Operator,
    ops: BTreeMap<EntityKind, Operator>,
}

/// Entities handled, per kind (`EMAIL`…) or `FIELD` for a rule whose value
/// has no recognisable kind.
pub type Audit = BTreeMap<String, u32>;

/// One more entity of kind `name`; allocates only for a kind's first.
fn count(audit: &mut Audit, name: &str) {
    match audit.get_mut(name) {
        Some(n) => *n += 1,
        None => {
            audit.insert(name.to_owned(), 1);
        }
    }
}

/// What [`Policy::apply`] made of a message.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub payload: Vec<u8>,
    pub audit: Audit,
}

/// A JSON tree deeper than this is refused (serde_json's own default).
const DEPTH_MAX: usize = 128;

fn parse_path(p: &str) -> Result<Vec<Seg>, String> {
    let rest = p
        .strip_prefix('$')
        .ok_or_else(|| format!("path {p:?} must start with '$'"))?;
    let b = rest.as_bytes();
    let mut segs = Vec::new();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'.' => {
                let start = i + 1;
                let mut j = start;
                while j < b.len() && b[j] != b'.' && b[j] != b'[' {
                    j += 1;
                }
                let key = &rest[start..j];
                if key.is_empty() {
                    return Err(format!("empty key in path {p:?}"));
                }
                segs.push(if key == "*" {
                    Seg::AnyKey
                } else {
                    Seg::Key(key.to_owned())
                });
                i = j;
            }
            b'[' => {
                let close = rest[i..]
                    .find(']')
                    .ok_or_else(|| format!("unclosed '[' in {p:?}"))?
                    + i;
                let inner = &rest[i + 1..close];
                segs.push(if inner == "*" {
                    Seg::AnyIndex
                } else if let Some(q) = inner.strip_prefix('\'').and_then(|x| x.strip_suffix('\''))
                {
                    Seg::Key(q.to_owned())
                } else {
                    Seg::Index(
                        inner
                            .parse()
                            .map_err(|_| format!("bad index [{inner}] in {p:?}"))?,
                    )
                });
                i = close + 1;
            }
            _ => return Err(format!("path {p:?}: expected '.' or '[' at byte {}", i + 1)),
        }
    }
    if segs.is_empty() {
        return Err(format!("path {p:?} names the whole document; name a field"));
    }
    Ok(segs)
}

impl Policy {
    /// Parses and checks a policy written as JSON.
    pub fn from_json(text: &str) -> Result<Policy, PolicyError> {
        let doc: PolicyDoc =
            serde_json::from_str(text).map_err(|e| PolicyError(format!("policy: {e}")))?;
        let mut rules = Vec::with_capacity(doc.rules.len());
        for (i, r) in doc.rules.into_iter().enumerate() {
            let at = |m: String| PolicyError(format!("rule {}: {m}", i + 1));
            let entity = r
                .entity
                .as_deref()
                .map(|e| EntityKind::parse(e).ok_or_else(|| at(format!("unknown entity {e:?}"))))
                .transpose()?;
            rules.push(Rule {
                path: parse_path(&r.path).map_err(at)?,
                entity,
                op: r.op,
            });
        }
        let scan = doc.scan;
        let enabled = scan.enabled.unwrap_or(true);
        let detector = Detector::from_config(&DetectorConfig {
            entities: scan.detector.entities,
            phone_regions: scan.detector.phone_regions,
            min_confidence: scan.detector.min_confidence,
        })
        .map_err(|e| PolicyError(format!("scan: {e}")))?;
        let mut ops = BTreeMap::new();
        for (name, op) in scan.operators {
            let k = EntityKind::parse(&name)
                .ok_or_else(|| PolicyError(format!("scan.operators: unknown entity {name:?}")))?;
            if op == Operator::Drop {
                return Err(PolicyError(format!(
                    "scan.operators.{name}: `drop` removes JSON fields; use it in a rule"
                )));
            }
            ops.insert(k, op);
        }
        if enabled && detector.kinds().contains(EntityKind::Phone) {
            // The numbering plans are compiled with the detector; one pass
            // over sample numbers also builds the regexes' first states
            // now, at deployment (a handler's `init`), not on a message.
            detector.detect(
                "+44 20 7946 0958, 020 7946 0958, (202) 555-0143, 030 1234567, 01 23 45 67 89",
            );
        }
        Ok(Policy {
            rules,
            detector,
            scan: enabled,
            default_op: scan.default.unwrap_or(Operator::Replace { with: None }),
            ops,
        })
    }

    /// Anonymises one message. JSON (by content type, or by a payload
    /// that starts like one) is walked; anything else is scanned as text.
    pub fn apply(
        &self,
        payload: &[u8],
        content_type: Option<&str>,
        p: &mut dyn Pseudonymizer,
    ) -> Result<Outcome, ApplyError> {
        let mut p = FirstRefusal {
            inner: p,
            refused: None,
        };
        let outcome = self.apply_inner(payload, content_type, &mut p)?;
        match p.refused {
            Some(e) => Err(ApplyError::Tokenize(e)),
            None => Ok(outcome),
        }
    }

    fn apply_inner(
        &self,
        payload: &[u8],
        content_type: Option<&str>,
        p: &mut dyn Pseudonymizer,
    ) -> Result<Outcome, ApplyError> {
        let declared_json = content_type.is_some_and(|c| c.contains("json"));
        let first = payload.iter().find(|b| !b.is_ascii_whitespace()).copied();
        let mut audit = Audit::new();
        if declared_json || matches!(first, Some(b'{') | Some(b'[')) {
            match serde_json::from_slice::<Value>(payload) {
                Ok(mut doc) => {
                    let mut path = Vec::new();
                    if self.walk(&mut doc, &mut path, "", p, &mut audit) == Walk::Drop {
                        doc = Value::Null;
                    }
                    let out = serde_json::to_vec(&doc).expect("a Value serialises");
                    return Ok(Outcome {
                        payload: out,
                        audit,
                    });
                }
                Err(e) if declared_json => return Err(ApplyError::BadJson(e.to_string())),
                Err(_) => {} // text that happens to start with a brace
            }
        }
        let text = std::str::from_utf8(payload).map_err(|_| ApplyError::Binary)?;
        let out = self.scan_text(text, "", p, &mut audit);
        Ok(Outcome {
            payload: out.into_bytes(),
            audit,
        })
    }

    fn op_for(&self, k: EntityKind) -> &Operator {
        self.ops.get(&k).unwrap_or(&self.default_op)
    }

    /// Finds and rewrites every entity in `text`.
    fn scan_text(
        &self,
        text: &str,
        key: &str,
        p: &mut dyn Pseudonymizer,
        audit: &mut Audit,
    ) -> String {
        if !self.scan {
            return text.to_owned();
        }
        let found = self.detector.detect_in_field(text, key);
        if found.is_empty() {
            return text.to_owned();
        }
        let mut out = String::with_capacity(text.len());
        let mut last = 0;
        for m in found {
            out.push_str(&text[last..m.start]);
            self.op_for(m.kind)
                .push_text(Some(m.kind), &text[m.start..m.end], p, &mut out);
            count(audit, m.kind.as_str());
            last = m.end;
        }
        out.push_str(&text[last..]);
        out
    }

    fn rule_for(&self, path: &[PathItem]) -> Option<&Rule> {
        self.rules.iter().find(|r| {
            r.path.len() == path.len()
                && r.path
                    .iter()
                    .zip(path)
                    .all(|(seg, item)| match (seg, item) {
                        (Seg::Key(k), PathItem::Key(n)) => k == n,
                        (Seg::AnyKey, PathItem::Key(_)) => true,
                        (Seg::Index(i), PathItem::Index(n)) => i == n,
                        (Seg::AnyIndex, PathItem::Index(_)) => true,
                        _ => false,
                    })
        })
    }

    fn walk(
        &self,
        v: &mut Value,
        path: &mut Vec<PathItem>,
        key: &str,
        p: &mut dyn Pseudonymizer,
        audit: &mut Audit,
    ) -> Walk {
        if !path.is_empty()
            && let Some(rule) = self.rule_for(path)
        {
            return apply_rule(rule, &self.detector, v, p, audit);
        }
        if path.len() >= DEPTH_MAX {
            return Walk::Keep;
        }
        match v {
            Value::String(s) => {
                let out = self.scan_text(s, key, p, audit);
                if out != *s {
                    *s = out;
                }
            }
            Value::Number(n) if self.scan && numeric_pii_key(key) => {
                // A phone or card number stored as a JSON number: scanned as
                // text; a match becomes a string, so the JSON stays valid.
                let text = n.to_string();
                let out = self.scan_text(&text, key, p, audit);
                if out != text {
                    *v = Value::String(out);
                }
            }
            Value::Array(items) => {
                let mut i = 0;
                let mut index = 0;
                while i < items.len() {
                    path.push(PathItem::Index(index));
                    let w = self.walk(&mut items[i], path, key, p, audit);
                    path.pop();
                    if w == Walk::Drop {
                        items.remove(i);
                    } else {
                        i += 1;
                    }
                    index += 1;
                }
            }
            Value::Object(map) => {
                let keys: Vec<String> = map.keys().cloned().collect();
                for k in keys {
                    path.push(PathItem::Key(k.clone()));
                    let child = map.get_mut(&k).expect("key listed");
                    let w = self.walk(child, path, &k, p, audit);
                    path.pop();
                    if w == Walk::Drop {
                        map.remove(&k);
                    }
                }
            }
            _ => {}
        }
        Walk::Keep
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum PathItem {
    Key(String),
    Index(usize),
}

#[derive(Debug, PartialEq, Eq)]
enum Walk {
    Keep,
    Drop,
}

/// JSON keys under which a number is likely a phone or card number.
fn numeric_pii_key(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    [
        "phone", "tel", "mobile", "fax", "msisdn", "card", "pan", "ssn",
    ]
    .iter()
    .any(|w| k.contains(w))
}

fn apply_rule(
    rule: &Rule,
    detector: &Detector,
    v: &mut Value,
    p: &mut dyn Pseudonymizer,
    audit: &mut Audit,
) -> Walk {
    if rule.op == Operator::Keep {
        return Walk::Keep;
    }
    let text = match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(_) | Value::Null => None,
        _ => None,
    };
    let kind = rule
        .entity
        .or_else(|| text.as_deref().and_then(|t| guess(detector, t)));
    if v.is_null() {
        return Walk::Keep; // nothing there to protect
    }
    count(audit, kind.map_or("FIELD", EntityKind::as_str));
    match &rule.op {
        Operator::Drop => return Walk::Drop,
        Operator::Redact => {
            *v = if v.is_string() {
                Value::String(String::new())
            } else {
                Value::Null
            };
            return Walk::Keep;
        }
        Operator::Generalize { decimals, band, .. } if !v.is_string() => {
            // Numbers and structures of numbers (a position) stay numbers.
            generalize_numbers(v, *decimals, *band);
            return Walk::Keep;
        }
        _ => {}
    }
    match text {
        Some(t) => {
            *v = match rule.op.apply_text(kind, &t, p) {
                Some(s) => Value::String(s),
                None => Value::String(String::new()),
            }
        }
        // An object or array under a text operator: every leaf goes.
        None => {
            *v = Value::String(rule.op.apply_text(kind, "", p).unwrap_or_default());
        }
    }
    Walk::Keep
}

fn generalize_numbers(v: &mut Value, decimals: Option<u32>, band: Option<u32>) {
    match v {
        Value::Number(n) => {
            let Some(x) = n.as_f64() else { return };
            if let Some(b) = band {
                *v = Value::String(crate::operator::band_of(x, b));
            } else {
                let f = 10f64.powi(decimals.unwrap_or(2) as i32);
                if let Some(r) = serde_json::Number::from_f64((x * f).round() / f) {
                    *v = Value::Number(r);
                }
            }
        }
        Value::Array(items) => items
            .iter_mut()
            .for_each(|i| generalize_numbers(i, decimals, band)),
        Value::Object(map) => map
            .values_mut()
            .for_each(|i| generalize_numbers(i, decimals, band)),
        _ => {}
    }
}

/// Passes pseudonyms and tokens through, and remembers the first token the
/// host refused, so that one refusal fails the whole message instead of
/// letting a half-protected record out.
struct FirstRefusal<'a> {
    inner: &'a mut dyn Pseudonymizer,
    refused: Option<String>,
}

impl Pseudonymizer for FirstRefusal<'_> {
    fn pseudonymize(&mut self, domain: &str, value: &str) -> String {
        self.inner.pseudonymize(domain, value)
    }

    fn tokenize(&mut self, domain: &str, value: &str) -> Result<String, String> {
        let r = self.inner.tokenize(domain, value);
        if let Err(e) = &r {
            self.refused.get_or_insert_with(|| e.clone());
        }
        r
    }
}
