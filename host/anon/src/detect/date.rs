//! Dates: ISO `2024-03-15` (or with '/'), day-first and month-first
//! numeric dates with '/', '.' or '-' (`15/03/2024`, `03/15/2024`), and
//! written dates (`12 March 1990`, `Mar 12, 1990`), each checked against
//! the calendar, years 1900-2099. A date that is part of a timestamp
//! (`2024-03-15T10:00:00Z`, `2024-03-15 10:00`) is not personal data and is
//! left alone. With a birth context word before it (or a JSON key such as
//! `dob`), a date is a date of birth.

use super::{Ctx, Cursor};
use crate::entity::{EntityKind, Match};
use crate::text::{has_context, left_boundary, number, right_boundary};

const BIRTH: &[&str] = &[
    "born", "birth", "dob", "d.o.b", "birthday", "geboren", "né", "née",
];

const MONTHS: [&str; 12] = [
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
];

pub fn valid(y: u32, m: u32, d: u32) -> bool {
    if !(1900..=2099).contains(&y) || !(1..=12).contains(&m) || d == 0 {
        return false;
    }
    let leap = (y.is_multiple_of(4) && !y.is_multiple_of(100)) || y.is_multiple_of(400);
    let days = [
        31,
        if leap { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    d <= days[m as usize - 1]
}

/// The first three letters of each month, lower case, packed as
/// [`head_key`] packs them.
const MONTH_KEYS: [u32; 12] = {
    let mut k = [0u32; 12];
    let mut m = 0;
    while m < 12 {
        let b = MONTHS[m].as_bytes();
        k[m] = b[0] as u32 | (b[1] as u32) << 8 | (b[2] as u32) << 16;
        m += 1;
    }
    k
};

/// Three bytes folded to lower case and packed into one word. Setting
/// bit 5 turns an upper-case ASCII letter into its lower-case one and
/// every other byte into something that is not a lower-case letter, so the
/// key equals a month's only when the bytes spell it, in any case.
fn head_key(h: &[u8]) -> u32 {
    (h[0] | 0x20) as u32 | ((h[1] | 0x20) as u32) << 8 | ((h[2] | 0x20) as u32) << 16
}

/// A month name or its three-letter abbreviation at `i`: (month, end).
/// Called at every word of a text, so it compares one packed word against
/// twelve and allocates nothing: the first three letters pick the only
/// month it can be.
fn month_name(s: &[u8], i: usize) -> Option<(u32, usize)> {
    let head = s.get(i..i + 3)?;
    let key = head_key(head);
    let p = MONTH_KEYS.iter().position(|m| *m == key)?;
    let mut j = i + 3;
    while j < s.len() && s[j].is_ascii_alphabetic() {
        j += 1;
    }
    let word = &s[i..j];
    let month = MONTHS[p].as_bytes();
    let named = word.len() == 3
        || word.eq_ignore_ascii_case(month)
        || (p == 8 && word.eq_ignore_ascii_case(b"sept"));
    named.then(|| {
        let end = if j < s.len() && s[j] == b'.' {
            j + 1
        } else {
            j
        };
        (p as u32 + 1, end)
    })
}

fn digits_at(s: &[u8], i: usize, min: usize, max: usize) -> Option<(u32, usize)> {
    let mut j = i;
    while j < s.len() && j - i < max && s[j].is_ascii_digit() {
        j += 1;
    }
    if j - i < min || (j < s.len() && s[j].is_ascii_digit()) {
        return None;
    }
    Some((number(&s[i..j])?, j))
}

/// A time right after a date makes it a timestamp.
fn followed_by_time(s: &[u8], end: usize) -> bool {
    let rest = &s[end..];
    let t = match rest.first() {
        Some(b'T') | Some(b't') => &rest[1..],
        Some(b' ') => &rest[1..],
        _ => return false,
    };
    t.len() >= 5
        && t[0].is_ascii_digit()
        && t[1].is_ascii_digit()
        && t[2] == b':'
        && t[3].is_ascii_digit()
}

/// Parses a date starting at `i`: (year, month, day, end).
fn parse_at(s: &[u8], i: usize) -> Option<(u32, u32, u32, usize)> {
    if s[i].is_ascii_digit() {
        // ISO: yyyy-mm-dd or yyyy/mm/dd.
        if let Some((y, j)) = digits_at(s, i, 4, 4)
            && j < s.len()
            && matches!(s[j], b'-' | b'/')
        {
            let sep = s[j];
            let (m, k) = digits_at(s, j + 1, 1, 2)?;
            if k < s.len() && s[k] == sep {
                let (d, e) = digits_at(s, k + 1, 1, 2)?;
                return valid(y, m, d).then_some((y, m, d, e));
            }
            return None;
        }
        // Numeric dd/mm/yyyy or mm/dd/yyyy (either reading valid).
        let (a, j) = digits_at(s, i, 1, 2)?;
        if j < s.len() && matches!(s[j], b'/' | b'.' | b'-') {
            let sep = s[j];
            let (b, k) = digits_at(s, j + 1, 1, 2)?;
            if k < s.len() && s[k] == sep {
                let (y, e) = digits_at(s, k + 1, 4, 4)?;
                if valid(y, b, a) {
                    return Some((y, b, a, e));
                }
                if valid(y, a, b) {
                    return Some((y, a, b, e));
                }
            }
            return None;
        }
        // Written: 12 March 1990, 12 Mar. 1990.
        if j < s.len() && s[j] == b' ' {
            let (m, k) = month_name(s, j + 1)?;
            let k = if k < s.len() && s[k] == b',' {
                k + 1
            } else {
                k
            };
            if k < s.len() && s[k] == b' ' {
                let (y, e) = digits_at(s, k + 1, 4, 4)?;
                return valid(y, m, a).then_some((y, m, a, e));
            }
        }
        return None;
    }
    // Written: March 12, 1990 / Mar 12 1990.
    let (m, j) = month_name(s, i)?;
    if j < s.len() && s[j] == b' ' {
        let (d, k) = digits_at(s, j + 1, 1, 2)?;
        let k = if k + 1 < s.len()
            && (s[k] == b',' || s.get(k..k + 2) == Some(b"st") || s.get(k..k + 2) == Some(b"th"))
        {
            if s[k] == b',' { k + 1 } else { k + 2 }
        } else {
            k
        };
        if k < s.len() && s[k] == b' ' {
            let (y, e) = digits_at(s, k + 1, 4, 4)?;
            return valid(y, m, d).then_some((y, m, d, e));
        }
    }
    None
}

pub(super) fn find(s: &[u8], ctx: &Ctx, out: &mut Vec<Match>) {
    let mut i = 0;
    let mut starts = Cursor::new(ctx.starts);
    while let Some(c) = starts.at_or_after(i) {
        i = c;
        if !(s[i].is_ascii_alphanumeric()) || !left_boundary(s, i, b"-/.:") {
            i += 1;
            continue;
        }
        match parse_at(s, i) {
            Some((_, _, _, end)) if right_boundary(s, end, b"-/:") && !followed_by_time(s, end) => {
                let birth = has_context(s, i, 40, BIRTH, ctx.key);
                out.push(Match {
                    kind: if birth {
                        EntityKind::DateOfBirth
                    } else {
                        EntityKind::Date
                    },
                    start: i,
                    end,
                    confidence: if birth { 0.85 } else { 0.6 },
                });
                i = end;
            }
            _ => {
                // Skip the rest of this word or number.
                let alpha = s[i].is_ascii_alphabetic();
                while i < s.len()
                    && (if alpha {
                        s[i].is_ascii_alphabetic()
                    } else {
                        s[i].is_ascii_digit()
                    })
                {
                    i += 1;
                }
            }
        }
    }
}

/// (year, month, day) of a date this module recognises, for `generalize`.
pub fn parse(text: &str) -> Option<(u32, u32, u32)> {
    let s = text.as_bytes();
    if s.is_empty() {
        return None;
    }
    parse_at(s, 0)
        .filter(|r| r.3 == s.len())
        .map(|(y, m, d, _)| (y, m, d))
}
