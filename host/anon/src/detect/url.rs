//! URLs: `http://`, `https://` or `www.` up to the next space or quote,
//! without the punctuation that ends a sentence.

use super::{Ctx, Cursor};
use crate::entity::{EntityKind, Match};
use crate::text::left_boundary;

fn url_byte(b: u8) -> bool {
    b > b' '
        && b < 0x7f
        && !matches!(
            b,
            b'"' | b'<' | b'>' | b'\\' | b'^' | b'`' | b'{' | b'|' | b'}'
        )
}

pub(super) fn find(s: &[u8], ctx: &Ctx, out: &mut Vec<Match>) {
    let mut i = 0;
    let mut starts = Cursor::new(ctx.starts);
    while let Some(c) = starts.at_or_after(i) {
        i = c;
        if !matches!(s[i] | 0x20, b'h' | b'w') {
            continue;
        }
        let rest = &s[i..];
        let prefix = if rest.len() >= 8 && rest[..8].eq_ignore_ascii_case(b"https://") {
            8
        } else if rest.len() >= 7 && rest[..7].eq_ignore_ascii_case(b"http://") {
            7
        } else if rest.len() >= 4 && rest[..4].eq_ignore_ascii_case(b"www.") {
            4
        } else {
            i += 1;
            continue;
        };
        if !left_boundary(s, i, &[]) {
            i += 1;
            continue;
        }
        let mut end = i + prefix;
        while end < s.len() && url_byte(s[end]) {
            end += 1;
        }
        while end > i + prefix
            && matches!(
                s[end - 1],
                b'.' | b',' | b';' | b':' | b'!' | b'?' | b')' | b']' | b'\''
            )
        {
            end -= 1;
        }
        let host_end = s[i + prefix..end]
            .iter()
            .position(|&b| matches!(b, b'/' | b'?' | b'#' | b':'))
            .map_or(end, |p| i + prefix + p);
        let host = &s[i + prefix..host_end];
        let host_ok = (host.contains(&b'.') || host.eq_ignore_ascii_case(b"localhost"))
            && host
                .iter()
                .all(|&b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-'))
            && !host.starts_with(b".")
            && !host.ends_with(b".");
        if host_ok {
            out.push(Match {
                kind: EntityKind::Url,
                start: i,
                end,
                confidence: 0.85,
            });
        }
        i = end.max(i + 1);
    }
}
