"""Fill a JSON schema from a text with simple, documented rules.

This is the simulator's stand-in for a language model: it sees only the
schema and the text (never an expected answer) and applies the rules below.
A schema is compiled once into a tree of small filler nodes (cached by the
schema's JSON text, see :func:`compiled`); filling a text then runs a few
regular expressions per field.

Schema handling
    - ``$ref`` to ``#/$defs/...`` or ``#/definitions/...`` is resolved;
      recursive models stop at depth 8.
    - ``anyOf`` / ``oneOf``: the first branch that finds something wins; a
      ``null`` branch makes the field optional, and an optional field is
      ``null`` when nothing is found. ``allOf`` with one member is that member.
    - An object fills each property. A property that finds nothing takes its
      ``default``, else ``null`` if nullable, else a fallback value (below).
      An optional nested object is ``null`` when none of its fields is found.
    - An array holds every match of its item rule (emails, phones, names,
      numbers, or a labelled comma list), else one filled item, else ``[]``;
      ``minItems`` / ``maxItems`` are respected.
    - ``const`` is returned as is; ``minimum`` / ``maximum`` (and the
      exclusive forms) clamp numbers; ``maxLength`` truncates strings.

The field's kind comes from its name (``snake_case`` / ``camelCase`` words):
name, age, rating, email, phone, company, city, country, product, year,
sentiment, else generic.

Labels first
    ``<field> is X``, ``<field>: X`` or ``<field> = X`` (case-insensitive,
    underscores read as spaces, the schema ``title`` too) gives the clause
    after the label (to the end of the line or sentence, or ``;`` / ``|``).
    The kind's rule is then applied to that clause; a generic string keeps
    the clause up to a comma or `` and ``. A label that is part of another
    field's label (``company name: X`` for a ``name`` field) is ignored.

Strings
    - names: the capitalised words after "my name is", "I'm", "I am",
      "this is", "it's", "call me", "meet", "named", "introducing", "X here",
      or "From:" at the start of a line;
      else the first run of capitalised words that is not a common English
      word (greetings, pronouns, months, job titles, ...), not in capitals
      (``CTO``), not a country, not a lone word before a colon (a label such
      as "Patient:"), not holding a company word, and not right after "in",
      "from", "at", "near", "of" or "for" (places and companies). A run may
      hold particles (``de``, ``van der``, ``bin``, ...) and at most 5 words.
    - emails: the first ``local@domain.tld``.
    - phones: the first run of digits, spaces, dots, dashes and brackets,
      optionally led by ``+``, holding 7 to 15 digits (ISO dates excluded).
    - companies: "works for/at X", "employed by X", "joined X"; else
      capitalised words ending in a company word (Inc, Ltd, LLC, GmbH, Corp,
      Labs, Group, Systems, ...); else "at X" / "from X" unless X is a place.
    - cities / countries: countries come from a built-in list of country
      names (``USA``, ``UK`` included); "City, Country" gives the city (also
      "Austin, TX, USA", and "Singapore, Singapore"); else the words after
      "based in", "located in", "lives in", "in", "near", "moved to" that are
      not a country, a month, a day or a company ("from X" is a company
      unless it reads "from City, Country").
    - products: the capitalised words (model numbers included) after "the",
      "my", "this", "our", "new", "bought", "ordered", "review of", ...;
      else the first run of capitalised words that is not a common word.
    - sentiment-like string fields use the enum rule below.
    - formats: ``date`` / ``date-time`` / ``uuid`` (found in the text, else a fixed
      placeholder), ``email``, ``uri``.
    - fallback for a required string: for a name, the first capitalised
      word; otherwise the first sentence of the text (at most 200 chars).

Numbers (digits; a few number words "one".."twenty" where noted)
    - age-like: "34 years old", "34-year-old", "34 y/o", "aged 34", "age 34",
      "turned 34", "34th birthday", "(34)", "I'm 34" / "is 34", ", 34," right
      after a word; else the first number in 0..130; else the first number.
    - rating-like: "4/5", "4 out of 5", "4 stars" (number words too), star
      glyphs "★★★★☆", "rated 4", "gave it 4"; "8/10" is scaled to the field's
      ``maximum`` (8/10 -> 4 of 5, rounded half up); else the first number.
    - year-like: the first 4-digit year; otherwise the first number.
    - fallback: 0, or the ``minimum`` when 0 is out of bounds.

Enums and ``Literal``
    - the labelled value, else the first enum value mentioned as a word
      (case-insensitive);
    - else, for sentiment-like fields (sentiment, tone, mood, polarity,
      feeling): a rating in the text (>= 4 of 5 positive, 3 neutral, <= 2
      negative), else the balance of positive and negative words (a "not",
      "never" or "n't" within two words flips one), mapped onto the enum's
      positive / neutral / negative values;
    - else a number in the text equal to a numeric enum value;
    - else null if optional, else "neutral" for sentiment fields when
      present, else the first value.

Booleans
    the labelled "yes/no/true/false"; else true when the field's words occur
    in the text without a "not"/"no"/"never" just before them, else false.

The text to fill
    :func:`request_text` takes the FIRST user message (a string or the text
    parts of a list) and drops paragraphs that are instructor's own
    instructions (those that mention a ```json code block).
"""

from __future__ import annotations

import bisect
import json
import math
import re
from collections.abc import Callable
from typing import Any, Final

__all__ = [
    "MISSING",
    "Filler",
    "compile_schema",
    "compiled",
    "fill",
    "message_text",
    "request_text",
    "schema_in_text",
]


class _Missing:
    __slots__ = ()

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Final = _Missing()
"""What a node's ``find`` returns when the text holds nothing for it."""

MAX_DEPTH = 8
_CACHE_LIMIT = 512

# ---------------------------------------------------------------------------
# Word lists
# ---------------------------------------------------------------------------


def _wordset(words: str) -> frozenset[str]:
    return frozenset(words.split())


def _wordlist(words: str, sep: str | None = None) -> list[str]:
    return words.split(sep)


_COMMON_WORDS = _wordset(
    """
    a an the this that these those i im i'm i’m me my mine we our ours us you your yours he his
    him she her hers they their them it its it's who whom whose what which where when why how
    there here hello hi hey dear greetings welcome meet please thanks thank regards best cheers
    sincerely kind warm warmest yours respectfully signed sent cc from to subject re fwd note
    name age email e-mail phone mobile cell company city country address title rating
    review product location yes no not ok okay oh wow and but or so if because although though
    while after before since until as at in on of for with by about into over under between
    through during without within also just only even still yet already today tomorrow
    yesterday tonight now then last next first every each all some any many most happy
    congratulations congrats having being born turning q mr mrs ms mx dr prof sir madam miss
    monday tuesday wednesday thursday friday saturday sunday january february march july
    september october november december team everyone folks guys would could should will can
    do does did is are was were be been have has had let lets let's say said ask call contact
    reach send write visit met introducing loved love bought returned ordered honestly overall
    great good bad terrible excellent nice never always really very quite pretty absolutely
    totally definitely nothing everything something works worked arrived got used using tried
    stopped broke zero one two three four five six seven eight nine ten star stars senior
    junior head lead chief manager engineer director officer designer developer consultant
    analyst sales marketing support operations account executive founder cofounder co-founder
    ceo cto cfo coo vp president intern student teacher nurse doctor old big small well
    quick short update fyi ps yo sure sorry ah um office mobile fax web website i'd i've
    i'll guest guests patient applicant candidate client customer speaker member employee user
    verdict winner host author reviewer attendee visitor
    """
)

_NAME_PARTICLES = _wordset(
    "de da del della di du dos das van von der den ter ten la le bin binti bint al el ibn"
)

_PLACE_PREPOSITIONS = _wordset("in from at near of for")

_COMPANY_WORDS = _wordset(
    """
    inc incorporated corp corporation co company ltd limited llc llp plc gmbh ag sa sas sarl
    bv nv oy ab spa srl pty kk group labs lab technologies technology tech systems
    solutions industries partners enterprises holdings analytics logistics software
    consulting ventures studios studio media networks foods health robotics dynamics bank
    capital motors energy pharma pharmaceuticals foundation institute agency associates
    """
)

_COUNTRIES = _wordlist(
    "Afghanistan, Albania, Algeria, Argentina, Armenia, Australia, Austria, Azerbaijan, "
    "Bahrain, Bangladesh, Belarus, Belgium, Bolivia, Bosnia and Herzegovina, Brazil, Bulgaria, "
    "Cambodia, Cameroon, Canada, Chile, China, Colombia, Costa Rica, Croatia, Cuba, Cyprus, "
    "Czech Republic, Czechia, Denmark, Ecuador, Egypt, England, Estonia, Ethiopia, Fiji, "
    "Finland, France, Germany, Ghana, Greece, Guatemala, Hungary, Iceland, India, Indonesia, "
    "Iran, Iraq, Ireland, Israel, Italy, Jamaica, Japan, Kazakhstan, Kenya, Kosovo, Kuwait, "
    "Laos, Latvia, Lebanon, Lithuania, Luxembourg, Malaysia, Malta, Mexico, Moldova, Mongolia, "
    "Montenegro, Morocco, Myanmar, Nepal, Netherlands, the Netherlands, New Zealand, Nigeria, "
    "North Macedonia, Northern Ireland, Norway, Oman, Pakistan, Panama, Paraguay, Peru, "
    "Philippines, the Philippines, Poland, Portugal, Qatar, Romania, Russia, Rwanda, Samoa, "
    "Saudi Arabia, Scotland, Senegal, Serbia, Singapore, Slovakia, Slovenia, South Africa, "
    "South Korea, Korea, Spain, Sri Lanka, Sweden, Switzerland, Taiwan, Tanzania, Thailand, "
    "Tunisia, Turkey, Türkiye, UAE, Uganda, UK, U.K., Ukraine, United Arab Emirates, "
    "United Kingdom, United States, United States of America, Uruguay, US, U.S., USA, U.S.A., "
    "Uzbekistan, Venezuela, Vietnam, Viet Nam, Wales, Zimbabwe",
    ", ",
)

_COUNTRY_RE = re.compile(
    r"(?<![\w.])(?:"
    + "|".join(re.escape(c) for c in sorted(_COUNTRIES, key=len, reverse=True))
    + r")(?![\w])"
)
_COUNTRY_WORDS = frozenset(c.lower() for c in _COUNTRIES)

_NUMBER_WORDS: dict[str, int] = {
    w: i
    for i, w in enumerate(
        _wordlist(
            "zero one two three four five six seven eight nine ten eleven twelve thirteen "
            "fourteen fifteen sixteen seventeen eighteen nineteen twenty"
        )
    )
}
_NUM = r"\b([0-9]{1,6}(?:\.[0-9]+)?|" + "|".join(_NUMBER_WORDS) + r")\b"

_POSITIVE_WORDS = _wordset(
    """
    love loved loves lovely great excellent amazing fantastic perfect perfectly happy
    recommend recommended awesome wonderful best superb brilliant impressed impressive solid
    delighted outstanding favourite favorite flawless beautiful pleased glad enjoy enjoyed
    reliable sturdy comfortable smooth worth
    """
)
_NEGATIVE_WORDS = _wordset(
    """
    hate hated hates terrible awful bad worst broke broken disappointed disappointing
    disappointment poor useless refund waste flimsy junk horrible defective faulty unreliable
    annoying regret mediocre overpriced rubbish garbage died cracked leaked leaks fails
    failed failure avoid unhappy noisy
    """
)
_NEGATIONS = _wordset("not no never hardly")

_POSITIVE_LABELS = ("positive", "pos", "good", "happy", "favorable", "favourable", "pleased")
_NEGATIVE_LABELS = ("negative", "neg", "bad", "unhappy", "unfavorable", "unfavourable", "angry")
_NEUTRAL_LABELS = ("neutral", "mixed", "meh", "ok", "okay", "average", "none")

_KIND_WORDS: tuple[tuple[str, frozenset[str]], ...] = (
    ("email", frozenset({"email", "mail", "emailaddress"})),
    ("phone", frozenset({"phone", "tel", "telephone", "mobile", "cell", "fax", "phonenumber"})),
    (
        "company",
        frozenset(
            {"company", "employer", "organization", "organisation", "org", "firm", "business"}
        ),
    ),
    ("city", frozenset({"city", "town", "locality"})),
    ("country", frozenset({"country", "nation"})),
    ("product", frozenset({"product", "item", "device", "gadget"})),
    ("sentiment", frozenset({"sentiment", "tone", "mood", "polarity", "feeling", "feelings"})),
    ("rating", frozenset({"rating", "ratings", "stars", "score", "grade"})),
    ("age", frozenset({"age"})),
    ("year", frozenset({"year", "yr"})),
    ("name", frozenset({"name", "fullname", "person", "author", "customer", "contact"})),
)
_OTHER_LABEL_WORDS = _wordset(
    """
    company employer organization organisation product item brand model city town country
    street user username file pet dog cat team band project app domain business store shop
    """
)

# ---------------------------------------------------------------------------
# Regular expressions
# ---------------------------------------------------------------------------

_TOKEN_RE = re.compile(r"[^\W_]+(?:['’\-.][^\W_]+)*|&")
_EMAIL_RE = re.compile(r"[\w.+\-]+@[\w\-]+(?:\.[\w\-]+)*\.[A-Za-z]{2,}")
_PHONE_RE = re.compile(
    r"(?<![\w+@.\-])(?:\+\s?)?\(?[0-9]{1,5}\)?(?:[ .\-]?\(?[0-9]{1,5}\)?){1,7}(?![\w@])"
)
_ISO_DATE_RE = re.compile(r"\b[0-9]{4}-[0-9]{2}-[0-9]{2}\b")
_ISO_DATETIME_RE = re.compile(
    r"\b[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}(?::[0-9]{2}(?:\.[0-9]+)?)?"
    r"(?:Z|[+-][0-9]{2}:?[0-9]{2})?"
)
_UUID_RE = re.compile(r"(?i)\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b")
_URL_RE = re.compile(r"https?://[^\s<>\"')\]]+")
_NUMBER_RE = re.compile(r"(?<![\w.])-?[0-9]{1,15}(?:\.[0-9]+)?(?![0-9])")
_YEAR_RE = re.compile(r"(?<![\w.])(1[0-9]{3}|2[0-9]{3})(?![0-9])")
_SENTENCE_END_RE = re.compile(r"[.!?](?:\s|$)|\n")
_CLAUSE_END_RE = re.compile(r"[\n;|]|[.!?](?:\s|$)")
_GENERIC_END_RE = re.compile(r",|\s+and\s+|\s+but\s+")
_INSTRUCTION_RE = re.compile(r"```json|^\s*return the correct json", re.IGNORECASE)

_NAME_CUE_RE = re.compile(
    r"(?i:\b(?:my name is|my name's|name's|i am|i'm|i’m|im|this is|it's|it’s|it is|call me|"
    r"calls me|meet|named|introducing|say hi to|say hello to|welcome|signed|from)[\s,:]+)"
)
_NAME_HERE_RE = re.compile(r"(?i:\s+here\b)")

_AGE_PATTERNS = tuple(
    re.compile(p)
    for p in (
        r"(?<![0-9.])([0-9]{1,3})\s*(?:-\s*)?(?i:years?|yrs?)[\s\-]*(?i:old|young|of age)\b",
        r"(?<![0-9.])([0-9]{1,3})\s*-?\s*(?i:year-old|y/o|yo)\b",
        r"(?i:\baged?|\bage of|\bage)\s*[:=]?\s*([0-9]{1,3})(?![0-9])",
        r"(?i:\bturned|\bturns|\bturning|\bwill be|\bis now|\bjust turned)\s+([0-9]{1,3})(?![0-9])",
        r"(?<![0-9.])([0-9]{1,3})(?i:st|nd|rd|th)\s+(?i:birthday)",
        r"\(\s*([0-9]{1,3})\s*\)",
        r"(?i:\bat\s+)([0-9]{1,3})\s*,",
        r"(?i:\b(?:i'm|i’m|i am|im|is|was|am)\s+)([0-9]{1,3})(?![0-9.,]?[0-9])"
        r"(?!\s*(?i:%|percent|kg|cm|km|mm|lbs?|min|minutes|hours|days|weeks|months|kids|"
        r"children|people|times|am|pm|euros?|dollars?|\$))",
        r"[^\W\d_]\s*,\s*([0-9]{1,3})\s*(?:[,.;:!?)]|$)",
    )
)
_RATING_PATTERNS: tuple[tuple[re.Pattern[str], bool], ...] = (
    (re.compile(r"(?i:" + _NUM + r"\s*(?:/|out of|outta)\s*([0-9]{1,3})\b)"), True),
    (re.compile(r"(?i:" + _NUM + r"\s*-?\s*stars?\b)"), False),
    (
        re.compile(
            r"(?i:\b(?:rated|rate|rating|gave it|give it|giving it|score|scored)\s*[:=]?\s*"
            r"(?:it\s*)?(?:a\s+|an\s+)?" + _NUM + ")"
        ),
        False,
    ),
)
_STAR_GLYPHS_RE = re.compile(r"[★☆]{2,}|★")

_COMPANY_CUE_RE = re.compile(
    r"(?i:\b(?:works? (?:for|at)|working (?:for|at)|worked (?:for|at)|employed (?:by|at)|"
    r"job at|joined|position at|role at|founder of|co-founder of|ceo of|cto of)\s+)"
)
_AT_FROM_RE = re.compile(r"(?i:\b(?:at|from)\s+)")
_PLACE_CUE_RE = re.compile(
    r"(?i:\b(?:based in|located in|lives in|living in|live in|office in|offices in|"
    r"moved to|relocated to|in|near)\s+)"
)
_PRODUCT_CUE_RE = re.compile(
    r"(?i:\b(?:the|my|this|that|our|these|those|his|her|their|a|an|new|bought|ordered|"
    r"purchased|got|review of|reviewing|tried|using|returned|recommend|love|loved|hate|hated)"
    r"\s+(?:(?:new|old|latest|brand-new|brand new|shiny)\s+)?)"
)
_NOT_A_MODEL_RE = re.compile(r"\s*(?:/|out of\b|stars?\b|-star|%)", re.IGNORECASE)

_ORG_CONNECTORS = frozenset({"&", "of", "and", "de", "der", "von", "van"})
_PLACE_CONNECTORS = frozenset({"de", "do", "da", "del", "la", "le", "los", "las", "upon"})
_PRODUCT_CONNECTORS = frozenset({"&", "of"})


def _words_of(name: str) -> list[str]:
    spaced = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", name)
    return [w for w in re.split(r"[\s_\-.]+", spaced.lower()) if w]


def _field_kind(name: str) -> str:
    words = _words_of(name)
    joined = "".join(words)
    candidates = set(words) | {joined} | {w[:-1] for w in words if w.endswith("s")}
    for kind, keys in _KIND_WORDS:
        if candidates & keys:
            return kind
    if {"years", "old"} <= set(words):
        return "age"
    return "generic"


def _letters(word: str) -> str:
    return word.replace("'", "").replace("’", "").replace("-", "").replace(".", "")


def _is_name_word(word: str) -> bool:
    """A capitalised word that may be part of a person's name."""
    if not word[0].isupper() or word.lower() in _COMMON_WORDS:
        return False
    letters = _letters(word)
    if not letters.isalpha():
        return False
    if len(letters) > 1 and letters.isupper():
        return False  # CTO, USA, IBM
    return word.lower() not in _COUNTRY_WORDS


def _is_place_word(word: str) -> bool:
    return word[0].isupper() and _letters(word).isalpha() and word.lower() not in _COMMON_WORDS


def _is_org_word(word: str) -> bool:
    return (word[0].isupper() or word[0].isdigit()) and word.lower() not in _COMMON_WORDS


def _is_product_word(word: str) -> bool:
    return (word[0].isupper() or word[0].isdigit()) and word.lower() not in _COMMON_WORDS


def _number_value(raw: str) -> float | None:
    raw = raw.lower()
    if raw in _NUMBER_WORDS:
        return float(_NUMBER_WORDS[raw])
    try:
        return float(raw)
    except ValueError:
        return None


def _round_half_up(value: float) -> int:
    return int(math.floor(value + 0.5))


# ---------------------------------------------------------------------------
# Facts about one text, computed lazily and shared by every field
# ---------------------------------------------------------------------------


class _Facts:
    __slots__ = ("_memo", "_starts", "_tokens", "guessed", "path", "text", "weak")

    def __init__(self, text: str) -> None:
        self.text = text
        self._tokens: list[tuple[int, int, str]] | None = None
        self._starts: list[int] = []
        self._memo: dict[str, Any] = {}
        self.path: list[str] = []
        """The field being filled: keys, with ``[]`` for an array's items."""
        self.guessed: list[str] = []
        """Paths of fields filled by a fallback or a generic guess, not by a rule."""
        self.weak = False
        """Set by a rule that fell back to a generic guess (the first number, ...)."""

    def note_guess(self) -> None:
        parts: list[str] = []
        for part in self.path:
            parts.append(part if part == "[]" or not parts else "." + part)
        self.guessed.append("".join(parts))

    # -- tokens -----------------------------------------------------------
    @property
    def tokens(self) -> list[tuple[int, int, str]]:
        if self._tokens is None:
            self._tokens = [(m.start(), m.end(), m.group()) for m in _TOKEN_RE.finditer(self.text)]
            self._starts = [t[0] for t in self._tokens]
        return self._tokens

    def token_at(self, pos: int) -> int | None:
        """Index of the token starting at ``pos`` (after spaces), if any."""
        tokens = self.tokens
        text = self.text
        while pos < len(text) and text[pos] in " \t\u00a0":
            pos += 1
        i = bisect.bisect_left(self._starts, pos)
        if i < len(tokens) and tokens[i][0] == pos:
            return i
        return None

    def token_ending_at(self, pos: int) -> int | None:
        tokens = self.tokens
        i = bisect.bisect_left(self._starts, pos) - 1
        if 0 <= i < len(tokens) and tokens[i][1] == pos:
            return i
        return None

    def joined(self, i: int) -> bool:
        """Whether tokens ``i`` and ``i + 1`` are separated by one space only."""
        tokens = self.tokens
        return self.text[tokens[i][1] : tokens[i + 1][0]] in (" ", "\u00a0")

    def previous_word(self, i: int) -> str:
        if i == 0:
            return ""
        gap = self.text[self.tokens[i - 1][1] : self.tokens[i][0]]
        if gap.strip():
            return ""
        return self.tokens[i - 1][2].lower()

    def span(self, i: int, j: int) -> str:
        return self.text[self.tokens[i][0] : self.tokens[j][1]]

    # -- runs ---------------------------------------------------------------
    def run(
        self,
        i: int,
        ok: Callable[[str], bool],
        connectors: frozenset[str],
        limit: int = 5,
    ) -> int:
        """Index of the last token of the run of ``ok`` tokens starting at ``i``."""
        tokens = self.tokens
        last = i
        while last + 1 < len(tokens) and last - i + 1 < limit and self.joined(last):
            word = tokens[last + 1][2]
            if ok(word) and not self._ends_model(last + 1, ok):
                last += 1
                continue
            k = last + 1
            while k < len(tokens) and tokens[k][2].lower() in connectors and k + 1 < len(tokens):
                if not self.joined(k):
                    break
                k += 1
            if k > last + 1 and k < len(tokens) and ok(tokens[k][2]) and self.joined(k - 1):
                last = k
                continue
            break
        return last

    def _ends_model(self, i: int, ok: Callable[[str], bool]) -> bool:
        """A bare number followed by "/5", "stars", ... is a rating, not a model number."""
        word = self.tokens[i][2]
        if not word[0].isdigit() or ok is not _is_product_word:
            return False
        return bool(_NOT_A_MODEL_RE.match(self.text, self.tokens[i][1]))

    def name_run(self, i: int) -> str | None:
        """The person-name run starting at token ``i``, or None."""
        if not _is_name_word(self.tokens[i][2]):
            return None
        return self.span(i, self.run(i, _is_name_word, _NAME_PARTICLES))

    def name_candidates(self) -> list[str]:
        found: list[str] | None = self._memo.get("names")
        if found is not None:
            return found
        found = []
        tokens = self.tokens
        i = 0
        while i < len(tokens):
            if not _is_name_word(tokens[i][2]):
                i += 1
                continue
            last = self.run(i, _is_name_word, _NAME_PARTICLES)
            words = [t[2].lower() for t in tokens[i : last + 1]]
            after = tokens[last + 1][2].lower() if last + 1 < len(tokens) else ""
            is_label = last == i and self.text.startswith(":", tokens[last][1])
            if (
                self.previous_word(i) not in _PLACE_PREPOSITIONS
                and not is_label
                and not any(w in _COMPANY_WORDS for w in words)
                and not (after in _COMPANY_WORDS and self.joined(last))
            ):
                found.append(self.span(i, last))
            i = last + 1
        self._memo["names"] = found
        return found

    # -- kinds ----------------------------------------------------------------
    def name(self) -> str | None:
        if "name" not in self._memo:
            value = self._cued_name()
            if value is None:
                candidates = self.name_candidates()
                value = candidates[0] if candidates else None
            self._memo["name"] = value
        found: str | None = self._memo["name"]
        return found

    def _cued_name(self) -> str | None:
        text = self.text
        for m in _NAME_CUE_RE.finditer(text):
            cue = m.group().strip(" ,:").lower()
            if cue == "from" and m.start() > 0 and text[m.start() - 1] != "\n":
                continue  # "from X" inside a sentence is a place or a company
            i = self.token_at(m.end())
            if i is None:
                continue
            run = self.name_run(i)
            if run is not None:
                last = self.run(i, _is_name_word, _NAME_PARTICLES)
                if not any(t[2].lower() in _COMPANY_WORDS for t in self.tokens[i : last + 1]):
                    return run
        for m in _NAME_HERE_RE.finditer(text):
            before = text[: m.start()]
            for candidate in self.name_candidates():
                if before.endswith(candidate):
                    return candidate
        return None

    def emails(self) -> list[str]:
        return [m.group().rstrip(".") for m in _EMAIL_RE.finditer(self.text)]

    def phones(self) -> list[str]:
        found: list[str] = []
        for m in _PHONE_RE.finditer(self.text):
            value = m.group().strip()
            while value.endswith(")") and value.count(")") > value.count("("):
                value = value[:-1].rstrip()
            while value.startswith("(") and value.count("(") > value.count(")"):
                value = value[1:].lstrip()
            digits = sum(c.isdigit() for c in value)
            if 7 <= digits <= 15 and not _ISO_DATE_RE.fullmatch(value):
                found.append(value)
        return found

    def company(self) -> str | None:
        if "company" not in self._memo:
            self._memo["company"] = self._company()
        found: str | None = self._memo["company"]
        return found

    def _org_at(self, pos: int) -> tuple[int, int] | None:
        i = self.token_at(pos)
        if i is None or not _is_org_word(self.tokens[i][2]) or not self.tokens[i][2][0].isupper():
            return None
        return i, self.run(i, _is_org_word, _ORG_CONNECTORS, limit=6)

    def _company(self) -> str | None:
        text = self.text
        tokens = self.tokens
        for m in _COMPANY_CUE_RE.finditer(text):
            found = self._org_at(m.end())
            if found is not None:
                return self.span(*found)
        # capitalised words ending in a company word
        for i, (_, _, word) in enumerate(tokens):
            if i > 0 and word[0].isupper() and word.lower() in _COMPANY_WORDS:
                start = i
                while start > 0 and self.joined(start - 1):
                    prev = tokens[start - 1][2]
                    if _is_org_word(prev) or (prev == "&" and start - 2 >= 0):
                        start -= 1
                    else:
                        break
                if tokens[start][2] == "&":
                    start += 1
                if start < i:
                    return self.span(start, i)
        for m in _AT_FROM_RE.finditer(text):
            found = self._org_at(m.end())
            if found is None:
                continue
            run = self.span(*found)
            if _COUNTRY_RE.fullmatch(run) or self._is_place(found[1]):
                continue
            return run
        return None

    def _is_place(self, last: int) -> bool:
        """Whether the run ending at token ``last`` is followed by ", [Region, ]Country"."""
        rest = self.text[self.tokens[last][1] : self.tokens[last][1] + 80]
        m = re.match(r"\s*,\s*", rest)
        if not m:
            return False
        if _COUNTRY_RE.match(rest, m.end()):
            return True
        region = re.match(r"([^\W\d_][\w'’\-]*(?: [^\W\d_][\w'’\-]*){0,2}),\s*", rest[m.end() :])
        return bool(
            region
            and all(w[0].isupper() for w in region.group(1).split(" "))
            and _COUNTRY_RE.match(rest, m.end() + region.end())
        )

    def place_pairs(self) -> list[tuple[str, str]]:
        """``(city, country)`` for every "City, [Region, ]Country" in the text."""
        pairs: list[tuple[str, str]] | None = self._memo.get("pairs")
        if pairs is not None:
            return pairs
        pairs = []
        text = self.text
        for m in _COUNTRY_RE.finditer(text):
            city = self._place_before(m.start())
            if city is not None:
                pairs.append((city, m.group()))
        self._memo["pairs"] = pairs
        return pairs

    def _place_before(self, pos: int) -> str | None:
        """The place run right before ", " at ``pos`` (skipping a short region code)."""
        before = self.text[:pos].rstrip()
        if not before.endswith(","):
            return None
        end = len(before[:-1].rstrip())
        last = self.token_ending_at(end)
        if last is None or not _is_place_word(self.tokens[last][2]):
            return None
        first = self._run_back(last)
        region = self.span(first, last)
        if len(region) <= 3 and region.isupper() and region.isalpha():
            # "Austin, TX, USA": the city is the run before the region
            return self._place_before(self.tokens[first][0])
        words = [t[2].lower() for t in self.tokens[first : last + 1]]
        if words[-1] in _COMPANY_WORDS:
            return None
        if _COUNTRY_RE.fullmatch(region) and not self.text.startswith(region, pos):
            return None  # "Portugal, Spain" lists countries; "Singapore, Singapore" is a city
        return region

    def _run_back(self, last: int) -> int:
        tokens = self.tokens
        first = last
        while first > 0 and last - first < 4 and self.joined(first - 1):
            word = tokens[first - 1][2]
            if _is_place_word(word):
                first -= 1
            elif (
                word.lower() in _PLACE_CONNECTORS
                and first - 2 >= 0
                and self.joined(first - 2)
                and _is_place_word(tokens[first - 2][2])
            ):
                first -= 2
            else:
                break
        return first

    def country(self) -> str | None:
        pairs = self.place_pairs()
        if pairs:
            return pairs[0][1]
        m = _COUNTRY_RE.search(self.text)
        return m.group() if m else None

    def city(self) -> str | None:
        pairs = self.place_pairs()
        if pairs:
            return pairs[0][0]
        for m in _PLACE_CUE_RE.finditer(self.text):
            i = self.token_at(m.end())
            if i is None or not _is_place_word(self.tokens[i][2]):
                continue
            last = self.run(i, _is_place_word, _PLACE_CONNECTORS, limit=4)
            run = self.span(i, last)
            if _COUNTRY_RE.fullmatch(run) or self.tokens[last][2].lower() in _COMPANY_WORDS:
                continue
            after = self.tokens[last + 1][2] if last + 1 < len(self.tokens) else ""
            if after.lower() in _COMPANY_WORDS and self.joined(last):
                continue
            return run
        return None

    def product(self) -> str | None:
        if "product" not in self._memo:
            self._memo["product"] = self._product()
        found: str | None = self._memo["product"]
        return found

    def _product(self) -> str | None:
        tokens = self.tokens
        for m in _PRODUCT_CUE_RE.finditer(self.text):
            i = self.token_at(m.end())
            if i is None or not tokens[i][2][0].isupper() or tokens[i][2] == "I":
                continue
            if tokens[i][2].lower() in _COMMON_WORDS:
                continue
            return self.span(i, self.run(i, _is_product_word, _PRODUCT_CONNECTORS, limit=6))
        for i, (_, _, word) in enumerate(tokens):
            if word[0].isupper() and word.lower() not in _COMMON_WORDS and word != "I":
                return self.span(i, self.run(i, _is_product_word, _PRODUCT_CONNECTORS, limit=6))
        return None

    def numbers(self) -> list[float]:
        found: list[float] | None = self._memo.get("numbers")
        if found is None:
            found = [float(m.group()) for m in _NUMBER_RE.finditer(self.text)]
            self._memo["numbers"] = found
        return found

    def age(self) -> float | None:
        for pattern in _AGE_PATTERNS:
            m = pattern.search(self.text)
            if m:
                return float(m.group(1))
        numbers = self.numbers()
        self.weak = bool(numbers)  # no cue: any number in the text is a guess
        plausible = [n for n in numbers if 0 <= n <= 130]
        if plausible:
            return plausible[0]
        return numbers[0] if numbers else None

    def rating(self, maximum: float | None) -> float | None:
        """A rating stated in the text, scaled to ``maximum`` when a scale is given."""
        for pattern, scaled in _RATING_PATTERNS:
            for m in pattern.finditer(self.text):
                value = _number_value(m.group(1))
                if value is None:
                    continue
                if scaled:
                    denominator = float(m.group(2))
                    if denominator <= 0 or value > denominator:
                        continue
                    if maximum is not None and maximum > 0 and denominator != maximum:
                        value = value / denominator * maximum
                return value
        glyphs = _STAR_GLYPHS_RE.search(self.text)
        return float(glyphs.group().count("★")) if glyphs else None

    def year(self) -> float | None:
        m = _YEAR_RE.search(self.text)
        return float(m.group(1)) if m else None

    def polarity(self) -> str | None:
        """Positive, negative or neutral from a rating, else from the word balance."""
        if "polarity" in self._memo:
            cached: str | None = self._memo["polarity"]
            return cached
        value: str | None = None
        rating = self.rating(5.0)
        if rating is not None:
            stars = _round_half_up(rating)
            value = "positive" if stars >= 4 else "negative" if stars <= 2 else "neutral"
        else:
            words = [t[2].lower() for t in self.tokens]
            score = 0
            for i, word in enumerate(words):
                sign = 1 if word in _POSITIVE_WORDS else -1 if word in _NEGATIVE_WORDS else 0
                if sign:
                    before = words[max(0, i - 2) : i]
                    if any(b in _NEGATIONS or b.endswith(("n't", "n’t")) for b in before):
                        sign = -sign
                    score += sign
            value = "positive" if score > 0 else "negative" if score < 0 else None
        self._memo["polarity"] = value
        return value

    def first_sentence(self) -> str:
        text = self.text.strip()
        m = _SENTENCE_END_RE.search(text)
        sentence = text[: m.start() + (1 if m.group().strip() else 0)] if m else text
        return sentence.strip()[:200]


# ---------------------------------------------------------------------------
# Labels: "<field> is X" / "<field>: X"
# ---------------------------------------------------------------------------


def _label_regex(name: str, title: str | None = None) -> re.Pattern[str] | None:
    alternatives: set[str] = set()
    for source in (name, title or ""):
        words = _words_of(source)
        if words:
            alternatives.add(r"[\s_\-]*".join(re.escape(w) for w in words))
    if not alternatives:
        return None
    body = "|".join(sorted(alternatives, key=len, reverse=True))
    return re.compile(r"(?i)(?<![\w@.\-])(?:" + body + r")\s*(?::|=|\bis\b|\bwas\b)\s*")


def _labelled(pattern: re.Pattern[str] | None, facts: _Facts) -> str | None:
    if pattern is None:
        return None
    text = facts.text
    for m in pattern.finditer(text):
        before = text[max(0, m.start() - 40) : m.start()].rstrip().rsplit(None, 1)
        if before and before[-1].lower().strip(",.:;") in _OTHER_LABEL_WORDS:
            continue
        rest = text[m.end() : m.end() + 400]
        end = _CLAUSE_END_RE.search(rest)
        segment = (rest[: end.start()] if end else rest).strip()
        if segment:
            return segment
    return None


def _clause(text: str) -> str:
    end = _GENERIC_END_RE.search(text)
    return (text[: end.start()] if end else text).strip().strip("\"'")


# ---------------------------------------------------------------------------
# Nodes
# ---------------------------------------------------------------------------


class _Node:
    nullable: bool = False
    label: re.Pattern[str] | None = None

    def find(self, facts: _Facts, depth: int) -> Any:
        return MISSING

    def fallback(self, facts: _Facts, depth: int) -> Any:
        return None


class Filler:
    """A compiled schema: call it with a text to get the filled value."""

    __slots__ = ("root",)

    def __init__(self, root: _Node) -> None:
        self.root = root

    def __call__(self, text: str) -> Any:
        return self.fill_marked(text)[0]

    def fill_marked(self, text: str) -> tuple[Any, list[str]]:
        """The filled value, and the paths of the fields in it that no rule found
        (fallbacks and generic guesses such as "the first number in the text")."""
        facts = _Facts(text)
        value = self.root.find(facts, 0)
        if value is MISSING:
            facts.guessed.clear()
            value = None if self.root.nullable else self.root.fallback(facts, 0)
        return value, list(dict.fromkeys(facts.guessed))


class _Const(_Node):
    def __init__(self, value: Any) -> None:
        self.value = value

    def find(self, facts: _Facts, depth: int) -> Any:
        return self.value

    def fallback(self, facts: _Facts, depth: int) -> Any:
        return self.value


class _Null(_Node):
    nullable = True


class _Bool(_Node):
    def __init__(self, name: str, label: re.Pattern[str] | None) -> None:
        words = _words_of(name)
        self.label = label
        self.mention = (
            re.compile(
                r"(?i)(\b(?:not|no|never)\s+)?(?<![\w-])"
                + r"[\s_\-]*".join(re.escape(w) for w in words)
                + r"(?![\w-])"
            )
            if words
            else None
        )

    def find(self, facts: _Facts, depth: int) -> Any:
        segment = _labelled(self.label, facts)
        if segment is not None:
            word = segment.split(" ")[0].lower().strip(".,!")
            if word in ("yes", "true", "y", "1", "on"):
                return True
            if word in ("no", "false", "n", "0", "off", "none"):
                return False
        if self.mention is not None:
            m = self.mention.search(facts.text)
            if m:
                return m.group(1) is None
        return MISSING

    def fallback(self, facts: _Facts, depth: int) -> Any:
        return False


def _bound(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


class _Number(_Node):
    def __init__(self, schema: dict[str, Any], name: str, label: re.Pattern[str] | None) -> None:
        self.integer = schema.get("type") == "integer"
        self.kind = _field_kind(name)
        self.label = label
        low = _bound(schema.get("minimum"))
        high = _bound(schema.get("maximum"))
        ex_low = _bound(schema.get("exclusiveMinimum"))
        ex_high = _bound(schema.get("exclusiveMaximum"))
        step = 1.0 if self.integer else 1e-9
        if ex_low is not None:
            low = ex_low + step if low is None else max(low, ex_low + step)
        if ex_high is not None:
            high = ex_high - step if high is None else min(high, ex_high - step)
        if self.integer:
            low = float(math.ceil(low)) if low is not None else None
            high = float(math.floor(high)) if high is not None else None
        self.minimum = low
        self.maximum = high

    def _raw(self, facts: _Facts) -> float | None:
        segment = _labelled(self.label, facts)
        if segment is not None:
            if self.kind == "rating":
                value = _Facts(segment).rating(self.maximum)
                if value is not None:
                    return value
            m = re.search(_NUM, segment[:16], re.IGNORECASE)
            if m:
                return _number_value(m.group(1))
        if self.kind == "age":
            return facts.age()
        if self.kind == "rating":
            value = facts.rating(self.maximum)
            if value is not None:
                return value
        if self.kind == "year":
            value = facts.year()
            if value is not None:
                return value
        numbers = facts.numbers()
        facts.weak = bool(numbers)  # a number with no label or cue: a guess
        return numbers[0] if numbers else None

    def shape(self, value: float) -> Any:
        if self.minimum is not None and value < self.minimum:
            value = self.minimum
        if self.maximum is not None and value > self.maximum:
            value = self.maximum
        if self.integer:
            return _round_half_up(value)
        return int(value) if value.is_integer() and abs(value) < 1e15 else value

    def find(self, facts: _Facts, depth: int) -> Any:
        value = self._raw(facts)
        if value is None or not math.isfinite(value):
            return MISSING
        return self.shape(value)

    def fallback(self, facts: _Facts, depth: int) -> Any:
        return self.shape(0.0)


class _String(_Node):
    def __init__(self, schema: dict[str, Any], name: str, label: re.Pattern[str] | None) -> None:
        self.kind = _field_kind(name)
        fmt = schema.get("format")
        self.format = fmt if isinstance(fmt, str) else None
        if self.format == "email":
            self.kind = "email"
        self.label = label
        max_length = schema.get("maxLength")
        min_length = schema.get("minLength")
        self.max_length = max_length if isinstance(max_length, int) and max_length >= 0 else None
        self.min_length = min_length if isinstance(min_length, int) and min_length > 0 else 0

    def _whole(self, facts: _Facts) -> str | None:
        """The kind's rule applied to the whole text."""
        kind = self.kind
        if kind == "name":
            return facts.name()
        if kind == "email":
            emails = facts.emails()
            return emails[0] if emails else None
        if kind == "phone":
            phones = facts.phones()
            return phones[0] if phones else None
        if kind == "company":
            return facts.company()
        if kind == "city":
            return facts.city()
        if kind == "country":
            return facts.country()
        if kind == "product":
            return facts.product()
        if kind == "sentiment":
            return facts.polarity()
        return None

    def _segment(self, segment: str) -> str | None:
        """The kind's rule applied to a labelled clause."""
        facts = _Facts(segment)
        kind = self.kind
        if kind in ("email", "phone", "sentiment"):
            return self._whole(facts)
        i = facts.token_at(0)
        if kind == "name":
            return facts.name_run(i) if i is not None else None
        if kind == "company" and i is not None and _is_org_word(facts.tokens[i][2]):
            return facts.span(i, facts.run(i, _is_org_word, _ORG_CONNECTORS, limit=6))
        if kind == "city" and i is not None and _is_place_word(facts.tokens[i][2]):
            return facts.span(i, facts.run(i, _is_place_word, _PLACE_CONNECTORS, limit=4))
        if kind == "country":
            m = _COUNTRY_RE.search(segment)
            if m:
                return m.group()
        if kind == "product" and i is not None and _is_product_word(facts.tokens[i][2]):
            return facts.span(i, facts.run(i, _is_product_word, _PRODUCT_CONNECTORS, limit=6))
        value = _clause(segment)
        if kind == "name":
            value = value.split(" ")[0]
        return value or None

    def _format(self, facts: _Facts) -> str | None:
        if self.format == "uuid":
            m = _UUID_RE.search(facts.text)
        elif self.format == "date":
            m = _ISO_DATE_RE.search(facts.text)
        elif self.format == "date-time":
            m = _ISO_DATETIME_RE.search(facts.text)
        else:
            m = _URL_RE.search(facts.text)
        return m.group() if m else None

    def shape(self, value: str) -> str:
        if self.max_length is not None:
            value = value[: self.max_length]
        if len(value) < self.min_length:
            value = value + "x" * (self.min_length - len(value))
        return value

    def find(self, facts: _Facts, depth: int) -> Any:
        if self.format in ("date", "date-time", "uri", "url", "uuid"):
            value = self._format(facts)
            return MISSING if value is None else self.shape(value)
        segment = _labelled(self.label, facts)
        if segment is not None:
            value = self._segment(segment)
            if value is not None:
                return self.shape(value)
        value = self._whole(facts)
        return MISSING if value is None else self.shape(value)

    def fallback(self, facts: _Facts, depth: int) -> Any:
        fixed = {
            "date": "1970-01-01",
            "date-time": "1970-01-01T00:00:00Z",
            "uri": "https://example.com",
            "url": "https://example.com",
            "uuid": "00000000-0000-0000-0000-000000000000",
        }
        if self.format in fixed:
            return fixed[self.format]
        if self.kind == "email":
            return self.shape("unknown@example.com")
        if self.kind == "sentiment":
            return self.shape("neutral")
        if self.kind == "name":
            for _, _, word in facts.tokens:
                if word[0].isupper():
                    return self.shape(word)
        return self.shape(facts.first_sentence())


def _pick(values: list[str], labels: tuple[str, ...]) -> str | None:
    lowered = {v.lower(): v for v in values}
    for label in labels:
        if label in lowered:
            return lowered[label]
    return None


class _Enum(_Node):
    def __init__(self, values: list[Any], name: str, label: re.Pattern[str] | None) -> None:
        self.values = values
        self.kind = _field_kind(name)
        self.label = label
        strings = [v for v in values if isinstance(v, str) and v.strip()]
        self.mention = (
            re.compile(
                r"(?i)(?<![\w-])("
                + "|".join(re.escape(v) for v in sorted(strings, key=len, reverse=True))
                + r")(?![\w-])"
            )
            if strings
            else None
        )
        self.by_lower = {v.lower(): v for v in strings}
        self.polar = {
            "positive": _pick(strings, _POSITIVE_LABELS),
            "negative": _pick(strings, _NEGATIVE_LABELS),
            "neutral": _pick(strings, _NEUTRAL_LABELS),
        }
        self.numbers = [v for v in values if isinstance(v, int | float) and not isinstance(v, bool)]

    def _mentioned(self, text: str) -> Any:
        if self.mention is None:
            return MISSING
        m = self.mention.search(text)
        return self.by_lower.get(m.group(1).lower(), MISSING) if m else MISSING

    def find(self, facts: _Facts, depth: int) -> Any:
        segment = _labelled(self.label, facts)
        if segment is not None:
            value = self._mentioned(segment)
            if value is not MISSING:
                return value
        value = self._mentioned(facts.text)
        if value is not MISSING:
            return value
        if self.kind == "sentiment":
            polarity = facts.polarity()
            if polarity is not None and self.polar[polarity] is not None:
                return self.polar[polarity]
        for n in facts.numbers() if self.numbers else ():
            for v in self.numbers:
                if n == v:
                    return v
        return MISSING

    def fallback(self, facts: _Facts, depth: int) -> Any:
        if self.kind == "sentiment" and self.polar["neutral"] is not None:
            return self.polar["neutral"]
        return self.values[0] if self.values else None


class _Array(_Node):
    def __init__(self, schema: dict[str, Any], item: _Node, name: str) -> None:
        self.item = item
        self.kind = _field_kind(name)
        min_items = schema.get("minItems")
        max_items = schema.get("maxItems")
        self.min_items = min_items if isinstance(min_items, int) and min_items > 0 else 0
        self.max_items = max_items if isinstance(max_items, int) and max_items >= 0 else None
        self.label = _label_regex(name)

    def _all(self, facts: _Facts, depth: int) -> list[Any]:
        item = self.item
        if isinstance(item, _Union) and len(item.branches) == 1:
            item = item.branches[0]
        segment = _labelled(self.label, facts)
        if segment is not None and isinstance(item, _String | _Number | _Enum):
            values = []
            for part in re.split(r",|\band\b|/", segment):
                part = part.strip().strip("\"'")
                if not part:
                    continue
                if isinstance(item, _String) and item.kind == "generic" and not item.format:
                    values.append(item.shape(part))
                    continue
                found = item.find(_Facts(part), depth + 1)
                if found is not MISSING:
                    values.append(found)
            if values:
                return values
        if isinstance(item, _String):
            if item.kind == "email":
                return [item.shape(v) for v in facts.emails()]
            if item.kind == "phone":
                return [item.shape(v) for v in facts.phones()]
            if item.kind == "name":
                return [item.shape(v) for v in dict.fromkeys(facts.name_candidates())]
        if isinstance(item, _Number) and item.kind == "generic":
            facts.weak = bool(facts.numbers())  # every number in the text: a guess
            return [item.shape(n) for n in facts.numbers() if math.isfinite(n)]
        if depth >= MAX_DEPTH:
            return []
        one = self.item.find(facts, depth + 1)
        return [] if one is MISSING else [one]

    def _shape(self, values: list[Any], facts: _Facts, depth: int) -> list[Any]:
        if self.max_items is not None:
            values = values[: self.max_items]
        while len(values) < self.min_items:
            values.append(values[0] if values else self.item.fallback(facts, depth + 1))
        return values

    def find(self, facts: _Facts, depth: int) -> Any:
        facts.path.append("[]")
        try:
            values = self._all(facts, depth)
            return self._shape(values, facts, depth) if values else MISSING
        finally:
            facts.path.pop()

    def fallback(self, facts: _Facts, depth: int) -> Any:
        facts.path.append("[]")
        try:
            return self._shape([], facts, depth)
        finally:
            facts.path.pop()


class _Object(_Node):
    def __init__(self) -> None:
        self.properties: list[tuple[str, _Node, bool, bool, Any]] = []

    def _build(self, facts: _Facts, depth: int, *, finding: bool) -> Any:
        result: dict[str, Any] = {}
        if depth > MAX_DEPTH and finding:
            return MISSING
        deep = depth > MAX_DEPTH  # past the depth limit: the least a valid object needs
        found_any = False
        noted = len(facts.guessed)
        for name, node, required, has_default, default in self.properties:
            facts.path.append(name)
            facts.weak = False
            value = MISSING if deep else node.find(facts, depth + 1)
            if value is not MISSING:
                found_any = True
                if facts.weak:
                    facts.note_guess()
            elif has_default:
                value = default
            elif node.nullable:
                value = None
            elif required:
                value = node.fallback(facts, depth + 1)
                if value != []:  # an empty list claims nothing
                    facts.note_guess()
            facts.path.pop()
            facts.weak = False
            if value is MISSING:
                continue
            result[name] = value
        if finding and not found_any:
            del facts.guessed[noted:]  # nothing of this object is kept
            return MISSING
        return result

    def find(self, facts: _Facts, depth: int) -> Any:
        return self._build(facts, depth, finding=True)

    def fallback(self, facts: _Facts, depth: int) -> Any:
        return self._build(facts, depth, finding=False)


class _Union(_Node):
    def __init__(self, branches: list[_Node], nullable: bool) -> None:
        self.branches = branches
        self.nullable = nullable

    def find(self, facts: _Facts, depth: int) -> Any:
        for branch in self.branches:
            value = branch.find(facts, depth)
            if value is not MISSING:
                return value
        return MISSING

    def fallback(self, facts: _Facts, depth: int) -> Any:
        if self.nullable or not self.branches:
            return None
        if depth >= MAX_DEPTH:  # deep in a recursive schema: a branch that ends here
            for branch in self.branches:
                if not isinstance(branch, _Object | _Ref | _Array):
                    return branch.fallback(facts, depth)
        return self.branches[0].fallback(facts, depth)


class _Ref(_Node):
    """A late-bound reference, so that recursive schemas compile."""

    def __init__(self, table: dict[str, _Node], key: str) -> None:
        self.table = table
        self.key = key

    def find(self, facts: _Facts, depth: int) -> Any:
        target = self.table.get(self.key)
        return MISSING if target is None else target.find(facts, depth)

    def fallback(self, facts: _Facts, depth: int) -> Any:
        target = self.table.get(self.key)
        return None if target is None else target.fallback(facts, depth)


# ---------------------------------------------------------------------------
# Compiling
# ---------------------------------------------------------------------------


class _Compiler:
    def __init__(self, root: dict[str, Any]) -> None:
        self.root = root
        self.refs: dict[str, _Node] = {}
        self.compiling: set[str] = set()

    def resolve(self, ref: str) -> Any:
        if not ref.startswith("#/"):
            return None
        node: Any = self.root
        for part in ref[2:].split("/"):
            part = part.replace("~1", "/").replace("~0", "~")
            if not isinstance(node, dict) or part not in node:
                return None
            node = node[part]
        return node

    def compile(self, schema: Any, name: str, title: str | None = None) -> _Node:
        if not isinstance(schema, dict):
            return _Node()
        ref = schema.get("$ref")
        if isinstance(ref, str):
            key = f"{ref}|{name}"
            if key not in self.refs and key not in self.compiling:
                self.compiling.add(key)
                self.refs[key] = self.compile(self.resolve(ref), name, title)
                self.compiling.discard(key)
            return _Ref(self.refs, key)
        if "const" in schema:
            return _Const(schema["const"])
        own_title = schema.get("title")
        if isinstance(own_title, str) and name:
            title = own_title
        label = _label_regex(name, title) if name else None
        enum = schema.get("enum")
        if isinstance(enum, list) and enum:
            return _Enum(enum, name, label)
        for key in ("anyOf", "oneOf"):
            options = schema.get(key)
            if isinstance(options, list) and options:
                return self._union(options, name, title)
        all_of = schema.get("allOf")
        if isinstance(all_of, list) and len(all_of) == 1:
            return self.compile(all_of[0], name, title)
        kind = schema.get("type")
        if isinstance(kind, list):
            others = [k for k in kind if k != "null"]
            branches = [self.compile({**schema, "type": k}, name, title) for k in others]
            return _Union(branches, nullable="null" in kind)
        if kind == "object" or (kind is None and "properties" in schema):
            return self._object(schema)
        if kind == "array":
            return _Array(schema, self.compile(schema.get("items", {}), name, title), name)
        if kind in ("integer", "number"):
            return _Number(schema, name, label)
        if kind == "boolean":
            return _Bool(name, label)
        if kind == "string":
            return _String(schema, name, label)
        if kind == "null":
            return _Null()
        return _Node()

    def _union(self, options: list[Any], name: str, title: str | None) -> _Node:
        nullable = False
        branches: list[_Node] = []
        for option in options:
            if isinstance(option, dict) and option.get("type") == "null":
                nullable = True
            else:
                branches.append(self.compile(option, name, title))
        return _Union(branches, nullable)

    def _object(self, schema: dict[str, Any]) -> _Object:
        node = _Object()
        properties = schema.get("properties")
        required = schema.get("required")
        required_set = set(required) if isinstance(required, list) else set()
        if isinstance(properties, dict):
            for prop, sub in properties.items():
                if not isinstance(prop, str):
                    continue
                child = self.compile(sub, prop)
                has_default = isinstance(sub, dict) and "default" in sub
                default = sub.get("default") if isinstance(sub, dict) else None
                node.properties.append((prop, child, prop in required_set, has_default, default))
        return node


def compile_schema(schema: dict[str, Any]) -> Filler:
    """Compile ``schema`` into a :class:`Filler` (no caching; see :func:`compiled`)."""
    return Filler(_Compiler(schema).compile(schema, ""))


_CACHE: dict[str, Filler] = {}


def compiled(schema: dict[str, Any], key: str | None = None) -> Filler:
    """The cached filler for ``schema``; ``key`` is its JSON text when already known."""
    if key is None:
        key = json.dumps(schema, sort_keys=True, separators=(",", ":"), default=str)
    filler = _CACHE.get(key)
    if filler is None:
        if len(_CACHE) >= _CACHE_LIMIT:
            _CACHE.clear()
        filler = _CACHE[key] = compile_schema(schema)
    return filler


def fill(schema: dict[str, Any], text: str) -> Any:
    """Fill ``schema`` from ``text``: a dict for an object schema."""
    return compiled(schema)(text)


# ---------------------------------------------------------------------------
# The text of a request, and schemas inside message texts
# ---------------------------------------------------------------------------


def message_text(content: Any) -> str:
    """The text of a chat message's content: a string, or the text parts of a list."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(
            part["text"]
            for part in content
            if isinstance(part, dict) and isinstance(part.get("text"), str)
        )
    return ""


def _without_instructions(text: str) -> str:
    if "json" not in text.lower():
        return text
    paragraphs = [p for p in text.split("\n\n") if not _INSTRUCTION_RE.search(p)]
    return "\n\n".join(paragraphs).strip()


def request_text(messages: list[Any]) -> str:
    """The text to fill: the first user message, without instructor's instructions."""
    for message in messages:
        if isinstance(message, dict) and message.get("role") == "user":
            return _without_instructions(message_text(message.get("content")))
    return ""


def schema_in_text(text: str, limit: int = 20) -> dict[str, Any] | None:
    """The first JSON-schema-looking object embedded in ``text`` (e.g. a system prompt)."""
    decoder = json.JSONDecoder()
    marker = text.find("json_schema")  # instructor's prompt: "... the following json_schema:"
    start = text.find("{", marker if marker != -1 else 0)
    if start == -1 and marker != -1:
        start = text.find("{")
    tries = 0
    while start != -1 and tries < limit:
        tries += 1
        try:
            value, end = decoder.raw_decode(text, start)
        except (ValueError, RecursionError):
            start = text.find("{", start + 1)
            continue
        if isinstance(value, dict) and (
            "properties" in value or "$defs" in value or "anyOf" in value or "type" in value
        ):
            return value
        start = text.find("{", end)
    return None
