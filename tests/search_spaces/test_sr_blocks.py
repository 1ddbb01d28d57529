"""SR block space: closed-form params/mult-adds vs torch, shapes, constraints, genome identity."""

import numpy as np
import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from searchlab.search_spaces.sr_blocks import (BLOCK_TYPES, SRBlockSpace, baseline_rdn, block_specs, mut_blocks,
                                     parse_range, uniform_chain, used_blocks)
from searchlab.errors import ConfigError, InvalidArchitecture
from searchlab.training.imresize import torch_imresize


def _conv_macs(net, x):
    with FlopCounterMode(display=False) as counter:
        net(x)
    counts = counter.get_flop_counts()["Global"]
    return sum(v for k, v in counts.items() if "convolution" in str(k)) / 2


def _genome(kinds, convs=4, growth=8, outs=(16, 24, 16), slots=6):
    blocks = [{"used": 1, "type": k, "convs": convs, "growth": growth, "out": o} for k, o in zip(kinds, outs)]
    blocks += [{"used": 0, "type": "SRDB", "convs": 4, "growth": 8, "out": 16}] * (slots - len(blocks))
    return {"blocks": blocks}


@pytest.mark.parametrize("kind", BLOCK_TYPES + ("RDB",))
@pytest.mark.parametrize("scale", [2, 3, 4])
def test_closed_form_matches_torch_params_and_flop_counter(kind, scale):
    space = SRBlockSpace(scale=scale, g0=16, slots=6, min_blocks=1, params="")
    genome = _genome([kind, kind, "SRDB"], convs=6, growth=16, outs=(16, 24, 16))
    net = space.build(genome)
    assert sum(p.numel() for p in net.parameters()) == space.params(genome)
    lr_h, lr_w = 8, 12
    x = torch.zeros(1, 3, lr_h, lr_w)
    assert space.mult_adds(genome, output=(lr_h * scale, lr_w * scale)) == pytest.approx(_conv_macs(net, x))
    assert net(x).shape == (1, 3, lr_h * scale, lr_w * scale)


def test_block_closed_forms_by_hand():
    # SRDB, c=16, 4 convs, g=8, o=16: per layer 1x1 (16+8j)->8 and 3x3 8->8, fusion 1x1 48->16.
    specs = block_specs({"type": "SRDB", "convs": 4, "growth": 8, "out": 16}, 16, 4)
    expected = sum((16 + 8 * j) * 8 + 8 + 9 * 8 * 8 + 8 for j in range(4)) + 48 * 16 + 16
    assert sum(s.params for s in specs) == expected
    # GRDB with 4 groups: 3x3 grouped convs have a quarter of the weights.
    specs = block_specs({"type": "GRDB", "convs": 4, "growth": 8, "out": 16}, 16, 4)
    assert sum(s.params for s in specs) == sum(9 * (16 + 8 * j) // 4 * 8 + 8 for j in range(4)) + 48 * 16 + 16
    # CRDB runs its convs at half resolution: a quarter of the mult-adds per LR pixel.
    specs = block_specs({"type": "CRDB", "convs": 4, "growth": 8, "out": 16}, 16, 4)
    assert specs[-1].cout == 64 and all(s.area == 0.25 for s in specs)


def test_paper_sized_network_counts_for_720p_output():
    space = SRBlockSpace(scale=2, g0=32, params="300k:330k")
    genome = space.sample(np.random.default_rng(3))
    params, macs = space.params(genome), space.mult_adds(genome)
    assert 300_000 <= params <= 330_000
    # every weight of a full-resolution conv does one mult-add per LR pixel (640x360 for a 1280x720 output);
    # CRDB and biases make the count a bit lower than params x pixels
    assert 0.15 * params * 640 * 360 < macs <= params * 640 * 360


def test_crdb_handles_odd_sizes_and_bicubic_skip_starts_at_bicubic():
    space = SRBlockSpace(scale=3, g0=16, slots=6, min_blocks=1, params="")
    net = space.build(_genome(["CRDB", "GRDB"], outs=(16, 16)))
    x = torch.rand(2, 3, 13, 9) * 2 - 1
    with torch.no_grad():
        y = net(x)
    assert y.shape == (2, 3, 39, 27)
    assert torch.allclose(y, torch_imresize(x, 3.0, antialias=False), atol=1e-5)


def test_sample_and_mutate_respect_the_parameter_range():
    space = SRBlockSpace(scale=2, g0=16, params="30k:45k", min_blocks=3)
    rng = np.random.default_rng(0)
    genome = space.sample(rng)
    for _ in range(15):
        assert 30_000 <= space.params(genome) <= 45_000
        assert len(used_blocks(genome)) >= 3
        child = space.mutate(genome, rng)
        assert space.key(child) != space.key(genome) or child != genome
        genome = child
    assert space.validate(genome) == genome


def test_mult_add_cap_is_enforced():
    space = SRBlockSpace(scale=2, g0=16, params="20k:60k", max_mult_adds=6e9)
    genome = space.sample(np.random.default_rng(1))
    assert space.mult_adds(genome) <= 6e9


def test_key_ignores_unused_slots_and_validate_rejects_bad_genomes():
    space = SRBlockSpace(scale=2, g0=16, slots=6, min_blocks=1, params="")
    a = _genome(["SRDB", "GRDB"], outs=(16, 24))
    b = {"blocks": [dict(s) for s in a["blocks"]]}
    b["blocks"][5] = {"used": 0, "type": "CRDB", "convs": 8, "growth": 32, "out": 64}
    assert space.key(a) == space.key(b)
    b["blocks"][5]["used"] = 1
    assert space.key(a) != space.key(b)
    with pytest.raises(InvalidArchitecture):
        space.validate({"blocks": a["blocks"][:5]})
    bad = {"blocks": [dict(s) for s in a["blocks"]]}
    bad["blocks"][0]["growth"] = 10
    with pytest.raises(InvalidArchitecture, match="growth"):
        space.validate(bad)
    with pytest.raises(InvalidArchitecture):
        space.validate({"blocks": [dict(s, used=0) for s in a["blocks"]]})


def test_bad_configuration_is_a_one_line_config_error():
    with pytest.raises(ConfigError, match="scale"):
        SRBlockSpace(scale=5)
    with pytest.raises(ConfigError, match="no network meets"):
        SRBlockSpace(scale=2, g0=32, params="1k:2k")
    with pytest.raises(ConfigError, match="no network meets"):
        SRBlockSpace(scale=2, g0=16, slots=4, params="50M:60M")
    with pytest.raises(ConfigError):
        parse_range("300k")
    assert parse_range("300k:330k") == (300_000, 330_000)
    assert parse_range("1.5M:") == (1_500_000, float("inf"))


def test_mutation_follows_type_probabilities():
    rng = np.random.default_rng(0)
    genome = uniform_chain("GRDB", 10, convs=4, growth=8, out=16, slots=10)
    probs = np.array([0.9, 0.05, 0.05])  # SRDB strongly favoured
    picked = []
    for _ in range(200):
        child = mut_blocks(genome, rng, rate=0.3, type_probs=probs)
        picked += [b["type"] for b in child["blocks"] if b["type"] != "GRDB"]
    assert picked.count("SRDB") > 0.75 * len(picked)


def test_rdn_baseline_matches_a_parameter_target():
    space = SRBlockSpace(scale=2, g0=16, params="")
    genome = baseline_rdn(space, 35_000)
    assert all(b["type"] == "RDB" for b in used_blocks(genome))
    assert abs(space.params(genome) - 35_000) < 0.15 * 35_000
