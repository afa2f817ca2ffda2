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
        let domain = &s[at + 1..end];
        let labels: Vec<&[u8]> = domain.split(|&b| b == b'.').collect();
        let tld = labels.last().copied().unwrap_or_default();
        let ok = labels.len() >= 2
            && labels
                .iter()
                .all(|l| !l.is_empty() && l[0] != b'-' && l[l.len() - 1] != b'-')
            && tld.len() >= 2
            && tld.iter().all(u8::is_ascii_alphabetic);
        if ok {
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
