//! IBANs: a country code, two check digits and the country's fixed-length
//! account part, optionally in groups of four, passing the ISO 7064 mod-97
//! check.

use super::{Ctx, Cursor};
use crate::entity::{EntityKind, Match};
use crate::text::{left_boundary, right_boundary};

/// IBAN length per country (ISO 13616 registry, the common members).
const LENGTHS: &[(&[u8; 2], usize)] = &[
    (b"AD", 24),
    (b"AE", 23),
    (b"AL", 28),
    (b"AT", 20),
    (b"AZ", 28),
    (b"BA", 20),
    (b"BE", 16),
    (b"BG", 22),
    (b"BH", 22),
    (b"BR", 29),
    (b"CH", 21),
    (b"CR", 22),
    (b"CY", 28),
    (b"CZ", 24),
    (b"DE", 22),
    (b"DK", 18),
    (b"DO", 28),
    (b"EE", 20),
    (b"EG", 29),
    (b"ES", 24),
    (b"FI", 18),
    (b"FO", 18),
    (b"FR", 27),
    (b"GB", 22),
    (b"GE", 22),
    (b"GI", 23),
    (b"GL", 18),
    (b"GR", 27),
    (b"GT", 28),
    (b"HR", 21),
    (b"HU", 28),
    (b"IE", 22),
    (b"IL", 23),
    (b"IS", 26),
    (b"IT", 27),
    (b"JO", 30),
    (b"KW", 30),
    (b"KZ", 20),
    (b"LB", 28),
    (b"LI", 21),
    (b"LT", 20),
    (b"LU", 20),
    (b"LV", 21),
    (b"MC", 27),
    (b"MD", 24),
    (b"ME", 22),
    (b"MK", 19),
    (b"MR", 27),
    (b"MT", 31),
    (b"MU", 30),
    (b"NL", 18),
    (b"NO", 15),
    (b"PK", 24),
    (b"PL", 28),
    (b"PS", 29),
    (b"PT", 25),
    (b"QA", 29),
    (b"RO", 24),
    (b"RS", 22),
    (b"SA", 24),
    (b"SE", 24),
    (b"SI", 19),
    (b"SK", 24),
    (b"SM", 27),
    (b"TN", 24),
    (b"TR", 26),
    (b"UA", 29),
    (b"VG", 24),
    (b"XK", 20),
];

pub fn mod97_ok(iban: &[u8]) -> bool {
    // Move the first four characters to the end, letters to 10..35.
    let mut rem: u32 = 0;
    for &b in iban[4..].iter().chain(&iban[..4]) {
        let v = match b {
            b'0'..=b'9' => u32::from(b - b'0'),
            b'A'..=b'Z' => u32::from(b - b'A') + 10,
            _ => return false,
        };
        rem = if v >= 10 {
            (rem * 100 + v) % 97
        } else {
            (rem * 10 + v) % 97
        };
    }
    rem == 1
}

pub(super) fn find(s: &[u8], ctx: &Ctx, out: &mut Vec<Match>) {
    let mut i = 0;
    let mut starts = Cursor::new(ctx.starts);
    while let Some(c) = starts.at_or_after(i) {
        i = c;
        if i + 15 > s.len() {
            break;
        }
        let head = &s[i..i + 4];
        let starts = head[0].is_ascii_uppercase()
            && head[1].is_ascii_uppercase()
            && head[2].is_ascii_digit()
            && head[3].is_ascii_digit()
            && left_boundary(s, i, b"");
        let len = starts
            .then(|| {
                LENGTHS
                    .iter()
                    .find(|(c, _)| c[..] == head[..2])
                    .map(|(_, l)| *l)
            })
            .flatten();
        let Some(len) = len else {
            i += 1;
            continue;
        };
        // Collect `len` alphanumerics, allowing single spaces between groups.
        let mut chars = Vec::with_capacity(len);
        let mut j = i;
        while j < s.len() && chars.len() < len {
            let b = s[j];
            if b.is_ascii_alphanumeric() {
                chars.push(b.to_ascii_uppercase());
                j += 1;
            } else if b == b' '
                && j + 1 < s.len()
                && s[j + 1].is_ascii_alphanumeric()
                && chars.len() % 4 == 0
            {
                j += 1;
            } else {
                break;
            }
        }
        if chars.len() == len && right_boundary(s, j, b"") && mod97_ok(&chars) {
            out.push(Match {
                kind: EntityKind::Iban,
                start: i,
                end: j,
                confidence: 0.95,
            });
            i = j;
        } else {
            i += 1;
        }
    }
}
