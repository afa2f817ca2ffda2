//! GPS coordinates: a latitude and a longitude in decimal degrees with at
//! least three decimals each (so `1.5, 2.5` is not a place), within range,
//! separated by a comma and/or space, optionally with `°` and N/S/E/W.

use super::{Ctx, Cursor};
use crate::entity::{EntityKind, Match};
use crate::text::left_boundary;

/// A decimal number at `i` with at least `decimals_min` decimals: (value, end).
pub(crate) fn decimal(s: &[u8], i: usize, decimals_min: usize) -> Option<(f64, usize)> {
    let mut j = i;
    if j < s.len() && matches!(s[j], b'-' | b'+') {
        j += 1;
    }
    let int_start = j;
    while j < s.len() && s[j].is_ascii_digit() && j - int_start < 3 {
        j += 1;
    }
    if j == int_start || j >= s.len() || s[j] != b'.' || (j < s.len() && s[j].is_ascii_digit()) {
        return None;
    }
    j += 1;
    let frac = j;
    while j < s.len() && s[j].is_ascii_digit() {
        j += 1;
    }
    if j - frac < decimals_min {
        return None;
    }
    let v: f64 = std::str::from_utf8(&s[i..j]).ok()?.parse().ok()?;
    Some((v, j))
}

/// Skips `°` and a hemisphere letter: (sign, end).
fn hemisphere(s: &[u8], mut j: usize, letters: &[u8; 2]) -> (f64, usize) {
    if s[j..].starts_with("°".as_bytes()) {
        j += "°".len();
    }
    let k = if j < s.len() && s[j] == b' ' {
        j + 1
    } else {
        j
    };
    if k < s.len()
        && letters.contains(&s[k])
        && (k + 1 >= s.len() || !s[k + 1].is_ascii_alphanumeric())
    {
        return (if s[k] == letters[1] { -1.0 } else { 1.0 }, k + 1);
    }
    (1.0, j)
}

pub(super) fn find(s: &[u8], ctx: &Ctx, out: &mut Vec<Match>) {
    let mut i = 0;
    let mut starts = Cursor::new(ctx.number_starts);
    while let Some(c) = starts.at_or_after(i) {
        i = c;
        if !(s[i].is_ascii_digit() || s[i] == b'-') || !left_boundary(s, i, b".") {
            i += 1;
            continue;
        }
        let Some((lat, j)) = decimal(s, i, 3) else {
            i += 1;
            continue;
        };
        let (lat_sign, j) = hemisphere(s, j, b"NS");
        let mut k = j;
        if k < s.len() && s[k] == b',' {
            k += 1;
        }
        while k < s.len() && s[k] == b' ' {
            k += 1;
        }
        if k == j {
            i = j;
            continue;
        }
        if let Some((lon, e)) = decimal(s, k, 3) {
            let (lon_sign, e) = hemisphere(s, e, b"EW");
            let (lat, lon) = (lat * lat_sign, lon * lon_sign);
            if (-90.0..=90.0).contains(&lat)
                && (-180.0..=180.0).contains(&lon)
                && (e >= s.len() || !s[e].is_ascii_digit())
            {
                out.push(Match {
                    kind: EntityKind::Gps,
                    start: i,
                    end: e,
                    confidence: 0.8,
                });
                i = e;
                continue;
            }
        }
        i = j;
    }
}
