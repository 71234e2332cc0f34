"""The offline simulator's people: panels sketched within the brief, profiles with a point of view.

Stage 1 (``sketches``) reads the brief's hard limits from the prompt (``- Age: 25 to 50``,
``- Location: … "Leeds, UK"; …``, ``- Gender: exactly 3 women and 3 men``, see
``personas/brief_limits.py``) and the audience (its jobs, households, and the reference segments it is
grounded in). Stage 2 (``profile``) gives each person one main *angle* — price, time, features, trust,
planet, quality or health — that runs through their values, habits, backstory and quote, so that the
same angle can be read back from the profile when they speak in a discussion (``angles_of``)."""

import random
import re
from dataclasses import dataclass, field
from typing import Any

from llm.schema_faker import fake_person
from llm.simulator_text import (
    cap,
    first_name,
    fit,
    join_list,
    line_after,
    stable_int,
)


@dataclass(frozen=True)
class Angle:
    key: str
    label: str
    cues: str  # a regex of words that show this angle in a brief or a profile
    values: tuple[str, ...]
    interests: tuple[str, ...]
    goals: tuple[str, ...]
    frustrations: tuple[str, ...]
    brands: tuple[str, ...]
    buying: tuple[str, ...]
    media: tuple[str, ...]
    tech: str
    traits: dict[str, tuple[int, int]] = field(default_factory=dict)
    styles: tuple[str, ...] = ()
    quotes: tuple[str, ...] = ()
    backstory: str = ""


ANGLES: dict[str, Angle] = {
    angle.key: angle
    for angle in [
        Angle(
            key="price",
            label="price-conscious",
            cues=r"price|prices|priced|cheap|cheaper|cheapest|budget|afford|affordable|discount|deals?|offers?|"
            r"bargains?|value for money|thrift|saving|savings|cost|costs|expensive|pennies|own-label|tight|"
            r"cashback|vouchers?|money",
            values=("Value for money", "Thrift", "Financial security", "Fairness"),
            interests=("Cashback and deal apps", "Batch cooking", "Car-boot sales", "Free days out", "DIY repairs"),
            goals=(
                "Stick to a weekly budget",
                "Build up a rainy-day fund",
                "Stop paying for things that go unused",
                "Get {category} without paying over the odds",
            ),
            frustrations=(
                "Prices creeping up every month",
                "Hidden fees at checkout",
                "Subscriptions that are hard to cancel",
                "Paying extra for packaging and branding",
                "Shrinkflation",
            ),
            brands=("Supermarket own-label", "Discount supermarkets", "Cashback apps", "Price-comparison sites"),
            buying=(
                "Compares prices on two or three apps before buying anything and waits for offers.",
                "Sticks to a weekly budget and buys own-label wherever the quality holds up.",
                "Will only try {category} if it works out cheaper than what is in the basket now.",
            ),
            media=("Money-saving forums and deal alerts", "Facebook groups for local bargains", "Local radio"),
            tech="medium",
            traits={"conscientiousness": (62, 85), "openness": (28, 55), "neuroticism": (45, 68)},
            styles=(
                "Direct and practical; brings every point back to cost, with a dry sense of humour.",
                "Short, blunt sentences; quotes prices from memory.",
            ),
            quotes=(
                "If it doesn't save me money, it doesn't come in the house.",
                "I know what everything costs to the penny, and I'm not paying over the odds for {category}.",
            ),
            backstory="Money is tight by the end of the month, so {first} plans the shop around offers and keeps "
            "a running total on the phone.",
        ),
        Angle(
            key="tech",
            label="tech-savvy",
            cues=r"tech|technology|apps?|gadgets?|digital|online|software|smart|features?|early adopters?|"
            r"developers?|engineers?|coding|automation|automate|integrat\w*|devices?|specs",
            values=("Innovation", "Efficiency", "Curiosity", "Independence"),
            interests=("Trying new apps and gadgets", "Tech podcasts", "Home automation", "Video games", "Coding"),
            goals=(
                "Automate the boring parts of the week",
                "Find {category} that work properly from the phone",
                "Keep up with new tech without overpaying",
            ),
            frustrations=(
                "Clunky apps and websites",
                "Features locked behind paywalls",
                "Products that don't sync with each other",
                "Support that can't answer a technical question",
            ),
            brands=("Apple", "Samsung", "Monzo", "Amazon"),
            buying=(
                "Researches specs, features and reviews online, then buys wherever delivery is fastest.",
                "An early adopter: happy to try a new app or gadget in its first month if the features are useful.",
                "Manages orders and subscriptions from an app and drops anything that gets clunky.",
            ),
            media=("Tech YouTube and podcasts", "Reddit and product forums", "Newsletters about new apps"),
            tech="high",
            traits={"openness": (70, 92), "extraversion": (35, 65), "conscientiousness": (45, 72)},
            styles=(
                "Quick and curious; asks how things work and compares them with apps already on the phone.",
                "Enthusiastic about detail; talks features, settings and what could be automated.",
            ),
            quotes=(
                "Show me what it actually does and I'll tell you in five minutes if it's any good.",
                "If there's an app for {category}, it had better be a good one.",
            ),
            backstory="{first} is the one friends ask for tech advice and usually has a new app or gadget on the go.",
        ),
        Angle(
            key="time",
            label="time-poor",
            cues=r"busy|time|time-poor|quick|quickly|fast|convenien\w*|easy|hassle|weeknights?|rush|shifts?|"
            r"commute|juggl\w*|school run|kids|children|famil\w*|parents?|no time",
            values=("Convenience", "Family time", "Reliability", "Simplicity"),
            interests=("Quick family recipes", "Weekend walks", "Podcasts on the commute", "Kids' football"),
            goals=(
                "Get weeknight dinners sorted in under 30 minutes",
                "Spend less time on chores and more with family",
                "Cut down on trips to the shops",
                "Find {category} that just work without planning",
            ),
            frustrations=(
                "Delivery slots that don't fit around work",
                "Anything that needs planning days ahead",
                "Queues and slow checkouts",
                "Apps that take ten taps to do one thing",
            ),
            brands=("Online grocery delivery", "Click-and-collect", "Rapid delivery apps"),
            buying=(
                "Buys whatever saves time: the online shop, click-and-collect, repeat orders.",
                "Pays a little extra to avoid a trip to the shops, but only when it really saves time.",
                "Rarely compares brands; sticks with what worked last time because there's no time to research.",
            ),
            media=("Podcasts and audiobooks on the commute", "Instagram late in the evening", "WhatsApp groups"),
            tech="medium",
            traits={"conscientiousness": (55, 80), "neuroticism": (40, 65), "extraversion": (40, 70)},
            styles=(
                "Warm and a bit rushed; thinks out loud about the week's routine.",
                "Friendly and practical; everything comes back to time.",
            ),
            quotes=(
                "If it saves me twenty minutes on a Tuesday night, I'm interested.",
                "I haven't got time to faff about with {category}.",
            ),
            backstory="Weeknights are a juggle of work, meals and everything else, so anything that saves {first} "
            "time gets a look.",
        ),
        Angle(
            key="trust",
            label="sceptical",
            cues=r"trust|trusted|sceptic\w*|skeptic\w*|wary|cautious|reliable|reliability|reviews?|scams?|"
            r"gimmicks?|proof|privacy|loyal|established|contracts?|small print|catch",
            values=("Honesty", "Reliability", "Loyalty", "Common sense"),
            interests=("Gardening", "Local history", "Crosswords", "Fixing things around the house"),
            goals=(
                "Avoid being caught out by the small print",
                "Stick with brands that have earned it",
                "Only pay for things that do what they say",
            ),
            frustrations=(
                "Gimmicks and marketing speak",
                "Fake reviews",
                "Contracts that are hard to leave",
                "Being asked for personal data for no reason",
            ),
            brands=("Long-standing high-street names", "Brands friends recommend", "Which? best buys"),
            buying=(
                "Loyal to what works; reads reviews and asks friends before switching.",
                "Wary of anything new until someone they trust has tried it.",
                "Reads the small print and steers clear of subscriptions and contracts.",
            ),
            media=("Local radio and the evening news", "Facebook groups", "Consumer-rights programmes"),
            tech="low",
            traits={"openness": (18, 45), "conscientiousness": (60, 85), "agreeableness": (35, 60)},
            styles=(
                "Dry and unimpressed; asks what the catch is, in short sentences.",
                "Measured and cautious; wants proof before praise.",
            ),
            quotes=(
                "Every new thing promises the earth. I'll wait and see.",
                "Don't sell me {category} with a gimmick — show me it works.",
            ),
            backstory="{first} has been caught out by a couple of 'too good to be true' offers and now wants proof "
            "before switching anything.",
        ),
        Angle(
            key="planet",
            label="eco-minded",
            cues=r"eco|green|greener|sustainab\w*|environment\w*|planet|plastic|waste|recycl\w*|refills?|carbon|"
            r"climate|organic|ethical|packaging|second-hand|secondhand",
            values=("Sustainability", "Community", "Less waste", "Fairness"),
            interests=("Refill shops", "Allotment gardening", "Cycling", "Repair cafés", "Second-hand fashion"),
            goals=(
                "Cut the household's plastic waste",
                "Buy less, buy better",
                "Support local, ethical businesses",
                "Find {category} that are genuinely greener",
            ),
            frustrations=(
                "Greenwashing",
                "Over-packaged products",
                "Eco options that cost twice as much",
                "Recycling rules that differ from council to council",
            ),
            brands=("Refill shops", "Ethical brands", "Local independents", "Second-hand marketplaces"),
            buying=(
                "Picks the greener option when it costs about the same, and checks the packaging before buying.",
                "Uses refill and second-hand shops where possible and avoids single-use plastic.",
                "Will pay a little more for something genuinely sustainable, not for a green label.",
            ),
            media=("Radio and podcasts about the environment", "Low-waste accounts on Instagram", "Community groups"),
            tech="medium",
            traits={"openness": (62, 88), "agreeableness": (62, 88), "conscientiousness": (55, 80)},
            styles=(
                "Thoughtful and encouraging; gives examples from everyday life.",
                "Earnest but practical; weighs good intentions against what people will really do.",
            ),
            quotes=(
                "If it's better for the planet and doesn't make my week harder, I'm in.",
                "I'd rather buy {category} once and buy well.",
            ),
            backstory="{first} has been cutting waste at home for a few years and notices every bit of plastic that "
            "comes into the house.",
        ),
        Angle(
            key="quality",
            label="quality-first",
            cues=r"quality|premium|design|design-led|designer|style|stylish|aesthetic\w*|looks?|feel|craft\w*|"
            r"durable|lasting|taste|luxury|scent|well made|brand-conscious|makers?",
            values=("Quality", "Craftsmanship", "Style", "Comfort"),
            interests=("Cooking from scratch", "Interior design", "Good coffee", "Weekend markets"),
            goals=(
                "Buy fewer, better things",
                "Make home feel special",
                "Find {category} worth paying a bit more for",
            ),
            frustrations=(
                "Cheap products that break quickly",
                "Ugly packaging",
                "Products that don't match the photos",
                "Bland, samey options",
            ),
            brands=("Independent makers", "Premium supermarket ranges", "Design-led brands"),
            buying=(
                "Will pay more for quality and design, and reads reviews for how well things last.",
                "Buys small and often from places with a good range; look, feel and scent matter.",
                "Happy to try a new brand if it looks and feels well made.",
            ),
            media=("Instagram and design newsletters", "Food and lifestyle magazines", "Spotify playlists"),
            tech="medium",
            traits={"openness": (65, 90), "extraversion": (45, 75), "conscientiousness": (45, 70)},
            styles=(
                "Enthusiastic and visual; describes how things look and feel.",
                "Particular and articulate; notices details others miss.",
            ),
            quotes=(
                "I'd rather pay a bit more for something I actually enjoy using.",
                "If {category} look good on the shelf, I'll actually use them.",
            ),
            backstory="{first} cares how things look and feel and would rather have one good thing than three "
            "cheap ones.",
        ),
        Angle(
            key="health",
            label="health-conscious",
            cues=r"health|healthy|healthier|fitness|gym|nutrition\w*|diet|wellbeing|well-being|running|sugar|"
            r"calories|protein|vegan|vegetarian|allerg\w*|ingredients",
            values=("Health", "Balance", "Energy", "Family wellbeing"),
            interests=("Running", "Yoga", "Meal prep", "Cycling to work"),
            goals=(
                "Eat more healthily without extra effort",
                "Keep the family active",
                "Know exactly what goes into {category}",
            ),
            frustrations=(
                "Vague nutrition labels",
                "Hidden sugar",
                "Healthy options that cost more",
                "Portion sizes that don't fit",
            ),
            brands=("Health-food shops", "Fitness apps", "Fresh local produce"),
            buying=(
                "Reads ingredient labels and nutrition information before buying.",
                "Plans the week's food around training and family meals.",
                "Pays more for fresher, healthier options when they are clearly better.",
            ),
            media=("Fitness apps and running clubs", "Health podcasts", "Recipe accounts on Instagram"),
            tech="medium",
            traits={"conscientiousness": (62, 88), "extraversion": (50, 80), "neuroticism": (25, 50)},
            styles=("Upbeat and specific; mentions routines and what works for them.",),
            quotes=("I want to know exactly what's in it.", "If it helps me eat better on a busy day, great."),
            backstory="{first} fits exercise around work and wants products that help rather than get in the way.",
        ),
    ]
}


def angle_scores(text: str) -> dict[str, int]:
    """How strongly ``text`` shows each angle: the number of its cue words in it."""
    text = (text or "").lower()
    return {key: len(re.findall(rf"\b(?:{angle.cues})\b", text)) for key, angle in ANGLES.items()}


def angles_of(text: str, *, name: str = "") -> list[str]:
    """The angles ``text`` shows, strongest first; ties in a fixed order per ``name``."""
    scores = angle_scores(text)
    order = sorted(ANGLES, key=lambda key: (-scores[key], stable_int(name, key)))
    return order


# --- the audience ------------------------------------------------------------------------------

# (pattern in the brief, job titles with the ages they fit)
_JOBS: list[tuple[str, list[tuple[str, int, int]]]] = [
    (r"nurs(?:e|es|ing)", [("Staff nurse", 21, 66), ("Community nurse", 25, 66), ("Theatre nurse", 23, 64)]),
    (r"teach(?:er|ers|ing)", [("Primary school teacher", 22, 66), ("Secondary school teacher", 22, 66)]),
    (r"students?|undergrad\w*", [("Undergraduate student", 18, 30), ("Master's student", 21, 40)]),
    (r"developers?|software|programmers?|engineers?", [("Software developer", 21, 62), ("Data engineer", 22, 60)]),
    (r"doctors?|gps?|physicians?", [("Junior doctor", 24, 34), ("GP", 30, 67)]),
    (
        r"retired|retirees?|pensioners?",
        [("Retired teacher", 58, 95), ("Retired engineer", 58, 95), ("Retired shop manager", 58, 95)],
    ),
    (
        r"small business owners?|business owners?|founders?|entrepreneurs?|self-employed|sole traders?",
        [("Café owner", 24, 75), ("Independent shop owner", 24, 75), ("Self-employed plumber", 22, 70)],
    ),
    (r"freelanc\w*", [("Freelance designer", 21, 65), ("Freelance copywriter", 21, 70)]),
    (r"drivers?|couriers?", [("Delivery driver", 20, 66), ("Taxi driver", 22, 70)]),
    (r"farmers?", [("Dairy farmer", 20, 75), ("Arable farmer", 20, 75)]),
    (
        r"professionals?|office workers?|white-collar",
        [
            ("Accountant", 22, 67),
            ("Solicitor", 24, 67),
            ("Marketing manager", 26, 62),
            ("Project manager", 25, 66),
            ("HR adviser", 22, 65),
        ],
    ),
    (r"shift workers?|shift work", [("Care worker", 18, 68), ("Paramedic", 22, 60), ("Warehouse operative", 18, 65)]),
    (r"healthcare workers?|nhs staff|clinicians?", [("Pharmacist", 24, 67), ("Physiotherapist", 22, 66)]),
    (r"remote workers?|work(?:ing)? from home", [("UX designer", 22, 60), ("Customer success manager", 23, 60)]),
    (r"tradespeople|tradesmen|builders?|electricians?|plumbers?", [("Electrician", 19, 67), ("Plumber", 19, 67)]),
    (r"stay-at-home|homemakers?", [("Stay-at-home parent", 20, 60)]),
    (r"retail workers?|shop workers?", [("Retail assistant", 18, 66), ("Store supervisor", 21, 66)]),
    (r"hospitality|chefs?|bar staff|waiters?|waitresses", [("Chef", 19, 66), ("Bar manager", 21, 60)]),
    (r"academics?|researchers?|lecturers?", [("University lecturer", 27, 68), ("Postdoctoral researcher", 26, 45)]),
    (r"managers?|executives?", [("Operations manager", 27, 66), ("Sales director", 32, 66)]),
]
_TIERS = [
    (r"student|apprentice|barista|retail|assistant|care worker|driver|courier|waiter|stay-at-home|warehouse", 0),
    (r"retired", 1),
    (r"nurse|teacher|technician|electrician|plumber|carpenter|chef|customer|designer|photographer|social worker|"
     r"police|librarian|bookkeeper|hairdresser|operative|paramedic|owner|farmer|copywriter|supervisor", 1),
    (r"developer|engineer|pharmacist|accountant|solicitor|manager|physiotherapist|lecturer|analyst|adviser|"
     r"researcher|gp\b", 2),
    (r"director|doctor|consultant|head of|partner", 3),
]  # fmt: skip
_BANDS = {"£": [(14, 22), (24, 36), (38, 60), (65, 110)], "$": [(22, 35), (40, 60), (65, 95), (110, 180)]}
_BANDS["€"] = [(16, 25), (28, 42), (45, 70), (75, 120)]
_CURRENCY = {"United Kingdom": "£", "United States": "$", "Canada": "$", "Australia": "$"}
_CURRENCY |= {"Germany": "€", "France": "€", "Spain": "€", "Ireland": "€"}
_EDUCATION = {
    0: ["Secondary school", "College diploma", "Studying for a degree"],
    1: ["Vocational qualification", "Bachelor's degree", "College diploma"],
    2: ["Bachelor's degree", "Master's degree"],
    3: ["Master's degree", "Medical degree", "MBA"],
}
_COUNTRY_ONLY = re.compile(
    r"^(uk|u\.k\.?|united kingdom|great britain|britain|england|scotland|wales|northern ireland|us|usa|"
    r"united states|america|canada|australia|germany|france|spain|ireland|india|japan|mexico|brazil|nigeria)$",
    re.I,
)


def _tier(occupation: str) -> int:
    text = occupation.lower()
    for pattern, tier in _TIERS:
        if re.search(pattern, text):
            return tier
    return 1


def _income(occupation: str, country: str, rng: random.Random) -> str:
    symbol = _CURRENCY.get(country)
    tier = _tier(occupation)
    if symbol is None:
        return ["Lower income", "Middle income", "Upper-middle income", "High income"][tier]
    low, high = _BANDS[symbol][tier]
    low = max(5, low + rng.choice((-4, -2, 0, 2)))
    high = max(low + 6, high + rng.choice((-4, 0, 4)))
    return f"{symbol}{low}–{high}k a year"


def _households(description: str, age: int) -> list[str]:
    text = description.lower()
    if re.search(r"\b(parents?|mums?|dads?|mothers?|fathers?|famil\w*|children|kids)\b", text):
        young = "young" if re.search(r"\b(young|toddlers?|babies|baby|primary|small)\b", text) else ""
        kids = f"{young} children".strip()
        return [
            f"Married with two {kids}",
            f"Single parent of a {young or 'school-age'} child",
            f"Lives with partner and three {kids}",
            f"Lives with partner and a {'toddler' if young else 'teenager'}",
        ]
    if re.search(r"\bstudents?\b", text) and age < 35:
        return ["Shares a flat with two other students", "Lives in student halls", "Lives with parents"]
    if re.search(r"\b(retired|retirees?|pensioners?)\b", text):
        return ["Married, children have left home", "Lives alone", "Lives with partner"]
    if re.search(r"\b(couples?)\b", text):
        return ["Lives with partner", "Married, no children"]
    if re.search(r"\b(single|singles|living alone)\b", text):
        return ["Lives alone", "Lives alone with a cat"]
    return []


@dataclass
class Limits:
    """The hard limits stated in a stage-1 prompt."""

    age_min: int = 18
    age_max: int = 80
    ages_given: bool = False
    places: list[str] = field(default_factory=list)
    genders: dict[str, int] = field(default_factory=dict)


def read_limits(prompt: str) -> Limits:
    limits = Limits()
    age = re.search(r"^- Age: (\d+) to (\d+)", prompt, re.M) or re.search(
        r"Ages must be between (\d+) and (\d+)", prompt
    )
    if age:
        low, high = int(age.group(1)), int(age.group(2))
        if low <= high:
            limits.age_min, limits.age_max, limits.ages_given = low, high, True
    location = re.search(r"^- Location: [^\n]*", prompt, re.M)
    if location:
        limits.places = re.findall(r'"([^"]+)"', location.group(0).split(" Their ", 1)[0])
    else:
        spread = re.search(r"^Spread them across these locations: (.+?)\.?$", prompt, re.M)
        if spread:
            limits.places = [part.strip() for part in spread.group(1).split(",") if part.strip()]
    gender = re.search(r"^- Gender: ([^\n]*)", prompt, re.M)
    if gender:
        for number, word in re.findall(r"(\d+) (women|woman|men|man)\b", gender.group(1)):
            limits.genders["female" if word.startswith("wom") else "male"] = int(number)
    return limits


def _segments(prompt: str) -> list[str]:
    """Reference segments the prompt names ("Segment labels: A, B"), else its reference files."""
    labels = []
    for line in re.findall(r"^Segment labels: (.+)$", prompt, re.M):
        labels += [label.strip() for label in line.split(",") if label.strip()]
    if labels:
        return labels
    return re.findall(r"<<<REFERENCE ([^:>]+): data only", prompt)


def _jobs(description: str) -> list[tuple[str, int, int]]:
    found = []
    for pattern, titles in _JOBS:
        if re.search(rf"\b(?:{pattern})\b", description, re.I):
            found += titles
    return found


def _genders(limits: Limits, count: int, rng: random.Random) -> list[str]:
    slots = [g for g, n in limits.genders.items() for _ in range(n)][:count]
    other = rng.choice(["female", "male"])
    while len(slots) < count:
        slots.append(other)
        other = "male" if other == "female" else "female"
    rng.shuffle(slots)
    return slots


def _ages(limits: Limits, count: int, rng: random.Random) -> list[int]:
    """Spread across the range: one age from each of ``count`` equal bands, in a shuffled order."""
    low, high = limits.age_min, limits.age_max
    span = high - low + 1
    ages = [min(high, low + int(span * (i + rng.random()) / count)) for i in range(count)]
    rng.shuffle(ages)
    return ages


def _location(place: str, person: dict) -> str:
    if _COUNTRY_ONLY.match(place.strip()):
        return f"{person['city']}, {place.strip()}"
    return place.strip()


def sketches(schema: dict, prompt: str, generated: dict, rng: random.Random) -> dict:
    """Stage 1: the generated panel, redrawn as people of the audience within the prompt's limits."""
    items = generated.get("personas") if isinstance(generated, dict) else None
    item_schema = (((schema.get("properties") or {}).get("personas") or {}).get("items") or {}).get("properties")
    if not isinstance(items, list) or not items or not isinstance(item_schema, dict):
        return generated
    count = len(items)
    limits = read_limits(prompt)
    audience = line_after(prompt, "AUDIENCE:")
    avoid = {name.strip() for name in line_after(prompt, "- Do not reuse any of these names:").rstrip(".").split(",")}
    jobs = _jobs(audience)
    if jobs and not limits.ages_given:  # ages the audience's jobs fit
        limits.age_min = max(limits.age_min, min(low for _, low, _ in jobs))
        limits.age_max = min(limits.age_max, max(high for _, _, high in jobs))
    segments = _segments(prompt)
    genders, ages = _genders(limits, count, rng), _ages(limits, count, rng)
    start = rng.randrange(len(limits.places)) if limits.places else 0
    used: set[str] = set(avoid)
    people = []
    surnames: set[str] = set()
    taken: set[str] = set()
    for index, item in enumerate(items):
        place = limits.places[(start + index) % len(limits.places)] if limits.places else audience
        for _ in range(8):  # no two of a small panel share a surname, when the word bank allows
            person = fake_person(
                seed=rng.randrange(2**31), gender=genders[index], age=ages[index], place=place, avoid=used
            )
            if person["name"].split()[-1] not in surnames:
                break
        used.add(person["name"])
        surnames.add(person["name"].split()[-1])
        segment = segments[index % len(segments)] if segments else None
        fitting = [title for title, low, high in jobs if low <= person["age"] <= high]
        segment_jobs = [t for t, low, high in _jobs(segment or "") if low <= person["age"] <= high]
        choices = segment_jobs or fitting
        if choices:
            fresh = [title for title in choices if title not in taken] or choices
            occupation = rng.choice(fresh)
        else:
            occupation = person["occupation"]
            for _ in range(6):  # a panel of six with two social workers reads like a glitch
                if occupation not in taken:
                    break
                occupation = fake_person(seed=rng.randrange(2**31), age=person["age"])["occupation"]
        taken.add(occupation)
        households = _households(audience, person["age"])
        tier = _tier(occupation)
        values = {
            "name": person["name"],
            "age": person["age"],
            "gender": {"female": "Female", "male": "Male"}.get(person["gender"], "Non-binary"),
            "location": _location(place, person) if limits.places else f"{person['city']}, {person['country']}",
            "occupation": occupation,
            "income_bracket": _income(occupation, person["country"], rng),
            "education": rng.choice(_EDUCATION[tier]),
            "household": rng.choice(households) if households else person["household"],
            "grounded_in": segment,
        }
        person_item = dict(item) if isinstance(item, dict) else {}
        for key, value in values.items():
            if key not in item_schema:
                continue
            node = item_schema[key]
            if isinstance(value, str):
                person_item[key] = fit(value, node)
            elif value is None and "null" in (node.get("type") or []):
                person_item[key] = None
            elif isinstance(value, int):
                person_item[key] = min(node.get("maximum", value), max(node.get("minimum", value), value))
        people.append(person_item)
    return {**generated, "personas": people}


# --- stage 2 ---------------------------------------------------------------------------------------

_PERSON = re.compile(
    r"- Name: (?P<name>[^,\n]+), (?P<age>\d+)(?:, (?P<gender>[^\n]*))?\n- Lives in: (?P<location>[^\n]*)\n"
    r"- Works as: (?P<occupation>[^\n]*)"
)


_PROPER = ("Instagram", "Facebook", "Reddit", "Spotify", "TikTok", "WhatsApp", "YouTube", "BBC", "Radio 4")


def _listed(items: list[str]) -> list[str]:
    """Items that follow the first in a running list start in lower case, proper names aside."""
    return items[:1] + [item if item.startswith(_PROPER) else item[:1].lower() + item[1:] for item in items[1:]]


def _a(text: str) -> str:
    return ("an " if text[:1].lower() in "aeiou" else "a ") + text


def _pronoun(gender: str) -> str:
    text = (gender or "").lower()
    if re.search(r"\b(female|woman|f)\b", text):
        return "her"
    if re.search(r"\b(male|man|m)\b", text):
        return "his"
    return "their"


def category_of(text: str) -> str:
    """The product or category a brief or objective is about: "curious about meal kits" → "meal kits"."""
    trigger = (
        r"curious about|interested in|thinking about|thinking of|considering|open to|switching to|switch to|"
        r"(?:who|that) (?:use|buy|order|try|shop for|pay for|subscribe to|rely on)|users of|buyers of|"
        r"customers of|subscribers to|shoppers for|choose|choosing|buy|buying|(?<!-)use|using|try|trying|adopt|"
        r"cancel|cancelling|canceling|quit|leave|stop using|switch from|switching from|give up"
    )
    stop = (
        r"but|and|or|who|because|that|to|in|on|at|for|with|from|than|twice|once|every|each|more|less|often|"
        r"regularly|would|will|could|is|are|the|a|an|their|they|them|when|while|if|as"
    )
    for match in re.finditer(rf"\b(?:{trigger})\s+((?:the |a |an )?[\w'-]+(?: [\w'-]+){{0,3}})", text or "", re.I):
        words = []
        for word in re.sub(r"^(?:the|a|an) ", "", match.group(1), flags=re.I).split():
            if re.fullmatch(stop, word, re.I):
                break
            words.append(word)
        if words:
            return " ".join(words).strip(" ,.;:")
    return ""


def _segment_row(prompt: str, segment: str) -> str:
    """The line of the reference material that names ``segment`` (a CSV row: "Budget jugglers,40%,cheap")."""
    start = prompt.find("<<<REFERENCE")
    if not segment or start < 0:
        return ""
    for line in prompt[start:].splitlines():
        if segment.lower() in line.lower() and not line.startswith(("<<<", "Segment labels")):
            return line.strip()
    return ""


def profile(schema: dict, prompt: str, generated: dict, rng: random.Random) -> dict:
    """Stage 2: a detailed profile of the person the prompt describes, with one main angle throughout."""
    match = _PERSON.search(prompt)
    properties = schema.get("properties") or {}
    if not match or not isinstance(generated, dict):
        return generated
    name, age = match["name"].strip(), int(match["age"])
    first, gender = first_name(name), (match["gender"] or "").strip()
    location, occupation = match["location"].strip(), match["occupation"].strip()
    income = line_after(prompt, "- Income:")
    household = line_after(prompt, "- Household:")
    segment = line_after(prompt, "- Reflects the reference source/segment:")
    audience = line_after(prompt, "THE AUDIENCE BRIEF:")
    category = category_of(audience) or "everyday products"
    own = " ".join([occupation, income, household, segment, _segment_row(prompt, segment)])
    weights = {key: 1 + 3 * score for key, score in angle_scores(own).items()}
    for key, score in angle_scores(audience).items():
        weights[key] += score
    tier = _tier(occupation)
    weights["price"] += 3 if tier == 0 or re.search(r"(under|lower|low)\b", income, re.I) else 0
    weights["quality"] += 2 if tier >= 3 else 0
    weights["trust"] += 2 if age >= 60 else 0
    weights["tech"] += 2 if age <= 32 or re.search(r"developer|engineer|designer|data", occupation, re.I) else 0
    weights["tech"] = weights["tech"] if age < 70 else 0
    person_rng = random.Random(stable_int("angle", name, age, occupation))
    keys = list(ANGLES)
    main = person_rng.choices(keys, weights=[weights[k] for k in keys])[0]
    rest = [k for k in keys if k != main]
    second = person_rng.choices(rest, weights=[weights[k] for k in rest])[0]
    angle, other = ANGLES[main], ANGLES[second]

    def fill(text: str) -> str:
        return text.format(first=first, category=category, pronoun=_pronoun(gender))

    def pick(items, n) -> list[str]:
        return [fill(item) for item in rng.sample(list(items), min(n, len(items)))]

    tech = angle.tech if main == "tech" else ("low" if age >= 65 else other.tech if second == "tech" else "medium")
    if re.search(r"developer|engineer|data|designer", occupation, re.I):
        tech = "high"
    traits = {}
    for trait in ("openness", "conscientiousness", "extraversion", "agreeableness", "neuroticism"):
        low, high = angle.traits.get(trait) or other.traits.get(trait) or (30, 70)
        traits[trait] = rng.randint(low, high)
    job = occupation[:1].lower() + occupation[1:] if occupation[:2] != occupation[:2].upper() else occupation
    does = f"{first} is {age}, lives in {location} and works as {_a(job)}." if job else f"{first} is {age}."
    if job.startswith(("retired", "stay-at-home")) or " student" in f" {job}":
        does = f"{first} is {age}, lives in {location} and is {_a(job)}."
    home = f" {cap(household.rstrip('.'))}." if household else ""
    grounded = ""
    if segment:
        row = _segment_row(prompt, segment)
        details = [cell.strip() for cell in re.split(r"[,;|\t]", row) if cell.strip() and cell.strip() != segment]
        grounded = f" {first} is based on the “{segment}” segment of the research" + (
            f" ({', '.join(details[:4])})." if details else "."
        )
    about = ""
    if category != "everyday products":
        habit = fill(rng.choice(angle.buying)).rstrip(".")
        about = f" On {category}, {first} is {angle.label}: {habit[:1].lower()}{habit[1:]}."
    values: dict[str, Any] = {
        "personality": traits,
        "values": list(dict.fromkeys(pick(angle.values, 2) + pick(other.values, 2)))[:4],
        "interests": pick(angle.interests, 2) + pick(other.interests, 1),
        "goals": pick(angle.goals, 2) + pick(other.goals, 1),
        "frustrations": pick(angle.frustrations, 2) + pick(other.frustrations, 1),
        "brand_affinities": pick(angle.brands, 2) + pick(other.brands, 1),
        "buying_behaviour": " ".join(pick(angle.buying, 2) + pick(other.buying, 1)),
        "media_habits": f"{join_list(_listed(pick(angle.media, 2) + pick(other.media, 1)))}.",
        "tech_savviness": tech,
        "backstory": f"{does}{home} {fill(angle.backstory)} {fill(other.backstory)}{about}{grounded}".strip(),
        "speaking_style": fill(rng.choice(angle.styles)),
        "quote": fill(rng.choice(angle.quotes)),
    }
    result = dict(generated)
    for key, value in values.items():
        node = properties.get(key)
        if node is None:
            continue
        if key == "personality" and isinstance(generated.get(key), dict):
            inner = node.get("properties") or {}
            result[key] = {
                trait: min(inner.get(trait, {}).get("maximum", 100), max(inner.get(trait, {}).get("minimum", 0), v))
                for trait, v in value.items()
                if trait in inner
            }
        elif isinstance(value, list):
            item = node.get("items") or {}
            result[key] = [fit(v, item) for v in value][: node.get("maxItems", len(value))]
        elif key == "tech_savviness" and node.get("enum") and value not in node["enum"]:
            continue
        elif isinstance(value, str):
            result[key] = fit(value, node)
    return result


# --- a person sampled from a population (panels) ------------------------------------------------------

_SAMPLED = "THE PERSON (sampled from"
_RETIREMENT_AGE = 67


def _fact(prompt: str, label: str) -> str:
    """A fixed fact of a sampled person ("- Gender: Female"), or ""."""
    match = re.search(rf"^- {re.escape(label)}: ([^\n]*)$", prompt, re.M)
    return match.group(1).strip() if match else ""


def _sampled_occupation(person: dict, age: int, education: str, rng: random.Random) -> str:
    if age >= _RETIREMENT_AGE:
        return rng.choice(("Retired", "Retired teacher", "Retired electrician", "Retired nurse", "Retired clerk"))
    if age <= 21 and re.search(r"high school|some college", education, re.I):
        return rng.choice(("Student", "Student and part-time barista", "Retail assistant"))
    if re.search(r"graduate|college", education, re.I) and not re.search(r"some college|high school", education, re.I):
        occupation = person["occupation"]
        return (
            occupation
            if _tier(occupation) >= 2
            else rng.choice(
                ("Accountant", "Software developer", "Teacher", "Marketing manager", "Pharmacist", "Civil engineer")
            )
        )
    if re.search(r"less than|no degree|high school", education, re.I):
        occupation = person["occupation"]
        return (
            occupation
            if _tier(occupation) <= 1
            else rng.choice(
                ("Warehouse worker", "Delivery driver", "Cashier", "Home health aide", "Electrician", "Cook")
            )
        )
    return person["occupation"]


def sampled_person(schema: dict, prompt: str, generated: dict, rng: random.Random) -> dict:
    """A panel's person: the sampled facts are fixed in the prompt; a name, a job that fits their education
    and age and a household come from the word banks, and, when asked for, the rest of the profile as stage
    2 writes it (``profile``)."""
    if _SAMPLED not in prompt or not isinstance(generated, dict):
        return generated
    try:
        age = int(_fact(prompt, "Age") or 40)
    except ValueError:
        age = 40
    gender_text = _fact(prompt, "Gender").lower()
    gender = "female" if gender_text.startswith(("f", "w")) else "male" if gender_text.startswith("m") else None
    location = _fact(prompt, "Lives in")
    education = _fact(prompt, "Education")
    income = _fact(prompt, "Household income") or _fact(prompt, "Income")
    person = fake_person(seed=rng.randrange(2**31), gender=gender, age=age, place="United States")
    occupation = _sampled_occupation(person, age, education, rng)
    household = person["household"]
    properties = schema.get("properties") or {}
    result = dict(generated)
    for key, value in (("name", person["name"]), ("occupation", occupation), ("household", household)):
        if key in properties:
            result[key] = fit(value, properties[key])
    if "backstory" not in properties:
        return result
    stage_two = (
        f"THE AUDIENCE BRIEF: {line_after(prompt, 'THE AUDIENCE:')}\n"
        f"THE PERSON:\n- Name: {person['name']}, {age}, {_fact(prompt, 'Gender')}\n- Lives in: {location}\n"
        f"- Works as: {occupation}\n- Income: {income}; education: {education}\n- Household: {household}\n"
    )
    return profile(schema, stage_two, result, rng)
