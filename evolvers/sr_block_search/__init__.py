"""ESRN block search (Song et al., AAAI 2020): a genetic algorithm with block credits, proxy-trained
super-resolution candidates, and the final evaluation on standard benchmark sets.

Strategy `esrn` (per generation, DEAP operators): keep the `elites` best; fill the rest with children
of two parents drawn by roulette on fitness (`tools.selRoulette`), segment (two-point) crossover of
their slot lists (`tools.cxTwoPoint`), and a mutation of used bits, block types and block
hyper-parameters; every child is repaired into the parameter range by repeated mutation.

Block credits (what turns random mutation into guided mutation). After generation t, with fitness f_i
(validation PSNR) of the generation's successful individuals, z_i = (f_i - mean f) / (std f + 1e-8):

    type credit      c_k = sum_i z_i n_ik / sum_i n_ik      (n_ik = used blocks of type k in individual i)
    position credit  c_p = mean(z_i : slot p used) - mean(z_i : slot p unused)
    running credit   C <- (1 - a) C + a c                  (a = --credit-rate, for the credits observed)

and mutations then draw a changed slot's type with P(k) = softmax(beta C_k) and flip slot p's used
bit on with probability 2 sigmoid(beta C_p) x rate, off with 2 sigmoid(-beta C_p) x rate
(beta = --credit-strength). `--no-credits` (beta = 0) is the plain GA with uniform mutation.

Evaluator `sr-proxy`: train the candidate for a few epochs of random LR/HR crops (flips, rotations)
with L1 loss and Adam on the shared trainer, then PSNR on the Y channel of held-out training images.

One module a job: `strategy` (the GA with block credits), `evaluator` (proxy training), `finalize`
(the best trained longer, scored and exported) and `plugin` (registers `esrn` and `sr-proxy`; the space,
its configuration, LR/HR data and model export live in searchlab.search_spaces.sr_blocks).
"""

from searchlab.evolvers.sr_block_search.strategy import (ESRNConfig, psnr_weights, cx_segment, block_credits,
                                                         ESRNStrategy)
from searchlab.evolvers.sr_block_search.evaluator import SRProxyConfig, SRProxyEvaluator
from searchlab.evolvers.sr_block_search.finalize import side_by_side, finalize

__all__ = ["ESRNConfig", "ESRNStrategy", "SRProxyConfig", "SRProxyEvaluator", "block_credits", "cx_segment",
           "finalize", "psnr_weights", "side_by_side"]
