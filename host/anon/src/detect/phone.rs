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

/// Where a candidate from `i` may end: after each of its digit groups that
/// brings it to 7 digits or more, up to the 15 a phone number has at most,
/// with whether a separator came before; and the run's end if the whole
/// run is a candidate (7 to 15 digits). The group ends let a number be found
/// that is followed by more digits (`+44 20 7946 0958 (202) 555-0143`).
fn candidate_ends(s: &[u8], i: usize) -> (Ends, Option<usize>) {
    let mut ends = Ends::default();
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
            if digits > 15 {
                return (ends, None);
            }
            if digits >= 7 && !s.get(j).is_some_and(u8::is_ascii_digit) {
                ends.push((end, separated));
            }
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
    }
    (ends, (7..=15).contains(&digits).then_some(end))
}

/// The ends [`candidate_ends`] finds, on the stack: a candidate holds at
/// most 15 digits, so at most 9 of its group ends (those after 7 digits
/// or more) are kept.
#[derive(Default)]
struct Ends {
    at: [(u32, bool); 9],
    n: usize,
}

impl Ends {
    fn push(&mut self, (end, separated): (usize, bool)) {
        if self.n < self.at.len() {
            self.at[self.n] = (end as u32, separated);
            self.n += 1;
        }
    }

    /// Longest first.
    fn longest_first(&self) -> impl Iterator<Item = (usize, bool)> + '_ {
        self.at[..self.n]
            .iter()
            .rev()
            .map(|&(end, separated)| (end as usize, separated))
    }
}

fn valid(text: &str, plans: &Plans) -> bool {
    // A candidate holds at most 15 digits: they are gathered on the stack.
    let mut buf = [0u8; 16];
    let mut n = 0;
    for b in text.bytes().filter(u8::is_ascii_digit) {
        if n == buf.len() {
            return false;
        }
        buf[n] = b;
        n += 1;
    }
    let Ok(digits) = std::str::from_utf8(&buf[..n]) else {
        return false;
    };
    if text.starts_with('+') {
        return plans.is_valid_international(digits);
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
                10 => digits,
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
        // The longest candidate that is a number wins.
        let (ends, whole) = candidate_ends(s, i);
        let mut context = None;
        let found = ends
            .longest_first()
            .find_map(|(end, separated)| phone_at(s, ctx, i, end, separated, &mut context));
        if let Some(m) = found {
            i = m.end;
            out.push(m);
            continue;
        }
        match whole {
            // A run that is no number: its tail is not retried (the tail of
            // a bad IBAN or an id may look like a national number).
            Some(end) => i = end,
            // Too long a run: the next digit group may begin one.
            None => {
                i += 1;
                while i < s.len() && s[i].is_ascii_digit() {
                    i += 1;
                }
            }
        }
    }
}

/// The phone number `s[i..end]` is, if it is one; `context` is whether a
/// context word comes before `i`, looked up once for all of `i`'s ends.
fn phone_at(
    s: &[u8],
    ctx: &Ctx,
    i: usize,
    end: usize,
    separated: bool,
    context: &mut Option<bool>,
) -> Option<Match> {
    // A '(' that closes only after the number wraps it, it is not an
    // area code: "(030 1234567)".
    let start = if s[i] == b'(' && !s[i..end].contains(&b')') {
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
    let context =
        after_ok && *context.get_or_insert_with(|| has_context(s, i, 30, CONTEXT, ctx.key));
    if !(after_ok && (separated || context)) {
        return None;
    }
    let text = std::str::from_utf8(&s[start..end]).unwrap_or("");
    (super::date::parse(text).is_none() && valid(text, ctx.plans)).then_some(Match {
        kind: EntityKind::Phone,
        start,
        end,
        confidence: if context { 0.95 } else { 0.75 },
    })
}
