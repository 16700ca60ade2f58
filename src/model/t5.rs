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
//! - Relative position bias ([`relative_position_bucket`]): a
//!   `[buckets, heads]` table in the first block of each stack, shared by all
//!   its blocks, bidirectional in the encoder and causal in the decoder;
//!   cross-attention has none. With [`Positions::Sinusoidal`](crate::plan::config::Positions::Sinusoidal) the table is
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

use super::vanilla::SinusoidTable;
use super::{
    CACHED_POSITIONS, DecodeState, LayerCache, Mask, Memory, Seq2Seq, Sizes, attend, merge_heads, residual, split_heads,
};
use crate::plan::config::{ModelConfig, Norm};

/// The bucket of a relative position (`key position - query position`), as
/// HF `T5Attention._relative_position_bucket` computes it.
///
/// Bidirectional: half the buckets for keys before the query (and the query
/// itself), half for keys after it. Unidirectional (causal): keys after the
/// query all share bucket 0. Within a half of `n` buckets, distances below
/// `n / 2` have one bucket each; larger ones are log-spaced up to
/// `max_distance`, beyond which all share the last bucket. The logarithm is
/// taken in `f32` and truncated, as HF does on a float tensor.
pub fn relative_position_bucket(
    relative_position: i64,
    bidirectional: bool,
    num_buckets: i64,
    max_distance: i64,
) -> i64 {
    let (half, offset, distance) = if bidirectional {
        let half = num_buckets / 2;
        let offset = if relative_position > 0 { half } else { 0 };
        (half, offset, relative_position.abs())
    } else {
        (num_buckets, 0, (-relative_position).max(0))
    };
    let max_exact = half / 2;
    if distance < max_exact {
        return offset + distance;
    }
    let log_ratio = (distance as f32 / max_exact as f32).ln() / (max_distance as f64 / max_exact as f64).ln() as f32;
    let large = max_exact + (log_ratio * (half - max_exact) as f32) as i64;
    offset + large.min(half - 1)
}

/// A learnt `[buckets, heads]` bias added to the attention scores by
/// relative position; also used by the vanilla model's relative option.
#[derive(Debug)]
pub(crate) struct RelativeBias {
    weight: Tensor,
    /// Bucket of each relative position `-max_distance..=max_distance`; all
    /// farther positions share the bucket of `±max_distance`.
    table: Tensor,
    max_distance: i64,
    /// Buckets `[P, P]` of the first [`CACHED_POSITIONS`] query and key
    /// positions, computed once: every shorter `[T, S]` is a view of it.
    cached: Tensor,
}

impl RelativeBias {
    /// Registers `weight` under `p`.
    pub(crate) fn new(
        p: nn::Path,
        heads: i64,
        buckets: i64,
        max_distance: i64,
        bidirectional: bool,
        init: nn::Init,
    ) -> RelativeBias {
        let table: Vec<i64> = (-max_distance..=max_distance)
            .map(|r| relative_position_bucket(r, bidirectional, buckets, max_distance))
            .collect();
        let table = Tensor::from_slice(&table).to_device(p.device());
        RelativeBias {
            weight: p.var("weight", &[buckets, heads], init),
            cached: bucket_matrix(&table, max_distance, 0, CACHED_POSITIONS, CACHED_POSITIONS),
            table,
            max_distance,
        }
    }

    /// Buckets `[T, S]` of the `queries` query positions from `first_query`
    /// on against key positions `0..keys`.
    fn buckets(&self, first_query: i64, queries: i64, keys: i64) -> Tensor {
        if first_query + queries <= CACHED_POSITIONS && keys <= CACHED_POSITIONS {
            self.cached.narrow(0, first_query, queries).narrow(1, 0, keys)
        } else {
            bucket_matrix(&self.table, self.max_distance, first_query, queries, keys)
        }
    }

    /// The bias `[1, H, T, S]` of `queries` query positions from
    /// `first_query` on (0 for a whole sequence, `t` for the one new query of
    /// an incremental step) against key positions `0..keys`.
    pub(crate) fn forward(&self, first_query: i64, queries: i64, keys: i64) -> Tensor {
        let buckets = self.buckets(first_query, queries, keys);
        // [T, S] -> [T, S, H] -> [H, T, S] -> [1, H, T, S]
        Tensor::embedding(&self.weight, &buckets, -1, false, false)
            .permute([2, 0, 1])
            .unsqueeze(0)
    }
}

/// Buckets `[T, S]` of `queries` query positions from `first_query` on
/// against key positions `0..keys`, looked up in `table` (the bucket of each
/// relative position `-max_distance..=max_distance`).
fn bucket_matrix(table: &Tensor, max_distance: i64, first_query: i64, queries: i64, keys: i64) -> Tensor {
    let device = table.device();
    let q = Tensor::arange_start(first_query, first_query + queries, (Kind::Int64, device));
    let k = Tensor::arange(keys, (Kind::Int64, device));
    // key - query: [1, S] - [T, 1] -> [T, S]
    let relative = k.unsqueeze(0) - q.unsqueeze(1);
    let index = relative.clamp(-max_distance, max_distance) + max_distance;
    // [T * S] -> [T, S]
    table.index_select(0, &index.view([-1])).view([queries, keys])
}

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
    /// With [`Positions::Sinusoidal`](crate::plan::config::Positions::Sinusoidal) only.
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
    use crate::plan::config::{Architecture, Positions, Scheme};

    fn cfg() -> ModelConfig {
        tiny(Architecture::T5)
    }

    #[test]
    fn buckets_match_known_answers() {
        let bi = |r| relative_position_bucket(r, true, 32, 128);
        let uni = |r| relative_position_bucket(r, false, 32, 128);
        // Bidirectional: 16 buckets a side, 8 exact, then log-spaced to 128.
        // Keys before the query (r < 0) and the query itself use 0..16, keys after 16..32.
        let expected_bi = [
            (0, 0),
            (-1, 1),
            (1, 17),
            (-7, 7),
            (7, 23),
            (-8, 8),
            (-15, 9),  // 8 + floor(8 * ln(15/8) / ln 16) = 8 + floor(1.81)
            (-16, 10), // 8 + 8 * ln 2 / ln 16 = 8 + 2, exactly
            (16, 26),
            (-32, 12),
            (-64, 14),
            (-127, 15),
            (-128, 15),
            (200, 31),
            (-10_000, 15),
        ];
        for (r, bucket) in expected_bi {
            assert_eq!(bi(r), bucket, "bidirectional {r}");
        }
        // Unidirectional: keys after the query (r > 0) all land in bucket 0;
        // 16 exact distances, then log-spaced over 16 buckets to 128.
        let expected_uni = [
            (0, 0),
            (-1, 1),
            (1, 0),
            (5, 0),
            (-15, 15),
            (-16, 16),
            (-32, 21), // 16 + floor(16 * ln 2 / ln 8) = 16 + floor(5.33)
            (-64, 26), // 16 + floor(10.67)
            (-127, 31),
            (-1000, 31),
        ];
        for (r, bucket) in expected_uni {
            assert_eq!(uni(r), bucket, "unidirectional {r}");
        }
    }

    /// HF's `_relative_position_bucket`, transcribed in tensor operations.
    fn hf_buckets(relative: &Tensor, bidirectional: bool, num_buckets: i64, max_distance: i64) -> Tensor {
        let mut n = num_buckets;
        let mut buckets = relative.zeros_like();
        let relative = if bidirectional {
            n /= 2;
            buckets += relative.gt(0).to_kind(Kind::Int64) * n;
            relative.abs()
        } else {
            -relative.minimum(&relative.zeros_like())
        };
        let max_exact = n / 2;
        let is_small = relative.lt(max_exact);
        let large = (relative.to_kind(Kind::Float) / max_exact as f64).log()
            / (max_distance as f64 / max_exact as f64).ln()
            * (n - max_exact) as f64;
        let large = (large.to_kind(Kind::Int64) + max_exact).clamp_max(n - 1);
        buckets + relative.where_self(&is_small, &large)
    }

    #[test]
    fn buckets_match_the_hf_formula_in_tensor_operations() {
        let range: Vec<i64> = (-1000..=1000).collect();
        let relative = Tensor::from_slice(&range);
        for (bidirectional, buckets, max_distance) in
            [(true, 32, 128), (false, 32, 128), (true, 8, 16), (false, 64, 300)]
        {
            let hf = hf_buckets(&relative, bidirectional, buckets, max_distance);
            for (i, r) in range.iter().enumerate() {
                assert_eq!(
                    relative_position_bucket(*r, bidirectional, buckets, max_distance),
                    hf.int64_value(&[i as i64]),
                    "{r} {bidirectional} {buckets} {max_distance}"
                );
            }
        }
    }

    #[test]
    fn the_bias_table_lookup_agrees_with_the_bucket_function_beyond_max_distance() {
        let vs = nn::VarStore::new(tch::Device::Cpu);
        for bidirectional in [true, false] {
            let init = nn::Init::Const(0.0);
            let bias = RelativeBias::new(vs.root() / bidirectional, 2, 32, 128, bidirectional, init);
            // From the cached matrix (a whole sequence, rows further on), and
            // computed past its end.
            let p = CACHED_POSITIONS;
            for (first, queries, keys) in [(0, 300, 310), (250, 50, 310), (p - 100, 100, p + 10)] {
                let buckets = bias.buckets(first, queries, keys);
                assert_eq!(buckets.size(), [queries, keys]);
                for (i, k) in [
                    (0, 0),
                    (0, 300),
                    (49, 0),
                    (20, 151),
                    (10, 309),
                    (49, 170),
                    (queries - 1, keys - 1),
                ] {
                    let q = first + i;
                    let expected = relative_position_bucket(k - q, bidirectional, 32, 128);
                    assert_eq!(buckets.int64_value(&[i, k]), expected, "{q} {k} {bidirectional}");
                }
            }
            assert_eq!(bias.forward(0, 5, 7).size(), [1, 2, 5, 7]);
            assert_eq!(bias.forward(6, 1, 7).size(), [1, 2, 1, 7]);
        }
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
