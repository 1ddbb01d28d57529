"""An exported SR model: weights as safetensors plus the genome and backbone options as JSON (no pickle)."""

from __future__ import annotations

from pathlib import Path

from searchlab import io
from searchlab.errors import DataError
from searchlab.search_spaces.sr_blocks.network import SRNet
from searchlab.search_spaces.sr_blocks.space import SRBlockSpace


def export_model(net: SRNet, genome: dict, space: SRBlockSpace, folder: Path) -> Path:
    """Weights as safetensors plus the genome and backbone options as JSON (no pickle)."""
    folder.mkdir(parents=True, exist_ok=True)
    io.save_safetensors(net.state_dict(), folder / "model.safetensors")
    meta = {"genome": genome, "scale": space.scale, "g0": space.g0, "groups": space.groups, "skip": space.skip,
            "slots": space.slots, "params": space.params(genome)}
    io.write_json(folder / "model.json", meta, indent=1)
    return folder


def load_model(folder: str | Path) -> SRNet:
    """Rebuild an exported network (see `export_model`)."""
    folder = Path(folder)
    try:
        meta = io.parse_json((folder / "model.json").read_bytes())
        weights = io.read_state_dict(folder / "model.safetensors", "SR model weights")
    except Exception as exc:  # noqa: BLE001 - missing, truncated or foreign files all mean the same to the user
        raise DataError(f"{folder} is not an exported SR model ({type(exc).__name__}); it needs model.json and "
                        f"model.safetensors") from None
    try:
        net = SRNet(meta["genome"], g0=meta["g0"], scale=meta["scale"], groups=meta["groups"], skip=meta["skip"])
        net.load_state_dict(weights)
    except (KeyError, TypeError, RuntimeError) as exc:
        raise DataError(f"{folder}: model.json and model.safetensors do not match ({type(exc).__name__}); "
                        f"export the model again") from None
    return net.eval()
