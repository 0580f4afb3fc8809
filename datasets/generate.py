"""Generate fanout's bundled datasets, deterministically.

    python datasets/generate.py        # rewrites the files next to this script

The functions ``people(n, seed)``, ``contacts(n, seed)`` and ``reviews(n, seed)``
return ``(text, expected)`` pairs. ``expected`` has the fields of
``core.models.Person``, ``Contact`` and ``Review``, and the files carry it as
gold labels (README "Quality"): the CSVs as ``expected.<field path>`` columns
(an empty cell is null), ``reviews.jsonl`` as one ``expected`` object per line.
fanout takes these out of the input columns and never sends them to the model.

Every name, company, product, address, e-mail and phone number is made up.
"""

from __future__ import annotations

import csv
import json
import random
import unicodedata
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent

PEOPLE_SEED = 1000
CONTACTS_SEED = 2000
REVIEWS_SEED = 3000
PEOPLE_N = 1000
CONTACTS_N = 200
REVIEWS_N = 100

ARTICLE_TEXTS = [
    "My name is John and I am 20 years old",
    "My name is Mary and I am 21 years old",
    "My name is Bob and I am 22 years old",
    "My name is Alice and I am 23 years old",
    "My name is Jane and I am 24 years old",
    "My name is Joe and I am 25 years old",
    "My name is Jill and I am 26 years old",
]
"""The seven texts of the article, in its order (ids 1..7)."""
ARTICLE_EXPECTED = [
    {"name": name, "age": age}
    for name, age in zip(
        ["John", "Mary", "Bob", "Alice", "Jane", "Joe", "Jill"], range(20, 27), strict=True
    )
]
"""The article's people, as ``Person`` fields."""
PERSON_GOLD = ["name", "age"]
CONTACT_GOLD = ["name", "email", "phone", "company", "address.city", "address.country"]

Example = tuple[str, dict[str, Any]]

# ---------------------------------------------------------------------------
# Vocabulary
# ---------------------------------------------------------------------------

# fmt: off

FIRST_NAMES = [
    "Priya", "Carlos", "Ana", "Wei", "Oluwaseun", "Fatima", "Hiroshi", "Siobhán", "José",
    "Zoë", "Mohammed", "Ingrid", "Dmitri", "Aarav", "Chiamaka", "Mateo", "Leilani", "Björn",
    "Yuki", "Kwame", "Amara", "Élodie", "Santiago", "Hana", "Rashid", "Olga", "Tamar",
    "Ngozi", "Sven", "Lucía", "Thabo", "Mei", "Arjun", "Keanu", "Isabela", "Omar", "Freya",
    "Kofi", "Noa", "Ravi", "Astrid", "Joaquín", "Aylin", "Emeka", "Saoirse", "Tomasz",
    "Yara", "Jae-won", "Anh", "Liam", "Sofia", "Mariam", "Kenji", "Nadia", "Pedro",
    "Aiko", "Tariq", "Elif", "Ivan", "Chloé", "Rohan", "Zainab", "Mikael", "Valentina",
    "Sipho", "Ayesha", "Lars", "Camila", "Jun", "Esther", "Kai", "Anjali", "Felipe",
    "Greta", "Hamza", "Ines", "Marek", "Rania", "Tuan", "Ewa", "Nikolai", "Adaeze",
    "Bruno", "Leila", "Haruto", "Magdalena", "Diego", "Sun-hee", "Ahmed", "Clara",
]
SURNAMES = [
    "Sharma", "Mendes", "Okafor", "Tanaka", "Müller", "O'Brien", "García", "Nguyen",
    "Kowalski", "Haddad", "Johansson", "Silva", "Kim", "Petrov", "Adeyemi", "Rossi",
    "Dubois", "van der Berg", "de la Cruz", "Al-Sayed", "MacLeod", "Papadopoulos", "Chen",
    "Hernández", "Novak", "Yilmaz", "Mensah", "Larsen", "da Silva", "Kaur", "Ivanova",
    "Suzuki", "Abubakar", "Fernández", "Nakamura", "Schmidt", "Cohen", "Patel", "Osei",
    "Lindqvist", "Moreau", "Bianchi", "Dlamini", "Park", "Rahman", "Herrera", "Wójcik",
    "Eriksen", "Banerjee", "Castillo", "Takahashi", "Mwangi", "Costa", "bin Rashid",
]
CITIES = [
    ("Lisbon", "Portugal"), ("Nairobi", "Kenya"), ("Osaka", "Japan"), ("Lagos", "Nigeria"),
    ("Toronto", "Canada"), ("Kraków", "Poland"), ("São Paulo", "Brazil"),
    ("Reykjavík", "Iceland"), ("Hanoi", "Vietnam"), ("Cairo", "Egypt"),
    ("Melbourne", "Australia"), ("Bogotá", "Colombia"), ("Accra", "Ghana"),
    ("Seoul", "South Korea"), ("Mumbai", "India"), ("Istanbul", "Turkey"), ("Oslo", "Norway"),
    ("Lima", "Peru"), ("Dublin", "Ireland"), ("Manila", "Philippines"),
    ("Rio de Janeiro", "Brazil"), ("New York", "USA"), ("Cape Town", "South Africa"),
    ("Buenos Aires", "Argentina"), ("Kuala Lumpur", "Malaysia"), ("Berlin", "Germany"),
    ("Munich", "Germany"), ("San Francisco", "USA"), ("Austin", "USA"), ("Edinburgh", "UK"),
    ("Manchester", "UK"), ("Lyon", "France"), ("Milan", "Italy"), ("Valencia", "Spain"),
    ("Gothenburg", "Sweden"), ("Helsinki", "Finland"), ("Zürich", "Switzerland"),
    ("Tel Aviv", "Israel"), ("Dubai", "UAE"), ("Bergen", "Norway"),
    ("Auckland", "New Zealand"), ("Vancouver", "Canada"), ("Porto", "Portugal"),
    ("Kyoto", "Japan"), ("Chennai", "India"), ("Kigali", "Rwanda"), ("Montevideo", "Uruguay"),
]
COMPANIES = [
    ("Globex", "globex.com"), ("Initech", "initech.com"), ("Acme Corp", "acme.com"),
    ("Umbrella Labs", "umbrella-labs.io"), ("Hooli", "hooli.com"),
    ("Northwind Traders", "northwind.co"), ("Contoso Ltd", "contoso.co.uk"),
    ("Fabrikam Inc", "fabrikam.com"), ("Kestrel Analytics", "kestrel.io"),
    ("Blue Harbor Logistics", "blueharbor.com"), ("Sahara Solar GmbH", "sahara-solar.de"),
    ("Nordlys Energy", "nordlys.no"), ("Verde Foods", "verdefoods.com"),
    ("Lumen Health", "lumenhealth.org"), ("Orbital Systems", "orbital.systems"),
    ("Pixel & Pine", "pixelandpine.studio"), ("Tanaka Robotics", "tanaka-robotics.jp"),
    ("Mwangi Ventures", "mwangi.vc"), ("Andes Coffee Co", "andescoffee.pe"),
    ("Baltic Software", "balticsoft.eu"), ("Quantum Leap Labs", "qleap.ai"),
    ("Silverline Media", "silverline.tv"), ("Harbourside Bank", "harbourside.bank"),
    ("Cobalt Dynamics", "cobaltdyn.com"),
]
TITLES = [
    "Head of Sales", "Senior Engineer", "Product Manager", "Account Executive",
    "Operations Lead", "Chief Technology Officer", "Data Scientist", "Marketing Director",
    "Procurement Officer", "Founder", "Customer Success Manager", "Research Scientist",
]
# fmt: on
PHONE_FORMATS: list[Callable[[random.Random], str]] = [
    lambda r: f"+1 ({r.randint(201, 989)}) 555-{r.randint(100, 199):04d}",
    lambda r: f"+44 20 {r.randint(7000, 7999)} {r.randint(1000, 9999)}",
    lambda r: f"+49 30 {r.randint(1000, 9999)} {r.randint(1000, 9999)}",
    lambda r: f"+351 912 {r.randint(100, 999)} {r.randint(100, 999)}",
    lambda r: f"({r.randint(201, 989)}) 555-{r.randint(100, 199):04d}",
    lambda r: f"+81 3-{r.randint(1000, 9999)}-{r.randint(1000, 9999)}",
    lambda r: f"+254 712 {r.randint(100, 999)} {r.randint(100, 999)}",
    lambda r: f"020 {r.randint(7000, 7999)} {r.randint(1000, 9999)}",
    lambda r: (
        f"+33 1 {r.randint(10, 99)} {r.randint(10, 99)} {r.randint(10, 99)} {r.randint(10, 99)}"
    ),
    lambda r: f"555-{r.randint(1000, 9999)}",
    lambda r: f"+55 11 9{r.randint(1000, 9999)}-{r.randint(1000, 9999)}",
    lambda r: f"+91 98{r.randint(100, 999)} {r.randint(10000, 99999)}",
]
JOBS = [
    "a nurse",
    "a carpenter",
    "a data analyst",
    "a chef",
    "a teacher",
    "a pilot",
    "an architect",
    "a translator",
    "a paramedic",
    "a software engineer",
]
HOBBIES = [
    "hiking",
    "the cello",
    "pottery",
    "chess",
    "rock climbing",
    "baking bread",
    "salsa dancing",
    "birdwatching",
    "surfing",
    "photography",
]

# ---------------------------------------------------------------------------
# People
# ---------------------------------------------------------------------------


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def _person_name(r: random.Random) -> str:
    first = r.choice(FIRST_NAMES)
    return f"{first} {r.choice(SURNAMES)}" if r.random() < 0.4 else first


PEOPLE_TEMPLATES: list[Callable[[random.Random, str, int], str]] = [
    lambda r, n, a: f"My name is {n} and I am {a} years old.",
    lambda r, n, a: f"I'm {n}, {a}.",
    lambda r, n, a: f"Meet {n} (age {a}), our new volunteer coordinator.",
    lambda r, n, a: f"{n} turned {a} last week.",
    lambda r, n, a: f"{n} is {a} years old.",
    lambda r, n, a: f"Hi! {n} here, {a} years young and still learning {r.choice(HOBBIES)}.",
    lambda r, n, a: f"This is {n}. I'm {a} and I love {r.choice(HOBBIES)}.",
    lambda r, n, a: f"Our neighbour {n}, {a}, just started learning {r.choice(HOBBIES)}.",
    lambda r, n, a: f"At {a}, {n} finished a first marathon.",
    lambda r, n, a: f"Age: {a}. Name: {n}.",
    lambda r, n, a: f"{n} ({a}) works as {r.choice(JOBS)} in {r.choice(CITIES)[0]}.",
    lambda r, n, a: f"The applicant, {n}, is {a}.",
    lambda r, n, a: f"I am {a} years old and my name is {n}.",
    lambda r, n, a: f"Having just celebrated a {_ordinal(a)} birthday, {n} threw a party.",
    lambda r, n, a: f"{n}, aged {a}, from {r.choice(CITIES)[0]}.",
    lambda r, n, a: f"Name: {n} | Age: {a}",
    lambda r, n, a: f"{n} will be {a} next month.",
    lambda r, n, a: f"Q: How old is {n}? A: {a}.",
    lambda r, n, a: f"Hey, it's {n}! Just turned {a}.",
    lambda r, n, a: f"Signed, {n} ({a} y/o)",
    lambda r, n, a: f"Everyone calls me {n}; I'm {a}.",
    lambda r, n, a: f"{n}, {a}, has lived in {r.choice(CITIES)[0]} for {r.randint(2, 15)} years.",
    lambda r, n, a: f"{n} has worked here for {r.randint(2, 15)} years and is {a}.",
    lambda r, n, a: f"Born {a} years ago in {r.choice(CITIES)[0]}, {n} now teaches chemistry.",
    lambda r, n, a: f"{n} celebrated turning {a} with friends in {r.choice(CITIES)[0]}.",
    lambda r, n, a: f"Patient: {n}, {a}.",
    lambda r, n, a: f"Say hello to {n}, who is {a} today!",
    lambda r, n, a: f"Dear {n}, happy {_ordinal(a)} birthday!",
    lambda r, n, a: f"{a}-year-old {n} won the regional chess tournament.",
    lambda r, n, a: f"When asked, I said my name is {n} and that I'm {a}.",
    lambda r, n, a: f"Introducing {n}, {a}, our youngest board member.",
    lambda r, n, a: f"{n} — {a} — {r.choice(JOBS)[2:]}.",
    lambda r, n, a: f"Guest of honour: {n}, {a}",
    lambda r, n, a: f"Congratulations to {n}, who turns {a} today.",
    lambda r, n, a: f"In {r.choice(CITIES)[0]}, {n} ({a}) opened a small bakery.",
    lambda r, n, a: f"{n} is a {a}-year-old {r.choice(JOBS)[2:]} from {r.choice(CITIES)[0]}.",
]


def people(n: int = PEOPLE_N, seed: int = PEOPLE_SEED) -> list[Example]:
    """``n`` sentences about a person's name and age, with the expected ``Person``."""
    r = random.Random(seed)
    out: list[Example] = []
    for _ in range(n):
        name = _person_name(r)
        age = r.randint(18, 90)
        template = r.choice(PEOPLE_TEMPLATES)
        out.append((template(r, name, age), {"name": name, "age": age}))
    return out


# ---------------------------------------------------------------------------
# Contacts
# ---------------------------------------------------------------------------


def _ascii(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if c.isascii() and (c.isalnum() or c in " -")).lower()


def _email(r: random.Random, name: str, domain: str) -> str:
    parts = _ascii(name).replace("-", "").split()
    first, last = parts[0], parts[-1]
    style = r.randrange(3)
    local = f"{first}.{last}" if style == 0 else f"{first[0]}{last}" if style == 1 else first
    return f"{local}@{domain}"


def _contact_fields(r: random.Random) -> dict[str, Any]:
    name = f"{r.choice(FIRST_NAMES)} {r.choice(SURNAMES)}"
    company, domain = r.choice(COMPANIES)
    city, country = r.choice(CITIES)
    return {
        "name": name,
        "email": _email(r, name, domain),
        "phone": r.choice(PHONE_FORMATS)(r),
        "company": company,
        "city": city,
        "country": country,
        "title": r.choice(TITLES),
    }


def _expected_contact(f: dict[str, Any], *keep: str) -> dict[str, Any]:
    address = None
    if "city" in keep or "country" in keep:
        address = {
            "city": f["city"] if "city" in keep else None,
            "country": f["country"] if "country" in keep else None,
        }
    return {
        "name": f["name"],
        "email": f["email"] if "email" in keep else None,
        "phone": f["phone"] if "phone" in keep else None,
        "company": f["company"] if "company" in keep else None,
        "address": address,
    }


def _signature(r: random.Random, f: dict[str, Any]) -> tuple[str, tuple[str, ...]]:
    greeting = r.choice(
        ["Best regards", "Kind regards", "Thanks", "Cheers", "Sincerely", "Warm regards"]
    )
    keep = ["company", "email"]
    lines = [f"{greeting},", f["name"], f"{f['title']} at {f['company']}", f["email"]]
    if r.random() < 0.75:
        label = r.choice(["", "Tel: ", "Mobile: ", "Phone: "])
        lines.append(f"{label}{f['phone']}")
        keep.append("phone")
    if r.random() < 0.7:
        lines.append(f"{f['city']}, {f['country']}")
        keep += ["city", "country"]
    return "\n".join(lines), tuple(keep)


def _intro(r: random.Random, f: dict[str, Any]) -> tuple[str, tuple[str, ...]]:
    if r.random() < 0.5:
        text = (
            f"Hi, I'm {f['name']} from {f['company']}. "
            f"You can reach me at {f['email']} or {f['phone']}."
        )
        return text, ("company", "email", "phone")
    text = f"Hi, I'm {f['name']} from {f['company']}. My email is {f['email']}."
    return text, ("company", "email")


def _works_for(r: random.Random, f: dict[str, Any]) -> tuple[str, tuple[str, ...]]:
    text = (
        f"{f['name']} works for {f['company']} in {f['city']}, {f['country']}. Email: {f['email']}."
    )
    return text, ("company", "city", "country", "email")


def _card(r: random.Random, f: dict[str, Any]) -> tuple[str, tuple[str, ...]]:
    rows = [("Name", "name")]
    keep: list[str] = []
    for label, key in (
        ("Company", "company"),
        ("Email", "email"),
        ("Phone", "phone"),
        ("City", "city"),
        ("Country", "country"),
    ):
        if r.random() < 0.8:
            rows.append((label, key))
            keep.append(key)
    return "\n".join(f"{label}: {f[key]}" for label, key in rows), tuple(keep)


def _this_is(r: random.Random, f: dict[str, Any]) -> tuple[str, tuple[str, ...]]:
    text = (
        f"This is {f['name']}, {f['title']} at {f['company']}, based in "
        f"{f['city']}, {f['country']}. Call me on {f['phone']}."
    )
    return text, ("company", "city", "country", "phone")


def _send_to(r: random.Random, f: dict[str, Any]) -> tuple[str, tuple[str, ...]]:
    return f"Please send the signed contract to {f['name']} at {f['email']}.", ("email",)


def _reach(r: random.Random, f: dict[str, Any]) -> tuple[str, tuple[str, ...]]:
    text = f"You can reach {f['name']}, our contact at {f['company']}, on {f['phone']}."
    return text, ("company", "phone")


def _email_header(r: random.Random, f: dict[str, Any]) -> tuple[str, tuple[str, ...]]:
    text = (
        f"From: {f['name']} <{f['email']}>\nSubject: Quote request\n\n"
        f"Hello, I'm the purchasing lead at {f['company']} in {f['city']}, {f['country']}. "
        f"Could you send us a quote? My direct line is {f['phone']}."
    )
    return text, ("email", "company", "city", "country", "phone")


def _greetings_from(r: random.Random, f: dict[str, Any]) -> tuple[str, tuple[str, ...]]:
    text = (
        f"Greetings from {f['city']}, {f['country']}! I'm {f['name']} and I run operations "
        f"at {f['company']}. Drop me a line: {f['email']}."
    )
    return text, ("city", "country", "company", "email")


def _lives_in(r: random.Random, f: dict[str, Any]) -> tuple[str, tuple[str, ...]]:
    text = f"{f['name']} lives in {f['city']} and is looking for a new role. Phone {f['phone']}."
    return text, ("city", "phone")


def _met(r: random.Random, f: dict[str, Any]) -> tuple[str, tuple[str, ...]]:
    text = (
        f"Note to self: follow up with {f['name']} ({f['email']}), who joined "
        f"{f['company']} last spring."
    )
    return text, ("email", "company")


CONTACT_TEMPLATES: list[
    tuple[str, Callable[[random.Random, dict[str, Any]], tuple[str, tuple[str, ...]]]]
] = [
    ("signature", _signature),
    ("intro", _intro),
    ("intro", _works_for),
    ("card", _card),
    ("intro", _this_is),
    ("note", _send_to),
    ("note", _reach),
    ("email", _email_header),
    ("email", _greetings_from),
    ("note", _lives_in),
    ("note", _met),
]


def contacts_with_source(
    n: int = CONTACTS_N, seed: int = CONTACTS_SEED
) -> list[tuple[str, dict[str, Any], str]]:
    """Like :func:`contacts`, with the kind of text (signature, intro, card, ...)."""
    r = random.Random(seed)
    out: list[tuple[str, dict[str, Any], str]] = []
    for _ in range(n):
        fields = _contact_fields(r)
        source, template = r.choice(CONTACT_TEMPLATES)
        text, keep = template(r, fields)
        out.append((text, _expected_contact(fields, *keep), source))
    return out


def contacts(n: int = CONTACTS_N, seed: int = CONTACTS_SEED) -> list[Example]:
    """``n`` texts about a business contact, with the expected ``Contact``."""
    return [(text, expected) for text, expected, _ in contacts_with_source(n, seed)]


# ---------------------------------------------------------------------------
# Reviews
# ---------------------------------------------------------------------------

# fmt: off
PRODUCTS = [
    ("Zephyr X2", "headphones"), ("Pebble Buds 2", "earbuds"), ("Nimbus 3000", "vacuum"),
    ("Lumina S7", "desk lamp"), ("Orca Blender 900", "blender"), ("TerraTrek 40L", "backpack"),
    ("Vela Watch 3", "smartwatch"), ("Ember Kettle Pro", "kettle"), ("Atlas Chair", "office chair"),
    ("Kiwi Tab 10", "tablet"), ("Boreal Parka", "winter jacket"), ("Sonic Brush S2", "toothbrush"),
    ("Halo Ring Light", "ring light"), ("Drift Pro 4K", "action camera"),
    ("Cumulus Pillow", "pillow"), ("Solstice Grill", "gas grill"), ("Marlin E-Bike", "e-bike"),
    ("Aurora Projector", "mini projector"),
]
# fmt: on
SENTENCES = {
    "positive": [
        "Absolutely love it.",
        "Works perfectly and the battery lasts for days.",
        "Great value, highly recommend.",
        "Best purchase I've made this year.",
        "Sturdy, comfortable and beautiful.",
        "Exceeded my expectations in every way.",
    ],
    "neutral": [
        "It's okay, does the job.",
        "Nothing special, but nothing wrong either.",
        "Average build, average sound.",
        "Fine for the price.",
        "Some things I like, some I don't.",
    ],
    "negative": [
        "Stopped working after two weeks.",
        "Total waste of money.",
        "Flimsy and disappointing.",
        "Customer support never replied.",
        "Arrived cracked and the replacement was no better.",
    ],
}
_STAR_WORDS = ["zero", "one", "two", "three", "four", "five"]


def _sentiment(rating: int) -> str:
    return "positive" if rating >= 4 else "negative" if rating <= 2 else "neutral"


def _rating_phrases(r: random.Random, rating: int) -> tuple[str, str]:
    """A rating as a noun phrase ("4 stars") and as a sentence ("I'd give it 4 stars")."""
    stars = "star" if rating == 1 else "stars"
    nouns = [
        f"{rating}/5",
        f"{rating} out of 5",
        f"{rating} {stars}",
        f"{_STAR_WORDS[rating]} {stars}",
        "★" * rating + "☆" * (5 - rating),
        f"{2 * rating}/10",
    ]
    sentences = [
        f"{rating}/5",
        f"{_STAR_WORDS[rating].capitalize()} {stars}",
        "★" * rating + "☆" * (5 - rating),
        f"I'd give it {rating} {stars}",
        f"Rated {rating}/5",
        f"{rating} out of 5",
        f"Overall {2 * rating}/10",
    ]
    return r.choice(nouns), r.choice(sentences)


ReviewTemplate = Callable[[str, str, str, str, str], str]
REVIEW_TEMPLATES: list[ReviewTemplate] = [
    lambda p, noun, s, np, rs: f"I bought the {p} {noun} last month. {s} {rs}.",
    lambda p, noun, s, np, rs: f"{np[0].upper() + np[1:]} for the {p} {noun}. {s}",
    lambda p, noun, s, np, rs: f"Review of {p}: {s} {rs}.",
    lambda p, noun, s, np, rs: f"{p}: {s} {rs}.",
    lambda p, noun, s, np, rs: f"My new {p} {noun} arrived on time. {s} {rs}.",
    lambda p, noun, s, np, rs: f"{s} The {p} gets {np} from me.",
    lambda p, noun, s, np, rs: f"Product: {p}. {s} Verdict: {np}.",
    lambda p, noun, s, np, rs: f"{np[0].upper() + np[1:]}. {p} {noun}: {s}",
    lambda p, noun, s, np, rs: f"We have been using the {p} at home for a while. {s} {rs}.",
]


def reviews(n: int = REVIEWS_N, seed: int = REVIEWS_SEED) -> list[Example]:
    """``n`` product reviews, with the expected ``Review``."""
    r = random.Random(seed)
    out: list[Example] = []
    for _ in range(n):
        product, noun = r.choice(PRODUCTS)
        rating = r.choices([1, 2, 3, 4, 5], weights=[2, 2, 2, 3, 3])[0]
        sentiment = _sentiment(rating)
        sentence = r.choice(SENTENCES[sentiment])
        template = r.choice(REVIEW_TEMPLATES)
        noun_phrase, rating_sentence = _rating_phrases(r, rating)
        text = template(product, noun, sentence, noun_phrase, rating_sentence)
        text = text.replace("..", ".")
        out.append((text, {"product": product, "rating": rating, "sentiment": sentiment}))
    return out


# ---------------------------------------------------------------------------
# Files
# ---------------------------------------------------------------------------


def _write_csv(path: Path, header: list[str], rows: list[list[Any]]) -> None:
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)


def write_all(directory: Path = HERE) -> list[Path]:
    """Write every bundled dataset into ``directory``; returns the paths written."""
    paths = [
        directory / "people.csv",
        directory / "people_1000.csv",
        directory / "contacts.csv",
        directory / "reviews.jsonl",
    ]
    person_header = ["id", "text", *(f"expected.{p}" for p in PERSON_GOLD)]
    article = zip(ARTICLE_TEXTS, ARTICLE_EXPECTED, strict=True)
    _write_csv(
        paths[0],
        person_header,
        [[i, t, *_gold(e, PERSON_GOLD)] for i, (t, e) in enumerate(article, 1)],
    )
    _write_csv(
        paths[1],
        person_header,
        [[i, t, *_gold(e, PERSON_GOLD)] for i, (t, e) in enumerate(people(), 1)],
    )
    _write_csv(
        paths[2],
        ["id", "text", "source", *(f"expected.{p}" for p in CONTACT_GOLD)],
        [
            [i, t, s, *_gold(e, CONTACT_GOLD)]
            for i, (t, e, s) in enumerate(contacts_with_source(), 1)
        ],
    )
    with paths[3].open("w", encoding="utf-8") as f:
        for i, (text, expected) in enumerate(reviews(), 1):
            line = {"id": i, "text": text, "expected": expected}
            f.write(json.dumps(line, ensure_ascii=False) + "\n")
    return paths


def _gold(expected: dict[str, Any], paths: list[str]) -> list[Any]:
    """The cells of ``expected.<path>`` columns: the value at each path, empty for null."""
    cells: list[Any] = []
    for path in paths:
        value: Any = expected
        for key in path.split("."):
            value = value.get(key) if isinstance(value, dict) else None
        cells.append("" if value is None else value)
    return cells


if __name__ == "__main__":
    for written in write_all():
        print(f"wrote {written}")
