"""Reusable admin tools: list cells, links, filters, CSV responses. They import nothing of Cohorta's."""
