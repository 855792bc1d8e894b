"""PII scrubber benchmark: detection quality on the labelled synthetic set and the cost per
KB on the ingest hot path.

Quality: an entity counts as found when its exact value no longer appears in the scrubbed
text and a placeholder of its type does. The false-positive rate is the fraction of
negative strings in which anything was replaced; wrong-type detections are placeholders
of a type the string is not labelled with (or more of a type than it holds).

Speed: microseconds per KB (1,024 characters), the median of several timed passes, over
the whole labelled set, over a 1 KB paragraph of ordinary English with no PII and no
digits, over the same with PII-free numbers (dates, prices, order numbers), and over a
1 KB message with a few entities. Results go to bench/results/pii.json.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import time
from collections import Counter
from pathlib import Path
from typing import Any

from services.telemetry.pii import Entity, Scrubber

RESULTS = Path(__file__).resolve().parent / "results" / "pii.json"
DATA = Path(__file__).resolve().parents[1] / "tests" / "data" / "pii_labelled.jsonl"
PASSES = int(os.environ.get("BENCH_PASSES", "15"))
PLAIN_REPEATS = 2000

PROSE = (
    "Thanks for getting back to me so quickly. I tried the steps you suggested yesterday "
    "afternoon, but the dashboard still shows the old plan and the invoice total looks "
    "wrong. Could you please check whether the upgrade went through on your side? We rely "
    "on this workspace for our weekly reporting, and several teammates cannot open the "
    "shared folders since the change. I cleared the browser cache, signed out and back in, "
    "and even tried a different laptop, with the same result. If it helps, the problem "
    "started right after we added two new seats last week. Let me know if you need "
    "screenshots or any other details from our side; I am happy to jump on a short call "
    "whenever suits you. Best regards, and thanks again for the patient help so far. The "
    "team lead also asked whether the export job can run overnight instead of at noon."
)
PROSE_WITH_NUMBERS = (
    "Thanks for getting back to me. Order ORD-2024-000123 (placed 2024-03-15 10:30) still "
    "shows the old plan and the invoice total of $1,234.56 looks wrong; it should be 250 "
    "seats at $4.99. Could you check whether upgrade #48213 went through? We are on SDK "
    "v2.14.0 with Python 3.11.7 and the export of 12,345 rows took 00:04:32. Request id "
    "123e4567-e89b-12d3-a456-426614174000 returned HTTP 500 at 11:02 and again at 11:15. "
    "Ship the replacement to zip 94103, suite 200. I cleared the cache, signed out and back "
    "in, and tried a second laptop with the same result. It started after we added 2 new "
    "seats last week and moved 3 projects. Let me know if you need screenshots; happy to "
    "jump on a short call. Best regards, and thanks again for the patient help so far, the "
    "team lead also asks whether the nightly job can run at 02:00 instead of 12:00."
)
WITH_PII = (
    "Hi team, I'm Sam and the refund for my order should go to IBAN DE89 3704 0044 0532 "
    "0130 00, not the card 4111 1111 1111 1111 that was charged twice. You can reach me at "
    "sam.lee+billing@example.org or on +1 (415) 555-0132 after 3pm. Our office server "
    "203.0.113.42 started getting 403s yesterday when we called your API, and I think a "
    "colleague pasted api_key=9f8e7d6c5b4a39281706f5e4d3c2b1a0 into the last ticket, please "
    "delete it. The rest of the message is the usual story: the dashboard still shows the "
    "old plan, the invoice total looks wrong, and several teammates cannot open the shared "
    "folders since the change. I cleared the cache, signed out and back in, and tried a "
    "different laptop with the same result. Let me know if you need screenshots or any "
    "other details from our side; I am happy to jump on a short call whenever it suits."
)


def _kb(text: str, size: int = 1024) -> str:
    return (text * (size // len(text) + 1))[:size]


def load() -> list[dict[str, Any]]:
    return [json.loads(line) for line in DATA.read_text().splitlines() if line.strip()]


def quality(scrubber: Scrubber, rows: list[dict[str, Any]]) -> dict[str, Any]:
    total: Counter[str] = Counter()
    found: Counter[str] = Counter()
    wrong_type: Counter[str] = Counter()
    true_detections = detections = 0
    negatives = flagged_negatives = 0
    missed: list[dict[str, str]] = []
    false_positives: list[dict[str, str]] = []
    for row in rows:
        result = scrubber.scrub(row["text"])
        labelled = Counter(Entity(e["type"]) for e in row["entities"])
        for e in row["entities"]:
            entity = Entity(e["type"])
            total[entity] += 1
            if e["value"] not in result.text and entity.placeholder in result.text:
                found[entity] += 1
            else:
                missed.append({"id": row["id"], "type": e["type"], "value": e["value"]})
        for entity, n in result.counts.items():
            detections += n
            true_detections += min(n, labelled[entity])
            if n > labelled[entity]:
                wrong_type[entity] += n - labelled[entity]
        if row["kind"] == "negative":
            negatives += 1
            if result.counts:
                flagged_negatives += 1
                false_positives.append({"id": row["id"], "scrubbed": result.text})
    per_entity = {
        str(e): {"recall": round(found[e] / total[e], 4), "found": found[e], "total": total[e]}
        for e in Entity
        if total[e]
    }
    return {
        "rows": len(rows),
        "positive_rows": len(rows) - negatives,
        "negative_rows": negatives,
        "entities": sum(total.values()),
        "recall_overall": round(sum(found.values()) / sum(total.values()), 4),
        "recall_per_entity": per_entity,
        "false_positive_rate": round(flagged_negatives / negatives, 4),
        "detections": detections,
        "wrong_type_or_extra_detections": sum(wrong_type.values()),
        "wrong_type_by_entity": {str(e): n for e, n in sorted(wrong_type.items())},
        "precision": round(true_detections / detections, 4) if detections else 1.0,
        "missed": missed,
        "false_positives": false_positives,
    }


def _us_per_kb(scrubber: Scrubber, texts: list[str], repeats: int) -> float:
    chars = sum(len(t) for t in texts) * repeats
    samples = []
    for _ in range(PASSES):
        start = time.perf_counter()
        for _ in range(repeats):
            for t in texts:
                scrubber.scrub(t)
        samples.append((time.perf_counter() - start) * 1e6 / (chars / 1024))
    return round(statistics.median(samples), 2)


def speed(scrubber: Scrubber, rows: list[dict[str, Any]]) -> dict[str, Any]:
    texts = [r["text"] for r in rows]
    plain, numbers = _kb(PROSE), _kb(PROSE_WITH_NUMBERS)
    pii = (WITH_PII + " " + PROSE)[:1024]  # each entity once, padded with prose
    assert not scrubber.scrub(plain).counts and not scrubber.scrub(numbers).counts
    for t in (*texts, plain, numbers, pii):  # warm-up
        scrubber.scrub(t)
    plain_us = _us_per_kb(scrubber, [plain], PLAIN_REPEATS)
    numbers_us = _us_per_kb(scrubber, [numbers], PLAIN_REPEATS)
    pii_us = _us_per_kb(scrubber, [pii], PLAIN_REPEATS)
    return {
        "passes": PASSES,
        "labelled_set_us_per_kb": _us_per_kb(scrubber, texts, 20),
        "labelled_set_mean_chars": round(statistics.fmean(len(t) for t in texts), 1),
        "plain_1kb_no_pii_us_per_kb": plain_us,
        "plain_1kb_no_pii_with_numbers_us_per_kb": numbers_us,
        "pii_1kb_us_per_kb": pii_us,
        "pii_1kb_entities": {str(k): v for k, v in scrubber.scrub(pii).counts.items()},
        "events_per_s_one_core_1kb_no_pii": round(1e6 / plain_us),
        "events_per_s_one_core_1kb_with_pii": round(1e6 / pii_us),
        "budget_us_per_kb": {"no_pii": 60, "with_pii": 200},
    }


def main() -> None:
    scrubber = Scrubber()
    rows = load()
    report = {
        "benchmark": "pii: scrubber recall / false positives on the labelled set, us per KB",
        "data": str(DATA.relative_to(DATA.parents[2])),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "quality": quality(scrubber, rows),
        "speed": speed(scrubber, rows),
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


def run() -> None:
    main()


if __name__ == "__main__":
    run()
