//! Phone number validation against libphonenumber's numbering plans (the
//! metadata the `phonenumber` crate ships), with the plans' patterns
//! compiled once into our own regexes. The crate's own `is_valid` keeps
//! its compiled patterns in a 100-entry LRU shared by every region, which
//! the type checks of a few regions already overflow: each validation then
//! recompiles regexes (tens of microseconds natively, millions of Wasm
//! instructions). The rules are the crate's: the general pattern must
//! match, then one of the number types, each with its possible lengths.

use std::sync::Arc;

use phonenumber::metadata::DATABASE;
use regex::{Regex, RegexBuilder};

/// One pattern of the metadata with the lengths it allows (empty: any),
/// compiled when its plan is made. Patterns are compiled without Unicode
/// (`\d` is `[0-9]`: a national number is ASCII digits), which makes a
/// compilation ~6× cheaper (~55 µs natively for the 29 type patterns of
/// US, GB, DE and FR, mean 542 bytes each, against ~345 µs). That is what
/// allows compiling them all up front: compiled on first use, as they once
/// were, one compilation cost a call 10-25 M Wasm instructions, more than
/// a handler's default fuel, and the trap that followed threw away the
/// instance and the compilation with it, so every message that needed it
/// was dead-lettered.
#[derive(Debug)]
struct Pattern {
    descriptor: &'static phonenumber::metadata::Descriptor,
    re: Option<Regex>,
}

impl Pattern {
    /// The metadata keeps its XML layout: whitespace is not part of a
    /// pattern. `re` is `None` if the pattern does not compile.
    fn new(descriptor: &'static phonenumber::metadata::Descriptor) -> Pattern {
        let source = format!("^(?x:{})", descriptor.national_number().as_str());
        let re = RegexBuilder::new(&source)
            .unicode(false)
            .build()
            .or_else(|_| Regex::new(&source))
            .ok();
        Pattern { descriptor, re }
    }

    fn is_match(&self, nsn: &str) -> bool {
        let lengths = self.descriptor.possible_length();
        (lengths.is_empty() || lengths.contains(&(nsn.len() as u16)))
            && self.re.as_ref().is_some_and(|re| re.is_match(nsn))
    }
}

/// The numbering plan of one region.
#[derive(Debug)]
pub struct Plan {
    general: Pattern,
    /// Fixed line and mobile first: nearly every number is one of them,
    /// and `is_valid` stops at the first type that matches.
    types: Vec<Pattern>,
    /// The trunk prefix dialled before national numbers (`0`, or `1` in
    /// North America).
    pub national_prefix: Option<String>,
}

impl Plan {
    fn new(meta: &'static phonenumber::Metadata) -> Option<Plan> {
        let d = meta.descriptors();
        let types = [
            d.fixed_line(),
            d.mobile(),
            d.toll_free(),
            d.premium_rate(),
            d.shared_cost(),
            d.voip(),
            d.personal_number(),
            d.pager(),
            d.uan(),
            d.voicemail(),
        ]
        .into_iter()
        .flatten()
        .map(Pattern::new)
        .collect();
        // Every number meets the general pattern first: leave out a region
        // whose pattern does not compile.
        let general = Pattern::new(d.general());
        general.re.as_ref()?;
        Some(Plan {
            general,
            types,
            national_prefix: meta.national_prefix().map(str::to_owned),
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
    /// (region, its calling code, its plan), in the configured order.
    pub national: Vec<(phonenumber::country::Id, u16, Arc<Plan>)>,
}

impl Plans {
    pub fn for_regions(regions: &[phonenumber::country::Id]) -> Plans {
        let national = regions
            .iter()
            .filter_map(|r| {
                let meta = DATABASE.by_id(format!("{r:?}").as_str())?;
                Some((*r, meta.country_code(), Arc::new(Plan::new(meta)?)))
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
                        || p.national_prefix.as_deref().is_some_and(|np| {
                            nsn.strip_prefix(np).is_some_and(|rest| p.is_valid(rest))
                        })
                });
            full || DATABASE.by_code(&code).is_some_and(|metas| {
                !self.national.iter().any(|(_, c, _)| *c == code)
                    && metas.iter().any(|m| possible_length(m, nsn.len()))
            })
        })
    }
}

/// Whether a national significant number of `len` digits is possible in
/// `meta`'s plan (the general lengths, or those of its fixed and mobile
/// types when the general list is empty).
fn possible_length(meta: &phonenumber::Metadata, len: usize) -> bool {
    let d = meta.descriptors();
    let len = len as u16;
    let general = d.general().possible_length();
    if !general.is_empty() {
        return general.contains(&len);
    }
    [d.fixed_line(), d.mobile()]
        .into_iter()
        .flatten()
        .any(|t| t.possible_length().contains(&len))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plans_accept_real_numbers_and_refuse_others() {
        let plans = Plans::for_regions(&[phonenumber::country::Id::GB]);
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
