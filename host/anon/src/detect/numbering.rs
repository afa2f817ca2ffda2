//! Phone number validation against libphonenumber's numbering plans,
//! which `build.rs` turns into the static [`REGIONS`] table from the
//! metadata the `phonenumber` crate ships, with the plans' patterns
//! compiled once into our own regexes. The rules are the library's: the
//! general pattern must match, then one of the number types, each with its
//! possible lengths. Loading the crate's metadata at run time deserialised
//! every region's plan, ~50-100 ms natively and most of the ~80 ms a Wasm
//! instance of `anonymise` took to start; its own `is_valid` also keeps
//! compiled patterns in a 100-entry LRU shared by every region, which the
//! type checks of a few regions already overflow.

use std::sync::Arc;

use regex_automata::meta::{self, Regex};
use regex_automata::util::syntax;

/// A pattern of the metadata, in its XML layout (whitespace is not part of
/// it), with the national-number lengths it allows (empty: any).
#[derive(Debug)]
pub(crate) struct Desc {
    pub pattern: &'static str,
    pub lengths: &'static [u16],
}

/// The numbering plan of one region (or, with id `001`, of one
/// non-geographic calling code) as the metadata has it.
#[derive(Debug)]
pub(crate) struct Region {
    pub id: &'static str,
    pub code: u16,
    pub national_prefix: Option<&'static str>,
    pub general: Desc,
    /// Fixed line and mobile first, then the other types.
    pub types: &'static [Desc],
    /// The lengths a national number may have at all: the general ones,
    /// or those of fixed and mobile numbers when the general list is empty.
    pub possible_lengths: &'static [u16],
}

include!(concat!(env!("OUT_DIR"), "/numbering_plans.rs"));

/// The region named by its CLDR id (`GB`), if the metadata has a plan for
/// it.
pub(crate) fn region(id: &str) -> Option<&'static Region> {
    (id.len() == 2)
        .then(|| REGIONS.iter().find(|r| r.id == id))
        .flatten()
}

/// The plans of a calling code (several regions share `1` or `44`).
fn by_code(code: u16) -> &'static [Region] {
    let from = REGIONS.partition_point(|r| r.code < code);
    let to = REGIONS.partition_point(|r| r.code <= code);
    &REGIONS[from..to]
}

/// One pattern of the metadata with the lengths it allows, compiled when
/// its plan is made. Patterns are compiled without Unicode (`\d` is
/// `[0-9]`: a national number is ASCII digits), which makes a compilation
/// ~6× cheaper (~55 µs natively for the 29 type patterns of US, GB, DE and
/// FR, mean 542 bytes each, against ~345 µs). That is what allows
/// compiling them all up front: compiled on first use, as they once were,
/// one compilation cost a call 10-25 M Wasm instructions, more than a
/// handler's default fuel, and the trap that followed threw away the
/// instance and the compilation with it, so every message that needed it
/// was dead-lettered.
#[derive(Debug)]
struct Pattern {
    lengths: &'static [u16],
    re: Option<Regex>,
}

impl Pattern {
    /// `re` is `None` if the pattern does not compile.
    fn new(desc: &'static Desc) -> Pattern {
        let source = format!("^(?x:{})", desc.pattern);
        let build = |unicode: bool| {
            Regex::builder()
                .syntax(syntax::Config::new().unicode(unicode))
                // No lazy DFA: it adds states to its cache while it
                // searches, memory allocated in one call and kept for the
                // next (which pins chunks of a guest's per-call arena,
                // sdk/rust/src/arena.rs). The haystacks are national
                // numbers, at most 17 digits: the one-pass DFA or the
                // bounded backtracker, whose caches are sized when made,
                // match them as fast.
                .configure(meta::Config::new().hybrid(false))
                .build(&source)
                .ok()
        };
        let re = build(false).or_else(|| build(true));
        Pattern {
            lengths: desc.lengths,
            re,
        }
    }

    fn is_match(&self, nsn: &str) -> bool {
        (self.lengths.is_empty() || self.lengths.contains(&(nsn.len() as u16)))
            && self.re.as_ref().is_some_and(|re| re.is_match(nsn))
    }
}

/// The numbering plan of one region, compiled.
#[derive(Debug)]
pub struct Plan {
    general: Pattern,
    /// Fixed line and mobile first: nearly every number is one of them,
    /// and `is_valid` stops at the first type that matches.
    types: Vec<Pattern>,
    /// The trunk prefix dialled before national numbers (`0`, or `1` in
    /// North America).
    pub national_prefix: Option<&'static str>,
}

impl Plan {
    fn new(region: &'static Region) -> Option<Plan> {
        // Every number meets the general pattern first: leave out a region
        // whose pattern does not compile.
        let general = Pattern::new(&region.general);
        general.re.as_ref()?;
        Some(Plan {
            general,
            types: region.types.iter().map(Pattern::new).collect(),
            national_prefix: region.national_prefix,
        })
    }

    /// Whether `nsn` (the national significant number, digits only) is a
    /// number of this plan.
    pub fn is_valid(&self, nsn: &str) -> bool {
        self.general.is_match(nsn) && self.types.iter().any(|t| t.is_match(nsn))
    }
}

/// Plans of the configured regions, every pattern compiled when the
/// detector is made. An international number of another country code is checked
/// against that country's possible lengths only: compiling its plans on
/// first sight would cost a message the time (and, in Wasm, the fuel) of
/// tens of regex compilations.
#[derive(Debug, Default)]
pub struct Plans {
    /// (region id, its calling code, its plan), in the configured order.
    pub national: Vec<(&'static str, u16, Arc<Plan>)>,
}

impl Plans {
    /// The plans of the regions named (CLDR ids); ids without a plan are
    /// left out, so callers check them with [`region`] first.
    pub fn for_regions(ids: &[&str]) -> Plans {
        let national = ids
            .iter()
            .filter_map(|id| {
                let r = region(id)?;
                Some((r.id, r.code, Arc::new(Plan::new(r)?)))
            })
            .collect();
        Plans { national }
    }

    /// Whether the digits after '+' (country code first) are a valid number.
    pub fn is_valid_international(&self, digits: &str) -> bool {
        (1..=3).filter(|&n| digits.len() > n).any(|n| {
            let Ok(code) = digits[..n].parse::<u16>() else {
                return false;
            };
            let nsn = &digits[n..];
            let full = self
                .national
                .iter()
                .filter(|(_, c, _)| *c == code)
                .any(|(_, _, p)| {
                    // "+44 (0)20 …": the trunk prefix written after the code.
                    p.is_valid(nsn)
                        || p.national_prefix.is_some_and(|np| {
                            nsn.strip_prefix(np).is_some_and(|rest| p.is_valid(rest))
                        })
                });
            full || (!self.national.iter().any(|(_, c, _)| *c == code)
                && by_code(code)
                    .iter()
                    .any(|r| r.possible_lengths.contains(&(nsn.len() as u16))))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The tables build.rs wrote are the library's metadata, region for
    /// region and pattern for pattern.
    #[test]
    fn built_tables_are_the_librarys_metadata() {
        use phonenumber::metadata::DATABASE;
        assert_eq!(REGIONS.len(), DATABASE.iter().count());
        assert!(REGIONS.len() > 240, "{}", REGIONS.len());
        assert!(REGIONS.is_sorted_by_key(|r| r.code));
        for m in DATABASE.iter() {
            let r = by_code(m.country_code())
                .iter()
                .find(|r| r.id == m.id())
                .unwrap_or_else(|| panic!("{} +{} missing", m.id(), m.country_code()));
            let d = m.descriptors();
            assert_eq!(r.general.pattern, d.general().national_number().as_str());
            assert_eq!(r.general.lengths, d.general().possible_length());
            assert_eq!(r.national_prefix, m.national_prefix());
            let mobile = d.mobile().map(|t| t.national_number().as_str());
            assert_eq!(
                mobile.is_some(),
                r.types.iter().any(|t| Some(t.pattern) == mobile),
                "{}",
                m.id()
            );
        }
        assert_eq!(region("GB").map(|r| r.code), Some(44));
        assert!(
            region("001").is_none(),
            "non-geographic codes are no region"
        );
        assert!(region("gb").is_none() && region("XX").is_none());
    }

    #[test]
    fn plans_accept_real_numbers_and_refuse_others() {
        let plans = Plans::for_regions(&["GB"]);
        assert_eq!(plans.national.len(), 1);
        let gb = &plans.national[0].2;
        assert!(gb.is_valid("2079460958"), "{gb:?}");
        assert!(!gb.is_valid("0079460958"));
        assert!(plans.is_valid_international("442079460958"));
        assert!(plans.is_valid_international("4402079460958"), "+44 (0)20 …");
        assert!(
            plans.is_valid_international("12025550143"),
            "another code: by length"
        );
        assert!(
            plans.is_valid_international("493012345678"),
            "another code: by length"
        );
        assert!(
            !plans.is_valid_international("4479460958"),
            "GB is configured: its plan decides"
        );
        assert!(!plans.is_valid_international("999123"));
    }
}
