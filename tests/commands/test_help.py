import pytest
from django.core.management import get_commands, load_command_class

# Every command Cohorta ships, with a word its --help must contain.
COMMANDS = {
    "seed_demo": "idempotent",
    "seed_model_pricing": "idempotent",
    "backfill_usage": "--delete-existing-estimates",
    "grant_credits": "--idempotency-key",
    "recover_jobs": "--dry-run",
}


@pytest.mark.parametrize(("name", "word"), COMMANDS.items())
def test_every_command_explains_itself(name, word, capsys):
    command = load_command_class(get_commands()[name], name)
    assert len(command.help) > 60
    with pytest.raises(SystemExit) as exit_:
        command.run_from_argv(["manage.py", name, "--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert word.lower() in out.lower()
