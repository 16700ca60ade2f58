//! The midi-hf-transformers encoder-decoder: HuggingFace's
//! `T5ForConditionalGeneration` with its defaults (FACTS.md section 4).
//! Source ids `[B, S]` and target ids `[B, T]` in, logits `[B, T, V_out]` out.
//!
//! - RMS norm (`T5LayerNorm`: `weight * x / sqrt(mean(x^2) + 1e-6)`, no mean
//!   subtraction, no bias), pre-norm residual blocks
//!   `x + dropout(sublayer(norm(x)))`, a final norm then dropout per stack;
//!   [`Norm::Post`] gives `norm(x + dropout(sublayer(x)))` without the final
//!   norm.
//! - Attention without biases, inner width `heads * d_kv` (which may differ
//!   from `d_model`), and no `1/sqrt(d_kv)` scaling of the scores; dropout
//!   on the probabilities. Projections that read the same input are one
//!   fused map (self-attention's `qkv`, cross-attention's `kv` beside its
//!   `q`): HF's separate weights stacked along the output.
//! - Relative position bias ([`super::positions::relative_position_bucket`]): a
//!   `[buckets, heads]` table in the first block of each stack, shared by all
//!   its blocks, bidirectional in the encoder and causal in the decoder;
//!   cross-attention has none. With [`Positions::Sinusoidal`](runner_plan::config::Positions::Sinusoidal) the table is
//!   replaced by sinusoids added to the (unscaled) embeddings.
//! - ReLU feed-forward without biases, `wo(dropout(relu(wi(x))))`.
//! - Dropout after the embeddings, on each sublayer's output, inside the
//!   feed-forward, on the attention probabilities and after the final norm.
//! - Output: with tied embeddings the decoder output is scaled by
//!   `d_model^-0.5` and multiplied by the target embedding table; untied, a
//!   separate bias-free `lm_head`.
//!
//! Initialisation follows HF `T5PreTrainedModel._init_weights` with factor
//! 1.0: embeddings and `lm_head` normal(0, 1); `q` normal(0,
//! (d_model * d_kv)^-0.5); `k`, `v` normal(0, d_model^-0.5) (block by block
//! in the fused weights); `o` normal(0, (heads * d_kv)^-0.5); `wi` normal(0,
//! d_model^-0.5); `wo` normal(0, d_ff^-0.5); the relative bias table
//! normal(0, d_model^-0.5); norms at one.
//!
//! Checkpoint keys mirror HF's (`{i}` a block number), except that the fused
//! projections replace HF's `q`/`k`/`v` (self-attention) and `k`/`v`
//! (cross-attention); a HF checkpoint's are their row blocks, in that order:
//!
//! ```text
//! shared.weight                                           (shared scheme)
//! encoder.embed_tokens.weight, decoder.embed_tokens.weight (separate scheme)
//! encoder.block.{i}.layer.0.SelfAttention.{qkv,o}.weight    (qkv: [3 * heads * d_kv, d_model])
//! encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight
//! encoder.block.{i}.layer.0.layer_norm.weight
//! encoder.block.{i}.layer.1.DenseReluDense.{wi,wo}.weight
//! encoder.block.{i}.layer.1.layer_norm.weight
//! encoder.final_layer_norm.weight                         (pre-norm)
//! decoder.block.{i}.layer.0.SelfAttention.…, layer.1.EncDecAttention.…, layer.2.DenseReluDense.…
//! decoder.block.{i}.layer.1.EncDecAttention.{q,kv,o}.weight  (kv: [2 * heads * d_kv, d_model])
//! lm_head.weight                                          (untied)
//! ```

use tch::nn::Module;
use tch::{Kind, Tensor, nn};

use super::positions::{RelativeBias, SinusoidTable};
use super::{DecodeState, LayerCache, Mask, Memory, Seq2Seq, Sizes, attend, merge_heads, residual, split_heads};
use runner_plan::config::{ModelConfig, Norm};

/// A bias-free linear weight `[d_out, d_in]` drawn from normal(0, std).
fn weight(p: nn::Path, d_out: i64, d_in: i64, std: f64) -> Tensor {
    p.var("weight", &[d_out, d_in], nn::Init::Randn { mean: 0.0, stdev: std })
}

/// A bias-free fused linear weight: `[d_out, d_in]` blocks stacked along the
/// output, each drawn from normal(0, its std) (a fused q/k/v projection
/// starts as HF's separate ones do).
fn fused_weight(p: nn::Path, d_out: i64, d_in: i64, stds: &[f64]) -> Tensor {
    let options = (Kind::Float, p.device());
    let blocks: Vec<Tensor> = stds
        .iter()
        .map(|std| Tensor::randn([d_out, d_in], options) * *std)
        .collect();
    p.var_copy("weight", &Tensor::cat(&blocks, 0))
}

/// `T5LayerNorm`: RMS norm with a weight and no bias.
#[derive(Debug)]
struct RmsNorm {
    weight: Tensor,
}

impl RmsNorm {
    fn new(p: nn::Path, d_model: i64) -> RmsNorm {
        RmsNorm {
            weight: p.ones("weight", &[d_model]),
        }
    }
}

impl nn::Module for RmsNorm {
    fn forward(&self, x: &Tensor) -> Tensor {
        // The mean square in f32 even under autocast, as HF does.
        let variance = x.to_kind(Kind::Float).square().mean_dim(-1, true, None);
        x * (variance + 1e-6).rsqrt() * &self.weight
    }
}

/// What `T5Attention`'s self- and cross-attention share: the head layout,
/// attention dropout and the output projection `o` (the position bias lives
/// in the stack).
#[derive(Debug)]
struct Heads {
    o: Tensor,
    heads: i64,
    d_kv: i64,
    /// Dropout on the attention weights.
    dropout: f64,
}

impl Heads {
    fn new(p: &nn::Path, sizes: Sizes) -> Heads {
        let inner = sizes.heads * sizes.d_kv;
        Heads {
            o: weight(p / "o", sizes.d_model, inner, (inner as f64).powf(-0.5)),
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
    /// (T5 does not scale the scores); heads merged and projected: `[B, T, D]`.
    fn attend(&self, q: &Tensor, k: &Tensor, v: &Tensor, mask: &Mask, train: bool) -> Tensor {
        merge_heads(&attend(q, k, v, mask, self.dropout, train, Some(1.0))).linear::<&Tensor>(&self.o, None)
    }
}

/// Self-attention: queries, keys and values from one fused projection `qkv`
/// (HF's `q`, `k`, `v` stacked).
#[derive(Debug)]
struct SelfAttention {
    qkv: Tensor,
    heads: Heads,
}

impl SelfAttention {
    fn new(p: &nn::Path, sizes: Sizes) -> SelfAttention {
        let (d, inner) = (sizes.d_model, sizes.heads * sizes.d_kv);
        let (q_std, kv_std) = (((d * sizes.d_kv) as f64).powf(-0.5), (d as f64).powf(-0.5));
        SelfAttention {
            qkv: fused_weight(p / "qkv", inner, d, &[q_std, kv_std, kv_std]),
            heads: Heads::new(p, sizes),
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
        let y = x.linear::<&Tensor>(&self.qkv, None);
        self.heads.split(&y).try_into().expect("q, k and v")
    }
}

/// Cross-attention: queries from the decoder (`q`), keys and values from the
/// encoder's output by one fused projection `kv` (HF's `k`, `v` stacked).
#[derive(Debug)]
struct CrossAttention {
    q: Tensor,
    kv: Tensor,
    heads: Heads,
}

impl CrossAttention {
    fn new(p: &nn::Path, sizes: Sizes) -> CrossAttention {
        let (d, inner) = (sizes.d_model, sizes.heads * sizes.d_kv);
        let kv_std = (d as f64).powf(-0.5);
        CrossAttention {
            q: weight(p / "q", inner, d, ((d * sizes.d_kv) as f64).powf(-0.5)),
            kv: fused_weight(p / "kv", inner, d, &[kv_std, kv_std]),
            heads: Heads::new(p, sizes),
        }
    }

    /// Keys and values `[B, H, S, d_kv]` of `memory` `[B, S, D]`.
    fn keys_values(&self, memory: &Tensor) -> (Tensor, Tensor) {
        let y = memory.linear::<&Tensor>(&self.kv, None);
        let [k, v] = self.heads.split(&y).try_into().expect("k and v");
        (k, v)
    }

    /// Queries from `x` `[B, T, D]` attend to `memory`'s keys and values: `[B, T, D]`.
    fn forward(&self, x: &Tensor, (k, v): &(Tensor, Tensor), mask: &Mask, train: bool) -> Tensor {
        let [q] = self
            .heads
            .split(&x.linear::<&Tensor>(&self.q, None))
            .try_into()
            .expect("q");
        self.heads.attend(&q, k, v, mask, train)
    }
}

/// `T5DenseActDense` with ReLU: `wo(dropout(relu(wi(x))))`.
#[derive(Debug)]
struct DenseReluDense {
    wi: Tensor,
    wo: Tensor,
    dropout: f64,
}

impl DenseReluDense {
    fn new(p: &nn::Path, sizes: Sizes) -> DenseReluDense {
        let (d, ff) = (sizes.d_model, sizes.d_ff);
        DenseReluDense {
            wi: weight(p / "wi", ff, d, (d as f64).powf(-0.5)),
            wo: weight(p / "wo", d, ff, (ff as f64).powf(-0.5)),
            dropout: sizes.dropout,
        }
    }

    fn forward(&self, x: &Tensor, train: bool) -> Tensor {
        x.linear::<&Tensor>(&self.wi, None)
            .relu()
            .dropout(self.dropout, train)
            .linear::<&Tensor>(&self.wo, None)
    }
}

/// `T5Block`: `layer.0` self-attention, then (decoder) `layer.1`
/// cross-attention, then the feed-forward, each with its own norm.
#[derive(Debug)]
struct Block {
    self_attn: (SelfAttention, RmsNorm),
    cross_attn: Option<(CrossAttention, RmsNorm)>,
    ff: (DenseReluDense, RmsNorm),
    placement: Norm,
    dropout: f64,
}

impl Block {
    fn new(p: &nn::Path, sizes: Sizes, placement: Norm, decoder: bool) -> Block {
        let layer = p / "layer";
        let ff = &layer / if decoder { 2 } else { 1 };
        Block {
            self_attn: (
                SelfAttention::new(&(&layer / 0 / "SelfAttention"), sizes),
                RmsNorm::new(&layer / 0 / "layer_norm", sizes.d_model),
            ),
            cross_attn: decoder.then(|| {
                (
                    CrossAttention::new(&(&layer / 1 / "EncDecAttention"), sizes),
                    RmsNorm::new(&layer / 1 / "layer_norm", sizes.d_model),
                )
            }),
            ff: (
                DenseReluDense::new(&(&ff / "DenseReluDense"), sizes),
                RmsNorm::new(&ff / "layer_norm", sizes.d_model),
            ),
            placement,
            dropout: sizes.dropout,
        }
    }

    /// `x` `[B, L, D]` → `[B, L, D]`; `memory` and its mask only for decoder blocks.
    fn forward(&self, x: &Tensor, self_mask: &Mask, memory: Option<(&Tensor, &Mask)>, train: bool) -> Tensor {
        let (placement, p) = (self.placement, self.dropout);
        let (attn, norm) = &self.self_attn;
        let mut x = residual(x, norm, placement, p, train, |h| attn.forward(h, self_mask, train));
        if let (Some((attn, norm)), Some((memory, cross_mask))) = (&self.cross_attn, memory) {
            x = residual(&x, norm, placement, p, train, |h| {
                attn.forward(h, &attn.keys_values(memory), cross_mask, train)
            });
        }
        let (ff, norm) = &self.ff;
        residual(&x, norm, placement, p, train, |h| ff.forward(h, train))
    }

    /// A decoder block on one new position `x` `[B, 1, D]` (eval mode), with
    /// the keys and values in `cache`: `[B, 1, D]`.
    fn step(&self, x: &Tensor, cache: &mut LayerCache, self_mask: &Mask, cross_mask: &Mask) -> Tensor {
        let (placement, p) = (self.placement, self.dropout);
        let (attn, norm) = &self.self_attn;
        let mut x = residual(x, norm, placement, p, false, |h| attn.step(h, cache, self_mask));
        if let Some((attn, norm)) = &self.cross_attn {
            x = residual(&x, norm, placement, p, false, |h| {
                attn.forward(h, &cache.cross_kv, cross_mask, false)
            });
        }
        let (ff, norm) = &self.ff;
        residual(&x, norm, placement, p, false, |h| ff.forward(h, false))
    }
}

/// `T5Stack`: the blocks of the encoder or the decoder.
#[derive(Debug)]
struct Stack {
    blocks: Vec<Block>,
    /// Pre-norm only.
    final_layer_norm: Option<RmsNorm>,
    /// Relative positions only; lives in block 0.
    relative_bias: Option<RelativeBias>,
    dropout: f64,
}

impl Stack {
    fn new(p: nn::Path, sizes: Sizes, placement: Norm, blocks: i64, decoder: bool) -> Stack {
        let block = &p / "block";
        Stack {
            blocks: (0..blocks)
                .map(|i| Block::new(&(&block / i), sizes, placement, decoder))
                .collect(),
            final_layer_norm: (placement == Norm::Pre).then(|| RmsNorm::new(&p / "final_layer_norm", sizes.d_model)),
            relative_bias: sizes.relative.map(|(buckets, max_distance)| {
                let path = &block / 0 / "layer" / 0 / "SelfAttention" / "relative_attention_bias";
                let init = nn::Init::Randn {
                    mean: 0.0,
                    stdev: (sizes.d_model as f64).powf(-0.5),
                };
                RelativeBias::new(path, sizes.heads, buckets, max_distance, !decoder, init)
            }),
            dropout: sizes.dropout,
        }
    }

    /// `x` `[B, L, D]` (embedded, before dropout) → `[B, L, D]`.
    fn forward(&self, x: Tensor, keep: Option<&Tensor>, memory: Option<&Memory>, train: bool) -> Tensor {
        let len = x.size()[1];
        let decoder = memory.is_some();
        // [1, H, L, L]
        let bias = self.relative_bias.as_ref().map(|b| b.forward(0, len, len));
        let self_mask = Mask::new(bias, decoder, keep, len);
        let cross_mask = memory.map(|m| Mask::new(None, false, m.keep.as_ref(), len));
        let cross = memory.zip(cross_mask.as_ref()).map(|(m, mask)| (&m.states, mask));
        let x = self.blocks.iter().fold(x.dropout(self.dropout, train), |x, block| {
            block.forward(&x, &self_mask, cross, train)
        });
        self.final_norm(x).dropout(self.dropout, train)
    }

    /// The decoder's state before the first target: each block's
    /// cross-attention keys and values of `memory`.
    fn start(&self, memory: &Memory) -> DecodeState {
        let cross_kv = self
            .blocks
            .iter()
            .map(|block| {
                let (attn, _) = block.cross_attn.as_ref().expect("decoder blocks attend to the memory");
                attn.keys_values(&memory.states)
            })
            .collect();
        DecodeState::new(cross_kv, memory)
    }

    /// The decoder on one new position `x` `[B, 1, D]` (embedded) at
    /// `state.position`, eval mode (no dropout) → `[B, 1, D]`.
    fn step(&self, x: Tensor, state: &mut DecodeState) -> Tensor {
        let x = state.through_layers(&self.blocks, self.relative_bias.as_ref(), x, Block::step);
        self.final_norm(x)
    }

    /// The final norm (pre-norm only).
    fn final_norm(&self, x: Tensor) -> Tensor {
        match &self.final_layer_norm {
            Some(norm) => norm.forward(&x),
            None => x,
        }
    }
}

/// The midi-hf-transformers encoder-decoder.
#[derive(Debug)]
pub struct T5 {
    src_embed: Tensor,
    tgt_embed: Tensor,
    encoder: Stack,
    decoder: Stack,
    /// `None` when tied to `tgt_embed`.
    lm_head: Option<Tensor>,
    /// With [`Positions::Sinusoidal`](runner_plan::config::Positions::Sinusoidal) only.
    positions: Option<SinusoidTable>,
    d_model: i64,
}

impl T5 {
    /// Registers the weights under `p`.
    pub(super) fn new(p: &nn::Path, cfg: &ModelConfig, sizes: Sizes) -> T5 {
        let d = sizes.d_model;
        let normal = nn::Init::Randn { mean: 0.0, stdev: 1.0 };
        let (src_embed, tgt_embed) = if sizes.shared {
            let table = (p / "shared").var("weight", &[sizes.src_vocab, d], normal);
            (table.shallow_clone(), table)
        } else {
            (
                (p / "encoder" / "embed_tokens").var("weight", &[sizes.src_vocab, d], normal),
                (p / "decoder" / "embed_tokens").var("weight", &[sizes.tgt_vocab, d], normal),
            )
        };
        T5 {
            src_embed,
            tgt_embed,
            encoder: Stack::new(p / "encoder", sizes, cfg.norm, sizes.encoder_layers, false),
            decoder: Stack::new(p / "decoder", sizes, cfg.norm, sizes.decoder_layers, true),
            lm_head: (!cfg.tie_embeddings).then(|| weight(p / "lm_head", sizes.tgt_vocab, d, 1.0)),
            positions: sizes.relative.is_none().then(|| SinusoidTable::new(d, p.device())),
            d_model: d,
        }
    }

    /// Ids `[B, L]` at positions `start..start + L` → embeddings `[B, L, D]`
    /// (plus sinusoids when positions are not relative).
    fn embed(&self, table: &Tensor, ids: &Tensor, start: i64) -> Tensor {
        let x = Tensor::embedding(table, ids, -1, false, false);
        match &self.positions {
            // [L, D] broadcast over the batch
            Some(positions) => x + positions.at(start, ids.size()[1]),
            None => x,
        }
    }

    /// Decoder output `[.., D]` → logits `[.., V_out]`: the `lm_head`, or
    /// the tied embeddings after scaling by `d_model^-0.5`.
    fn output(&self, h: &Tensor) -> Tensor {
        match &self.lm_head {
            Some(lm_head) => h.linear::<&Tensor>(lm_head, None),
            None => (h * (self.d_model as f64).powf(-0.5)).linear::<&Tensor>(&self.tgt_embed, None),
        }
    }
}

impl Seq2Seq for T5 {
    fn encode(&self, src: &Tensor, keep: Option<&Tensor>, train: bool) -> Memory {
        let x = self.embed(&self.src_embed, src, 0);
        Memory {
            states: self.encoder.forward(x, keep, None, train),
            keep: keep.map(Tensor::shallow_clone),
        }
    }

    fn decode(&self, memory: &Memory, tgt_in: &Tensor, train: bool) -> Tensor {
        let x = self.embed(&self.tgt_embed, tgt_in, 0);
        // [B, T, D] -> [B, T, V_out]
        self.output(&self.decoder.forward(x, None, Some(memory), train))
    }

    fn start_decoding(&self, memory: &Memory) -> DecodeState {
        self.decoder.start(memory)
    }

    fn decode_next(&self, state: &mut DecodeState, ids: &Tensor) -> Tensor {
        let x = self.embed(&self.tgt_embed, ids, state.position);
        let h = self.decoder.step(x, state);
        state.position += 1;
        // [B, 1, D] -> [B, D] -> [B, V_out]
        self.output(&h.squeeze_dim(1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::tests::{
        check_causal, check_incremental, check_masked_source, keys, overfit, save_load_round_trip, seeded, tiny,
    };
    use runner_plan::config::{Architecture, Positions, Scheme};

    fn cfg() -> ModelConfig {
        tiny(Architecture::T5)
    }

    #[test]
    fn rms_norm_divides_by_the_root_mean_square() {
        let vs = nn::VarStore::new(tch::Device::Cpu);
        let norm = RmsNorm::new(vs.root(), 2);
        let y = norm.forward(&Tensor::from_slice(&[3.0f32, 4.0]).view([1, 2]));
        let rms = (12.5f64 + 1e-6).sqrt();
        assert!((y.double_value(&[0, 0]) - 3.0 / rms).abs() < 1e-6);
        assert!((y.double_value(&[0, 1]) - 4.0 / rms).abs() < 1e-6);
    }

    #[test]
    fn checkpoint_keys_mirror_huggingface() {
        let names = keys(&cfg(), Scheme::Shared);
        for name in [
            "shared.weight",
            "encoder.block.0.layer.0.SelfAttention.qkv.weight",
            "encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight",
            "encoder.block.1.layer.0.layer_norm.weight",
            "encoder.block.1.layer.1.DenseReluDense.wi.weight",
            "encoder.block.1.layer.1.layer_norm.weight",
            "encoder.final_layer_norm.weight",
            "decoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight",
            "decoder.block.1.layer.1.EncDecAttention.o.weight",
            "decoder.block.1.layer.1.EncDecAttention.q.weight",
            "decoder.block.0.layer.1.EncDecAttention.kv.weight",
            "decoder.block.1.layer.2.DenseReluDense.wo.weight",
            "decoder.final_layer_norm.weight",
        ] {
            assert!(names.contains(&name.to_string()), "{name} not in {names:?}");
        }
        // The bias table lives in block 0 only, nothing has a bias, and the
        // tied model has no lm_head.
        assert!(!names.iter().any(|k| k.contains("block.1") && k.contains("relative")));
        assert!(!names.iter().any(|k| k.ends_with(".bias") || k.starts_with("lm_head")));
        // Per block: self-attention qkv and o, cross-attention q, kv and o, the
        // feed-forward wi and wo, a norm per sublayer.
        let encoder_block = 2 + 2 + 2;
        let decoder_block = 5 + 2 + 3;
        assert_eq!(names.len(), 1 + 2 * encoder_block + 2 * decoder_block + 2 + 2);

        let untied = ModelConfig {
            tie_embeddings: false,
            positions: Positions::Sinusoidal,
            norm: Norm::Post,
            ..cfg()
        };
        let names = keys(&untied, Scheme::Separate);
        for name in [
            "encoder.embed_tokens.weight",
            "decoder.embed_tokens.weight",
            "lm_head.weight",
        ] {
            assert!(names.contains(&name.to_string()), "{name} not in {names:?}");
        }
        assert!(
            !names
                .iter()
                .any(|k| k.contains("relative") || k.contains("final_layer_norm"))
        );
    }

    #[test]
    fn weights_start_as_huggingface_does() {
        let _generator = seeded(8);
        let cfg = ModelConfig {
            d_model: 64,
            d_kv: 16,
            d_ff: 128,
            heads: 4,
            encoder_layers: 1,
            decoder_layers: 1,
            ..cfg()
        };
        let vs = nn::VarStore::new(tch::Device::Cpu);
        crate::model::build(&vs.root(), &cfg, 500, 500, Scheme::Shared).unwrap();
        let vars = vs.variables();
        let std = |name: &str| vars[name].std(true).double_value(&[]);
        let near = |name: &str, expected: f64| {
            let got = std(name);
            assert!((got / expected - 1.0).abs() < 0.1, "{name}: {got} vs {expected}");
        };
        let attention = "encoder.block.0.layer.0.SelfAttention";
        near("shared.weight", 1.0);
        // Fused weights: each [64, 64] block with HF's std for its role.
        let blocks_near = |name: &str, expected: &[f64]| {
            let blocks = vars[name].chunk(expected.len() as i64, 0);
            for (block, expected) in blocks.iter().zip(expected) {
                let got = block.std(true).double_value(&[]);
                assert!((got / expected - 1.0).abs() < 0.1, "{name}: {got} vs {expected}");
            }
        };
        let (q_std, kv_std) = ((64.0f64 * 16.0).powf(-0.5), 64f64.powf(-0.5));
        blocks_near(&format!("{attention}.qkv.weight"), &[q_std, kv_std, kv_std]);
        let cross = "decoder.block.0.layer.1.EncDecAttention";
        near(&format!("{cross}.q.weight"), q_std);
        blocks_near(&format!("{cross}.kv.weight"), &[kv_std, kv_std]);
        near(&format!("{attention}.o.weight"), 64f64.powf(-0.5));
        near("encoder.block.0.layer.1.DenseReluDense.wo.weight", 128f64.powf(-0.5));
    }

    #[test]
    fn tied_logits_are_the_scaled_decoder_output_times_the_embeddings() {
        let _generator = seeded(9);
        let vs = nn::VarStore::new(tch::Device::Cpu);
        let sizes = Sizes::check(&cfg(), 40, 40, Scheme::Shared).unwrap();
        let model = T5::new(&vs.root(), &cfg(), sizes);
        let src = crate::model::tests::ids(1, 5, 0, 40);
        let tgt = crate::model::tests::ids(1, 4, 0, 40);
        let memory = model.encode(&src, None, false);
        let h = model
            .decoder
            .forward(model.embed(&model.tgt_embed, &tgt, 0), None, Some(&memory), false);
        let expected = (h * 0.25).matmul(&vs.variables()["shared.weight"].tr());
        assert!(
            model
                .decode(&memory, &tgt, false)
                .allclose(&expected, 1e-5, 1e-6, false)
        );
    }

    #[test]
    fn save_and_load_give_identical_outputs() {
        save_load_round_trip(&cfg(), "t5");
    }

    #[test]
    fn later_targets_do_not_change_earlier_logits() {
        check_causal(&cfg());
        check_causal(&ModelConfig {
            positions: Positions::Sinusoidal,
            tie_embeddings: false,
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
