"""Filter masks of a trained CNN: which convolution filters to keep, one bit per coupled channel group.

Why our own dependency analysis instead of Torch-Pruning: a `torch.fx` trace gives the exact op graph
without a new dependency, and the channel bookkeeping needed here is small. Every tensor in the graph
carries one label per channel (an element of a union-find); a dense convolution creates fresh labels
for its output filters, ops that keep channels apart (BatchNorm, activations, pooling, slicing) pass
labels through, `add`/`mul` join the labels of their operands channel by channel (residual adds),
`cat` concatenates them, depthwise convolutions join their input and output channels, and anything
not understood (an unknown op, the network's output, a zero-padded channel) freezes the labels it
touches. A group of joined labels is one bit of the genome: its filters are kept or removed together.

A mask is evaluated without rebuilding the network by zeroing the matching input columns of every
consumer (dense convolution or Linear): removed channels then contribute nothing, which is exactly
what removing them does, so `prune_model` (physical pruning) gives a smaller module whose outputs
equal the masked network's to float tolerance.

One module a job: `analysis` (the coupled channel groups), `encoding` (genome <-> bits), `costs`
(FLOPs and parameters), `prune` (physical pruning), `masked` (masked execution) and `space` (the
search space).
"""

from searchlab.lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(__name__, {
    "analysis": ["ModuleUse", "PruningPlan"],
    "costs": ["analyse", "cost", "measured_flops"],
    "encoding": ["Genome", "bits_of", "genome_of"],
    "masked": ["MaskedNetwork"],
    "prune": ["prune_model"],
    "space": ["FilterMaskSpace"],
})
