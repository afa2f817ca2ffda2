//! Email addresses: a local part, '@', and a domain of dot-separated labels
//! ending in an alphabetic top-level domain of two letters or more.

use crate::entity::{EntityKind, Match};

fn local_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'%' | b'+' | b'-')
}

fn domain_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-')
}

pub(super) fn find(s: &[u8], out: &mut Vec<Match>) {
    let mut from = 0;
    while let Some(at) = s[from..].iter().position(|&b| b == b'@').map(|p| p + from) {
        from = at + 1;
        let mut start = at;
        while start > 0 && local_byte(s[start - 1]) {
            start -= 1;
        }
        while start < at && !s[start].is_ascii_alphanumeric() {
            start += 1; // a local part does not start with '.', '+', …
        }
        let mut end = at + 1;
        while end < s.len() && domain_byte(s[end]) {
            end += 1;
        }
        while end > at + 1 && matches!(s[end - 1], b'.' | b'-') {
            end -= 1;
        }
        if start == at || end <= at + 1 || s[at - 1] == b'.' {
            continue;
        }
        if let Some(end) = domain_end(s, at + 1, end) {
            out.push(Match {
                kind: EntityKind::Email,
                start,
                end,
                confidence: 0.95,
            });
            from = end;
        }
    }
}

/// Where the domain in `s[from..end]` (a run of [`domain_byte`]s) ends:
/// after its last label that is a top-level domain (two letters or more,
/// or an IDN's `xn--…`) with a label before it, each label before it
/// non-empty and not beginning or ending with '-'. A label that goes on
/// from its letters (`example.com-030`, `example.com123`: an address glued
/// to a number) ends at its letters, so the address is still found;
/// `None` when no label qualifies.
fn domain_end(s: &[u8], from: usize, end: usize) -> Option<usize> {
    let mut found = None;
    let mut labels = 0;
    let mut at = from;
    while at < end {
        let label_end = s[at..end]
            .iter()
            .position(|&b| b == b'.')
            .map_or(end, |p| at + p);
        let label = &s[at..label_end];
        if label.is_empty() || label[0] == b'-' {
            break;
        }
        labels += 1;
        let letters = label.iter().take_while(|b| b.is_ascii_alphabetic()).count();
        let idn = label.len() > 4
            && label[..4].eq_ignore_ascii_case(b"xn--")
            && label[label.len() - 1] != b'-';
        if labels >= 2 && idn {
            found = Some(label_end);
        } else if labels >= 2 && letters >= 2 {
            found = Some(at + letters);
        }
        if label[label.len() - 1] == b'-' {
            break;
        }
        at = label_end + 1;
    }
    found
}
