"""Domain errors that services raise and every interface renders the same way."""


class ApplicationError(Exception):
    """An expected failure with a message safe to show the user."""

    status_code = 400
    code = "error"

    def __init__(self, message: str, *, code: str | None = None, status_code: int | None = None, extra=None) -> None:
        super().__init__(message)
        self.message = message
        if code:
            self.code = code
        if status_code:
            self.status_code = status_code
        self.extra = extra or {}


class InsufficientCredits(ApplicationError):
    status_code = 402
    code = "insufficient_credits"


class QuotaExceeded(ApplicationError):
    status_code = 402
    code = "quota_exceeded"
