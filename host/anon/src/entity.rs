//! The kinds of personal data Sluice recognises and what a detector
//! reports about one occurrence.

use serde::{Deserialize, Serialize};

/// A kind of personal data. The names (`EMAIL`, `CREDIT_CARD`…) are the
/// ones policies, replacement tags and audit headers use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum EntityKind {
    Email,
    Phone,
    CreditCard,
    Iban,
    Ipv4,
    Ipv6,
    Mac,
    Url,
    Date,
    DateOfBirth,
    Gps,
    UsSsn,
    UkNino,
}

impl EntityKind {
    pub const ALL: [EntityKind; 13] = [
        EntityKind::Email,
        EntityKind::Phone,
        EntityKind::CreditCard,
        EntityKind::Iban,
        EntityKind::Ipv4,
        EntityKind::Ipv6,
        EntityKind::Mac,
        EntityKind::Url,
        EntityKind::Date,
        EntityKind::DateOfBirth,
        EntityKind::Gps,
        EntityKind::UsSsn,
        EntityKind::UkNino,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EntityKind::Email => "EMAIL",
            EntityKind::Phone => "PHONE",
            EntityKind::CreditCard => "CREDIT_CARD",
            EntityKind::Iban => "IBAN",
            EntityKind::Ipv4 => "IPV4",
            EntityKind::Ipv6 => "IPV6",
            EntityKind::Mac => "MAC",
            EntityKind::Url => "URL",
            EntityKind::Date => "DATE",
            EntityKind::DateOfBirth => "DATE_OF_BIRTH",
            EntityKind::Gps => "GPS",
            EntityKind::UsSsn => "US_SSN",
            EntityKind::UkNino => "UK_NINO",
        }
    }

    pub fn parse(s: &str) -> Option<EntityKind> {
        EntityKind::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// Bit of this kind in an [`crate::detect::KindSet`].
    pub(crate) fn bit(self) -> u16 {
        1 << (self as u16)
    }
}

impl std::fmt::Display for EntityKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One occurrence: `text[start..end]` is of `kind`, with `confidence` in 0..=1.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Match {
    pub kind: EntityKind,
    pub start: usize,
    pub end: usize,
    pub confidence: f32,
}
