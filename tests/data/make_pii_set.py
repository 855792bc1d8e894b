"""Writes tests/data/pii_labelled.jsonl, the labelled synthetic set for the PII scrubber.

Deterministic (one seeded RNG, fixed template order): run it again and the file is the
same byte for byte. Every value is synthetic: card numbers are Luhn-completed random
digits, IBANs are published specimen IBANs or random BBANs completed with mod-97 check
digits, phone numbers use fictional/reserved ranges where a country has them, secrets are
random strings in each vendor's shape.

Positives carry every entity they contain as {"type", "value"} with the exact substring.
Negatives are look-alikes (order and tracking numbers, Luhn-failing 16-digit numbers,
IBANs with a wrong checksum, SSNs in the SSA's never-issued ranges, dates, versions,
prices, UUIDs, SHAs, placeholders, ...) that hold no PII at all.

    python tests/data/make_pii_set.py
"""

from __future__ import annotations

import base64
import json
import random
import string
from pathlib import Path

from stdnum import iban as stdnum_iban
from stdnum import luhn

OUT = Path(__file__).resolve().parent / "pii_labelled.jsonl"
SEED = 20240315

rng = random.Random(SEED)
ALNUM = string.ascii_letters + string.digits
URLSAFE = ALNUM + "-_"


def rand(chars: str, n: int) -> str:
    return "".join(rng.choice(chars) for _ in range(n))


def digits(n: int) -> str:
    return rand(string.digits, n)


# --- value makers --------------------------------------------------------------------------


def card(prefix: str, length: int) -> str:
    body = prefix + digits(length - len(prefix) - 1)
    number = body + luhn.calc_check_digit(body)
    assert luhn.is_valid(number)
    return number


def bad_luhn(prefix: str, length: int) -> str:
    good = card(prefix, length)
    return good[:-1] + str((int(good[-1]) + rng.randint(1, 9)) % 10)


def group(number: str, sizes: list[int], sep: str) -> str:
    parts, i = [], 0
    for size in sizes:
        parts.append(number[i : i + size])
        i += size
    return sep.join(p for p in parts if p)


CARD_SPECS = [  # (brand, prefixes, length, grouping)
    ("visa", ["4"], 16, [4, 4, 4, 4]),
    ("visa13", ["4"], 13, [4, 4, 5]),
    ("mastercard", ["51", "52", "53", "54", "55"], 16, [4, 4, 4, 4]),
    ("mastercard2", ["2221", "2300", "2720"], 16, [4, 4, 4, 4]),
    ("amex", ["34", "37"], 15, [4, 6, 5]),
    ("discover", ["6011", "65"], 16, [4, 4, 4, 4]),
    ("jcb", ["3528", "3589"], 16, [4, 4, 4, 4]),
    ("diners", ["36", "300"], 14, [4, 6, 4]),
    ("unionpay", ["62"], 19, [4, 4, 4, 4, 3]),
]

IBAN_SPECIMENS = [  # published specimen IBANs (bank documentation / the IBAN registry)
    "DE89370400440532013000",
    "GB29NWBK60161331926819",
    "FR1420041010050500013M02606",
    "NL91ABNA0417164300",
    "ES9121000418450200051332",
    "IT60X0542811101000000123456",
    "BE71096123456769",
    "LU280019400644750000",
    "CZ6508000000192000145399",
    "CH9300762011623852957",
    "AT611904300234573201",
    "PL61109010140000071219812874",
    "SE4550000000058398257466",
    "DK5000400440116243",
    "IE29AIBK93115212345678",
    "NO9386011117947",
    "FI2112345600000785",
    "PT50000201231234567890154",
]


def random_iban() -> str:
    country, make_bban = rng.choice(
        [
            ("DE", lambda: digits(18)),
            ("GB", lambda: rand(string.ascii_uppercase, 4) + digits(14)),
            ("NL", lambda: rand(string.ascii_uppercase, 4) + digits(10)),
            ("AT", lambda: digits(16)),
            ("CH", lambda: digits(17)),
            ("IE", lambda: rand(string.ascii_uppercase, 4) + digits(14)),
        ]
    )
    bban = make_bban()
    number = country + stdnum_iban.calc_check_digits(country + "00" + bban) + bban
    if not stdnum_iban.is_valid(number):  # a country with its own national check digit
        return random_iban()
    return number


def spaced_iban(number: str) -> str:
    return " ".join(number[i : i + 4] for i in range(0, len(number), 4))


def bad_iban(number: str) -> str:
    check = int(number[2:4])
    wrong = f"{(check + rng.randint(1, 96)) % 97 or 1:02d}"
    result = number[:2] + wrong + number[4:]
    assert not stdnum_iban.is_valid(result)
    return result


def ssn() -> str:
    area = rng.choice([a for a in range(1, 900) if a != 666])
    return f"{area:03d}-{rng.randint(1, 99):02d}-{rng.randint(1, 9999):04d}"


def nanp() -> tuple[str, str, str]:
    # 555-0100..0199 is reserved for fiction.
    return (rng.choice(["415", "212", "312", "646", "617", "206", "512"]), "555", f"01{digits(2)}")


def phone_formats() -> list[str]:
    a, b, c = nanp()
    return [
        f"+1 ({a}) {b}-{c}",
        f"{a}.{b}.{c}",
        f"({a}) {b}-{c}",
        f"{a}-{b}-{c}",
        f"+1 {a} {b} {c}",
        f"+1{a}{b}{c}",
        f"1-800-{b}-{c}",
        f"+1-{a}-{b}-{c}",
        f"+44 20 7946 0{digits(3)}",
        f"+44 7700 900{digits(3)}",
        f"020 7946 0{digits(3)}",
        f"+49 30 {digits(7)}",
        f"+49 (0)30 {digits(4)} {digits(4)}",
        f"+33 1 {digits(2)} {digits(2)} {digits(2)} {digits(2)}",
        f"01 {digits(2)} {digits(2)} {digits(2)} {digits(2)}",
        f"+91 98{digits(3)} {digits(5)}",
        f"+61 2 9{digits(3)} {digits(4)}",
        f"+81 3-{digits(4)}-{digits(4)}",
        f"+34 912 {digits(3)} {digits(3)}",
        f"+39 06 {digits(4)} {digits(4)}",
        f"+31 20 {digits(3)} {digits(4)}",
        f"+353 1 {digits(3)} {digits(4)}",
    ]


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def jwt() -> str:
    header = b64url(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    payload = b64url(json.dumps({"sub": digits(8), "iat": 1710498600}).encode())
    return f"{header}.{payload}.{rand(URLSAFE, 43)}"


def pem(kind: str) -> str:
    lines = [rand(string.ascii_letters + string.digits + "+/", 64) for _ in range(4)]
    label = f"{kind} PRIVATE KEY" if kind else "PRIVATE KEY"
    return f"-----BEGIN {label}-----\n" + "\n".join(lines) + f"\n-----END {label}-----"


def secrets() -> list[tuple[str, str]]:
    """(template with {v}, value) pairs; the value is what must disappear."""
    pw = rand(ALNUM, 10) + rng.choice("!#%*^") + digits(2)
    return [
        ("My OpenAI key is {v}, is it leaked?", "sk-proj-" + rand(URLSAFE, 48)),
        ("I pasted {v} in the config by mistake.", "sk-" + rand(ALNUM, 48)),
        ("Stripe keeps rejecting {v} with a 401.", "sk_live_" + rand(ALNUM, 24)),
        ("Our restricted key {v} was rotated yesterday.", "rk_test_" + rand(ALNUM, 24)),
        (
            "AWS access key id {v} shows up in the logs.",
            "AKIA" + rand(string.ascii_uppercase + string.digits, 16),
        ),
        ("The CI uses {v} to push tags.", "ghp_" + rand(ALNUM, 36)),
        ("OAuth returned {v} for the app.", "gho_" + rand(ALNUM, 36)),
        ("Fine-grained token: {v}", "github_pat_" + rand(ALNUM, 22) + "_" + rand(ALNUM, 59)),
        (
            "The bot token {v} stopped posting to #alerts.",
            f"xoxb-{digits(12)}-{digits(13)}-{rand(ALNUM, 24)}",
        ),
        (
            "Slack user token {v} belongs to the old admin.",
            f"xoxp-{digits(12)}-{digits(12)}-{rand(ALNUM, 32)}",
        ),
        ("The session JWT is {v} and it expires too soon.", jwt()),
        ("curl -H 'Authorization: Bearer {v}' https://api.example.com/v1/me", rand(ALNUM, 40)),
        ("Request headers: Authorization: Bearer {v}", jwt()),
        ("Here is the deploy key:\n{v}\nplease remove it from the ticket.", pem("RSA")),
        ("ssh key below\n{v}", pem("OPENSSH")),
        ("{v}", pem("")),
        (
            "Use {v} for the staging tenant.",
            f"rlaas_{rand('0123456789abcdef', 16)}_{rand(URLSAFE, 43)}",
        ),
        ("password={v}", pw),
        ("Login works with user admin and password: {v}", rand(ALNUM, 8) + digits(3) + "!"),
        ("The .env has DB_PASSWORD={v} in plain text.", rand(ALNUM, 16)),
        ("config: api_key: {v}", rand("abcdef0123456789", 32)),
        ('{{"user": "svc", "password": "{v}"}}', rand(ALNUM, 12) + digits(2)),
        ("secret={v}", rand(URLSAFE, 32)),
        ("token={v}&redirect=/home", rand(ALNUM, 28)),
        ("aws_secret_access_key = {v}", rand(ALNUM + "/+", 40)),
        ("client_secret: {v}", rand(URLSAFE, 30)),
        ("The DSN postgres://app:{v}@db.internal:5432/prod fails.", rand(ALNUM, 14)),
        ("API-Key={v}", rand(ALNUM, 24)),
    ]


# --- sentences -----------------------------------------------------------------------------

EMAIL_VALUES = [
    "jane.doe@example.com",
    "john+billing@mail.example.co.uk",
    "ops-team@sub.domain.io",
    "first_last99@company.org",
    "J.Smith@Example.COM",
    "support+ticket-4821@help.acme-corp.com",
    "a.b.c@x-y.z.example.net",
    "maria.garcia@correo.example.es",
    "li.wei2024@mail.example.cn",
    "o'neil@example.ie",
    "billing@example.travel",
    "dev.null+spam@gmail.com",
]
EMAIL_TEMPLATES = [
    "Hi, please send the invoice to {v} instead of my old address.",
    "You can reach me at {v} if anything else is needed.",
    "Can you CC {v} on this ticket?",
    "My login is {v} but the reset link never arrives.",
    "Forwarding from {v}: the export failed again.",
    "(contact: {v})",
]
PHONE_TEMPLATES = [
    "Please call me back at {v} after 3pm.",
    "My mobile is {v}, text is fine.",
    "The support line {v} keeps hanging up on me.",
    "Contact number: {v}",
    "You can also ring our office on {v}.",
    "Reach the on-call engineer at {v} during the incident.",
]
CARD_TEMPLATES = [
    "I was charged twice on card {v}, please refund one.",
    "Card number {v} exp 09/27 was declined.",
    "Can you remove {v} from my account?",
    "Payment with {v} failed at checkout.",
]
IBAN_TEMPLATES = [
    "Please wire the refund to IBAN {v}.",
    "Our new bank account is {v}, update the direct debit.",
    "The payout went to {v} but never arrived.",
    "IBAN: {v} (BIC on file).",
]
SSN_TEMPLATES = [
    "For the tax form my SSN is {v}.",
    "Employee record shows {v} as the social security number.",
    "Verify identity with SSN {v}, please.",
]
IP_TEMPLATES = [
    "Requests from {v} are being rate limited.",
    "The VPN assigns me {v} but the firewall blocks it.",
    "Our server at {v} can't reach your API.",
    "Login attempts came from {v} last night.",
]
IPV4_VALUES = [
    "192.168.1.24",
    "10.0.0.1",
    "172.16.254.3",
    "203.0.113.42",
    "198.51.100.7",
    "8.8.8.8",
    "100.64.12.200",
    "192.0.2.55",
]
IPV6_VALUES = [
    "2001:db8::8a2e:370:7334",
    "2001:0db8:85a3:0000:0000:8a2e:0370:7334",
    "fe80::1ff:fe23:4567:890a",
    "2606:4700:4700::1111",
    "::ffff:192.0.2.128",
    "2001:db8:0:0:1::1",
    "FE80::0202:B3FF:FE1E:8329",
]

NEGATIVES = [
    "Order ORD-2024-000123 has not shipped yet.",
    "Where is my order #48213? It was due Monday.",
    "Invoice INV-000123456 is attached, total $1,234.56.",
    "The parcel with tracking number 1Z999AA10123456784 is stuck in Memphis.",
    "USPS tracking 9400 1000 0000 0000 0000 00 shows no movement.",
    "FedEx says 7489 2345 6789 was delivered, but nothing is here.",
    "The meeting is on 2024-03-15 10:30 in room 4.",
    "Logs from 2024-03-15T10:30:00Z onward look normal.",
    "We renew on 03/15/2024 and again on 15.03.2025.",
    "It happened at 10:30:45 UTC, then again at 11:02:13.",
    "Please upgrade from 1.2.3 to 2.14.0 before Friday.",
    "We are on Python 3.11.7 and the SDK v0.9.12.",
    "The price went from $19.99 to $24.99 per seat.",
    "We need 3 x 250 ml bottles and 1,000,000 tokens of quota.",
    "Request id 123e4567-e89b-12d3-a456-426614174000 returned 500.",
    "The bug was introduced in commit 9fceb02d0ae598e95dc970b74767f19372d61af8.",
    "Short SHA a3f9c2e broke the build.",
    "The transcript already says [EMAIL] and [PHONE] where the details were.",
    "Redacted: [CARD], [IBAN], [SSN], [IP] and [SECRET].",
    "Write to user at example dot com, the bot mangles addresses.",
    "Product code SKU-AB-1234-XL is out of stock.",
    "Ship it to zip code 94103, suite 200.",
    "It costs about 12 dollars, maybe 15.",
    "HTTP 404 on port 8080, error 0x80070005.",
    "ISBN 978-3-16-148410-0 is the edition we use.",
    "Our customer ID is 100045821 and the case is 00123456.",
    "Timestamp 1710498600 is when the job died.",
    "The brand colour is #FF5733 on a 1920x1080 screen.",
    "The office is at 37.7749, -122.4194 near the park.",
    "We process 12,345,678 requests a day across 42 regions.",
    "I reset my password yesterday and it still fails.",
    "The token expired after 15 minutes, is that expected?",
    "Your API key: see the dashboard under Settings.",
    "It is a risk-free trial with a task-runner included.",
    "He was the bearer of bad news about the basic plan.",
    "Reference 1234 5678 9012 3456 is our internal batch id.",
    "Table 4, row 16, column 9 has the wrong value.",
    "Open hours are 9:00-17:30, Monday to Friday.",
    "The ratio is 3.14159 and the threshold 1e-9.",
    "The SSN field shows 000-12-3456, which is a test value.",
    "A placeholder SSN like 666-45-6789 is never issued.",
    "Test value 912-34-5678 is outside the issued range.",
    "Group zero: 123-00-4567 is not a valid number.",
    "Serial zero: 123-45-0000 should be rejected too.",
    "Our ticket 2024-0042-17 is still open.",
    "Batch 20240315-0930 failed on step 7 of 12.",
    "The model has 70B parameters and 8192 context.",
    "Set temperature=0.7 and max_tokens=512 in the request.",
    "Error code E-4021-B appears every 30 seconds.",
    "We pay EUR 4,500.00 per month for 250 seats.",
    "Release notes for 2024.03 mention fix 4821.",
    "The Wi-Fi MAC is 00:1A:2B:3C:4D:5E on that laptop.",
    "Use the std::vector overload in C++.",
    "Ratio 16:9 at 60 fps, 3:2 on the tablet.",
    "Set the key: value pairs in the YAML file.",
    "The secret: keep the batch size small.",
    "Password policy: at least 12 characters.",
    "I forgot my pass code again.",
    "The order number is 4155550132, not the old one.",
    "Account tier 3, region eu-west-1, plan B.",
    "Version 3 of the API added 7 new endpoints.",
    "The report covers Q1 2024 and Q2 2024.",
    "We got 98.6% accuracy on 1,024 samples.",
    "The loan is 250000 over 30 years at 5.5%.",
    "Room 101, floor 3, building 7.",
    "Try the recipe with 2 eggs and 500 g of flour.",
    "Voucher code SPRING24 gives 20% off.",
    "The file is 1.5 GB and took 00:04:32 to upload.",
    "Set retries to 3 and backoff to 250 ms.",
    "The stock went up 2.3% to 1,234.50.",
    "Ticket #8842 duplicates #8839 and #8840.",
    "Docker image sha256:6d8a2bc1f0e4 is the latest.",
    "Flight LH 400 leaves at 10:45 from gate B22.",
    "See RFC 5322 section 3.4 for address syntax.",
    "The EAN is 4006381333931 on the box.",
    "Serial number SN-0042-7781-AB on the label.",
    "The GTIN 00012345678905 matches the catalogue.",
    "Please quote PO 4500012345 on the invoice.",
    "Our VAT rate is 19% and the discount 2.5%.",
    "The build number is 20240315.4 in the pipeline.",
    "Basic troubleshooting-guidelines apply to every plan.",
    "We set max_token=4096 and top_p=0.9 for the run.",
    "The meeting ID is 845 2231 9987, passcode in the invite.",
    "Budget: 1 250 000 EUR for the whole of 2025.",
    "In the spreadsheet x = 123456789 is the row checksum.",
    "Bearer tokens are rotated every 24 hours.",
    "Use the mailto: link on the contact page.",
    "Our docs live at https://docs.example.com/v2/guide#section-3.",
    "The range 10-20 and 30-40 overlap at 0 items.",
    "Send it via @support on Twitter, not by email.",
    "The regex ^[a-z]+@[a-z]+$ is too strict.",
    "Coupon SAVE-2024-OFF-15 expired on 12/31.",
    "In the snippet, self.token = token is set in __init__.",
    'The code reads api_key = os.environ["API_KEY"] at start-up.',
    "Then password = get_password() prompts the user.",
    "Set password: None in the test fixture.",
    "Discord message 1176543210987654321 was deleted.",
    "Snowflake id 2234567890123456789 is in the audit log.",
]


def positives() -> list[tuple[str, list[tuple[str, str]]]]:
    rows: list[tuple[str, list[tuple[str, str]]]] = []
    for i, value in enumerate(EMAIL_VALUES * 2):
        tpl = EMAIL_TEMPLATES[i % len(EMAIL_TEMPLATES)]
        if "'" in value:
            continue  # apostrophes are legal in local parts but too ambiguous in prose
        rows.append((tpl.format(v=value), [("email", value)]))
    for round_ in range(2):
        for i, value in enumerate(phone_formats()):
            tpl = PHONE_TEMPLATES[(i + round_) % len(PHONE_TEMPLATES)]
            rows.append((tpl.format(v=value), [("phone", value)]))
    bare_phone = f"41555501{digits(2)}"
    rows.append((f"call me at {bare_phone} please", [("phone", bare_phone)]))
    for round_ in range(2):
        for i, (_, prefixes, length, sizes) in enumerate(CARD_SPECS):
            number = card(rng.choice(prefixes), length)
            sep = [" ", "-", ""][(i + round_) % 3]
            value = group(number, sizes, sep)
            tpl = CARD_TEMPLATES[(i + round_) % len(CARD_TEMPLATES)]
            rows.append((tpl.format(v=value), [("card", value)]))
    ibans = IBAN_SPECIMENS + [random_iban() for _ in range(8)]
    for i, number in enumerate(ibans):
        value = spaced_iban(number) if i % 2 == 0 else number
        tpl = IBAN_TEMPLATES[i % len(IBAN_TEMPLATES)]
        rows.append((tpl.format(v=value), [("iban", value)]))
    for i in range(12):
        value = ssn()
        if i % 4 == 3:
            value = value.replace("-", " ")
        tpl = SSN_TEMPLATES[i % len(SSN_TEMPLATES)]
        rows.append((tpl.format(v=value), [("ssn", value)]))
    bare = ssn().replace("-", "")
    rows.append((f"SSN: {bare} for the W-2.", [("ssn", bare)]))
    for i, value in enumerate(IPV4_VALUES + IPV6_VALUES):
        tpl = IP_TEMPLATES[i % len(IP_TEMPLATES)]
        rows.append((tpl.format(v=value), [("ip", value)]))
    for tpl, value in secrets():
        rows.append((tpl.format(v=value), [("secret", value)]))
    # The shapes that sit inside markup, URLs and headers.
    tail = digits(2)
    edge = [
        ("Server is [2001:db8::{t}]:8443 behind the proxy.", "ip", "2001:db8::{t}"),
        ("It calls http://10.20.30.{t}:8080/health every minute.", "ip", "10.20.30.{t}"),
        ("Click tel:+1415555010{d} to call the desk.", "phone", "+1415555010{d}"),
        ("The link mailto:alex.{t}@example.com bounces.", "email", "alex.{t}@example.com"),
        ("Header was Authorization: Basic {b}", "secret", "{b}"),
        ("Her social security number: {s} is on the form.", "ssn", "{s}"),
        ("phone 41255501{t}, evenings only", "phone", "41255501{t}"),
        ("Card: {c}.", "card", "{c}"),
    ]
    fill = {
        "t": tail,
        "d": digits(1),
        "b": b64url(f"user{tail}:{rand(ALNUM, 12)}".encode()) + "==",
        "s": ssn().replace("-", ""),
        "c": card("4", 16),
    }
    for tpl, kind, value in edge:
        rows.append((tpl.format(**fill), [(kind, value.format(**fill))]))
    # Several entities in one message, the way real tickets read.
    a, b, c = nanp()
    multi = [
        [("email", "sam.lee@example.org"), ("phone", f"({a}) {b}-{c}")],
        [("card", group(card("4", 16), [4, 4, 4, 4], " ")), ("email", "pay+eu@shop.example.de")],
        [("iban", spaced_iban(IBAN_SPECIMENS[0])), ("phone", f"+49 30 {digits(7)}")],
        [("ip", "203.0.113.9"), ("secret", "AKIA" + rand(string.ascii_uppercase, 16))],
        [("ssn", ssn()), ("email", "hr.payroll@corp.example.com")],
        [("email", "kim@example.com"), ("ip", "2001:db8::42")],
    ]
    connectors = [
        "Hi, I'm {0} and my number is {1}, thanks!",
        "Charged to {0}; receipt should go to {1}.",
        "Refund to {0} please, or call {1} to confirm.",
        "Traffic from {0} used key {1} at midnight.",
        "SSN {0} belongs to the employee on {1}.",
        "{0} logged in from {1} twice.",
    ]
    for ents, conn in zip(multi, connectors, strict=True):
        rows.append((conn.format(*(v for _, v in ents)), ents))
    return rows


def negatives() -> list[str]:
    rows = list(NEGATIVES)
    for i in range(12):
        _, prefixes, length, sizes = CARD_SPECS[i % len(CARD_SPECS)]
        number = bad_luhn(rng.choice(prefixes), length)
        sep = [" ", "-", ""][i % 3]
        rows.append(f"Reference {group(number, sizes, sep)} failed the card check.")
    for i, number in enumerate(IBAN_SPECIMENS[:12]):
        wrong = bad_iban(number)
        value = spaced_iban(wrong) if i % 2 == 0 else wrong
        rows.append(f"The form rejected {value} as an invalid IBAN.")
    for i in range(10):
        area = rng.choice(["000", "666", f"9{digits(2)}"])
        rows.append(
            f"Dummy record {area}-{rng.randint(10, 99)}-{rng.randint(1000, 9999)} (row {i})."
        )
    for _ in range(8):
        rows.append(
            f"Order {rng.randint(100000, 999999)} for {rng.randint(2, 40)} units, zip {digits(5)}."
        )
    for _ in range(6):
        rows.append(
            f"Commit {rand('0123456789abcdef', 40)} on {2020 + rng.randint(0, 4)}-"
            f"{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}."
        )
    return rows


def build() -> list[dict[str, object]]:
    """The rows, from a freshly seeded RNG: the same on every call."""
    rng.seed(SEED)
    lines: list[dict[str, object]] = []
    for i, (text, ents) in enumerate(positives()):
        for _, value in ents:
            assert value in text, (text, value)
        lines.append(
            {
                "id": f"pos-{i:03d}",
                "text": text,
                "entities": [{"type": t, "value": v} for t, v in ents],
                "kind": "positive",
            }
        )
    for i, text in enumerate(negatives()):
        lines.append({"id": f"neg-{i:03d}", "text": text, "entities": [], "kind": "negative"})
    return lines


def render(lines: list[dict[str, object]]) -> str:
    return "".join(json.dumps(line, ensure_ascii=False) + "\n" for line in lines)


def main() -> None:
    lines = build()
    OUT.write_text(render(lines))
    n_neg = sum(1 for line in lines if line["kind"] == "negative")
    print(f"wrote {len(lines)} rows ({n_neg} negative) to {OUT}")


if __name__ == "__main__":
    main()
