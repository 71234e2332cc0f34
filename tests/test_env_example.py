import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_env_example_documents_every_variable_the_settings_read():
    source = (ROOT / "config" / "settings.py").read_text()
    read = set(re.findall(r'(?:env(?:\.\w+)?|_env_bool|_env_secret)\(\s*"([A-Z][A-Z0-9_]+)"', source))
    # The serving processes read a few of their own: gunicorn's config file and the Procfile's commands.
    serving = (ROOT / "config" / "gunicorn.conf.py").read_text() + (ROOT / "Procfile").read_text()
    for from_python, from_shell in re.findall(
        r"""environ\.get\(\s*["']([A-Z][A-Z0-9_]+)["']|\$\{([A-Z][A-Z0-9_]+)""", serving
    ):
        read.add(from_python or from_shell)
    documented = set(re.findall(r"^([A-Z][A-Z0-9_]+)=", (ROOT / ".env.example").read_text(), re.MULTILINE))
    assert read, "the pattern no longer matches how settings read the environment"
    assert read - documented == set()
    assert documented - read == set()
