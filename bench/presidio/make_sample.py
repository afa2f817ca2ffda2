#!/usr/bin/env python3
"""Generate bench/presidio/sample.jsonl: a small labelled corpus for presidio_bench.py.

Standard library only, deterministic (fixed seed).  Each line is
  {"text": "...", "entities": [{"type": "EMAIL", "start": 3, "end": 20}, ...]}
with ASCII text and byte (= char) offsets, the format the Rust corpus generator
will emit.  Half the records are ~100 bytes (one or two identifiers), half are
~1 KiB (a support ticket / log excerpt with a dozen identifiers).

    python3 bench/presidio/make_sample.py [--out FILE] [--small N] [--large N] [--seed S]
"""
import argparse
import json
import os
import random
import string

FIRST = ["Jane", "Omar", "Li", "Priya", "Lukas", "Chloe", "Mateo", "Aoife", "Kwame", "Sofia",
         "Henrik", "Yuki", "Fatima", "Tom", "Ines", "Dmitri", "Grace", "Rahul", "Elena", "Noah"]
LAST = ["Doe", "Haddad", "Wei", "Raman", "Becker", "Martin", "Garcia", "Byrne", "Mensah", "Rossi",
        "Lund", "Tanaka", "Khan", "Walker", "Moreau", "Petrov", "Okafor", "Mehta", "Novak", "Smith"]
DOMAINS = ["example.com", "example.org", "mail.example.net", "acme-corp.io", "contoso.co.uk",
           "fabrikam.de", "northwind.fr", "globex.com"]
MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August",
          "September", "October", "November", "December"]


class Rec:
    """Accumulates text and entity spans."""

    def __init__(self):
        self.parts = []
        self.len = 0
        self.ents = []

    def t(self, s):
        self.parts.append(s)
        self.len += len(s)
        return self

    def e(self, typ, s):
        self.ents.append({"type": typ, "start": self.len, "end": self.len + len(s)})
        return self.t(s)

    def out(self):
        text = "".join(self.parts)
        assert text.isascii()
        for ent in self.ents:
            assert 0 <= ent["start"] < ent["end"] <= len(text)
        return {"text": text, "entities": self.ents}


def name(r):
    return f"{r.choice(FIRST)} {r.choice(LAST)}"


def email(r):
    f, l, d = r.choice(FIRST).lower(), r.choice(LAST).lower(), r.choice(DOMAINS)
    local = r.choice([f"{f}.{l}", f"{f[0]}{l}", f"{f}_{l}{r.randint(1, 99)}", f"{f}+billing", "ops", "support"])
    return f"{local}@{d}"


def phone(r):
    area = r.choice(["212", "415", "617", "312", "206", "303", "512", "646"])
    ex = f"{r.randint(201, 989)}"
    sub = f"{r.randint(0, 9999):04d}"
    return r.choice([
        f"({area}) {ex}-{sub}",
        f"{area}-{ex}-{sub}",
        f"{area}.{ex}.{sub}",
        f"+1 {area} {ex} {sub}",
        f"+1-{area}-{ex}-{sub}",
        f"+44 20 7946 {r.randint(0, 999):04d}",
        f"020 7946 {r.randint(0, 999):04d}",
        f"+44 7{r.randint(400, 999)} {r.randint(100000, 999999)}",
        f"+49 30 {r.randint(1000000, 9999999)}",
        f"+33 1 42 {r.randint(10, 99)} {r.randint(10, 99)} {r.randint(10, 99)}",
    ])


def luhn_complete(prefix, length, r):
    digits = [int(c) for c in prefix] + [r.randint(0, 9) for _ in range(length - len(prefix) - 1)]
    total = 0
    for i, d in enumerate(reversed(digits)):  # positions from the right, check digit excluded
        if i % 2 == 0:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return "".join(map(str, digits)) + str((10 - total % 10) % 10)


def card(r):
    kind = r.choice(["visa", "mc", "amex", "visa", "mc"])
    if kind == "amex":
        n = luhn_complete(r.choice(["34", "37"]), 15, r)
        groups = [n[:4], n[4:10], n[10:]]
    else:
        n = luhn_complete("4" if kind == "visa" else str(r.randint(51, 55)), 16, r)
        groups = [n[i:i + 4] for i in range(0, 16, 4)]
    sep = r.choice([" ", "-", ""])
    return sep.join(groups)


def iban(r):
    country, bban = r.choice([
        ("DE", lambda: "".join(r.choice(string.digits) for _ in range(18))),
        ("GB", lambda: "".join(r.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZ") for _ in range(4))
               + "".join(r.choice(string.digits) for _ in range(14))),
        ("FR", lambda: "".join(r.choice(string.digits) for _ in range(23))),
        ("NL", lambda: "".join(r.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZ") for _ in range(4))
               + "".join(r.choice(string.digits) for _ in range(10))),
    ])
    bban = bban()
    rearranged = bban + country + "00"
    num = int("".join(str(int(c, 36)) for c in rearranged))
    code = f"{country}{98 - num % 97:02d}{bban}"
    if r.random() < 0.5:
        code = " ".join(code[i:i + 4] for i in range(0, len(code), 4))
    return code


def ipv4(r):
    return r.choice([
        f"203.0.113.{r.randint(1, 254)}",
        f"198.51.100.{r.randint(1, 254)}",
        f"192.0.2.{r.randint(1, 254)}",
        f"{r.randint(11, 223)}.{r.randint(0, 255)}.{r.randint(0, 255)}.{r.randint(1, 254)}",
    ])


def ipv6(r):
    h = lambda: f"{r.randint(0, 0xffff):x}"
    return r.choice([
        f"2001:db8:{h()}:{h()}::{h()}",
        f"2001:0db8:85a3:0000:0000:8a2e:{r.randint(0, 0xffff):04x}:{r.randint(0, 0xffff):04x}",
        f"fe80::{h()}:{h()}:{h()}:{h()}",
        f"2001:db8::{h()}",
    ])


def mac(r):
    octets = [f"{r.randint(0, 255):02X}" for _ in range(6)]
    return r.choice([":", "-"]).join(octets) if r.random() < 0.8 else ":".join(octets).lower()


def url(r):
    d = r.choice(["shop.example.com", "portal.contoso.co.uk", "www.fabrikam.de", "tracking.globex.com",
                  "docs.northwind.fr"])
    path = r.choice(["/orders/" + str(r.randint(10000, 99999)), "/account/reset?token=" +
                     "".join(r.choice(string.ascii_lowercase + string.digits) for _ in range(12)),
                     "/t/" + str(r.randint(100000, 999999)), "/help"])
    return r.choice([f"https://{d}{path}", f"http://{d}{path}", f"{d}{path}"])


def date(r):
    y, m, d = r.randint(2019, 2025), r.randint(1, 12), r.randint(1, 28)
    return r.choice([
        f"{y}-{m:02d}-{d:02d}",
        f"{d:02d}/{m:02d}/{y}",
        f"{m:02d}/{d:02d}/{y}",
        f"{MONTHS[m - 1]} {d}, {y}",
        f"{d} {MONTHS[m - 1][:3]} {y}",
    ])


def dob(r):
    y, m, d = r.randint(1950, 2004), r.randint(1, 12), r.randint(1, 28)
    return r.choice([f"{y}-{m:02d}-{d:02d}", f"{d:02d}/{m:02d}/{y}", f"{d} {MONTHS[m - 1]} {y}"])


def gps(r):
    lat = r.uniform(-60, 70)
    lon = r.uniform(-170, 170)
    return f"{lat:.4f}, {lon:.4f}"


def ssn(r):
    return f"{r.randint(100, 665)}-{r.randint(10, 99)}-{r.randint(1000, 9999)}"


def nino(r):
    first = "ABCEGHJKLMNPRSTWXYZ"
    second = "ABCEGHJKLMNPRSTWXYZ"
    while True:
        p = r.choice(first) + r.choice(second)
        if p not in ("BG", "GB", "NK", "KN", "NT", "TN", "ZZ"):
            break
    digits = f"{r.randint(0, 999999):06d}"
    suffix = r.choice("ABCD")
    if r.random() < 0.5:
        return f"{p} {digits[:2]} {digits[2:4]} {digits[4:]} {suffix}"
    return f"{p}{digits}{suffix}"


GEN = {"EMAIL": email, "PHONE": phone, "CREDIT_CARD": card, "IBAN": iban, "IPV4": ipv4,
       "IPV6": ipv6, "MAC": mac, "URL": url, "DATE": date, "DATE_OF_BIRTH": dob, "GPS": gps,
       "US_SSN": ssn, "UK_NINO": nino}

# Short (~100 byte) templates: (prefix, type, suffix) or two-entity variants.
SHORT = [
    lambda R, r: R.t(f"Hi, this is {name(r)}, reach me at ").e("EMAIL", email(r)).t(" or ").e("PHONE", phone(r)).t(" please."),
    lambda R, r: R.t(f"Card on file for {name(r)}: ").e("CREDIT_CARD", card(r)).t(", expires 09/27."),
    lambda R, r: R.t(f"Refund to IBAN ").e("IBAN", iban(r)).t(f" for {name(r)}, ref #{r.randint(1000, 9999)}."),
    lambda R, r: R.t("login failed from ").e("IPV4", ipv4(r)).t(f" user={r.choice(FIRST).lower()} attempts={r.randint(2, 9)}"),
    lambda R, r: R.t("conn from ").e("IPV6", ipv6(r)).t(" mac ").e("MAC", mac(r)).t(" dropped"),
    lambda R, r: R.t(f"{name(r)} said the reset link ").e("URL", url(r)).t(" expired on ").e("DATE", date(r)).t("."),
    lambda R, r: R.t(f"Patient {name(r)}, DOB ").e("DATE_OF_BIRTH", dob(r)).t(", called about results."),
    lambda R, r: R.t("Driver last seen at ").e("GPS", gps(r)).t(f" at {r.randint(10, 23)}:{r.randint(10, 59)}, call ").e("PHONE", phone(r)),
    lambda R, r: R.t(f"Applicant {name(r)}, SSN ").e("US_SSN", ssn(r)).t(", verified."),
    lambda R, r: R.t(f"NI number ").e("UK_NINO", nino(r)).t(f" on file for {name(r)}, payroll updated."),
    lambda R, r: R.t(f"Call {name(r)} back on ").e("PHONE", phone(r)).t(" about order " + str(r.randint(100000, 999999)) + "."),
    lambda R, r: R.t("Forwarded to ").e("EMAIL", email(r)).t(" on ").e("DATE", date(r)).t(" by the night shift."),
]


def long_record(r):
    R = Rec()
    who, agent = name(r), name(r)
    R.t(f"Ticket #{r.randint(100000, 999999)} opened ").e("DATE", date(r)).t(f" by {who}. ")
    R.t("Customer writes: \"Hello, I moved house and need to update my details. My new email is ")
    R.e("EMAIL", email(r)).t(" and my mobile is ").e("PHONE", phone(r)).t(". You can also call my office on ")
    R.e("PHONE", phone(r)).t(". My date of birth is ").e("DATE_OF_BIRTH", dob(r)).t(" in case you need to verify. ")
    R.t("Last month I was charged twice on the card ending in the number ").e("CREDIT_CARD", card(r))
    R.t(", please refund the duplicate to my account ").e("IBAN", iban(r)).t(". ")
    if r.random() < 0.5:
        R.t("For the tax form my SSN is ").e("US_SSN", ssn(r)).t(". ")
    else:
        R.t("For the payroll form my national insurance number is ").e("UK_NINO", nino(r)).t(". ")
    R.t("Thanks!\" ")
    R.t(f"Agent {agent} notes: the customer logged in from ").e("IPV4", ipv4(r)).t(" and later from ")
    R.e("IPV6", ipv6(r)).t("; device MAC ").e("MAC", mac(r)).t(" was registered on ").e("DATE", date(r)).t(". ")
    R.t("Delivery driver reported the parcel at ").e("GPS", gps(r)).t(" and uploaded a photo to ")
    R.e("URL", url(r)).t(". ")
    R.t("Escalated to ").e("EMAIL", email(r)).t(f" with priority P{r.randint(1, 3)}; see also ").e("URL", url(r))
    R.t(". Follow-up scheduled for ").e("DATE", date(r)).t(". ")
    filler = ("The customer confirmed the billing address and asked that no marketing be sent. "
              "Standard verification questions were answered correctly and the case was tagged for review. ")
    while R.len < 960:
        R.t(filler[: max(0, min(len(filler), 1024 - R.len))])
    return R.out()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "sample.jsonl"))
    ap.add_argument("--small", type=int, default=25)
    ap.add_argument("--large", type=int, default=25)
    ap.add_argument("--seed", type=int, default=20240601)
    a = ap.parse_args()
    r = random.Random(a.seed)
    recs = []
    for i in range(a.small):
        R = Rec()
        SHORT[i % len(SHORT)](R, r)
        tails = [" Please confirm by end of day.", " Sent from my phone.", " Thanks in advance for the help!",
                 " -- forwarded by the helpdesk"]
        r.shuffle(tails)
        for tail in tails:
            if R.len >= 90:
                break
            R.t(tail)
        recs.append(R.out())
    for _ in range(a.large):
        recs.append(long_record(r))
    with open(a.out, "w") as f:
        for rec in recs:
            f.write(json.dumps(rec) + "\n")
    sizes = sorted(len(x["text"]) for x in recs)
    print(f"wrote {len(recs)} records to {a.out}: bytes min={sizes[0]} median={sizes[len(sizes) // 2]} max={sizes[-1]}")


if __name__ == "__main__":
    main()
