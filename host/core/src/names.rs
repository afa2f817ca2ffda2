//! Names that end up in file paths and URLs (tenants, streams, groups) are
//! validated once, here, so that no later layer has to wonder whether a name
//! could escape its directory or break a URL.

use std::fmt;

/// The longest tenant, stream or group name, in bytes. Names become directory
/// names, so they stay well under every file system's component limit.
pub const NAME_BYTES_MAX: usize = 64;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("{kind} name is empty")]
    Empty { kind: &'static str },
    #[error("{kind} name is {len} bytes long; the limit is {NAME_BYTES_MAX}")]
    TooLong { kind: &'static str, len: usize },
    #[error(
        "{kind} name {name:?} may contain only ASCII letters, digits, '-' and '_', and must start with a letter or digit"
    )]
    BadCharacter { kind: &'static str, name: String },
}

/// Checks a name against the one rule all Sluice names share.
pub fn validate_name(kind: &'static str, name: &str) -> Result<(), NameError> {
    if name.is_empty() {
        return Err(NameError::Empty { kind });
    }
    if name.len() > NAME_BYTES_MAX {
        return Err(NameError::TooLong {
            kind,
            len: name.len(),
        });
    }
    let first_ok = name.as_bytes()[0].is_ascii_alphanumeric();
    let rest_ok = name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !(first_ok && rest_ok) {
        return Err(NameError::BadCharacter {
            kind,
            name: name.to_owned(),
        });
    }
    Ok(())
}

macro_rules! name_type {
    ($(#[$doc:meta])* $ty:ident, $kind:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $ty(String);

        impl $ty {
            pub fn new(name: &str) -> Result<Self, NameError> {
                validate_name($kind, name)?;
                Ok(Self(name.to_owned()))
            }
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl std::str::FromStr for $ty {
            type Err = NameError;
            fn from_str(s: &str) -> Result<Self, NameError> {
                Self::new(s)
            }
        }
    };
}

name_type!(
    /// An isolated namespace; every node has at least [`TenantId::default_tenant`].
    TenantId,
    "tenant"
);
name_type!(
    /// The name of a durable, partitioned stream, unique within its tenant.
    StreamName,
    "stream"
);
name_type!(
    /// The name of a consumer group, unique within its stream.
    GroupName,
    "group"
);

impl StreamName {
    /// The name that sorts before every other, for ranges over a map keyed by names.
    pub fn smallest() -> Self {
        Self(String::new())
    }
}

const DEFAULT_TENANT: &str = "default";

impl TenantId {
    /// The tenant that exists on every node and owns everything until tenants are configured.
    pub fn default_tenant() -> Self {
        Self(DEFAULT_TENANT.to_owned())
    }

    /// Whether this is the default tenant (without building one to compare).
    pub fn is_default(&self) -> bool {
        self.0 == DEFAULT_TENANT
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_ordinary_names() {
        for ok in ["a", "sensors", "orders-eu_1", "9lives", &"x".repeat(64)] {
            assert!(StreamName::new(ok).is_ok(), "{ok}");
        }
    }

    #[test]
    fn rejects_names_that_could_escape_a_directory_or_url() {
        for bad in [
            "",
            "..",
            ".",
            "a/b",
            "a b",
            "-x",
            "_x",
            "é",
            "a%2f",
            &"x".repeat(65),
        ] {
            assert!(StreamName::new(bad).is_err(), "{bad:?}");
        }
    }
}
