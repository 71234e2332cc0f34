class IllegalJobTransition(Exception):
    """A job was asked to move to a state it cannot reach from its current one."""

    def __init__(self, job_id, current: str, target: str) -> None:
        self.job_id = job_id
        self.current = current
        self.target = target
        super().__init__(f"Job {job_id} cannot go from {current} to {target}")


class JobCancelled(Exception):
    """Raised inside a handler when the job was cancelled; unwinds the work.

    A handler may re-raise it with the partial ``result`` it wants kept."""

    def __init__(self, message: str = "Cancelled", *, result=None) -> None:
        super().__init__(message)
        self.result = result


class JobFailure(Exception):
    """A handler's way to fail with a message that is safe to show the user."""
