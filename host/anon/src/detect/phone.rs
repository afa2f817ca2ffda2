//! Phone numbers. Candidates are runs of digits with the separators people
//! write (space, '-', '.', '/', parentheses), starting with '+', '(' or a
//! digit, holding 7 to 15 digits; each is validated against
//! libphonenumber's numbering plans (the `phonenumber` crate): as an
//! international number when it starts with '+' or '00', else as a
//! national number of one of the configured regions. A bare run of digits
//! with no separator and no '+' is an order number or a timestamp far more
//! often than a phone: it counts only with a phone context word before it
//! or in the JSON key.

use super::numbering::Plans;
use super::{Ctx, Cursor};
use crate::entity::{EntityKind, Match};
use crate::text::{has_context, left_boundary};

const CONTEXT: &[&str] = &[
    "phone",
    "tel",
    "call",
    "mobile",
    "cell",
    "fax",
    "whatsapp",
    "sms",
    "contact",
    "ruf",
    "téléphone",
    "number",
];

/// Scans a candidate from `i`: its end and its digit count, or `None`.
fn candidate(s: &[u8], i: usize) -> Option<(usize, usize, bool)> {
    let mut j = i;
    let mut digits = 0;
    let mut separated = false;
    let mut open_paren = false;
    if s[j] == b'+' {
        j += 1;
        separated = true;
    }
    let mut end = j;
    while j < s.len() {
        let b = s[j];
        if b.is_ascii_digit() {
            digits += 1;
            j += 1;
            end = j;
        } else if b == b'(' && !open_paren {
            open_paren = true;
            j += 1;
        } else if b == b')' && open_paren {
            open_paren = false;
            separated = true;
            j += 1;
            if j < s.len() && s[j] == b' ' {
                j += 1;
            }
        } else if matches!(b, b' ' | b'-' | b'.' | b'/')
            && j + 1 < s.len()
            && (s[j + 1].is_ascii_digit() || s[j + 1] == b'(')
            && end == j
        {
            separated = true;
            j += 1;
        } else {
            break;
        }
        if digits > 15 {
            return None;
        }
    }
    (7..=15)
        .contains(&digits)
        .then_some((end, digits, separated))
}

fn valid(text: &str, plans: &Plans) -> bool {
    let digits: String = text
        .bytes()
        .filter(u8::is_ascii_digit)
        .map(char::from)
        .collect();
    if text.starts_with('+') {
        return plans.is_valid_international(&digits);
    }
    if text.starts_with("00") {
        return plans.is_valid_international(&digits[2..]);
    }
    // National formats: the trunk prefix (`0` in most of the world), or the
    // ten digits of the North American plan. Anything else is more likely
    // a date, an id or an amount than a phone number.
    plans.national.iter().any(|(region, _, plan)| {
        if matches!(*region, "US" | "CA") {
            let nsn = match digits.len() {
                10 => &digits[..],
                11 if digits.starts_with('1') => &digits[1..],
                _ => return false,
            };
            !nsn.starts_with(['0', '1']) && plan.is_valid(nsn)
        } else {
            plan.national_prefix
                .and_then(|np| digits.strip_prefix(np))
                .is_some_and(|nsn| plan.is_valid(nsn))
        }
    })
}

pub(super) fn find(s: &[u8], ctx: &Ctx, out: &mut Vec<Match>) {
    let mut i = 0;
    let mut starts = Cursor::new(ctx.number_starts);
    while let Some(c) = starts.at_or_after(i) {
        i = c;
        let b = s[i];
        let starts = (b.is_ascii_digit() || b == b'+' || b == b'(') && left_boundary(s, i, b"-./+");
        if !starts {
            i += 1;
            continue;
        }
        let Some((end, _digits, separated)) = candidate(s, i) else {
            // Skip this run of digits so its tail is not retried.
            i += 1;
            while i < s.len() && s[i].is_ascii_digit() {
                i += 1;
            }
            continue;
        };
        // A '(' that closes only after the number wraps it, it is not an
        // area code: "(030 1234567)".
        let start = if b == b'(' && !s[i..end].contains(&b')') {
            i + 1
        } else {
            i
        };
        let after_ok = end >= s.len()
            || !(s[end].is_ascii_alphanumeric()
                || (matches!(s[end], b'.' | b'-' | b'/' | b':')
                    && end + 1 < s.len()
                    && s[end + 1].is_ascii_digit()));
        // Context is only consulted for a candidate that ends cleanly.
        let context = after_ok && has_context(s, i, 30, CONTEXT, ctx.key);
        if after_ok && (separated || context) {
            let text = std::str::from_utf8(&s[start..end]).unwrap_or("");
            if super::date::parse(text).is_none() && valid(text, ctx.plans) {
                out.push(Match {
                    kind: EntityKind::Phone,
                    start,
                    end,
                    confidence: if context { 0.95 } else { 0.75 },
                });
                i = end;
                continue;
            }
        }
        i = end.max(i + 1);
    }
}
