"""Co-evolutionary compression of both CycleGAN generators (Shu et al., ICCV 2019, arXiv:1907.10804).

Two DEAP populations of channel masks, one per generator, evolve in turn: population A with B's
current best held fixed, then B with A's new best. An individual's fitness (the paper's code,
defaults C = 500, gamma = 10, mu = 0.001) is

    C / (sum_x MSE(D(G_pruned(x)), D(G_full(x))) + gamma * sum_x L1(G_other(G_pruned(x)), x)) + mu * pruned

where `pruned` counts removed output channels over all layers. Without a discriminator the first term
becomes the output fidelity sum_x MSE(G_pruned(x), G_full(x)) (the fallback fitness). The best pair is
then fine-tuned with the CycleGAN losses (LSGAN, cycle weight 10, Adam 2e-4, betas 0.5/0.999) and
written out as physically pruned generators with a report and an image grid.

One module a job: `strategy` (the two populations), `evaluator` (the fitness), `finetune` (the CycleGAN
losses), `finalize` (the pruned pair written out) and `plugin` (registers `coevolution` and `gan-fitness`;
the space registers itself from searchlab.search_spaces.cyclegan).
"""

from searchlab.evolvers.gan_coevolution.evaluator import GanFitness, GanFitnessConfig, make_evaluator
from searchlab.evolvers.gan_coevolution.finalize import best_pair, fidelity, finalize, save_grid
from searchlab.evolvers.gan_coevolution.finetune import finetune
from searchlab.evolvers.gan_coevolution.strategy import CoevolutionConfig, CoevolutionStrategy, next_generation

__all__ = ["CoevolutionConfig", "CoevolutionStrategy", "GanFitness", "GanFitnessConfig", "best_pair", "fidelity",
           "finalize", "finetune", "make_evaluator", "next_generation", "save_grid"]
