"""Small fixed-seed runs of every built-in strategy, and their recorded trials.

`runs.json` beside this file holds, per run, every trial's key and objectives. The test in this folder
repeats the runs and compares them trial for trial, so a refactor of the search core that changes
which candidates are asked, or what they score, is caught. Record again (only after a deliberate
change, said in the commit) with:

    python tests/golden/golden_runs.py --record

The predictor-guided runs choose their later candidates by ranking predictions, and near-ties there
follow the last bits of the CPU's float kernels, which differ between processor families. `runs.json`
also holds `fingerprint`, a hash of a short ReNAS fit's predictions on the recording machine: where the
fingerprint differs, those runs are compared up to their random initial queries only.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
TESTS = HERE.parent
ROOT = TESTS.parent
DATA = TESTS / "data"
RECORD = HERE / "runs.json"

TABLE = ["search", "nasbench101"]
INITIAL = 20
PREDICTOR = ["--initial", str(INITIAL), "--top-k", "5", "--pool", "1500"]
PREDICTOR_RUNS = ("renas", "semi-gcn", "consensus")  # later candidates chosen by ranking predictions
# name -> command-line arguments (the run folder, --quiet and --no-finalize are added)
RUNS = {
    "random": [*TABLE, "--strategy", "random", "--max-evals", "30", "--seed", "0"],
    "evolution": [*TABLE, "--strategy", "evolution", "--population", "10", "--sample-size", "3",
                  "--max-evals", "40", "--seed", "0"],
    "renas": [*TABLE, "--strategy", "renas", *PREDICTOR, "--rounds", "2", "--renas-epochs", "5",
              "--max-evals", "30", "--seed", "4"],
    "semi-gcn": [*TABLE, "--strategy", "semi-gcn", *PREDICTOR, "--unlabeled", "200", "--gcn-epochs", "20",
                 "--max-evals", "25", "--seed", "1"],
    "consensus": [*TABLE, "--strategy", "consensus", *PREDICTOR, "--renas-epochs", "5", "--unlabeled", "200",
                  "--gcn-epochs", "20", "--max-evals", "25", "--seed", "2"],
    "prune": ["search", "prune", "--data", f"mnist:{DATA / 'mnist_mini'}", "--test-size", "200", "--val-size", "200",
              "--pretrain-epochs", "1", "--batch-size", "64", "--population", "5", "--generations", "3",
              "--seed", "2"],
    "binary": ["search", "binary", "--net", "vgg-small", "--data", f"imagefolder:{DATA / 'cifar10_mini'}",
               "--width-scale", "0.0625", "--population", "3", "--generations", "2", "--epochs-per-candidate", "1",
               "--train-size", "60", "--val-size", "20", "--batch-size", "32", "--device", "cpu", "--seed", "0"],
    "sr": ["search", "sr", "--g0", "8", "--slots", "4", "--min-blocks", "1", "--params", "3k:12k",
           "--train", str(DATA / "set5"), "--val-images", "1", "--val-crop", "48", "--patch", "12",
           "--batch-size", "4", "--crops-per-image", "2", "--epochs-per-candidate", "0.5", "--population", "3",
           "--generations", "2", "--elites", "1", "--device", "cpu", "--seed", "1"],
    "cyclegan": ["search", "cyclegan", "--checkpoints", "{CKPT}", "--data", str(DATA / "horse2zebra_mini"),
                 "--crop", "16", "--population", "3", "--generations", "2", "--fitness", "fidelity", "--seed", "5"],
}


def tiny_cyclegan_checkpoints(folder: Path) -> Path:
    """Seeded tiny generators and discriminators in the reference checkpoint layout."""
    import torch

    from searchlab.search_spaces import cyclegan as cg

    folder.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    for side in "AB":
        torch.save(cg.ResnetGenerator([4, 8, 16, 8, 4], 2, affine=side == "A").state_dict(),
                   folder / f"latest_net_G_{side}.pth")
        torch.save(cg.PatchDiscriminator(3, 4, 2).state_dict(), folder / f"latest_net_D_{side}.pth")
    return folder


def run(name: str, workdir: Path) -> list[dict]:
    """Run one golden search in `workdir`; its trials as [{"key", "objectives"}] in trial order."""
    import torch

    from searchlab.cli import main
    from searchlab.store.run_store import RunStore

    argv = [a.replace("{CKPT}", str(workdir / "ckpt")) for a in RUNS[name]]
    if name == "cyclegan":
        tiny_cyclegan_checkpoints(workdir / "ckpt")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # results on CPU are reproducible at a fixed thread count
    try:
        code = main([*argv, "--run", str(workdir / name), "--quiet", "--no-finalize"])
    finally:
        torch.set_num_threads(threads)
    if code != 0:
        raise RuntimeError(f"golden run {name} exited with {code}")
    with RunStore.open(workdir / name) as store:
        return [{"key": t.key, "objectives": t.result.objectives if t.result else None} for t in store.trials()]


def recorded() -> dict:
    return json.loads(RECORD.read_text())


def fingerprint() -> str:
    """A hash of a short ReNAS fit's float32 predictions: equal on machines whose float kernels agree."""
    import hashlib

    import numpy as np
    import torch

    from searchlab.predictors.renas import ReNASConfig, ReNASPredictor
    from searchlab.predictors.table import load_predictor_table

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        table = load_predictor_table()
        cells = table.cells.take(np.arange(0, 4000, 40))
        y = table.targets["test_accuracy"][np.arange(0, 4000, 40)]
        model = ReNASPredictor(ReNASConfig(renas_epochs=5), seed=0, device="cpu").fit(cells, y)
        return hashlib.sha1(np.asarray(model.predict(cells), dtype=np.float32).tobytes()).hexdigest()[:16]
    finally:
        torch.set_num_threads(threads)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--record", action="store_true", help="run every golden search and rewrite runs.json")
    p.add_argument("names", nargs="*", default=list(RUNS), help="runs to record (default: all)")
    args = p.parse_args()
    if not args.record:
        p.print_help()
        return 0
    sys.path.insert(0, str(ROOT))
    out = recorded() if RECORD.exists() else {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.names:
            out[name] = run(name, Path(tmp))
            print(f"{name}: {len(out[name])} trials", flush=True)
    out["fingerprint"] = fingerprint()
    RECORD.write_text(json.dumps(dict(sorted(out.items())), indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
