"""The block genes and their closed-form cost: every conv of a genome as a ConvSpec (k, a -> b channels,
groups, resolution), parameters and mult-adds (convolutions only, for a 1280x720 output as papers do)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from searchlab.errors import InvalidArchitecture


BLOCK_TYPES = ("SRDB", "GRDB", "CRDB")


CONVS = (4, 6, 8)


GROWTHS = (8, 16, 24, 32)


OUTS = (16, 24, 32, 48, 64)


GENES = ("used", "type", "convs", "growth", "out")


SCALES = (2, 3, 4)


PAPER_OUTPUT = (720, 1280)  # mult-adds are reported for a 1280x720 output image


@dataclass(frozen=True)
class ConvSpec:
    """One convolution: in/out channels, kernel, groups, and its resolution relative to the LR input."""

    cin: int
    cout: int
    k: int
    groups: int = 1
    area: float = 1.0  # 0.25 at half resolution

    @property
    def params(self) -> int:
        return self.k * self.k * self.cin // self.groups * self.cout + self.cout

    @property
    def macs_per_pixel(self) -> float:
        return self.k * self.k * self.cin // self.groups * self.cout * self.area


def used_blocks(genome: dict) -> list[dict]:
    return [b for b in genome["blocks"] if b["used"]]


def block_label(block: dict) -> str:
    return f"{block['type']}-{block['convs']}x{block['growth']}-{block['out']}"


def block_specs(block: dict, cin: int, groups: int) -> list[ConvSpec]:
    """The convolutions of one block with `cin` input channels, in forward order."""
    kind, n, g, out = block["type"], int(block["convs"]), int(block["growth"]), int(block["out"])
    specs: list[ConvSpec] = []
    for j in range(n):
        width = cin + j * g
        if kind == "SRDB":
            specs += [ConvSpec(width, g, 1), ConvSpec(g, g, 3)]
        elif kind == "GRDB":
            specs.append(ConvSpec(width, g, 3, groups))
        elif kind == "CRDB":
            specs.append(ConvSpec(width, g, 3, 1, 0.25))
        elif kind == "RDB":
            specs.append(ConvSpec(width, g, 3))
        else:
            raise InvalidArchitecture(f"unknown block type {kind!r}; use one of {', '.join(BLOCK_TYPES)}")
    if kind == "CRDB":
        specs.append(ConvSpec(cin + n * g, 4 * out, 1, 1, 0.25))
    else:
        specs.append(ConvSpec(cin + n * g, out, 1))
    return specs


def conv_specs(genome: dict, *, g0: int, scale: int, groups: int = 4, colors: int = 3) -> list[ConvSpec]:
    """Every convolution of the network, backbone included."""
    specs = [ConvSpec(colors, g0, 3), ConvSpec(g0, g0, 3)]
    cin, outs = g0, 0
    for block in used_blocks(genome):
        specs += block_specs(block, cin, groups)
        cin = int(block["out"])
        outs += cin
    specs += [ConvSpec(outs, g0, 1), ConvSpec(g0, g0, 3), ConvSpec(g0, colors * scale * scale, 3)]
    return specs


def count_params(genome: dict, **kw: Any) -> int:
    return sum(s.params for s in conv_specs(genome, **kw))


def count_mult_adds(genome: dict, *, scale: int, output: tuple[int, int] = PAPER_OUTPUT, **kw: Any) -> float:
    """Convolution mult-adds to produce an `output` (H, W) image, i.e. from an (H/s, W/s) input."""
    per_pixel = sum(s.macs_per_pixel for s in conv_specs(genome, scale=scale, **kw))
    return per_pixel * output[0] * output[1] / (scale * scale)
