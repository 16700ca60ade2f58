"""What the peer checks share: reading a run and runner's output, and the verdict.

Each peer is called as `python PEER.py RUN_DIR IDS_JSON LOGITS_JSON`: the run
folder runner trained, the ids given to `runner model logits`, and what that
command printed with --json.
"""

import json
import sys
from pathlib import Path

import torch
from safetensors.torch import load_file

# The largest absolute difference allowed between runner's numbers and a peer's.
TOLERANCE = 1e-5


class Inputs:
    """A run's config and weights, the ids and runner's output for them."""

    def __init__(self, argv):
        if len(argv) != 4:
            sys.exit(f"usage: {argv[0]} RUN_DIR IDS_JSON LOGITS_JSON")
        run, ids, logits = (Path(a) for a in argv[1:])
        self.config = json.loads((run / "config.json").read_text())
        self.weights = load_file(str(run / "checkpoint" / "model.safetensors"))
        ids = json.loads(ids.read_text())
        self.src = torch.tensor(ids["src"], dtype=torch.long)
        self.tgt_in = torch.tensor(ids["tgt_in"], dtype=torch.long)
        self.tgt_out = torch.tensor(ids["tgt_out"], dtype=torch.long) if "tgt_out" in ids else None
        self.runner = json.loads(logits.read_text())
        self.logits = torch.tensor(self.runner["logits"], dtype=torch.float32)
        self.greedy = torch.tensor(self.runner["greedy"], dtype=torch.long)
        self.prefix = self.runner["decoder_prefix"]
        self.first_velocity, self.end_velocity = self.runner["velocity_ids"]


class Verdict:
    """Collects named checks; `finish` prints them and exits 1 if any failed."""

    def __init__(self, peer):
        self.peer = peer
        self.failed = []

    def close(self, name, difference, tolerance=TOLERANCE):
        ok = difference < tolerance
        print(f"{self.peer}: {name}: max abs difference {difference:.3e} ({'pass' if ok else 'FAIL'}, tolerance {tolerance:.0e})")
        if not ok:
            self.failed.append(name)

    def equal(self, name, ours, theirs):
        same = torch.equal(ours, theirs)
        agree = (ours == theirs).float().mean().item() if ours.shape == theirs.shape else 0.0
        print(f"{self.peer}: {name}: {agree:.1%} of picks agree ({'pass' if same else 'FAIL'})")
        if not same:
            print(f"  runner: {theirs.tolist()}\n  peer:   {ours.tolist()}")
            self.failed.append(name)

    def same(self, name, ours, theirs):
        ok = ours == theirs
        print(f"{self.peer}: {name}: runner {theirs}, peer {ours} ({'pass' if ok else 'FAIL'})")
        if not ok:
            self.failed.append(name)

    def finish(self):
        if self.failed:
            print(f"{self.peer}: FAIL ({', '.join(self.failed)})")
            sys.exit(1)
        print(f"{self.peer}: pass")


def used_all(weights, used, verdict_peer):
    """Exits when a runner weight was not mapped onto the peer."""
    left = sorted(set(weights) - set(used))
    if left:
        sys.exit(f"{verdict_peer}: runner weights the peer does not use: {left}")


def max_difference(a, b):
    return (a - b).abs().max().item()
