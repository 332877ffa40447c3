"""`python tests/dying_rank.py ARGS...` runs `gkd ARGS...`, except that the rank named by ``DIE_RANK`` leaves after
``DIE_AFTER`` mini-batches: it exits (``DIE_MODE=exit``) or hangs (``DIE_MODE=stall``). Used by tests/test_scale.py to
check that its peers stop with one clear error instead of a traceback or a hang."""
import os
import sys
import time

import gkd.scale.sampler as sampler
from gkd.cli import main

_iter = sampler.CSRNeighborSampler.__iter__
_batches = [0]  # over all epochs: a small graph's epoch is one or two batches


def _dying_iter(self):
    for batch in _iter(self):
        _batches[0] += 1
        if os.environ.get("RANK") == os.environ["DIE_RANK"] and _batches[0] > int(os.environ.get("DIE_AFTER", "5")):
            if os.environ.get("DIE_MODE") == "stall":
                time.sleep(3600)
            os._exit(3)
        yield batch


sampler.CSRNeighborSampler.__iter__ = _dying_iter
if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
