"""Evolutionary filter pruning (Wang et al., "Towards Evolutionary Compression", KDD 2018).

Each candidate is a bit string, one bit per prunable filter group of a trained CNN (1 = keep); a DEAP
genetic algorithm evolves a population of them by fitness, and the fittest mask is cut out of the
network physically and fine-tuned with the shared trainer.

Fitness of a mask m (higher is better), on a held-out subset of the training data:

    fitness(m) = (1 - lam) * perf(m) + lam * removed(m)

perf is the masked network's accuracy (`--fitness-metric accuracy`, the default) or exp(-cross-entropy)
(`loss`), both in [0, 1]; removed is the fraction of prunable filters removed (`--size-measure filters`,
the default) or the fraction of FLOPs removed (`flops`). lam in [0, 1) weighs size against accuracy
(default 0.3). Fitness is never negative, so roulette selection applies directly. With a size target
(`--max-flops` / `--max-params`) every mask is repaired to the budget by the GA core's rule and the
fitness is perf alone, scored after re-estimating BatchNorm statistics (`--bn-images`).

One module a job: `strategy` (the GA), `evaluator` (masked fitness), `finalize` (the pruned model,
report and plot) and `plugin` (registers `prune-ga` and `masked-fitness`). The space `prune` itself,
its configuration, model set-up and the pruned/ folder's format live in
searchlab.search_spaces.filter_masks.
"""

from searchlab.evolvers.filter_pruning.evaluator import MaskedFitness
from searchlab.evolvers.filter_pruning.strategy import PruneGA, PruneGAConfig
from searchlab.search_spaces.filter_masks.config import PruneConfig
from searchlab.search_spaces.filter_masks.pruned import ARCH_FORMAT, inspect_pruned, load_pruned, read_architecture
from searchlab.search_spaces.filter_masks.setup import make_space

__all__ = ["ARCH_FORMAT", "MaskedFitness", "PruneConfig", "PruneGA", "PruneGAConfig", "inspect_pruned", "load_pruned",
           "make_space", "read_architecture"]
