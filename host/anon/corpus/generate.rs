//! The labelled test corpus Sluice builds itself: synthetic records of free
//! text with personal data in many formats per kind, mixed with decoys
//! that only look like it (order numbers that fail Luhn, timestamps, UUIDs,
//! version strings, amounts, times). Deterministic from a seed, so the
//! precision/recall figures in docs/anonymisation.md can be reproduced.
//! Included with `#[path]` by the corpus test and the `corpus` example
//! (which writes it as JSONL for the Presidio comparison).

#![allow(dead_code)]

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sluice_anon::EntityKind;

/// One labelled record.
pub struct Record {
    pub text: String,
    /// (kind, start, end) byte spans.
    pub labels: Vec<(EntityKind, usize, usize)>,
}

pub struct Gen {
    rng: StdRng,
}

const FIRST: &[&str] = &[
    "ann", "bob", "chloe", "dev", "emma", "farid", "grace", "hugo", "ines", "jon", "kiri", "lena",
];
const LAST: &[&str] = &[
    "lee", "smith", "okafor", "garcia", "muller", "rossi", "tanaka", "novak", "dubois", "khan",
];
const DOMAINS: &[&str] = &[
    "example.com",
    "mail.example.org",
    "corp.example.co.uk",
    "example.net",
    "sub.example.io",
];
const FILLER: &[&str] = &[
    "the customer asked about the delivery",
    "please update the record",
    "ticket escalated to tier two",
    "no further action needed",
    "refund approved after review",
    "meeting moved to next week",
    "the device reported a fault",
    "account flagged for verification",
];

impl Gen {
    pub fn new(seed: u64) -> Self {
        Gen {
            rng: StdRng::seed_from_u64(seed),
        }
    }

    fn pick<'a>(&mut self, xs: &[&'a str]) -> &'a str {
        xs[self.rng.random_range(0..xs.len())]
    }

    fn digits(&mut self, n: usize) -> String {
        (0..n)
            .map(|_| (b'0' + self.rng.random_range(0..10u8)) as char)
            .collect()
    }

    fn email(&mut self) -> String {
        let (f, l, d) = (self.pick(FIRST), self.pick(LAST), self.pick(DOMAINS));
        match self.rng.random_range(0..5) {
            0 => format!("{f}.{l}@{d}"),
            1 => format!("{f}_{}{}@{d}", &l[..1], self.rng.random_range(1..999)),
            2 => format!("{f}+news@{d}"),
            3 => format!("{}.{}@{}", f.to_uppercase(), l, d.to_uppercase()),
            _ => format!("{l}{}@{d}", self.rng.random_range(10..99)),
        }
    }

    fn phone(&mut self) -> String {
        loop {
            let p = match self.rng.random_range(0..10) {
                0 => format!(
                    "+1{}202{}555{}{}",
                    ["-", " ", "."][self.rng.random_range(0..3)],
                    ["-", " ", "."][self.rng.random_range(0..3)],
                    ["-", " ", "."][self.rng.random_range(0..3)],
                    self.digits(4)
                ),
                1 => format!("(202) 555-{}", self.digits(4)),
                2 => format!("212-555-{}", self.digits(4)),
                3 => format!("+44 20 7946 {}", self.digits(4)),
                4 => format!("020 7946 {}", self.digits(4)),
                5 => format!("+44 7700 900{}", self.digits(3)),
                6 => format!("+49 30 {}", self.digits(8)),
                7 => format!("030 {}", self.digits(8)),
                8 => format!(
                    "+33 1 {} {} {} {}",
                    self.digits(2),
                    self.digits(2),
                    self.digits(2),
                    self.digits(2)
                ),
                _ => format!(
                    "01 {} {} {} {}",
                    self.digits(2),
                    self.digits(2),
                    self.digits(2),
                    self.digits(2)
                ),
            };
            // Label only numbers the numbering plans accept.
            let region = if p.starts_with("01 ") {
                Some(phonenumber::country::Id::FR)
            } else if p.starts_with("030") {
                Some(phonenumber::country::Id::DE)
            } else if p.starts_with("020") {
                Some(phonenumber::country::Id::GB)
            } else if p.starts_with('+') {
                None
            } else {
                Some(phonenumber::country::Id::US)
            };
            if phonenumber::parse(region, &p).is_ok_and(|n| phonenumber::is_valid(&n)) {
                return p;
            }
        }
    }

    fn luhn_complete(&mut self, prefix: &str, len: usize) -> Vec<u8> {
        let mut d: Vec<u8> = prefix.bytes().map(|b| b - b'0').collect();
        while d.len() < len - 1 {
            d.push(self.rng.random_range(0..10));
        }
        let sum: u32 = d
            .iter()
            .rev()
            .enumerate()
            .map(|(i, &x)| {
                let x = u32::from(x);
                if i % 2 == 0 {
                    if x * 2 > 9 { x * 2 - 9 } else { x * 2 }
                } else {
                    x
                }
            })
            .sum();
        d.push(((10 - sum % 10) % 10) as u8);
        d
    }

    fn card(&mut self) -> String {
        let (prefix, len, groups): (&str, usize, &[usize]) = match self.rng.random_range(0..5) {
            0 => ("4", 16, &[4, 4, 4, 4]),
            1 => ("5", 16, &[4, 4, 4, 4]),
            2 => ("37", 15, &[4, 6, 5]),
            3 => ("6011", 16, &[4, 4, 4, 4]),
            _ => ("2221", 16, &[4, 4, 4, 4]),
        };
        let prefix = if prefix == "5" {
            ["51", "52", "53", "54", "55"][self.rng.random_range(0..5)]
        } else {
            prefix
        };
        let d = self.luhn_complete(prefix, len);
        let s: String = d.iter().map(|x| (b'0' + x) as char).collect();
        let sep = ["", " ", "-"][self.rng.random_range(0..3)];
        let mut out = String::new();
        let mut at = 0;
        for (i, g) in groups.iter().enumerate() {
            if i > 0 {
                out.push_str(sep);
            }
            out.push_str(&s[at..at + g]);
            at += g;
        }
        out
    }

    fn iban(&mut self) -> String {
        let (cc, bban) = match self.rng.random_range(0..5) {
            0 => ("DE", self.digits(18)),
            1 => ("GB", format!("NWBK{}", self.digits(14))),
            2 => ("FR", format!("{}{}", self.digits(21), "06")),
            3 => ("NL", format!("ABNA{}", self.digits(10))),
            _ => ("ES", self.digits(20)),
        };
        // Check digits: 98 - (bban + cc + "00") mod 97, letters as 10..35.
        let mut rem = 0u32;
        for b in bban.bytes().chain(cc.bytes()).chain(*b"00") {
            let v = if b.is_ascii_digit() {
                u32::from(b - b'0')
            } else {
                u32::from(b - b'A') + 10
            };
            rem = if v >= 10 {
                (rem * 100 + v) % 97
            } else {
                (rem * 10 + v) % 97
            };
        }
        let iban = format!("{cc}{:02}{bban}", 98 - rem);
        if self.rng.random_bool(0.5) {
            iban.as_bytes()
                .chunks(4)
                .map(|c| std::str::from_utf8(c).unwrap())
                .collect::<Vec<_>>()
                .join(" ")
        } else {
            iban
        }
    }

    fn ipv4(&mut self) -> String {
        let first = [10, 172, 192, 81, 203, 8][self.rng.random_range(0..6)];
        format!(
            "{first}.{}.{}.{}",
            self.rng.random_range(0..256),
            self.rng.random_range(0..256),
            self.rng.random_range(1..255)
        )
    }

    fn ipv6(&mut self) -> String {
        let g: Vec<String> = (0..8)
            .map(|_| format!("{:x}", self.rng.random_range(1..0xffffu32)))
            .collect();
        match self.rng.random_range(0..3) {
            0 => g.join(":"),
            1 => format!("2001:db8:{}::{}", g[2], g[7]),
            _ => format!("fe80::{}:{}", g[6], g[7]),
        }
    }

    fn mac(&mut self) -> String {
        let b: Vec<u8> = (0..6).map(|_| self.rng.random()).collect();
        match self.rng.random_range(0..3) {
            0 => b
                .iter()
                .map(|x| format!("{x:02x}"))
                .collect::<Vec<_>>()
                .join(":"),
            1 => b
                .iter()
                .map(|x| format!("{x:02X}"))
                .collect::<Vec<_>>()
                .join("-"),
            _ => format!(
                "{:02x}{:02x}.{:02x}{:02x}.{:02x}{:02x}",
                b[0], b[1], b[2], b[3], b[4], b[5]
            ),
        }
    }

    fn url(&mut self) -> String {
        let d = self.pick(DOMAINS);
        match self.rng.random_range(0..3) {
            0 => format!(
                "https://{d}/account/{}?ref=mail",
                self.rng.random_range(1..9999)
            ),
            1 => format!("http://www.{d}/p/{}", self.pick(LAST)),
            _ => format!("www.{d}/help"),
        }
    }

    fn date(&mut self) -> String {
        let (y, m, d) = (
            self.rng.random_range(1950..2025),
            self.rng.random_range(1..13u32),
            self.rng.random_range(1..29u32),
        );
        const NAMES: [&str; 12] = [
            "January",
            "February",
            "March",
            "April",
            "May",
            "June",
            "July",
            "August",
            "September",
            "October",
            "November",
            "December",
        ];
        match self.rng.random_range(0..6) {
            0 => format!("{y}-{m:02}-{d:02}"),
            1 => format!("{d:02}/{m:02}/{y}"),
            2 => format!("{m:02}/{d:02}/{y}"),
            3 => format!("{d:02}.{m:02}.{y}"),
            4 => format!("{d} {} {y}", NAMES[m as usize - 1]),
            _ => format!("{} {d}, {y}", &NAMES[m as usize - 1][..3]),
        }
    }

    fn gps(&mut self) -> String {
        let lat: f64 = self.rng.random_range(-89.0..89.0);
        let lon: f64 = self.rng.random_range(-179.0..179.0);
        if self.rng.random_bool(0.7) {
            format!("{lat:.5}, {lon:.5}")
        } else {
            format!(
                "{:.4}° {}, {:.4}° {}",
                lat.abs(),
                if lat < 0.0 { 'S' } else { 'N' },
                lon.abs(),
                if lon < 0.0 { 'W' } else { 'E' }
            )
        }
    }

    fn ssn(&mut self) -> String {
        let area = loop {
            let a = self.rng.random_range(1..900);
            if a != 666 {
                break a;
            }
        };
        let sep = if self.rng.random_bool(0.8) { "-" } else { " " };
        format!(
            "{area:03}{sep}{:02}{sep}{:04}",
            self.rng.random_range(1..100),
            self.rng.random_range(1..10000)
        )
    }

    fn nino(&mut self) -> String {
        let first = b"ABCEGHJKLMNPRSTWXYZ";
        let second = b"ABCEGHJKLMNPRSTWXYZ";
        let (a, b) = loop {
            let a = first[self.rng.random_range(0..first.len())];
            let b = second[self.rng.random_range(0..second.len())];
            if ![b"BG", b"GB", b"KN", b"NK", b"NT", b"TN", b"ZZ"]
                .iter()
                .any(|p| p[0] == a && p[1] == b)
            {
                break (a as char, b as char);
            }
        };
        let suffix = (b'A' + self.rng.random_range(0..4u8)) as char;
        let d = self.digits(6);
        if self.rng.random_bool(0.5) {
            format!("{a}{b} {} {} {} {suffix}", &d[..2], &d[2..4], &d[4..])
        } else {
            format!("{a}{b}{d}{suffix}")
        }
    }

    /// A decoy: looks like personal data, is not.
    fn decoy(&mut self) -> String {
        match self.rng.random_range(0..10) {
            0 => {
                // 16 digits that fail Luhn.
                loop {
                    let d = format!("4{}", self.digits(15));
                    let digits: Vec<u8> = d.bytes().map(|b| b - b'0').collect();
                    let sum: u32 = digits
                        .iter()
                        .rev()
                        .enumerate()
                        .map(|(i, &x)| {
                            let x = u32::from(x);
                            if i % 2 == 1 {
                                if x * 2 > 9 { x * 2 - 9 } else { x * 2 }
                            } else {
                                x
                            }
                        })
                        .sum();
                    if !sum.is_multiple_of(10) {
                        return format!("order {d}");
                    }
                }
            }
            1 => format!(
                "created 2024-0{}-1{}T0{}:2{}:00Z",
                self.rng.random_range(1..10),
                self.rng.random_range(0..10),
                self.rng.random_range(0..10),
                self.rng.random_range(0..10)
            ),
            2 => format!(
                "id {:08x}-{:04x}-4{:03x}-a{:03x}-{:012x}",
                self.rng.random::<u32>(),
                self.rng.random::<u16>(),
                self.rng.random_range(0..0xfff),
                self.rng.random_range(0..0xfff),
                self.rng.random::<u64>() & 0xffff_ffff_ffff
            ),
            3 => format!(
                "version {}.{}.{}",
                self.rng.random_range(0..10),
                self.rng.random_range(0..30),
                self.rng.random_range(0..100)
            ),
            4 => format!(
                "total {},{:03}.{:02} EUR",
                self.rng.random_range(1..99),
                self.rng.random_range(0..1000),
                self.rng.random_range(0..100)
            ),
            5 => format!(
                "at {:02}:{:02}:{:02}",
                self.rng.random_range(0..24),
                self.rng.random_range(0..60),
                self.rng.random_range(0..60)
            ),
            6 => format!("invoice {}", self.digits(10)),
            7 => format!(
                "build v{}.{}.{}.{}",
                self.rng.random_range(1..10),
                self.rng.random_range(0..10),
                self.rng.random_range(0..10),
                self.rng.random_range(0..999)
            ),
            8 => format!(
                "sha {:016x}{:016x}",
                self.rng.random::<u64>(),
                self.rng.random::<u64>()
            ),
            _ => format!(
                "ratio {}.{}, {}.{}",
                self.rng.random_range(0..10),
                self.rng.random_range(0..10),
                self.rng.random_range(0..10),
                self.rng.random_range(0..10)
            ),
        }
    }

    fn entity(&mut self, kind: EntityKind) -> (String, String) {
        use EntityKind::*;
        match kind {
            Email => ("write to".into(), self.email()),
            Phone => (
                ["call", "reach them on", "phone:", "mobile"][self.rng.random_range(0..4)].into(),
                self.phone(),
            ),
            CreditCard => (
                ["card", "paid with", "cc"][self.rng.random_range(0..3)].into(),
                self.card(),
            ),
            Iban => ("transfer to".into(), self.iban()),
            Ipv4 => ("seen from".into(), self.ipv4()),
            Ipv6 => ("client".into(), self.ipv6()),
            Mac => ("device".into(), self.mac()),
            Url => ("see".into(), self.url()),
            Date => (
                ["on", "due", "shipped"][self.rng.random_range(0..3)].into(),
                self.date(),
            ),
            DateOfBirth => (
                ["born on", "DOB:", "date of birth"][self.rng.random_range(0..3)].into(),
                self.date(),
            ),
            Gps => ("last position".into(), self.gps()),
            UsSsn => ("ssn".into(), self.ssn()),
            UkNino => ("NI number".into(), self.nino()),
        }
    }

    /// A record of about `target_bytes` bytes.
    pub fn record(&mut self, target_bytes: usize) -> Record {
        let mut text = String::new();
        let mut labels = Vec::new();
        while text.len() < target_bytes {
            if !text.is_empty() {
                text.push_str(". ");
            }
            let choice = self.rng.random_range(0..10);
            if choice < 2 {
                let f = self.pick(FILLER);
                text.push_str(f);
            } else if choice < 4 {
                let d = self.decoy();
                text.push_str(&d);
            } else {
                let kind = EntityKind::ALL[self.rng.random_range(0..EntityKind::ALL.len())];
                let (lead, value) = self.entity(kind);
                text.push_str(&lead);
                // Entities sit where people put them: after a space or a
                // colon, in parentheses, quotes or brackets, before a comma.
                let (open, close) = [
                    (" ", ""),
                    (" ", ""),
                    (" ", ","),
                    (" (", ")"),
                    (" \"", "\""),
                    (": ", ""),
                    (" [", "]"),
                    (" <", ">"),
                ][self.rng.random_range(0..8)];
                text.push_str(open);
                let start = text.len();
                text.push_str(&value);
                labels.push((kind, start, text.len()));
                text.push_str(close);
            }
        }
        text.push('.');
        Record { text, labels }
    }
}
