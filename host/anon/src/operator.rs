//! What happens to a piece of personal data once found: the operators of
//! a policy, and how each rewrites a matched value. `pseudonymize` goes
//! through a [`Pseudonymizer`] the caller supplies: in the `anonymise`
//! handler that is the host's keyed HMAC, so the secret never enters the
//! sandbox, and the same input always gives the same output (joins work).
//! `tokenize` is the reversible variant: the host's vault remembers what
//! each token stands for, and only an admin call can look it up.

use serde::Deserialize;

use crate::entity::EntityKind;

/// Computes a stable pseudonym of `value` in `domain`, as 32 lowercase
/// hex characters (the host's `pseudonymize` import), and, where the host
/// has a vault, reversible tokens (its `tokenize` import).
pub trait Pseudonymizer {
    fn pseudonymize(&mut self, domain: &str, value: &str) -> String;

    /// A reversible token of `value` in `domain`. Only the host's vault
    /// issues them; the default refuses, which fails the message.
    fn tokenize(&mut self, _domain: &str, _value: &str) -> Result<String, String> {
        Err("tokenize needs the host's vault".into())
    }
}

impl<F: FnMut(&str, &str) -> String> Pseudonymizer for F {
    fn pseudonymize(&mut self, domain: &str, value: &str) -> String {
        self(domain, value)
    }
}

/// Precision of a generalised date.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DatePart {
    Month,
    Year,
}

/// One operator, as written in a policy: `{"op": "mask", "keep_last": 4}`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Operator {
    /// Remove the value (in text: the span; in JSON: an empty string, or null).
    Redact,
    /// Replace with a tag, `<EMAIL>` by default.
    Replace {
        #[serde(default)]
        with: Option<String>,
    },
    /// Keep the last `keep_last` letters and digits, mask the others with
    /// `char`; separators stay.
    Mask {
        #[serde(default = "four")]
        keep_last: usize,
        #[serde(default = "star")]
        char: char,
    },
    /// A keyed pseudonym; with `format_preserving`, an email stays an
    /// email, a card a Luhn-valid card number, a phone number keeps its
    /// shape, an IPv4 address stays an address.
    Pseudonymize {
        #[serde(default)]
        format_preserving: bool,
        /// Keyed domain (default: the entity kind, so one email gives one
        /// pseudonym in every field).
        #[serde(default)]
        domain: Option<String>,
    },
    /// A reversible token (`tok_…`) from the host's vault: stable like a
    /// pseudonym, and an admin can look up the value behind it.
    Tokenize {
        /// Keyed domain (default: the entity kind).
        #[serde(default)]
        domain: Option<String>,
    },
    /// Coarsen: coordinates to `decimals` (default 2), dates to `to`
    /// (month by default), numbers (ages) into bands of `band`, IPv4 to
    /// its /24 and IPv6 to its /48.
    Generalize {
        #[serde(default)]
        decimals: Option<u32>,
        #[serde(default)]
        to: Option<DatePart>,
        #[serde(default)]
        band: Option<u32>,
    },
    /// Remove the JSON field entirely (in text: like `redact`).
    Drop,
    /// Leave the value as it is (to exempt a field from scanning).
    Keep,
}

fn four() -> usize {
    4
}
fn star() -> char {
    '*'
}

impl Operator {
    /// [`Operator::apply_text`] appended to `out`, without allocating
    /// for a replacement (the common operator of free-text scanning).
    pub fn push_text(
        &self,
        kind: Option<EntityKind>,
        value: &str,
        p: &mut dyn Pseudonymizer,
        out: &mut String,
    ) {
        match self {
            Operator::Replace { with: Some(w) } => out.push_str(w),
            Operator::Replace { with: None } => {
                out.push('<');
                out.push_str(kind.map_or("PII", EntityKind::as_str));
                out.push('>');
            }
            _ => {
                if let Some(r) = self.apply_text(kind, value, p) {
                    out.push_str(&r);
                }
            }
        }
    }

    /// Rewrites `value`, found to be of `kind`. `None` removes it.
    pub fn apply_text(
        &self,
        kind: Option<EntityKind>,
        value: &str,
        p: &mut dyn Pseudonymizer,
    ) -> Option<String> {
        let tag = || format!("<{}>", kind.map_or("PII", EntityKind::as_str));
        Some(match self {
            Operator::Redact | Operator::Drop => return None,
            Operator::Keep => value.to_owned(),
            Operator::Replace { with } => with.clone().unwrap_or_else(tag),
            Operator::Mask { keep_last, char } => mask(value, *keep_last, *char),
            Operator::Pseudonymize {
                format_preserving,
                domain,
            } => {
                let domain = domain
                    .clone()
                    .unwrap_or_else(|| kind.map_or("PII", EntityKind::as_str).to_owned());
                if *format_preserving {
                    preserving(kind, &domain, value, p)
                } else {
                    p.pseudonymize(&domain, value)
                }
            }
            Operator::Tokenize { domain } => {
                let domain = domain
                    .as_deref()
                    .unwrap_or_else(|| kind.map_or("PII", EntityKind::as_str));
                // A refused token fails the message (`Policy::apply` sees
                // the error); the tag is only what a caller who ignores
                // that would get: never the value.
                p.tokenize(domain, value).unwrap_or_else(|_| tag())
            }
            Operator::Generalize { decimals, to, band } => {
                return Some(generalize(kind, value, *decimals, *to, *band).unwrap_or_else(tag));
            }
        })
    }
}

fn mask(value: &str, keep_last: usize, c: char) -> String {
    let total = value.chars().filter(|c| c.is_alphanumeric()).count();
    let mut seen = 0;
    value
        .chars()
        .map(|ch| {
            if ch.is_alphanumeric() {
                seen += 1;
                if seen + keep_last > total { ch } else { c }
            } else {
                ch
            }
        })
        .collect()
}

/// `n` decimal digits drawn from pseudonyms of `value` in `domain`.
fn digits_from(p: &mut dyn Pseudonymizer, domain: &str, value: &str, n: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(n);
    let mut round = 0;
    while out.len() < n {
        let d = if round == 0 {
            domain.to_owned()
        } else {
            format!("{domain}#{round}")
        };
        out.extend(p.pseudonymize(&d, value).bytes().map(|h| match h {
            b'0'..=b'9' => h - b'0',
            _ => (h.to_ascii_lowercase() - b'a' + 10) % 10,
        }));
        round += 1;
    }
    out.truncate(n);
    out
}

fn preserving(
    kind: Option<EntityKind>,
    domain: &str,
    value: &str,
    p: &mut dyn Pseudonymizer,
) -> String {
    match kind {
        Some(EntityKind::Email) => {
            // The host's pseudonyms are hex, 64 digits; another
            // pseudonymizer's are made to fit a local part and a label.
            let h: String = p
                .pseudonymize(domain, value)
                .chars()
                .filter(char::is_ascii_alphanumeric)
                .map(|c| c.to_ascii_lowercase())
                .collect();
            let h: String = if h.is_empty() { "0" } else { h.as_str() }
                .chars()
                .cycle()
                .take(20)
                .collect();
            format!("{}@{}.invalid", &h[..12], &h[12..])
        }
        Some(EntityKind::Phone) | Some(EntityKind::UsSsn) => {
            // Keep '+', the country code's first digits and every separator.
            let keep = if value.starts_with('+') {
                value.find([' ', '-', '.', '(']).unwrap_or(3).min(4)
            } else {
                0
            };
            let count = value[keep..].bytes().filter(u8::is_ascii_digit).count();
            let mut fresh = digits_from(p, domain, value, count).into_iter();
            value[..keep].to_owned()
                + &value[keep..]
                    .chars()
                    .map(|c| {
                        if c.is_ascii_digit() {
                            (b'0' + fresh.next().unwrap_or(0)) as char
                        } else {
                            c
                        }
                    })
                    .collect::<String>()
        }
        Some(EntityKind::CreditCard) => {
            let count = value.bytes().filter(u8::is_ascii_digit).count();
            let mut d = digits_from(p, domain, value, count);
            d[0] = 4; // looks like a Visa number, to keep issuer-range checks happy
            // Fix the check digit so the result still passes Luhn.
            let last = count - 1;
            d[last] = 0;
            let sum = crate::detect::card::luhn_sum(&d);
            d[last] = ((10 - sum % 10) % 10) as u8;
            let mut it = d.into_iter();
            value
                .chars()
                .map(|c| {
                    if c.is_ascii_digit() {
                        (b'0' + it.next().unwrap_or(0)) as char
                    } else {
                        c
                    }
                })
                .collect()
        }
        Some(EntityKind::Ipv4) => {
            let h = p.pseudonymize(domain, value);
            let byte = |i: usize| u8::from_str_radix(&h[i..i + 2], 16).unwrap_or(0);
            format!("10.{}.{}.{}", byte(0), byte(2), byte(4))
        }
        _ => p.pseudonymize(domain, value),
    }
}

/// Rounds every decimal number in `text` to `decimals` places.
fn round_numbers(text: &str, decimals: u32) -> String {
    let s = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < s.len() {
        if let Some((v, end)) = crate::detect::decimal_at(s, i) {
            out.push_str(&format!("{:.*}", decimals as usize, v));
            i = end;
        } else {
            out.push(s[i] as char);
            i += 1;
        }
    }
    out
}

fn generalize(
    kind: Option<EntityKind>,
    value: &str,
    decimals: Option<u32>,
    to: Option<DatePart>,
    band: Option<u32>,
) -> Option<String> {
    match kind {
        Some(EntityKind::Gps) => Some(round_numbers(value, decimals.unwrap_or(2))),
        Some(EntityKind::Date) | Some(EntityKind::DateOfBirth) => {
            let (y, m, _) = crate::detect::parse_date(value)?;
            Some(match to.unwrap_or(DatePart::Month) {
                DatePart::Month => format!("{y:04}-{m:02}"),
                DatePart::Year => format!("{y:04}"),
            })
        }
        Some(EntityKind::Ipv4) => {
            let ip: std::net::Ipv4Addr = value.parse().ok()?;
            let o = ip.octets();
            Some(format!("{}.{}.{}.0/24", o[0], o[1], o[2]))
        }
        Some(EntityKind::Ipv6) => {
            let ip: std::net::Ipv6Addr = value.parse().ok()?;
            let g = ip.segments();
            Some(format!("{:x}:{:x}:{:x}::/48", g[0], g[1], g[2]))
        }
        _ => {
            if let Some(b) = band {
                let n: f64 = value.trim().parse().ok()?;
                return Some(band_of(n, b));
            }
            decimals.map(|d| round_numbers(value, d))
        }
    }
}

/// `37` in bands of 10 is `"30-39"`.
pub fn band_of(n: f64, band: u32) -> String {
    let b = f64::from(band.max(1));
    let lo = (n / b).floor() * b;
    format!("{}-{}", lo as i64, (lo + b) as i64 - 1)
}

/// The kind of a whole value, for operators applied by a JSON rule.
pub fn guess(detector: &crate::detect::Detector, value: &str) -> Option<EntityKind> {
    let found = detector.detect(value);
    match found.as_slice() {
        [m] if m.start == 0 && m.end == value.len() => Some(m.kind),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fake(domain: &str, value: &str) -> String {
        // A stand-in keyed hash: stable, distinct per (domain, value).
        let mut h: u64 = 0xcbf29ce484222325;
        for b in domain.bytes().chain([0]).chain(value.bytes()) {
            h = (h ^ u64::from(b)).wrapping_mul(0x100000001b3);
        }
        format!("{h:016x}{:016x}", h.rotate_left(17) ^ 0x9e3779b97f4a7c15)
    }

    fn run(op: &str, kind: Option<EntityKind>, value: &str) -> Option<String> {
        let op: Operator = serde_json::from_str(op).unwrap();
        op.apply_text(kind, value, &mut fake)
    }

    fn guess(value: &str) -> Option<EntityKind> {
        super::guess(&crate::detect::Detector::default(), value)
    }

    #[test]
    fn each_operator_does_what_it_says() {
        use EntityKind::*;
        assert_eq!(run(r#"{"op":"redact"}"#, Some(Email), "a@b.co"), None);
        assert_eq!(
            run(r#"{"op":"replace"}"#, Some(Email), "a@b.co").unwrap(),
            "<EMAIL>"
        );
        assert_eq!(
            run(
                r#"{"op":"mask","keep_last":4}"#,
                Some(CreditCard),
                "4111 1111 1111 1234"
            )
            .unwrap(),
            "**** **** **** 1234"
        );
        let a = run(r#"{"op":"pseudonymize"}"#, Some(Email), "a@b.co").unwrap();
        assert_eq!(
            a,
            run(r#"{"op":"pseudonymize"}"#, Some(Email), "a@b.co").unwrap()
        );
        assert_ne!(
            a,
            run(r#"{"op":"pseudonymize"}"#, Some(Email), "c@b.co").unwrap()
        );
        let fp = run(
            r#"{"op":"pseudonymize","format_preserving":true}"#,
            Some(Email),
            "a@b.co",
        )
        .unwrap();
        assert_eq!(guess(&fp), Some(Email), "{fp}");
        let card = run(
            r#"{"op":"pseudonymize","format_preserving":true}"#,
            Some(CreditCard),
            "4111 1111 1111 1111",
        )
        .unwrap();
        assert_eq!(guess(&card), Some(CreditCard), "{card}");
        assert_ne!(card, "4111 1111 1111 1111");
        let phone = run(
            r#"{"op":"pseudonymize","format_preserving":true}"#,
            Some(Phone),
            "+44 20 7946 0958",
        )
        .unwrap();
        assert!(phone.starts_with("+44 ") && phone.len() == 16, "{phone}");
        assert_eq!(
            run(
                r#"{"op":"generalize","decimals":2}"#,
                Some(Gps),
                "51.50722, -0.12750"
            )
            .unwrap(),
            "51.51, -0.13"
        );
        assert_eq!(
            run(r#"{"op":"generalize"}"#, Some(Date), "12 March 1990").unwrap(),
            "1990-03"
        );
        assert_eq!(
            run(
                r#"{"op":"generalize","to":"year"}"#,
                Some(DateOfBirth),
                "1990-03-12"
            )
            .unwrap(),
            "1990"
        );
        assert_eq!(
            run(r#"{"op":"generalize"}"#, Some(Ipv4), "192.168.7.42").unwrap(),
            "192.168.7.0/24"
        );
        assert_eq!(
            run(
                r#"{"op":"generalize"}"#,
                Some(Ipv6),
                "2001:db8:85a3::8a2e:370:7334"
            )
            .unwrap(),
            "2001:db8:85a3::/48"
        );
        assert_eq!(
            run(r#"{"op":"generalize","band":10}"#, None, "37").unwrap(),
            "30-39"
        );
        assert_eq!(
            run(r#"{"op":"generalize"}"#, Some(Email), "a@b.co").unwrap(),
            "<EMAIL>",
            "cannot coarsen: replaced, never leaked"
        );
    }
}
