"""runner's T5 against HuggingFace's `T5ForConditionalGeneration`.

Usage: t5_peer.py RUN_DIR IDS_JSON LOGITS_JSON (see peer_common.py).

Builds the HF model from a `T5Config` with the run's sizes, loads runner's
checkpoint into it (runner fuses self-attention's q, k, v into one `qkv`
weight and cross-attention's k, v into `kv`; HF keeps them apart), then
compares, in eval mode:

- teacher-forced logits on (src, tgt_in): max abs difference < 1e-5;
- greedy picks: the decoder reads the run's prefix (id 0, HF's decoder
  start; then CLS for shift-right) and is fed its own most likely velocity,
  argmax over the velocity ids only: equal;
- with tgt_out, runner's cross-entropy against HF's own loss with
  labels=tgt_out (HF shifts the labels right from id 0, which gives tgt_in;
  with shift-right the labels start with CLS, which HF's loss counts).
"""

import sys

import torch
from transformers import T5Config, T5ForConditionalGeneration

from peer_common import Inputs, Verdict, max_difference, used_all


def hf_model(config, vocab):
    m = config["model"]
    if config["encoder"] != "shared" or m["norm"] != "pre" or m["positions"] != "relative" or not m["tie-embeddings"]:
        sys.exit("t5_peer: the HF peer needs a shared vocabulary, pre-norm, relative positions and tied embeddings")
    t5 = T5Config(
        vocab_size=vocab,
        d_model=m["d-model"],
        d_kv=m["d-kv"],
        d_ff=m["d-ff"],
        num_layers=m["encoder-layers"],
        num_decoder_layers=m["decoder-layers"],
        num_heads=m["heads"],
        relative_attention_num_buckets=m["relative-buckets"],
        relative_attention_max_distance=m["relative-max-distance"],
        dropout_rate=m["dropout"],
        layer_norm_epsilon=1e-6,
        feed_forward_proj="relu",
        tie_word_embeddings=True,
        decoder_start_token_id=0,
        pad_token_id=1,
        eos_token_id=1,
    )
    return T5ForConditionalGeneration(t5).eval()


def hf_state(weights):
    """runner's checkpoint under HF's names, and the runner names it used."""
    state, used = {}, []
    for name, tensor in weights.items():
        if name.endswith("SelfAttention.qkv.weight"):
            stem = name[: -len("qkv.weight")]
            for part, block in zip("qkv", tensor.chunk(3, 0)):
                state[f"{stem}{part}.weight"] = block
        elif name.endswith("EncDecAttention.kv.weight"):
            stem = name[: -len("kv.weight")]
            for part, block in zip("kv", tensor.chunk(2, 0)):
                state[f"{stem}{part}.weight"] = block
        else:
            state[name] = tensor
        used.append(name)
    return state, used


def greedy(model, src, prefix, length, first, end):
    encoder_outputs = model.get_encoder()(input_ids=src)
    ys = torch.tensor(prefix, dtype=torch.long).repeat(src.shape[0], 1)
    for _ in range(length):
        logits = model(encoder_outputs=encoder_outputs, decoder_input_ids=ys).logits[:, -1]
        pick = logits[:, first:end].argmax(-1, keepdim=True) + first
        ys = torch.cat([ys, pick], 1)
    return ys[:, len(prefix) :] - first


def main():
    inputs = Inputs(sys.argv)
    verdict = Verdict("t5_peer")
    vocab = inputs.weights["shared.weight"].shape[0]
    model = hf_model(inputs.config, vocab)
    state, used = hf_state(inputs.weights)
    used_all(inputs.weights, used, "t5_peer")
    missing, unexpected = model.load_state_dict(state, strict=False)
    # The tied tables are views of shared.weight.
    tied = {"encoder.embed_tokens.weight", "decoder.embed_tokens.weight", "lm_head.weight"}
    if set(missing) - tied or unexpected:
        sys.exit(f"t5_peer: weights not loaded: missing {sorted(set(missing) - tied)}, unexpected {unexpected}")
    with torch.no_grad():
        out = model(input_ids=inputs.src, decoder_input_ids=inputs.tgt_in)
        verdict.close("teacher-forced logits", max_difference(out.logits, inputs.logits))
        length = inputs.greedy.shape[1]
        picks = greedy(model, inputs.src, inputs.prefix, length, inputs.first_velocity, inputs.end_velocity)
        verdict.equal("greedy", picks, inputs.greedy)
        if inputs.tgt_out is not None:
            hf_loss = model(input_ids=inputs.src, labels=inputs.tgt_out).loss.item()
            verdict.close("cross-entropy (HF's loss)", abs(hf_loss - inputs.runner["loss"]["nll"]))
    verdict.finish()


if __name__ == "__main__":
    main()
