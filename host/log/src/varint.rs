//! LEB128 varints and zigzag, the compact integer encoding inside batches.
//!
//! Kept apart from the batch codec because its edge cases (overlong encodings,
//! the tenth byte) deserve their own tests, and because the decoder must reject
//! them rather than wrap around: a varint read from disk is untrusted input.

/// The longest LEB128 encoding of a `u64`.
pub const VARINT_BYTES_MAX: usize = 10;

/// Appends `v` as LEB128.
pub fn put_u64(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Number of bytes [`put_u64`] writes for `v`, so that encoders can size a
/// batch exactly before allocating it.
pub fn len_u64(v: u64) -> usize {
    let bits = 64 - (v | 1).leading_zeros() as usize;
    bits.div_ceil(7)
}

/// Reads a LEB128 `u64` from the front of `buf`, returning it and its length.
/// `None` when the input ends early, is longer than ten bytes, or overflows 64
/// bits: all signs of corruption, never a reason to panic.
pub fn get_u64(buf: &[u8]) -> Option<(u64, usize)> {
    let mut v: u64 = 0;
    for (i, &b) in buf.iter().enumerate().take(VARINT_BYTES_MAX) {
        let low = u64::from(b & 0x7f);
        if i == VARINT_BYTES_MAX - 1 && b > 1 {
            return None; // would overflow 64 bits
        }
        v |= low << (7 * i);
        if b & 0x80 == 0 {
            return Some((v, i + 1));
        }
    }
    None
}

/// Zigzag maps small negative numbers to small unsigned ones, so that a
/// timestamp slightly before the batch's first one still costs one byte.
pub fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

pub fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_edges() {
        for v in [0, 1, 127, 128, 16383, 16384, u64::MAX / 2, u64::MAX] {
            let mut out = Vec::new();
            put_u64(&mut out, v);
            assert_eq!(out.len(), len_u64(v), "len of {v}");
            assert_eq!(get_u64(&out), Some((v, out.len())));
        }
        for v in [0, -1, 1, i64::MIN, i64::MAX] {
            assert_eq!(unzigzag(zigzag(v)), v);
        }
    }

    #[test]
    fn rejects_overlong_and_truncated() {
        assert_eq!(get_u64(&[0x80; 11]), None);
        assert_eq!(get_u64(&[0x80, 0x80]), None);
        let mut max = vec![0xff; 9];
        max.push(0x02); // tenth byte > 1 overflows
        assert_eq!(get_u64(&max), None);
        assert_eq!(get_u64(&[]), None);
    }
}
