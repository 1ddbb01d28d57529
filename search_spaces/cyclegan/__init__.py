"""CycleGAN generators as a channel-mask search space (Shu et al., ICCV 2019).

The networks are the CycleGAN reference ResnetGenerator and PatchGAN (NLayer) discriminator, laid out
as `model.N.*` so the widely used checkpoints load directly. A genome holds one bit per output channel
of every generator conv except the last; all convs whose outputs meet at the residual additions (the
second downsampling and every residual-block conv) share one segment, so for ngf 64 a mask has
64 + 128 + 256 + 128 + 64 = 640 bits. A mask can be applied in place (masked forward, for scoring) or
cut out physically (a smaller generator whose output equals the masked one).

One module a job: `networks` (generator, discriminator, their cost), `checkpoints` (reading them),
`masks` (channel masks: split, apply, prune, repair), `images` (unpaired sets, output fidelity), `space`
(the search space and its configuration) and `plugin` (registers the space).
"""

from searchlab.lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(__name__, {
    "networks": ["SIDES", "ResnetBlock", "ResnetGenerator", "PatchDiscriminator", "count_params", "param_count",
        "size_mb", "count_flops", "describe_generator"],
    "checkpoints": ["read_state_dict", "generator_from_state_dict", "discriminator_from_state_dict",
        "load_generator", "load_discriminator", "find_checkpoints"],
    "masks": ["segment_sizes", "genome_length", "split_mask", "layer_masks", "channels_pruned", "full_mask",
        "masked", "prune", "read_mask_file", "mask_params", "pruned_shape", "repair", "mut_flip_segment"],
    "images": ["center_crop", "read_unpaired", "random_crops", "to_unit", "to_uint8", "compare_outputs"],
    "space": ["CycleganConfig", "CycleganSpace"],
})
