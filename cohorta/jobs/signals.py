"""What apps above the jobs layer can listen to without the jobs layer knowing them.

``job_ended`` is sent once a job has reached a terminal state (done, failed, cancelled, interrupted),
after the transaction that moved it commits, with ``job_id``, ``kind`` and ``state``. Receivers run in
whatever process ended the job (a worker, the reaper, a web request cancelling it); one that raises is
logged and never breaks the job or the other receivers."""

from django.dispatch import Signal

job_ended = Signal()
