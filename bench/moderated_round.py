"""Moderated round of 8 through the real service stack, and token → websocket latency.

Starts the fake LLM (its own process), a Celery worker (threads pool) and daphne
against Postgres + Redis, posts one question to 8 personas through the API and
follows it on the session websocket.

  * round ratio: time until all 8 answers are saved ÷ one answer's time (target ≤ 1.10)
  * token latency: from the worker receiving a token from the model to the websocket
    client receiving it (target p99 < 25 ms in service mode)

Needs DATABASE_URL (Postgres; a database named cohorta_bench is created) and REDIS_URL.
Run:  DATABASE_URL=postgres://postgres@127.0.0.1:5432/cohorta REDIS_URL=redis://127.0.0.1:6379/0 \\
      .venv/bin/python bench/moderated_round.py [--latency 1.0] [--personas 8] [--rounds 3]
"""

import argparse
import json
import statistics
import time
import urllib.request

from _common import report, service_stack


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--latency", type=float, default=1.0)
    parser.add_argument("--personas", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with service_stack(ttft=args.latency, tokens_per_second=60) as (web_url, _worker):
        port = int(web_url.rsplit(":", 1)[1])
        from cohorta.accounts.models import User
        from cohorta.accounts.services import api_token_create
        from focusgroups.conversation import build_persona_messages
        from focusgroups.models import FocusGroup, Message, Participant
        from llm.gateway import complete
        from personas.services import persona_create

        user = User.objects.create_user("bench@example.com", "Correct-Horse-Battery-9")
        _, token = api_token_create(user=user, name="bench")
        session = FocusGroup.objects.create(owner=user, title="Bench", objective="How do parents choose meal kits?")
        for i in range(args.personas):
            persona = persona_create(
                owner=user, data={"name": f"Person {i} Bench", "age": 30 + i, "occupation": "Teacher"}
            )
            Participant.objects.create(focus_group=session, persona=persona, position=i)
        if True:
            from websockets.sync.client import connect

            ws = connect(
                f"ws://127.0.0.1:{port}/ws/focus-groups/{session.pk}/",
                additional_headers={"Authorization": f"Bearer {token}"},
            )
            ws.send(json.dumps({"type": "hello", "last_seq": 0}))
            json.loads(ws.recv(timeout=10))

            # One answer, the unavoidable LLM time for this question.
            prompt = Message.objects.create(
                focus_group=session, sequence=10_000, role="researcher", content="What would make you try a meal kit?"
            )
            persona = session.participants.first().persona
            started = time.perf_counter()
            complete(
                feature="persona_response",
                user=user,
                max_tokens=600,
                messages=build_persona_messages(focus_group=session, persona=persona, prompt_message=prompt),
            )
            one_answer = time.perf_counter() - started
            prompt.delete()

            ratios, latencies, in_worker, to_consumer, to_client = [], [], [], [], []
            for round_number in range(args.rounds):
                request = urllib.request.Request(
                    f"http://127.0.0.1:{port}/api/v1/focus-groups/{session.pk}/messages/",
                    data=json.dumps(
                        {"content": f"Question {round_number}: what would make you try a meal kit?"}
                    ).encode(),
                    method="POST",
                    headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
                )
                started = time.perf_counter()
                urllib.request.urlopen(request, timeout=10).read()
                done = 0
                while done < args.personas:
                    event = json.loads(ws.recv(timeout=30))
                    if event["type"] == "token.delta" and event.get("t"):
                        now = time.time()
                        latencies.append((now - event["t"]) * 1000)
                        if event.get("forwarded_at") and event.get("sent_at"):
                            in_worker.append((event["sent_at"] - event["t"]) * 1000)
                            to_consumer.append((event["forwarded_at"] - event["sent_at"]) * 1000)
                            to_client.append((now - event["forwarded_at"]) * 1000)
                    elif event["type"] in ("message.complete", "message.error"):
                        done += 1
                ratios.append((time.perf_counter() - started) / one_answer)
            ws.close()

    def pct(values, q):
        values = sorted(values)
        return values[min(len(values) - 1, int(len(values) * q))] if values else float("nan")

    p50, p99 = statistics.median(latencies), pct(latencies, 0.99)
    report(
        f"moderated round: {args.personas} personas, fake LLM {args.latency:.1f} s to first token",
        [
            ("one answer", f"{one_answer:.2f} s"),
            ("round ÷ one answer (each round)", ", ".join(f"{r:.2f}" for r in ratios) + "   target ≤ 1.10"),
            (
                "token → websocket latency",
                f"p50 {p50:.1f} ms, p99 {p99:.1f} ms over {len(latencies)} tokens   target p99 < 25 ms",
            ),
            ("  of which queued in the worker", f"p50 {pct(in_worker, 0.5):.1f} ms, p99 {pct(in_worker, 0.99):.1f} ms"),
            ("  of which Redis → consumer", f"p50 {pct(to_consumer, 0.5):.1f} ms, p99 {pct(to_consumer, 0.99):.1f} ms"),
            ("  of which consumer → client", f"p50 {pct(to_client, 0.5):.1f} ms, p99 {pct(to_client, 0.99):.1f} ms"),
        ],
    )


if __name__ == "__main__":
    main()
