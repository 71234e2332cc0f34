"""The hard limits of a generation brief — ages, locations, gender mix, count — stated to the model in one
fixed form and checked on every sketch it returns.

A sketch that breaks a limit is sketched again once (personas/jobs.py); what is still off is saved on
the persona as ``brief_mismatch``, in words a researcher can act on ("Age 72 is outside the brief's
25–50."). The prompt lines are also what the offline simulator reads, so their wording is fixed:
``- Age: 25 to 50``, ``- Location: … "Leeds, UK"; "Bristol, UK" …``, ``- Gender: exactly 3 women and
3 men``."""

import re
from collections import Counter
from dataclasses import dataclass, field

from personas.schemas import AGE_MAX, AGE_MIN

FEMALE, MALE = "female", "male"
_NOUNS = {FEMALE: ("woman", "women"), MALE: ("man", "men")}
_FEMALE_WORDS = r"women|woman|females?|girls?|mums?|mothers?|ladies|lady"
_MALE_WORDS = r"men|man|males?|boys?|dads?|fathers?|gentlemen|guys?"
GENDER_ISSUE = "Gender:"  # how a panel-level gender note starts: an edit to one persona keeps it or drops it

# Country names a place in a brief may be written as, and what a persona's location may say instead.
_COUNTRY_ALIASES = [
    {"uk", "u.k", "united kingdom", "britain", "great britain", "gb"}
    | {"england", "scotland", "wales", "northern ireland"},
    {"us", "u.s", "usa", "u.s.a", "united states", "united states of america", "america"},
]


@dataclass(frozen=True)
class Place:
    name: str
    region: str = ""

    @property
    def label(self) -> str:
        return f"{self.name}, {self.region}" if self.region else self.name


def places_parse(locations: list[str]) -> list[Place]:
    """The brief's locations as places. "UK: Leeds, Bristol" (split at commas into "UK: Leeds" and "Bristol")
    puts both cities in the UK: a "Region:" prefix holds for the places after it, until the next one."""
    places, region = [], ""
    for raw in locations or []:
        text = " ".join(str(raw).split()).strip(" ,;")
        if not text:
            continue
        if ":" in text:
            region, _, text = (part.strip() for part in text.partition(":"))
            if not text:
                continue
        bracket = re.fullmatch(r"(.+?)\s*\((.+)\)", text)
        if bracket:
            places.append(Place(bracket[1], bracket[2]))
        else:
            places.append(Place(text, region))
    return places


def _norm(text: str) -> str:
    return " " + " ".join(re.sub(r"[^\w.]+", " ", str(text).lower()).replace(".", "").split()) + " "


def _names(place: Place) -> set[str]:
    wanted = place.name.lower().replace(".", "").strip()
    for aliases in _COUNTRY_ALIASES:
        if wanted in {alias.replace(".", "") for alias in aliases}:
            return {alias.replace(".", "") for alias in aliases}
    return {wanted}


def location_fits(location: str, places: list[Place]) -> bool:
    """Whether a persona's location names one of the places (a whole word or phrase, any case)."""
    text = _norm(location)
    return any(f" {_norm(name).strip()} " in text for place in places for name in _names(place))


def gender_of(value) -> str | None:
    """ "Female", "Woman (she/her)", "F" → female; "Male", "man" → male; anything else is neither."""
    text = str(value or "").strip().lower()
    if text in ("f", "w") or re.search(rf"\b({_FEMALE_WORDS})\b", text):
        return FEMALE
    if text == "m" or re.search(rf"\b({_MALE_WORDS})\b", text):
        return MALE
    return None


def gender_targets(gender_mix: str, count: int) -> dict[str, int]:
    """The fewest women and men the brief's gender mix asks for among ``count`` people, or {} when the mix
    names nothing countable. "all women" → all; "3 women and 3 men"; "60% women" → 60% and the rest men;
    "mostly men" → more than half; "roughly even"/"50/50"/"balanced" → half each; "mixed" → one of each."""
    text = (gender_mix or "").lower()
    if not text.strip() or count < 1:
        return {}
    female = re.search(rf"\b({_FEMALE_WORDS})\b", text)
    male = re.search(rf"\b({_MALE_WORDS})\b", text)
    only = re.search(r"\b(all|only|100 ?%|exclusively|just)\b", text)
    if only and bool(female) != bool(male):
        return {FEMALE if female else MALE: count}
    numbers = {}
    counted = rf"(\d+)\s*(%?)\s*(?:of\s+them\s+)?({_FEMALE_WORDS}|{_MALE_WORDS})\b"
    for number, percent, word in re.findall(counted, text):
        gender = gender_of(word)
        assert gender is not None  # the pattern matches gender words only
        wanted = round(count * int(number) / 100) if percent else int(number)
        numbers[gender] = min(count, wanted)
        if percent and len(numbers) == 1:
            numbers[MALE if gender == FEMALE else FEMALE] = count - numbers[gender]
    if numbers:
        if sum(numbers.values()) > count:  # "4 women and 4 men" for six people: keep the proportion
            total = sum(numbers.values())
            numbers = {g: n * count // total for g, n in numbers.items()}
        return {g: n for g, n in numbers.items() if n}
    if re.search(r"\b(mostly|mainly|majority|more|predominantly|largely|primarily)\b", text) and bool(female) != bool(
        male
    ):
        return {FEMALE if female else MALE: count // 2 + 1}
    if re.search(r"\b(even|evenly|equal|equally|balanced|half|split|50 ?/ ?50|50 ?- ?50|50 ?%)\b", text):
        return {FEMALE: count // 2, MALE: count // 2} if count > 1 else {}
    if re.search(r"\b(mix|mixed|both|any|diverse)\b", text) and count > 1:
        return {FEMALE: 1, MALE: 1}
    return {}


def _people(genders: dict[str, int]) -> str:
    parts = [f"{n} {_NOUNS[g][n != 1]}" for g, n in genders.items() if n]
    return " and ".join(parts)


@dataclass
class BriefLimits:
    count: int
    age_min: int | None = None
    age_max: int | None = None
    places: list[Place] = field(default_factory=list)
    gender_mix: str = ""
    genders: dict[str, int] = field(default_factory=dict)

    @classmethod
    def of(cls, brief) -> "BriefLimits":
        return cls(
            count=brief.count,
            age_min=brief.age_min,
            age_max=brief.age_max,
            places=places_parse(brief.locations),
            gender_mix=(brief.gender_mix or "").strip(),
            genders=gender_targets(brief.gender_mix, brief.count),
        )

    # --- in the prompt ---------------------------------------------------------------------

    def age_text(self) -> str:
        return f"{self.age_min or AGE_MIN}–{self.age_max or AGE_MAX}"

    def places_text(self) -> str:
        regions = {place.region for place in self.places}
        if len(regions) == 1 and "" not in regions:
            return f"{', '.join(place.name for place in self.places)} ({regions.pop()})"
        return "; ".join(place.label for place in self.places)

    def prompt_lines(self, count: int, genders: dict[str, int] | None = None) -> list[str]:
        """The limits for sketching ``count`` people (the whole panel, or the ones sketched again, whose
        ``genders`` are what the panel still needs)."""
        genders = self.genders if genders is None else genders
        lines = []
        if self.age_min or self.age_max:
            low, high = self.age_min or AGE_MIN, self.age_max or AGE_MAX
            lines.append(f"Age: {low} to {high} (inclusive); nobody younger than {low} or older than {high}.")
        if self.places:
            quoted = "; ".join(f'"{place.label}"' for place in self.places)
            lines.append(
                f'Location: each person lives in one of these places: {quoted}. Their "location" names that place, '
                f'for example "{self.places[0].label}"; spread them across the places.'
            )
        if genders:
            exact = "exactly" if sum(genders.values()) == count else "at least"
            said = f" (the brief says: {self.gender_mix})" if self.gender_mix else ""
            lines.append(f"Gender: {exact} {_people(genders)}{said}.")
        elif self.gender_mix and genders is self.genders:
            lines.append(f"Gender mix: {self.gender_mix}.")
        return lines

    # --- checks ----------------------------------------------------------------------------

    def person_issues(self, profile: dict) -> list[str]:
        """What about one person is outside the brief (age, location), each as a sentence."""
        issues = []
        age = profile.get("age")
        too_young = isinstance(age, int) and self.age_min and age < self.age_min
        if too_young or (isinstance(age, int) and self.age_max and age > self.age_max):
            issues.append(f"Age {age} is outside the brief's {self.age_text()}.")
        if self.places and not location_fits(profile.get("location") or "", self.places):
            where = (profile.get("location") or "").strip()
            lives = f"Lives in {where}" if where else "No location given"
            issues.append(f"{lives}, not one of the brief's locations ({self.places_text()}).")
        return issues

    def _surplus(self, profiles: list[dict], keep: set[int]) -> list[int]:
        """Which of ``keep`` must give way so that the panel can hold the brief's gender mix: the last of
        each over-represented gender, as many as the other genders lack."""
        have = Counter(gender_of(profiles[i].get("gender")) for i in keep)
        lacking = sum(max(0, n - have[g]) for g, n in self.genders.items())
        chosen: list[int] = []
        for index in sorted(keep, reverse=True):
            if len(chosen) >= lacking:
                break
            gender = gender_of(profiles[index].get("gender"))
            wanted = 0 if gender is None else self.genders.get(gender, 0)  # unrecognised: the brief asks for none
            if have[gender] > wanted:
                chosen.append(index)
                have[gender] -= 1
        return sorted(chosen)

    def panel_issues(self, profiles: list[dict]) -> list[list[str]]:
        """For each sketch, what is outside the brief: its own limits, and, for the ones that tip the panel
        away from the brief's gender mix, the mix."""
        issues = [self.person_issues(profile) for profile in profiles]
        if self.genders:
            have = Counter(gender_of(profile.get("gender")) for profile in profiles)
            described = _people({g: have[g] for g in (FEMALE, MALE)}) or "nobody described as a woman or man"
            wanted = f"{self.gender_mix} ({_people(self.genders)})" if self.gender_mix else _people(self.genders)
            for index in self._surplus(profiles, set(range(len(profiles)))):
                issues[index].append(f"{GENDER_ISSUE} the panel has {described}; the brief asks for {wanted}.")
        return issues

    def genders_needed(self, profiles: list[dict], redo: list[int]) -> dict[str, int]:
        """The genders the sketches in ``redo`` must have for the panel to hold the brief's mix."""
        kept = Counter(gender_of(profiles[i].get("gender")) for i in range(len(profiles)) if i not in set(redo))
        return {g: max(0, n - kept[g]) for g, n in self.genders.items() if n > kept[g]}


def mismatch_text(issues: list[str]) -> str:
    return " ".join(issues)


def mismatch_after_edit(persona, *, gender_before: str) -> str:
    """A persona's flag after its profile changed: its own limits checked again; a panel-level gender note
    kept while its gender is the same."""
    if persona.brief is None:
        return persona.brief_mismatch
    issues = BriefLimits.of(persona.brief).person_issues({"age": persona.age, "location": persona.location})
    if gender_of(persona.gender) == gender_of(gender_before):
        note = persona.brief_mismatch or ""
        start = note.find(GENDER_ISSUE)
        if start >= 0:
            issues.append(note[start:].strip())
    return mismatch_text(issues)
