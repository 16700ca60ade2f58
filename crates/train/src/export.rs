//! `runner export RUN --hf DIR`: a trained run's weights for other tools.
//!
//! In: a run folder (`config.json`, `checkpoint/model.safetensors`) and the
//! folder to write. The network is built as training builds it and the
//! checkpoint loaded into it (so a checkpoint that does not fit its run is
//! refused), on the CPU.
//! Out, in that folder, and an [`Exported`] saying what was written:
//!
//! - a T5 run: a HuggingFace checkpoint, `config.json` (a `T5Config`, with
//!   a `runner` key: the velocity ids, the decoder prefix, the vocabulary)
//!   and `model.safetensors` under HF's names (runner's fused `qkv` and `kv`
//!   split back into `q`, `k`, `v`), which
//!   `T5ForConditionalGeneration.from_pretrained(DIR)` loads and which gives
//!   runner's logits. Only runs HF's T5 computes exactly are written: a shared
//!   vocabulary, pre-norm, relative positions, tied embeddings.
//! - a vanilla run: `model.safetensors` under runner's names, and
//!   `runner-vanilla.json`: the architecture's settings, the computation,
//!   the same `runner` facts and every tensor's name, shape and role.

use std::path::{Path, PathBuf};

use serde::Serialize;
use tch::{Device, Kind, Tensor, nn};

use crate::model::{self, DEFAULT_RELATIVE_BUCKETS, DEFAULT_RELATIVE_MAX_DISTANCE, ModelError};
use runner_data::encoder::{CLS, EncodeError, NoteToken, PAD, Vocab};
use runner_data::quantize::Bins;
use runner_plan::config::{Architecture, DecoderInput, ModelConfig, Norm, Positions, RunConfig, Scheme};
use runner_store::{RunFile, RunFolder};

/// The weights' file name, in either export.
pub const WEIGHTS: &str = "model.safetensors";

/// The HuggingFace config's file name.
pub const HF_CONFIG: &str = "config.json";

/// The file that documents a vanilla export.
pub const VANILLA_LAYOUT: &str = "runner-vanilla.json";

/// The RMS and layer norms' epsilon in both architectures.
const NORM_EPS: f64 = 1e-6;

/// What was written.
#[derive(Debug, Clone)]
pub struct Exported {
    /// The folder.
    pub dir: PathBuf,
    /// The run's architecture.
    pub architecture: Architecture,
    /// The files written, by name.
    pub files: Vec<&'static str>,
    /// Tensors in the weights' file.
    pub tensors: usize,
}

/// Why a run could not be exported.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum ExportError {
    /// No `config.json`.
    #[error("{0} is not a run folder (it has no config.json)")]
    #[diagnostic(help("give a folder under runs/<experiment>/ that `runner exec` made, or a run id"))]
    NotARun(PathBuf),
    /// No model checkpoint.
    #[error("the run in {0} has no checkpoint/model.safetensors: it has not been trained")]
    #[diagnostic(help("train it first with `runner exec`"))]
    NotTrained(PathBuf),
    /// A file that could not be read or parsed.
    #[error("{path}: {reason}")]
    File {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// Settings HuggingFace's T5 does not compute.
    #[error("HuggingFace's T5 cannot express this run: {}", .0.join("; "))]
    #[diagnostic(help(
        "only T5 runs with `encoder shared`, `norm pre`, `positions relative` and `tie-embeddings #true` export \
         to HuggingFace"
    ))]
    NotHf(Vec<String>),
    /// The output folder holds files already.
    #[error("{0} is not empty")]
    #[diagnostic(help("give a new or empty folder, or pass --force to write over the files there"))]
    NotEmpty(PathBuf),
    /// The output path is a file.
    #[error("{0} is not a folder")]
    #[diagnostic(help("give a new or empty folder"))]
    NotAFolder(PathBuf),
    /// The output could not be written.
    #[error("cannot write {path}: {reason}")]
    Write {
        /// The file or folder.
        path: PathBuf,
        /// What the system said.
        reason: String,
    },
    /// The run's bin counts give no vocabulary.
    #[error("vocabulary: {0}")]
    Vocab(#[from] EncodeError),
    /// The network could not be built.
    #[error(transparent)]
    Model(#[from] ModelError),
    /// The checkpoint does not fit the network, or libtorch failed.
    #[error("libtorch: {0}")]
    Torch(#[from] tch::TchError),
    /// A tensor the vanilla layout has no words for (a bug in this module).
    #[error("no description for tensor {0}")]
    Undocumented(String),
}

/// Writes the trained run in `folder` to `dir` (see the module's doc); with
/// `force`, into a folder that holds files already, replacing those of the
/// same names.
pub fn export(folder: &RunFolder, dir: &Path, force: bool) -> Result<Exported, ExportError> {
    let run = folder.dir();
    let config_path = folder.path(RunFile::Config);
    if !config_path.is_file() {
        return Err(ExportError::NotARun(run.to_owned()));
    }
    let config = folder.config().map_err(|reason| ExportError::File {
        path: config_path,
        reason,
    })?;
    let checkpoint = folder.checkpoint().result_weights().to_owned();
    if !checkpoint.is_file() {
        return Err(ExportError::NotTrained(run.to_owned()));
    }
    let architecture = config.model.architecture;
    if architecture == Architecture::T5 {
        hf_expressible(&config)?;
    }
    check_output(dir, force)?;

    let quantize = &config.dataset.quantize;
    let vocab = Vocab::new(
        config.encoder,
        Bins {
            dstart: quantize.dstart,
            duration: quantize.duration,
            velocity: quantize.velocity,
        },
    )?;
    let (source_size, target_size) = (i64::from(vocab.source_size()), i64::from(vocab.target_size()));
    let mut vs = nn::VarStore::new(Device::Cpu);
    model::build(&vs.root(), &config.model, source_size, target_size, config.encoder)?;
    vs.load(&checkpoint)?;
    let mut variables: Vec<(String, Tensor)> = vs.variables().into_iter().collect();
    variables.sort_by(|a, b| a.0.cmp(&b.0));
    let facts = RunnerFacts::new(run, &config, &vocab)?;
    let settings = Settings::of(&config.model);

    std::fs::create_dir_all(dir).map_err(|e| write_error(dir, e))?;
    let (tensors, layout_name, layout) = match architecture {
        Architecture::T5 => {
            let tensors = hf_tensors(variables);
            let hf = HfT5Config::new(&settings, target_size, facts);
            (tensors, HF_CONFIG, to_json(&hf))
        }
        Architecture::Vanilla => {
            let described = variables
                .iter()
                .map(|(name, tensor)| {
                    Ok(TensorFacts {
                        name: name.clone(),
                        shape: tensor.size(),
                        dtype: "float32",
                        description: describe(name, &settings)
                            .ok_or_else(|| ExportError::Undocumented(name.clone()))?,
                    })
                })
                .collect::<Result<Vec<_>, ExportError>>()?;
            let layout = VanillaLayout {
                format: "runner-vanilla",
                weights: WEIGHTS,
                architecture: &settings,
                computation: computation(&settings),
                runner: facts,
                tensors: described,
            };
            (variables, VANILLA_LAYOUT, to_json(&layout))
        }
    };
    let weights = dir.join(WEIGHTS);
    let float: Vec<(String, Tensor)> = tensors
        .into_iter()
        .map(|(name, tensor)| (name, tensor.to_kind(Kind::Float).contiguous()))
        .collect();
    Tensor::write_safetensors(&float, &weights).map_err(|e| write_error(&weights, e))?;
    let layout_path = dir.join(layout_name);
    std::fs::write(&layout_path, layout).map_err(|e| write_error(&layout_path, e))?;
    Ok(Exported {
        dir: dir.to_owned(),
        architecture,
        files: vec![layout_name, WEIGHTS],
        tensors: float.len(),
    })
}

impl Exported {
    /// Two lines for a person: what was written where, and how to load it.
    pub fn summary(&self) -> String {
        let dir = self.dir.display();
        let files = self.files.join(", ");
        match self.architecture {
            Architecture::T5 => format!(
                "wrote a HuggingFace T5 checkpoint ({} tensors) to {dir}: {files}\n\
                 load it with transformers.T5ForConditionalGeneration.from_pretrained(\"{dir}\")\n",
                self.tensors
            ),
            Architecture::Vanilla => format!(
                "wrote the vanilla run's {} tensors to {dir}: {files}\n\
                 {VANILLA_LAYOUT} gives the architecture and each tensor's name, shape and role (HuggingFace has no \
                 class for this network)\n",
                self.tensors
            ),
        }
    }
}

/// Every setting of a T5 run that HF's `T5ForConditionalGeneration`
/// computes differently, as `setting value: why`.
fn hf_expressible(config: &RunConfig) -> Result<(), ExportError> {
    let model = &config.model;
    let mut problems = Vec::new();
    if config.encoder != Scheme::Shared {
        problems.push("`encoder separate`: HF's T5 has one vocabulary (`shared`) for encoder and decoder".to_owned());
    }
    if model.norm != Norm::Pre {
        problems.push("`norm post`: HF's T5 normalises before each sublayer (pre-norm)".to_owned());
    }
    if model.positions != Positions::Relative {
        problems.push("`positions sinusoidal`: HF's T5 has relative position biases only".to_owned());
    }
    if !model.tie_embeddings {
        problems.push(
            "`tie-embeddings #false`: transformers ties T5's lm_head to the shared embeddings (a separate lm_head \
             is not loaded)"
                .to_owned(),
        );
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(ExportError::NotHf(problems))
    }
}

/// Refuses an output path that is a file, or a folder with entries unless `force`.
fn check_output(dir: &Path, force: bool) -> Result<(), ExportError> {
    if !dir.exists() {
        return Ok(());
    }
    if !dir.is_dir() {
        return Err(ExportError::NotAFolder(dir.to_owned()));
    }
    let mut entries = std::fs::read_dir(dir).map_err(|e| write_error(dir, e))?;
    if entries.next().is_some() && !force {
        return Err(ExportError::NotEmpty(dir.to_owned()));
    }
    Ok(())
}

fn write_error(path: &Path, error: impl std::fmt::Display) -> ExportError {
    ExportError::Write {
        path: path.to_owned(),
        reason: error.to_string(),
    }
}

fn to_json(value: &impl Serialize) -> String {
    serde_json::to_string_pretty(value).expect("export records always serialise") + "\n"
}

/// runner's checkpoint under HF's names: each fused self-attention `qkv`
/// `[3 * H * d_kv, D]` split into `q`, `k`, `v`, each cross-attention `kv`
/// into `k`, `v`; every other name is HF's already.
fn hf_tensors(variables: Vec<(String, Tensor)>) -> Vec<(String, Tensor)> {
    variables
        .into_iter()
        .flat_map(|(name, tensor)| {
            let fused = [("SelfAttention.qkv.weight", "qkv"), ("EncDecAttention.kv.weight", "kv")]
                .into_iter()
                .find(|(suffix, _)| name.ends_with(suffix));
            match fused {
                Some((_, parts)) => {
                    let stem = &name[..name.len() - "weight".len() - parts.len() - 1];
                    // [n * H * d_kv, D] -> n x [H * d_kv, D]
                    let blocks = tensor.chunk(parts.len() as i64, 0);
                    parts
                        .chars()
                        .zip(blocks)
                        .map(|(part, block)| (format!("{stem}{part}.weight"), block))
                        .collect()
                }
                None => vec![(name, tensor)],
            }
        })
        .collect()
}

/// The network's settings, defaults filled in.
#[derive(Debug, Serialize)]
struct Settings {
    d_model: i64,
    d_kv: i64,
    d_ff: i64,
    heads: i64,
    encoder_layers: i64,
    decoder_layers: i64,
    dropout: f64,
    attention_dropout: f64,
    norm: Norm,
    positions: Positions,
    tie_embeddings: bool,
    /// Relative positions only.
    #[serde(skip_serializing_if = "Option::is_none")]
    relative_buckets: Option<i64>,
    /// Relative positions only.
    #[serde(skip_serializing_if = "Option::is_none")]
    relative_max_distance: Option<i64>,
    norm_epsilon: f64,
}

impl Settings {
    fn of(model: &ModelConfig) -> Settings {
        let relative = model.positions == Positions::Relative;
        let size = |n: usize| n as i64;
        Settings {
            d_model: size(model.d_model),
            d_kv: size(model.d_kv),
            d_ff: size(model.d_ff),
            heads: size(model.heads),
            encoder_layers: size(model.encoder_layers),
            decoder_layers: size(model.decoder_layers),
            dropout: model.dropout,
            attention_dropout: model.attention_dropout(),
            norm: model.norm,
            positions: model.positions,
            tie_embeddings: model.tie_embeddings,
            relative_buckets: relative.then(|| size(model.relative_buckets.unwrap_or(DEFAULT_RELATIVE_BUCKETS))),
            relative_max_distance: relative
                .then(|| size(model.relative_max_distance.unwrap_or(DEFAULT_RELATIVE_MAX_DISTANCE))),
            norm_epsilon: NORM_EPS,
        }
    }
}

/// What a user of the weights needs from runner beyond the network.
#[derive(Debug, Serialize)]
struct RunnerFacts {
    /// The run's id (its folder's name).
    run: String,
    /// The velocity ids `[first, end)` in the output vocabulary: velocity `v` is `first + v`.
    velocity_ids: [i64; 2],
    /// The ids the decoder reads before its first velocity prediction.
    decoder_prefix: Vec<i64>,
    /// How training fed the decoder.
    decoder_input: DecoderInput,
    vocabulary: VocabularyFacts,
}

/// The token ids.
#[derive(Debug, Serialize)]
struct VocabularyFacts {
    scheme: Scheme,
    source_size: u32,
    target_size: u32,
    cls_id: u32,
    /// Shared scheme only (it doubles as end of sequence).
    #[serde(skip_serializing_if = "Option::is_none")]
    pad_id: Option<u32>,
    first_note_id: u32,
    dstart_bins: usize,
    duration_bins: usize,
    velocity_bins: usize,
    /// The formula of a note token's id.
    note_id: &'static str,
}

impl RunnerFacts {
    fn new(run: &Path, config: &RunConfig, vocab: &Vocab) -> Result<RunnerFacts, EncodeError> {
        let first = i64::from(vocab.velocity_id(0)?);
        let bins = vocab.bins();
        let lowest = NoteToken {
            pitch: 21,
            dstart_bin: 0,
            duration_bin: 0,
            velocity_bin: 0,
        };
        Ok(RunnerFacts {
            run: run
                .canonicalize()
                .unwrap_or_else(|_| run.to_owned())
                .file_name()
                .map(|name| name.to_string_lossy().into_owned())
                .unwrap_or_default(),
            velocity_ids: [first, first + 128],
            decoder_prefix: config.train.decoder_input.prefix().to_vec(),
            decoder_input: config.train.decoder_input,
            vocabulary: VocabularyFacts {
                scheme: vocab.scheme(),
                source_size: vocab.source_size(),
                target_size: vocab.target_size(),
                cls_id: CLS,
                pad_id: (vocab.scheme() == Scheme::Shared).then_some(PAD),
                first_note_id: vocab.note_id(lowest)?,
                dstart_bins: bins.dstart,
                duration_bins: bins.duration,
                velocity_bins: bins.velocity,
                note_id: "first_note_id + (((pitch - 21) * dstart_bins + dstart_bin) * duration_bins + duration_bin) \
                          * velocity_bins + velocity_bin",
            },
        })
    }
}

/// A `T5Config` as `save_pretrained` writes it, and runner's facts.
#[derive(Debug, Serialize)]
struct HfT5Config {
    architectures: [&'static str; 1],
    model_type: &'static str,
    vocab_size: i64,
    d_model: i64,
    d_kv: i64,
    d_ff: i64,
    num_layers: i64,
    num_decoder_layers: i64,
    num_heads: i64,
    relative_attention_num_buckets: Option<i64>,
    relative_attention_max_distance: Option<i64>,
    /// HF's one dropout (runner's attention dropout is in `runner`).
    dropout_rate: f64,
    layer_norm_epsilon: f64,
    initializer_factor: f64,
    feed_forward_proj: &'static str,
    is_encoder_decoder: bool,
    tie_word_embeddings: bool,
    use_cache: bool,
    decoder_start_token_id: u32,
    pad_token_id: u32,
    eos_token_id: u32,
    dtype: &'static str,
    runner: HfRunner,
}

/// The `runner` key of the HF config.
#[derive(Debug, Serialize)]
struct HfRunner {
    #[serde(flatten)]
    facts: RunnerFacts,
    /// Dropout on the attention weights in runner's training.
    attention_dropout: f64,
}

impl HfT5Config {
    fn new(settings: &Settings, vocab_size: i64, facts: RunnerFacts) -> HfT5Config {
        HfT5Config {
            architectures: ["T5ForConditionalGeneration"],
            model_type: "t5",
            vocab_size,
            d_model: settings.d_model,
            d_kv: settings.d_kv,
            d_ff: settings.d_ff,
            num_layers: settings.encoder_layers,
            num_decoder_layers: settings.decoder_layers,
            num_heads: settings.heads,
            relative_attention_num_buckets: settings.relative_buckets,
            relative_attention_max_distance: settings.relative_max_distance,
            dropout_rate: settings.dropout,
            layer_norm_epsilon: NORM_EPS,
            initializer_factor: 1.0,
            feed_forward_proj: "relu",
            is_encoder_decoder: true,
            tie_word_embeddings: true,
            use_cache: true,
            decoder_start_token_id: CLS,
            pad_token_id: PAD,
            eos_token_id: PAD,
            dtype: "float32",
            runner: HfRunner {
                facts,
                attention_dropout: settings.attention_dropout,
            },
        }
    }
}

/// `runner-vanilla.json`.
#[derive(Debug, Serialize)]
struct VanillaLayout<'a> {
    format: &'static str,
    /// The weights' file beside it.
    weights: &'static str,
    architecture: &'a Settings,
    /// The forward pass, step by step.
    computation: Vec<String>,
    runner: RunnerFacts,
    /// Every tensor of the weights' file, sorted by name.
    tensors: Vec<TensorFacts>,
}

/// One tensor of a vanilla export.
#[derive(Debug, Serialize)]
struct TensorFacts {
    name: String,
    shape: Vec<i64>,
    dtype: &'static str,
    description: String,
}

/// The vanilla network's forward pass in words, for its settings.
fn computation(s: &Settings) -> Vec<String> {
    let positions = match s.positions {
        Positions::Sinusoidal => {
            "then sinusoidal positions added (sin(pos / 10000^(2i/d_model)) at feature 2i, cos at 2i + 1)"
        }
        Positions::Relative => {
            "no positions added (a learnt relative-position bias on the self-attention scores instead, T5's buckets)"
        }
    };
    let block = match s.norm {
        Norm::Pre => "pre-norm blocks: x + sublayer(norm(x)); each stack ends with its own norm (`{stack}.norm`)",
        Norm::Post => "post-norm blocks: norm(x + sublayer(x)); no final norm",
    };
    let tie = if s.tie_embeddings {
        " (tied: the weight is the target embedding table, the bias is its own)"
    } else {
        ""
    };
    vec![
        "linear weights are [out, in] as in torch.nn.Linear: y = x @ weight.T + bias".to_owned(),
        format!("embed: table[ids] * sqrt(d_model), {positions}"),
        format!(
            "norm: weight * (x - mean) / (std + {NORM_EPS:e}) + bias, std the unbiased standard deviation over the d_model features"
        ),
        block.to_owned(),
        "encoder block: self-attention, feed-forward; decoder block: causal self-attention, cross-attention over the \
         encoder output, feed-forward"
            .to_owned(),
        "attention: heads of d_kv features; softmax(q @ k.T / sqrt(d_kv) [+ relative bias]) @ v per head, heads \
         concatenated, then o"
            .to_owned(),
        "fused projections stack their parts along dim 0: self-attention qkv = [q; k; v], cross-attention kv = [k; v] \
         (of the encoder output), each part [heads * d_kv, d_model]"
            .to_owned(),
        "feed-forward: w2(relu(w1(x)))".to_owned(),
        format!("logits over the target vocabulary: generator(decoder output){tie}; the loss applies log-softmax"),
    ]
}

/// What one tensor of the vanilla network is, or `None` for a name it does not have.
fn describe(name: &str, s: &Settings) -> Option<String> {
    let (module, param) = name.rsplit_once('.')?;
    let parts: Vec<&str> = module.split('.').collect();
    let tied = if s.tie_embeddings {
        "; also the generator's weight (tied)"
    } else {
        ""
    };
    let norm_role = |what: &str| -> Option<String> {
        let when = match s.norm {
            Norm::Pre => "before",
            Norm::Post => "after",
        };
        Some(format!("layer norm {when} the {what} sublayer: {}", norm_param(param)?))
    };
    let role = match parts.as_slice() {
        ["embed"] if param == "weight" => format!("shared source and target embedding table [vocab, d_model]{tied}"),
        ["src_embed"] if param == "weight" => "source embedding table [source vocab, d_model]".to_owned(),
        ["tgt_embed"] if param == "weight" => format!("target embedding table [target vocab, d_model]{tied}"),
        ["generator"] => format!("output projection to the target vocabulary ({param})"),
        [stack @ ("encoder" | "decoder"), "norm"] => format!("the {stack}'s final layer norm: {}", norm_param(param)?),
        [stack @ ("encoder" | "decoder"), "relative_bias"] if param == "weight" => {
            let direction = if *stack == "encoder" { "bidirectional" } else { "causal" };
            format!(
                "the {stack}'s relative-position bias [buckets, heads], added to every layer's self-attention scores \
                 ({direction} buckets)"
            )
        }
        [stack @ ("encoder" | "decoder"), "layers", layer, rest @ ..] => {
            let what = match rest {
                ["self_attn", "qkv"] => {
                    "self-attention q, k, v projections (d_model -> heads * d_kv each), stacked along dim 0"
                }
                ["self_attn", "o"] => "self-attention output projection (heads * d_kv -> d_model)",
                ["cross_attn", "q"] if *stack == "decoder" => {
                    "cross-attention query projection (d_model -> heads * d_kv)"
                }
                ["cross_attn", "kv"] if *stack == "decoder" => {
                    "cross-attention k, v projections of the encoder output (d_model -> heads * d_kv each), \
                     stacked along dim 0"
                }
                ["cross_attn", "o"] if *stack == "decoder" => {
                    "cross-attention output projection (heads * d_kv -> d_model)"
                }
                ["ff", "w1"] => "feed-forward input projection (d_model -> d_ff)",
                ["ff", "w2"] => "feed-forward output projection (d_ff -> d_model)",
                ["self_attn_norm"] => {
                    return norm_role("self-attention").map(|r| format!("{stack} layer {layer}: {r}"));
                }
                ["cross_attn_norm"] if *stack == "decoder" => {
                    return norm_role("cross-attention").map(|r| format!("{stack} layer {layer}: {r}"));
                }
                ["ff_norm"] => return norm_role("feed-forward").map(|r| format!("{stack} layer {layer}: {r}")),
                _ => return None,
            };
            let param = match param {
                "weight" | "bias" => param,
                _ => return None,
            };
            format!("{stack} layer {layer}: {what} ({param})")
        }
        _ => return None,
    };
    Some(role)
}

/// A layer norm's parameter: its scale or its shift.
fn norm_param(param: &str) -> Option<&'static str> {
    match param {
        "weight" => Some("scale (weight) [d_model]"),
        "bias" => Some("shift (bias) [d_model]"),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::tests::{seeded, tiny};

    /// Every tensor of a vanilla network, under every setting, has words.
    #[test]
    fn every_vanilla_tensor_is_described() {
        for norm in [Norm::Pre, Norm::Post] {
            for positions in [Positions::Sinusoidal, Positions::Relative] {
                for tie_embeddings in [false, true] {
                    for scheme in [Scheme::Separate, Scheme::Shared] {
                        let cfg = ModelConfig {
                            norm,
                            positions,
                            tie_embeddings,
                            ..tiny(Architecture::Vanilla)
                        };
                        let _generator = seeded(0);
                        let vs = nn::VarStore::new(Device::Cpu);
                        let (sv, tv) = if scheme == Scheme::Shared { (40, 40) } else { (30, 12) };
                        model::build(&vs.root(), &cfg, sv, tv, scheme).unwrap();
                        let settings = Settings::of(&cfg);
                        for name in vs.variables().keys() {
                            assert!(describe(name, &settings).is_some(), "{name} in {cfg:?}");
                        }
                    }
                }
            }
        }
        let settings = Settings::of(&tiny(Architecture::Vanilla));
        assert_eq!(describe("encoder.layers.0.cross_attn.q.weight", &settings), None);
        assert_eq!(describe("nothing", &settings), None);
    }

    /// The fused T5 projections come apart into HF's row blocks.
    #[test]
    fn fused_t5_weights_split_into_huggingface_names() {
        let qkv = Tensor::arange(6, (Kind::Float, Device::Cpu)).view([6, 1]);
        let kv = Tensor::arange(4, (Kind::Float, Device::Cpu)).view([4, 1]);
        let split = hf_tensors(vec![
            ("encoder.block.0.layer.0.SelfAttention.qkv.weight".to_owned(), qkv),
            ("decoder.block.1.layer.1.EncDecAttention.kv.weight".to_owned(), kv),
            (
                "shared.weight".to_owned(),
                Tensor::zeros([2, 1], (Kind::Float, Device::Cpu)),
            ),
        ]);
        let names: Vec<&str> = split.iter().map(|(name, _)| name.as_str()).collect();
        assert_eq!(
            names,
            [
                "encoder.block.0.layer.0.SelfAttention.q.weight",
                "encoder.block.0.layer.0.SelfAttention.k.weight",
                "encoder.block.0.layer.0.SelfAttention.v.weight",
                "decoder.block.1.layer.1.EncDecAttention.k.weight",
                "decoder.block.1.layer.1.EncDecAttention.v.weight",
                "shared.weight",
            ]
        );
        let first = |i: usize| split[i].1.double_value(&[0, 0]);
        assert_eq!(
            [first(0), first(1), first(2), first(3), first(4)],
            [0.0, 2.0, 4.0, 0.0, 2.0]
        );
    }
}
