//! Byte-level helpers the detectors share. Detectors work on UTF-8 bytes
//! and only ever cut at ASCII bytes, so every span is a valid `str` range.

pub fn is_alnum(b: u8) -> bool {
    b.is_ascii_alphanumeric()
}

/// Whether position `i` starts a token: the byte before is not a letter,
/// digit or one of `extra`.
pub fn left_boundary(s: &[u8], i: usize, extra: &[u8]) -> bool {
    i == 0 || {
        let p = s[i - 1];
        !(is_alnum(p) || extra.contains(&p))
    }
}

/// Whether position `i` (one past a token) ends it: the byte there is not
/// a letter, digit or one of `extra`.
pub fn right_boundary(s: &[u8], i: usize, extra: &[u8]) -> bool {
    i >= s.len() || {
        let n = s[i];
        !(is_alnum(n) || extra.contains(&n))
    }
}

/// Whether one of `words` appears (case-insensitively, as a word start) in
/// the `window` bytes before `start`, or in `extra_context` (a JSON key).
/// Every word must begin with an ASCII letter.
pub fn has_context(
    s: &[u8],
    start: usize,
    window: usize,
    words: &[&str],
    extra_context: &str,
) -> bool {
    let mut from = start.saturating_sub(window);
    // Context belongs to the same sentence or clause.
    if let Some(cut) = s[from..start]
        .windows(2)
        .rposition(|w| matches!(w, [b'.', b' '] | [b';', b' '] | [b'\n', _]))
    {
        from += cut + 1;
    }
    let before = &s[from..start];
    // One walk over the word starts of `hay`, comparing only the words
    // with the same first letter (every context word starts with one).
    let hit = |hay: &[u8]| {
        let mut prev_alpha = false;
        for (i, &b) in hay.iter().enumerate() {
            let alpha = b.is_ascii_alphabetic();
            if alpha && !prev_alpha {
                let rest = &hay[i..];
                let found = words.iter().any(|w| {
                    let w = w.as_bytes();
                    w[0].eq_ignore_ascii_case(&b)
                        && rest.len() >= w.len()
                        && rest[..w.len()].eq_ignore_ascii_case(w)
                });
                if found {
                    return true;
                }
            }
            prev_alpha = alpha;
        }
        false
    };
    hit(before) || hit(extra_context.as_bytes())
}

/// Digits of `s`, in order.
#[cfg(test)]
pub fn digits(s: &[u8]) -> Vec<u8> {
    s.iter()
        .filter(|b| b.is_ascii_digit())
        .map(|b| b - b'0')
        .collect()
}

/// Parses an unsigned decimal from ASCII digits.
pub fn number(s: &[u8]) -> Option<u32> {
    if s.is_empty() || s.len() > 9 || !s.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(s.iter().fold(0u32, |n, b| n * 10 + u32::from(b - b'0')))
}
