"""What each LLM feature is called where people read it: the Usage page, the admin, analytics and CSVs.

The feature names themselves (``settings.LLM_FEATURES`` and ``settings.LLM_EMBEDDING_FEATURES``) are
identifiers stored on every usage event and used in ``LLM_FEATURE_<NAME>`` overrides; they never change.
Every name in both has a label here (a test holds them together).
"""

FEATURE_LABELS = {
    "asset_description": "Image description (focus group)",
    "persona_basic": "Persona sketches",
    "persona_detail": "Persona profile",
    "persona_light": "Persona profile (light, for panels)",
    "persona_modify": "AI persona change",
    "persona_response": "Persona answer",
    "moderator": "Moderator question",
    "conversation_decision": "AI moderator decision",
    "discussion_guide": "Discussion guide",
    "key_themes": "Key themes",
    "summary": "Discussion summary",
    "live_themes": "Emerging themes (live)",
    "report": "Report",
    "image_description": "Image description",
    "grounding_summary": "Grounding document summary",
    "healthcheck": "AI connection check",
    "survey_answer": "Survey answers",
    "survey_rating": "Survey answer rating",
    "survey_themes": "Survey themes (open answers)",
    "survey_leading_twin": "Quality check: writing leading questions",
    "survey_leading_answer": "Quality check: answers to leading questions",
    "validation_themes": "Validation: matching human and synthetic themes",
    "persona_judge": "Quality check: judge's scores",
    "quality_probe": "Quality check: probe interview",
    "quality_diversity": "Quality check: answer diversity",
    "private_answer": "Quality check: private answer (conformity)",
}


def feature_label(name: str) -> str:
    """The human label of a feature; a name without one (an event from a retired feature) is made readable."""
    return FEATURE_LABELS.get(name) or name.replace("_", " ").capitalize()


def feature_choices(names) -> list[tuple[str, str]]:
    """(name, label) pairs sorted by label, for filters and selects."""
    return sorted(((name, feature_label(name)) for name in names), key=lambda pair: pair[1].lower())
