//! The networks: a typed [`ModelConfig`] and the vocabulary sizes come in, a
//! [`Seq2Seq`] encoder-decoder comes out, with its weights registered under
//! an [`nn::Path`] so that the checkpoint keys form a readable tree.
//!
//! | architecture | module | after |
//! |---|---|---|
//! | [`Architecture::Vanilla`] | [`vanilla`] | midi-translation (the Annotated Transformer) |
//! | [`Architecture::T5`] | [`t5`] | midi-hf-transformers (HuggingFace T5 defaults) |
//!
//! Both take source ids `[B, S]` and teacher-forced target ids `[B, T]`
//! (`<CLS>` followed by all but the last target) and return logits
//! `[B, T, V_out]` over the target vocabulary; the log-softmax belongs to the
//! loss ([`crate::loss`]).
//!
//! Greedy decoding runs [`Seq2Seq::encode`] once, then feeds one target at a
//! time to [`Seq2Seq::decode_next`]: a [`DecodeState`] keeps each decoder
//! layer's self-attention keys and values (one row more per step) and its
//! cross-attention keys and values (computed once from the memory), so a
//! step costs one position's work instead of the whole prefix's.
//!
//! What the two files share lives here (the attention masks, the head split,
//! the key/value cache and the call to libtorch's fused attention,
//! [`Tensor::scaled_dot_product_attention`]) and in [`positions`]
//! (sinusoids and T5's relative bias, which each architecture offers as an
//! option); neither file imports the other.

pub mod positions;
pub mod t5;
pub mod vanilla;

use tch::{Device, Kind, Tensor, nn};

use positions::RelativeBias;
use runner_plan::config::{Architecture, ModelConfig, Norm, Positions, Scheme};

/// An encoder-decoder over token ids.
pub trait Seq2Seq: Send {
    /// Encodes source ids `[B, S]` (i64). `keep` (`[B, S]`, bool) marks the
    /// source positions that may be attended to; `None` means all of them.
    fn encode(&self, src: &Tensor, keep: Option<&Tensor>, train: bool) -> Memory;

    /// Decodes target ids `[B, T]` (i64, starting with `<CLS>`) against an
    /// encoded source: logits `[B, T, V_out]`, position `t` seeing only
    /// targets `0..=t`.
    fn decode(&self, memory: &Memory, tgt_in: &Tensor, train: bool) -> Tensor;

    /// Starts incremental decoding against an encoded source (eval mode):
    /// the state holds each decoder layer's cross-attention keys and values,
    /// computed here once, and no targets yet.
    fn start_decoding(&self, memory: &Memory) -> DecodeState;

    /// Feeds the next target ids `[B, 1]` (`<CLS>` first) in eval mode and
    /// returns the logits `[B, V_out]` at their position: the last row of
    /// [`Seq2Seq::decode`] on all the targets fed so far, computed from the
    /// cached keys and values of the earlier ones.
    fn decode_next(&self, state: &mut DecodeState, ids: &Tensor) -> Tensor;

    /// [`Seq2Seq::encode`] (every source position kept) then
    /// [`Seq2Seq::decode`]: logits `[B, T, V_out]`.
    fn forward(&self, src: &Tensor, tgt_in: &Tensor, train: bool) -> Tensor {
        let memory = self.encode(src, None, train);
        self.decode(&memory, tgt_in, train)
    }
}

/// An encoded source: what the decoder's cross-attention reads.
#[derive(Debug)]
pub struct Memory {
    /// The encoder's output, `[B, S, d_model]`.
    pub states: Tensor,
    /// Source positions that may be attended to, `[B, S]` bool; `None` for all.
    pub keep: Option<Tensor>,
}

/// What incremental decoding ([`Seq2Seq::decode_next`]) carries from one
/// step to the next.
#[derive(Debug)]
pub struct DecodeState {
    /// One entry per decoder layer.
    layers: Vec<LayerCache>,
    /// Which memory positions cross-attention may read (one query row).
    cross_mask: Mask,
    /// Targets fed so far: the position of the next one.
    position: i64,
}

impl DecodeState {
    /// A state before the first target, with each decoder layer's
    /// cross-attention keys and values.
    fn new(cross_kv: Vec<(Tensor, Tensor)>, memory: &Memory) -> DecodeState {
        DecodeState {
            layers: cross_kv
                .into_iter()
                .map(|cross_kv| LayerCache {
                    self_kv: None,
                    cross_kv,
                })
                .collect(),
            cross_mask: Mask::new(None, false, memory.keep.as_ref(), 1),
            position: 0,
        }
    }

    /// One new position `x` `[B, 1, D]` through a decoder's `layers`, each
    /// by `step` with its cache: the new query row attends to keys
    /// `0..=position`, with that row of the stack's relative bias when it
    /// has one (causal buckets) → `[B, 1, D]`.
    fn through_layers<L>(
        &mut self,
        layers: &[L],
        relative_bias: Option<&RelativeBias>,
        x: Tensor,
        step: impl Fn(&L, &Tensor, &mut LayerCache, &Mask, &Mask) -> Tensor,
    ) -> Tensor {
        let t = self.position;
        // [1, H, 1, t + 1]
        let bias = relative_bias.map(|b| b.forward(t, 1, t + 1));
        let self_mask = Mask::new(bias, false, None, 1);
        let cross_mask = &self.cross_mask;
        layers
            .iter()
            .zip(&mut self.layers)
            .fold(x, |x, (layer, cache)| step(layer, &x, cache, &self_mask, cross_mask))
    }
}

/// One decoder layer's cached keys and values.
#[derive(Debug)]
struct LayerCache {
    /// Self-attention keys and values of the targets so far, `[B, H, t, d_kv]`
    /// each; `None` before the first.
    self_kv: Option<(Tensor, Tensor)>,
    /// Cross-attention keys and values of the memory, `[B, H, S, d_kv]` each.
    cross_kv: (Tensor, Tensor),
}

impl LayerCache {
    /// Appends one target's self-attention keys and values
    /// (`[B, H, 1, d_kv]`) and returns all of them so far.
    fn append(&mut self, k: Tensor, v: Tensor) -> (Tensor, Tensor) {
        let (k, v) = match self.self_kv.take() {
            // [B, H, t, d_kv] + [B, H, 1, d_kv] -> [B, H, t + 1, d_kv]
            Some((keys, values)) => (Tensor::cat(&[keys, k], 2), Tensor::cat(&[values, v], 2)),
            None => (k, v),
        };
        self.self_kv = Some((k.shallow_clone(), v.shallow_clone()));
        (k, v)
    }
}

/// A configuration the networks cannot be built from.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ModelError {
    /// A width, depth or head count of zero.
    #[error("model size `{field}` must be at least 1")]
    ZeroSize {
        /// The config field.
        field: &'static str,
    },
    /// An empty vocabulary.
    #[error("the {side} vocabulary is empty")]
    EmptyVocab {
        /// `source` or `target`.
        side: &'static str,
    },
    /// The shared scheme with two vocabulary sizes.
    #[error("the shared scheme has one vocabulary, but the source has {source_size} ids and the target {target_size}")]
    VocabMismatch {
        /// Source vocabulary size.
        source_size: i64,
        /// Target vocabulary size.
        target_size: i64,
    },
    /// A dropout probability outside `[0, 1)`.
    #[error("dropout must be in [0, 1), not {0}")]
    Dropout(f64),
    /// Relative-position buckets that T5's bucket formula cannot use.
    #[error(
        "relative positions need at least 4 buckets and a max distance above half of them, \
         not {buckets} buckets and max distance {max_distance}"
    )]
    Buckets {
        /// Number of buckets.
        buckets: usize,
        /// Max distance.
        max_distance: usize,
    },
}

/// T5's default number of relative-position buckets.
pub const DEFAULT_RELATIVE_BUCKETS: usize = 32;

/// T5's default relative-position max distance.
pub const DEFAULT_RELATIVE_MAX_DISTANCE: usize = 128;

/// Positions whose sinusoids and relative-position buckets a model computes
/// once, at construction (windows are 128 notes plus `<CLS>`); longer
/// sequences get theirs computed when they come.
const CACHED_POSITIONS: i64 = 1024;

/// Sizes checked and converted for libtorch, shared by both architectures.
#[derive(Debug, Clone, Copy)]
struct Sizes {
    src_vocab: i64,
    tgt_vocab: i64,
    /// One embedding table for source and target.
    shared: bool,
    d_model: i64,
    d_kv: i64,
    d_ff: i64,
    heads: i64,
    encoder_layers: i64,
    decoder_layers: i64,
    dropout: f64,
    /// Dropout on attention weights.
    attention_dropout: f64,
    /// `(buckets, max_distance)` when positions are relative.
    relative: Option<(i64, i64)>,
}

impl Sizes {
    fn check(cfg: &ModelConfig, src_vocab: i64, tgt_vocab: i64, scheme: Scheme) -> Result<Sizes, ModelError> {
        let positive = |value: usize, field: &'static str| match value {
            0 => Err(ModelError::ZeroSize { field }),
            n => Ok(n as i64),
        };
        if src_vocab < 1 {
            return Err(ModelError::EmptyVocab { side: "source" });
        }
        if tgt_vocab < 1 {
            return Err(ModelError::EmptyVocab { side: "target" });
        }
        let shared = scheme == Scheme::Shared;
        if shared && src_vocab != tgt_vocab {
            return Err(ModelError::VocabMismatch {
                source_size: src_vocab,
                target_size: tgt_vocab,
            });
        }
        for p in [cfg.dropout, cfg.attention_dropout()] {
            if !(0.0..1.0).contains(&p) {
                return Err(ModelError::Dropout(p));
            }
        }
        let relative = match cfg.positions {
            Positions::Sinusoidal => None,
            Positions::Relative => {
                let buckets = cfg.relative_buckets.unwrap_or(DEFAULT_RELATIVE_BUCKETS);
                let max_distance = cfg.relative_max_distance.unwrap_or(DEFAULT_RELATIVE_MAX_DISTANCE);
                if buckets < 4 || max_distance <= buckets / 2 {
                    return Err(ModelError::Buckets { buckets, max_distance });
                }
                Some((buckets as i64, max_distance as i64))
            }
        };
        Ok(Sizes {
            src_vocab,
            tgt_vocab,
            shared,
            d_model: positive(cfg.d_model, "d-model")?,
            d_kv: positive(cfg.d_kv, "d-kv")?,
            d_ff: positive(cfg.d_ff, "d-ff")?,
            heads: positive(cfg.heads, "heads")?,
            encoder_layers: positive(cfg.encoder_layers, "encoder-layers")?,
            decoder_layers: positive(cfg.decoder_layers, "decoder-layers")?,
            dropout: cfg.dropout,
            attention_dropout: cfg.attention_dropout(),
            relative,
        })
    }
}

/// Builds the network `cfg` describes under `vs`, for a source vocabulary of
/// `src_vocab` ids and a target vocabulary of `tgt_vocab` ids (the logits'
/// last dimension). With [`Scheme::Shared`] the two sizes must be equal and
/// source and target share one embedding table.
pub fn build(
    vs: &nn::Path,
    cfg: &ModelConfig,
    src_vocab: i64,
    tgt_vocab: i64,
    scheme: Scheme,
) -> Result<Box<dyn Seq2Seq>, ModelError> {
    let sizes = Sizes::check(cfg, src_vocab, tgt_vocab, scheme)?;
    Ok(match cfg.architecture {
        Architecture::Vanilla => Box::new(vanilla::Vanilla::new(vs, cfg, sizes)),
        Architecture::T5 => Box::new(t5::T5::new(vs, cfg, sizes)),
    })
}

/// A residual connection around `sublayer`, with `norm` (layer norm or RMS
/// norm) placed by `placement`: `x + dropout(f(norm(x)))` or
/// `norm(x + dropout(f(x)))`.
fn residual(
    x: &Tensor,
    norm: &impl nn::Module,
    placement: Norm,
    dropout: f64,
    train: bool,
    sublayer: impl FnOnce(&Tensor) -> Tensor,
) -> Tensor {
    match placement {
        Norm::Pre => x + sublayer(&norm.forward(x)).dropout(dropout, train),
        Norm::Post => norm.forward(&(x + sublayer(x).dropout(dropout, train))),
    }
}

/// Which keys each query may attend to, in the form the fused attention takes.
#[derive(Debug)]
enum Mask {
    /// Every key.
    All,
    /// Keys `0..=t` for query `t` (SDPA's `is_causal`).
    Causal,
    /// `[B, 1, 1, S]` bool, true where a key may be attended to.
    Keep(Tensor),
    /// `[B or 1, H or 1, T, S]` float added to the scores; `-inf` hides a key.
    Bias(Tensor),
}

impl Mask {
    /// The mask of one stack's attention, built once per forward pass and
    /// used by all its layers: an optional additive `bias` (`[1, H, T, S]`),
    /// causal or not, and an optional `keep` (`[B, S]` bool) over the keys.
    fn new(bias: Option<Tensor>, causal: bool, keep: Option<&Tensor>, queries: i64) -> Mask {
        match (bias, causal, keep) {
            (None, false, None) => Mask::All,
            (None, true, None) => Mask::Causal,
            // [B, S] -> [B, 1, 1, S]
            (None, false, Some(keep)) => Mask::Keep(keep.unsqueeze(1).unsqueeze(1)),
            (bias, causal, keep) => {
                let mut bias = bias.unwrap_or_else(|| {
                    let (keys, device) = keep.map_or((queries, Device::Cpu), |k| (k.size()[1], k.device()));
                    Tensor::zeros([1, 1, queries, keys], (Kind::Float, device))
                });
                if causal {
                    let keys = bias.size()[3];
                    let later = Tensor::ones([queries, keys], (Kind::Bool, bias.device())).triu(1);
                    bias = bias.masked_fill(&later, f64::NEG_INFINITY);
                }
                if let Some(keep) = keep {
                    // [B, S] -> [B, 1, 1, S]
                    let hidden = keep.logical_not().unsqueeze(1).unsqueeze(1);
                    bias = bias.masked_fill(&hidden, f64::NEG_INFINITY);
                }
                Mask::Bias(bias)
            }
        }
    }
}

/// One projection's output `[B, L, n * H * d_kv]` → `n` tensors
/// `[B, H, L, d_kv]` (views; queries, keys, values in the order the fused
/// weight stacks them).
fn split_heads(y: &Tensor, heads: i64, d_kv: i64) -> Vec<Tensor> {
    let (b, l, _) = y.size3().expect("[B, L, n * H * d_kv]");
    // [B, L, n * H * d_kv] -> n x [B, L, H * d_kv] -> [B, L, H, d_kv] -> [B, H, L, d_kv]
    y.split(heads * d_kv, 2)
        .into_iter()
        .map(|part| part.view([b, l, heads, d_kv]).transpose(1, 2))
        .collect()
}

/// Attention output over heads `[B, H, T, d_kv]` → `[B, T, H * d_kv]`.
fn merge_heads(y: &Tensor) -> Tensor {
    let (b, h, t, d) = y.size4().expect("[B, H, T, d_kv]");
    // [B, H, T, d_kv] -> [B, T, H, d_kv] -> [B, T, H * d_kv]
    y.transpose(1, 2).contiguous().view([b, t, h * d])
}

/// Fused attention over heads: `q` `[B, H, T, d]`, `k` and `v` `[B, H, S, d]`
/// → `[B, H, T, d]`. Dropout on the attention probabilities when training;
/// `scale` `None` is `1/sqrt(d)`.
fn attend(q: &Tensor, k: &Tensor, v: &Tensor, mask: &Mask, dropout: f64, train: bool, scale: Option<f64>) -> Tensor {
    let p = if train { dropout } else { 0.0 };
    match mask {
        Mask::All => Tensor::scaled_dot_product_attention(q, k, v, None::<&Tensor>, p, false, scale, false),
        Mask::Causal => Tensor::scaled_dot_product_attention(q, k, v, None::<&Tensor>, p, true, scale, false),
        Mask::Keep(keep) => Tensor::scaled_dot_product_attention(q, k, v, Some(keep), p, false, scale, false),
        Mask::Bias(bias) => {
            // Under autocast the queries may be bf16; a float mask must match.
            let bias = bias.to_kind(q.kind());
            Tensor::scaled_dot_product_attention(q, k, v, Some(&bias), p, false, scale, false)
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    //! Helpers for the architecture tests, and the tests both share.

    use super::*;
    use runner_plan::config::Norm;

    /// libtorch's one global generator, held by every model test that draws
    /// from it: tests run in parallel, and a seeded test whose draws (init,
    /// ids, dropout masks) interleave with another's is no longer
    /// reproducible (the overfitting tests then miss their bound now and
    /// then).
    static GENERATOR: std::sync::Mutex<()> = std::sync::Mutex::new(());

    /// Takes the generator (until the guard drops) and seeds it.
    pub(crate) fn seeded(seed: i64) -> std::sync::MutexGuard<'static, ()> {
        let guard = GENERATOR.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        tch::manual_seed(seed);
        guard
    }

    pub(crate) use runner_plan::presets::tiny;

    /// Random ids in `lo..hi`, `[rows, cols]`.
    pub(crate) fn ids(rows: i64, cols: i64, lo: i64, hi: i64) -> Tensor {
        Tensor::randint_low(lo, hi, [rows, cols], (Kind::Int64, Device::Cpu))
    }

    /// Largest absolute difference between two tensors.
    pub(crate) fn max_diff(a: &Tensor, b: &Tensor) -> f64 {
        (a - b).abs().max().double_value(&[])
    }

    /// Vocabulary sizes for a scheme: (source, target).
    pub(crate) fn vocabs(scheme: Scheme) -> (i64, i64) {
        match scheme {
            Scheme::Separate => (30, 12),
            Scheme::Shared => (40, 40),
        }
    }

    /// The sorted checkpoint keys of a model of `cfg` under `scheme`.
    pub(crate) fn keys(cfg: &ModelConfig, scheme: Scheme) -> Vec<String> {
        let _generator = seeded(0);
        let vs = nn::VarStore::new(Device::Cpu);
        let (sv, tv) = vocabs(scheme);
        build(&vs.root(), cfg, sv, tv, scheme).unwrap();
        let mut keys: Vec<String> = vs.variables().into_keys().collect();
        keys.sort();
        keys
    }

    /// Saves a model of `cfg`, loads it into a differently initialised one,
    /// and checks that both give the same logits in eval mode.
    pub(crate) fn save_load_round_trip(cfg: &ModelConfig, name: &str) {
        let scheme = Scheme::Separate;
        let (sv, tv) = vocabs(scheme);
        let path = std::env::temp_dir().join(format!("runner-{name}-{}.safetensors", std::process::id()));
        let _generator = seeded(2);
        let saved = nn::VarStore::new(Device::Cpu);
        let model = build(&saved.root(), cfg, sv, tv, scheme).unwrap();
        saved.save(&path).unwrap();
        tch::manual_seed(3);
        let mut loaded = nn::VarStore::new(Device::Cpu);
        let other = build(&loaded.root(), cfg, sv, tv, scheme).unwrap();
        let (src, tgt) = (ids(2, 6, 0, sv), ids(2, 5, 0, tv));
        let before = other.forward(&src, &tgt, false);
        loaded.load(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        let expected = model.forward(&src, &tgt, false);
        assert!(max_diff(&before, &expected) > 1e-3, "a fresh model differs");
        assert!(other.forward(&src, &tgt, false).equal(&expected));
    }

    /// Changing the last target token leaves the logits of every earlier
    /// position unchanged (and changes the last one's).
    pub(crate) fn check_causal(cfg: &ModelConfig) {
        let _generator = seeded(4);
        let scheme = Scheme::Separate;
        let (sv, tv) = vocabs(scheme);
        let vs = nn::VarStore::new(Device::Cpu);
        let model = build(&vs.root(), cfg, sv, tv, scheme).unwrap();
        let src = ids(2, 9, 0, sv);
        let tgt = ids(2, 8, 0, tv - 1);
        let changed = tgt.copy();
        let _ = changed.narrow(1, 7, 1).fill_(tv - 1);
        let a = model.forward(&src, &tgt, false);
        let b = model.forward(&src, &changed, false);
        assert!(max_diff(&a.narrow(1, 0, 7), &b.narrow(1, 0, 7)) < 1e-6, "{cfg:?}");
        assert!(max_diff(&a.narrow(1, 7, 1), &b.narrow(1, 7, 1)) > 1e-6, "{cfg:?}");
    }

    /// A `keep` mask `[rows, len]` that keeps the first `kept` positions.
    fn keep_first(rows: i64, len: i64, kept: i64) -> Tensor {
        Tensor::arange(len, (Kind::Int64, Device::Cpu))
            .lt(kept)
            .unsqueeze(0)
            .repeat([rows, 1])
    }

    /// Source positions whose `keep` is false do not influence the output.
    pub(crate) fn check_masked_source(cfg: &ModelConfig) {
        let _generator = seeded(5);
        let scheme = Scheme::Separate;
        let (sv, tv) = vocabs(scheme);
        let vs = nn::VarStore::new(Device::Cpu);
        let model = build(&vs.root(), cfg, sv, tv, scheme).unwrap();
        let src = ids(2, 9, 0, sv);
        let tgt = ids(2, 8, 0, tv);
        let keep = keep_first(2, 9, 6);
        let other = src.copy();
        let _ = other.narrow(1, 6, 3).fill_(sv - 1);
        let _ = src.narrow(1, 6, 3).fill_(0);
        let decode = |src: &Tensor| model.decode(&model.encode(src, Some(&keep), false), &tgt, false);
        assert!(max_diff(&decode(&src), &decode(&other)) < 1e-6, "{cfg:?}");
    }

    /// Feeding targets one at a time to [`Seq2Seq::decode_next`] gives, at
    /// every step, the last row of [`Seq2Seq::decode`] on the prefix so far:
    /// with every source position kept and with some hidden.
    pub(crate) fn check_incremental(cfg: &ModelConfig) {
        let _generator = seeded(10);
        let scheme = Scheme::Separate;
        let (sv, tv) = vocabs(scheme);
        let vs = nn::VarStore::new(Device::Cpu);
        let model = build(&vs.root(), cfg, sv, tv, scheme).unwrap();
        let src = ids(2, 9, 0, sv);
        let tgt = ids(2, 12, 0, tv);
        let hidden_tail = keep_first(2, 9, 6);
        for keep in [None, Some(&hidden_tail)] {
            let memory = model.encode(&src, keep, false);
            let mut state = model.start_decoding(&memory);
            for t in 0..12 {
                let step = model.decode_next(&mut state, &tgt.narrow(1, t, 1));
                let prefix = model.decode(&memory, &tgt.narrow(1, 0, t + 1), false).select(1, t);
                assert_eq!(step.size(), [2, tv]);
                let diff = max_diff(&step, &prefix);
                assert!(
                    diff < 1e-5,
                    "{cfg:?} keep {}: step {t} differs by {diff}",
                    keep.is_some()
                );
            }
        }
    }

    /// Trains a tiny model of `cfg` with Adam on one fixed batch and returns
    /// the cross-entropy (eval mode) before and after `steps` steps.
    pub(crate) fn overfit(cfg: &ModelConfig, scheme: Scheme, steps: usize) -> (f64, f64) {
        use crate::{loss::Criterion, optimizer::Optimizer};
        use runner_plan::config::{Loss, OptimizerConfig, OptimizerKind};
        let _generator = seeded(6);
        let (sv, tv) = vocabs(scheme);
        // The last ten ids are the "velocities".
        let classes = tv - 10..tv;
        let vs = nn::VarStore::new(Device::Cpu);
        let model = build(&vs.root(), cfg, sv, tv, scheme).unwrap();
        let src = ids(4, 9, 0, sv - 10);
        let _ = src.narrow(1, 0, 1).fill_(0);
        // [CLS, v1 .. v8]: the decoder reads [CLS, v1 .. v7] and predicts v1 .. v8
        let tgt = ids(4, 9, classes.start, classes.end);
        let _ = tgt.narrow(1, 0, 1).fill_(0);
        let (tgt_in, tgt_out) = (tgt.narrow(1, 0, 8), tgt.narrow(1, 1, 8));
        let criterion = Criterion::new(Loss::CrossEntropy, classes, tv).unwrap();
        let config = OptimizerConfig {
            kind: OptimizerKind::Adam,
            beta1: 0.9,
            beta2: 0.98,
            eps: 1e-9,
            weight_decay: 0.0,
            clip_norm: Some(1.0),
        };
        let eval = || {
            let terms = tch::no_grad(|| criterion.compute(&model.forward(&src, &tgt_in, false), &tgt_out));
            terms.mean().double_value(&[])
        };
        let before = eval();
        let mut opt = Optimizer::new(&vs, &config).unwrap();
        for _ in 0..steps {
            opt.zero_grad();
            criterion
                .compute(&model.forward(&src, &tgt_in, true), &tgt_out)
                .mean()
                .backward();
            opt.step(1e-2);
        }
        (before, eval())
    }

    /// Output shape, for every architecture, scheme, norm, position and tying.
    #[test]
    fn logits_have_batch_time_and_target_vocab_shape() {
        let _generator = seeded(0);
        for architecture in [Architecture::Vanilla, Architecture::T5] {
            for scheme in [Scheme::Separate, Scheme::Shared] {
                for norm in [Norm::Pre, Norm::Post] {
                    for positions in [Positions::Sinusoidal, Positions::Relative] {
                        for tie_embeddings in [false, true] {
                            let cfg = ModelConfig {
                                norm,
                                positions,
                                tie_embeddings,
                                ..tiny(architecture)
                            };
                            let vs = nn::VarStore::new(Device::Cpu);
                            let (sv, tv) = vocabs(scheme);
                            let model = build(&vs.root(), &cfg, sv, tv, scheme).unwrap();
                            let logits = model.forward(&ids(3, 7, 0, sv), &ids(3, 5, 0, tv), true);
                            assert_eq!(logits.size(), [3, 5, tv], "{cfg:?} {scheme:?}");
                            assert!(logits.isfinite().all().int64_value(&[]) == 1, "{cfg:?} {scheme:?}");
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn bad_configs_are_errors() {
        let vs = nn::VarStore::new(Device::Cpu);
        let cfg = tiny(Architecture::Vanilla);
        let err = |cfg: &ModelConfig, sv, tv, scheme| build(&vs.root(), cfg, sv, tv, scheme).err();
        assert_eq!(
            err(&cfg, 30, 12, Scheme::Shared),
            Some(ModelError::VocabMismatch {
                source_size: 30,
                target_size: 12
            })
        );
        assert_eq!(
            err(
                &ModelConfig {
                    heads: 0,
                    ..cfg.clone()
                },
                30,
                12,
                Scheme::Separate
            ),
            Some(ModelError::ZeroSize { field: "heads" })
        );
        assert_eq!(
            err(&cfg, 30, 0, Scheme::Separate),
            Some(ModelError::EmptyVocab { side: "target" })
        );
        assert_eq!(
            err(
                &ModelConfig {
                    dropout: 1.0,
                    ..cfg.clone()
                },
                30,
                12,
                Scheme::Separate
            ),
            Some(ModelError::Dropout(1.0))
        );
        let relative = ModelConfig {
            positions: Positions::Relative,
            relative_buckets: Some(8),
            relative_max_distance: Some(4),
            ..cfg
        };
        assert_eq!(
            err(&relative, 30, 12, Scheme::Separate),
            Some(ModelError::Buckets {
                buckets: 8,
                max_distance: 4
            })
        );
    }

    #[test]
    fn masks_take_the_cheapest_form() {
        let keep = Tensor::from_slice(&[true, true, false]).view([1, 3]);
        assert!(matches!(Mask::new(None, false, None, 3), Mask::All));
        assert!(matches!(Mask::new(None, true, None, 3), Mask::Causal));
        match Mask::new(None, false, Some(&keep), 2) {
            Mask::Keep(k) => assert_eq!(k.size(), [1, 1, 1, 3]),
            other => panic!("{other:?}"),
        }
        // Causal and a hidden key together: an additive mask.
        match Mask::new(None, true, Some(&keep), 3) {
            Mask::Bias(b) => {
                let inf = f64::NEG_INFINITY;
                let expected = Tensor::from_slice(&[0.0, inf, inf, 0.0, 0.0, inf, 0.0, 0.0, inf]).view([1, 1, 3, 3]);
                assert!(b.to_kind(Kind::Double).equal(&expected), "{b}");
            }
            other => panic!("{other:?}"),
        }
    }

    /// The fused attention with a bias mask equals the textbook formula.
    #[test]
    fn attend_with_a_bias_is_softmax_of_scores_plus_bias() {
        let _generator = seeded(1);
        let q = Tensor::randn([2, 2, 4, 3], (Kind::Float, Device::Cpu));
        let k = Tensor::randn([2, 2, 5, 3], (Kind::Float, Device::Cpu));
        let v = Tensor::randn([2, 2, 5, 3], (Kind::Float, Device::Cpu));
        let bias = Tensor::randn([1, 2, 4, 5], (Kind::Float, Device::Cpu));
        let out = attend(&q, &k, &v, &Mask::Bias(bias.shallow_clone()), 0.5, false, Some(1.0));
        let expected = (q.matmul(&k.transpose(-2, -1)) + bias)
            .softmax(-1, Kind::Float)
            .matmul(&v);
        assert!(max_diff(&out, &expected) < 1e-5);
    }
}
