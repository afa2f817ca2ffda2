//! IP addresses. IPv4: four decimal octets 0-255 without leading zeros, not
//! part of a longer dotted run and not a version number (`v1.2.3.4`,
//! `version 1.2.3.4`). IPv6: what `std::net::Ipv6Addr` accepts, found in
//! runs of hex digits and colons.

use super::{Ctx, Cursor};
use crate::entity::{EntityKind, Match};
use crate::text::{has_context, left_boundary};

const V4_CONTEXT: &[&str] = &[
    "ip", "address", "host", "client", "server", "from", "src", "dst",
];
const VERSION_CONTEXT: &[&str] = &["version", "ver", "release", "build"];

fn octet(s: &[u8], i: usize) -> Option<(u32, usize)> {
    let mut j = i;
    while j < s.len() && j - i < 4 && s[j].is_ascii_digit() {
        j += 1;
    }
    let len = j - i;
    if len == 0 || len > 3 || (len > 1 && s[i] == b'0') {
        return None;
    }
    let v = crate::text::number(&s[i..j])?;
    (v <= 255).then_some((v, j))
}

pub(super) fn find_v4(s: &[u8], ctx: &Ctx, out: &mut Vec<Match>) {
    let mut i = 0;
    let mut starts = Cursor::new(ctx.number_starts);
    while let Some(c) = starts.at_or_after(i) {
        i = c;
        if !s[i].is_ascii_digit() || !left_boundary(s, i, b".") {
            i += 1;
            continue;
        }
        let mut j = i;
        let mut ok = true;
        for n in 0..4 {
            match octet(s, j) {
                Some((_, e)) => j = e,
                None => {
                    ok = false;
                    break;
                }
            }
            if n < 3 {
                if j < s.len() && s[j] == b'.' {
                    j += 1;
                } else {
                    ok = false;
                    break;
                }
            }
        }
        let tail_ok = j >= s.len()
            || !(s[j].is_ascii_alphanumeric()
                || (s[j] == b'.' && j + 1 < s.len() && s[j + 1].is_ascii_digit()));
        let versioned = || {
            i > 0 && matches!(s[i - 1], b'v' | b'V') || has_context(s, i, 12, VERSION_CONTEXT, "")
        };
        if ok && tail_ok && !versioned() {
            let confidence = if has_context(s, i, 30, V4_CONTEXT, ctx.key) {
                0.95
            } else {
                0.8
            };
            out.push(Match {
                kind: EntityKind::Ipv4,
                start: i,
                end: j,
                confidence,
            });
            i = j;
        } else {
            // Skip the rest of this dotted run so its tail is not retried.
            while i < s.len() && (s[i].is_ascii_digit() || s[i] == b'.') {
                i += 1;
            }
        }
    }
}

pub(super) fn v6_byte(b: u8) -> bool {
    b.is_ascii_hexdigit() || b == b':' || b == b'.'
}

/// The address in the run `s[i..j]` of [`v6_byte`]s (trailing dots are
/// sentence punctuation), if it is one and stands on its own.
pub(super) fn v6_in_run(s: &[u8], i: usize, j: usize) -> Option<Match> {
    let mut end = j;
    while end > i && s[end - 1] == b'.' {
        end -= 1;
    }
    let run = &s[i..end];
    let is_v6 = run.iter().filter(|&&b| b == b':').count() >= 2
        && (j >= s.len() || !s[j].is_ascii_alphanumeric())
        && left_boundary(s, i, b":.")
        && std::str::from_utf8(run)
            .ok()
            .and_then(|t| t.parse::<std::net::Ipv6Addr>().ok())
            .is_some();
    is_v6.then_some(Match {
        kind: EntityKind::Ipv6,
        start: i,
        end,
        confidence: 0.9,
    })
}

/// Every address has colons, and text has few: each run of hex digits,
/// colons and dots around a colon is tried once, when the byte before it
/// is not a letter or digit.
pub(super) fn find_v6(s: &[u8], out: &mut Vec<Match>) {
    let mut from = 0;
    while let Some(colon) = s[from..].iter().position(|&b| b == b':').map(|p| p + from) {
        let mut i = colon;
        while i > 0 && v6_byte(s[i - 1]) {
            i -= 1;
        }
        let mut j = colon;
        while j < s.len() && v6_byte(s[j]) {
            j += 1;
        }
        out.extend(v6_in_run(s, i, j));
        from = j.max(colon + 1);
    }
}
