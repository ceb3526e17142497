"""Champion / challenger assignment: deterministic, close to the share, independent of audits."""

import pytest

from app.policy.sampling import audit_draw
from models.arms import arm_draw, assign_arm


def test_assignment_is_stable_and_close_to_the_share() -> None:
    ids = [f"inspection-{i}" for i in range(20_000)]
    arms = [assign_arm(i, 0.1, "exp-1") for i in ids]
    assert arms == [assign_arm(i, 0.1, "exp-1") for i in ids]
    assert 0.09 < arms.count("challenger") / len(ids) < 0.11


def test_no_share_means_champion_and_full_share_challenger() -> None:
    assert {assign_arm(str(i), 0.0) for i in range(500)} == {"champion"}
    assert {assign_arm(str(i), 1.0) for i in range(500)} == {"challenger"}


def test_each_experiment_draws_afresh() -> None:
    first = [assign_arm(str(i), 0.5, "exp-1") for i in range(2000)]
    second = [assign_arm(str(i), 0.5, "exp-2") for i in range(2000)]
    agreement = sum(a == b for a, b in zip(first, second, strict=True)) / 2000
    assert 0.45 < agreement < 0.55  # independent draws agree half the time


def test_audits_do_not_all_land_in_one_arm() -> None:
    audited = [str(i) for i in range(50_000) if audit_draw(str(i)) < 0.02]
    share = sum(arm_draw(i) < 0.5 for i in audited) / len(audited)
    assert 0.45 < share < 0.55


@pytest.mark.parametrize("share", [-0.1, 1.5])
def test_a_share_outside_zero_to_one_is_refused(share: float) -> None:
    with pytest.raises(ValueError):
        assign_arm("x", share)
