//! National identifiers with their validity rules. US SSN: `AAA-GG-SSSS`
//! (or with spaces), area not 000, 666 or 900-999, group not 00, serial not
//! 0000, and not the famous invalid ones; nine bare digits only with an
//! `ssn` context. UK NINO: two prefix letters from the allowed set (not
//! D, F, I, Q, U, V; second not O; not BG, GB, KN, NK, NT, TN, ZZ), six
//! digits, and a suffix A-D, optionally spaced in pairs.

use super::{Ctx, Cursor};
use crate::entity::{EntityKind, Match};
use crate::text::{has_context, left_boundary, number, right_boundary};

const SSN_CONTEXT: &[&str] = &["ssn", "social security", "ss#", "ss #"];

fn ssn_ok(area: u32, group: u32, serial: u32) -> bool {
    area != 0
        && area != 666
        && area < 900
        && group != 0
        && serial != 0
        // Published in advertising and never issued.
        && !matches!((area, group, serial), (78, 5, 1120) | (219, 9, 9999))
}

pub(super) fn find_ssn(s: &[u8], ctx: &Ctx, out: &mut Vec<Match>) {
    let mut i = 0;
    let mut starts = Cursor::new(ctx.number_starts);
    while let Some(c) = starts.at_or_after(i) {
        i = c;
        if i + 9 > s.len() {
            break;
        }
        if !s[i].is_ascii_digit() || !left_boundary(s, i, b"-.") {
            i += 1;
            continue;
        }
        let sep = s.get(i + 3).copied();
        let (end, parts) = match sep {
            Some(b'-') | Some(b' ') if i + 11 <= s.len() && s[i + 6] == sep.unwrap() => {
                (i + 11, (&s[i..i + 3], &s[i + 4..i + 6], &s[i + 7..i + 11]))
            }
            _ if s[i..i + 9].iter().all(u8::is_ascii_digit)
                && has_context(s, i, 30, SSN_CONTEXT, ctx.key) =>
            {
                (i + 9, (&s[i..i + 3], &s[i + 3..i + 5], &s[i + 5..i + 9]))
            }
            _ => {
                i += 1;
                continue;
            }
        };
        let valid = match (number(parts.0), number(parts.1), number(parts.2)) {
            (Some(a), Some(g), Some(n)) => {
                parts.0.len() == 3 && parts.1.len() == 2 && parts.2.len() == 4 && ssn_ok(a, g, n)
            }
            _ => false,
        };
        if valid && right_boundary(s, end, b"-") {
            let confidence = if has_context(s, i, 30, SSN_CONTEXT, ctx.key) {
                0.95
            } else {
                0.85
            };
            out.push(Match {
                kind: EntityKind::UsSsn,
                start: i,
                end,
                confidence,
            });
            i = end;
        } else {
            i += 1;
        }
    }
}

fn nino_prefix_ok(a: u8, b: u8) -> bool {
    let bad_first = b"DFIQUV";
    let bad_second = b"DFIQUVO";
    let banned: [&[u8; 2]; 7] = [b"BG", b"GB", b"KN", b"NK", b"NT", b"TN", b"ZZ"];
    a.is_ascii_uppercase()
        && b.is_ascii_uppercase()
        && !bad_first.contains(&a)
        && !bad_second.contains(&b)
        && !banned.iter().any(|p| p[0] == a && p[1] == b)
}

pub(super) fn find_nino(s: &[u8], ctx: &Ctx, out: &mut Vec<Match>) {
    let mut i = 0;
    let mut starts = Cursor::new(ctx.starts);
    while let Some(c) = starts.at_or_after(i) {
        i = c;
        if i + 9 > s.len() {
            break;
        }
        if !(s[i].is_ascii_uppercase()
            && nino_prefix_ok(s[i], s[i + 1])
            && left_boundary(s, i, b""))
        {
            i += 1;
            continue;
        }
        // Two letters, then three pairs of digits and the suffix, with
        // either no spaces or a space before each pair and the suffix.
        let spaced = s.get(i + 2) == Some(&b' ');
        let mut j = i + 2;
        let mut ok = true;
        for _ in 0..3 {
            if spaced {
                if s.get(j) != Some(&b' ') {
                    ok = false;
                    break;
                }
                j += 1;
            }
            if !(j + 2 <= s.len() && s[j].is_ascii_digit() && s[j + 1].is_ascii_digit()) {
                ok = false;
                break;
            }
            j += 2;
        }
        if ok && spaced {
            ok = s.get(j) == Some(&b' ');
            j += 1;
        }
        if ok && j < s.len() && matches!(s[j], b'A'..=b'D') && right_boundary(s, j + 1, b"") {
            out.push(Match {
                kind: EntityKind::UkNino,
                start: i,
                end: j + 1,
                confidence: 0.9,
            });
            i = j + 1;
        } else {
            i += 1;
        }
    }
}
