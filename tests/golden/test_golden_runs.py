"""Every built-in strategy's small fixed-seed run asks the recorded candidates and scores them as recorded."""

import pytest

from golden_runs import RUNS, recorded, run


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(RUNS))
def test_golden_run_is_unchanged(name, tmp_path):
    expected = recorded()[name]
    got = run(name, tmp_path)
    assert [t["key"] for t in got] == [t["key"] for t in expected], f"{name}: other candidates than recorded"
    for i, (g, e) in enumerate(zip(got, expected)):
        # exact on this machine; the tolerance only absorbs last-bit differences of other CPUs' kernels
        assert g["objectives"] == pytest.approx(e["objectives"], rel=1e-5, abs=1e-9), f"{name}: trial {i + 1}"
