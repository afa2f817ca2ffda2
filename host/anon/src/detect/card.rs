//! Payment card numbers: 12 to 19 digits, in groups separated by one
//! consistent space or dash, that pass the Luhn check and fall in an
//! issuer's range with a length that issuer uses. A Luhn-valid number
//! outside every issuer range (an order number, say) is not a card.

use super::{Ctx, Cursor};
use crate::entity::{EntityKind, Match};
use crate::text::{has_context, left_boundary, right_boundary};

const CONTEXT: &[&str] = &[
    "card",
    "visa",
    "mastercard",
    "amex",
    "credit",
    "debit",
    "cc",
    "pan",
];

/// The Luhn sum of `digits` (the check digit last): valid when a multiple of 10.
pub(crate) fn luhn_sum(digits: &[u8]) -> u32 {
    digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &d)| {
            let d = u32::from(d);
            if i % 2 == 1 {
                let x = d * 2;
                if x > 9 { x - 9 } else { x }
            } else {
                d
            }
        })
        .sum()
}

pub fn luhn_ok(digits: &[u8]) -> bool {
    luhn_sum(digits).is_multiple_of(10)
}

/// Whether the digits start like a card of an issuer that uses this length.
pub fn issuer_ok(d: &[u8]) -> bool {
    let prefix = |n: usize| d.iter().take(n).fold(0u32, |a, &x| a * 10 + u32::from(x));
    let len = d.len();
    let (p1, p2, p3, p4) = (prefix(1), prefix(2), prefix(3), prefix(4));
    match p1 {
        4 => matches!(len, 13 | 16 | 19), // Visa
        5 => {
            (51..=55).contains(&p2) && len == 16
                || matches!(p2, 50 | 56..=58) && (12..=19).contains(&len)
        } // Mastercard, Maestro
        2 => (2221..=2720).contains(&p4) && len == 16, // Mastercard 2-series
        3 => {
            (matches!(p2, 34 | 37) && len == 15)                           // Amex
                || ((300..=305).contains(&p3) || p2 == 36 || p2 == 38 || p2 == 39) && (14..=19).contains(&len) // Diners
                || (3528..=3589).contains(&p4) && (16..=19).contains(&len) // JCB
        }
        6 => {
            (p4 == 6011 || (644..=649).contains(&p3) || p2 == 65) && (16..=19).contains(&len) // Discover
                || p2 == 62 && (16..=19).contains(&len)                    // UnionPay
                || matches!(p2, 60 | 63 | 67) && (12..=19).contains(&len) // Maestro
        }
        _ => false,
    }
}

/// The digits of a run, on the stack: a card has at most 19, and one more
/// is read to tell a longer run.
struct Digits {
    d: [u8; 20],
    n: usize,
}

impl std::ops::Deref for Digits {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.d[..self.n]
    }
}

/// Scans a run of digit groups from `i`, up to 20 digits: returns the end
/// and the digits. Separators must be a single space or dash, the same
/// throughout.
fn digit_run(s: &[u8], i: usize) -> (usize, Digits) {
    let mut digits = Digits { d: [0; 20], n: 0 };
    let mut sep: Option<u8> = None;
    let mut j = i;
    let mut end = i;
    while j < s.len() && digits.n < digits.d.len() {
        let b = s[j];
        if b.is_ascii_digit() {
            digits.d[digits.n] = b - b'0';
            digits.n += 1;
            j += 1;
            end = j;
        } else if matches!(b, b' ' | b'-')
            && j + 1 < s.len()
            && s[j + 1].is_ascii_digit()
            && sep.is_none_or(|x| x == b)
        {
            sep = Some(b);
            j += 1;
        } else {
            break;
        }
    }
    (end, digits)
}

/// Whether space-separated digit groups are grouped as cards are printed:
/// 4-4-4-4, 4-4-4-4-3 (19 digits), 4-6-5 (Amex), 4-6-4 (Diners).
fn printed(run: &[u8]) -> bool {
    let mut groups = [0usize; 6];
    let mut n = 0;
    for g in run.split(|&b| b == b' ') {
        if n == groups.len() {
            return false;
        }
        groups[n] = g.len();
        n += 1;
    }
    matches!(
        &groups[..n],
        [4, 4, 4, 4] | [4, 4, 4, 4, 3] | [4, 6, 5] | [4, 6, 4]
    )
}

pub(super) fn find(s: &[u8], ctx: &Ctx, out: &mut Vec<Match>) {
    let mut i = 0;
    let mut starts = Cursor::new(ctx.number_starts);
    while let Some(c) = starts.at_or_after(i) {
        i = c;
        if !s[i].is_ascii_digit() || !left_boundary(s, i, b"-.,") {
            i += 1;
            continue;
        }
        let (run_end, digits) = digit_run(s, i);
        // The whole run, or, when its groups are separated by spaces, the
        // longest run of its first groups that is a card: a card written
        // after or before another number ("1990 4111 1111 1111 1111"). A
        // card cut out of a longer run must be grouped the way cards are
        // printed, so that long spaced numbers do not yield one by chance.
        let spaced = digits.len() >= 12 && s[i..run_end].contains(&b' ');
        let inside = i >= 2 && s[i - 1] == b' ' && s[i - 2].is_ascii_digit();
        let shorter = (i..if spaced { run_end } else { i })
            .rev()
            .filter(|&j| s[j] == b' ')
            .map(|j| (j, s[i..j].iter().filter(|b| b.is_ascii_digit()).count()));
        let ends = std::iter::once((run_end, digits.len())).chain(shorter);
        let card = ends.enumerate().find_map(|(k, (end, n))| {
            let cut = inside || k > 0;
            ((12..=19).contains(&n)
                && (!cut || printed(&s[i..end]))
                && right_boundary(s, end, b"")
                && !(end < s.len()
                    && matches!(s[end], b'-' | b'.' | b',')
                    && end + 1 < s.len()
                    && s[end + 1].is_ascii_digit())
                && luhn_ok(&digits[..n])
                && issuer_ok(&digits[..n]))
            .then_some(end)
        });
        if let Some(end) = card {
            let confidence = if has_context(s, i, 40, CONTEXT, ctx.key) {
                0.99
            } else {
                0.9
            };
            out.push(Match {
                kind: EntityKind::CreditCard,
                start: i,
                end,
                confidence,
            });
            i = end;
        } else if spaced {
            // The next group may begin one.
            i = s[i..run_end]
                .iter()
                .position(|&b| b == b' ')
                .map_or(run_end, |p| i + p + 1);
        } else {
            i = run_end.max(i + 1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn luhn_and_issuers() {
        let d = |s: &str| crate::text::digits(s.as_bytes());
        assert!(luhn_ok(&d("4111111111111111")) && issuer_ok(&d("4111111111111111")));
        assert!(luhn_ok(&d("378282246310005")) && issuer_ok(&d("378282246310005")));
        assert!(luhn_ok(&d("5555555555554444")) && issuer_ok(&d("5555555555554444")));
        assert!(!luhn_ok(&d("4111111111111112")));
        // Luhn-valid but no issuer starts with 1.
        assert!(luhn_ok(&d("1000000000000008")) && !issuer_ok(&d("1000000000000008")));
    }
}
