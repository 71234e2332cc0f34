import re

import pytest
from django.template import Context, Template

from personas.avatars import avatar_colours, avatar_svg, persona_initials
from tests.personas.factories import PersonaFactory


@pytest.mark.parametrize(
    ("name", "initials"),
    [
        ("Dr. Sarah Jones", "SJ"),
        ("Sarah Jones", "SJ"),
        ("Mrs Priya Patel-Shah", "PP"),
        ("Prof. Dr. Hans Müller", "HM"),
        ("Ludwig van Beethoven", "LB"),
        ("Martin Luther King Jr.", "MK"),
        ("Sarah Jones, PhD", "SJ"),
        ("Robert “Bob” O'Neil", "RO"),
        ("élodie durand", "ÉD"),
        ("J. R. R. Tolkien", "JT"),
        ("Madonna", "M"),
        ("Dr", "D"),
        ("王小明", "王"),
        ("  ", "?"),
        ("", "?"),
    ],
)
def test_initials(name, initials):
    assert persona_initials(name) == initials


def _persona_avatar(persona, size=48) -> str:
    return Template("{% load personas_tags %}{% persona_avatar persona size %}").render(
        Context({"persona": persona, "size": size})
    )


def test_avatars_follow_name_and_id_only_so_they_cannot_contradict_gender_or_age(db):
    """A drawn face picked from a hash gave a 25-year-old man grey hair or a 70-year-old woman a crew cut;
    the avatar now shows initials on the id's colour, and nothing in it depends on gender or age."""
    young_woman = PersonaFactory(name="Dr. Sarah Jones", gender="Female", age=24)
    older_man = PersonaFactory(name="Tom Baker", gender="Male", age=71)
    for persona, initials in ((young_woman, "SJ"), (older_man, "TB")):
        svg = _persona_avatar(persona)
        assert re.search(rf"<text[^>]*>{initials}</text>", svg)
        assert "<path" not in svg and "<ellipse" not in svg  # no figure, hair or face to disagree with
        assert f"<title>{persona.name}</title>" in svg and 'width="48"' in svg

    before = _persona_avatar(older_man)
    older_man.gender, older_man.age = "Female", 19
    assert _persona_avatar(older_man) == before


def test_the_colour_comes_from_the_id_and_survives_a_rename(db):
    persona = PersonaFactory(name="Sarah Jones")
    background, ink = avatar_colours(persona.pk)
    assert f'fill="{background}"' in _persona_avatar(persona) and f'fill="{ink}"' in _persona_avatar(persona)
    persona.name = "Sarah Jones-Okafor"
    assert f'fill="{background}"' in _persona_avatar(persona)
    # Neighbouring ids spread over the palette rather than sharing one colour.
    assert len({avatar_colours(pk) for pk in range(1, 21)}) >= 6


def test_the_name_is_escaped():
    svg = avatar_svg('<script>alert("x")</script> Smith', key=1, title='<b>"x"</b>')
    assert "<script>" not in svg and "<b>" not in svg and "&lt;b&gt;" in svg
