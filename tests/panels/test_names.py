"""Names within a panel: unique, and found in bounded time however often the model repeats one."""

import random

from panels.runner import unique_name


def test_a_free_name_is_kept():
    assert unique_name("Ana Ruiz", {"Bo Li"}, random.Random(1)) == "Ana Ruiz"


def test_a_taken_name_gets_a_middle_initial():
    found = unique_name("Ana Ruiz", {"Ana Ruiz"}, random.Random(1))
    assert found.startswith("Ana ") and found.endswith(". Ruiz") and found != "Ana Ruiz"


def test_a_name_repeated_past_every_initial_gets_a_number_instead_of_looping():
    taken = {"Ana Ruiz"} | {f"Ana {initial}. Ruiz" for initial in "ABCDEFGHJKLMNPRSTVW"}
    assert unique_name("Ana Ruiz", taken, random.Random(1)) == "Ana Ruiz (2)"
    assert unique_name("Ana Ruiz", taken | {"Ana Ruiz (2)"}, random.Random(1)) == "Ana Ruiz (3)"
