//! `runner model logits`: a trained run's network on given ids, so that
//! peer implementations (`tests/peer/`) can be checked against it.
//!
//! In: a run folder (`config.json`, `checkpoint/model.safetensors`) and
//! [`Ids`], read from JSON. The network is built as [`super::run::train`]
//! builds it, on the CPU, and runs in eval mode (no dropout); predictions
//! are read off it as the run's evaluation reads them ([`Predictor`]: its
//! decoder input and argmax settings).
//! Out: a [`Probe`]: teacher-forced logits and picks, greedy velocities, the
//! decoder's prefix, the range of velocity ids and, when the ids carry
//! `tgt_out`, the run's loss on them.

use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use tch::{Device, Kind, Tensor, nn};

use super::evaluate::Predictor;
use super::loss::{Criterion, LossError};
use crate::model::{self, ModelError};
use runner_data::encoder::{EncodeError, Vocab};
use runner_data::quantize::Bins;
use runner_store::{RunFile, RunFolder};

/// Token ids to run the network on, each `batch x length`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ids {
    /// Source ids.
    pub src: Vec<Vec<i64>>,
    /// Decoder input ids: the run's decoder prefix (`[CLS]`, or `[0, CLS]`
    /// for shift-right), then velocities.
    pub tgt_in: Vec<Vec<i64>>,
    /// Target ids the loss is computed against (shaped as `tgt_in`), if any.
    #[serde(default)]
    pub tgt_out: Option<Vec<Vec<i64>>>,
}

/// The run's loss on [`Ids::tgt_out`], averaged over counted positions.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct LossValues {
    /// The training objective per counted position.
    pub objective: f64,
    /// Cross-entropy `-log p(y)` per counted position.
    pub nll: f64,
    /// KL divergence from the (smoothed) target per counted position: for
    /// label smoothing, midi-translation's `KLDivLoss(reduction="sum") / tokens`.
    pub kl: f64,
    /// Counted positions (targets that are velocities or `<CLS>`).
    pub count: i64,
}

/// What the network computed.
#[derive(Debug, Clone, Serialize)]
pub struct Probe {
    /// Teacher-forced logits `[B, T, V]`.
    pub logits: Vec<Vec<Vec<f32>>>,
    /// Teacher-forced velocities `[B, T - P + 1]` at the velocity positions
    /// (all but the first `P - 1`), chosen as the run's `evaluate.argmax` says.
    pub teacher_forced: Vec<Vec<u8>>,
    /// Greedy velocities `[B, T - P + 1]`, decoded after the prefix.
    pub greedy: Vec<Vec<u8>>,
    /// The ids the decoder reads before its first velocity (`P` of them).
    pub decoder_prefix: Vec<i64>,
    /// The velocity ids `[first, end)`: velocity `v` is `first + v`.
    pub velocity_ids: [i64; 2],
    /// With `tgt_out` only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub loss: Option<LossValues>,
}

/// Why a run could not be probed.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum ProbeError {
    /// No `config.json`.
    #[error("{0} is not a run folder (it has no config.json)")]
    #[diagnostic(help("give a folder under runs/<experiment>/ that `runner exec` made"))]
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
    /// Ids of the wrong shape or outside the vocabulary.
    #[error("ids: {0}")]
    #[diagnostic(help("give {{\"src\": [[..]], \"tgt_in\": [[..]]}}, rows of equal length, ids in the vocabulary"))]
    BadIds(String),
    /// The run's bin counts give no vocabulary.
    #[error("vocabulary: {0}")]
    Vocab(#[from] EncodeError),
    /// The network could not be built.
    #[error(transparent)]
    Model(#[from] ModelError),
    /// The loss could not be set up.
    #[error(transparent)]
    Loss(#[from] LossError),
    /// The checkpoint does not fit the network, or libtorch failed.
    #[error("libtorch: {0}")]
    Torch(#[from] tch::TchError),
}

/// Reads `ids` (JSON) and runs the trained network of the run in `run` on them.
pub fn logits(run: &Path, ids: &Path) -> Result<Probe, ProbeError> {
    let folder = RunFolder::at(run);
    let config_path = folder.path(RunFile::Config);
    if !config_path.is_file() {
        return Err(ProbeError::NotARun(run.to_owned()));
    }
    let config = folder.config().map_err(|reason| ProbeError::File {
        path: config_path.clone(),
        reason,
    })?;
    let checkpoint = folder.checkpoint().result_weights().to_owned();
    if !checkpoint.is_file() {
        return Err(ProbeError::NotTrained(run.to_owned()));
    }
    let ids: Ids = read_json(ids)?;

    let quantize = &config.dataset.quantize;
    let bins = Bins {
        dstart: quantize.dstart,
        duration: quantize.duration,
        velocity: quantize.velocity,
    };
    let vocab = Vocab::new(config.encoder, bins)?;
    let (source_size, target_size) = (i64::from(vocab.source_size()), i64::from(vocab.target_size()));
    let first_velocity = i64::from(vocab.velocity_id(0)?);
    let classes = first_velocity..first_velocity + 128;

    let src = tensor("src", &ids.src, 0..source_size)?;
    let tgt_in = tensor("tgt_in", &ids.tgt_in, 0..target_size)?;
    let tgt_out = ids
        .tgt_out
        .as_ref()
        .map(|rows| tensor("tgt_out", rows, 0..target_size))
        .transpose()?;
    let batch = ids.src.len();
    if ids.tgt_in.len() != batch {
        return Err(ProbeError::BadIds(format!(
            "src has {batch} rows but tgt_in has {}",
            ids.tgt_in.len()
        )));
    }
    if let Some(out) = &tgt_out
        && out.size() != tgt_in.size()
    {
        return Err(ProbeError::BadIds(format!(
            "tgt_out is {:?} but tgt_in is {:?}",
            out.size(),
            tgt_in.size()
        )));
    }

    let mut vs = nn::VarStore::new(Device::Cpu);
    let net = model::build(&vs.root(), &config.model, source_size, target_size, config.encoder)?;
    vs.load(&checkpoint)?;
    let criterion = tgt_out
        .as_ref()
        .map(|_| Criterion::new(config.loss, classes.clone(), target_size))
        .transpose()?;
    let predictor = Predictor::new(net.as_ref(), &config, classes.clone());
    let prefix = config.train.decoder_input.prefix();
    let length = tgt_in.size()[1] - (prefix.len() as i64 - 1);
    if length < 1 {
        return Err(ProbeError::BadIds(format!(
            "tgt_in has {} ids, fewer than the decoder prefix {prefix:?} of this run",
            tgt_in.size()[1]
        )));
    }

    tch::no_grad(|| {
        let logits = net.forward(&src, &tgt_in, false).to_kind(Kind::Float);
        let velocity_logits = logits.narrow(1, tgt_in.size()[1] - length, length);
        let rows = |flat: Vec<u8>| flat.chunks(length as usize).map(<[u8]>::to_vec).collect();
        let loss = criterion.zip(tgt_out.as_ref()).map(|(criterion, tgt_out)| {
            let terms = criterion.compute(&logits, tgt_out);
            let count = terms.count.int64_value(&[]);
            let per = |sum: &Tensor| sum.double_value(&[]) / count.max(1) as f64;
            LossValues {
                objective: per(&terms.sum),
                nll: per(&terms.nll),
                kl: per(&terms.kl),
                count,
            }
        });
        Ok(Probe {
            teacher_forced: rows(predictor.pick(&velocity_logits)),
            greedy: rows(predictor.greedy(&src, length)),
            logits: Vec::<Vec<Vec<f32>>>::try_from(&logits)?,
            decoder_prefix: prefix.to_vec(),
            velocity_ids: [classes.start, classes.end],
            loss,
        })
    })
}

/// `rows` as an i64 tensor `[B, L]`, after checking that they are
/// rectangular, not empty, and hold ids in `range` only.
fn tensor(name: &str, rows: &[Vec<i64>], range: Range<i64>) -> Result<Tensor, ProbeError> {
    let bad = |what: String| Err(ProbeError::BadIds(format!("{name}: {what}")));
    let Some(first) = rows.first() else {
        return bad("no rows".to_owned());
    };
    if first.is_empty() {
        return bad("empty rows".to_owned());
    }
    if let Some((i, row)) = rows.iter().enumerate().find(|(_, row)| row.len() != first.len()) {
        return bad(format!(
            "row {i} has {} ids but row 0 has {} (rows must be of equal length)",
            row.len(),
            first.len()
        ));
    }
    for (i, row) in rows.iter().enumerate() {
        if let Some((j, id)) = row.iter().enumerate().find(|(_, id)| !range.contains(id)) {
            return bad(format!(
                "id {id} at row {i}, position {j} is outside the vocabulary 0..{}",
                range.end
            ));
        }
    }
    let flat: Vec<i64> = rows.concat();
    Ok(Tensor::from_slice(&flat).view([rows.len() as i64, first.len() as i64]))
}

fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<T, ProbeError> {
    let problem = |reason: String| ProbeError::File {
        path: path.to_owned(),
        reason,
    };
    let text = std::fs::read_to_string(path).map_err(|e| problem(e.to_string()))?;
    serde_json::from_str(&text).map_err(|e| problem(e.to_string()))
}

impl Probe {
    /// A few lines for a person: shapes, velocity ids, the greedy rows, the loss.
    pub fn summary(&self) -> String {
        let (b, t) = (self.logits.len(), self.logits.first().map_or(0, Vec::len));
        let v = self.logits.first().and_then(|row| row.first()).map_or(0, Vec::len);
        let mut text = format!(
            "logits [{b}, {t}, {v}] (teacher-forced, eval mode); velocity ids {}..{}\n",
            self.velocity_ids[0], self.velocity_ids[1]
        );
        for (i, row) in self.greedy.iter().enumerate() {
            let velocities: Vec<String> = row.iter().map(u8::to_string).collect();
            text.push_str(&format!("greedy {i}: {}\n", velocities.join(" ")));
        }
        if let Some(loss) = &self.loss {
            text.push_str(&format!(
                "loss: objective {:.6}, nll {:.6}, kl {:.6} over {} positions\n",
                loss.objective, loss.nll, loss.kl, loss.count
            ));
        }
        text
    }
}
