"""Quality checks of a survey run: test-retest κ, sycophancy, the judge, diversity (see ``services``)."""
