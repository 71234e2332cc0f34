"""Text from people and models written into Markdown downloads (transcript, report, discussion guide).

A Markdown file is rendered by whatever opens it (a code host, a notes app, a static-site build), and most
renderers pass raw HTML through and follow links. So every piece of text we did not write goes in as text:
angle brackets become character references (no ``<script>``, no ``<a href>``, no ``<javascript:…>``
autolink), square brackets and backslashes are escaped (no ``[x](javascript:…)`` link or ``![x](…)``
image), and a line of free text cannot start a heading or a rule. Character references rather than
backslashes for ``<``: the original Markdown.pl does not honour ``\\<``.
"""

_ESCAPES = str.maketrans({"\\": "\\\\", "[": "\\[", "]": "\\]", "<": "&lt;", ">": "&gt;"})
_BLOCK_STARTS = ("#", "---", "===", "***", "___")


def md_inline(text) -> str:
    """One line of text: runs of whitespace (newlines too) as one space, nothing a renderer would run or link."""
    return " ".join(str(text or "").split()).translate(_ESCAPES)


def md_cell(text) -> str:
    """A table cell: one line, and a ``|`` that does not end the cell."""
    return md_inline(text).replace("|", "\\|")


def md_text(text) -> str:
    """Free text as Markdown paragraphs, line breaks kept, that cannot turn into HTML, links, headings or rules."""
    lines = []
    for line in str(text or "").replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        line = line.translate(_ESCAPES)
        stripped = line.lstrip()
        if stripped.startswith(_BLOCK_STARTS):
            line = "\\" + stripped
        lines.append(line)
    return "\n".join(lines).strip()
