#!/usr/bin/env python3
"""Throughput and accuracy of Microsoft Presidio (pattern recognizers only) on a labelled corpus.

For every record: AnalyzerEngine.analyze() then AnonymizerEngine.anonymize() with the
"replace" operator for all entities.  CPU time (time.process_time) covers only these two
calls; loading, warm-up and scoring are outside it.

No spaCy model is needed: the analyzer runs on Presidio's NoOpNlpEngine (an NLP engine
that loads no model and returns empty NLP artifacts), so only self-contained recognizers
run.  Context-word score boosting, which needs tokens/lemmas, is therefore inactive.

Corpus: JSONL, one {"text": "...", "entities": [{"type": T, "start": s, "end": e}, ...]}
per line, ASCII, byte (= char) offsets.  Types: EMAIL PHONE CREDIT_CARD IBAN IPV4 IPV6
MAC URL DATE DATE_OF_BIRTH GPS US_SSN UK_NINO.

    python presidio_bench.py --corpus sample.jsonl [--repeat N] [--min-bytes A] [--max-bytes B] [--json]
"""
import argparse
import json
import logging
import os
import sys
import time
from collections import defaultdict

# tldextract (used by Presidio's EmailRecognizer to validate domains) would otherwise try to
# download the public suffix list on first use; force its bundled snapshot instead.  Must be
# set before tldextract is imported; the attribute below is set too, for good measure.
os.environ.setdefault("TLDEXTRACT_PUBLIC_SUFFIX_LIST_URLS", "")

import tldextract  # noqa: E402
from presidio_analyzer import AnalyzerEngine, RecognizerRegistry  # noqa: E402
from presidio_analyzer.nlp_engine import NoOpNlpEngine  # noqa: E402
from presidio_analyzer.predefined_recognizers import (  # noqa: E402
    CreditCardRecognizer,
    DateRecognizer,
    EmailRecognizer,
    IbanRecognizer,
    IpRecognizer,
    MacAddressRecognizer,
    PhoneRecognizer,
    UkNinoRecognizer,
    UrlRecognizer,
    UsSsnRecognizer,
)
from presidio_anonymizer import AnonymizerEngine  # noqa: E402
from presidio_anonymizer.entities import ConflictResolutionStrategy, OperatorConfig  # noqa: E402

try:
    from importlib.metadata import version as _dist_version
except ImportError:  # pragma: no cover
    _dist_version = None

if not os.environ.get("TLDEXTRACT_PUBLIC_SUFFIX_LIST_URLS"):
    tldextract.tldextract.TLD_EXTRACTOR.suffix_list_urls = ()

LANG = "en"

# Presidio entity name -> our label types it may stand for.
PRESIDIO_TO_OURS = {
    "EMAIL_ADDRESS": ["EMAIL"],
    "PHONE_NUMBER": ["PHONE"],
    "CREDIT_CARD": ["CREDIT_CARD"],
    "IBAN_CODE": ["IBAN"],
    "IP_ADDRESS": ["IPV4", "IPV6"],
    "MAC_ADDRESS": ["MAC"],
    "URL": ["URL"],
    "DATE_TIME": ["DATE", "DATE_OF_BIRTH"],
    "US_SSN": ["US_SSN"],
    "UK_NINO": ["UK_NINO"],
}
OUR_TYPES = ["EMAIL", "PHONE", "CREDIT_CARD", "IBAN", "IPV4", "IPV6", "MAC", "URL", "DATE",
             "DATE_OF_BIRTH", "GPS", "US_SSN", "UK_NINO"]
NO_PRESIDIO_RECOGNIZER = {"GPS"}  # Presidio has no predefined GPS/coordinates recognizer


def pattern_recognizers():
    """The predefined Presidio recognizers that cover our label types (all regex/checksum based)."""
    return [
        EmailRecognizer(),       # EMAIL_ADDRESS  regex + tldextract domain check
        PhoneRecognizer(),       # PHONE_NUMBER   python-phonenumbers matcher, regions US GB DE FR IL IN CA BR
        CreditCardRecognizer(),  # CREDIT_CARD    regex + Luhn
        IbanRecognizer(),        # IBAN_CODE      regex + mod-97
        IpRecognizer(),          # IP_ADDRESS     IPv4 + IPv6 regexes
        MacAddressRecognizer(),  # MAC_ADDRESS
        UrlRecognizer(),         # URL
        DateRecognizer(),        # DATE_TIME
        UsSsnRecognizer(),       # US_SSN         regex + invalid-number filter
        UkNinoRecognizer(),      # UK_NINO
    ]


def build_engines(mode, score_threshold, exclude=()):
    nlp_engine = NoOpNlpEngine(models=[{"lang_code": LANG, "model_name": "no_op"}])
    nlp_engine.load()
    if mode == "pattern":
        registry = RecognizerRegistry(recognizers=pattern_recognizers(), supported_languages=[LANG])
    elif mode == "default":
        # Presidio's default registry (conf/default_recognizers.yaml) minus the NER recognizer,
        # which AnalyzerEngine skips for a NoOpNlpEngine.
        registry = None
    else:
        raise ValueError(mode)
    analyzer = AnalyzerEngine(registry=registry, nlp_engine=nlp_engine, supported_languages=[LANG],
                              default_score_threshold=score_threshold)
    names = {r.name for r in analyzer.registry.recognizers}
    for name in exclude:
        if name not in names:
            sys.exit(f"--exclude {name}: no such recognizer; have {sorted(names)}")
        analyzer.registry.recognizers = [r for r in analyzer.registry.recognizers if r.name != name]
    return analyzer, AnonymizerEngine()


def load_corpus(path, min_bytes, max_bytes, limit):
    recs = []
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            try:
                obj = json.loads(line)
                text = obj["text"]
                ents = [(e["type"], int(e["start"]), int(e["end"])) for e in obj.get("entities", [])]
            except (ValueError, KeyError, TypeError) as exc:
                sys.exit(f"{path}:{lineno}: bad record: {exc}")
            n = len(text.encode("utf-8"))
            if n < min_bytes or (max_bytes is not None and n > max_bytes):
                continue
            recs.append((text, ents, n))
            if limit and len(recs) >= limit:
                break
    return recs


def overlap(a0, a1, b0, b1):
    return min(a1, b1) - max(a0, b0)


def primary_type(ptype, span_text):
    """Our type an unmatched Presidio detection is charged to (as a false positive)."""
    cands = PRESIDIO_TO_OURS.get(ptype)
    if not cands:
        return "presidio:" + ptype
    if ptype == "IP_ADDRESS":
        return "IPV6" if ":" in span_text else "IPV4"
    return cands[0]


def score(records, detections):
    """Per-type precision/recall.  detections[i] = [(presidio_type, start, end), ...] for record i.

    A label is recalled when a detection whose type corresponds (PRESIDIO_TO_OURS) overlaps it
    by at least one character; "any-type" recall ignores the type (the span got masked anyway).
    A detection is a true positive when it overlaps a label of a corresponding type (it is
    credited to the label type it overlaps most); otherwise it is a false positive charged to
    primary_type().  Precision counts detections, recall counts labels.
    """
    st = defaultdict(lambda: {"labels": 0, "recalled": 0, "recalled_any_type": 0, "tp": 0, "fp": 0})
    for (text, labels, _), dets in zip(records, detections):
        for (lt, l0, l1) in labels:
            s = st[lt]
            s["labels"] += 1
            if any(overlap(d0, d1, l0, l1) > 0 and lt in PRESIDIO_TO_OURS.get(dt, ()) for dt, d0, d1 in dets):
                s["recalled"] += 1
            if any(overlap(d0, d1, l0, l1) > 0 for _, d0, d1 in dets):
                s["recalled_any_type"] += 1
        for dt, d0, d1 in dets:
            cands = PRESIDIO_TO_OURS.get(dt, ())
            best, best_ov = None, 0
            for (lt, l0, l1) in labels:
                ov = overlap(d0, d1, l0, l1)
                if lt in cands and ov > best_ov:
                    best, best_ov = lt, ov
            if best is not None:
                st[best]["tp"] += 1
            else:
                st[primary_type(dt, text[d0:d1])]["fp"] += 1

    def ratio(a, b):
        return round(a / b, 4) if b else None

    out = {}
    keys = OUR_TYPES + sorted(k for k in st if k not in OUR_TYPES)
    tot = {"labels": 0, "recalled": 0, "recalled_any_type": 0, "tp": 0, "fp": 0}
    for k in keys:
        if k not in st:
            continue
        s = st[k]
        for f in tot:
            tot[f] += s[f]
        out[k] = dict(s, precision=ratio(s["tp"], s["tp"] + s["fp"]), recall=ratio(s["recalled"], s["labels"]),
                      recall_any_type=ratio(s["recalled_any_type"], s["labels"]))
    out["ALL"] = dict(tot, precision=ratio(tot["tp"], tot["tp"] + tot["fp"]), recall=ratio(tot["recalled"], tot["labels"]),
                      recall_any_type=ratio(tot["recalled_any_type"], tot["labels"]))
    return out


def effective_spans(anonymizer, text, results):
    """The spans AnonymizerEngine.anonymize() actually replaces, in input offsets.

    Re-runs the engine's own conflict resolution (private helpers of the pinned version) on a
    copy; falls back to the raw analyzer spans if those helpers are missing.
    """
    try:
        rs = anonymizer._copy_recognizer_results(results)
        rs.sort(key=lambda x: (x.start, x.end))
        rs = anonymizer._remove_conflicts_and_get_text_manipulation_data(
            rs, ConflictResolutionStrategy.MERGE_SIMILAR_OR_CONTAINED)
        rs = anonymizer._merge_entities_with_spaces_between(text, rs)
    except AttributeError:
        rs = results
    return [(r.entity_type, r.start, r.end) for r in rs]


def print_errors(records, detections, limit):
    misses, falses = [], []
    for (text, labels, _), dets in zip(records, detections):
        for lt, l0, l1 in labels:
            if not any(overlap(d0, d1, l0, l1) > 0 and lt in PRESIDIO_TO_OURS.get(dt, ()) for dt, d0, d1 in dets):
                misses.append(f"missed {lt:<14} {text[l0:l1]!r}  ...{text[max(0, l0 - 25):l0]!r}")
        for dt, d0, d1 in dets:
            if not any(overlap(d0, d1, l0, l1) > 0 and lt in PRESIDIO_TO_OURS.get(dt, ()) for lt, l0, l1 in labels):
                falses.append(f"false  {dt:<14} {text[d0:d1]!r}  ...{text[max(0, d0 - 25):d0]!r}")
    for line in misses[:limit] + falses[:limit]:
        print(line, file=sys.stderr)


def dist_version(name):
    try:
        return _dist_version(name) if _dist_version else None
    except Exception:
        return None


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--corpus", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "sample.jsonl"),
                    help="JSONL corpus (default: sample.jsonl next to this script)")
    ap.add_argument("--repeat", type=int, default=1, help="passes over the selected records (default 1)")
    ap.add_argument("--min-bytes", type=int, default=0, help="only records with len(text) >= this many bytes")
    ap.add_argument("--max-bytes", type=int, default=None, help="only records with len(text) <= this many bytes")
    ap.add_argument("--limit", type=int, default=0, help="use at most this many records (0 = all)")
    ap.add_argument("--warmup", type=int, default=20,
                    help="untimed analyze+anonymize calls before measuring (default 20; loads phonenumbers "
                         "metadata, the tldextract snapshot, compiles regexes)")
    ap.add_argument("--recognizers", choices=["pattern", "default"], default="pattern",
                    help="pattern: the 10 predefined recognizers covering our types (default); "
                         "default: Presidio's whole default registry except NER")
    ap.add_argument("--exclude", action="append", default=[], metavar="RECOGNIZER",
                    help="drop a recognizer by name, e.g. --exclude PhoneRecognizer (repeatable)")
    ap.add_argument("--score-threshold", type=float, default=0.0,
                    help="AnalyzerEngine default_score_threshold (Presidio's default 0)")
    ap.add_argument("--show", type=int, default=0, help="print the first N anonymized texts (stderr)")
    ap.add_argument("--errors", type=int, default=0,
                    help="print up to N missed labels and N false detections (masked spans) to stderr")
    ap.add_argument("--json", action="store_true", help="print one machine-readable JSON object")
    a = ap.parse_args()
    if a.repeat < 1:
        ap.error("--repeat must be >= 1")

    logging.getLogger("presidio-analyzer").setLevel(logging.ERROR)
    logging.getLogger("presidio-anonymizer").setLevel(logging.ERROR)

    records = load_corpus(a.corpus, a.min_bytes, a.max_bytes, a.limit)
    if not records:
        sys.exit(f"no records in {a.corpus} within the size bounds")
    texts = [r[0] for r in records]
    nbytes = sum(r[2] for r in records)

    t_setup = time.process_time()
    analyzer, anonymizer = build_engines(a.recognizers, a.score_threshold, a.exclude)
    operators = {"DEFAULT": OperatorConfig("replace")}  # replace every entity by "<ENTITY_TYPE>"
    for i in range(a.warmup):
        t = texts[i % len(texts)]
        anonymizer.anonymize(text=t, analyzer_results=analyzer.analyze(text=t, language=LANG), operators=operators)
    setup_cpu = time.process_time() - t_setup

    analyze = analyzer.analyze
    anonymize = anonymizer.anonymize
    pt = time.process_time
    first_pass = []
    outputs = []
    cpu_analyze = cpu_anonymize = 0.0
    wall0 = time.perf_counter()
    cpu0 = pt()
    for rep in range(a.repeat):
        for text in texts:
            c0 = pt()
            res = analyze(text=text, language=LANG)
            c1 = pt()
            out = anonymize(text=text, analyzer_results=res, operators=operators)
            c2 = pt()
            cpu_analyze += c1 - c0
            cpu_anonymize += c2 - c1
            if rep == 0:
                first_pass.append(res)
                outputs.append(out.text)
    cpu = pt() - cpu0
    wall = time.perf_counter() - wall0

    n = len(texts) * a.repeat
    raw = [[(r.entity_type, r.start, r.end) for r in res] for res in first_pass]
    eff = [effective_spans(anonymizer, t, res) for t, res in zip(texts, first_pass)]
    result = {
        "tool": "presidio",
        "versions": {p: dist_version(p) for p in ("presidio-analyzer", "presidio-anonymizer", "phonenumbers",
                                                 "tldextract", "spacy")},
        "python": sys.version.split()[0],
        "corpus": os.path.abspath(a.corpus),
        "recognizers": a.recognizers,
        "recognizer_names": sorted({r.name for r in analyzer.registry.recognizers}),
        "excluded": a.exclude,
        "nlp_engine": type(analyzer.nlp_engine).__name__,
        "score_threshold": a.score_threshold,
        "min_bytes": a.min_bytes,
        "max_bytes": a.max_bytes,
        "repeat": a.repeat,
        "distinct_records": len(texts),
        "records": n,
        "bytes": nbytes * a.repeat,
        "mean_record_bytes": round(nbytes / len(texts), 1),
        "cpu_seconds": round(cpu, 6),
        "cpu_seconds_analyze": round(cpu_analyze, 6),
        "cpu_seconds_anonymize": round(cpu_anonymize, 6),
        "wall_seconds": round(wall, 6),
        "records_per_cpu_second": round(n / cpu, 2) if cpu > 0 else None,
        "bytes_per_cpu_second": round(nbytes * a.repeat / cpu, 1) if cpu > 0 else None,
        "setup_cpu_seconds": round(setup_cpu, 4),
        "entity_mapping": PRESIDIO_TO_OURS,
        "no_presidio_recognizer": sorted(NO_PRESIDIO_RECOGNIZER),
        "accuracy_analyzer": score(records, raw),
        "accuracy_anonymized": score(records, eff),
    }

    for t in outputs[: a.show]:
        print(t, file=sys.stderr)
    if a.errors:
        print_errors(records, eff, a.errors)

    if a.json:
        print(json.dumps(result, indent=2))
        return
    print(f"Presidio {result['versions']['presidio-analyzer']} ({a.recognizers} recognizers, "
          f"{result['nlp_engine']}, score threshold {a.score_threshold})")
    print(f"corpus      {a.corpus}  bytes {a.min_bytes}..{a.max_bytes if a.max_bytes is not None else 'inf'}")
    print(f"records     {n} ({len(texts)} distinct x {a.repeat}), mean {result['mean_record_bytes']} B")
    print(f"total bytes {result['bytes']}")
    print(f"CPU seconds {cpu:.3f} (analyze {cpu_analyze:.3f}, anonymize {cpu_anonymize:.3f}); wall {wall:.3f}")
    print(f"throughput  {result['records_per_cpu_second']:.1f} records/CPU-s, "
          f"{result['bytes_per_cpu_second'] / 1e6:.3f} MB/CPU-s")
    print()
    print("accuracy (span overlap + corresponding type; 'raw' = analyzer output, 'masked' = spans the")
    print("anonymizer replaced; recall_any = label overlapped by any masked span, whatever its type)")
    print(f"{'type':<24}{'labels':>7}{'P raw':>8}{'R raw':>8}{'P masked':>10}{'R masked':>10}{'R_any':>8}")
    ra, rm = result["accuracy_analyzer"], result["accuracy_anonymized"]

    def f(x):
        return "-" if x is None else f"{x:.3f}"

    for k in list(dict.fromkeys(list(ra) + list(rm))):
        if k == "ALL":
            continue
        x, y = ra.get(k, {}), rm.get(k, {})
        note = "  (no Presidio recognizer)" if k in NO_PRESIDIO_RECOGNIZER else ""
        print(f"{k:<24}{x.get('labels', 0):>7}{f(x.get('precision')):>8}{f(x.get('recall')):>8}"
              f"{f(y.get('precision')):>10}{f(y.get('recall')):>10}{f(y.get('recall_any_type')):>8}{note}")
    x, y = ra["ALL"], rm["ALL"]
    print(f"{'ALL':<24}{x['labels']:>7}{f(x['precision']):>8}{f(x['recall']):>8}"
          f"{f(y['precision']):>10}{f(y['recall']):>10}{f(y['recall_any_type']):>8}")
    print()
    print("mapping: " + ", ".join(f"{p}->{'/'.join(o)}" for p, o in PRESIDIO_TO_OURS.items()))


if __name__ == "__main__":
    main()
