"""The `binary` space: one ratio index per layer, its configuration, validity (the hard budget) and cost ratio."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from torch import nn

from searchlab.errors import ConfigError, InvalidArchitecture
from searchlab.options import opt
from searchlab.search_spaces.binary_widths.accounting import layer_table, table_cost
from searchlab.search_spaces.binary_widths.layers import ACTIVATIONS
from searchlab.search_spaces.binary_widths.networks import DEFAULT_RATIOS, NETS, build_network, num_ratios, widths_for


def _parse_floats(text: str) -> list[float]:
    return [float(t) for t in str(text).replace(",", " ").split()]


@dataclass(frozen=True)
class BinarySpaceConfig:
    """binary network widths"""

    net: str = opt("vgg-small", help="network whose per-layer widths are searched", choices=list(NETS))
    ratios: list[float] = opt(list(DEFAULT_RATIOS), help="allowed expansion ratios per layer")
    width_scale: float = opt(1.0, help="multiplies every base width (e.g. 0.25 for quick CPU runs)")
    act: str = opt("sign", help="binary activation: sign {-1,+1} or 1-bit DoReFa {0,1}", choices=list(ACTIVATIONS))
    num_classes: int = opt(10, help="classes of the classifier head (accounting; training uses the data's)")
    image_size: int = opt(32, help="input side in pixels (accounting)")

    def __post_init__(self) -> None:
        if self.net not in NETS:
            raise ConfigError(f"unknown network {self.net!r}; use one of {', '.join(NETS)}")
        if not self.ratios:
            raise ConfigError("--ratios needs at least one value, e.g. --ratios 0.5 1 2 3 4")
        if any(not math.isfinite(r) or r <= 0 for r in self.ratios):
            raise ConfigError(f"--ratios must be positive numbers, got {list(self.ratios)}")
        if len(set(self.ratios)) != len(self.ratios):
            raise ConfigError(f"--ratios has repeated values: {list(self.ratios)}")
        if not 0 < self.width_scale <= 16:
            raise ConfigError(f"--width-scale must be in (0, 16], got {self.width_scale}")
        if self.act not in ACTIVATIONS:
            raise ConfigError(f"--act must be one of {', '.join(ACTIVATIONS)}, got {self.act!r}")
        if self.num_classes < 1 or self.image_size < 8:
            raise ConfigError("--num-classes must be >= 1 and --image-size >= 8")


class BinaryWidthSpace:
    """Genome: one index into `ratios` per searchable layer (6 for VGG-Small, 12 for ResNet-18)."""

    def __init__(self, config: BinarySpaceConfig | None = None) -> None:
        self.config = config or BinarySpaceConfig()
        self.name = "binary"
        self.net = self.config.net
        self.ratios = sorted(float(r) for r in self.config.ratios)
        self.length = num_ratios(self.net)
        self._cache: dict[str, dict] = {}

    # genome <-> ratios
    def ratios_of(self, genome: list[int]) -> list[float]:
        return [self.ratios[i] for i in self.validate(genome)]

    def genome_of(self, ratios: list[float]) -> list[int]:
        """Indices of `ratios`; InvalidArchitecture when the length or a value is not allowed."""
        if not isinstance(ratios, (list, tuple)) or len(ratios) != self.length:
            raise InvalidArchitecture(f"{self.net} takes {self.length} ratios, got "
                                      f"{len(ratios) if isinstance(ratios, (list, tuple)) else ratios!r}")
        out = []
        for r in ratios:
            match = [i for i, v in enumerate(self.ratios) if abs(v - float(r)) < 1e-9]
            if not match:
                raise InvalidArchitecture(f"ratio {float(r):g} is not allowed; allowed ratios: "
                                          f"{', '.join(f'{v:g}' for v in self.ratios)}")
            out.append(match[0])
        return out

    def one_x(self) -> list[int]:
        """The genome of the plain 1x network (ratio 1 everywhere, or the nearest allowed ratio)."""
        nearest = int(np.argmin([abs(math.log(r)) for r in self.ratios]))
        return [nearest] * self.length

    # protocol
    def sample(self, rng: np.random.Generator) -> list[int]:
        return [int(i) for i in rng.integers(0, len(self.ratios), size=self.length)]

    def mutate(self, genome: list[int], rng: np.random.Generator) -> list[int]:
        """Reset one layer's ratio (plus each other layer with probability 1/L) to another value."""
        child = list(self.validate(genome))
        if len(self.ratios) == 1:
            return child
        forced = int(rng.integers(self.length))
        for i in range(self.length):
            if i == forced or rng.random() < 1.0 / self.length:
                choices = [j for j in range(len(self.ratios)) if j != child[i]]
                child[i] = int(choices[int(rng.integers(len(choices)))])
        return child

    def validate(self, genome: list[int]) -> list[int]:
        if not isinstance(genome, (list, tuple)):
            raise InvalidArchitecture(f"a binary genome is a list of {self.length} ratio indices, got {genome!r}")
        if len(genome) != self.length:
            raise InvalidArchitecture(f"{self.net} takes {self.length} ratio indices, got {len(genome)}")
        out = []
        for g in genome:
            if isinstance(g, bool) or not isinstance(g, (int, np.integer)) or not 0 <= int(g) < len(self.ratios):
                raise InvalidArchitecture(f"ratio index {g!r} is outside 0..{len(self.ratios) - 1} "
                                          f"(ratios {', '.join(f'{v:g}' for v in self.ratios)})")
            out.append(int(g))
        return out

    def key(self, genome: list[int]) -> str:
        return f"{self.net}:" + ",".join(f"{r:g}" for r in self.ratios_of(genome))

    def build(self, genome: list[int], *, num_classes: int | None = None, binary: bool = True) -> nn.Module:
        return build_network(self.net, self.ratios_of(genome), binary=binary,
                             num_classes=num_classes or self.config.num_classes, act=self.config.act,
                             width_scale=self.config.width_scale, image_size=self.config.image_size)

    def cost(self, ratios: list[float], binary: bool = True) -> dict[str, float]:
        """Accounting of a ratio list (cached)."""
        k = f"{binary}:{ratios}"
        if k not in self._cache:
            widths = widths_for(self.net, ratios, self.config.width_scale)
            rows = layer_table(self.net, widths, self.config.image_size, self.config.num_classes)
            self._cache[k] = table_cost(rows, binary)
        return self._cache[k]

    def base_cost(self) -> float:
        """FLOPs + BOPs/64 of the 1x binary network, the unit of `--max-flops`."""
        return self.cost([1.0] * self.length)["flops_bops64"]

    def cost_ratio(self, genome: list[int]) -> float:
        return self.cost(self.ratios_of(genome))["flops_bops64"] / self.base_cost()

    def describe(self, genome: list[int]) -> dict:
        ratios = self.ratios_of(genome)
        info = dict(self.cost(ratios))
        info["cost_ratio"] = info["flops_bops64"] / self.base_cost()
        return {"net": self.net, "ratios": ratios,
                "widths": widths_for(self.net, ratios, self.config.width_scale), **info}

    def min_genome(self) -> list[int]:
        """The cheapest genome: the smallest ratio everywhere (cost grows with every ratio)."""
        return [0] * self.length
