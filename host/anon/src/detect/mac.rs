//! MAC addresses: six pairs of hex digits joined by one consistent ':' or
//! '-', or three groups of four joined by '.' (Cisco style).

use super::{Ctx, Cursor};
use crate::entity::{EntityKind, Match};
use crate::text::{left_boundary, right_boundary};

fn groups(s: &[u8], i: usize, count: usize, width: usize, sep: u8) -> Option<usize> {
    let mut j = i;
    for n in 0..count {
        if j + width > s.len() || !s[j..j + width].iter().all(u8::is_ascii_hexdigit) {
            return None;
        }
        j += width;
        if n + 1 < count {
            if j >= s.len() || s[j] != sep {
                return None;
            }
            j += 1;
        }
    }
    Some(j)
}

pub(super) fn find(s: &[u8], ctx: &Ctx, out: &mut Vec<Match>) {
    let mut i = 0;
    let mut starts = Cursor::new(ctx.starts);
    while let Some(c) = starts.at_or_after(i) {
        i = c;
        // The first separator tells the form (or that there is none):
        // the cheapest test, and the one that rules out nearly every word.
        let form_possible =
            matches!(s.get(i + 2), Some(b':' | b'-')) || s.get(i + 4) == Some(&b'.');
        if !form_possible || !s[i].is_ascii_hexdigit() || !left_boundary(s, i, b":-.") {
            i += 1;
            continue;
        }
        let end = groups(s, i, 6, 2, b':')
            .or_else(|| groups(s, i, 6, 2, b'-'))
            .or_else(|| groups(s, i, 3, 4, b'.'))
            .filter(|&e| {
                right_boundary(s, e, b"")
                    && !(e + 1 < s.len()
                        && matches!(s[e], b':' | b'-' | b'.')
                        && s[e + 1].is_ascii_hexdigit())
            });
        match end {
            Some(e) => {
                out.push(Match {
                    kind: EntityKind::Mac,
                    start: i,
                    end: e,
                    confidence: 0.9,
                });
                i = e;
            }
            None => i += 1,
        }
    }
}
