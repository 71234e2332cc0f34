"""The name a survey run's AI calls are kept under for exact replay (llm.replay)."""


def run_scope(run) -> str:
    return f"surveyrun:{run.pk}"
