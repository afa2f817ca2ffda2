//! Human units shared by the config file and the HTTP API: byte sizes such as
//! `10GiB` and durations such as `7d` or `250ms`. One parser, so that a value
//! accepted in one place is accepted everywhere.

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UnitError {
    #[error(
        "{0:?} is not a size: use a number with an optional unit B, KB, MB, GB, TB, KiB, MiB, GiB or TiB"
    )]
    Size(String),
    #[error("{0:?} is not a duration: use a number with a unit ms, s, m, h or d (e.g. \"7d\")")]
    Duration(String),
}

fn split_number(s: &str) -> Option<(u64, &str)> {
    let s = s.trim();
    let digits = s.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 {
        return None;
    }
    let n = s[..digits].parse().ok()?;
    Some((n, s[digits..].trim()))
}

/// Parses `1024`, `64KiB`, `10GiB`, `5MB` into bytes.
pub fn parse_bytes(s: &str) -> Result<u64, UnitError> {
    let err = || UnitError::Size(s.to_owned());
    let (n, unit) = split_number(s).ok_or_else(err)?;
    let mult: u64 = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "kb" => 1_000,
        "mb" => 1_000_000,
        "gb" => 1_000_000_000,
        "tb" => 1_000_000_000_000,
        "kib" => 1 << 10,
        "mib" => 1 << 20,
        "gib" => 1 << 30,
        "tib" => 1 << 40,
        _ => return Err(err()),
    };
    n.checked_mul(mult).ok_or_else(err)
}

/// Parses `250ms`, `30s`, `15m`, `12h`, `7d` into milliseconds.
pub fn parse_duration_ms(s: &str) -> Result<u64, UnitError> {
    let err = || UnitError::Duration(s.to_owned());
    let (n, unit) = split_number(s).ok_or_else(err)?;
    let mult: u64 = match unit {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return Err(err()),
    };
    n.checked_mul(mult).ok_or_else(err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_bytes("10GiB"), Ok(10 << 30));
        assert_eq!(parse_bytes("5MB"), Ok(5_000_000));
        assert_eq!(parse_bytes("512"), Ok(512));
        assert_eq!(parse_bytes("64 KiB"), Ok(65_536));
        for bad in ["", "GiB", "10XB", "-1", "99999999999999TiB"] {
            assert!(parse_bytes(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration_ms("7d"), Ok(7 * 86_400_000));
        assert_eq!(parse_duration_ms("250ms"), Ok(250));
        assert_eq!(parse_duration_ms("2h"), Ok(7_200_000));
        for bad in ["", "7", "d", "1w", "1.5s"] {
            assert!(parse_duration_ms(bad).is_err(), "{bad:?}");
        }
    }
}
