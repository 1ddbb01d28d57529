"""Dependency analysis, masked evaluation and physical pruning of filter masks."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from searchlab.search_spaces.classifiers import build_classifier
from searchlab.search_spaces.filter_masks import (FilterMaskSpace, MaskedNetwork, analyse, bits_of, cost, genome_of,
                                        measured_flops, prune_model)
from searchlab.errors import ConfigError, InvalidArchitecture


class CatDepthwise(nn.Module):
    """Two branches joined by a concat, a depthwise conv on the concat, then a 1x1 conv and a linear."""

    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Conv2d(3, 4, 3, padding=1)
        self.b = nn.Conv2d(3, 5, 3, padding=1)
        self.bn = nn.BatchNorm2d(9)
        self.dw = nn.Conv2d(9, 9, 3, padding=1, groups=9)
        self.pw = nn.Conv2d(9, 6, 1)
        self.fc = nn.Linear(6 * 4 * 4, 3)

    def forward(self, x):
        x = F.relu(self.bn(torch.cat([self.a(x), self.b(x)], 1)))
        x = F.max_pool2d(F.relu(self.pw(self.dw(x))), 2)
        return self.fc(x.flatten(1))


def _randomise_bn(model: nn.Module, seed: int = 0) -> nn.Module:
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.weight.data.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.bias.data.copy_(torch.randn(m.num_features, generator=g) * 0.1)
    return model.eval()


def _model(name: str) -> tuple[nn.Module, torch.Tensor]:
    torch.manual_seed(0)
    if name == "lenet5":
        return build_classifier("lenet5").eval(), torch.randn(4, 1, 28, 28)
    if name == "resnet20":
        return _randomise_bn(build_classifier("resnet20")), torch.randn(2, 3, 32, 32)
    if name == "resnet20b":
        return _randomise_bn(build_classifier("resnet20", shortcut="B")), torch.randn(2, 3, 32, 32)
    if name == "vgg":
        return _randomise_bn(build_classifier("vgg_small", width=0.125)), torch.randn(2, 3, 32, 32)
    return _randomise_bn(CatDepthwise()), torch.randn(4, 3, 8, 8)


def test_lenet_has_one_bit_per_filter_of_both_convs():
    model, x = _model("lenet5")
    plan = analyse(model, x[:1])
    assert plan.n_bits == 6 + 16
    assert plan.layers == ["conv1", "conv2"]
    assert cost(model, plan, "1" * 22)["params"] == sum(p.numel() for p in model.parameters())
    assert cost(model, plan, "1" * 22)["flops"] == measured_flops(model, x[:1])


def test_resnet_option_a_couples_the_residual_stream():
    model, x = _model("resnet20")
    plan = analyse(model, x[:1], layers=[n for n, m in model.named_modules() if isinstance(m, nn.Conv2d)])
    # Each block's first conv is free (16*3 + 32*3 + 64*3 = 336 bits). The residual stream is one
    # coupled set per stage; the zero-padded channels of stages 2 and 3 freeze their partners, so
    # only the 16 stage-1 channels (which pass through the padding into later stages) stay prunable.
    free = 16 * 3 + 32 * 3 + 64 * 3
    assert plan.n_bits == free + 16
    stem_group = [g for g in plan.groups if ("conv1", 0) in g][0]
    assert ("layer1.0.conv2", 0) in stem_group and ("layer1.2.conv2", 0) in stem_group
    assert ("layer2.0.conv2", 8) in stem_group and ("layer3.2.conv2", 24) in stem_group
    # by default the stage-3 stream reaches the classifier unchanged, so it is still selectable;
    # but any unselected conv in a coupled group keeps the whole group
    default = analyse(model, x[:1], layers=["layer1.0.conv1", "conv1"])
    assert default.n_bits == 16


def test_resnet_option_b_couples_shortcut_convs():
    model, x = _model("resnet20b")
    plan = analyse(model, x[:1])
    group = [g for g in plan.groups if ("layer2.0.shortcut.0", 3) in g][0]
    assert ("layer2.0.conv2", 3) in group and ("layer2.2.conv2", 3) in group
    assert plan.n_bits == 16 * 3 + 32 * 3 + 64 * 3 + 16 + 32 + 64


@pytest.mark.parametrize("name", ["lenet5", "resnet20", "resnet20b", "vgg", "catdw"])
def test_pruned_model_equals_masked_model(name):
    model, x = _model(name)
    convs = [n for n, m in model.named_modules() if isinstance(m, nn.Conv2d) and m.groups == 1]
    plan = analyse(model, x[:1], layers=convs)
    space = FilterMaskSpace(model, plan)
    modes = ["zero"] if name == "catdw" else ["zero", "slice"]
    rng = np.random.default_rng(1)
    for _ in range(2):
        genome = space.sample(rng)
        pruned = prune_model(model, plan, genome)
        for mode in modes:
            masked = MaskedNetwork(model, plan, mode=mode)
            with torch.no_grad():
                want = masked(x, genome)
                got = pruned.eval()(x)
            torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-4)
        c = cost(model, plan, genome)
        assert c["params"] == sum(p.numel() for p in pruned.parameters())
        assert c["flops"] == pytest.approx(measured_flops(pruned, x[:1]))
        if "0" in genome:
            assert c["flops"] < measured_flops(model, x[:1])
    # the all-ones mask is the original network
    torch.testing.assert_close(masked(x, "1" * plan.n_bits), model(x))
    assert MaskedNetwork(model, plan).mode == ("zero" if name == "catdw" else "slice")


def test_masking_changes_the_output_and_removes_filters():
    model, x = _model("lenet5")
    plan = analyse(model, x[:1])
    genome = "101010" + "1" * 8 + "0" * 8
    pruned = prune_model(model, plan, genome)
    assert pruned.conv1.out_channels == 3 and pruned.conv2.in_channels == 3
    assert pruned.conv2.out_channels == 8 and pruned.fc1.in_features == 8 * 25
    assert not torch.allclose(MaskedNetwork(model, plan)(x, genome), model(x))
    assert model.conv1.out_channels == 6  # the original is untouched


class ChannelSlice(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Conv2d(3, 8, 3)
        self.b = nn.Conv2d(4, 4, 3)

    def forward(self, x):
        return self.b(self.a(x)[:, :4])


def test_a_channel_slice_freezes_what_it_reads():
    model = ChannelSlice().eval()
    plan = analyse(model, torch.randn(1, 3, 9, 9), layers=["a", "b"])
    assert plan.layers == [] and plan.n_bits == 0


def test_catdepthwise_groups_follow_concat_and_depthwise():
    model, x = _model("catdw")
    plan = analyse(model, x[:1])
    assert plan.n_bits == 4 + 5 + 6 - 0  # a, b (through cat + depthwise), pw
    pruned = prune_model(model, plan, "0111" + "10111" + "111111")
    assert pruned.dw.groups == 7 and pruned.bn.num_features == 7 and pruned.pw.in_channels == 7


def test_space_operators_keep_one_filter_per_layer():
    model, x = _model("lenet5")
    space = FilterMaskSpace(model, analyse(model, x[:1]))
    rng = np.random.default_rng(0)
    with pytest.raises(InvalidArchitecture):
        space.validate("000000" + "1" * 16)
    with pytest.raises(InvalidArchitecture):
        space.validate("1" * 5)
    repaired = space.repair(bits_of("000000" + "0" * 16), rng)
    assert repaired[:6].sum() == 1 and repaired[6:].sum() == 1
    g = space.sample(rng)
    for _ in range(50):
        g2 = space.mutate(g, rng)
        assert space.validate(g2) == g2 and g2 != g
        g = g2
    d = space.describe("1" * 22)
    assert d["flops_ratio"] == 1.0 and d["kept_per_layer"]["conv2"] == [16, 16]
    assert genome_of(bits_of("0110")) == "0110"


def test_bad_layer_name_and_no_prunable_layers():
    model, x = _model("lenet5")
    with pytest.raises(ConfigError, match="not a convolution"):
        analyse(model, x[:1], layers=["fc1"])
    with pytest.raises(ConfigError, match="not a convolution"):
        analyse(model, x[:1], layers=["nope"])
    model, x = _model("resnet20")
    with pytest.raises(ConfigError, match="no prunable filters"):
        FilterMaskSpace(model, analyse(model, x[:1], layers=["conv1"]))


def test_mask_free_prefix_is_cached_once_and_refreshed_when_the_input_changes():
    model, x = _model("lenet5")
    plan = analyse(model, x[:1])
    masked = MaskedNetwork(model, plan)
    assert list(masked._frontier) and len(masked._region) >= 3  # input, conv1, relu, pool, ...
    genome = "011011" + "1" * 10 + "0" * 6
    first = masked(x, genome)
    assert len(masked._cache) == 1
    torch.testing.assert_close(masked(x, genome), first)
    torch.testing.assert_close(masked(x, genome, cache=False), first)
    x.mul_(-1.0)  # an in-place change must not be answered from the cache
    torch.testing.assert_close(masked(x, genome), prune_model(model, plan, genome)(x), rtol=1e-5, atol=1e-5)


class ThreeConvs(nn.Module):
    """conv_b reads conv_a's 4 filters (4 bits), conv_c reads conv_b's 5 as well (9 bits); in-place ReLUs."""

    def __init__(self) -> None:
        super().__init__()
        self.conv_a, self.bn_a = nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4)
        self.conv_b, self.bn_b = nn.Conv2d(4, 5, 3, padding=1), nn.BatchNorm2d(5)
        self.conv_c = nn.Conv2d(5, 6, 3, padding=1)
        self.fc = nn.Linear(6 * 4 * 4, 3)
        self.act = nn.ReLU(inplace=True)

    def forward(self, x):
        x = self.act(self.bn_a(self.conv_a(x)))
        x = F.max_pool2d(self.act(self.bn_b(self.conv_b(x))), 2)
        x = F.max_pool2d(F.relu(self.conv_c(x)), 2)
        return self.fc(x.flatten(1))


@pytest.mark.parametrize("mode", ["slice", "zero"])
def test_layers_depending_on_few_bits_are_run_once_per_setting_of_those_bits(mode):
    torch.manual_seed(0)
    model = _randomise_bn(ThreeConvs()).eval()
    x = torch.randn(6, 3, 16, 16)
    plan = analyse(model, x[:1])
    assert plan.n_bits == 15  # one bit per filter of conv_a, conv_b, conv_c
    masked = MaskedNetwork(model, plan, mode=mode)
    assert masked._region["conv_b"] == (0, 1, 2, 3) and "conv_c" not in masked._region
    rng = np.random.default_rng(0)
    tails = [genome_of(rng.random(11) < 0.6) for _ in range(4)]
    genomes = [a + t for a in ("1011", "0110") for t in tails] + ["1111" + tails[0]]
    for g in genomes + genomes:  # the second round is answered from the memo
        g = FilterMaskSpace(model, plan).validate(g)
        torch.testing.assert_close(masked(x, g), prune_model(model, plan, g)(x), rtol=1e-5, atol=1e-5)
    assert masked.memo_passes == 3  # one per setting of conv_a's bits
    # without the memo (only the bit-free conv_a block kept), and with a store too small to keep anything
    for other in (MaskedNetwork(model, plan, mode=mode, memo_bits=0),
                  MaskedNetwork(model, plan, mode=mode, memo_mib=1e-6)):
        for g in genomes:
            torch.testing.assert_close(other(x, g), masked(x, g), rtol=1e-5, atol=1e-5)
    assert other.memo_passes == len(genomes) and not other._memo
