//! The midi-translation encoder-decoder: "Attention Is All You Need" as the
//! Annotated Transformer writes it (FACTS.md section 4). Source ids `[B, S]`
//! and target ids `[B, T]` in, logits `[B, T, V_out]` out.
//!
//! - Residual blocks `x + dropout(sublayer(norm(x)))` (pre-norm) and a final
//!   layer norm per stack; [`Norm::Post`] gives `norm(x + dropout(sublayer(x)))`
//!   instead, without the final norm (every block already ends in one).
//! - The Annotated Transformer's own layer norm: `a * (x - mean) / (std + 1e-6) + b`
//!   with the unbiased standard deviation (not PyTorch's `sqrt(var + eps)`),
//!   computed by libtorch's fused kernel (see [`LayerNorm`]: equal up to a
//!   relative `1e-6 / std`).
//! - Embeddings scaled by `sqrt(d_model)`, then sinusoidal positions added and
//!   dropout; with [`Positions::Relative`](runner_plan::config::Positions::Relative) no sinusoids but T5's bucketed
//!   bias (see [`super::positions`]) added to the self-attention scores, its table
//!   shared by all layers of a stack (bidirectional in the encoder, causal in
//!   the decoder).
//! - Multi-head attention with biased q/k/v/o projections of width
//!   `heads * d_kv`, scores scaled by `1/sqrt(d_kv)`, dropout on the
//!   probabilities; ReLU feed-forward `w2(dropout(relu(w1(x))))`. The
//!   projections that read the same input are one fused linear map:
//!   self-attention's `qkv` (width `3 * heads * d_kv`, split into q, k, v),
//!   cross-attention's `kv` over the encoder output (width `2 * heads * d_kv`)
//!   beside its own `q` (one GEMM, one autocast cast of the input and one
//!   backward GEMM instead of three; docs/perf.md).
//! - Xavier-uniform init of every matrix (embeddings and projections; a fused
//!   projection block by block, each `[heads * d_kv, d_model]` block with the
//!   bound it would have on its own), linear biases as PyTorch's default
//!   (fan-in `d_model`), norms at one and zero.
//! - Generator: a linear map to the target vocabulary (its log-softmax is the
//!   loss's). With tied embeddings its weight is the target embedding table
//!   (the bias stays its own).
//!
//! Checkpoint keys (`{i}` a layer number):
//!
//! ```text
//! src_embed.weight, tgt_embed.weight                  (separate scheme)
//! embed.weight                                        (shared scheme)
//! encoder.layers.{i}.self_attn.qkv.{weight,bias}      (q, k, v stacked: [3 * heads * d_kv, d_model])
//! encoder.layers.{i}.self_attn.o.{weight,bias}
//! encoder.layers.{i}.self_attn_norm.{weight,bias}
//! encoder.layers.{i}.ff.{w1,w2}.{weight,bias}
//! encoder.layers.{i}.ff_norm.{weight,bias}
//! encoder.norm.{weight,bias}                          (pre-norm)
//! encoder.relative_bias.weight                        (relative positions)
//! decoder.…                                           (as the encoder, plus:)
//! decoder.layers.{i}.cross_attn.{q,o}.{weight,bias}
//! decoder.layers.{i}.cross_attn.kv.{weight,bias}      (k, v stacked: [2 * heads * d_kv, d_model])
//! decoder.layers.{i}.cross_attn_norm.{weight,bias}
//! generator.weight                                    (untied), generator.bias
//! ```

use tch::nn::Module;
use tch::{Tensor, nn};

use super::positions::{RelativeBias, SinusoidTable};
use super::{DecodeState, LayerCache, Mask, Memory, Seq2Seq, Sizes, attend, merge_heads, residual, split_heads};
use runner_plan::config::{ModelConfig, Norm};

/// Xavier-uniform (Glorot, fan average) for a `[fan_out, fan_in]` matrix.
fn xavier(fan_out: i64, fan_in: i64) -> nn::Init {
    let bound = (6.0 / (fan_in + fan_out) as f64).sqrt();
    nn::Init::Uniform { lo: -bound, up: bound }
}

/// A biased linear layer with a Xavier-uniform weight.
fn linear(p: nn::Path, d_in: i64, d_out: i64) -> nn::Linear {
    fused_linear(p, d_in, d_out, 1)
}

/// A biased linear layer of `blocks` stacked `[d_out, d_in]` maps (weight
/// `[blocks * d_out, d_in]`), each block Xavier-uniform as a `[d_out, d_in]`
/// matrix on its own: a fused q/k/v projection starts as three separate ones
/// would. The bias as PyTorch's default (fan-in `d_in`) in every block.
fn fused_linear(p: nn::Path, d_in: i64, d_out: i64, blocks: i64) -> nn::Linear {
    let config = nn::LinearConfig {
        ws_init: xavier(d_out, d_in),
        bs_init: None,
        bias: true,
    };
    nn::linear(p, d_in, blocks * d_out, config)
}

/// The Annotated Transformer's layer norm, `a * (x - mean) / (std + eps) + b`
/// with the unbiased `std` and `eps` = [`NORM_EPS`], computed by libtorch's
/// fused `layer_norm` (one kernel forward and one backward instead of seven
/// and about fifteen; docs/perf.md).
///
/// With `n` features, `std = c * s` where `s` is the biased deviation and
/// `c = sqrt(n / (n - 1))`, so the formula is
/// `(a / c) * (x - mean) / (s + eps / c) + b`. The fused kernel divides by
/// `sqrt(s^2 + eps^2)` instead of `s + eps / c`: the two agree to a relative
/// `eps / std` (`1e-6` at unit scale, the order of float32 rounding in the
/// mean and variance themselves) and both stay finite on a constant row,
/// where the formula gives `(x - mean) / eps` and the kernel
/// `(x - mean) / (c * eps)`. The weights keep their meaning, so checkpoints
/// are unchanged.
#[derive(Debug)]
struct LayerNorm {
    weight: Tensor,
    bias: Tensor,
    /// `sqrt((n - 1) / n)`: folds the unbiased deviation into the weight.
    unbias: f64,
}

/// The layer norm's `eps`, added to the unbiased standard deviation.
const NORM_EPS: f64 = 1e-6;

impl LayerNorm {
    fn new(p: nn::Path, d_model: i64) -> LayerNorm {
        LayerNorm {
            weight: p.ones("weight", &[d_model]),
            bias: p.zeros("bias", &[d_model]),
            unbias: ((d_model - 1) as f64 / d_model as f64).sqrt(),
        }
    }
}

impl nn::Module for LayerNorm {
    fn forward(&self, x: &Tensor) -> Tensor {
        let features = x.size().last().copied().expect("at least one dimension");
        let weight = &self.weight * self.unbias;
        x.layer_norm([features], Some(&weight), Some(&self.bias), NORM_EPS * NORM_EPS, true)
    }
}

/// What self- and cross-attention share: the head layout, attention
/// dropout and the output projection `o`.
#[derive(Debug)]
struct Heads {
    o: nn::Linear,
    heads: i64,
    d_kv: i64,
    /// Dropout on the attention weights.
    dropout: f64,
}

impl Heads {
    fn new(p: &nn::Path, sizes: Sizes) -> Heads {
        Heads {
            o: linear(p / "o", sizes.heads * sizes.d_kv, sizes.d_model),
            heads: sizes.heads,
            d_kv: sizes.d_kv,
            dropout: sizes.attention_dropout,
        }
    }

    /// A projection's output `[B, L, n * H * d_kv]` → `n` × `[B, H, L, d_kv]`.
    fn split(&self, y: &Tensor) -> Vec<Tensor> {
        split_heads(y, self.heads, self.d_kv)
    }

    /// Queries `[B, H, T, d_kv]` attend to keys and values `[B, H, S, d_kv]`
    /// (scores scaled by `1/sqrt(d_kv)`); heads merged and projected: `[B, T, D]`.
    fn attend(&self, q: &Tensor, k: &Tensor, v: &Tensor, mask: &Mask, train: bool) -> Tensor {
        merge_heads(&attend(q, k, v, mask, self.dropout, train, None)).apply(&self.o)
    }
}

/// Self-attention: queries, keys and values from one fused projection `qkv`.
#[derive(Debug)]
struct SelfAttention {
    qkv: nn::Linear,
    heads: Heads,
}

impl SelfAttention {
    fn new(p: nn::Path, sizes: Sizes) -> SelfAttention {
        SelfAttention {
            qkv: fused_linear(&p / "qkv", sizes.d_model, sizes.heads * sizes.d_kv, 3),
            heads: Heads::new(&p, sizes),
        }
    }

    /// `x` `[B, L, D]` → `[B, L, D]`.
    fn forward(&self, x: &Tensor, mask: &Mask, train: bool) -> Tensor {
        let [q, k, v] = self.project(x);
        self.heads.attend(&q, &k, &v, mask, train)
    }

    /// One new position `x` `[B, 1, D]` attends to itself and the cached
    /// earlier ones (its keys and values join the cache): `[B, 1, D]`.
    fn step(&self, x: &Tensor, cache: &mut LayerCache, mask: &Mask) -> Tensor {
        let [q, k, v] = self.project(x);
        let (k, v) = cache.append(k, v);
        self.heads.attend(&q, &k, &v, mask, false)
    }

    /// Queries, keys and values `[B, H, L, d_kv]` of `x` `[B, L, D]`.
    fn project(&self, x: &Tensor) -> [Tensor; 3] {
        self.heads.split(&x.apply(&self.qkv)).try_into().expect("q, k and v")
    }
}

/// Cross-attention: queries from the decoder (`q`), keys and values from the
/// encoder's output by one fused projection `kv`.
#[derive(Debug)]
struct CrossAttention {
    q: nn::Linear,
    kv: nn::Linear,
    heads: Heads,
}

impl CrossAttention {
    fn new(p: nn::Path, sizes: Sizes) -> CrossAttention {
        let (d, inner) = (sizes.d_model, sizes.heads * sizes.d_kv);
        CrossAttention {
            q: linear(&p / "q", d, inner),
            kv: fused_linear(&p / "kv", d, inner, 2),
            heads: Heads::new(&p, sizes),
        }
    }

    /// Keys and values `[B, H, S, d_kv]` of `memory` `[B, S, D]`.
    fn keys_values(&self, memory: &Tensor) -> (Tensor, Tensor) {
        let [k, v] = self.heads.split(&memory.apply(&self.kv)).try_into().expect("k and v");
        (k, v)
    }

    /// Queries from `x` `[B, T, D]` attend to `memory`'s keys and values: `[B, T, D]`.
    fn forward(&self, x: &Tensor, (k, v): &(Tensor, Tensor), mask: &Mask, train: bool) -> Tensor {
        let [q] = self.heads.split(&x.apply(&self.q)).try_into().expect("q");
        self.heads.attend(&q, k, v, mask, train)
    }
}

/// `w2(dropout(relu(w1(x))))`.
#[derive(Debug)]
struct FeedForward {
    w1: nn::Linear,
    w2: nn::Linear,
    dropout: f64,
}

impl FeedForward {
    fn new(p: nn::Path, sizes: Sizes) -> FeedForward {
        FeedForward {
            w1: linear(&p / "w1", sizes.d_model, sizes.d_ff),
            w2: linear(&p / "w2", sizes.d_ff, sizes.d_model),
            dropout: sizes.dropout,
        }
    }

    fn forward(&self, x: &Tensor, train: bool) -> Tensor {
        x.apply(&self.w1).relu().dropout(self.dropout, train).apply(&self.w2)
    }
}

/// One encoder layer (self-attention, feed-forward) or decoder layer
/// (self-attention, cross-attention, feed-forward).
#[derive(Debug)]
struct Layer {
    self_attn: SelfAttention,
    self_attn_norm: LayerNorm,
    cross_attn: Option<(CrossAttention, LayerNorm)>,
    ff: FeedForward,
    ff_norm: LayerNorm,
    placement: Norm,
    dropout: f64,
}

impl Layer {
    fn new(p: nn::Path, sizes: Sizes, placement: Norm, cross: bool) -> Layer {
        Layer {
            self_attn: SelfAttention::new(&p / "self_attn", sizes),
            self_attn_norm: LayerNorm::new(&p / "self_attn_norm", sizes.d_model),
            cross_attn: cross.then(|| {
                (
                    CrossAttention::new(&p / "cross_attn", sizes),
                    LayerNorm::new(&p / "cross_attn_norm", sizes.d_model),
                )
            }),
            ff: FeedForward::new(&p / "ff", sizes),
            ff_norm: LayerNorm::new(&p / "ff_norm", sizes.d_model),
            placement,
            dropout: sizes.dropout,
        }
    }

    /// `x` `[B, L, D]` → `[B, L, D]`; `memory` and `cross_mask` only for decoder layers.
    fn forward(&self, x: &Tensor, self_mask: &Mask, memory: Option<(&Tensor, &Mask)>, train: bool) -> Tensor {
        let (placement, p) = (self.placement, self.dropout);
        let mut x = residual(x, &self.self_attn_norm, placement, p, train, |h| {
            self.self_attn.forward(h, self_mask, train)
        });
        if let (Some((attn, norm)), Some((memory, cross_mask))) = (&self.cross_attn, memory) {
            x = residual(&x, norm, placement, p, train, |h| {
                attn.forward(h, &attn.keys_values(memory), cross_mask, train)
            });
        }
        residual(&x, &self.ff_norm, placement, p, train, |h| self.ff.forward(h, train))
    }

    /// A decoder layer on one new position `x` `[B, 1, D]` (eval mode), with
    /// the keys and values in `cache`: `[B, 1, D]`.
    fn step(&self, x: &Tensor, cache: &mut LayerCache, self_mask: &Mask, cross_mask: &Mask) -> Tensor {
        let (placement, p) = (self.placement, self.dropout);
        let mut x = residual(x, &self.self_attn_norm, placement, p, false, |h| {
            self.self_attn.step(h, cache, self_mask)
        });
        if let Some((attn, norm)) = &self.cross_attn {
            x = residual(&x, norm, placement, p, false, |h| {
                attn.forward(h, &cache.cross_kv, cross_mask, false)
            });
        }
        residual(&x, &self.ff_norm, placement, p, false, |h| self.ff.forward(h, false))
    }
}

/// The layers of the encoder or the decoder, and what they share.
#[derive(Debug)]
struct Stack {
    layers: Vec<Layer>,
    /// Pre-norm only.
    norm: Option<LayerNorm>,
    /// Relative positions only.
    relative_bias: Option<RelativeBias>,
}

impl Stack {
    fn new(p: nn::Path, sizes: Sizes, placement: Norm, layers: i64, decoder: bool) -> Stack {
        Stack {
            layers: (0..layers)
                .map(|i| Layer::new(&p / "layers" / i, sizes, placement, decoder))
                .collect(),
            norm: (placement == Norm::Pre).then(|| LayerNorm::new(&p / "norm", sizes.d_model)),
            relative_bias: sizes.relative.map(|(buckets, max_distance)| {
                let init = xavier(buckets, sizes.heads);
                RelativeBias::new(&p / "relative_bias", sizes.heads, buckets, max_distance, !decoder, init)
            }),
        }
    }

    /// `x` `[B, L, D]` (embedded) → `[B, L, D]`.
    fn forward(&self, x: Tensor, keep: Option<&Tensor>, memory: Option<&Memory>, train: bool) -> Tensor {
        let len = x.size()[1];
        let decoder = memory.is_some();
        // [1, H, L, L]
        let bias = self.relative_bias.as_ref().map(|b| b.forward(0, len, len));
        let self_mask = Mask::new(bias, decoder, keep, len);
        let cross_mask = memory.map(|m| Mask::new(None, false, m.keep.as_ref(), len));
        let cross = memory.zip(cross_mask.as_ref()).map(|(m, mask)| (&m.states, mask));
        let x = self
            .layers
            .iter()
            .fold(x, |x, layer| layer.forward(&x, &self_mask, cross, train));
        self.final_norm(x)
    }

    /// The decoder's state before the first target: each layer's
    /// cross-attention keys and values of `memory`.
    fn start(&self, memory: &Memory) -> DecodeState {
        let cross_kv = self
            .layers
            .iter()
            .map(|layer| {
                let (attn, _) = layer.cross_attn.as_ref().expect("decoder layers attend to the memory");
                attn.keys_values(&memory.states)
            })
            .collect();
        DecodeState::new(cross_kv, memory)
    }

    /// The decoder on one new position `x` `[B, 1, D]` (embedded) at
    /// `state.position`, eval mode → `[B, 1, D]`.
    fn step(&self, x: Tensor, state: &mut DecodeState) -> Tensor {
        let x = state.through_layers(&self.layers, self.relative_bias.as_ref(), x, Layer::step);
        self.final_norm(x)
    }

    /// The final norm (pre-norm only).
    fn final_norm(&self, x: Tensor) -> Tensor {
        match &self.norm {
            Some(norm) => norm.forward(&x),
            None => x,
        }
    }
}

/// The midi-translation encoder-decoder.
#[derive(Debug)]
pub struct Vanilla {
    src_embed: Tensor,
    tgt_embed: Tensor,
    encoder: Stack,
    decoder: Stack,
    generator_weight: Tensor,
    generator_bias: Tensor,
    /// `None` with relative positions.
    positions: Option<SinusoidTable>,
    d_model: i64,
    dropout: f64,
}

impl Vanilla {
    /// Registers the weights under `p`.
    pub(super) fn new(p: &nn::Path, cfg: &ModelConfig, sizes: Sizes) -> Vanilla {
        let d = sizes.d_model;
        let (src_embed, tgt_embed) = if sizes.shared {
            let table = (p / "embed").var("weight", &[sizes.src_vocab, d], xavier(sizes.src_vocab, d));
            (table.shallow_clone(), table)
        } else {
            (
                (p / "src_embed").var("weight", &[sizes.src_vocab, d], xavier(sizes.src_vocab, d)),
                (p / "tgt_embed").var("weight", &[sizes.tgt_vocab, d], xavier(sizes.tgt_vocab, d)),
            )
        };
        let encoder = Stack::new(p / "encoder", sizes, cfg.norm, sizes.encoder_layers, false);
        let decoder = Stack::new(p / "decoder", sizes, cfg.norm, sizes.decoder_layers, true);
        let generator = p / "generator";
        let generator_weight = if cfg.tie_embeddings {
            tgt_embed.shallow_clone()
        } else {
            generator.var("weight", &[sizes.tgt_vocab, d], xavier(sizes.tgt_vocab, d))
        };
        let bound = 1.0 / (d as f64).sqrt();
        let generator_bias = generator.var("bias", &[sizes.tgt_vocab], nn::Init::Uniform { lo: -bound, up: bound });
        Vanilla {
            src_embed,
            tgt_embed,
            encoder,
            decoder,
            generator_weight,
            generator_bias,
            positions: sizes.relative.is_none().then(|| SinusoidTable::new(d, p.device())),
            d_model: d,
            dropout: sizes.dropout,
        }
    }

    /// Ids `[B, L]` at positions `start..start + L` →
    /// `dropout(embed(ids) * sqrt(d_model) + positions)` `[B, L, D]`.
    fn embed(&self, table: &Tensor, ids: &Tensor, start: i64, train: bool) -> Tensor {
        let x = Tensor::embedding(table, ids, -1, false, false) * (self.d_model as f64).sqrt();
        let x = match &self.positions {
            // [L, D] broadcast over the batch
            Some(positions) => x + positions.at(start, ids.size()[1]),
            None => x,
        };
        x.dropout(self.dropout, train)
    }

    /// Decoder output `[.., D]` → logits `[.., V_out]`.
    fn generate(&self, h: &Tensor) -> Tensor {
        h.linear(&self.generator_weight, Some(&self.generator_bias))
    }
}

impl Seq2Seq for Vanilla {
    fn encode(&self, src: &Tensor, keep: Option<&Tensor>, train: bool) -> Memory {
        let x = self.embed(&self.src_embed, src, 0, train);
        Memory {
            states: self.encoder.forward(x, keep, None, train),
            keep: keep.map(Tensor::shallow_clone),
        }
    }

    fn decode(&self, memory: &Memory, tgt_in: &Tensor, train: bool) -> Tensor {
        let x = self.embed(&self.tgt_embed, tgt_in, 0, train);
        // [B, T, D] -> [B, T, V_out]
        self.generate(&self.decoder.forward(x, None, Some(memory), train))
    }

    fn start_decoding(&self, memory: &Memory) -> DecodeState {
        self.decoder.start(memory)
    }

    fn decode_next(&self, state: &mut DecodeState, ids: &Tensor) -> Tensor {
        let x = self.embed(&self.tgt_embed, ids, state.position, false);
        let h = self.decoder.step(x, state);
        state.position += 1;
        // [B, 1, D] -> [B, D] -> [B, V_out]
        self.generate(&h.squeeze_dim(1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::tests::{
        check_causal, check_incremental, check_masked_source, keys, max_diff, overfit, save_load_round_trip, seeded,
        tiny,
    };
    use runner_plan::config::{Architecture, Positions, Scheme};
    use tch::Kind;

    fn cfg() -> ModelConfig {
        tiny(Architecture::Vanilla)
    }

    #[test]
    fn checkpoint_keys_form_a_readable_tree() {
        let names = keys(&cfg(), Scheme::Separate);
        for name in [
            "src_embed.weight",
            "tgt_embed.weight",
            "encoder.layers.0.self_attn.qkv.weight",
            "encoder.layers.0.self_attn.qkv.bias",
            "encoder.layers.1.self_attn.o.bias",
            "encoder.layers.0.self_attn_norm.weight",
            "encoder.layers.1.ff.w1.weight",
            "encoder.layers.1.ff_norm.bias",
            "encoder.norm.weight",
            "decoder.layers.0.cross_attn.q.weight",
            "decoder.layers.0.cross_attn.kv.weight",
            "decoder.layers.1.cross_attn.kv.bias",
            "decoder.layers.1.cross_attn_norm.bias",
            "decoder.norm.bias",
            "generator.weight",
            "generator.bias",
        ] {
            assert!(names.contains(&name.to_string()), "{name} not in {names:?}");
        }
        // Per layer (weight + bias each): self-attention qkv and o, cross-attention
        // q, kv and o, 2 feed-forward linears; norms: 2 per encoder layer, 3 per
        // decoder layer.
        let encoder_layer = 2 * 2 + 2 * 2 + 2 * 2;
        let decoder_layer = 5 * 2 + 2 * 2 + 3 * 2;
        assert_eq!(names.len(), 2 + 2 * encoder_layer + 2 * decoder_layer + 2 * 2 + 2);

        let shared = keys(&cfg(), Scheme::Shared);
        assert!(shared.contains(&"embed.weight".to_string()));
        assert!(
            !shared
                .iter()
                .any(|k| k.contains("src_embed") || k.contains("tgt_embed"))
        );
        let variants = ModelConfig {
            tie_embeddings: true,
            norm: Norm::Post,
            positions: Positions::Relative,
            ..cfg()
        };
        let variant = keys(&variants, Scheme::Separate);
        assert!(!variant.contains(&"generator.weight".to_string()));
        assert!(!variant.contains(&"encoder.norm.weight".to_string()));
        assert!(variant.contains(&"encoder.relative_bias.weight".to_string()));
        assert!(variant.contains(&"decoder.relative_bias.weight".to_string()));
    }

    #[test]
    fn weights_start_as_the_annotated_transformer_does() {
        let _generator = seeded(7);
        let vs = nn::VarStore::new(tch::Device::Cpu);
        crate::model::build(&vs.root(), &cfg(), 30, 12, Scheme::Separate).unwrap();
        let vars = vs.variables();
        // Xavier-uniform [12, 16]: bound sqrt(6 / 28).
        let bound = (6.0f64 / 28.0).sqrt();
        let embed = &vars["tgt_embed.weight"];
        let max = embed.abs().max().double_value(&[]);
        assert!(max <= bound && max > 0.8 * bound, "{max} vs {bound}");
        let norm = &vars["encoder.layers.0.self_attn_norm.weight"];
        assert!(norm.equal(&Tensor::ones([16], (Kind::Float, tch::Device::Cpu))));
        assert_eq!(vars["decoder.norm.bias"].abs().sum(Kind::Float).double_value(&[]), 0.0);
    }

    #[test]
    fn fused_projections_start_block_by_block_as_separate_ones_would() {
        let _generator = seeded(7);
        let vs = nn::VarStore::new(tch::Device::Cpu);
        crate::model::build(&vs.root(), &cfg(), 30, 12, Scheme::Separate).unwrap();
        let vars = vs.variables();
        // Each [16, 16] block (2 heads of 8) is Xavier-uniform on its own:
        // bound sqrt(6 / 32), not the sqrt(6 / 64) of the whole [48, 16].
        let bound = (6.0f64 / 32.0).sqrt();
        let max = |t: &Tensor| t.abs().max().double_value(&[]);
        for (name, blocks) in [
            ("encoder.layers.0.self_attn.qkv", 3),
            ("decoder.layers.1.cross_attn.kv", 2),
        ] {
            let weight = &vars[&format!("{name}.weight")];
            assert_eq!(weight.size(), [blocks * 16, 16], "{name}");
            for block in weight.chunk(blocks, 0) {
                let m = max(&block);
                assert!(m <= bound && m > 0.8 * bound, "{name}: {m} vs {bound}");
            }
            // PyTorch's default bias: fan-in d_model, bound 1 / 4.
            let m = max(&vars[&format!("{name}.bias")]);
            assert!(m <= 0.25 && m > 0.2, "{name} bias: {m}");
        }
    }

    /// Softmax attention written out with the fused weights cut into their
    /// blocks: what separate q, k, v projections compute.
    fn textbook(x: &Tensor, context: &Tensor, q: (&Tensor, &Tensor), kv: (&Tensor, &Tensor), heads: &Heads) -> Tensor {
        let (w, b) = kv;
        let (wk, wv) = (w.chunk(2, 0), b.chunk(2, 0));
        let split = |y: Tensor| split_heads(&y, heads.heads, heads.d_kv).remove(0);
        let q = split(x.linear(q.0, Some(q.1)));
        let k = split(context.linear(&wk[0], Some(&wv[0])));
        let v = split(context.linear(&wk[1], Some(&wv[1])));
        let scores = q.matmul(&k.transpose(-2, -1)) / (heads.d_kv as f64).sqrt();
        merge_heads(&scores.softmax(-1, Kind::Float).matmul(&v)).apply(&heads.o)
    }

    #[test]
    fn fused_projections_compute_what_separate_ones_do() {
        let _generator = seeded(9);
        let vs = nn::VarStore::new(tch::Device::Cpu);
        let sizes = Sizes::check(&cfg(), 30, 12, Scheme::Separate).unwrap();
        let x = Tensor::randn([2, 5, 16], (Kind::Float, tch::Device::Cpu));
        let memory = Tensor::randn([2, 7, 16], (Kind::Float, tch::Device::Cpu));

        let attn = SelfAttention::new(vs.root() / "self", sizes);
        let (w, b) = (attn.qkv.ws.chunk(3, 0), attn.qkv.bs.as_ref().unwrap().chunk(3, 0));
        let (wkv, bkv) = (Tensor::cat(&w[1..], 0), Tensor::cat(&b[1..], 0));
        let expected = textbook(&x, &x, (&w[0], &b[0]), (&wkv, &bkv), &attn.heads);
        assert!(max_diff(&attn.forward(&x, &Mask::All, false), &expected) < 1e-5);

        let attn = CrossAttention::new(vs.root() / "cross", sizes);
        let kv = (&attn.kv.ws, attn.kv.bs.as_ref().unwrap());
        let expected = textbook(&x, &memory, (&attn.q.ws, attn.q.bs.as_ref().unwrap()), kv, &attn.heads);
        let got = attn.forward(&x, &attn.keys_values(&memory), &Mask::All, false);
        assert!(max_diff(&got, &expected) < 1e-5);
    }

    #[test]
    fn layer_norm_uses_the_unbiased_std_plus_eps() {
        let vs = nn::VarStore::new(tch::Device::Cpu);
        let norm = LayerNorm::new(vs.root(), 4);
        let x = Tensor::from_slice(&[1.0f32, 2.0, 3.0, 6.0]).view([1, 4]);
        // mean 3, unbiased std sqrt(14 / 3)
        let std = (14.0f64 / 3.0).sqrt() + 1e-6;
        let y = norm.forward(&x);
        for (i, v) in [1.0, 2.0, 3.0, 6.0].iter().enumerate() {
            assert!((y.double_value(&[0, i as i64]) - (v - 3.0) / std).abs() < 1e-6);
        }
    }

    #[test]
    fn fused_layer_norm_matches_the_formula_within_eps_over_std_and_stays_finite() {
        let _generator = seeded(8);
        let vs = nn::VarStore::new(tch::Device::Cpu);
        let mut norm = LayerNorm::new(vs.root(), 256);
        tch::no_grad(|| {
            norm.weight
                .copy_(&Tensor::randn([256], (Kind::Float, tch::Device::Cpu)));
            norm.bias.copy_(&Tensor::randn([256], (Kind::Float, tch::Device::Cpu)));
        });
        for scale in [0.01, 1.0, 100.0] {
            let x = Tensor::randn([64, 256], (Kind::Float, tch::Device::Cpu)) * scale + 3.0;
            let mean = x.mean_dim(-1, true, None);
            let std = x.std_dim(-1, true, true);
            let expected = (&x - mean) / (std + NORM_EPS) * &norm.weight + &norm.bias;
            let relative = max_diff(&norm.forward(&x), &expected) / expected.abs().max().double_value(&[]);
            // The documented bound: eps / std, plus float32 rounding.
            let bound = 2.0 * NORM_EPS / scale + 2e-6;
            assert!(relative < bound, "scale {scale}: {relative} vs {bound}");
        }
        let constant = Tensor::full([2, 256], 0.5, (Kind::Float, tch::Device::Cpu));
        assert!(norm.forward(&constant).isfinite().all().int64_value(&[]) == 1);
    }

    #[test]
    fn save_and_load_give_identical_outputs() {
        save_load_round_trip(&cfg(), "vanilla");
    }

    #[test]
    fn later_targets_do_not_change_earlier_logits() {
        check_causal(&cfg());
        check_causal(&ModelConfig {
            positions: Positions::Relative,
            norm: Norm::Post,
            ..cfg()
        });
    }

    #[test]
    fn incremental_decoding_gives_the_full_prefix_logits() {
        for norm in [Norm::Pre, Norm::Post] {
            for positions in [Positions::Sinusoidal, Positions::Relative] {
                check_incremental(&ModelConfig {
                    norm,
                    positions,
                    ..cfg()
                });
            }
        }
    }

    #[test]
    fn masked_source_positions_are_ignored() {
        check_masked_source(&cfg());
        check_masked_source(&ModelConfig {
            positions: Positions::Relative,
            ..cfg()
        });
    }

    #[test]
    fn overfits_one_batch_with_separate_vocabularies() {
        let (before, after) = overfit(&cfg(), Scheme::Separate, 250);
        assert!(before > 1.5 && after < 0.1, "{before} -> {after}");
    }

    #[test]
    fn overfits_one_batch_with_a_shared_vocabulary() {
        let (before, after) = overfit(&cfg(), Scheme::Shared, 250);
        assert!(before > 1.5 && after < 0.1, "{before} -> {after}");
    }
}
