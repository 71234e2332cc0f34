"""Plausible, schema-valid JSON values, made up without a model.

``fake_instance(schema, seed=..., hint=...)`` returns a JSON value (dicts, lists, str, int, float, bool,
None) that validates against ``schema``: the JSON Schema subset that OpenAI strict structured outputs use
(``object`` with ``properties``/``required``/``additionalProperties: false``, ``array`` with ``items``/
``minItems``/``maxItems``, ``string`` with ``enum``/``minLength``/``maxLength``/``format``/simple
``pattern``, ``integer``/``number`` with bounds and ``multipleOf``, ``boolean``, ``null``, type lists,
``anyOf``/``oneOf``/``allOf``, ``const``, ``enum`` and local ``$ref`` to ``#/$defs/...`` or
``#/definitions/...``).

The same ``seed`` always gives the same value (``random.Random(seed)``; a string seed is hashed with
SHA-512 by ``random``, so it does not depend on ``PYTHONHASHSEED``), different seeds give different values.

Values read like something a person wrote. A property's name is the hint for its value: ``name`` gets a
first and last name, ``age`` an age (18-80 unless the schema's bounds say otherwise), ``location``/``city``
a real city, ``occupation`` a job title that fits the age, ``quote`` a short first-person sentence,
``title``/``summary``/``description`` short sentences about consumers, price, convenience, trust... The
fields of one object (and of the objects nested in it) describe one coherent person: the name matches the
gender, the job matches the age, the bio mentions the city. Names are not repeated within one value.

Used by the fake OpenAI server in the tests and by the offline simulator; stdlib only.
"""

from __future__ import annotations

import datetime as _dt
import functools
import math
import re
import unicodedata
import uuid
from collections.abc import Callable, Collection, Iterator, Sequence
from random import Random
from typing import Any

__all__ = ["fake_instance", "fake_person", "fake_reply", "reply_sentences"]

_MAX_DEPTH = 8
_NULL_PROBABILITY = 0.15  # how often a nullable value comes out as null

# --------------------------------------------------------------------------------------------------------------
# Word banks. Brands are made up on purpose.
# --------------------------------------------------------------------------------------------------------------


def _split(text: str) -> list[str]:
    """A word bank: one entry a line, or entries separated by ``|``."""
    sep = "\n" if "\n" in text else "|"
    return [item.strip() for item in text.split(sep) if item.strip()]


_LOCALES: list[dict[str, Any]] = [
    {
        "country": "United States",
        "weight": 5,
        "language": "English",
        "currency": ("$", "USD"),
        "cities": _split(
            "Austin|Columbus|Denver|Portland|Atlanta|Minneapolis|Phoenix|Raleigh|San Diego|Chicago|"
            "Pittsburgh|Nashville|Sacramento|Tampa|Milwaukee"
        ),
        "female": _split(
            "Emily|Jessica|Ashley|Sarah|Megan|Rachel|Lauren|Maria|Keisha|Brittany|Amanda|Olivia|Hannah|"
            "Denise|Carmen|Linda|Tanya|Grace"
        ),
        "male": _split(
            "Michael|David|James|Chris|Brandon|Tyler|Marcus|Kevin|Jose|Ryan|Daniel|Andre|Steven|Matthew|"
            "Greg|Anthony|Eric|Jason"
        ),
        "last": _split(
            "Johnson|Williams|Brown|Garcia|Miller|Davis|Rodriguez|Martinez|Anderson|Thompson|Washington|"
            "Nguyen|Robinson|Walker|Hughes|Foster|Reed|Coleman"
        ),
    },
    {
        "country": "United Kingdom",
        "weight": 4,
        "language": "English",
        "currency": ("£", "GBP"),
        "cities": _split(
            "Leeds|Manchester|Bristol|Glasgow|Birmingham|Nottingham|Cardiff|Brighton|Sheffield|Edinburgh|"
            "Liverpool|Newcastle|Leicester|Norwich|York"
        ),
        "female": _split(
            "Charlotte|Sophie|Emma|Chloe|Priya|Hannah|Amelia|Lucy|Zara|Rebecca|Jade|Fiona|Aisha|Katie|"
            "Joanne|Siobhan|Megan|Gemma"
        ),
        "male": _split(
            "Oliver|Jack|Harry|George|Liam|Tom|Mohammed|Callum|Rhys|Ben|Stuart|Kieran|Aaron|Daniel|Gareth|"
            "Imran|Neil|Lewis"
        ),
        "last": _split(
            "Smith|Jones|Taylor|Brown|Wilson|Evans|Patel|Khan|Walsh|Hughes|Clarke|Robinson|Wright|Thompson|"
            "Campbell|Morgan|Begum|Fletcher"
        ),
    },
    {
        "country": "Canada",
        "weight": 2,
        "language": "English",
        "currency": ("$", "CAD"),
        "cities": _split("Toronto|Vancouver|Calgary|Ottawa|Halifax|Winnipeg|Edmonton|Victoria"),
        "female": _split("Chloé|Emily|Madison|Avery|Simran|Isabelle|Nicole|Julie|Mei"),
        "male": _split("Liam|Noah|Ethan|Mathieu|Owen|Arjun|Kyle|Tristan|Wei"),
        "last": _split("Tremblay|Gagnon|Roy|MacDonald|Singh|Wong|Campbell|Leblanc|Chen"),
    },
    {
        "country": "Australia",
        "weight": 2,
        "language": "English",
        "currency": ("$", "AUD"),
        "cities": _split("Melbourne|Brisbane|Perth|Adelaide|Sydney|Hobart|Geelong|Newcastle"),
        "female": _split("Chloe|Isla|Mia|Jess|Tahlia|Sienna|Kylie|Bec|Ngaio"),
        "male": _split("Jack|Lachlan|Cooper|Josh|Mitchell|Hamish|Brodie|Sam|Tuan"),
        "last": _split("Smith|Kelly|Nguyen|Murphy|O'Brien|Wilson|Ryan|Tran|Harris"),
    },
    {
        "country": "Germany",
        "weight": 2,
        "language": "German",
        "currency": ("€", "EUR"),
        "cities": _split("Hamburg|Cologne|Leipzig|Munich|Dresden|Frankfurt|Stuttgart|Bremen"),
        "female": _split("Anna|Laura|Julia|Katrin|Lena|Sabine|Mia|Leonie|Ayşe"),
        "male": _split("Lukas|Jonas|Felix|Thomas|Stefan|Tobias|Markus|Jan|Emre"),
        "last": _split("Müller|Schmidt|Schneider|Fischer|Weber|Becker|Hoffmann|Wagner|Yılmaz"),
    },
    {
        "country": "France",
        "weight": 2,
        "language": "French",
        "currency": ("€", "EUR"),
        "cities": _split("Lyon|Marseille|Toulouse|Nantes|Lille|Bordeaux|Strasbourg|Montpellier"),
        "female": _split("Camille|Léa|Manon|Chloé|Inès|Sophie|Claire|Amandine|Nadia"),
        "male": _split("Lucas|Hugo|Thomas|Antoine|Julien|Nicolas|Mehdi|Pierre|Maxime"),
        "last": _split("Martin|Bernard|Dubois|Moreau|Laurent|Girard|Lefebvre|Benali|Roux"),
    },
    {
        "country": "Spain",
        "weight": 1,
        "language": "Spanish",
        "currency": ("€", "EUR"),
        "cities": _split("Valencia|Seville|Bilbao|Madrid|Barcelona|Málaga|Zaragoza|Granada"),
        "female": _split("Lucía|María|Carmen|Paula|Elena|Marta|Alba|Nuria"),
        "male": _split("Javier|Pablo|Alejandro|Sergio|David|Jorge|Álvaro|Iker"),
        "last": _split("García|Fernández|López|Martínez|Sánchez|Romero|Navarro|Torres"),
    },
    {
        "country": "Mexico",
        "weight": 1,
        "language": "Spanish",
        "currency": ("$", "MXN"),
        "cities": _split("Guadalajara|Monterrey|Puebla|Mérida|Querétaro|Mexico City|Tijuana"),
        "female": _split("Sofía|Valeria|Fernanda|Ximena|Guadalupe|Daniela|Andrea|Mariana"),
        "male": _split("Santiago|Diego|Luis|Carlos|Emiliano|Jorge|Miguel|Raúl"),
        "last": _split("Hernández|González|Ramírez|Flores|Cruz|Morales|Reyes|Jiménez"),
    },
    {
        "country": "Brazil",
        "weight": 1,
        "language": "Portuguese",
        "currency": ("R$", "BRL"),
        "cities": _split("São Paulo|Curitiba|Recife|Belo Horizonte|Porto Alegre|Salvador|Fortaleza"),
        "female": _split("Ana|Beatriz|Juliana|Larissa|Camila|Fernanda|Gabriela|Patrícia"),
        "male": _split("João|Pedro|Lucas|Rafael|Gustavo|Thiago|Bruno|Felipe"),
        "last": _split("Silva|Santos|Oliveira|Souza|Costa|Pereira|Almeida|Carvalho"),
    },
    {
        "country": "India",
        "weight": 2,
        "language": "Hindi",
        "currency": ("₹", "INR"),
        "cities": _split("Pune|Bengaluru|Hyderabad|Chennai|Jaipur|Kochi|Ahmedabad|Lucknow"),
        "female": _split("Priya|Ananya|Kavya|Neha|Divya|Meera|Pooja|Shreya|Lakshmi"),
        "male": _split("Arjun|Rahul|Vikram|Rohan|Karthik|Aditya|Sanjay|Amit|Nikhil"),
        "last": _split("Sharma|Iyer|Reddy|Patel|Nair|Gupta|Menon|Desai|Kulkarni"),
    },
    {
        "country": "Japan",
        "weight": 1,
        "language": "Japanese",
        "currency": ("¥", "JPY"),
        "cities": _split("Osaka|Fukuoka|Sapporo|Nagoya|Yokohama|Kyoto|Sendai|Kobe"),
        "female": _split("Yuki|Haruka|Aiko|Emi|Sakura|Naomi|Keiko|Mai"),
        "male": _split("Hiroshi|Kenji|Takeshi|Daiki|Haruto|Sota|Ryo|Kazuki"),
        "last": _split("Tanaka|Suzuki|Watanabe|Yamamoto|Nakamura|Kobayashi|Sato|Ito"),
    },
    {
        "country": "Nigeria",
        "weight": 1,
        "language": "English",
        "currency": ("₦", "NGN"),
        "cities": _split("Lagos|Abuja|Ibadan|Port Harcourt|Enugu|Kano|Benin City"),
        "female": _split("Chioma|Amaka|Funmilayo|Ngozi|Aisha|Temitope|Blessing|Zainab"),
        "male": _split("Chinedu|Emeka|Tunde|Ibrahim|Oluwaseun|Kelechi|Femi|Musa"),
        "last": _split("Okafor|Adeyemi|Eze|Bello|Okonkwo|Balogun|Nwosu|Abubakar"),
    },
]
_UNISEX = _split("Alex|Sam|Jordan|Taylor|Riley|Casey|Jamie|Morgan|Robin|Charlie|Quinn")

# (job title, youngest plausible age, oldest plausible age)
_OCCUPATIONS: list[tuple[str, int, int]] = [
    ("University student", 18, 25),
    ("Barista", 18, 32),
    ("Retail sales associate", 18, 62),
    ("Delivery driver", 20, 62),
    ("Registered nurse", 22, 66),
    ("Primary school teacher", 23, 65),
    ("Software engineer", 22, 60),
    ("Marketing manager", 27, 62),
    ("Accountant", 23, 67),
    ("Electrician", 20, 65),
    ("Graphic designer", 21, 55),
    ("Small business owner", 26, 75),
    ("Pharmacist", 25, 67),
    ("Civil engineer", 23, 65),
    ("Customer service representative", 18, 62),
    ("Freelance photographer", 21, 60),
    ("Dental hygienist", 21, 62),
    ("Data analyst", 22, 55),
    ("HR coordinator", 22, 60),
    ("Chef", 20, 62),
    ("Police officer", 21, 58),
    ("Physiotherapist", 23, 65),
    ("Stay-at-home parent", 22, 55),
    ("Warehouse supervisor", 23, 63),
    ("Real estate agent", 23, 70),
    ("Project manager", 26, 66),
    ("Social worker", 22, 66),
    ("Sales director", 32, 66),
    ("Hairdresser", 18, 65),
    ("Plumber", 20, 66),
    ("Veterinary technician", 20, 55),
    ("Operations manager", 28, 66),
    ("PhD candidate", 23, 34),
    ("Junior doctor", 24, 32),
    ("General practitioner", 31, 68),
    ("Bus driver", 25, 67),
    ("Librarian", 24, 68),
    ("Financial adviser", 26, 70),
    ("Apprentice carpenter", 17, 23),
    ("Part-time bookkeeper", 40, 78),
    ("Retired teacher", 61, 95),
    ("Retired engineer", 61, 95),
    ("Retired nurse", 60, 95),
    ("Retired shop manager", 62, 95),
    ("Volunteer charity coordinator", 58, 85),
]

_TOPICS = _split(
    "price|convenience|trust|quality|delivery speed|customer service|sustainability|value for money|"
    "ease of use|reliability|transparent pricing|loyalty rewards|free returns|data privacy|honest reviews|"
    "flexible subscriptions"
)
_CATEGORIES = _split(
    "meal kits|grocery delivery apps|streaming services|budgeting apps|electric bikes|plant-based snacks|"
    "home insurance policies|fitness trackers|online banks|skincare brands|coffee subscriptions|"
    "pet food brands|secondhand fashion sites|smart thermostats|language-learning apps|phone plans"
)
_SEGMENTS = _split(
    "Busy parents|Younger shoppers|Price-conscious households|Long-time customers|First-time buyers|"
    "Remote workers|Retirees|Students|Frequent travellers|Small business owners|Most participants|"
    "Several respondents|Older participants|Urban renters|Dual-income couples"
)
_PROBLEMS = _split(
    "delivery is slow|prices change without warning|the app feels cluttered|support takes days to reply|"
    "cancelling is a hassle|hidden fees show up at checkout|the product breaks after a few months|"
    "the reviews look fake|the sign-up asks for too much personal data|"
    "the website is hard to use on a phone"
)
_PAINS = _split(
    "Hidden fees at checkout|Slow or unreliable delivery|Subscriptions that are hard to cancel|"
    "Confusing pricing tiers|Unhelpful customer support|Too many app notifications|"
    "Products that don't match the photos|Worries about how personal data is used|"
    "Limited choice in local stores|Long wait times on the phone|Prices creeping up every year|"
    "Not knowing which reviews to believe"
)
_GOALS = _split(
    "Save time on the weekly shop|Stick to a monthly budget|Eat healthier without extra effort|"
    "Find brands they can trust|Spend more time with family|Reduce household waste|"
    "Get better value for money|Avoid long-term contracts|Support local businesses|"
    "Keep up with new technology without overspending|Build up an emergency fund|"
    "Cut down on impulse purchases"
)
_VALUES = _split(
    "Honesty|Family|Independence|Security|Sustainability|Community|Convenience|Fairness|Health|Creativity|"
    "Reliability|Thrift"
)
_HOBBIES = _split(
    "hiking|cooking for friends|gardening|running|reading crime novels|five-a-side football|yoga|"
    "photography|baking|cycling|board games|travelling on a budget|podcasts|DIY home projects|"
    "volunteering at the food bank|live music|fishing|knitting|video games|swimming"
)
_TRAITS = _split(
    "pragmatic|curious|cautious|sociable|organised|impulsive|thrifty|ambitious|easy-going|sceptical|loyal|"
    "detail-oriented|optimistic|independent"
)
_HABITS = _split(
    "shops online most evenings|does one big grocery shop every Sunday|"
    "compares prices on at least two apps before buying anything|relies on friends' recommendations|"
    "keeps a close eye on the household budget|likes trying new brands|reads reviews before every purchase|"
    "prefers to buy in person where possible|uses cashback and loyalty apps religiously|"
    "rarely changes a brand once it works"
)
_RELATIVES = _split("partner|sister|brother|daughter|son|neighbour|colleague|best friend|mum|dad")
_EDUCATION = _split(
    "Secondary school|Vocational qualification|Some college|Bachelor's degree|Master's degree|Doctorate|"
    "Apprenticeship|Associate degree"
)
# (household, youngest, oldest)
_HOUSEHOLDS: list[tuple[str, int, int]] = [
    ("Lives alone", 18, 95),
    ("Lives with parents", 17, 29),
    ("Shares a flat with two friends", 18, 34),
    ("Lives with partner", 20, 90),
    ("Married with two young children", 26, 48),
    ("Single parent of one", 22, 55),
    ("Married, children have left home", 48, 90),
    ("Lives with partner and a dog", 22, 80),
    ("Married with three children", 30, 55),
    ("Lives with adult daughter", 55, 95),
]
_BRANDS = _split(
    "Brightleaf|Northwind Market|Parcelly|Greenbox|Lumen Bank|Kettle & Co|Everyday Organics|Swiftcart|"
    "Hearth Home|Pebble Pay|Urban Pantry|Nimbus Mobile|Fieldstone Foods|Bloom Skincare|Tandem Bikes|"
    "Cobalt Energy"
)
_CHANNELS = _split(
    "Social media|Word of mouth|Online reviews|Email newsletter|In-store displays|Search engines|"
    "Podcast ads|Comparison websites"
)
_SENTIMENTS = _split("positive|neutral|negative|mixed")
_COLOURS = _split("Forest green|Navy blue|Warm grey|Terracotta|Mustard yellow|Off-white")
_TAGS = _split(
    "pricing|convenience|trust|onboarding|delivery|loyalty|sustainability|support|quality|privacy|"
    "subscriptions|checkout"
)

_QUOTE_TEMPLATES = _split(
    """
    Honestly, {topic} matters more to me than the brand name.
    If {problem}, I just go somewhere else.
    I'd pay a bit more for {category} if I knew I could trust them.
    As a {occupation}, I don't have time to compare {category} every week.
    I always read the reviews first, because I've been burned by {pain} before.
    I like {category}, but when {problem} it drives me mad.
    For me it comes down to {topic} and {topic2}.
    I switched last year because {problem}.
    My {relative} got me into {category}, and now I use them every week.
    I don't mind paying for {category} as long as cancelling is easy.
    It has to just work; I'm not going to read a manual for {category}.
    Living in {city}, {topic} is what makes or breaks it for me.
    I'm careful with money, so {topic} is the first thing I look at.
    I want to know exactly what I'm paying for, no surprises.
    Once a brand earns my trust, I stick with it for years.
    """
)
_REPLY_OPENERS = _split(
    """
    When it comes to {kw}, I have mixed feelings.
    That's a good question about {kw}.
    I think about {kw} more than you'd expect.
    Honestly, {kw} is something I've thought about a lot.
    {Kw}? That comes up a lot in our house.
    I'll be honest with you about {kw}.
    """
)
_INSIGHT_TEMPLATES = _split(
    """
    {segment} value {topic} over {topic2} when choosing {category}.
    {segment} are willing to pay more for {category} when the pricing is transparent.
    Trust in {category} drops quickly when {problem}.
    {segment} describe {topic} as the main reason they stay loyal.
    Recommendations from friends carry more weight than advertising for {segment_lc}.
    {segment} compare prices across several apps before committing to {category}.
    Convenience wins over price for {segment_lc} with little free time.
    {segment} are sceptical of {category} that ask for too much personal data.
    {segment} would try {category} if the first month were free.
    Clear, honest communication about {topic} builds trust faster than discounts.
    {segment} feel that {category} have become more expensive without getting better.
    Small annoyances, like when {problem}, quietly push {segment_lc} towards competitors.
    """
)
_QUESTION_TEMPLATES = _split(
    """
    What comes to mind when you think about {category}?
    How do you decide whether {category} are worth the price?
    How much does {topic} matter when you choose between {category}?
    What would make you trust a brand you've never heard of?
    What, if anything, would make you switch from the option you use today?
    Can you describe what you do when {problem}?
    Who in your household has the final say on {category}?
    If you could change one thing about {category}, what would it be?
    How do you feel about paying a monthly subscription for {category}?
    Where do you usually hear about new {category}?
    Tell me about the last time a brand let you down. What happened?
    What does good value mean to you?
    """
)
_TITLE_TEMPLATES = _split(
    """
    {Topic} drives the decision
    Trust is earned through {topic}
    The price and convenience trade-off
    {segment} want {topic}
    Friction at checkout
    {Topic} as a reason to switch
    Why {segment_lc} stay loyal
    Scepticism about {category}
    Value for money beats brand loyalty
    Mixed feelings about {category}
    {Topic} is table stakes
    """
)
_OBJECTIVE_TEMPLATES = _split(
    """
    Understand how {segment_lc} choose between {category}.
    Find out what role {topic} plays in switching decisions.
    Test whether {topic} would justify a higher price for {category}.
    Identify the biggest frustrations with {category}.
    """
)

# --------------------------------------------------------------------------------------------------------------
# Hints
# --------------------------------------------------------------------------------------------------------------


# A schema names a few dozen properties and every value of every instance asks what its name means: the
# answers are kept (a hint's words, a name's kind), as they depend on the name alone.
_HINTS_CACHED = 4096


def _words(hint: str) -> list[str]:
    """``"personaName"``/``"persona_name"``/``"Persona name"`` -> ``["persona", "name"]``."""
    return list(_hint_words(hint or ""))


@functools.lru_cache(maxsize=_HINTS_CACHED)
def _hint_words(hint: str) -> tuple[str, ...]:
    hint = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", hint)
    return tuple(w for w in re.split(r"[^a-zA-Z0-9]+", hint.lower()) if w)


def _has(words: Collection[str], *keys: str) -> bool:
    return any(k in words for k in keys)


def _word_set(text: str) -> frozenset[str]:
    return frozenset(text.split())


_STOPWORDS = _word_set(
    "about above after again against all also and any are because been before being below between both but "
    "can could did does doing down during each few for from further had has have having her here hers herself "
    "him himself his how into its itself just more most myself not now off once only other our ours ourselves "
    "out over own same she should some such than that the their theirs them themselves then there these they "
    "this those through too under until very was were what when where which while who whom why will with "
    "would you your yours yourself yourselves please tell give describe explain think feel like really"
)

_NAME_QUALIFIER_KINDS = [
    (
        _word_set(
            "product brand company business store shop app service employer organisation organization retailer "
            "competitor provider"
        ),
        "brand",
    ),
    (_word_set("segment cohort audience group category"), "segment"),
    (_word_set("theme topic section study project guide insight finding report file"), "title"),
]
_PERSON_WORDS = _word_set("fullname persona participant respondent speaker author moderator customer interviewee")

# Property names that say what a string is: checked in order, the first table whose words meet the name wins.
_STRING_KINDS: list[tuple[str, frozenset[str]]] = [
    (kind, _word_set(words))
    for kind, words in [
        ("age", "age"),
        ("gender", "gender sex"),
        ("pronouns", "pronoun pronouns"),
        ("city", "city town cities"),
        ("country", "country nationality countries"),
        ("location", "location locations hometown residence address region based lives"),
        ("occupation", "occupation job profession career employment role occupations jobs"),
        ("brand", "employer brand brands product products company competitor competitors retailer provider"),
        ("education", "education qualification degree"),
        ("income", "income salary earnings wage"),
        ("household", "marital household family relationship living"),
        ("hobby", "hobby hobbies interest interests pastime pastimes activities"),
        ("goal", "goal goals motivation motivations need needs want wants aspiration aspirations driver drivers"),
        (
            "pain",
            "frustration frustrations pain pains painpoints concern concerns challenge challenges barrier "
            "barriers objection objections fear fears worry worries complaint complaints risk risks",
        ),
        ("trait", "personality trait traits character adjectives"),
        (
            "quote",
            "quote quotes verbatim verbatims response responses answer answers reply replies statement opinion "
            "opinions comment comments feedback said message utterance reaction reactions thoughts says speech "
            "text content",
        ),
        ("question", "question questions prompt prompts probe probes ask followup follow"),
        ("objective", "objective objectives purpose aim aims hypothesis hypotheses"),
        ("bio", "bio biography backstory background about profile story narrative"),
        ("title", "title headline heading label theme themes topic topics subject section sections caption"),
        (
            "insight",
            "summary description overview insight insights finding findings conclusion conclusions rationale "
            "reason reasons reasoning explanation notes note analysis takeaway takeaways recommendation "
            "recommendations evidence context details implication implications observation observations "
            "instructions",
        ),
        ("sentiment", "sentiment tone mood emotion"),
        ("language", "language languages locale"),
        ("currency", "currency"),
        ("colour", "colour color colours colors"),
        ("channel", "channel channels platform platforms source sources media"),
        ("tag", "tag tags keyword keywords category categories code codes"),
        ("segment", "segment segments cohort audience"),
    ]
]


def _string_kind(words: list[str]) -> str | None:
    """Which kind of string a property name asks for, or None when it says nothing."""
    return _kind_of_words(tuple(words))


@functools.lru_cache(maxsize=_HINTS_CACHED)
def _kind_of_words(words: tuple[str, ...]) -> str | None:
    if not words:
        return None
    last = words[-1]
    if _has(words, "email", "mail"):
        return "email"
    if _has(words, "url", "uri", "website", "link", "homepage", "href", "image", "avatar", "photo"):
        return "url"
    if _has(words, "phone", "mobile", "telephone"):
        return "phone"
    if last in ("id", "uuid", "guid", "slug"):
        return "id"
    if _has(words, "dob", "birthday", "birthdate") or (last == "date" and _has(words, "birth")):
        return "birthdate"
    if last in ("date", "day") or (last == "at" and len(words) > 1) or _has(words, "timestamp", "datetime"):
        return "date"
    if _has(words, "username", "handle", "nickname"):
        return "username"
    if "name" in words or "names" in words:
        if _has(words, "first", "given", "forename"):
            return "first_name"
        if _has(words, "last", "family", "surname"):
            return "last_name"
        if _has(words, "user"):
            return "username"
        for qualifiers, kind in _NAME_QUALIFIER_KINDS:
            if qualifiers.intersection(words):
                return kind
        return "full_name"
    if _has(words, "firstname", "forename"):
        return "first_name"
    if _has(words, "surname", "lastname"):
        return "last_name"
    if last in _PERSON_WORDS:
        return "full_name"
    if _has(words, "value", "values") and not _has(words, "money", "price"):
        return "value"
    for kind, keys in _STRING_KINDS:
        if keys.intersection(words):
            return kind
    return None


# Property names that say what a number is: (words, low, high, integral); the first match wins.
_NUMBER_HINTS: list[tuple[frozenset[str], float, float, bool]] = [
    (_word_set(words), low, high, integral)
    for words, low, high, integral in [
        ("age", 18, 80, True),
        ("years tenure experience", 1, 25, True),
        ("year born", 1945, 2006, True),
        ("nps", 0, 10, True),
        ("sentiment polarity", -1, 1, False),
        ("rating score stars satisfaction importance intensity agreement", 1, 5, True),
        ("percent percentage pct share", 0, 100, False),
        (
            "probability confidence likelihood weight ratio proportion fraction relevance similarity certainty",
            0,
            1,
            False,
        ),
        ("income salary earnings wage", 18000, 160000, True),
        ("price cost spend spending budget amount fee revenue", 5, 250, False),
        ("children kids dependents dependants pets", 0, 3, True),
        ("minutes mins duration", 5, 90, True),
        ("seconds secs", 10, 600, True),
        ("hours", 1, 40, True),
        ("index", 0, 10, True),
        ("priority rank order position sequence step round turn number no", 1, 10, True),
        ("count num n total quantity participants size frequency times", 1, 12, True),
    ]
]


def _number_hint(words: list[str]) -> tuple[float, float, bool] | None:
    """(low, high, integral) that a property name suggests for a number, or None."""
    if _has(words, "household", "family") and _has(words, "size", "members"):
        return (1, 6, True)
    for keys, low, high, integral in _NUMBER_HINTS:
        if keys.intersection(words):
            return (low, high, integral)
    return None


# --------------------------------------------------------------------------------------------------------------
# A person: the fields of one persona object agree with each other
# --------------------------------------------------------------------------------------------------------------


def _weighted_choice(rng: Random, items: list[Any], weights: Sequence[float]) -> Any:
    return rng.choices(items, weights=weights, k=1)[0]


class _Person:
    def __init__(self, rng: Random, used_names: set[str]) -> None:
        self._rng = rng
        self._used_names = used_names
        self.locale: dict[str, Any] = _weighted_choice(rng, _LOCALES, [loc["weight"] for loc in _LOCALES])
        self.gender: str | None = None  # "female" | "male" | "nonbinary"
        self.age: int | None = None
        self._first: str | None = None
        self._last: str | None = None
        self._city: str | None = None
        self._occupation: str | None = None
        self.topics = rng.sample(_TOPICS, 3)
        self.category = rng.choice(_CATEGORIES)
        self.problem = rng.choice(_PROBLEMS)

    def get_gender(self) -> str:
        if self.gender is None:
            self.gender = _weighted_choice(self._rng, ["female", "male", "nonbinary"], [48, 48, 4])
        return self.gender

    def get_age(self, lo: float | None = None, hi: float | None = None) -> int:
        """This person's age, inside [lo, hi] when given (the schema's bounds win over the person)."""
        if self.age is None:
            self.age = round(self._rng.triangular(18, 80, 38))
        if lo is not None or hi is not None:
            low = math.ceil(lo) if lo is not None else -(10**9)
            high = math.floor(hi) if hi is not None else 10**9
            if low <= high and not low <= self.age <= high:
                inner_lo, inner_hi = max(low, 18), min(high, 80)
                self.age = (
                    self._rng.randint(inner_lo, inner_hi) if inner_lo <= inner_hi else min(max(self.age, low), high)
                )
        return self.age

    def _pick_name(self) -> tuple[str, str]:
        gender = self.get_gender()
        loc = self.locale
        for _ in range(30):
            first = self._rng.choice(_UNISEX if gender == "nonbinary" else loc[gender])
            last = self._rng.choice(loc["last"])
            if f"{first} {last}" not in self._used_names:
                break
        self._used_names.add(f"{first} {last}")
        self._first, self._last = first, last
        return first, last

    @property
    def first_name(self) -> str:
        if self._first is None:
            return self._pick_name()[0]
        return self._first

    @property
    def last_name(self) -> str:
        if self._last is None:
            return self._pick_name()[1]
        return self._last

    @property
    def full_name(self) -> str:
        return f"{self.first_name} {self.last_name}"

    @property
    def city(self) -> str:
        if self._city is None:
            self._city = self._rng.choice(self.locale["cities"])
        return self._city

    @property
    def country(self) -> str:
        return self.locale["country"]

    @property
    def occupation(self) -> str:
        if self._occupation is None:
            age = self.get_age()
            fitting = [title for title, lo, hi in _OCCUPATIONS if lo <= age <= hi]
            self._occupation = self._rng.choice(fitting or [t for t, _, _ in _OCCUPATIONS])
        return self._occupation

    @property
    def pronoun(self) -> str:
        return {"female": "She", "male": "He"}.get(self.get_gender(), "They")

    def household(self) -> str:
        age = self.get_age()
        fitting = [h for h, lo, hi in _HOUSEHOLDS if lo <= age <= hi]
        return self._rng.choice(fitting or ["Lives alone"])


def _gender_of(value: object) -> str | None:
    text = str(value).strip().lower()
    if text in ("f", "w") or any(k in text for k in ("female", "woman", "women", "girl")):
        return "female"
    if text == "m" or any(k in text for k in ("male", "man", "men", "boy")):
        return "male"
    if any(k in text for k in ("non", "other", "diverse", "enby", "nb", "genderqueer", "agender")):
        return "nonbinary"
    return None


def _a(word: str) -> str:
    return ("an " if word[:1].lower() in "aeiou" else "a ") + word


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


# --------------------------------------------------------------------------------------------------------------
# The generator
# --------------------------------------------------------------------------------------------------------------


class _Faker:
    def __init__(self, root: Any, rng: Random, *, fill: float = 0.0, ragged: float = 0.0) -> None:
        self.root = root
        self.rng = rng
        self.fill = fill
        self.ragged = ragged
        self.used_names: set[str] = set()
        self.person_stack: list[_Person] = []
        self.person_context = False  # does the current object describe a person?
        self.category = rng.choice(_CATEGORIES)  # what the whole value is about, for coherence
        self.recent_templates: list[str] = []
        self.ref_stack: list[str] = []  # the $refs being expanded, to damp recursive schemas
        self.array_item = False  # is the value being made one item of a list? ("hobbies": one hobby each)

    # ---- people and text ---------------------------------------------------------------------------------

    @property
    def person(self) -> _Person:
        if not self.person_stack:
            self.person_stack.append(_Person(self.rng, self.used_names))
        return self.person_stack[-1]

    def _slots(self) -> dict[str, str]:
        rng, person = self.rng, self.person
        topic, topic2 = rng.sample(_TOPICS, 2)
        if rng.random() < 0.6:
            topic = person.topics[0]
        segment = rng.choice(_SEGMENTS)
        return {
            "topic": topic,
            "Topic": _cap(topic),
            "topic2": topic2 if topic2 != topic else person.topics[1],
            "category": self._category(),
            "problem": person.problem if rng.random() < 0.5 else rng.choice(_PROBLEMS),
            "pain": rng.choice(_PAINS).lower(),
            "segment": segment,
            "segment_lc": segment[0].lower() + segment[1:],
            "relative": rng.choice(_RELATIVES),
            "occupation": person.occupation.lower(),
            "city": person.city,
        }

    def _category(self) -> str:
        roll = self.rng.random()
        if self.person_context:
            return self.person.category if roll < 0.7 else self.category
        return self.category if roll < 0.9 else self.rng.choice(_CATEGORIES)

    def sentence(self, kind: str) -> str:
        """One sentence of ``kind``; templates are not reused until most of the others have been."""
        templates = {
            "quote": _QUOTE_TEMPLATES,
            "insight": _INSIGHT_TEMPLATES,
            "question": _QUESTION_TEMPLATES,
            "title": _TITLE_TEMPLATES,
            "objective": _OBJECTIVE_TEMPLATES,
        }[kind]
        recent = set(self.recent_templates)
        fresh = [t for t in templates if t not in recent] or templates
        template = self.rng.choice(fresh)
        self.recent_templates = [*self.recent_templates[-(len(templates) * 2 // 3) :], template]
        return _cap(template.format(**self._slots()))

    def bio(self) -> str:
        p, rng = self.person, self.rng
        first = p.first_name
        trait, trait2 = rng.sample(_TRAITS, 2)
        # habits are written for "she"/"he"; "they" gets the name instead, which reads better than fixing verbs
        subject = first if p.pronoun == "They" else p.pronoun
        be, lose = ("are", "lose") if p.pronoun == "They" else ("is", "loses")
        parts = [
            f"{first} is {_a(f'{p.get_age()}-year-old')} {p.occupation.lower()} from {p.city}.",
            f"{subject} {rng.choice(_HABITS)} and cares most about {p.topics[0]} when it comes to {p.category}.",
            f"{p.pronoun} {be} {trait} and a little {trait2}, and {lose} patience when {p.problem}.",
        ]
        return " ".join(parts)

    def text(self, kind: str | None, *, words: list[str]) -> str:
        rng, p = self.rng, self.person
        one_of_many = self.array_item
        match kind:
            case "email":
                return f"{_ascii(p.first_name)}.{_ascii(p.last_name)}@example.com".lower().replace(" ", "")
            case "url":
                slug = rng.choice(_TAGS)
                return f"https://www.example.com/{slug}/{rng.randint(100, 9999)}"
            case "phone":
                return f"+1 555 {rng.randint(100, 999)} {rng.randint(1000, 9999)}"
            case "id":
                return f"{(words[0] if len(words) > 1 else 'id')[:4]}_{rng.getrandbits(40):010x}"
            case "birthdate":
                year = 2025 - p.get_age()
                return _dt.date(year, rng.randint(1, 12), rng.randint(1, 28)).isoformat()
            case "date":
                return _random_date(rng).isoformat()
            case "username":
                return f"{_ascii(p.first_name).lower()}{_ascii(p.last_name)[:1].lower()}{rng.randint(1, 99)}"
            case "first_name":
                return p.first_name
            case "last_name":
                return p.last_name
            case "full_name":
                return p.full_name
            case "age":
                return str(p.get_age())
            case "gender":
                return {"female": "Female", "male": "Male"}.get(p.get_gender(), "Non-binary")
            case "pronouns":
                return {"female": "she/her", "male": "he/him"}.get(p.get_gender(), "they/them")
            case "city":
                return p.city
            case "country":
                return p.country
            case "location":
                return f"{p.city}, {p.country}"
            case "occupation":
                return p.occupation
            case "brand":
                return rng.choice(_BRANDS)
            case "education":
                return rng.choice(_EDUCATION)
            case "income":
                symbol = p.locale["currency"][0]
                return f"{symbol}{rng.randrange(18, 160) * 1000:,} a year"
            case "household":
                return p.household()
            case "hobby":
                return rng.choice(_HOBBIES) if one_of_many else _cap(", ".join(rng.sample(_HOBBIES, 3)))
            case "value":
                return rng.choice(_VALUES)
            case "goal":
                return rng.choice(_GOALS)
            case "pain":
                return rng.choice(_PAINS)
            case "trait":
                return (
                    _cap(rng.choice(_TRAITS))
                    if one_of_many
                    else f"{_cap(rng.choice(_TRAITS))} and {rng.choice(_TRAITS)}"
                )
            case "quote":
                return self.sentence("quote")
            case "question":
                return self.sentence("question")
            case "objective":
                return self.sentence("objective")
            case "bio":
                return self.bio()
            case "title":
                return self.sentence("title")
            case "insight":
                if self.person_context:
                    return self.bio()
                return " ".join(self.sentence("insight") for _ in range(rng.randint(1, 2)))
            case "sentiment":
                return rng.choice(_SENTIMENTS)
            case "language":
                return p.locale["language"]
            case "currency":
                return p.locale["currency"][1]
            case "colour":
                return rng.choice(_COLOURS)
            case "channel":
                return rng.choice(_CHANNELS)
            case "tag":
                return rng.choice(_TAGS)
            case "segment":
                return rng.choice([*_SEGMENTS[:-3], "Budget-conscious families", "Eco-minded commuters"])
        return self.sentence("insight")

    # ---- schema walking ----------------------------------------------------------------------------------

    def resolve(self, schema: Any, depth: int = 0) -> Any:
        """Follow ``$ref`` (merging sibling keywords, as 2019-09+ does) until a schema without one."""
        while isinstance(schema, dict) and "$ref" in schema and depth < 32:
            target = _resolve_pointer(self.root, schema["$ref"])
            siblings = {k: v for k, v in schema.items() if k != "$ref"}
            schema = {**target, **siblings} if isinstance(target, dict) and siblings else target
            depth += 1
        return schema

    def value(self, schema: Any, hint: str, depth: int) -> Any:
        ref = schema.get("$ref") if isinstance(schema, dict) else None
        if isinstance(ref, str):
            self.ref_stack.append(ref)
            try:
                return self.value(self.resolve(schema), hint, depth)
            finally:
                self.ref_stack.pop()
        schema = self.resolve(schema)
        if schema is True or schema is None or schema == {}:
            return self.text(_string_kind(_words(hint)), words=_words(hint))
        if schema is False or not isinstance(schema, dict):
            return None
        if "allOf" in schema:
            return self.value(_merge_all_of(schema, self), hint, depth)
        if "const" in schema:
            return schema["const"]
        if "anyOf" in schema or "oneOf" in schema:
            return self.choose_branch(schema, hint, depth)
        if "enum" in schema:
            return self.enum(schema, hint)

        types = schema.get("type")
        if isinstance(types, list):
            concrete = [t for t in types if t != "null"]
            if not concrete or ("null" in types and (depth >= _MAX_DEPTH or self.rng.random() < _NULL_PROBABILITY)):
                return None
            return self.value({**schema, "type": concrete[0]}, hint, depth)
        if types is None:
            types = _infer_type(schema)

        match types:
            case "object":
                return self.obj(schema, hint, depth)
            case "array":
                return self.array(schema, hint, depth)
            case "string":
                return self.string(schema, hint)
            case "integer":
                return self.number(schema, hint, integer=True)
            case "number":
                return self.number(schema, hint, integer=False)
            case "boolean":
                return self.rng.random() < 0.5
            case "null":
                return None
        return self.text(_string_kind(_words(hint)), words=_words(hint))

    def choose_branch(self, schema: dict[str, Any], hint: str, depth: int) -> Any:
        key = "anyOf" if "anyOf" in schema else "oneOf"
        outer = {k: v for k, v in schema.items() if k != key}
        branches = [self.resolve(b) for b in schema[key]]
        is_null = [isinstance(b, dict) and b.get("type") == "null" for b in branches]
        if any(is_null) and not all(is_null) and (depth >= _MAX_DEPTH or self.rng.random() < _NULL_PROBABILITY):
            candidate = None
            if _valid(candidate, schema, self.root):
                return candidate
        order = [b for b, null in zip(branches, is_null, strict=True) if not null]
        order += [b for b, null in zip(branches, is_null, strict=True) if null]
        if depth >= _MAX_DEPTH:  # prefer branches that stop recursing
            order.sort(key=lambda b: isinstance(b, dict) and ("$ref" in b or b.get("type") in ("object", "array")))
        first = None
        for branch in order:
            merged = {**outer, **branch} if isinstance(branch, dict) else branch
            for _ in range(3):
                candidate = self.value(merged, hint, depth)
                if _valid(candidate, schema, self.root):
                    return candidate
                if first is None:
                    first = (candidate,)
        return first[0] if first else None

    def enum(self, schema: dict[str, Any], hint: str) -> Any:
        options = list(schema["enum"])
        if not options:
            return None
        words = _words(hint)
        if _has(words, "gender", "sex"):
            person = self.person
            by_gender: dict[str | None, Any] = {}
            for option in options:
                by_gender.setdefault(_gender_of(option), option)
            if person.gender is not None and person.gender in by_gender:
                return by_gender[person.gender]
            weights = [48 if _gender_of(o) in ("female", "male") else 4 for o in options]
            choice = _weighted_choice(self.rng, options, weights)
            if person.gender is None and _gender_of(choice):
                person.gender = _gender_of(choice)
            return choice
        return self.rng.choice(options)

    def obj(self, schema: dict[str, Any], hint: str, depth: int) -> dict[str, Any]:
        props: dict[str, Any] = schema.get("properties") or {}
        required = [r for r in schema.get("required") or [] if r not in props]
        keys = list(props) + required
        hints = {key: _child_hint(hint, key) for key in keys}
        kinds = {key: _string_kind(_words(hints[key])) for key in keys}
        person_fields = {"full_name", "first_name", "last_name", "age", "gender", "occupation"}
        is_person = any(kinds[k] in person_fields for k in keys)
        starts_person = any(kinds[k] in ("full_name", "first_name") for k in keys) or depth == 0
        if starts_person:
            self.person_stack.append(_Person(self.rng, self.used_names))
        saved_context, saved_item = self.person_context, self.array_item
        self.person_context, self.array_item = is_person, False
        try:
            priority = {"gender": 0, "age": 1, "first_name": 2, "full_name": 2, "occupation": 3, "location": 4}
            values: dict[str, Any] = {}
            for key in sorted(keys, key=lambda k: priority.get(kinds[k] or "", 9)):
                values[key] = self.value(props.get(key, {}), hints[key], depth + 1)
            result = {key: values[key] for key in keys}
            extra = schema.get("additionalProperties")
            min_props = schema.get("minProperties", 0)
            if isinstance(extra, dict) and extra and not props:
                for i in range(max(min_props, 2)):
                    result[f"{(_words(hint) or ['item'])[-1]}_{i + 1}"] = self.value(extra, hint, depth + 1)
            elif extra is not False and len(result) < min_props:
                for i in range(min_props - len(result)):
                    result[f"extra_{i + 1}"] = self.value(extra if isinstance(extra, dict) else {}, hint, depth + 1)
            return result
        finally:
            self.person_context, self.array_item = saved_context, saved_item
            if starts_person:
                self.person_stack.pop()

    def array(self, schema: dict[str, Any], hint: str, depth: int) -> list[Any]:
        lo = int(schema.get("minItems", 0))
        hi = schema.get("maxItems")
        prefix = schema.get("prefixItems") or []
        items = schema.get("items", {})
        if isinstance(items, list):  # draft 4-7 tuple form
            prefix, items = items, schema.get("additionalItems", {})
        item_ref = items.get("$ref") if isinstance(items, dict) else None
        recursion = self.ref_stack.count(item_ref) if item_ref else 0
        if depth >= _MAX_DEPTH or recursion >= 2:
            count = lo
        else:
            count = self.rng.randint(2, 4) if recursion == 0 else self.rng.randint(0, 2)
            count = count if items is not False else len(prefix)
            count = max(count, lo)
            if hi is not None:
                count = int(hi) if self.at_limit() else min(count, int(hi))
        if items is False:
            count = min(count, len(prefix))
        unique = bool(schema.get("uniqueItems"))
        out: list[Any] = []
        seen: list[Any] = []
        for index in range(count):
            item_schema = prefix[index] if index < len(prefix) else items
            resolved = self.resolve(item_schema)
            # each object in a list is its own person; strings in a list (quotes...) belong to the owner
            fresh = isinstance(resolved, dict) and (resolved.get("type") == "object" or "properties" in resolved)
            for attempt in range(6):
                if fresh:
                    self.person_stack.append(_Person(self.rng, self.used_names))
                saved_item, self.array_item = self.array_item, True
                try:
                    value = self.value(item_schema, hint, depth + 1)
                finally:
                    self.array_item = saved_item
                    if fresh:
                        self.person_stack.pop()
                duplicate = any(_json_equal(value, s) for s in seen)
                if not duplicate or (attempt == 5 and not unique):
                    break
            else:
                if unique and len(out) >= lo:
                    break
            out.append(value)
            seen.append(value)
        return out

    def string(self, schema: dict[str, Any], hint: str) -> str:
        words = _words(hint)
        fmt = schema.get("format")
        if fmt:
            text = self.formatted(fmt, words)
        else:
            kind = _string_kind(words)
            if kind is None:
                kind = _string_kind(_words(str(schema.get("title", "")))) or _string_kind(
                    _words(str(schema.get("description", "")))[:6]
                )
            text = self.text(kind, words=words)
            max_len = schema.get("maxLength")
            if max_len is not None and len(text) > int(max_len):
                # something shorter of the same kind, else a shorter kind, before cutting words in half
                for retry_kind in [kind] * 6 + ["title", "segment", "value", "tag"]:
                    shorter = self.text(retry_kind, words=words)
                    if len(shorter) <= int(max_len) and len(shorter) >= int(schema.get("minLength", 0)):
                        text = shorter
                        break
        min_len = int(schema.get("minLength", 0))
        max_len = schema.get("maxLength")
        if not fmt and self.at_limit():
            text = self.filled(text, None if max_len is None else int(max_len))
        text = self.fit_length(text, min_len, None if max_len is None else int(max_len))
        if not fmt and not schema.get("pattern") and self.ragged and self.rng.random() < self.ragged:
            text = self.untidy(text, min_len, None if max_len is None else int(max_len))
        pattern = schema.get("pattern")
        if pattern and not _search(pattern, text):
            for _ in range(5):
                candidate = _from_pattern(pattern, self.rng)
                if (
                    candidate is not None
                    and _search(pattern, candidate)
                    and len(candidate) >= min_len
                    and (max_len is None or len(candidate) <= int(max_len))
                ):
                    return candidate
        return text

    def formatted(self, fmt: str, words: list[str]) -> str:
        rng = self.rng
        match fmt:
            case "date":
                if _string_kind(words) == "birthdate":
                    return self.text("birthdate", words=words)
                return _random_date(rng).isoformat()
            case "date-time":
                moment = _dt.datetime.combine(_random_date(rng), _dt.time(rng.randint(8, 21), rng.randrange(0, 60, 5)))
                return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
            case "time":
                return f"{rng.randint(8, 21):02d}:{rng.randrange(0, 60, 5):02d}:00"
            case "email" | "idn-email":
                return self.text("email", words=words)
            case "uri" | "url" | "iri" | "uri-reference" | "iri-reference":
                return self.text("url", words=words)
            case "uuid":
                return str(uuid.UUID(int=rng.getrandbits(128), version=4))
            case "hostname" | "idn-hostname":
                return f"{rng.choice(_TAGS)}.example.com"
            case "ipv4":
                return f"192.0.2.{rng.randint(1, 254)}"
            case "ipv6":
                return f"2001:db8::{rng.randint(1, 0xFFFF):x}"
            case "duration":
                return f"PT{rng.randrange(5, 95, 5)}M"
        return self.text(_string_kind(words), words=words)

    def at_limit(self) -> bool:
        """Should this value sit at its schema's upper limit? (Never asked, so no randomness used, at fill=0.)"""
        return bool(self.fill) and self.rng.random() < self.fill

    def filled(self, text: str, max_len: int | None) -> str:
        """``text`` grown to exactly ``max_len`` characters (cut wherever that falls, as a model writing to the
        limit would), or to a long paragraph when there is no limit."""
        target = max_len if max_len is not None else self.rng.randint(400, 1200)
        if len(text) < target:
            more = [self.sentence("insight") for _ in range(3)]  # then round again: long limits stay cheap
            parts = [text] if text else []
            size = sum(len(part) + 1 for part in parts)
            while size <= target:
                parts.append(more[len(parts) % 3])
                size += len(parts[-1]) + 1
            text = " ".join(parts)
        return text[:target]

    def untidy(self, text: str, min_len: int, max_len: int | None) -> str:
        """Valid for the schema, awkward for whoever stores it: blank, only spaces, or padded with them."""
        room = (max_len if max_len is not None else len(text) + 4) - len(text)
        options = ["padded"] if room >= 4 else []
        if min_len == 0:
            options.append("blank")
        if min_len <= 3 and (max_len is None or max_len >= 3):
            options.append("spaces")
        match self.rng.choice(options or ["as is"]):
            case "padded":
                return f"  {text}\n "
            case "blank":
                return ""
            case "spaces":
                return " " * max(min_len, 3)
        return text

    def fit_length(self, text: str, min_len: int, max_len: int | None) -> str:
        guard = 0
        while len(text) < min_len and guard < 50:
            text = f"{text} {self.sentence('insight')}".strip()
            guard += 1
        if len(text) < min_len:  # pathological minLength
            text = text + "." * (min_len - len(text))
        if max_len is not None and len(text) > max_len:
            cut = text[:max_len]
            sentence_end = max(cut.rfind(". "), cut.rfind("? "), cut.rfind("! "))
            space = cut.rfind(" ")
            if sentence_end + 1 >= max(min_len, 1) and sentence_end >= max_len // 3:
                cut = cut[: sentence_end + 1]
            elif space >= max(min_len, 1) and space >= max_len // 2:
                cut = cut[:space]
            cut = cut.rstrip(" ,;:-")
            text = cut if len(cut) >= min_len else text[:max_len]
        return text

    def number(self, schema: dict[str, Any], hint: str, *, integer: bool) -> int | float:
        words = _words(hint)
        lo, hi, lo_excl, hi_excl = _bounds(schema)
        hinted = _number_hint(words)
        if integer and hinted is not None and hinted[1] <= 1 and hinted[0] >= 0:
            hinted = (0, 100, True)  # an integer "confidence" is a percentage
        integral = integer or (hinted is not None and hinted[2])
        if self.at_limit():
            edges = [b for b in (hi, lo) if b is not None and _number_ok(int(b) if integral else b, schema)]
            if edges:
                edge = self.rng.choice(edges)
                return int(edge) if integral else edge
        if hinted is not None and _has(words, "age") and integral:
            a_lo = _tighten(lo, lo_excl, up=True) if lo is not None else None
            a_hi = _tighten(hi, hi_excl, up=False) if hi is not None else None
            age = self.person.get_age(a_lo, a_hi)
            if _number_ok(age, schema):
                return age
        h_lo, h_hi = (hinted[0], hinted[1]) if hinted else ((1, 100) if integral else (0, 100))
        r_lo, r_hi = _combine_range(lo, hi, h_lo, h_hi)
        multiple = schema.get("multipleOf")
        for _ in range(40):
            value = self._sample(r_lo, r_hi, lo_excl, hi_excl, integral, multiple, words)
            if value is not None and _number_ok(value, schema):
                return value
        # Last resort: walk from the lower bound.
        start = math.floor(r_lo) if integral else r_lo
        for step in range(1000):
            for value in (start + step, start - step):
                if _number_ok(value, schema):
                    return value
        return int(r_lo) if integral else float(r_lo)

    def _sample(
        self,
        lo: float,
        hi: float,
        lo_excl: bool,
        hi_excl: bool,
        integral: bool,
        multiple: float | None,
        words: list[str],
    ) -> int | float | None:
        rng = self.rng
        if multiple:
            k_lo, k_hi = math.ceil(lo / multiple), math.floor(hi / multiple)
            if k_lo > k_hi:
                return None
            k = rng.randint(k_lo, k_hi)
            value = k * multiple
            if isinstance(multiple, int) or float(multiple).is_integer():
                return round(value)
            decimals = max(0, -math.floor(math.log10(abs(multiple))) + 1)
            return round(value, decimals)
        if integral:
            i_lo, i_hi = math.ceil(lo), math.floor(hi)
            if lo_excl and i_lo == lo:
                i_lo += 1
            if hi_excl and i_hi == hi:
                i_hi -= 1
            if i_lo > i_hi:
                return None
            if _has(words, "income", "salary", "earnings") and i_hi - i_lo >= 2000:
                return rng.randint(math.ceil(i_lo / 1000), math.floor(i_hi / 1000)) * 1000
            if _has(words, "minutes", "duration") and i_hi - i_lo >= 10:
                return rng.randint(math.ceil(i_lo / 5), math.floor(i_hi / 5)) * 5
            return rng.randint(i_lo, i_hi)
        value = rng.uniform(lo, hi)
        rounded = round(value, 2)
        if lo <= rounded <= hi and not (lo_excl and rounded == lo) and not (hi_excl and rounded == hi):
            return rounded
        return value


# --------------------------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------------------------


_GENERIC_KEYS = frozenset({"name", "text", "content", "body", "value", "label", "item", "entry"})


def _singular(word: str) -> str:
    if word.endswith("ies") and len(word) > 4:
        return word[:-3] + "y"
    if word.endswith("s") and not word.endswith("ss") and len(word) > 3:
        return word[:-1]
    return word


@functools.lru_cache(maxsize=_HINTS_CACHED)
def _child_hint(owner: str, key: str) -> str:
    """The hint for property ``key`` of an object that is itself called ``owner``.

    A generic key takes its meaning from its owner: ``themes[].name`` is a theme title, ``products[].name`` a
    brand, ``questions[].text`` a question, ``quotes[].text`` a quote; ``personas[].name`` stays a person's name.
    """
    words = _words(key)
    owner_words = [_singular(w) for w in _words(owner)]
    if not owner_words or not words or not set(words) <= _GENERIC_KEYS:
        return key
    if words == ["name"]:
        for qualifiers, _kind in _NAME_QUALIFIER_KINDS:
            for word in owner_words:
                if word in qualifiers:
                    return f"{word} name"
        return key
    owner_kind = _string_kind(owner_words)
    if owner_kind in ("quote", "question", "title", "insight", "pain", "goal", "objective", "value", "hobby", "tag"):
        return " ".join(owner_words)
    return key


def _ascii(text: str) -> str:

    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if c.isascii() and (c.isalnum() or c in "-.")) or "user"


def _random_date(rng: Random) -> _dt.date:
    return _dt.date(2023, 1, 1) + _dt.timedelta(days=rng.randint(0, 1094))


def _infer_type(schema: dict[str, Any]) -> str:
    if "properties" in schema or "required" in schema or "additionalProperties" in schema:
        return "object"
    if "items" in schema or "prefixItems" in schema or "minItems" in schema or "maxItems" in schema:
        return "array"
    if any(k in schema for k in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf")):
        return "number"
    return "string"


def _resolve_pointer(root: Any, ref: str) -> Any:
    if not isinstance(ref, str) or not ref.startswith("#"):
        return {}  # remote references are out of scope: anything goes
    node = root
    for raw in ref[1:].split("/")[1:] if ref != "#" else []:
        part = raw.replace("~1", "/").replace("~0", "~")
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return {}
    return node


def _merge_all_of(schema: dict[str, Any], faker: _Faker) -> dict[str, Any]:
    merged: dict[str, Any] = {k: v for k, v in schema.items() if k != "allOf"}
    for part in schema["allOf"]:
        part = faker.resolve(part)
        if not isinstance(part, dict):
            continue
        if "allOf" in part:
            part = _merge_all_of(part, faker)
        for key, val in part.items():
            if key == "properties":
                merged["properties"] = {**merged.get("properties", {}), **val}
            elif key == "required":
                merged["required"] = list(dict.fromkeys([*merged.get("required", []), *val]))
            elif key in ("minimum", "exclusiveMinimum", "minLength", "minItems") and key in merged:
                merged[key] = max(merged[key], val)
            elif key in ("maximum", "exclusiveMaximum", "maxLength", "maxItems") and key in merged:
                merged[key] = min(merged[key], val)
            else:
                merged[key] = val
    return merged


def _bounds(schema: dict[str, Any]) -> tuple[float | None, float | None, bool, bool]:
    """(low, high, low is exclusive, high is exclusive); handles draft 4's boolean exclusives too."""
    lo, hi = schema.get("minimum"), schema.get("maximum")
    lo_excl = hi_excl = False
    ex_lo, ex_hi = schema.get("exclusiveMinimum"), schema.get("exclusiveMaximum")
    if ex_lo is True:
        lo_excl = lo is not None
    elif isinstance(ex_lo, int | float) and not isinstance(ex_lo, bool) and (lo is None or ex_lo >= lo):
        lo, lo_excl = ex_lo, True
    if ex_hi is True:
        hi_excl = hi is not None
    elif isinstance(ex_hi, int | float) and not isinstance(ex_hi, bool) and (hi is None or ex_hi <= hi):
        hi, hi_excl = ex_hi, True
    return lo, hi, lo_excl, hi_excl


def _tighten(bound: float, exclusive: bool, *, up: bool) -> float:
    if not exclusive:
        return bound
    return math.floor(bound) + 1 if up else math.ceil(bound) - 1


def _combine_range(lo: float | None, hi: float | None, h_lo: float, h_hi: float) -> tuple[float, float]:
    """The schema's range when it has both bounds, else the hint's range moved to fit the one bound."""
    if lo is not None and hi is not None:  # the schema's own scale wins: a "score" from 0 to 10
        return (lo, hi) if lo <= hi else (lo, lo)
    if lo is not None:
        return (max(lo, h_lo), h_hi) if h_hi >= lo else (lo, lo + (h_hi - h_lo))
    if hi is not None:
        return (h_lo, min(hi, h_hi)) if h_lo <= hi else (hi - (h_hi - h_lo), hi)
    return h_lo, h_hi


def _number_ok(value: Any, schema: dict[str, Any]) -> bool:
    return _valid(value, {k: v for k, v in schema.items() if k not in ("type", "enum", "const")}, {})


def _search(pattern: str, text: str) -> bool:
    try:
        return re.search(pattern, text) is not None
    except re.error:
        return True  # a pattern Python cannot read is a pattern we ignore


def _json_equal(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return a == b
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_json_equal(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(_json_equal(x, y) for x, y in zip(a, b, strict=True))
    return a == b


_TYPE_CHECKS = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "integer": lambda v: (isinstance(v, int) and not isinstance(v, bool)) or (isinstance(v, float) and v.is_integer()),
    "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
}


def _valid(value: Any, schema: Any, root: Any, depth: int = 0) -> bool:
    """Does ``value`` satisfy ``schema``? Covers the same subset as the generator (formats are not checked)."""
    if depth > 64:
        return True
    if schema is True or schema is None:
        return True
    if schema is False:
        return False
    if not isinstance(schema, dict):
        return True
    if "$ref" in schema and not _valid(value, _resolve_pointer(root, schema["$ref"]), root, depth + 1):
        return False
    if "const" in schema and not _json_equal(value, schema["const"]):
        return False
    if "enum" in schema and not any(_json_equal(value, option) for option in schema["enum"]):
        return False
    types = schema.get("type")
    if types is not None:
        types = [types] if isinstance(types, str) else types
        if not any(_TYPE_CHECKS.get(t, lambda v: True)(value) for t in types):
            return False
    if isinstance(value, str):
        if len(value) < schema.get("minLength", 0):
            return False
        if "maxLength" in schema and len(value) > schema["maxLength"]:
            return False
        if "pattern" in schema and not _search(schema["pattern"], value):
            return False
    if isinstance(value, int | float) and not isinstance(value, bool):
        lo, hi, lo_excl, hi_excl = _bounds(schema)
        if lo is not None and (value < lo or (lo_excl and value == lo)):
            return False
        if hi is not None and (value > hi or (hi_excl and value == hi)):
            return False
        multiple = schema.get("multipleOf")
        if multiple:
            if isinstance(multiple, float) or isinstance(value, float):
                quotient = value / multiple
                if not math.isfinite(quotient) or int(quotient) != quotient:
                    return False
            elif value % multiple:
                return False
    if isinstance(value, list):
        if len(value) < schema.get("minItems", 0):
            return False
        if "maxItems" in schema and len(value) > schema["maxItems"]:
            return False
        prefix = schema.get("prefixItems") or []
        items = schema.get("items")
        if isinstance(items, list):
            prefix, items = items, schema.get("additionalItems")
        for index, item in enumerate(value):
            sub = prefix[index] if index < len(prefix) else items
            if sub is not None and not _valid(item, sub, root, depth + 1):
                return False
        if schema.get("uniqueItems"):
            for i, a in enumerate(value):
                if any(_json_equal(a, b) for b in value[i + 1 :]):
                    return False
    if isinstance(value, dict):
        props = schema.get("properties") or {}
        if any(key not in value for key in schema.get("required") or []):
            return False
        extra = schema.get("additionalProperties", True)
        for key, item in value.items():
            if not _valid(item, props.get(key, extra), root, depth + 1):
                return False
        if len(value) < schema.get("minProperties", 0):
            return False
    if "allOf" in schema and not all(_valid(value, s, root, depth + 1) for s in schema["allOf"]):
        return False
    if "anyOf" in schema and not any(_valid(value, s, root, depth + 1) for s in schema["anyOf"]):
        return False
    if "oneOf" in schema and sum(_valid(value, s, root, depth + 1) for s in schema["oneOf"]) != 1:
        return False
    return not ("not" in schema and _valid(value, schema["not"], root, depth + 1))


# ---- a tiny regex-to-string generator, for the simple patterns people put in schemas --------------------------

_CLASS_SETS = {
    "d": "0123456789",
    "w": "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_",
    "s": " ",
}


def _from_pattern(pattern: str, rng: Random) -> str | None:
    """A string matching ``pattern`` when the pattern is simple (literals, classes, groups, |, quantifiers)."""
    try:
        out, pos = _gen_alternation(pattern, 0, rng)
    except (ValueError, IndexError):
        return None
    return out if pos == len(pattern) else None


def _gen_alternation(p: str, i: int, rng: Random) -> tuple[str, int]:
    branches: list[str] = []
    current, i = _gen_sequence(p, i, rng)
    branches.append(current)
    while i < len(p) and p[i] == "|":
        current, i = _gen_sequence(p, i + 1, rng)
        branches.append(current)
    return branches[0] if len(branches) == 1 else rng.choice(branches), i


def _gen_sequence(p: str, i: int, rng: Random) -> tuple[str, int]:
    out: list[str] = []
    atom: Callable[..., str]
    while i < len(p) and p[i] not in "|)":
        char = p[i]
        if char in "^$":
            i += 1
            continue
        if char == "(":
            j = i + 1
            if p.startswith("?:", j):
                j += 2
            elif p.startswith("?", j):
                raise ValueError("unsupported group")
            atom_choices, j = _gen_alternation(p, j, rng)
            if j >= len(p) or p[j] != ")":
                raise ValueError("unbalanced group")
            atom = lambda s=atom_choices: s  # noqa: E731
            i = j + 1
        elif char == "[":
            chars, i = _parse_class(p, i + 1)
            atom = lambda c=chars: rng.choice(c)  # noqa: E731
        elif char == "\\":
            esc = p[i + 1]
            if esc in _CLASS_SETS:
                atom = lambda c=_CLASS_SETS[esc]: rng.choice(c)  # noqa: E731
            elif esc.isalnum():
                raise ValueError("unsupported escape")
            else:
                atom = lambda c=esc: c  # noqa: E731
            i += 2
        elif char == ".":
            atom = lambda: rng.choice("abcdefghijklmnopqrstuvwxyz")  # noqa: E731
            i += 1
        elif char in "*+?{":
            raise ValueError("dangling quantifier")
        else:
            atom = lambda c=char: c  # noqa: E731
            i += 1
        low, high, i = _parse_quantifier(p, i)
        count = rng.randint(low, high)
        out.extend(atom() for _ in range(count))
    return "".join(out), i


def _parse_class(p: str, i: int) -> tuple[str, int]:
    if i < len(p) and p[i] == "^":
        raise ValueError("negated classes are not supported")
    chars: list[str] = []
    first = True
    while i < len(p) and (p[i] != "]" or first):
        first = False
        char = p[i]
        if char == "\\":
            esc = p[i + 1]
            if esc in _CLASS_SETS:
                chars.extend(_CLASS_SETS[esc])
            else:
                chars.append(esc)
            i += 2
            continue
        if i + 2 < len(p) and p[i + 1] == "-" and p[i + 2] != "]":
            start, end = ord(char), ord(p[i + 2])
            if end < start:
                raise ValueError("bad range")
            chars.extend(chr(c) for c in range(start, end + 1))
            i += 3
            continue
        chars.append(char)
        i += 1
    if i >= len(p) or not chars:
        raise ValueError("unterminated class")
    return "".join(chars), i + 1


def _parse_quantifier(p: str, i: int) -> tuple[int, int, int]:
    if i >= len(p):
        return 1, 1, i
    char = p[i]
    if char == "?":
        return 0, 1, i + 1
    if char == "*":
        return 0, 3, i + 1
    if char == "+":
        return 1, 4, i + 1
    if char == "{":
        end = p.index("}", i)
        body = p[i + 1 : end]
        if "," in body:
            low_text, high_text = body.split(",", 1)
            low = int(low_text or 0)
            high = int(high_text) if high_text.strip() else low + 3
        else:
            low = high = int(body)
        return low, high, end + 1
    return 1, 1, i


# --------------------------------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------------------------------


def fake_instance(
    schema: dict[str, Any], *, seed: int | str = 0, hint: str = "", fill: float = 0.0, ragged: float = 0.0
) -> Any:
    """A plausible JSON value that validates against ``schema``; the same seed gives the same value.

    ``hint`` names the top-level value (e.g. the json_schema's ``name``) when the schema is not an object;
    property names are the hints below it.

    Edge cases, for testing what receives the value: ``fill`` is the chance that a string, list or number
    sits at its schema's upper limit (a string exactly ``maxLength`` long, or a long paragraph when it has
    none; a list of ``maxItems``; a number at a bound), 1.0 for every one of them; ``ragged`` the chance that
    a string is blank, only spaces or padded with them. Both still validate against ``schema``.
    """
    faker = _Faker(schema, Random(seed), fill=fill, ragged=ragged)
    return faker.value(schema, hint, 0)


def _key_phrase(prompt: str) -> str | None:
    """The longest run (up to three words) of content words in ``prompt``: "grocery delivery subscriptions"."""
    best: list[str] = []
    run: list[str] = []
    for token in re.findall(r"[A-Za-z][A-Za-z'-]*|[^A-Za-z\s]", prompt or ""):
        word = token.lower().strip("'-")
        if len(word) >= 3 and word.isalpha() and word not in _STOPWORDS:
            run.append(word)
            if len(run) > len(best) or (len(run) == len(best) and len(" ".join(run)) > len(" ".join(best))):
                best = run[-3:]
        else:
            run = []
    return " ".join(best) or None


def reply_sentences(*, seed: int | str = 0, prompt: str = "") -> Iterator[str]:
    """An endless, deterministic run of first-person sentences from one persona, answering ``prompt``.

    The first sentence picks up a word of the prompt when it has one.
    """
    faker = _Faker({}, Random(seed))
    faker.person_context = True
    person = faker.person
    person.category = faker.category
    phrase = _key_phrase(prompt)
    if phrase:
        yield faker.rng.choice(_REPLY_OPENERS).format(kw=phrase, Kw=_cap(phrase))
    yield (
        f"I'm {person.first_name}, I'm {person.get_age()} and I work as {_a(person.occupation.lower())} "
        f"in {person.city}."
    )
    while True:
        yield faker.sentence("quote")


def fake_reply(*, seed: int | str = 0, prompt: str = "", sentences: int = 3) -> str:
    """A short first-person answer (``sentences`` sentences), as a persona in a focus group would give."""
    out = []
    for sentence in reply_sentences(seed=seed, prompt=prompt):
        out.append(sentence)
        if len(out) >= sentences:
            break
    return " ".join(out)


_COUNTRY_NAMES = {
    "uk": "United Kingdom", "britain": "United Kingdom", "great britain": "United Kingdom", "england": "United Kingdom",
    "scotland": "United Kingdom", "wales": "United Kingdom", "northern ireland": "United Kingdom",
    "us": "United States", "usa": "United States", "america": "United States",
}  # fmt: skip


def _place_words(place: str) -> str:
    """``place`` lower-cased, its words between single spaces and one on each side: " leeds uk "."""
    return " " + " ".join(re.sub(r"[^\w]+", " ", place.lower().replace(".", "")).split()) + " "


def _locale_of(place: str) -> dict[str, Any] | None:
    """The word bank of the country ``place`` names or is a city of ("Leeds, UK", "Glasgow", "Germany")."""
    words = _place_words(place)
    for loc in _LOCALES:
        if _place_words(loc["country"]) in words or any(_place_words(city) in words for city in loc["cities"]):
            return loc
    for alias, country in _COUNTRY_NAMES.items():
        if f" {alias} " in words:
            return next(loc for loc in _LOCALES if loc["country"] == country)
    return None


def fake_person(
    *, seed: int | str = 0, gender: str | None = None, age: int | None = None, place: str = "", avoid=()
) -> dict[str, Any]:
    """One coherent person, for the offline simulator: ``name`` fitting ``gender`` ("female", "male",
    "nonbinary"; else drawn) and the country of ``place`` (a city or country the word banks know; other
    places get names of an English-speaking one), ``age`` (drawn when not given), ``city`` (the one
    ``place`` names, else one of the country's) and ``country``, an ``occupation`` and ``household`` that
    fit the age, and ``education``. Names in ``avoid`` are not used."""
    rng = Random(seed)
    person = _Person(rng, set(avoid))
    if place:
        english = [loc for loc in _LOCALES if loc["language"] == "English"]
        person.locale = _locale_of(place) or _weighted_choice(rng, english, [loc["weight"] for loc in english])
    person.gender = gender if gender in ("female", "male", "nonbinary") else None
    person.age = age
    named = [city for city in person.locale["cities"] if _place_words(city) in _place_words(place)]
    return {
        "name": person.full_name,
        "first_name": person.first_name,
        "gender": person.get_gender(),
        "age": person.get_age(),
        "city": named[0] if named else person.city,
        "country": person.country,
        "occupation": person.occupation,
        "household": person.household(),
        "education": rng.choice(_EDUCATION),
    }
