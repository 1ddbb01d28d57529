"""Registers the `prune` space (its strategy and evaluator come from searchlab.evolvers.filter_pruning)."""

from __future__ import annotations

from searchlab import registry
from searchlab.search_spaces.filter_masks.config import PruneConfig
from searchlab.search_spaces.filter_masks.setup import make_space

registry.register_space(
    "prune", factory=make_space, config=PruneConfig, default_strategy="prune-ga", default_evaluator="masked-fitness",
    help="evolutionary filter pruning of a trained CNN (Wang et al. 2018), one bit per coupled filter group; "
         "e.g. --model lenet5 --data mnist:PATH --pretrain-epochs 20 --size-measure flops --lam 0.3 "
         "--candidate-steps 30 --population 32 --generations 30 --finetune-epochs 20")
