"""The one rule that flags a compressed network at its floor or far below its reference."""

from searchlab import result_quality as q


def test_a_pruned_network_near_chance_is_flagged_with_advice():
    out = q.check("test accuracy", 0.1230, floor=0.1, floor_name="chance", reference=0.86,
                  reference_name="the unpruned network", fmt=q.percent, advice="fine-tune longer")
    assert out["quality_status"] == 1  # the 12.30% LeNet-5 run, 11.56x fewer FLOPs
    assert out["warning"] == ("test accuracy fell from 86.00% (the unpruned network) to 12.30%, most of the way to "
                              "chance (10.00%): fine-tune longer")


def test_half_the_margin_over_the_floor_is_the_line():
    check = lambda after, ref: q.check("acc", after, floor=0.1, floor_name="chance", reference=ref)["quality_status"]  # noqa: E731
    assert check(0.40, 0.90) == 1
    assert check(0.85, 0.90) == 0
    assert check(0.13, 0.14) == 0  # a network never far above chance has little to lose
    assert check(0.10, None) == 1 and check(0.09, 0.14) == 1  # at or below the floor: always flagged


def test_worse_than_bicubic_is_flagged_without_a_reference():
    out = q.check("PSNR on set5", 28.1, floor=28.4, floor_name="bicubic upscaling", fmt=q.decibels)
    assert out == {"quality_status": 1, "warning": "PSNR on set5 28.10 dB is no better than bicubic upscaling (28.40 dB)"}
    assert q.check("PSNR on set5", 29.0, floor=28.4, floor_name="bicubic upscaling") == {"quality_status": 0}
