"""`runner export RUN --hf DIR` against HuggingFace's own loader.

Usage: hf_export.py HF_DIR IDS_JSON LOGITS_JSON (the last two as for the
peers, see peer_common.py).

Loads the exported folder with `T5ForConditionalGeneration.from_pretrained`
alone (no runner code, no weight renaming) and checks, in eval mode:

- every weight loads: none missing (the tied tables are HF's views of
  `shared.weight`), unexpected or of another shape;
- the config's `runner` key gives runner's velocity ids and decoder prefix;
- teacher-forced logits on (src, tgt_in): max abs difference < 1e-5 from
  `runner model logits`;
- greedy picks from the config's decoder prefix, argmax over the config's
  velocity ids: equal to runner's.
"""

import json
import sys
from pathlib import Path

import torch
from transformers import T5ForConditionalGeneration

from peer_common import Verdict, max_difference
from t5_peer import greedy


def main():
    if len(sys.argv) != 4:
        sys.exit(f"usage: {sys.argv[0]} HF_DIR IDS_JSON LOGITS_JSON")
    hf_dir, ids, logits = (Path(a) for a in sys.argv[1:])
    ids = json.loads(ids.read_text())
    src = torch.tensor(ids["src"], dtype=torch.long)
    tgt_in = torch.tensor(ids["tgt_in"], dtype=torch.long)
    ours = json.loads(logits.read_text())
    runner_greedy = torch.tensor(ours["greedy"], dtype=torch.long)
    verdict = Verdict("hf_export")
    model, info = T5ForConditionalGeneration.from_pretrained(str(hf_dir), output_loading_info=True)
    model.eval()
    problems = {key: sorted(info[key]) for key in ("missing_keys", "unexpected_keys", "mismatched_keys") if info[key]}
    verdict.same("weights missing, unexpected or misshapen", problems, {})
    runner = model.config.runner
    verdict.same("velocity ids", runner["velocity_ids"], ours["velocity_ids"])
    verdict.same("decoder prefix", runner["decoder_prefix"], ours["decoder_prefix"])
    with torch.no_grad():
        out = model(input_ids=src, decoder_input_ids=tgt_in)
        expected = torch.tensor(ours["logits"], dtype=torch.float32)
        verdict.close("teacher-forced logits", max_difference(out.logits, expected))
        first, end = runner["velocity_ids"]
        picks = greedy(model, src, runner["decoder_prefix"], runner_greedy.shape[1], first, end)
        verdict.equal("greedy", picks, runner_greedy)
    verdict.finish()


if __name__ == "__main__":
    main()
