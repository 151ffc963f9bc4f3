"""Keep a bench-sized lab up between runs while working on performance (not used by run.py).

    python3 bench/devlab.py up 100        # as root; lab in /tmp/netops-devlab
    python3 bench/devlab.py down

Its own prefix and subnet (nd, 198.18.128.0/17), so it never collides with `bench/run.py`
(nb, 198.18.0.0/17) or the integration tests (198.19.k.0/24).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from netops.lab import Lab

DIR = Path("/tmp/netops-devlab")


def main() -> None:
    what = sys.argv[1] if len(sys.argv) > 1 else "status"
    if what == "up":
        n = int(sys.argv[2])
        t = time.perf_counter()
        Lab(DIR, subnet="198.18.128.0/17", prefix="nd").up(
            [f"node{i}" for i in range(1, n + 1)], etcd=False, kube=False)
        print(f"{n} nodes up in {time.perf_counter() - t:.1f}s; inventory {DIR}/inventory.yaml")
    elif what == "down":
        Lab.load(DIR).down()
    else:
        print("up" if Lab.is_up(DIR) else "down")


if __name__ == "__main__":
    main()
