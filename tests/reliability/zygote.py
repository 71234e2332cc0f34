"""Forks Celery worker processes that are ready to run: ``python -m tests.reliability.zygote``.

Starting a worker from scratch (Python, Django, Celery, the openai SDK, the tokenizer tables) takes
2-8 s on a 2-core machine, which 20 kill -9 / restart cycles cannot afford. This process does those
imports once, opens no connection and starts no thread, then forks one worker per line it reads on
stdin (``<hostname> <log file> <concurrency> [visibility_timeout=N]``) and answers with the child's pid. The child is an
ordinary ``celery worker`` process (``app.worker_main`` with the Procfile's arguments) with its own
connections; killing it with SIGKILL is killing a worker. Children are reaped by the kernel
(SIGCHLD ignored here), so a dead child's pid disappears at once."""

import os
import signal
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    # What `celery worker` imports before it can start.
    import celery.apps.worker
    import celery.concurrency.thread
    import celery.worker.consumer  # noqa: F401
    import openai  # noqa: F401
    from django.db import connections

    from config.celery import app
    from llm.tokens import count_tokens

    app.loader.import_default_modules()
    # Importing the task modules runs Django's system checks, and one of them queries the database. A child
    # must not inherit that connection, nor a pool of them with its threads (workers run on the pool, as the
    # Procfile's do): siblings sharing a socket read each other's rows.
    for connection in connections.all():
        connection.close()
        if connection.vendor == "postgresql":
            connection.close_pool()
    count_tokens("warm up")  # the tokenizer tables, loaded once and shared copy-on-write
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)
    print("zygote ready", flush=True)

    for line in sys.stdin:
        hostname, log_path, concurrency, *options = line.split()
        sys.stdout.flush()
        pid = os.fork()
        if pid == 0:
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            os.setpgid(0, 0)
            log = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
            null = os.open(os.devnull, os.O_RDONLY)
            os.dup2(null, 0)
            os.dup2(log, 1)
            os.dup2(log, 2)
            for option in options:  # name=value: a Celery setting for this worker only
                name, _, value = option.partition("=")
                if name == "visibility_timeout":
                    app.conf.broker_transport_options = {
                        **app.conf.broker_transport_options,
                        "visibility_timeout": int(value),
                    }
            try:
                app.worker_main(
                    [
                        *("worker", "-Q", "llm,default", "--pool", "threads", "--concurrency", concurrency),
                        *("--without-gossip", "--without-mingle", "--without-heartbeat"),
                        *("-n", hostname, "--loglevel", "INFO"),
                    ]
                )
            finally:
                os._exit(0)
        print(pid, flush=True)


if __name__ == "__main__":
    main()
