"""Persona generation fan-out: 8 personas with the fake LLM at 1 s per call.

Target (issue #4): total ≤ 1.2 × (one stage-1 call + one stage-2 call), i.e.
stage 2 runs in parallel. Run:  .venv/bin/python bench/persona_generation.py [--count 8] [--latency 1.0]
"""

import argparse
import time

from _common import fake_llm, report, setup_django


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=8)
    parser.add_argument("--latency", type=float, default=1.0, help="seconds before the fake LLM's first token")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()

    with fake_llm(ttft=args.latency) as base_url:
        setup_django(base_url)
        from billing.services import credits_grant
        from cohorta.accounts.models import User
        from llm.gateway import complete
        from llm.prompts import render_prompt
        from personas import generation
        from personas.models import Persona
        from personas.schemas import DETAIL_PROFILE_SCHEMA, basic_profiles_schema

        user = User.objects.create_user("bench@example.com", "Correct-Horse-Battery-9")
        credits_grant(user=user, amount=10_000, idempotency_key="bench:credits")
        description = "UK parents of young children who cook on weeknights and are curious about meal kits."

        # The unavoidable LLM time: one stage-1 call and one stage-2 call, measured here.
        started = time.perf_counter()
        stage1 = complete(
            feature="persona_basic",
            schema=basic_profiles_schema(args.count),
            user=user,
            messages=[
                {
                    "role": "user",
                    "content": render_prompt(
                        "personas:persona_basic", {"description": description, "count": args.count}
                    ),
                }
            ],
        )
        one_stage1 = time.perf_counter() - started
        started = time.perf_counter()
        complete(
            feature="persona_detail",
            schema=DETAIL_PROFILE_SCHEMA,
            user=user,
            messages=[
                {
                    "role": "user",
                    "content": render_prompt(
                        "personas:persona_detail", {"description": description, "basic": stage1.data["personas"][0]}
                    ),
                }
            ],
        )
        one_stage2 = time.perf_counter() - started
        floor = one_stage1 + one_stage2

        totals = []
        for _ in range(args.runs):
            started = time.perf_counter()
            brief = generation.brief_start(owner=user, description=description, count=args.count)
            totals.append(time.perf_counter() - started)
            assert Persona.objects.filter(brief=brief).count() == args.count, "not every persona was generated"
        best, worst = min(totals), max(totals)
        report(
            f"persona generation: {args.count} personas, fake LLM {args.latency:.1f} s/call",
            [
                ("one stage-1 + one stage-2 call", f"{floor:.2f} s"),
                ("generation (best / worst)", f"{best:.2f} s / {worst:.2f} s"),
                ("ratio (best / worst)", f"{best / floor:.2f} / {worst / floor:.2f}   target ≤ 1.20"),
            ],
        )


if __name__ == "__main__":
    main()
