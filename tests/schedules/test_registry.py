"""The schedule registry: names, close matches, create, register."""

from __future__ import annotations

import pytest

from skopt_nn import schedules
from skopt_nn.schedules import SCHEDULES, Constant, Schedule, ScheduleSpec


def test_available_lists_every_issue_name() -> None:
    assert schedules.available() == [
        "constant",
        "constant_cooldown",
        "cosine",
        "cosine_power",
        "linear",
        "onecycle",
        "refined",
        "sgdr",
    ]
    assert schedules.available("cos*") == ["cosine", "cosine_power"]


def test_get_resolves_names_objects_specs_and_none() -> None:
    assert schedules.get("SGDR").factory is schedules.SGDR
    assert schedules.get(" Cosine ").name == "cosine"
    assert schedules.get(schedules.Linear()).name == "linear"
    spec = schedules.get("onecycle")
    assert schedules.get(spec) is spec
    assert schedules.get(None).name == "constant"


def test_get_of_an_unregistered_schedule_class() -> None:
    class Mine(Constant):
        pass

    spec = schedules.get(Mine())
    assert spec.name == "mine" and spec.factory is Mine and spec.origin == "user"


@pytest.mark.parametrize(
    "name,message",
    [
        ("sgdrr", "Unknown schedule 'sgdrr'. Did you mean 'sgdr'?"),
        ("cosin", "Unknown schedule 'cosin'. Did you mean 'cosine', 'cosine_power'?"),
        ("one_cycle", "Unknown schedule 'one_cycle'. Did you mean 'onecycle'?"),
        (
            "step",
            "Unknown schedule 'step'. Known names: constant, constant_cooldown, cosine, cosine_power, linear, "
            "onecycle, refined, sgdr.",
        ),
    ],
)
def test_unknown_names_list_close_matches(name: str, message: str) -> None:
    with pytest.raises(ValueError) as info:
        schedules.get(name)
    assert str(info.value) == message
    with pytest.raises(ValueError) as info:
        schedules.create(name, T_0=3)
    assert str(info.value) == message


def test_get_rejects_other_types() -> None:
    with pytest.raises(TypeError, match="a name, a Schedule object or None"):
        schedules.get(3)  # type: ignore[arg-type]


def test_create_by_name() -> None:
    made = schedules.create("sgdr", T_0=5, warmup_steps=2)
    assert isinstance(made, schedules.SGDR) and made.T_0 == 5 and made.warmup_steps == 2
    assert isinstance(schedules.create("linear"), schedules.Linear)
    with pytest.raises(ValueError) as info:
        schedules.create("cosine", etamin=0.1)
    assert str(info.value) == "Unknown Cosine parameter 'etamin'. Did you mean 'eta_min'?"


def test_register_rejects_duplicates_and_bad_names() -> None:
    spec = ScheduleSpec(name="constant", factory=Constant, paper="")
    with pytest.raises(ValueError, match="already registered"):
        schedules.register(spec)
    with pytest.raises(ValueError, match="lower case"):
        schedules.register(ScheduleSpec(name="Mine", factory=Constant, paper=""))
    mine = ScheduleSpec(name="test_mine", factory=Constant, paper="")
    try:
        assert schedules.register(mine) is mine
        assert schedules.get("test_mine") is mine and "test_mine" in schedules.available()
    finally:
        SCHEDULES.pop("test_mine")


def test_every_exported_schedule_class_is_registered() -> None:
    registered = {spec.factory for spec in SCHEDULES.values()}
    exported = [
        obj
        for obj in (getattr(schedules, n) for n in schedules.__all__)
        if isinstance(obj, type) and issubclass(obj, Schedule) and obj is not Schedule
    ]
    missing = [cls.__name__ for cls in exported if cls not in registered]
    assert not missing, f"exported but not registered: {missing}"


def test_every_entry_cites_a_paper_and_summarises() -> None:
    for spec in SCHEDULES.values():
        assert spec.paper and spec.summary, spec.name
        assert issubclass(spec.factory, Schedule)
