//! The detectors and how their matches are combined. Each detector scans
//! the text on its own (a linear pass triggered by a cheap byte test, then
//! validation: checksums, calendars, numbering plans); [`Detector::detect`]
//! runs the enabled ones and keeps, where matches overlap, the most
//! confident (then the longest), so one piece of text is one entity.

pub(crate) mod card;
mod date;
mod email;
mod gps;
mod iban;
mod ip;
mod mac;
mod national;
mod numbering;
mod phone;
mod url;

use serde::Deserialize;

use crate::entity::{EntityKind, Match};

/// A set of entity kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KindSet(u16);

impl KindSet {
    pub fn all() -> Self {
        KindSet(EntityKind::ALL.iter().fold(0, |m, k| m | k.bit()))
    }
    pub fn empty() -> Self {
        KindSet(0)
    }
    pub fn contains(self, k: EntityKind) -> bool {
        self.0 & k.bit() != 0
    }
    pub fn insert(&mut self, k: EntityKind) {
        self.0 |= k.bit();
    }
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }
}

impl FromIterator<EntityKind> for KindSet {
    fn from_iter<T: IntoIterator<Item = EntityKind>>(iter: T) -> Self {
        let mut s = KindSet::empty();
        for k in iter {
            s.insert(k);
        }
        s
    }
}

/// What a detector is told, as written in a policy.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DetectorConfig {
    /// Kinds to look for (default: all).
    #[serde(default)]
    pub entities: Option<Vec<String>>,
    /// Regions (ISO 3166 codes) whose national phone formats are
    /// recognised without a `+` prefix (default: US, GB, DE, FR).
    #[serde(default)]
    pub phone_regions: Option<Vec<String>>,
    /// Matches below this confidence are ignored (default 0.5).
    #[serde(default)]
    pub min_confidence: Option<f32>,
}

/// A configured set of detectors. Cheap to share; `detect` takes `&self`.
#[derive(Debug, Clone)]
pub struct Detector {
    kinds: KindSet,
    /// Numbering plans of the regions whose national formats count, and
    /// of the country codes met so far.
    plans: std::sync::Arc<numbering::Plans>,
    min_confidence: f32,
}

impl Default for Detector {
    fn default() -> Self {
        Detector {
            kinds: KindSet::all(),
            plans: std::sync::Arc::new(numbering::Plans::for_regions(&["US", "GB", "DE", "FR"])),
            min_confidence: 0.5,
        }
    }
}

/// What every detector may consult besides the text.
pub(crate) struct Ctx<'a> {
    /// The JSON key the text is the value of ("" for free text): a key
    /// such as `phone` or `dob` is context as good as a word before.
    pub key: &'a str,
    pub plans: &'a numbering::Plans,
    /// Every position where a token can begin ([`TokenStarts`]): the
    /// detectors visit these instead of every byte.
    pub starts: &'a [u32],
    /// The subset of `starts` that begin with a digit, `+`, `(` or `-`:
    /// where the number-shaped kinds (card, IPv4, SSN, GPS, phone) begin.
    pub number_starts: &'a [u32],
}

/// Walks a list of starts for a detector that also moves on by itself
/// (past a match, past a run it has ruled out): each call yields the next
/// start at or after where the detector now is.
pub(crate) struct Cursor<'a> {
    starts: &'a [u32],
    next: usize,
}

impl<'a> Cursor<'a> {
    pub fn new(starts: &'a [u32]) -> Self {
        Cursor { starts, next: 0 }
    }

    pub fn at_or_after(&mut self, from: usize) -> Option<usize> {
        while let Some(&c) = self.starts.get(self.next) {
            self.next += 1;
            if c as usize >= from {
                return Some(c as usize);
            }
        }
        None
    }
}

/// The positions of a text where a detector's match can begin: a letter,
/// digit or one of `+ ( - : .` whose previous byte is not a letter or
/// digit. Every detector's start test includes "the byte before is not
/// alphanumeric" (`text::left_boundary`) and one of these first bytes, so
/// the list holds every start any of them can accept; building it is one
/// pass over the text, where thirteen detectors each walking every byte
/// were most of the scanning time.
struct TokenStarts {
    all: Vec<u32>,
    numbers: Vec<u32>,
    /// The [`CLASS`] bits of every byte, or-ed: whether the text holds a
    /// digit, an '@', a ':', a '.' or a '-' anywhere.
    seen: u8,
}

const ALNUM: u8 = 1;
const STARTS: u8 = 2;
const NUMBER: u8 = 4;
const DIGIT: u8 = 8;
const AT: u8 = 16;
const COLON: u8 = 32;
const DOT: u8 = 64;
const DASH: u8 = 128;

/// What each byte is, for [`TokenStarts::of`].
static CLASS: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        t[b] = if c.is_ascii_digit() {
            ALNUM | STARTS | NUMBER | DIGIT
        } else if c.is_ascii_alphabetic() {
            ALNUM | STARTS
        } else if matches!(c, b'+' | b'(') {
            STARTS | NUMBER
        } else if c == b'-' {
            STARTS | NUMBER | DASH
        } else if c == b':' {
            STARTS | COLON
        } else if c == b'.' {
            STARTS | DOT
        } else if c == b'@' {
            AT
        } else {
            0
        };
        b += 1;
    }
    t
};

impl TokenStarts {
    fn of(s: &[u8]) -> TokenStarts {
        // Branch-free: write every position, advance only past starts.
        let mut all = vec![0u32; s.len()];
        let mut numbers = vec![0u32; s.len()];
        let (mut n_all, mut n_numbers) = (0, 0);
        let mut prev_alnum = false;
        let mut seen = 0u8;
        for (i, &b) in s.iter().enumerate() {
            let c = CLASS[b as usize];
            let start = !prev_alnum && c & STARTS != 0;
            all[n_all] = i as u32;
            n_all += usize::from(start);
            numbers[n_numbers] = i as u32;
            n_numbers += usize::from(start && c & NUMBER != 0);
            prev_alnum = c & ALNUM != 0;
            seen |= c;
        }
        all.truncate(n_all);
        numbers.truncate(n_numbers);
        TokenStarts { all, numbers, seen }
    }
}

impl Detector {
    pub fn from_config(c: &DetectorConfig) -> Result<Self, String> {
        let mut d = Detector::default();
        if let Some(names) = &c.entities {
            d.kinds = names
                .iter()
                .map(|n| EntityKind::parse(n).ok_or_else(|| format!("unknown entity {n:?}")))
                .collect::<Result<KindSet, _>>()?;
        }
        if let Some(regions) = &c.phone_regions {
            let ids = regions
                .iter()
                .map(|r| {
                    numbering::region(r)
                        .map(|region| region.id)
                        .ok_or_else(|| format!("unknown phone region {r:?}"))
                })
                .collect::<Result<Vec<_>, _>>()?;
            d.plans = std::sync::Arc::new(numbering::Plans::for_regions(&ids));
        }
        if let Some(m) = c.min_confidence {
            if !(0.0..=1.0).contains(&m) {
                return Err("min_confidence must be between 0 and 1".into());
            }
            d.min_confidence = m;
        }
        Ok(d)
    }

    /// Only these kinds.
    pub fn with_kinds(mut self, kinds: KindSet) -> Self {
        self.kinds = kinds;
        self
    }

    pub fn kinds(&self) -> KindSet {
        self.kinds
    }

    /// Every entity in `text`, sorted by position, none overlapping.
    pub fn detect(&self, text: &str) -> Vec<Match> {
        self.detect_in_field(text, "")
    }

    /// [`Detector::detect`] for the value of the JSON field `key`.
    pub fn detect_in_field(&self, text: &str, key: &str) -> Vec<Match> {
        let s = text.as_bytes();
        let starts = TokenStarts::of(s);
        let ctx = Ctx {
            key,
            plans: &self.plans,
            starts: &starts.all,
            number_starts: &starts.numbers,
        };
        let mut found = self.run(s, &ctx, starts.seen);
        found.retain(|m| self.kinds.contains(m.kind) && m.confidence >= self.min_confidence);
        resolve_overlaps(found, s)
    }

    /// Every detector the kinds enable, on `s`: their raw matches,
    /// overlapping and unfiltered.
    fn run(&self, s: &[u8], ctx: &Ctx, seen: u8) -> Vec<Match> {
        let mut found = Vec::new();
        let k = self.kinds;
        // Quick exits: nearly every detector needs a digit, an '@' or a
        // URL prefix; text without them is common (names, enums). `seen`
        // says which of those bytes the text holds.
        if k.contains(EntityKind::Email) && seen & AT != 0 {
            email::find(s, &mut found);
        }
        if k.contains(EntityKind::Url) && seen & (COLON | DOT) != 0 {
            url::find(s, ctx, &mut found);
        }
        if seen & DIGIT != 0 {
            if k.contains(EntityKind::CreditCard) {
                card::find(s, ctx, &mut found);
            }
            if k.contains(EntityKind::Iban) {
                iban::find(s, ctx, &mut found);
            }
            if k.contains(EntityKind::Ipv4) {
                ip::find_v4(s, ctx, &mut found);
            }
            if k.contains(EntityKind::Date) || k.contains(EntityKind::DateOfBirth) {
                date::find(s, ctx, &mut found);
            }
            if k.contains(EntityKind::Gps) {
                gps::find(s, ctx, &mut found);
            }
            if k.contains(EntityKind::UsSsn) {
                national::find_ssn(s, ctx, &mut found);
            }
            if k.contains(EntityKind::UkNino) {
                national::find_nino(s, ctx, &mut found);
            }
            if k.contains(EntityKind::Phone) {
                phone::find(s, ctx, &mut found);
            }
        }
        if seen & (COLON | DASH | DOT) != 0 {
            if k.contains(EntityKind::Ipv6) && seen & COLON != 0 {
                ip::find_v6(s, &mut found);
            }
            if k.contains(EntityKind::Mac) {
                mac::find(s, ctx, &mut found);
            }
        }
        found
    }
}

/// Keeps, among overlapping matches, the most confident, then the longest,
/// then the earliest. An email whose local part begins inside a kept match
/// (`…0130 00-ann@example.com` after an IBAN) is kept from where that match
/// ends: what is left is an address still.
fn resolve_overlaps(mut found: Vec<Match>, s: &[u8]) -> Vec<Match> {
    found.sort_by(|a, b| {
        b.confidence
            .total_cmp(&a.confidence)
            .then((b.end - b.start).cmp(&(a.end - a.start)))
            .then(a.start.cmp(&b.start))
    });
    let mut kept: Vec<Match> = Vec::with_capacity(found.len());
    let free =
        |kept: &[Match], m: &Match| kept.iter().all(|k| m.end <= k.start || m.start >= k.end);
    for mut m in found {
        if !free(&kept, &m) && m.kind == EntityKind::Email {
            m = email_after(m, &kept, s);
        }
        if free(&kept, &m) {
            kept.push(m);
        }
    }
    kept.sort_by_key(|m| m.start);
    kept
}

/// `m`, an email, from after the kept matches that overlap its local part
/// (and any '.', '-', … that would then begin it). When none of the local
/// part is left (two addresses glued, `…co.ukann@example.com`), what is
/// left of the address from the kept match's end, its '@' and domain, is
/// still kept: a domain next to an address is not passed on. Likewise a
/// kept match that begins inside its domain (the same two addresses, the
/// second kept) leaves the local part and '@' kept, up to where it begins.
/// `m` unchanged when no kept match ends inside its local part or begins
/// inside its domain.
fn email_after(mut m: Match, kept: &[Match], s: &[u8]) -> Match {
    let Some(at) = s[m.start..m.end].iter().position(|&b| b == b'@') else {
        return m;
    };
    let at = m.start + at;
    if let Some(kept_start) = kept
        .iter()
        .filter(|k| k.start > at && k.start < m.end)
        .map(|k| k.start)
        .min()
    {
        m.end = kept_start;
    }
    let Some(kept_end) = kept
        .iter()
        .filter(|k| k.start < at && k.end > m.start && k.end <= at)
        .map(|k| k.end)
        .max()
    else {
        return m;
    };
    let mut start = kept_end;
    while start < at && !s[start].is_ascii_alphanumeric() {
        start += 1;
    }
    m.start = if start < at { start } else { kept_end };
    m
}

/// A decimal number (with a '.') at byte `i` of `s`: (value, end).
pub(crate) fn decimal_at(s: &[u8], i: usize) -> Option<(f64, usize)> {
    if !(crate::text::left_boundary(s, i, b".") || s[i] == b'-') {
        return None;
    }
    gps::decimal(s, i, 1)
}

/// (year, month, day) of a whole-value date.
pub(crate) fn parse_date(text: &str) -> Option<(u32, u32, u32)> {
    date::parse(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The IPv6 detector as it was before it searched for colons: every
    /// byte that can begin a run of [`ip::v6_byte`]s tries the run. The
    /// reference `find_v6` must agree with.
    fn find_v6_at_every_byte(s: &[u8], out: &mut Vec<Match>) {
        let mut i = 0;
        while i < s.len() {
            if !ip::v6_byte(s[i]) || !crate::text::left_boundary(s, i, b":.") {
                i += 1;
                continue;
            }
            let mut j = i;
            while j < s.len() && ip::v6_byte(s[j]) {
                j += 1;
            }
            out.extend(ip::v6_in_run(s, i, j));
            i = j.max(i + 1);
        }
    }

    /// The detectors visit only [`TokenStarts`], on the argument that every
    /// position one of them can accept is there. Checked: on random texts
    /// built from entity-shaped fragments, words and separators glued in
    /// every order, each detector finds exactly what it finds when it is
    /// handed every byte position, as it used to walk them.
    #[test]
    fn visiting_token_starts_finds_what_visiting_every_byte_finds() {
        use rand::rngs::StdRng;
        use rand::{Rng, SeedableRng};
        const PIECES: &[&str] = &[
            "4111 1111 1111 1111",
            "4111111111111111",
            "3782-822463-10005",
            "+44 20 7946 0958",
            "(202) 555-0143",
            "030 1234567",
            "0044 20 7946 0958",
            "192.168.0.1",
            "v1.2.3.4",
            "10.0.0.255.7",
            "fe80::1",
            "::1",
            "2001:db8::8a2e:370:7334",
            "aa:bb:cc:dd:ee:ff",
            "AA-BB-CC-DD-EE-FF",
            "aabb.ccdd.eeff",
            "2024-03-12",
            "12/03/1990",
            "12 March 1990",
            "Mar 12, 1990",
            "Sept 3rd 2001",
            "DE89 3704 0044 0532 0130 00",
            "GB82WEST12345698765432",
            "AB123456C",
            "AB 12 34 56 C",
            "123-45-6789",
            "123456789",
            "51.5074, -0.1278",
            "48.8566° N, 2.3522° E",
            "https://x.io/a?b=1",
            "www.example.com",
            "ann@x.io",
            "ssn",
            "phone",
            "born",
            "version",
            "call",
            "ip",
            "dob",
            "card",
            "the",
            "and",
            "a",
            "deadbeef",
            "face",
            "2024-03-12T10:00:00Z",
            "12:30",
            "1,299.00",
            "#",
            "v2",
        ];
        const GLUE: &[&str] = &[
            " ", "", ".", ", ", ": ", "-", "(", ")", "/", "\n", ". ", ";", "+", "x",
        ];
        let d = Detector::default();
        let mut rng = StdRng::seed_from_u64(20261202);
        for _ in 0..4000 {
            let mut text = String::new();
            for _ in 0..rng.random_range(1..8) {
                text.push_str(GLUE[rng.random_range(0..GLUE.len())]);
                text.push_str(PIECES[rng.random_range(0..PIECES.len())]);
            }
            let s = text.as_bytes();
            let starts = TokenStarts::of(s);
            let every: Vec<u32> = (0..s.len() as u32).collect();
            let fast = Ctx {
                key: "",
                plans: &d.plans,
                starts: &starts.all,
                number_starts: &starts.numbers,
            };
            let slow = Ctx {
                key: "",
                plans: &d.plans,
                starts: &every,
                number_starts: &every,
            };
            for (bit, has) in [
                (DIGIT, s.iter().any(u8::is_ascii_digit)),
                (AT, s.contains(&b'@')),
                (COLON, s.contains(&b':')),
                (DOT, s.contains(&b'.')),
                (DASH, s.contains(&b'-')),
            ] {
                assert_eq!(starts.seen & bit != 0, has, "bit {bit} of {text:?}");
            }
            assert_eq!(
                d.run(s, &fast, starts.seen),
                d.run(s, &slow, starts.seen),
                "{text:?}"
            );
            let (mut v6, mut v6_every) = (Vec::new(), Vec::new());
            ip::find_v6(s, &mut v6);
            find_v6_at_every_byte(s, &mut v6_every);
            assert_eq!(v6, v6_every, "{text:?}");
        }
    }

    /// `(kind, matched text)` of everything found in `text`.
    pub(crate) fn found(text: &str) -> Vec<(EntityKind, String)> {
        Detector::default()
            .detect(text)
            .into_iter()
            .map(|m| (m.kind, text[m.start..m.end].to_owned()))
            .collect()
    }

    fn kinds(text: &str) -> Vec<EntityKind> {
        found(text).into_iter().map(|(k, _)| k).collect()
    }

    #[test]
    fn finds_each_kind_in_free_text() {
        use EntityKind::*;
        for (text, kind, what) in [
            (
                "write to ann.lee+x@mail.example.co.uk today",
                Email,
                "ann.lee+x@mail.example.co.uk",
            ),
            ("call +44 20 7946 0958 now", Phone, "+44 20 7946 0958"),
            ("call (202) 555-0143 now", Phone, "(202) 555-0143"),
            ("ruf 030 1234567 an", Phone, "030 1234567"),
            (
                "card 4111 1111 1111 1111 ok",
                CreditCard,
                "4111 1111 1111 1111",
            ),
            ("amex 3782-822463-10005 ok", CreditCard, "3782-822463-10005"),
            (
                "pay DE89 3704 0044 0532 0130 00 now",
                Iban,
                "DE89 3704 0044 0532 0130 00",
            ),
            ("from 192.168.1.20 port", Ipv4, "192.168.1.20"),
            (
                "from 2001:db8:85a3::8a2e:370:7334 port",
                Ipv6,
                "2001:db8:85a3::8a2e:370:7334",
            ),
            ("nic 00:1A:2b:3C:4d:5E up", Mac, "00:1A:2b:3C:4d:5E"),
            (
                "see https://example.com/a?b=c.",
                Url,
                "https://example.com/a?b=c",
            ),
            ("on 2024-03-15 we", Date, "2024-03-15"),
            ("born 12 March 1990 in", DateOfBirth, "12 March 1990"),
            ("at 51.50722, -0.12750 now", Gps, "51.50722, -0.12750"),
            ("ssn 123-45-6789 ok", UsSsn, "123-45-6789"),
            ("nino AB 12 34 56 C ok", UkNino, "AB 12 34 56 C"),
        ] {
            assert_eq!(found(text), vec![(kind, what.to_owned())], "{text}");
        }
    }

    /// A card number written next to another number, separated by a
    /// space, is found (the property tests found `12 March 1990 4111 1111
    /// 1111 1111` missed: the digit run from 1990 was 20 digits, no card,
    /// and skipped whole).
    #[test]
    fn a_card_beside_another_number_is_found() {
        for text in [
            "born 12 March 1990 4111 1111 1111 1111",
            "card 4111 1111 1111 1111 2024 exp",
            "qty 3 4111 1111 1111 1111 9 ok",
        ] {
            let cards: Vec<String> = found(text)
                .into_iter()
                .filter(|(k, _)| *k == EntityKind::CreditCard)
                .map(|(_, t)| t)
                .collect();
            assert_eq!(cards, vec!["4111 1111 1111 1111".to_owned()], "{text}");
        }
        // Cut out of a longer spaced run, a Luhn-valid issuer's number must
        // also be grouped as cards are printed: `5678 9012 3456` (12 digits,
        // Luhn-valid, a Maestro prefix) is not taken from this one.
        assert_eq!(found("ids 1234 5678 9012 3456 7890 1234"), vec![]);
    }

    /// A phone number followed by more digits is found: the longest run
    /// of its groups that is a number (the property tests found both of
    /// `+44 20 7946 0958 (202) 555-0143` missed, a 22-digit run).
    #[test]
    fn a_phone_followed_by_more_digits_is_found() {
        for (text, phones) in [
            (
                "+44 20 7946 0958 (202) 555-0143",
                &["+44 20 7946 0958", "(202) 555-0143"][..],
            ),
            ("call (202) 555-0143 2024 ok", &["(202) 555-0143"][..]),
        ] {
            let got: Vec<String> = found(text)
                .into_iter()
                .filter(|(k, _)| *k == EntityKind::Phone)
                .map(|(_, t)| t)
                .collect();
            assert_eq!(got, phones, "{text}");
        }
    }

    /// An address glued to what follows by '-' still ends at its
    /// top-level domain (found by the property tests: the whole address
    /// used to be dropped because `com-030` is no top-level domain).
    #[test]
    fn an_email_ends_at_its_top_level_domain() {
        use EntityKind::Email;
        for (text, email) in [
            ("ann@example.com-030 1234567", Some("ann@example.com")),
            (
                "to ann@mail.example.co.uk-x now",
                Some("ann@mail.example.co.uk"),
            ),
            ("ann@example.com.1 ok", Some("ann@example.com")),
            ("ann@sub-1.example.org", Some("ann@sub-1.example.org")),
            ("ann@example.c0m", None),
            ("ann@example.com123-45-6789", Some("ann@example.com")),
            (
                "DE89 3704 0044 0532 0130 00-ann@example.com",
                Some("ann@example.com"),
            ),
            ("ann@example.xn--p1ai ok", Some("ann@example.xn--p1ai")),
            ("ann@-example.com", None),
            ("ann@localhost", None),
        ] {
            let emails: Vec<String> = found(text)
                .into_iter()
                .filter(|(k, _)| *k == Email)
                .map(|(_, t)| t)
                .collect();
            assert_eq!(
                emails,
                email.into_iter().map(str::to_owned).collect::<Vec<_>>(),
                "{text}"
            );
        }
        // Glued to another, neither address leaves a part behind, whichever
        // of the two is kept whole.
        assert_eq!(
            found("bob@mail.example.co.ukann@example.com"),
            vec![
                (Email, "bob@".to_owned()),
                (Email, "mail.example.co.ukann@example.com".to_owned())
            ]
        );
        assert_eq!(
            found("bob.lee+tag@mail.example.co.ukann@example.com"),
            vec![
                (Email, "bob.lee+tag@mail.example.co.ukann".to_owned()),
                (Email, "@example.com".to_owned())
            ]
        );
    }

    #[test]
    fn decoys_are_left_alone() {
        for text in [
            "order 4111111111111112 shipped",          // fails Luhn
            "order number 1234567890123456",           // fails Luhn
            "invoice 2024000123",                      // a number, not a phone
            "at 2024-03-15T10:00:00Z it ran",          // a timestamp
            "id 550e8400-e29b-41d4-a716-446655440000", // a UUID
            "version 1.2.3.4 released",                // a version string
            "v2.10.1 and 3.14159",                     // versions and pi
            "DE00 3704 0044 0532 0130 00",             // bad IBAN check digits
            "ssn 666-12-3456 invalid area",
            "time 10:30:45 today",
            "ratio 1.5, 2.5",
        ] {
            assert_eq!(kinds(text), vec![], "{text}: {:?}", found(text));
        }
    }
}
