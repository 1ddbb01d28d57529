"""Binary channel search (Shen et al., ICCVW 2019): a DEAP genetic algorithm over per-layer widths.

Each candidate is a binary network whose layer widths are base widths times ratios chosen per layer
(see `searchlab.search_spaces.binary_widths`). It is trained briefly on the shared trainer and scored on a
held-out part of the training set. Fitness trades accuracy against computation:

    fitness = accuracy - lam * cost_ratio,   cost_ratio = (FLOPs + BOPs/64) / (FLOPs + BOPs/64 of the 1x binary net)

and, with a hard budget `--max-flops R` (a cost ratio; `--max-flops-ratio` is its old name), every
candidate is repaired to cost_ratio <= R by the GA core's rule. The GA keeps `elite` best individuals, fills the rest of each generation with children of
tournament-selected parents (uniform crossover, uniform-integer mutation; DEAP operators) and never
re-proposes a code already evaluated when it can find a new one. At the end the best candidate is
trained longer, and a Pareto plot of accuracy against FLOPs + BOPs/64 is written to the run directory.

One module a job: `strategy` (the GA), `evaluator` (short training), `finalize` (Pareto plot, the best
trained longer) and `plugin` (registers `binary-ga` and `binary-train`; the space registers itself).
"""

from searchlab.evolvers.binary_channel_search.evaluator import BinaryTrainConfig, BinaryTrainEvaluator
from searchlab.evolvers.binary_channel_search.finalize import pareto_plot
from searchlab.evolvers.binary_channel_search.strategy import BinaryChannelGA, BinaryGAConfig, fitness

__all__ = ["BinaryChannelGA", "BinaryGAConfig", "BinaryTrainConfig", "BinaryTrainEvaluator", "fitness", "pareto_plot"]
