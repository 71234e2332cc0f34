"""Offline token counting, for calls whose provider reported no usage.

bpe-openai embeds the o200k_base tables, so nothing is downloaded at run
time (tiktoken would fetch them on first use, which fails offline)."""

from functools import lru_cache

# Chat formatting adds a few tokens per message and to prime the reply.
TOKENS_PER_MESSAGE = 3
TOKENS_PER_REPLY = 3


@lru_cache(maxsize=1)
def _encoding():
    # The tokenizer's tables are large: loaded on the first count, not at import.
    import bpe_openai

    return bpe_openai.get_encoding("o200k_base")


def count_tokens(text: str) -> int:
    if not text:
        return 0
    return len(_encoding().encode(text))


def _content_text(content) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # multi-part content: count the text parts
        return " ".join(part.get("text", "") for part in content if isinstance(part, dict))
    return ""


def count_message_tokens(messages: list[dict]) -> int:
    return sum(TOKENS_PER_MESSAGE + count_tokens(_content_text(m.get("content"))) for m in messages) + TOKENS_PER_REPLY
