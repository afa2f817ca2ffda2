//! `sluice-anon` finds personal data in text and in the string fields of
//! JSON documents and replaces it, as a policy says, while the message
//! flows. It exists as a library with no I/O, no tokio and no wasmtime so
//! that the very same code runs inside the sandboxed `anonymise` handler
//! (compiled to `wasm32-wasip2`) and natively (tests, the benchmark).
//!
//! - [`detect`]: detectors for emails, phone numbers (validated with
//!   libphonenumber's metadata), payment cards (Luhn and issuer ranges),
//!   IBANs (mod-97), IPv4/IPv6, MAC addresses, URLs, dates and dates of
//!   birth, GPS coordinates, US SSNs and UK NINOs. Each match has a kind, a
//!   byte span and a confidence; checksums and context words raise it.
//! - [`operator`]: what happens to a match: `redact`, `replace`, `mask`,
//!   `pseudonymize` (keyed, through a [`Pseudonymizer`] the caller
//!   provides, so the secret can stay in the host), `generalize`, `drop`.
//! - [`policy`]: rules by JSON path plus free-text scanning of every other
//!   string, applied by [`Policy::apply`]; JSON in gives valid JSON out.

pub mod detect;
pub mod entity;
pub mod operator;
pub mod policy;
mod text;

pub use detect::{Detector, DetectorConfig};
pub use entity::{EntityKind, Match};
pub use operator::{Operator, Pseudonymizer};
pub use policy::{Audit, Outcome, Policy, PolicyError};
