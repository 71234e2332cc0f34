"""The offline simulator's sessions: a discussion guide about the objective, an AI moderator that asks the
guide's questions, and persona answers that come from each persona's profile.

Everything is read from the prompt templates' fixed wording (``focusgroups/prompts/``): the objective and
concept of ``discussion_guide.md``; the guide position of ``moderator_decision.md`` (``Current question:
"…"``, ``Probes you may use: … | …``, ``Turns spent on this question: 2 (aim for about 3)``); the persona's
profile in ``persona_system.md`` and the moderator's line in ``persona_turn.md``."""

import random
import re

from llm.simulator_people import ANGLES, angle_scores, angles_of, category_of
from llm.simulator_text import (
    block_after,
    cap,
    first_name,
    first_sentence,
    fit,
    join_list,
    key_phrase,
    line_after,
    prices_in,
    said_by_me,
    stable_int,
    system_prompt,
    to_first_person,
    to_second_person,
    user_prompt,
)

# --- the discussion guide ----------------------------------------------------------------------

_LEAD = (
    r"^(?:to\s+)?(?:understand|find out|learn|explore|discover|test|assess|evaluate|identify|see|gauge|measure|"
    r"know|establish|determine|investigate|uncover|get a sense of|hear|map|check|clarify)\s+"
)
_WH = r"what|how|why|whether|which|who|when|where|if"
_SUBJECT = (
    r"(?:[\w-]+\s+){0,3}?(?:households?|parents?|people|customers?|consumers?|shoppers?|users?|buyers?|families|"
    r"students?|professionals?|owners?|drivers?|workers?|participants?|respondents?|they|mums|dads|millennials|"
    r"retirees|readers|viewers|listeners|travellers|commuters|renters|homeowners|patients|members|subscribers|"
    r"gamers|adults|teenagers|women|men|nurses|teachers|cooks|diners|guests|clients|patrons)"
)
_MODALS = r"would|will|could|can|might|should|do|did|does"


def concept_name(concept: str) -> str:
    """ "FreshBox: a weekly meal kit…" → "FreshBox"; "A weekly meal-kit subscription with…" → "a weekly
    meal-kit subscription"."""
    first = (concept or "").strip().split("\n")[0]
    named = re.match(r"\s*([A-Z][\w'&-]*(?: [A-Z0-9][\w'&-]*){0,3})\s*(?::|—|–| - |,| is | \()", first)
    if named:
        return named.group(1)
    clause = re.split(r"[.:;—–(]|\b(?:with|for|that|which|where|who)\b", first)[0].strip()
    words = clause.split()[:6]
    clause = " ".join(words)
    return clause[:1].lower() + clause[1:] if clause[:2] != clause[:2].upper() else clause


def objective_clauses(objective: str) -> list[str]:
    text = " ".join((objective or "").split()).rstrip(".")
    text = re.sub(_LEAD, "", text, flags=re.I)
    parts = re.split(
        rf",\s*(?:and\s+)?(?=(?:{_WH})\b)|;\s*|\s+and\s+(?=(?:{_WH})\b)",
        text,
        flags=re.I,
    )
    return [part.strip(" ,.") for part in parts if len(part.split()) >= 2]


def _verb_base(verb: str) -> str:
    lower = verb.lower()
    if lower in ("is", "are"):
        return "are"
    if lower.endswith("ies"):
        return lower[:-3] + "y"
    if re.search(r"(ches|shes|sses|xes)$", lower):
        return lower[:-2]
    return lower[:-1] if lower.endswith("s") and not lower.endswith("ss") else lower


def clause_question(clause: str) -> str:
    """An objective's clause asked of the participants: "whether UK households would switch to X" →
    "Would you switch to X?"; "what puts them off" → "What puts you off?"."""
    text = clause.strip().rstrip("?.")
    if m := re.match(rf"^whether\s+{_SUBJECT}\s+(would|will|could|can|might|should)\s+(.+)$", text, re.I):
        return f"{cap(m.group(1).lower())} you {to_second_person(m.group(2))}?"
    if m := re.match(rf"^whether\s+{_SUBJECT}\s+(?:are|is)\s+(.+)$", text, re.I):
        return f"Are you {to_second_person(m.group(1))}?"
    if m := re.match(rf"^whether\s+{_SUBJECT}\s+(\w+)\s+(.+)$", text, re.I):
        return f"Do you {_verb_base(m.group(1))} {to_second_person(m.group(2))}?"
    if m := re.match(r"^whether\s+(.+?)\s+(is|are|would|will|could|can)\s+(.+)$", text, re.I):
        return f"{cap(m.group(2).lower())} {to_second_person(m.group(1))} {to_second_person(m.group(3))}, for you?"
    wh = r"how often|how much|how|why|when|where|what|which"
    if m := re.match(rf"^({wh})\s+{_SUBJECT}\s+({_MODALS})\s+(.+)$", text, re.I):
        return f"{cap(m.group(1).lower())} {m.group(2).lower()} you {to_second_person(m.group(3))}?"
    if m := re.match(rf"^(how often|how|why|when|where|what)\s+{_SUBJECT}\s+(\w+)\s*(.*)$", text, re.I):
        rest = f" {to_second_person(m.group(3))}" if m.group(3) else ""
        return f"{cap(m.group(1).lower())} do you {_verb_base(m.group(2))}{rest}?"
    if m := re.match(r"^what (role|part) (.+?) plays?(.*)$", text, re.I):
        return f"What {m.group(1).lower()} does {m.group(2)} play for you{to_second_person(m.group(3))}?"
    if re.match(rf"^(?:{_WH})\b", text, re.I):
        return f"{cap(to_second_person(text))}?"
    return f"What do you think about {to_second_person(text[:1].lower() + text[1:])}?"


def _title(clause: str) -> str:
    text = clause.strip()
    if m := re.match(rf"^whether\s+{_SUBJECT}\s+(would|will|could|can|might|should)\s+(.+)$", text, re.I):
        text = f"{m.group(1).lower()} they {m.group(2)}"
    if len(text) > 40:
        cut = re.search(r" (?:from|to|for|with|in|of|about|when|because|compared) ", text[15:])
        if cut:
            text = text[: 15 + cut.start()]
    if len(text) > 60:
        text = text[:60].rsplit(" ", 1)[0]
    return cap(text)


def _core_probes(clause: str) -> list[str]:
    probes = ["Why is that?", "Can you give an example from your own week?"]
    lower = clause.lower()
    if re.search(r"price|pay|cost|afford|worth|value", lower):
        probes.append("What would feel like a fair price?")
    elif re.search(r"switch|change|move", lower):
        probes.append("What would you miss about what you use now?")
    elif re.search(r"\boff\b|worr|barrier|stop|cancel|concern|doubt", lower):
        probes.append("What would reassure you?")
    else:
        probes.append("What would change your mind?")
    return probes


def guide(schema: dict, prompt: str, generated: dict, rng: random.Random) -> dict:
    """A guide whose questions use the objective's and the product's own words."""
    properties = schema.get("properties") or {}
    sections_node = properties.get("sections") or {}
    section_node = sections_node.get("items") or {}
    section_props = section_node.get("properties") or {}
    questions_node = section_props.get("questions") or {}
    question_props = (questions_node.get("items") or {}).get("properties") or {}
    if not isinstance(generated, dict) or not section_props or not question_props:
        return generated
    title = line_after(prompt, "SESSION:")
    objective = block_after(prompt, "RESEARCH OBJECTIVE")
    concept = block_after(prompt, "THE PRODUCT OR CONCEPT UNDER DISCUSSION")
    name = concept_name(concept) if concept else ""
    subject = category_of(objective) or category_of(concept) or name or key_phrase(objective) or "it"
    thing = name or subject

    def question(text: str, probes: list[str]) -> dict:
        return {"text": text, "probes": probes}

    warm_up = {
        "title": "Warm-up: everyday habits",
        "goal": f"Understand how participants deal with {subject} today and what shapes their choices.",
        "turn_budget": 4,
        "questions": [
            question(
                f"To start, please introduce yourselves and tell us about your experience with {subject} so far.",
                ["What does a typical week look like?", "Who else has a say in it?"],
            ),
            question(
                f"Think about the last time you bought or used {subject}. What happened?",
                ["What made you choose that one?", "Would you do it the same way again?"],
            ),
        ],
    }
    cores = []
    for clause in objective_clauses(objective)[:3]:
        asked = [question(clause_question(clause), _core_probes(clause))]
        if m := re.match(rf"^whether\s+{_SUBJECT}\s+(?:would|will|could|can|might)\s+(.+)$", clause, re.I):
            asked.append(
                question(
                    f"What would have to be true for you to {to_second_person(m.group(1))}?",
                    ["What is stopping you today?"],
                )
            )
        goal = f"Learn {clause[:1].lower()}{clause[1:]}."
        cores.append({"title": _title(clause), "goal": goal, "turn_budget": 6, "questions": asked})
    if not cores:
        cores.append(
            {
                "title": cap(subject),
                "goal": f"Learn what matters to participants about {subject}.",
                "turn_budget": 6,
                "questions": [
                    question(f"What matters most to you when it comes to {subject}?", _core_probes(subject)),
                ],
            }
        )
    extra = []
    if concept:
        shown = first_sentence(concept)
        extra.append(
            {
                "title": f"First reactions to {name}" if name and name[0].isupper() else "First reactions to the idea",
                "goal": f"Hear unprompted reactions to {thing}: what appeals, what is unclear, what worries people.",
                "turn_budget": 7,
                "questions": [
                    question(
                        f"Here is the idea: {shown} What is your first reaction to {thing}?",
                        ["What do you like about it?", "What, if anything, is unclear?", "What worries you?"],
                    ),
                    question(f"Who do you think {thing} is for, and is that you?", ["Why, or why not?"]),
                ],
            }
        )
    prices = prices_in(concept)
    if prices or re.search(r"\b(price|prices|cost|pay|afford|value)\b", f"{objective} {concept}", re.I):
        priced = next((part for part in re.split(r"(?<=[.!?])\s+", concept) if prices and prices[0] in part), "")
        on_price = (
            f"On price: {priced} How does that sound?"
            if priced
            else f"What would you expect to pay for {thing}, and what would make it worth it?"
        )
        extra.append(
            {
                "title": "Price and value",
                "goal": f"Test whether the price of {thing} feels fair against what participants pay today.",
                "turn_budget": 5,
                "questions": [
                    question(on_price, ["What would feel fair?", "What would you compare it with?"]),
                    question("How does that compare with what you spend today?", ["What do you pay now?"]),
                ],
            }
        )
    action = "switch to" if re.search(r"\bswitch", objective, re.I) else "try"
    wrap_up = {
        "title": "Wrap-up",
        "goal": "Hear final verdicts and the one change that matters most.",
        "turn_budget": 3,
        "questions": [
            question(f"If you could change one thing about {thing}, what would it be?", ["Why that one?"]),
            question(f"All things considered, would you {action} {thing}? Why, or why not?", ["What would tip it?"]),
        ],
    }
    low, high = sections_node.get("minItems", 1), sections_node.get("maxItems", 8)
    sections = [warm_up, *cores, *extra, wrap_up]
    while len(sections) > high and len(sections) > 2:
        sections.pop(-2)
    while len(sections) < low:
        sections.insert(-1, dict(cores[0], title=f"{cores[0]['title']} (continued)"))
    return {
        **generated,
        "title": fit(f"{title}: discussion guide" if title else "Discussion guide", properties.get("title")),
        "sections": [_fit_section(section, section_props, questions_node, question_props) for section in sections],
    }


def _fit_section(section: dict, props: dict, questions_node: dict, question_props: dict) -> dict:
    budget = props.get("turn_budget") or {}
    turns = min(budget.get("maximum", section["turn_budget"]), max(budget.get("minimum", 1), section["turn_budget"]))
    probes_node = question_props.get("probes") or {}
    questions = section["questions"][: questions_node.get("maxItems", 8)]
    return {
        "title": fit(section["title"], props.get("title")),
        "goal": fit(section["goal"], props.get("goal")),
        "turn_budget": turns,
        "questions": [
            {
                "text": fit(q["text"], question_props.get("text")),
                "probes": [fit(p, probes_node.get("items")) for p in q["probes"][: probes_node.get("maxItems", 6)]],
            }
            for q in questions
        ],
    }


# --- the AI moderator ----------------------------------------------------------------------------

_ADDRESSABLE = re.compile(r"^(What|How|Why|Can|Could|Is|Are|Do|Does|Would|Where|When|Which|Who|Tell|If|In|Any)\b")


def _to(name: str, line: str) -> str:
    """A probe addressed to someone: "Tom, what worries you?"."""
    line = line.strip()
    if _ADDRESSABLE.match(line):
        line = line[:1].lower() + line[1:]
    return f"{first_name(name)}, {line}"


def decision(schema: dict, prompt: str, generated: dict, rng: random.Random) -> dict:
    """The moderator's next move, in the guide's own words: ask the current question, probe with the
    guide's probes, move on once the question has had its turns, close after the last one."""
    properties = schema.get("properties") or {}
    if not isinstance(generated, dict) or "next_speaker" not in properties:
        return generated
    names = properties["next_speaker"].get("enum") or []
    counts = [(n, int(c)) for n, c in re.findall(r"^- (.+?): (\d+) turns?$", prompt, re.M) if not names or n in names]
    if not counts:
        return generated
    current = re.search(r'^Current question: "(.*)"$', prompt, re.M)
    question = current.group(1) if current else ""
    following = re.search(r'^The next question in the guide is: "(.*)"$', prompt, re.M)
    probes = [p.strip() for p in line_after(prompt, "Probes you may use:").split(" | ") if p.strip()]
    spent = re.search(r"^Turns spent on this question: (\d+) \(aim for about (\d+)\)", prompt, re.M)
    turns, aim = (int(spent.group(1)), int(spent.group(2))) if spent else (0, 2)
    researcher = re.search(r'^THE RESEARCHER JUST SAID: "(.*)" — take it', prompt, re.M | re.S)
    transcript = block_after(prompt, "Recent conversation:")
    opening = not transcript or transcript.startswith("(nothing yet")
    last = re.findall(r"^([^:\n]+): ", transcript, re.M)
    last_speaker = next((who for who in reversed(last) if who != "Moderator"), "")
    fewest = min(c for _, c in counts)
    quiet = [n for n, c in counts if c == fewest]
    speaker = next((n for n in quiet if n != last_speaker), quiet[0]) if len(quiet) > 1 else quiet[0]
    speaker = quiet[rng.randrange(len(quiet))] if len(quiet) > 2 and speaker == quiet[0] else speaker
    who = first_name(speaker)
    # Who answered the moderator's last line: a probe digs into what one of them said (the quietest of them).
    just_said = [
        n.strip() for n in line_after(prompt, "A probe goes to someone who just answered:").rstrip(".").split(",")
    ]
    just_said = [n for n in just_said if n in dict(counts)]
    probed = min(just_said, key=lambda n: (dict(counts)[n], just_said.index(n))) if just_said else speaker
    room = len(counts) > 2  # a round is worth it with three or more people
    shape, then = "one", "decide"
    if opening:
        action, line = "ask_question", f"Welcome, everyone, and thank you for joining. {question}"
        reason = "Opening the session: round the table." if room else f"Opening the session; {who} starts."
        shape = "round" if room else "one"
    elif researcher:
        action, line = "probe", _to(speaker, f"the researcher would like to know: {researcher.group(1).strip()}")
        reason = f"Putting the researcher's point to {who}."
    elif turns == 0:
        action, line = "ask_question", question
        reason = "Asking the guide's question round the table." if room else f"Asking the guide's question; {who}."
        shape = "round" if room else "one"
    elif turns >= aim and following:
        action, line = "next_question", f"Thank you. {following.group(1)}"
        reason = "This question has had its turns; next one, round the table."
        shape = "round" if room else "one"
    elif turns >= aim:
        action = "wrap_up"
        line = "Thank you all — that's everything on the guide. This was really helpful."
        reason = "The guide's last question has had its turns."
    elif probes:
        speaker, who = probed, first_name(probed)
        action, line = "probe", _to(speaker, probes[(turns - 1) % len(probes)])
        reason = f"Probing what {who} said; then the others react."
        then = "others_react" if room else "decide"
    else:
        action = "invite_quiet" if fewest == 0 else "probe"
        if action == "probe":
            speaker, who = probed, first_name(probed)
        said = f"what {first_name(last_speaker)} just said" if last_speaker else "what you've heard so far"
        line = _to(speaker, f"how do you see it — do you agree with {said}?")
        reason = f"{who} has spoken least so far." if action == "invite_quiet" else f"Probing {who}; then the others."
        then = "others_react" if room else "decide"
    actions = (properties.get("action") or {}).get("enum") or []
    if actions and action not in actions:
        return generated
    result = {**generated, "action": action, "next_speaker": speaker, "reason": fit(reason, properties.get("reason"))}
    if "format" in properties:
        result["format"] = shape
    if "then" in properties:
        result["then"] = then
    if "moderator_message" in properties:
        result["moderator_message"] = line.strip() or None
    return result


# --- a persona's answer ----------------------------------------------------------------------------

# What each angle says, by the kind of question. {focus}: what the question is about; {price}: a price from the
# question or the concept; {job}: the person's working week.
_SAYS: dict[str, dict[str, str]] = {
    "react": {
        "price": "Interested, but my first question about {focus} is what it costs.",
        "tech": "Intrigued — I'd want to see what {focus} actually does, feature by feature.",
        "time": "If {focus} saves me time, I'm listening.",
        "trust": "Honestly? Sceptical. {Focus} sounds good on paper, but so does everything.",
        "planet": "I really like the idea behind {focus} — anything that cuts waste gets my attention.",
        "quality": "It depends how well {focus} is made; if the quality's there, I'm interested.",
        "health": "I'd want to know what's in {focus} before anything else.",
    },
    "price": {
        "price": "Honestly, {price} is more than I'd want to pay — I'd need to see the saving in black and white.",
        "tech": "If the features are good, {price} seems fair enough to me.",
        "time": "If it saves me time every week, {price} is fair — my time is worth something too.",
        "trust": "I wouldn't pay {price} up front without trying it first.",
        "planet": "I'd pay a little more for less waste, but {price} mustn't be double what I pay now.",
        "quality": "{Price} is fine if the quality is there; I'd rather pay for something decent.",
        "health": "I'd pay {price} if it's genuinely healthier than what we have now.",
    },
    "improve": {
        "price": "the price — bring it down, or show me what I'd save.",
        "tech": "a proper app where I can change or pause things myself.",
        "time": "no planning ahead — it should fit my week as it is.",
        "trust": "a no-strings free trial and cancelling in one click.",
        "planet": "packaging that's fully recyclable or refillable.",
        "quality": "better materials and a design I'd want on show.",
        "health": "clear nutrition information on the front.",
    },
    "win": {
        "price": "What would win me back is a price clearly below the supermarket's, not a one-off discount.",
        "tech": "What would win me back is a better app: skip a week, swap things, all in two taps.",
        "time": "What would win me back is less admin — no deadlines to remember, no planning on a Sunday.",
        "trust": "What would win me back is honesty: no auto-renewals I didn't notice, and easy cancelling.",
        "planet": "What would win me back is far less packaging, and proof of where it ends up.",
        "quality": "What would win me back is the quality being consistently good, every single time.",
        "health": "What would win me back is food that's genuinely healthy, with the nutrition laid out.",
    },
    "cancel": {
        "price": "The price creeping up — that's what makes me cancel things, every time.",
        "tech": "A clunky app. If I can't sort it in a couple of taps, I'm gone.",
        "time": "If it took more time than it saved, I'd cancel straight away.",
        "trust": "Hidden charges. The minute I feel caught out, I'm gone.",
        "planet": "All the packaging piling up — that would make me cancel.",
        "quality": "If the quality slipped, even once or twice, I'd cancel.",
        "health": "If it turned out not to be as healthy as they say, I'd stop.",
    },
    "intent": {
        "price": "Not at full price, no — with a decent introductory offer, maybe.",
        "tech": "Yes, I'd give it a go, as long as the app and the features are decent.",
        "time": "Probably, yes, if it really saves me time.",
        "trust": "Maybe, once a few people I know have tried it.",
        "planet": "Yes — I'd switch, if the green claims stand up.",
        "quality": "If the quality is what they say, yes.",
        "health": "Yes, if the ingredients check out.",
    },
    "whofor": {
        "price": "It's for people with money to spare, and that's not really me right now.",
        "tech": "People who like running things from an app — so yes, people like me.",
        "time": "Busy people like me, if it really does save time.",
        "trust": "People who like trying new things first. I'm more of a wait-and-see person.",
        "planet": "Anyone trying to cut down on waste — so yes, me.",
        "quality": "People who care about quality, which is me, if it's good.",
        "health": "People who want to eat well without the effort, which is me on a good week.",
    },
    "worry": {
        "price": "My worry is the cost creeping up once I'm signed up.",
        "tech": "My worry is a clunky app or features that don't work together.",
        "time": "My worry is it turning into one more thing to manage.",
        "trust": "My worry is the small print — what happens when I want to cancel?",
        "planet": "My worry is that it's greenwashing.",
        "quality": "My worry is that it feels cheap in the hand.",
        "health": "My worry is what's actually in it.",
    },
    "reassure": {
        "price": "Seeing the price per meal next to what I pay now would do it.",
        "tech": "Good reviews of the app, and being able to try it properly first.",
        "time": "Knowing I can skip a week in one tap, with no deadlines.",
        "trust": "A free trial without my card details, and reviews from real people.",
        "planet": "Proof about the packaging — what it's made of and what happens to it.",
        "quality": "Seeing and trying it before I commit.",
        "health": "Full nutrition information, up front.",
    },
    "like": {
        "price": "What I'd like is if it genuinely works out cheaper.",
        "tech": "What I like is the idea of managing it all from my phone.",
        "time": "What I like is that it could save me a trip.",
        "trust": "What I like — if it's true — is that it sounds simple.",
        "planet": "What I like is the thought of less waste.",
        "quality": "What I like is the look of it.",
        "health": "What I like is knowing exactly what's in it.",
    },
    "example": {
        "price": "Just last week I swapped half the basket for own-label because the total kept creeping up.",
        "tech": "Last month I set up a new shopping app and dropped it after two days because it was so clunky.",
        "time": "On Tuesday I got in at seven with nothing planned, and we ended up with beans on toast.",
        "trust": "Last year I signed up for a 'free' trial and had to ring twice to get it cancelled.",
        "planet": "Last week I took our own containers to the refill shop; it took longer, but it felt right.",
        "quality": "I bought a cheap version of something last month and it fell apart within a week.",
        "health": "On Monday I checked the label on a 'healthy' ready meal and it was full of sugar.",
    },
    "why": {
        "price": "Mainly because every pound counts in our house.",
        "tech": "Mainly because if the features aren't right, I won't keep using it.",
        "time": "Mainly because I just don't have the time to spare.",
        "trust": "Mainly because I've been caught out before.",
        "planet": "Mainly because I care about how much we throw away.",
        "quality": "Mainly because cheap things end up costing more.",
        "health": "Mainly because I want to know what we're eating.",
    },
    "general": {
        "price": "On {focus}, for me it comes down to what it costs.",
        "tech": "On {focus}, for me it comes down to what it can actually do.",
        "time": "On {focus}, for me it comes down to time.",
        "trust": "On {focus}, for me it comes down to whether I can trust it.",
        "planet": "On {focus}, for me it comes down to how much waste it saves.",
        "quality": "On {focus}, for me it comes down to quality.",
        "health": "On {focus}, for me it comes down to what's in it.",
    },
}
_BODY = {
    "price": [
        "At {price} I'd need it to work out cheaper than what I buy now, or at least not dearer.",
        "Every pound counts in our house, so I'd compare the price with the supermarket first.",
        "A free trial or an introductory offer would get me to try it; full price wouldn't.",
        "I keep a running total when I shop, so I'd notice straight away if it cost more.",
        "Prices only ever seem to go one way once you've signed up.",
        "I'd want to see the cost per meal, not just the weekly total.",
    ],
    "tech": [
        "Is there an app, and can I manage everything from my phone in a couple of taps?",
        "I'd look at the features: what can I customise, does it remember what I like?",
        "Good reviews of the features would sell it to me more than any advert.",
        "If it worked with the apps I already use, that would be a big plus.",
        "I'm usually the first of my friends to try something like this, if it's well built.",
        "Notifications that actually help, not spam, would make a difference.",
    ],
    "time": [
        "{job}, so the question is whether it saves me a trip or a decision.",
        "If it needs planning days ahead, I'll forget and fall back on what I always do.",
        "Anything that fits into a normal weeknight without extra faff is a win for me.",
        "Ten minutes saved on a school night is worth more to me than a discount.",
        "I'd want it to just turn up and work, without me having to think about it.",
        "Weeknights are a rush in our house, so simple beats clever every time.",
    ],
    "trust": [
        "I've been caught out before by things that promised a lot.",
        "I'd want to hear from people like me who've used it for a few months.",
        "And I'd want to know I can cancel easily, without ringing a call centre.",
        "Adverts always make things look better than they are.",
        "I'd read the small print twice before giving them my card details.",
        "If a friend recommended it, I'd take it more seriously.",
    ],
    "planet": [
        "Less plastic and less waste matter to me, and I'd switch for that.",
        "But I'd want to know the green claims are real — greenwashing really winds me up.",
        "If it's genuinely better and not much dearer, it's a yes from me.",
        "I'd want to know what the packaging is and whether my council takes it.",
        "Buying less but better is something I try to do anyway.",
        "Local and seasonal would make it even more appealing.",
    ],
    "quality": [
        "I'd rather pay a bit more for something that's well made and lasts.",
        "How it looks and feels makes a real difference to whether I'd keep using it.",
        "Cheap versions that fall apart after a month are a false economy.",
        "The details matter to me — the finish, the smell, how it's presented.",
        "If it's good, I'll tell everyone about it.",
    ],
    "health": [
        "I read labels, so I'd want the ingredients and nutrition information up front.",
        "If it helps us eat better on a busy day, that's worth a lot.",
        "Hidden sugar or vague labelling would put me off straight away.",
        "I'd want portions that make sense for the whole family.",
        "Fresh ingredients matter more to me than convenience.",
    ],
}
# Second versions of the openings heard most, so two people with the same angle do not speak as one.
_ALSO: dict[str, dict[str, str]] = {
    "example": {
        "price": "Last month the same weekly shop cost me eight pounds more than in the spring, and I noticed.",
        "tech": "I tried an app for meal planning last year; it looked great and I gave up after a week of bugs.",
        "time": "Last Wednesday I was still at work at six, so tea was whatever was in the freezer.",
        "trust": "My neighbour signed up to one of these boxes and spent a month trying to stop the payments.",
        "planet": "I counted the plastic from one week's shop once — it filled a whole bag.",
        "quality": "I treated myself to something nicer last month, and it was worth every penny.",
        "health": "Last week I batch-cooked on Sunday so we weren't living on takeaways by Thursday.",
    },
    "why": {
        "price": "Simple: the money has to stretch to the end of the month.",
        "tech": "Because a good idea with a bad app is still a bad experience.",
        "time": "Because every evening is already full before I even think about food.",
        "trust": "Because I'd rather be safe than sorry with my bank details.",
        "planet": "Because we throw away far too much as it is.",
        "quality": "Because I'd rather have one thing I love than three I put up with.",
        "health": "Because what we eat during the week really matters to me.",
    },
    "react": {
        "price": "My first thought about {focus} is the price, honestly — {price} adds up.",
        "tech": "I like the sound of {focus} — I'd want to see the app before anything else.",
        "time": "{Focus} could be handy, if it really takes something off my plate.",
        "trust": "I'm wary. {Focus} sounds good, but I've heard that before.",
        "planet": "I'm interested in {focus}, as long as the packaging isn't a nightmare.",
        "quality": "{Focus} sounds nice — I'd want to see the quality for myself.",
        "health": "Interesting — I'd want to see what's in {focus} before I decide.",
    },
    "reassure": {
        "price": "A clear saving on paper — what I'd spend with them against what I spend now.",
        "tech": "A demo of the app that shows it's actually easy to use.",
        "time": "Proof it takes less time than what I do now, not more.",
        "trust": "Hearing from a couple of friends who've used it without problems.",
        "planet": "Knowing exactly what happens to the packaging afterwards.",
        "quality": "Seeing it in person before paying.",
        "health": "Seeing the ingredients list before I sign up.",
    },
}
_NODS = ["I'm with {other} on that.", "Like {other}, I feel the same.", "{Other} has a point there."]
_BUTS = ["I see {other}'s point, but", "I'm not sure I agree with {other} —", "{Other} makes a fair point, but for me"]
_KINDS = [
    ("intro", r"introduce|tell us (?:a little )?about yourselves"),
    ("win", r"win you back|bring you back|make you come back|get you back"),
    ("cancel", r"make you (?:cancel|stop|leave|quit)|why (?:do|did|would) you (?:cancel|stop|leave|quit)"),
    ("whofor", r"who (?:do you think )?.*\bis (?:it )?for|who is it for"),
    ("improve", r"change one thing|improve|do better|one change"),
    ("price", r"price|cost|pay\b|£|\$|€|worth it|afford|how does that sound|fair"),
    ("intent", r"would you (?:try|buy|switch|use|subscribe|order)|all things considered|tip it"),
    ("react", r"first reaction|first impression|think of|make of|feel about|react"),
    ("reassure", r"reassure|change your mind|convince you"),
    ("worry", r"worr|concern|put you off|puts you off|doubt|unclear|stopping you"),
    ("example", r"example|last time|tell (?:me|us) about a time"),
    ("habit", r"typical week|walk (?:me|us) through|how do you|today|right now|usually"),
    ("like", r"what do you like|appeal|best thing|what(?:'s| is) good"),
    ("why", r"^why|why is that|what makes you|what made you|tell (?:me|us) more|say more|why not"),
]


def _kind(question: str) -> str:
    q = question.lower()
    for kind, pattern in _KINDS:
        if re.search(pattern, q):
            return kind
    return "general"


def _focus(question: str, fallback: str) -> str:
    match = re.search(
        r"\b(?:reaction to|impression of|think (?:of|about)|feel about|make of|opinion of|about|buy(?:ing)?|"
        r"using|use|choose|choosing|pay for|switch to|switching to|try|trying|change about)\s+(.+?)[?.!]*$",
        question,
        re.I,
    )
    focus = match.group(1) if match else ""
    focus = re.split(r",| and why| or not| and is that| and what| if ", focus, maxsplit=1)[0].strip()
    if not focus or focus.lower() in ("it", "that", "this", "them", "one", "that one") or len(focus.split()) > 8:
        return fallback
    return to_first_person(focus)


def _a(text: str) -> str:
    return ("an " if text[:1].lower() in "aeiou" else "a ") + text


def _lower_first(text: str) -> str:
    """Lower-case a sentence's first letter to follow on from a clause, but not "I", "I'm" or a name."""
    if re.match(r"I\b|[A-Z][a-z]+[A-Z]|[A-Z]{2}", text) or re.match(r"[A-Z][a-z]+ [A-Z]", text):
        return text
    return text[:1].lower() + text[1:]


def _said_before(text: str, transcript: str) -> bool:
    return text[:40] in transcript


def answer(messages: list[dict], rng: random.Random) -> str | None:
    """A persona's answer to the moderator's latest line, from their profile's main angle."""
    system, prompt = system_prompt(messages), user_prompt(messages)
    me = re.search(r"^You are (.+?), taking part", system, re.M)
    said = re.search(
        r'The moderator now says: "(.*?)"\s*(?:\(The question is addressed to you\.\))?\s*Reply as ', prompt, re.S
    )
    if not me or not said:
        return None
    name = me.group(1).strip()
    first = first_name(name)
    who = re.search(
        r"^- (\d+)(?:, ([^,;\n]+?))?(?:, living in ([^;\n]+?))?(?:; you work as ([^\n]+?))?\.\s*$", system, re.M
    )
    age = who.group(1) if who else ""
    place = (who.group(3) or "").split(",")[0].strip() if who else ""
    occupation = (who.group(4) or "").strip() if who else ""
    # What they value and how they buy says most about them: those lines count twice.
    profile = " ".join(
        line_after(system, label)
        for label in (
            "- You value:",
            "- You value:",
            "- How you buy:",
            "- Interests:",
            "- Frustrations:",
            "- How you buy:",
            "- Brands you like:",
            "- Background:",
            "- Income:",
            "- Household:",
        )
    )
    main, second = angles_of(f"{profile} {occupation}", name=name)[:2]
    style = block_after(system, "HOW YOU SPEAK").lower()
    concept = line_after(system, "What is being discussed:")
    objective = line_after(system, "The moderator is researching:")
    thing = concept_name(concept) if concept else (category_of(objective) or "it")
    line = " ".join(said.group(1).split())
    sentences = re.split(r"(?<=[.!?])\s+", line)
    asked = [index for index, part in enumerate(sentences) if part.endswith("?")]
    at = asked[-1] if asked else len(sentences) - 1
    # "What happened?", "Why, or why not?": a short question takes its meaning from the sentence before.
    question = " ".join(sentences[at - 1 : at + 1]) if at and len(sentences[at].split()) < 5 else sentences[at]
    question = re.sub(r"^[A-Z][\w'-]+,\s+", "", question)
    kind = _kind(question)
    focus = _focus(question, thing)
    prices = prices_in(line) or prices_in(concept)
    price = join_list(prices[:2]) if prices else "that price"
    job = f"As {_a(occupation.lower())} my weeks are full" if occupation else "My weeks are full"
    transcript = block_after(prompt, "The conversation so far:")
    mine = "\n".join(text for speaker, text in re.findall(r"^([^:\n]+): (.+)$", transcript, re.M) if speaker == name)

    def say(text: str) -> str:
        text = text.format(focus=focus, Focus=cap(focus), price=price, Price=cap(price), job=job)
        return text if text[-1:] in ".?!" else f"{text}."

    buying = first_sentence(line_after(system, "- How you buy:"))
    if kind in ("intro", "habit"):
        habit = said_by_me(buying, name) if buying else said_by_me(ANGLES[main].buying[0].replace("{category}", thing))
        opening = f"Right now, {_lower_first(habit)}"
        if kind == "intro":
            where = f" in {place}" if place else ""
            work = f" and I work as {_a(occupation.lower())}{where}" if occupation else where
            opening = f"Hi, I'm {first}{f' — I am {age}' if age else ''}{work}. {cap(opening)}"
    else:
        opening = _SAYS[kind][main]
        if kind in _ALSO:
            voices = [_SAYS[kind][main], _ALSO[kind][main]]
            if stable_int(name, kind) % 2:
                voices.reverse()
            opening = next((v for v in voices if not _said_before(say(v), mine)), voices[0])
        if kind == "improve":
            opening = f"If I could change one thing about {{focus}}, it'd be {opening[:1].lower()}{opening[1:]}"
    parts = [say(opening)]
    # Not what this person said already, and, where there is a choice, not what someone else just said.
    body = [say(text) for text in _BODY[main] if not _said_before(say(text), mine)] or [say(t) for t in _BODY[main]]
    body = [text for text in body if not _said_before(text, transcript)] or body
    rng.shuffle(body)
    extra = [say(text) for text in _BODY[second] if not _said_before(say(text), transcript)]
    parts += body[:2] if rng.random() < 0.6 or not extra else [body[0], extra[rng.randrange(len(extra))]]
    frustrations = [f.strip() for f in line_after(system, "- Frustrations:").rstrip(".").split(",") if f.strip()]
    if frustrations and rng.random() < 0.4:
        moan = f"What really winds me up is {frustrations[rng.randrange(len(frustrations))].lower()}."
        if not _said_before(moan, mine):
            parts.insert(2, moan)
    others = re.findall(r"^([^:\n]+): (.+)$", transcript, re.M)
    other = next(((n, t) for n, t in reversed(others) if n not in ("Moderator", name)), None)
    if other and len(parts) > 1 and rng.random() < 0.35:
        scores = angle_scores(other[1])
        theirs = max(scores, key=lambda key: scores[key])
        them = first_name(other[0])
        if scores[theirs] and theirs == main:
            parts.insert(1, rng.choice(_NODS).format(other=them, Other=them))
        else:
            parts[1] = f"{rng.choice(_BUTS).format(other=them, Other=them)} {_lower_first(parts[1])}"
    size = 3
    if re.search(r"short|blunt|terse|few words|\bdry\b", style):
        size = 2
    elif re.search(r"warm|enthusias|chatty|out loud", style):
        size = 4
    text = " ".join(parts[:size])
    if re.search(r"out loud|hesit|thoughtful", style) and stable_int(name, line) % 2:
        text = f"Hmm. {text}"
    return text


# --- private answers (a focus group's conformity check) ---------------------------------------------

# How each angle leans on a yes/no question about the concept: the enthusiasts of what it does say yes more often,
# the price-conscious and the wary less. Shares out of 10 of positive / neutral (the rest negative).
_LEANS = {
    "tech": (7, 2),
    "time": (6, 3),
    "quality": (6, 2),
    "health": (5, 3),
    "planet": (5, 3),
    "price": (2, 4),
    "trust": (2, 3),
}
_NEUTRAL = re.compile(
    r"not sure|unsure|maybe|perhaps|depends|undecided|don't know|do not know|neutral|mixed|it depends"
)
_NEGATIVE = re.compile(r"^no\b|\bnever\b|\bnot\b|n't\b|unlikely|\bdisagree|\bwon't|\bnope")
_PRIVATE_NAME = re.compile(r"^PRIVATE QUESTION\. You are (.+?)\. Nobody", re.M)


def _polarity(option: str) -> str:
    text = option.lower()
    if _NEUTRAL.search(text):
        return "neutral"
    if _NEGATIVE.search(text):
        return "negative"
    return "positive"


def _pick(options: list[str], polarity: str, name: str) -> str:
    """The option of that polarity (the first of several, in a fixed order per person); the nearest otherwise."""
    order = {"positive": ["positive", "neutral", "negative"], "negative": ["negative", "neutral", "positive"]}
    order["neutral"] = ["neutral", "negative", "positive"]
    for wanted in order[polarity]:
        fitting = [option for option in options if _polarity(option) == wanted]
        if fitting:
            return fitting[stable_int(name, wanted) % len(fitting)]
    return options[0]


def _private_lean(name: str, main: str, question: str) -> str:
    positive, neutral = _LEANS.get(main, (4, 3))
    draw = stable_int(name, "private", question) % 10
    return "positive" if draw < positive else "neutral" if draw < positive + neutral else "negative"


def _room_lean(transcript: str, name: str) -> tuple[str | None, str]:
    """How the others leaned in the discussion, from what they said (each speaker's main angle), and one of them."""
    said: dict[str, str] = {}
    for speaker, text in re.findall(r"^([^:\n]+): (.+)$", transcript, re.M):
        if speaker not in ("Moderator", name):
            said[speaker] = f"{said.get(speaker, '')} {text}"
    leans = []
    for text in said.values():
        scores = angle_scores(text)
        main = max(scores, key=lambda key: scores[key])
        if scores[main]:
            leans.append("positive" if _LEANS.get(main, (4, 3))[0] >= 5 else "negative")
    if not leans:
        return None, ""
    positive = leans.count("positive")
    if positive * 2 == len(leans):
        return None, ""
    lean = "positive" if positive * 2 > len(leans) else "negative"
    return lean, first_name(next(iter(said)))


def private_answer(schema: dict, prompt: str) -> dict | None:
    """A persona's private answer to the key question, from their profile's main angle; after the discussion, a
    person whose view went against how the room leaned comes round to it about half the time (the herding that
    the conformity rate measures), and says so."""
    properties = schema.get("properties") or {}
    options = ((properties.get("choice") or {}).get("enum")) or []
    me = _PRIVATE_NAME.search(prompt)
    if not options or not me or "reason" not in properties:
        return None
    name = me.group(1).strip()
    profile = " ".join(
        line_after(prompt, label)
        for label in ("- You value:", "- You value:", "- How you buy:", "- Interests:", "- Frustrations:", "- Income:")
    )
    main = angles_of(f"{profile} {line_after(prompt, '- Background:')}", name=name)[0]
    question = block_after(prompt, "THE QUESTION").split("\n")[0]
    lean = _private_lean(name, main, question)
    choice = _pick(options, lean, name)
    reason = _SAYS["why"][main]
    if "WHAT YOU HEARD IN THE DISCUSSION" in prompt:
        room, other = _room_lean(block_after(prompt, "The conversation:"), name)
        if room is not None and room != lean and stable_int(name, "conform", question) % 2 == 0:
            choice = _pick(options, room, name)
            reason = f"Hearing {other} and the others talk it through, I've come round a bit. {reason}"
        else:
            reason = f"The discussion didn't really change my mind. {reason}"
    return {"choice": choice, "reason": reason}
