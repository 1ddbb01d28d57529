import os
import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent

# The engine tests' plug-in (a bit-string space) must load in subprocesses too.
SUPPORT = TESTS / "support"
sys.path.insert(0, str(SUPPORT))
os.environ["PYTHONPATH"] = os.pathsep.join([str(SUPPORT), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)
os.environ["SEARCHLAB_PLUGINS"] = "plugins_for_tests"
os.environ.setdefault("MPLBACKEND", "Agg")
# Progress lines in a log come by the clock, so on a loaded machine a slow command would gain lines that
# tests counting a command's stderr lines do not expect; the tests of progress set their own interval.
os.environ["SEARCHLAB_PROGRESS_INTERVAL"] = "3600"


@pytest.fixture(autouse=True, scope="session")
def one_torch_thread():
    """The tests train tiny networks, which run fastest on one thread and then leave the other core free."""
    import torch
    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def shared_cache(tmp_path_factory):
    """A cache folder for the tests of one session (one per xdist worker), never the user's: the table's
    per-vertex costs and the small pretrainings are built once per worker instead of once per test."""
    return tmp_path_factory.mktemp("searchlab-cache")
