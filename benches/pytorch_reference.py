#!/usr/bin/env python3
"""Training throughput of the write-up's model in PyTorch, three ways.

The reference side of `scripts/bench-train` (FACTS.md section 8): the same
model, shapes and measure as `runner bench train`, so the two can be put
side by side in one table.

Model: encoder-decoder, 4 + 4 pre-norm layers, d_model 256, d_ff 1024,
4 heads, dropout 0.1, source vocabulary 6601, target vocabulary 129,
sequences of 128 notes + CLS (source [B, 129]; the decoder reads the first
128 targets and predicts the last 128), sinusoidal positions, embeddings
scaled by sqrt(d_model), a linear generator, cross-entropy. Adam with
lr 1e-4, betas (0.9, 0.98), eps 1e-9. Random token windows live on the
device; each step gathers its batch there (as runner does).

Implementations (`--impl`):

- `transformer`: `torch.nn.Transformer(norm_first=True)`, `torch.optim.Adam`
  with its default implementation choice.
- `handwritten`: hand-written blocks (fused q/k/v projection,
  `scaled_dot_product_attention`, `nn.LayerNorm`), fused Adam on CUDA
  (`fused=True`), `foreach=True` on the CPU.
- `compiled`: `handwritten` with the model and loss under
  `torch.compile(mode="reduce-overhead", dynamic=False)` (CUDA graphs on
  CUDA; on the CPU it is inductor without graphs; static shapes, so each
  batch size compiles its own graph as a fresh process would). Skipped, with a note, where compiling cannot
  work (no C compiler).

Timing: `--warmup` steps (for `compiled` the first one includes compiling,
reported as `compile_s`), then the device is synchronised, `--steps` steps
are timed, and the device is synchronised again. `--compile-only` stops
after the compiling step: run in parallel, one process a cell, it fills
inductor's on-disk caches so that the timed processes that follow compile
in seconds (their `compile_s` is then the cached compile; the timed steps
are the same either way). bf16 is autocast on CUDA
and skipped on the CPU.

Prints one JSON object: {"torch", "device", "device_name", "threads",
"results": [{"impl", "batch", "precision", "steps", "warmup",
"seq_per_s", "ms_per_step", "cpu_ms_per_step", "loss", "compile_s",
"note"}]} (`cpu_ms_per_step`: process CPU time per step, all threads: the
work done, whatever else a shared machine runs); a cell that
was skipped or failed has null figures and a note. Exit status 0 unless
the arguments are wrong.
"""

import argparse
import json
import math
import os
import shutil
import sys
import time
import traceback

import torch
import torch.nn as nn
import torch.nn.functional as F

SRC_VOCAB = 6601
TGT_VOCAB = 129
NOTES = 128
D_MODEL = 256
D_FF = 1024
HEADS = 4
LAYERS = 4
DROPOUT = 0.1
LR = 1e-4
BETAS = (0.9, 0.98)
EPS = 1e-9
# Random windows resident on the device, gathered per step.
POOL_BATCHES = 8


def sinusoids(length, d_model, device):
    """[length, d_model]: sin at even features, cos at odd ones."""
    position = torch.arange(length, device=device, dtype=torch.float32).unsqueeze(1)
    frequency = torch.exp(torch.arange(0, d_model, 2, device=device, dtype=torch.float32) * (-math.log(10000.0) / d_model))
    angle = position * frequency
    return torch.stack([angle.sin(), angle.cos()], dim=2).view(length, d_model)


class Embed(nn.Module):
    """ids [B, L] -> dropout(embed(ids) * sqrt(d) + positions) [B, L, D]."""

    def __init__(self, vocab):
        super().__init__()
        self.table = nn.Embedding(vocab, D_MODEL)
        self.register_buffer("positions", sinusoids(NOTES + 1, D_MODEL, "cpu"), persistent=False)

    def forward(self, ids):
        x = self.table(ids) * math.sqrt(D_MODEL) + self.positions[: ids.shape[1]]
        return F.dropout(x, DROPOUT, self.training)


class TransformerModel(nn.Module):
    """torch.nn.Transformer, pre-norm, batch first."""

    def __init__(self):
        super().__init__()
        self.src_embed = Embed(SRC_VOCAB)
        self.tgt_embed = Embed(TGT_VOCAB)
        self.transformer = nn.Transformer(
            d_model=D_MODEL,
            nhead=HEADS,
            num_encoder_layers=LAYERS,
            num_decoder_layers=LAYERS,
            dim_feedforward=D_FF,
            dropout=DROPOUT,
            batch_first=True,
            norm_first=True,
        )
        self.generator = nn.Linear(D_MODEL, TGT_VOCAB)

    def forward(self, src, tgt_in):
        length = tgt_in.shape[1]
        mask = nn.Transformer.generate_square_subsequent_mask(length, device=src.device)
        y = self.transformer(self.src_embed(src), self.tgt_embed(tgt_in), tgt_mask=mask, tgt_is_causal=True)
        return self.generator(y)


class Attention(nn.Module):
    """Multi-head attention with a fused q/k/v (self) or k/v (cross) projection."""

    def __init__(self, cross):
        super().__init__()
        self.cross = cross
        if cross:
            self.q = nn.Linear(D_MODEL, D_MODEL)
            self.kv = nn.Linear(D_MODEL, 2 * D_MODEL)
        else:
            self.qkv = nn.Linear(D_MODEL, 3 * D_MODEL)
        self.o = nn.Linear(D_MODEL, D_MODEL)

    def forward(self, x, context, causal):
        b, t, _ = x.shape
        if self.cross:
            q = self.q(x)
            k, v = self.kv(context).split(D_MODEL, dim=2)
        else:
            q, k, v = self.qkv(x).split(D_MODEL, dim=2)
        s = k.shape[1]
        # [B, L, D] -> [B, H, L, D/H]
        q = q.view(b, t, HEADS, -1).transpose(1, 2)
        k = k.view(b, s, HEADS, -1).transpose(1, 2)
        v = v.view(b, s, HEADS, -1).transpose(1, 2)
        y = F.scaled_dot_product_attention(q, k, v, dropout_p=DROPOUT if self.training else 0.0, is_causal=causal)
        return self.o(y.transpose(1, 2).reshape(b, t, D_MODEL))


class Layer(nn.Module):
    """Pre-norm block: self-attention, (cross-attention), feed-forward."""

    def __init__(self, decoder):
        super().__init__()
        self.decoder = decoder
        self.self_attn_norm = nn.LayerNorm(D_MODEL)
        self.self_attn = Attention(cross=False)
        if decoder:
            self.cross_attn_norm = nn.LayerNorm(D_MODEL)
            self.cross_attn = Attention(cross=True)
        self.ff_norm = nn.LayerNorm(D_MODEL)
        self.w1 = nn.Linear(D_MODEL, D_FF)
        self.w2 = nn.Linear(D_FF, D_MODEL)

    def forward(self, x, memory):
        drop = lambda y: F.dropout(y, DROPOUT, self.training)  # noqa: E731
        h = self.self_attn_norm(x)
        x = x + drop(self.self_attn(h, h, causal=self.decoder))
        if self.decoder:
            x = x + drop(self.cross_attn(self.cross_attn_norm(x), memory, causal=False))
        h = self.ff_norm(x)
        return x + drop(self.w2(F.dropout(F.relu(self.w1(h)), DROPOUT, self.training)))


class HandWritten(nn.Module):
    """The same encoder-decoder written out (runner's vanilla, nn.LayerNorm)."""

    def __init__(self):
        super().__init__()
        self.src_embed = Embed(SRC_VOCAB)
        self.tgt_embed = Embed(TGT_VOCAB)
        self.encoder = nn.ModuleList([Layer(decoder=False) for _ in range(LAYERS)])
        self.decoder = nn.ModuleList([Layer(decoder=True) for _ in range(LAYERS)])
        self.encoder_norm = nn.LayerNorm(D_MODEL)
        self.decoder_norm = nn.LayerNorm(D_MODEL)
        self.generator = nn.Linear(D_MODEL, TGT_VOCAB)

    def forward(self, src, tgt_in):
        x = self.src_embed(src)
        for layer in self.encoder:
            x = layer(x, None)
        memory = self.encoder_norm(x)
        y = self.tgt_embed(tgt_in)
        for layer in self.decoder:
            y = layer(y, memory)
        return self.generator(self.decoder_norm(y))


def synchronize(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def c_compiler():
    """The C compiler inductor would use, or None."""
    for name in (os.environ.get("CXX"), "g++", "c++", "clang++", os.environ.get("CC"), "gcc", "cc"):
        if name and shutil.which(name):
            return shutil.which(name)
    return None


def adam(model, impl, device):
    """torch.optim.Adam: its default for nn.Transformer; otherwise fused on
    CUDA and foreach on the CPU (where the fused kernel is about four times
    slower than foreach in torch 2.11)."""
    params = list(model.parameters())
    kwargs = dict(lr=LR, betas=BETAS, eps=EPS)
    if impl == "transformer":
        return torch.optim.Adam(params, **kwargs), "default"
    if device.type == "cuda":
        return torch.optim.Adam(params, fused=True, **kwargs), "fused"
    return torch.optim.Adam(params, foreach=True, **kwargs), "foreach"


def run_cell(impl, batch, precision, steps, warmup, device, seed, compile_only=False):
    """Times one (implementation, batch, precision) cell; returns a result dict.
    With `compile_only`, a compiled cell stops after its compiling step."""
    cell = {
        "impl": impl,
        "batch": batch,
        "precision": precision,
        "steps": steps,
        "warmup": warmup,
        "seq_per_s": None,
        "ms_per_step": None,
        "cpu_ms_per_step": None,
        "loss": None,
        "compile_s": None,
        "note": None,
    }
    if precision == "bf16" and device.type != "cuda":
        cell["note"] = "bf16 autocast runs on CUDA only; skipped"
        return cell
    if impl == "compiled" and c_compiler() is None:
        cell["note"] = "torch.compile needs a C compiler and none was found; skipped"
        return cell
    torch.manual_seed(seed)
    model = (TransformerModel() if impl == "transformer" else HandWritten()).to(device)
    model.train()
    optimizer, flavour = adam(model, impl, device)
    notes = [f"Adam {flavour}"]

    def loss_of(src, tgt):
        logits = model(src, tgt[:, :-1])
        return F.cross_entropy(logits.float().reshape(-1, TGT_VOCAB), tgt[:, 1:].reshape(-1))

    forward = loss_of
    if impl == "compiled":
        forward = torch.compile(loss_of, mode="reduce-overhead", dynamic=False)
        if device.type != "cuda":
            notes.append("no CUDA graphs on the CPU: inductor only")

    pool = POOL_BATCHES * batch
    src_pool = torch.randint(1, SRC_VOCAB, (pool, NOTES + 1), device=device)
    tgt_pool = torch.randint(1, TGT_VOCAB, (pool, NOTES + 1), device=device)
    src_pool[:, 0] = 0
    tgt_pool[:, 0] = 0
    order = torch.randperm(pool, device=device)
    autocast = precision == "bf16"

    def step(i):
        index = order[(i % POOL_BATCHES) * batch : (i % POOL_BATCHES + 1) * batch]
        src, tgt = src_pool[index], tgt_pool[index]
        if impl == "compiled" and device.type == "cuda":
            torch.compiler.cudagraph_mark_step_begin()
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=autocast):
            loss = forward(src, tgt)
        loss.backward()
        optimizer.step()
        # A copy: under CUDA graphs the next replay overwrites the output.
        return loss.detach().clone()

    started = time.perf_counter()
    for i in range(max(warmup, 1 if impl == "compiled" else 0)):
        step(i)
        if impl == "compiled" and i == 0:
            synchronize(device)
            cell["compile_s"] = round(time.perf_counter() - started, 2)
            if compile_only:
                cell["note"] = "; ".join(notes + ["compile only: no timed steps"])
                return cell
    synchronize(device)
    losses = []
    started, cpu_started = time.perf_counter(), time.process_time()
    for i in range(steps):
        losses.append(step(warmup + i))
    synchronize(device)
    elapsed = time.perf_counter() - started
    cell["cpu_ms_per_step"] = round(1e3 * (time.process_time() - cpu_started) / steps, 1)
    cell["seq_per_s"] = round(batch * steps / elapsed, 2)
    cell["ms_per_step"] = round(1e3 * elapsed / steps, 3)
    cell["loss"] = round(float(torch.stack(losses).float().mean()), 4)
    cell["note"] = "; ".join(notes)
    return cell


def parse_list(text, allowed=None, kind=str):
    values = [kind(v) for v in text.split(",") if v]
    if allowed is not None:
        for v in values:
            if v not in allowed:
                raise argparse.ArgumentTypeError(f"{v} is not one of {', '.join(allowed)}")
    return values


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--batch", default="16,64,256", help="comma-separated batch sizes")
    parser.add_argument("--precision", default="fp32,bf16", help="fp32, bf16 or both")
    parser.add_argument("--impl", default="transformer,handwritten,compiled", help="implementations to time")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--compile-only", action="store_true",
                        help="compiled cells: stop after compiling (fills inductor's caches for a later timed run)")
    parser.add_argument("--jsonl", help="also append each cell to this file as soon as it is measured")
    args = parser.parse_args()
    try:
        batches = parse_list(args.batch, kind=int)
        precisions = parse_list(args.precision, ["fp32", "bf16"])
        impls = parse_list(args.impl, ["transformer", "handwritten", "compiled"])
    except (argparse.ArgumentTypeError, ValueError) as error:
        parser.error(str(error))
    if args.steps < 1 or args.warmup < 0:
        parser.error("--steps must be at least 1 and --warmup at least 0")

    device = torch.device(args.device)
    results = []
    for impl in impls:
        for precision in precisions:
            for batch in batches:
                try:
                    cell = run_cell(impl, batch, precision, args.steps, args.warmup, device, args.seed, args.compile_only)
                except Exception as error:  # one failed cell must not lose the others
                    traceback.print_exc(file=sys.stderr)
                    cell = {"impl": impl, "batch": batch, "precision": precision, "steps": args.steps,
                            "warmup": args.warmup, "seq_per_s": None, "ms_per_step": None, "cpu_ms_per_step": None, "loss": None,
                            "compile_s": None, "note": f"failed: {type(error).__name__}: {str(error)[:300]}"}
                print(f"pytorch_reference: {json.dumps(cell)}", file=sys.stderr, flush=True)
                if args.jsonl:
                    # Survives a timeout that kills the process before the final report.
                    with open(args.jsonl, "a") as f:
                        f.write(json.dumps(dict(cell, torch=torch.__version__, device=str(device))) + "\n")
                results.append(cell)
                if device.type == "cuda":
                    torch.cuda.empty_cache()
    report = {
        "torch": torch.__version__,
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "threads": torch.get_num_threads(),
        "results": results,
    }
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
