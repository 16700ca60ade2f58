"""runner's vanilla transformer against midi-translation's `make_model`, and
runner's label smoothing against midi-translation's `LabelSmoothing`.

Usage: vanilla_peer.py RUN_DIR IDS_JSON LOGITS_JSON (see peer_common.py).

The network below is written from the Annotated Transformer as
midi-translation uses it (model.py, modules/*.py): pre-norm residual blocks
`x + dropout(sublayer(norm(x)))`, a final norm per stack, its own layer norm
`a_2 * (x - mean) / (std + eps) + b_2` with the UNBIASED std (runner computes
it with libtorch's fused layer_norm, equal to a relative eps/std: the
difference this check measures comes mostly from there), embeddings scaled by
sqrt(d_model) plus sinusoids, separate source and target embeddings, biased
q/k/v/o projections with scores scaled by 1/sqrt(d_k), a ReLU feed-forward and
a linear + log-softmax generator. Weights come from runner's checkpoint
(runner fuses q, k, v into `qkv` and the cross-attention's k, v into `kv`).

Checks, in eval mode: the generator's log-probabilities against the
log-softmax of runner's logits (max abs difference < 1e-5); greedy picks
(decoder from CLS fed its own picks; argmax over the velocity ids only, as
runner does; midi-translation's own loop takes the argmax over all 129 ids);
and with tgt_out the loss (see `label_smoothing`).
"""

import math
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

from peer_common import Inputs, Verdict, max_difference, used_all


class LayerNorm(nn.Module):
    def __init__(self, features, eps=1e-6):
        super().__init__()
        self.a_2 = nn.Parameter(torch.ones(features))
        self.b_2 = nn.Parameter(torch.zeros(features))
        self.eps = eps

    def forward(self, x):
        mean = x.mean(-1, keepdim=True)
        std = x.std(-1, keepdim=True)  # unbiased
        return self.a_2 * (x - mean) / (std + self.eps) + self.b_2


class Residual(nn.Module):
    """x + sublayer(norm(x)) (dropout is the identity in eval mode)."""

    def __init__(self, d_model):
        super().__init__()
        self.norm = LayerNorm(d_model)

    def forward(self, x, sublayer):
        return x + sublayer(self.norm(x))


class Attention(nn.Module):
    def __init__(self, heads, d_model):
        super().__init__()
        self.heads, self.d_k = heads, d_model // heads
        self.linears = nn.ModuleList(nn.Linear(d_model, d_model) for _ in range(4))

    def forward(self, query, key, value, mask):
        b = query.shape[0]
        q, k, v = (
            lin(x).view(b, -1, self.heads, self.d_k).transpose(1, 2)
            for lin, x in zip(self.linears, (query, key, value))
        )
        scores = q @ k.transpose(-2, -1) / math.sqrt(self.d_k)
        if mask is not None:
            scores = scores.masked_fill(mask == 0, -1e9)
        x = scores.softmax(-1) @ v
        return self.linears[3](x.transpose(1, 2).reshape(b, -1, self.heads * self.d_k))


class FeedForward(nn.Module):
    def __init__(self, d_model, d_ff):
        super().__init__()
        self.w_1, self.w_2 = nn.Linear(d_model, d_ff), nn.Linear(d_ff, d_model)

    def forward(self, x):
        return self.w_2(self.w_1(x).relu())


class EncoderLayer(nn.Module):
    def __init__(self, d_model, d_ff, heads):
        super().__init__()
        self.self_attn, self.feed_forward = Attention(heads, d_model), FeedForward(d_model, d_ff)
        self.sublayer = nn.ModuleList(Residual(d_model) for _ in range(2))

    def forward(self, x):
        x = self.sublayer[0](x, lambda h: self.self_attn(h, h, h, None))
        return self.sublayer[1](x, self.feed_forward)


class DecoderLayer(nn.Module):
    def __init__(self, d_model, d_ff, heads):
        super().__init__()
        self.self_attn, self.src_attn = Attention(heads, d_model), Attention(heads, d_model)
        self.feed_forward = FeedForward(d_model, d_ff)
        self.sublayer = nn.ModuleList(Residual(d_model) for _ in range(3))

    def forward(self, x, memory, tgt_mask):
        x = self.sublayer[0](x, lambda h: self.self_attn(h, h, h, tgt_mask))
        x = self.sublayer[1](x, lambda h: self.src_attn(h, memory, memory, None))
        return self.sublayer[2](x, self.feed_forward)


class Stack(nn.Module):
    def __init__(self, layers):
        super().__init__()
        self.layers = nn.ModuleList(layers)
        self.norm = LayerNorm(layers[0].feed_forward.w_2.out_features)

    def forward(self, x, *args):
        for layer in self.layers:
            x = layer(x, *args)
        return self.norm(x)


class Embed(nn.Module):
    """lut(ids) * sqrt(d_model) + sinusoidal positions."""

    def __init__(self, vocab, d_model, max_len=5000):
        super().__init__()
        self.lut, self.d_model = nn.Embedding(vocab, d_model), d_model
        position = torch.arange(max_len).unsqueeze(1)
        div_term = torch.exp(torch.arange(0, d_model, 2) * -(math.log(10000.0) / d_model))
        pe = torch.zeros(max_len, d_model)
        pe[:, 0::2] = torch.sin(position * div_term)
        pe[:, 1::2] = torch.cos(position * div_term)
        self.register_buffer("pe", pe, persistent=False)

    def forward(self, ids):
        return self.lut(ids) * math.sqrt(self.d_model) + self.pe[: ids.shape[1]]


class Transformer(nn.Module):
    def __init__(self, src_vocab, tgt_vocab, n_enc, n_dec, d_model, d_ff, heads):
        super().__init__()
        self.src_embed, self.tgt_embed = Embed(src_vocab, d_model), Embed(tgt_vocab, d_model)
        self.encoder = Stack([EncoderLayer(d_model, d_ff, heads) for _ in range(n_enc)])
        self.decoder = Stack([DecoderLayer(d_model, d_ff, heads) for _ in range(n_dec)])
        self.generator = nn.Linear(d_model, tgt_vocab)

    def encode(self, src):
        return self.encoder(self.src_embed(src))

    def decode(self, memory, tgt):
        n = tgt.shape[1]
        subsequent = torch.tril(torch.ones(1, 1, n, n, dtype=torch.bool))
        return F.log_softmax(self.generator(self.decoder(self.tgt_embed(tgt), memory, subsequent)), -1)


def peer_state(weights):
    """runner's checkpoint under the peer's names, and the runner names it used."""
    state, used = {}, []

    def put(target, source):
        state[f"{target}.weight"], state[f"{target}.bias"] = weights[f"{source}.weight"], weights[f"{source}.bias"]
        used.extend([f"{source}.weight", f"{source}.bias"])

    def fused(targets, source):
        for target, w, b in zip(targets, weights[f"{source}.weight"].chunk(len(targets)), weights[f"{source}.bias"].chunk(len(targets))):
            state[f"{target}.weight"], state[f"{target}.bias"] = w, b
        used.extend([f"{source}.weight", f"{source}.bias"])

    def norm(target, source):
        state[f"{target}.a_2"], state[f"{target}.b_2"] = weights[f"{source}.weight"], weights[f"{source}.bias"]
        used.extend([f"{source}.weight", f"{source}.bias"])

    for side in ("src", "tgt"):
        state[f"{side}_embed.lut.weight"] = weights[f"{side}_embed.weight"]
        used.append(f"{side}_embed.weight")
    for stack in ("encoder", "decoder"):
        layers = {int(k.split(".")[2]) for k in weights if k.startswith(f"{stack}.layers.")}
        for i in sorted(layers):
            ours, theirs = f"{stack}.layers.{i}", f"{stack}.layers.{i}"
            fused([f"{ours}.self_attn.linears.{j}" for j in range(3)], f"{theirs}.self_attn.qkv")
            put(f"{ours}.self_attn.linears.3", f"{theirs}.self_attn.o")
            norm(f"{ours}.sublayer.0.norm", f"{theirs}.self_attn_norm")
            put(f"{ours}.feed_forward.w_1", f"{theirs}.ff.w1")
            put(f"{ours}.feed_forward.w_2", f"{theirs}.ff.w2")
            if stack == "decoder":
                put(f"{ours}.src_attn.linears.0", f"{theirs}.cross_attn.q")
                fused([f"{ours}.src_attn.linears.{j}" for j in (1, 2)], f"{theirs}.cross_attn.kv")
                put(f"{ours}.src_attn.linears.3", f"{theirs}.cross_attn.o")
                norm(f"{ours}.sublayer.1.norm", f"{theirs}.cross_attn_norm")
            norm(f"{ours}.sublayer.{2 if stack == 'decoder' else 1}.norm", f"{theirs}.ff_norm")
        norm(f"{stack}.norm", f"{stack}.norm")
    put("generator", "generator")
    return state, used


def greedy(model, src, length, first, end, whole_vocabulary):
    """midi-translation's greedy_decode, batched: from CLS (0), feeding back
    the argmax over the velocity ids, or (whole_vocabulary) over every id as
    the original does; a pick that is not a velocity counts as velocity 0."""
    memory = model.encode(src)
    ys = torch.zeros(src.shape[0], 1, dtype=torch.long)
    for _ in range(length):
        log_p = model.decode(memory, ys)[:, -1]
        if whole_vocabulary:
            pick = log_p.argmax(-1, keepdim=True)
        else:
            pick = log_p[:, first:end].argmax(-1, keepdim=True) + first
        ys = torch.cat([ys, pick], 1)
    picks = ys[:, 1:]
    return torch.where((picks >= first) & (picks < end), picks - first, 0)


def label_smoothing(inputs, verdict):
    """The loss on runner's own logits, as the originals compute it.

    midi-translation's `LabelSmoothing` ("original"): log-softmax, a target
    `true_dist` filled with eps / (V - 2), 1 - eps scattered at the true id, no
    column zeroed, `KLDivLoss(reduction="sum")` / tokens. runner's
    "exclude-specials" target: 1 - eps on the true velocity, eps / (K - 1) on
    the other K - 1 velocities, 0 on the specials. runner's objective is the
    cross-entropy against the smoothed target, -(q . log p) / tokens (it has
    the KL's gradient); the KL form, sum q (log q - log p) / tokens, is printed.
    """
    loss = inputs.config["loss"]
    runner = inputs.runner["loss"]
    log_p = inputs.logits.double().log_softmax(-1).flatten(0, 1)  # [N, V]
    target = inputs.tgt_out.flatten()  # [N]
    first, end = inputs.first_velocity, inputs.end_velocity
    counted = ((target >= first) & (target < end)) | (target == 0)
    log_p, target = log_p[counted], target[counted]
    tokens = target.numel()
    nll = -log_p.gather(1, target.unsqueeze(1)).sum().item() / tokens
    verdict.close("cross-entropy", abs(nll - runner["nll"]))
    verdict.same("counted positions", tokens, runner["count"])
    if loss["kind"] == "cross-entropy":
        verdict.close("objective (cross-entropy)", abs(nll - runner["objective"]))
        return
    eps = loss["epsilon"]
    vocab, classes = log_p.shape[1], end - first
    original = torch.full_like(log_p, eps / (vocab - 2))
    original.scatter_(1, target.unsqueeze(1), 1 - eps)
    kl_original = F.kl_div(log_p, original, reduction="sum").item() / tokens
    excluding = torch.zeros_like(log_p)
    excluding[:, first:end] = eps / (classes - 1)
    excluding.scatter_(1, target.unsqueeze(1), 1 - eps)
    forms = {}
    for name, q in (("original", original), ("exclude-specials", excluding)):
        cross_entropy = -(q * log_p).sum().item() / tokens
        kl = (q * (q.clamp_min(1e-300).log() - log_p)).where(q > 0, 0.0).sum().item() / tokens
        forms[name] = cross_entropy
        print(f"vanilla_peer: label smoothing {name}: cross-entropy {cross_entropy:.6f}, KL {kl:.6f} per token")
    print(f"vanilla_peer: midi-translation's KLDivLoss(sum) / tokens: {kl_original:.6f}")
    chosen = loss.get("target", "exclude-specials")
    print(f"vanilla_peer: runner's objective {runner['objective']:.6f}, KL {runner['kl']:.6f} (target {chosen})")
    verdict.close(f"label smoothing objective ({chosen})", abs(forms[chosen] - runner["objective"]))
    if chosen == "original":
        verdict.close("label smoothing KL (midi-translation's KLDivLoss)", abs(kl_original - runner["kl"]))


def main():
    inputs = Inputs(sys.argv)
    verdict = Verdict("vanilla_peer")
    c, m = inputs.config, inputs.config["model"]
    if c["encoder"] != "separate" or m["norm"] != "pre" or m["positions"] != "sinusoidal" or m["tie-embeddings"]:
        sys.exit("vanilla_peer: the peer needs separate vocabularies, pre-norm, sinusoids and untied embeddings")
    if m["d-kv"] * m["heads"] != m["d-model"]:
        sys.exit("vanilla_peer: midi-translation's heads are d_model / heads wide; the run's d-kv differs")
    weights = inputs.weights
    model = Transformer(
        weights["src_embed.weight"].shape[0],
        weights["tgt_embed.weight"].shape[0],
        m["encoder-layers"],
        m["decoder-layers"],
        m["d-model"],
        m["d-ff"],
        m["heads"],
    ).eval()
    state, used = peer_state(weights)
    used_all(weights, used, "vanilla_peer")
    model.load_state_dict(state, strict=True)
    with torch.no_grad():
        log_p = model.decode(model.encode(inputs.src), inputs.tgt_in)
        verdict.close("teacher-forced log-probabilities", max_difference(log_p, inputs.logits.log_softmax(-1)))
        whole = c.get("evaluate", {}).get("argmax", "velocities") == "vocabulary"
        picks = greedy(model, inputs.src, inputs.tgt_in.shape[1], inputs.first_velocity, inputs.end_velocity, whole)
        verdict.equal("greedy", picks, inputs.greedy)
        if inputs.tgt_out is not None:
            label_smoothing(inputs, verdict)
    verdict.finish()


if __name__ == "__main__":
    main()
