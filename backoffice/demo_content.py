"""The demo researcher's library: five personas and one finished focus group, written by hand.

Everything is created straight in the database (no model calls, no credits), the same on every
machine, and only once: a persona or session that already exists under its name is left alone.
Themes and the report still go through the product's own checks (``themes_validate``,
``report_finalise``), so every quote is a real passage of the transcript, exactly as the
analysis job would store it.
"""

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.contrib.contenttypes.models import ContentType
from django.db import transaction
from django.utils import timezone

from cohorta.jobs.models import Job, JobState
from focusgroups.guide.services import guide_save
from focusgroups.models import FocusGroup, FocusGroupStatus, Message, MessageRole
from focusgroups.report import analysis
from focusgroups.services import focus_group_create
from personas.models import Folder, Persona, PersonaSource
from personas.services import persona_create

FOLDER = "Household cleaning (UK)"
TAGS = ["demo", "cleaning"]

PERSONAS: list[dict[str, Any]] = [
    {
        "name": "Priya Shah",
        "age": 34,
        "gender": "Female",
        "location": "Leeds",
        "occupation": "Hospital pharmacist",
        "income_bracket": "£45–70k",
        "education": "Master's degree",
        "household": "With partner and two kids",
        "openness": 72,
        "conscientiousness": 81,
        "extraversion": 45,
        "agreeableness": 68,
        "neuroticism": 40,
        "values": ["Family", "Health", "Less waste"],
        "interests": ["Batch cooking", "Parkrun", "True-crime podcasts"],
        "goals": ["Cut the family's plastic waste", "Get weeknights under control"],
        "frustrations": ["Greenwashing", "Products that need a manual"],
        "brand_affinities": ["Method", "Ecover", "Tesco"],
        "buying_behaviour": "One big weekly shop, mostly online; picks the greener option if it costs about the same.",
        "media_habits": "Podcasts on the commute, Instagram in the evening, reads labels in the aisle.",
        "tech_savviness": "high",
        "backstory": (
            "Priya works shifts at Leeds General and shares the school run with her partner. She started "
            "sorting recycling with her kids during lockdown and now notices every plastic bottle in the house."
        ),
        "speaking_style": "Practical and warm; thinks out loud about her family's routine.",
        "quote": "If it's better for the planet and doesn't make my week harder, I'm in.",
    },
    {
        "name": "Tom Gallagher",
        "age": 58,
        "gender": "Male",
        "location": "Swansea",
        "occupation": "Retired electrician",
        "income_bracket": "£20–30k",
        "education": "Vocational diploma",
        "household": "With partner",
        "openness": 34,
        "conscientiousness": 70,
        "extraversion": 52,
        "agreeableness": 55,
        "neuroticism": 30,
        "values": ["Value for money", "Reliability", "Independence"],
        "interests": ["Rugby", "Allotment", "Fixing things"],
        "goals": ["Make the pension stretch", "Keep the house in good nick"],
        "frustrations": ["Paying for packaging", "Gimmicks", "Subscriptions"],
        "brand_affinities": ["Aldi", "Screwfix", "Own-label"],
        "buying_behaviour": "Loyal to what works; compares price per litre; sceptical of anything new.",
        "media_habits": "Local radio, the Western Mail, Facebook groups for his allotment.",
        "tech_savviness": "low",
        "backstory": (
            "Tom spent forty years wiring houses across South Wales. He shops with his wife on Thursdays "
            "and has bought the same cleaning spray for two decades."
        ),
        "speaking_style": "Blunt, dry humour, short sentences.",
        "quote": "Don't sell me water with extra steps.",
    },
    {
        "name": "Mei Lin",
        "age": 27,
        "gender": "Female",
        "location": "London",
        "occupation": "UX designer",
        "income_bracket": "£30–45k",
        "education": "Bachelor's degree",
        "household": "House share",
        "openness": 85,
        "conscientiousness": 58,
        "extraversion": 63,
        "agreeableness": 74,
        "neuroticism": 49,
        "values": ["Aesthetics", "Sustainability", "Convenience"],
        "interests": ["Houseplants", "Ceramics", "Design podcasts"],
        "goals": ["Make a rented flat feel like home", "Buy less, buy better"],
        "frustrations": ["Ugly packaging", "Subscriptions you can't pause", "Flatmate chores rota"],
        "brand_affinities": ["Muji", "Method", "Oatly"],
        "buying_behaviour": "Buys small and often, online or from the corner shop; will pay more for design and scent.",
        "media_habits": "Instagram and TikTok, design newsletters, Spotify.",
        "tech_savviness": "high",
        "backstory": (
            "Mei moved to London from Manchester for her first design job and shares a Hackney flat with "
            "three friends. She is the one who buys the nice hand soap."
        ),
        "speaking_style": "Enthusiastic, visual, quick to imagine how a product would fit her life.",
        "quote": "If it looks good on the shelf, I'll actually use it.",
    },
    {
        "name": "Dave Okafor",
        "age": 41,
        "gender": "Male",
        "location": "Birmingham",
        "occupation": "Delivery driver",
        "income_bracket": "£20–30k",
        "education": "Secondary school",
        "household": "Single parent, one child",
        "openness": 48,
        "conscientiousness": 66,
        "extraversion": 57,
        "agreeableness": 61,
        "neuroticism": 55,
        "values": ["Family", "Value for money", "Time"],
        "interests": ["Football", "Cooking for his son", "Gaming"],
        "goals": ["Save for a family holiday", "More time with his son"],
        "frustrations": ["Hidden fees", "Subscriptions", "Queues"],
        "brand_affinities": ["Aldi", "Lidl", "Dettol"],
        "buying_behaviour": "Cheapest that does the job, bought wherever he already is; no time to compare.",
        "media_habits": "Radio in the van, YouTube, WhatsApp groups.",
        "tech_savviness": "medium",
        "backstory": (
            "Dave drives long shifts for a parcel company and raises his ten-year-old son on his own. "
            "Money is tight at the end of the month and his spare time is tighter."
        ),
        "speaking_style": "Straight-talking and friendly; everything comes back to time and money.",
        "quote": "If it kills germs and it's under two quid, it's in the trolley.",
    },
    {
        "name": "Sofia Romano",
        "age": 46,
        "gender": "Female",
        "location": "Bristol",
        "occupation": "Primary school teacher",
        "income_bracket": "£30–45k",
        "education": "Bachelor's degree",
        "household": "With partner and a teenage son",
        "openness": 66,
        "conscientiousness": 77,
        "extraversion": 60,
        "agreeableness": 80,
        "neuroticism": 38,
        "values": ["Community", "Sustainability", "Fairness"],
        "interests": ["Choir", "Cycling", "Refill shops"],
        "goals": ["Plastic-free kitchen by next year", "Teach her class about waste"],
        "frustrations": ["Over-packaged fruit", "Refill shops with short hours"],
        "brand_affinities": ["Ecover", "Co-op", "Bio-D"],
        "buying_behaviour": "Uses a local refill shop when she can; plans purchases around the school week.",
        "media_habits": "BBC Radio 4, the Guardian app, school parents' WhatsApp.",
        "tech_savviness": "medium",
        "backstory": (
            "Sofia teaches Year 4 in Easton and cycles everywhere. She already refills washing-up liquid "
            "at a zero-waste shop, when its opening hours fit hers."
        ),
        "speaking_style": "Thoughtful and encouraging; gives examples from the classroom.",
        "quote": "Refilling should be as easy as buying a new bottle, or most people won't bother.",
    },
]

SESSION_TITLE = "Refill pouches for household cleaners"
OBJECTIVE = (
    "Understand whether UK households would switch from ready-to-use spray bottles to concentrated refill "
    "pouches, what price and format would make them switch, and what puts them off."
)
CONCEPT = (
    "Fresca Refill: a starter kit with a glass spray bottle (£6) and 100 ml concentrate pouches (£2.20 each) "
    "that make 750 ml of cleaner when topped up with tap water. Pouches are recyclable at the kerbside and are "
    "sold in supermarkets or posted as a subscription."
)
PARTICIPANTS = ["Priya Shah", "Tom Gallagher", "Mei Lin", "Dave Okafor"]

GUIDE: dict[str, Any] = {
    "title": "Refill pouches: discussion guide",
    "sections": [
        {
            "title": "Cleaning habits today",
            "goal": "Learn how participants choose and buy cleaning sprays now.",
            "turn_budget": 5,
            "questions": [
                {
                    "text": "Walk me through how you buy your cleaning sprays today.",
                    "probes": ["Where do you buy them?", "What makes you pick one over another?"],
                }
            ],
        },
        {
            "title": "First reactions to the refill concept",
            "goal": "Hear unprompted reactions to Fresca Refill, and what would make people try it or not.",
            "turn_budget": 7,
            "questions": [
                {
                    "text": "What is your first reaction to Fresca Refill?",
                    "probes": ["What do you like?", "What worries you?"],
                },
                {
                    "text": "How would you want to buy the pouches?",
                    "probes": ["Subscription or supermarket?", "What would make a subscription acceptable?"],
                },
            ],
        },
        {
            "title": "Price and value",
            "goal": "Test the £6 kit and £2.20 pouch price against what participants pay today.",
            "turn_budget": 6,
            "questions": [
                {
                    "text": "The starter kit is £6 and each pouch is £2.20, making 750 ml. How does that sound?",
                    "probes": ["What would feel fair?", "What would you need to see on the shelf?"],
                }
            ],
        },
    ],
}

MODERATOR = "AI moderator"
# (speaker, text): the moderator's lines, then the personas' answers, in order.
TRANSCRIPT = [
    (
        MODERATOR,
        "Welcome, everyone, and thanks for joining. Today we're talking about cleaning sprays. To start: walk me "
        "through how you buy your cleaning sprays today.",
    ),
    (
        "Priya Shah",
        "Mostly in the big weekly shop, whatever multi-surface spray is on offer. With two kids I get through a "
        "bottle a week. I do feel guilty about the pile of plastic bottles in the recycling every Sunday.",
    ),
    (
        "Tom Gallagher",
        "Same one for twenty years, the supermarket own-label. It works, it's cheap, and I don't think about it. "
        "My wife says I'm stuck in my ways.",
    ),
    (
        "Mei Lin",
        "I buy the nicer-smelling ones, honestly. In a house share cleaning is a negotiation, so anything that "
        "makes it less grim helps. I tried a refill shop once but it's a trek.",
    ),
    (
        "Dave Okafor",
        "Whatever's cheapest at Aldi. With my hours I haven't got time to compare. If it kills germs and it's "
        "under two quid, it's in the trolley.",
    ),
    (
        MODERATOR,
        "Thank you. Here is a concept: Fresca Refill. You buy a glass spray bottle once, then small pouches of "
        "concentrate that you top up with tap water. What is your first reaction?",
    ),
    (
        "Priya Shah",
        "I love the idea of fewer bottles. My worry is mixing it: if I get the dilution wrong, does it still "
        "clean properly? I'd want a clear fill line on the bottle.",
    ),
    (
        "Mei Lin",
        "The glass bottle is a nice touch, it would look good on the shelf instead of hiding under the sink. But "
        "glass in a kitchen with three flatmates? Someone will drop it in a week.",
    ),
    (
        "Tom Gallagher",
        "It sounds like paying for water with extra steps. I can already buy a big bottle of concentrate for "
        "less. What am I getting for the fancy bottle?",
    ),
    (
        "Dave Okafor",
        "If it's posted to me, that's one less thing to remember. But I'm not paying a subscription for spray. "
        "Subscriptions are how they get you: you forget to cancel and they keep charging.",
    ),
    (
        MODERATOR,
        "Dave raised subscriptions. Priya and Mei, how would you want to buy the pouches?",
    ),
    (
        "Priya Shah",
        "In the supermarket, next to the normal sprays. If I had to plan ahead for a delivery, I'd run out on a "
        "Friday night and just buy a plastic bottle anyway.",
    ),
    (
        "Mei Lin",
        "A subscription could work if I can pause it easily from my phone. The pouches are small, so they'd fit "
        "through the letterbox, which matters when nobody's home.",
    ),
    (
        MODERATOR,
        "Let's talk price. The starter kit is £6 and each pouch is £2.20, making 750 ml. How does that sound?",
    ),
    (
        "Tom Gallagher",
        "Two pound twenty for what's basically a sachet? My usual bottle is £1.10. You'd have to show me it "
        "works out cheaper over a year.",
    ),
    (
        "Dave Okafor",
        "£6 up front is a lot when money's tight at the end of the month. If the bottle came free with the first "
        "pouch, I'd give it a go.",
    ),
    (
        "Priya Shah",
        "I'd pay a bit more for less plastic, maybe ten or twenty pence a bottle, not double. Show the price per "
        "750 ml on the shelf so I can compare.",
    ),
    (
        "Mei Lin",
        "For me the price is fine if the scent is good. I'd pay £2.20 for something that doesn't smell like a "
        "hospital.",
    ),
    (
        MODERATOR,
        "That's everything I wanted to cover. Thank you all for being so open today.",
    ),
]

# The analysis as a model would answer it; quotes name messages by their number (1-based, as above).
THEMES = {
    "themes": [
        {
            "title": "Less plastic appeals, but not at any price",
            "description": (
                "Cutting plastic bottles is the concept's strongest pull, yet participants weigh it against cost: "
                "a small premium is acceptable, double the price is not."
            ),
            "sentiment": "mixed",
            "personas": ["Priya Shah", "Tom Gallagher"],
            "quotes": [
                {
                    "sequence": 2,
                    "text": "I do feel guilty about the pile of plastic bottles in the recycling every Sunday",
                    "sentiment": "positive",
                },
                {
                    "sequence": 17,
                    "text": "I'd pay a bit more for less plastic, maybe ten or twenty pence a bottle, not double",
                    "sentiment": "mixed",
                },
                {"sequence": 9, "text": "It sounds like paying for water with extra steps.", "sentiment": "negative"},
            ],
        },
        {
            "title": "The price per use has to be obvious",
            "description": (
                "The £2.20 pouch is compared with a £1.10 bottle, and the £6 kit is a hurdle for tight budgets. "
                "People want the saving shown, per 750 ml and over a year."
            ),
            "sentiment": "negative",
            "personas": ["Tom Gallagher", "Dave Okafor", "Priya Shah"],
            "quotes": [
                {
                    "sequence": 15,
                    "text": "You'd have to show me it works out cheaper over a year.",
                    "sentiment": "neutral",
                },
                {
                    "sequence": 16,
                    "text": "£6 up front is a lot when money's tight at the end of the month.",
                    "sentiment": "negative",
                },
                {
                    "sequence": 17,
                    "text": "Show the price per 750 ml on the shelf so I can compare.",
                    "sentiment": "neutral",
                },
            ],
        },
        {
            "title": "Subscriptions meet resistance; shelves matter",
            "description": (
                "A subscription is distrusted unless it is easy to pause. Most would buy pouches where they buy "
                "sprays today, or fall back to a plastic bottle when they run out."
            ),
            "sentiment": "negative",
            "personas": ["Dave Okafor", "Priya Shah", "Mei Lin"],
            "quotes": [
                {
                    "sequence": 10,
                    "text": "Subscriptions are how they get you: you forget to cancel and they keep charging.",
                    "sentiment": "negative",
                },
                {
                    "sequence": 12,
                    "text": "I'd run out on a Friday night and just buy a plastic bottle anyway.",
                    "sentiment": "negative",
                },
                {
                    "sequence": 13,
                    "text": "A subscription could work if I can pause it easily from my phone.",
                    "sentiment": "mixed",
                },
            ],
        },
        {
            "title": "Format worries: dilution and a glass bottle",
            "description": (
                "Mixing concentrate raises doubts about getting it right, and glass feels fragile in busy, "
                "shared kitchens."
            ),
            "sentiment": "mixed",
            "personas": ["Priya Shah", "Mei Lin"],
            "quotes": [
                {
                    "sequence": 7,
                    "text": "if I get the dilution wrong, does it still clean properly?",
                    "sentiment": "neutral",
                },
                {
                    "sequence": 8,
                    "text": "But glass in a kitchen with three flatmates? Someone will drop it in a week.",
                    "sentiment": "negative",
                },
            ],
        },
        {
            "title": "Scent and looks can justify the price",
            "description": "For design-minded buyers, a bottle worth displaying and a pleasant scent outweigh cost.",
            "sentiment": "positive",
            "personas": ["Mei Lin"],
            "quotes": [
                {
                    "sequence": 18,
                    "text": "I'd pay £2.20 for something that doesn't smell like a hospital.",
                    "sentiment": "positive",
                },
                {
                    "sequence": 8,
                    "text": "it would look good on the shelf instead of hiding under the sink",
                    "sentiment": "positive",
                },
            ],
        },
    ]
}

REPORT: dict[str, Any] = {
    "executive_summary": (
        "Fresca Refill's promise of fewer plastic bottles resonates, but at £2.20 a pouch and £6 for the kit only "
        "the most design- and scent-driven participant would buy today. Price-sensitive shoppers compare it with "
        "a £1.10 bottle and need to see the saving; most want pouches on the supermarket shelf rather than a "
        "subscription, and some doubt they would dilute it correctly or keep a glass bottle intact."
    ),
    "findings": [
        {
            "section": "Cleaning habits today",
            "summary": (
                "Sprays are a low-involvement purchase made in the weekly shop, chosen by price, habit or scent. "
                "Guilt about plastic is present but rarely changes what goes in the trolley."
            ),
            "key_points": [
                "Bought on promotion or out of long habit",
                "Scent matters to younger, design-minded shoppers",
                "Refill shops are seen as a trek",
            ],
        },
        {
            "section": "First reactions to the refill concept",
            "summary": (
                "Fewer bottles is welcome; the concentrate format raises doubts about dilution, and the glass "
                "bottle splits opinion between 'worth displaying' and 'will break'. A subscription is distrusted."
            ),
            "key_points": [
                "A clear fill line would reassure",
                "Glass looks premium but feels fragile in shared kitchens",
                "Subscriptions must be easy to pause",
                "Supermarket availability is expected",
            ],
        },
        {
            "section": "Price and value",
            "summary": (
                "£2.20 a pouch reads as double the usual price, and £6 up front is a barrier at the end of the "
                "month. A free bottle with the first pouch and a visible price per 750 ml would help."
            ),
            "key_points": [
                "Acceptable premium: 10–20p per bottle",
                "Show price per 750 ml on the shelf",
                "Bundle the bottle free with a first pouch",
            ],
        },
    ],
    "stances": [
        {
            "persona": "Priya Shah",
            "stance": "positive",
            "summary": "Keen on less plastic if price and dilution are clear.",
        },
        {
            "persona": "Tom Gallagher",
            "stance": "sceptical",
            "summary": "Sees paying for water; wants proof of savings.",
        },
        {"persona": "Mei Lin", "stance": "enthusiastic", "summary": "Would pay for scent and a bottle worth showing."},
        {
            "persona": "Dave Okafor",
            "stance": "sceptical",
            "summary": "Tempted by delivery, put off by price and subscriptions.",
        },
    ],
    "recommendations": [
        "Launch in supermarkets next to ready-to-use sprays, with subscription as an option, not the default.",
        "Print the price per 750 ml on shelf labels and compare it with a standard bottle.",
        "Offer the bottle free or at £1 with the first pouch to remove the up-front cost.",
        "Add a moulded fill line and a shatter-resistant option to the bottle.",
        "Lead communications with scent and design for younger urban buyers.",
    ],
    "limitations": [],
}


@dataclass
class DemoContentResult:
    personas_created: int = 0
    session_created: bool = False
    notes: list[str] = field(default_factory=list)


def _personas(user) -> tuple[dict[str, Persona], int]:
    folder, _ = Folder.objects.get_or_create(owner=user, name=FOLDER)
    existing = {p.name: p for p in Persona.objects.filter(owner=user, name__in=[d["name"] for d in PERSONAS])}
    created = 0
    for data in PERSONAS:
        if data["name"] in existing:
            continue
        existing[data["name"]] = persona_create(
            owner=user, data=data, source=PersonaSource.AI, folder=folder, tags=TAGS, note="Demo persona"
        )
        created += 1
    return existing, created


def _session(user, personas: dict[str, Persona]) -> FocusGroup:
    focus_group = focus_group_create(
        owner=user,
        title=SESSION_TITLE,
        objective=OBJECTIVE,
        concept=CONCEPT,
        persona_ids=[personas[name].pk for name in PARTICIPANTS],
    )
    guide_save(focus_group=focus_group, data=GUIDE, simulated=False)
    started = timezone.now() - timedelta(days=2)
    for sequence, (speaker, text) in enumerate(TRANSCRIPT, start=1):
        persona = personas.get(speaker)
        Message.objects.create(
            focus_group=focus_group,
            sequence=sequence,
            role=MessageRole.PERSONA if persona else MessageRole.MODERATOR,
            persona=persona,
            speaker_name=speaker,
            content=text,
            created_at=started + timedelta(seconds=35 * sequence),
        )
    ended = started + timedelta(seconds=35 * (len(TRANSCRIPT) + 1))
    FocusGroup.objects.filter(pk=focus_group.pk).update(
        status=FocusGroupStatus.ENDED, last_sequence=len(TRANSCRIPT), ended_at=ended
    )
    focus_group.refresh_from_db()
    _analysis(focus_group, finished=ended + timedelta(minutes=1))
    return focus_group


def _analysis(focus_group: FocusGroup, *, finished) -> Job:
    """A finished analysis job, shaped exactly like the one ``session_analysis`` stores."""
    transcript = analysis.transcript_build(focus_group=focus_group)
    themes, counts = analysis.themes_validate(THEMES, focus_group=focus_group)
    participants = analysis.session_participants(focus_group=focus_group)
    ids = {person.name: person.persona_id for person in participants}
    # Written by name for reading here; the report keys stances by persona id, as the model gives them.
    stances = [{**row, "persona_id": ids.get(row["persona"])} for row in REPORT["stances"]]
    report = analysis.report_finalise(
        {**REPORT, "stances": stances},
        sections=[section["title"] for section in GUIDE["sections"]],
        participants=participants,
        spoke={speaker.persona_id for speaker in transcript.speakers},
    )
    return Job.objects.create(
        owner=focus_group.owner,
        kind=analysis.JOB_KIND,
        state=JobState.DONE,
        target_type=ContentType.objects.get_for_model(focus_group),
        target_id=str(focus_group.pk),
        params={"focus_group_id": focus_group.pk},
        progress_done=2,
        progress_total=2,
        progress_message=f"{len(themes)} theme{'s' if len(themes) != 1 else ''} and the report written",
        result={
            "version": analysis.RESULT_VERSION,
            "focus_group_id": focus_group.pk,
            "through_sequence": focus_group.last_sequence,
            "transcript": transcript.as_dict(),
            "themes": themes,
            **counts,
            "report": report,
            "simulated": False,
            "model": "demo",
            "models": {"key_themes": "demo", "report": "demo"},
            "generated_at": finished.isoformat(),
        },
        attempts=1,
        created_at=finished - timedelta(seconds=40),
        queued_at=finished - timedelta(seconds=40),
        started_at=finished - timedelta(seconds=39),
        finished_at=finished,
    )


@transaction.atomic
def demo_content_ensure(user) -> DemoContentResult:
    """Give ``user`` the demo personas and finished session, creating only what is missing."""
    result = DemoContentResult()
    personas, result.personas_created = _personas(user)
    if FocusGroup.objects.filter(owner=user, title=SESSION_TITLE).exists():
        return result
    _session(user, personas)
    result.session_created = True
    return result
