"""Binary layers, binary VGG-Small / ResNet-18 with per-layer ratios, accounting, presets, the space."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from searchlab.errors import ConfigError, InvalidArchitecture
from searchlab.search_spaces.binary_widths import (
    BinaryConv2d, BinarySpaceConfig, BinaryWidthSpace, account, account_ratios, binarize_activation,
    binarize_weight, build_network, layer_table, preset_ratios, table_cost, widths_for,
)


def _inputs_of_binary_convs(model, x):
    seen = []
    hooks = [m.register_forward_hook(lambda mod, inp, out: seen.append((mod, inp[0], out)))
             for m in model.modules() if isinstance(m, BinaryConv2d)]
    with torch.no_grad():
        model(x)
    for h in hooks:
        h.remove()
    return seen


@pytest.mark.parametrize("net,n", [("vgg-small", 6), ("resnet18", 12)])
@pytest.mark.parametrize("act,values", [("sign", {-1.0, 1.0}), ("dorefa", {0.0, 1.0})])
def test_binary_layers_are_binary_at_inference(net, n, act, values):
    torch.manual_seed(0)
    model = build_network(net, [1.0] * n, width_scale=0.125, act=act)
    for m in model.modules():  # calibrate batch-norm statistics as training would
        if isinstance(m, torch.nn.BatchNorm2d):
            m.momentum = None
    with torch.no_grad():
        model.train()(torch.randn(8, 3, 32, 32))
    seen = _inputs_of_binary_convs(model.eval(), torch.randn(2, 3, 32, 32))
    assert len(seen) == (5 if net == "vgg-small" else 16)
    for mod, x, out in seen:
        xb = binarize_activation(x, act)
        assert set(torch.unique(xb).tolist()) == values  # activations: exactly two values
        wb = binarize_weight(mod.weight)
        for c in range(wb.shape[0]):  # weights: two values per output channel, +alpha and -alpha
            vals = torch.unique(wb[c])
            assert len(vals) <= 2
            alpha = mod.weight[c].abs().mean()
            assert torch.allclose(vals.abs(), alpha.expand_as(vals))
        # the layer equals a 1-bit convolution (+-1 weights) followed by one scale per output channel
        alpha = mod.weight.abs().mean(dim=(1, 2, 3))
        signs = torch.where(mod.weight >= 0, 1.0, -1.0)
        ref = F.conv2d(xb, signs, None, mod.stride, mod.padding) * alpha.view(1, -1, 1, 1)
        assert torch.allclose(out, ref, atol=1e-4)


def test_straight_through_gradients():
    x = torch.tensor([-2.0, -0.5, 0.0, 0.3, 1.5], requires_grad=True)
    binarize_activation(x, "sign").sum().backward()
    assert x.grad.tolist() == [0.0, 1.0, 1.0, 1.0, 0.0]  # clipped identity
    w = torch.randn(4, 3, 3, 3, requires_grad=True)
    (binarize_weight(w) * torch.arange(4.0).view(4, 1, 1, 1)).sum().backward()
    assert torch.allclose(w.grad, torch.arange(4.0).view(4, 1, 1, 1).expand_as(w))  # identity for weights
    # a binary conv's latent weights do learn
    conv = BinaryConv2d(3, 4)
    conv(torch.randn(1, 3, 8, 8)).pow(2).sum().backward()
    assert conv.weight.grad is not None and conv.weight.grad.abs().sum() > 0


def _vgg_macs(widths, classes=10):
    sides = [32, 32, 16, 16, 8, 8]  # input side of each conv
    cin, macs = 3, []
    for w, s in zip(widths, sides):
        macs.append(cin * w * 9 * s * s)
        cin = w
    return macs, widths[-1] * 16 * classes


def test_vgg_small_accounting_matches_hand_count():
    widths = widths_for("vgg-small", [0.5, 2, 1, 1, 1, 0.5])
    assert widths == [64, 256, 256, 256, 512, 256]
    conv_macs, fc = _vgg_macs(widths)
    b = account_ratios("vgg-small", [0.5, 2, 1, 1, 1, 0.5])
    assert b["flops"] == conv_macs[0] + fc
    assert b["bops"] == sum(conv_macs[1:])
    assert b["flops_bops64"] == pytest.approx(b["flops"] + b["bops"] / 64)
    fp = account_ratios("vgg-small", [1.0] * 6, binary=False)
    assert fp["flops"] == sum(_vgg_macs(VGG := [128, 128, 256, 256, 512, 512])[0]) + _vgg_macs(VGG)[1]
    assert fp["flops"] == 607_600_640 and fp["bops"] == 0  # the usual ~0.61 GMAC of VGG-Small
    # size: binary conv weights 1 bit + a 32-bit scale per output channel, everything else 32 bits
    with torch.device("meta"):
        model = build_network("vgg-small", [1.0] * 6)
    binw = sum(m.weight.numel() for m in model.modules() if isinstance(m, BinaryConv2d))
    chans = sum(m.weight.shape[0] for m in model.modules() if isinstance(m, BinaryConv2d))
    total = sum(p.numel() for p in model.parameters())
    acc = account(model)
    assert acc["params"] == total
    assert acc["size_bits"] == binw + 32 * chans + 32 * (total - binw)


def test_resnet18_widths_and_accounting():
    ratios = [1, 2, 1, 0.5] + [4, 1, 1, 1, 1, 1, 1, 0.5]
    w = widths_for("resnet18", ratios)
    assert w[:4] == [64, 256, 256, 256] and w[4:] == [256, 64, 128, 128, 256, 256, 512, 256]
    model = build_network("resnet18", ratios, width_scale=0.25)
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 10)
    binary, fp = account_ratios("resnet18", [1.0] * 12), account_ratios("resnet18", [1.0] * 12, binary=False)
    assert binary["flops"] + binary["bops"] == fp["flops"]  # same network, ops split by precision
    assert binary["bops"] > 60 * binary["flops"]  # nearly all work is binary
    assert binary["flops_bops64"] < fp["flops"] / 20


def test_presets():
    assert preset_ratios("vgg-small", "vgg-auto-a") == ([0.5, 2, 1, 1, 1, 0.5], True)
    assert preset_ratios("vgg-small", "vgg-auto-b") == ([2, 2, 4, 2, 4, 0.5], True)
    assert preset_ratios("resnet18", "full-precision") == ([1.0] * 12, False)
    assert preset_ratios("resnet18", "binary-1x") == ([1.0] * 12, True)
    with pytest.raises(ConfigError, match="vgg-small"):
        preset_ratios("resnet18", "vgg-auto-a")
    with pytest.raises(ConfigError, match="unknown preset"):
        preset_ratios("vgg-small", "nope")


def test_space_genomes_and_errors():
    space = BinaryWidthSpace(BinarySpaceConfig(net="vgg-small"))
    assert space.one_x() == [1] * 6 and space.cost_ratio(space.one_x()) == pytest.approx(1.0)
    assert space.genome_of([0.5, 2, 1, 1, 1, 0.5]) == [0, 2, 1, 1, 1, 0]
    assert space.key([0, 2, 1, 1, 1, 0]) == "vgg-small:0.5,2,1,1,1,0.5"
    with pytest.raises(InvalidArchitecture, match="takes 6"):
        space.validate([1, 1, 1])
    with pytest.raises(InvalidArchitecture, match="outside"):
        space.validate([1, 1, 1, 1, 1, 5])
    with pytest.raises(InvalidArchitecture, match="not allowed"):
        space.genome_of([0.7, 1, 1, 1, 1, 1])
    with pytest.raises(InvalidArchitecture, match="takes 6"):
        space.genome_of([1, 1])
    with pytest.raises(ConfigError, match="unknown network"):
        BinarySpaceConfig(net="alexnet")
    with pytest.raises(ConfigError, match="ratios"):
        BinarySpaceConfig(ratios=[1.0, -2.0])
    rng = np.random.default_rng(3)
    for _ in range(20):
        g = space.sample(rng)
        assert space.validate(g) == g
        child = space.mutate(g, rng)
        assert space.validate(child) == child and child != g
    a = [space.sample(np.random.default_rng(7)) for _ in range(2)]
    assert a[0] == a[1]  # all randomness from the generator passed in
    # cost grows with every layer's ratio; the cheapest genome is all-smallest
    base = space.cost_ratio([1] * 6)
    for i in range(6):
        g = [1] * 6
        g[i] = 2
        assert space.cost_ratio(g) > base
    assert space.cost_ratio(space.min_genome()) < base
    d = space.describe([4] * 6)
    assert d["widths"] == [512, 512, 1024, 1024, 2048, 2048] and d["cost_ratio"] > 10


def test_binary_network_learns_a_batch():
    torch.manual_seed(0)
    model = build_network("vgg-small", [1.0] * 6, width_scale=0.0625)
    x, y = torch.randn(10, 3, 32, 32), torch.arange(10)
    opt = torch.optim.Adam(model.parameters(), lr=0.02)
    first = None
    for _ in range(15):
        loss = F.cross_entropy(model(x), y)
        first = first if first is not None else loss.item()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.5 * first


@pytest.mark.parametrize("net", ["vgg-small", "resnet18"])
def test_closed_form_cost_matches_counted_and_flop_counter(net):
    from torch.utils.flop_counter import FlopCounterMode

    space = BinaryWidthSpace(BinarySpaceConfig(net=net, width_scale=0.25))
    rng = np.random.default_rng(11)
    for _ in range(3):
        ratios = space.ratios_of(space.sample(rng))
        for binary in (True, False):
            with torch.device("meta"):
                model = build_network(net, ratios, binary=binary, width_scale=0.25)
            counted = account(model)
            closed = table_cost(layer_table(net, widths_for(net, ratios, 0.25)), binary)
            assert closed == counted
            with FlopCounterMode(display=False) as fc:
                model(torch.empty(1, 3, 32, 32, device="meta"))
            assert fc.get_total_flops() == 2 * (counted["flops"] + counted["bops"])
