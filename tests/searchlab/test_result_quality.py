"""The one rule that flags a compressed network at its floor or far below its reference."""

from searchlab import result_quality as q

NEAR = q.chance_margin(0.1)  # 10 classes: within 9 points of chance counts as chance


def test_a_pruned_network_near_chance_is_flagged_with_advice():
    out = q.check("test accuracy", 0.1230, floor=0.1, floor_name="chance", near=NEAR, reference=0.86,
                  reference_name="the unpruned network", fmt=q.percent, advice="fine-tune longer")
    assert out == {"quality_status": 1, "warning": "test accuracy 12.30% is at or near chance (10.00%): fine-tune longer"}


def test_a_network_that_was_never_trained_is_named_as_the_cause():
    out = q.check("test accuracy", 0.11, floor=0.1, floor_name="chance", near=NEAR, reference=0.09,
                  reference_name="the unpruned network", fmt=q.percent, advice="fine-tune longer")
    assert out == {"quality_status": 1, "warning": "test accuracy 11.00% is at or near chance (10.00%), and so is the "
                                                   "unpruned network's (9.00%): it had nothing to keep; train it first"}


def test_half_the_margin_over_the_floor_is_the_line():
    check = lambda after, ref: q.check("acc", after, floor=0.1, floor_name="chance", near=NEAR,  # noqa: E731
                                       reference=ref)["quality_status"]
    assert check(0.40, 0.90) == 1  # kept less than half of 80 points over chance
    assert check(0.55, 0.90) == 0 and check(0.85, 0.90) == 0
    assert check(0.30, 0.35) == 0  # a weak network that stayed weak: nothing was lost
    assert check(0.10, None) == 1 and check(0.18, 0.86) == 1


def test_worse_than_bicubic_is_flagged_without_a_reference():
    out = q.check("PSNR on set5", 28.1, floor=28.4, floor_name="bicubic upscaling", fmt=q.decibels)
    assert out == {"quality_status": 1, "warning": "PSNR on set5 28.10 dB is no better than bicubic upscaling (28.40 dB)"}
    assert q.check("PSNR on set5", 29.0, floor=28.4, floor_name="bicubic upscaling") == {"quality_status": 0}
