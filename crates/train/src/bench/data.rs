//! The data side and greedy decoding.
//!
//! - Data: a MAESTRO-scale training split ([`MAESTRO_WINDOWS`] windows of
//!   129 ids, random, as the dataset cache holds them: `u32`) is uploaded the
//!   way training uploads it ([`DeviceWindows::new`]), then batches are
//!   gathered on the device as every training step gathers them (a slice of
//!   a shuffled order, two `index_select`s).
//! - Greedy decoding: the evaluation's decoder ([`crate::evaluate::Predictor::greedy`],
//!   batches of [`crate::evaluate::eval_batch`], one target per step with
//!   the key/value cache of [`crate::model::Seq2Seq::decode_next`]) on an
//!   untrained write-up model, windows of 128 notes.

use std::time::Instant;

use serde::Serialize;
use tch::{Device, Kind, Tensor, nn};

use super::synchronize;
use super::train::{NOTES, Vocabulary, random_windows};
use crate::evaluate::{Predictor, eval_batch};
use crate::model;
use crate::step::DeviceWindows;
use runner_data::TokenWindows;
use runner_plan::config::{Architecture, Argmax, DecoderInput, Scheme};
use runner_plan::presets;

/// Training windows of the pathetique settings on MAESTRO-scale data
/// (docs/perf.md: 165,600 windows in all splits; about 80% train).
pub const MAESTRO_WINDOWS: usize = 132_480;

/// Batches gathered per batch size.
const GATHERS: i64 = 200;

/// Uploading and gathering.
#[derive(Debug, Clone, Serialize)]
pub struct DataTiming {
    /// Windows in the split.
    pub windows: usize,
    /// Seconds to upload them (widening to i64 included).
    pub upload_s: f64,
    /// Gathering rate per batch size.
    pub gather: Vec<Gather>,
}

/// Gathering rate at one batch size.
#[derive(Debug, Clone, Serialize)]
pub struct Gather {
    /// Windows per batch.
    pub batch: i64,
    /// Batches per second.
    pub batches_per_s: f64,
}

/// Greedy decoding.
#[derive(Debug, Clone, Serialize)]
pub struct GreedyTiming {
    /// Windows decoded.
    pub windows: i64,
    /// Notes per window.
    pub notes: i64,
    /// Windows per decoder batch.
    pub batch: i64,
    /// Seconds in all.
    pub seconds: f64,
    /// Windows per second.
    pub windows_per_s: f64,
}

/// Uploads a MAESTRO-scale split to `device` and gathers batches of each size there.
pub fn time_data(device: Device, batches: &[i64]) -> DataTiming {
    let width = (NOTES + 1) as usize;
    tch::manual_seed(0);
    let ids = |vocab: i64| {
        let ids = Tensor::randint_low(0, vocab, [(MAESTRO_WINDOWS * width) as i64], (Kind::Int64, Device::Cpu));
        Vec::<i64>::try_from(ids)
            .expect("i64 ids")
            .into_iter()
            .map(|id| id as u32)
            .collect::<Vec<u32>>()
    };
    let vocab = Vocabulary::of(Scheme::Separate);
    let windows = TokenWindows::from_ids(width, ids(vocab.source_size), ids(vocab.target_size)).expect("whole windows");
    synchronize(device);
    let started = Instant::now();
    let split = DeviceWindows::new(&windows, device);
    synchronize(device);
    let upload_s = started.elapsed().as_secs_f64();
    let n = split.len();
    let order = Tensor::randperm(n, (Kind::Int64, device));
    let gather = batches
        .iter()
        .map(|&batch| {
            let steps = (n / batch).min(GATHERS);
            let started = Instant::now();
            for b in 0..steps {
                let index = order.narrow(0, b * batch, batch);
                let _src = split.src.index_select(0, &index);
                let _tgt = split.tgt.index_select(0, &index);
            }
            synchronize(device);
            Gather {
                batch,
                batches_per_s: steps as f64 / started.elapsed().as_secs_f64(),
            }
        })
        .collect();
    DataTiming {
        windows: MAESTRO_WINDOWS,
        upload_s,
        gather,
    }
}

/// Decodes `windows` random windows greedily with an untrained write-up
/// model in `architecture`'s form over `scheme`'s vocabulary.
pub fn time_greedy(device: Device, architecture: Architecture, scheme: Scheme, windows: i64) -> GreedyTiming {
    tch::manual_seed(0);
    let vs = nn::VarStore::new(device);
    let vocab = Vocabulary::of(scheme);
    let net = model::build(
        &vs.root(),
        &presets::write_up(architecture),
        vocab.source_size,
        vocab.target_size,
        vocab.scheme,
    )
    .expect("the write-up model is valid");
    let data = random_windows(windows, device, &vocab);
    let predictor = Predictor {
        net: net.as_ref(),
        classes: vocab.velocities(),
        decoder_input: DecoderInput::Cls,
        argmax: Argmax::Velocities,
    };
    let batch = eval_batch(device).min(windows);
    // Warm-up: one short decode.
    tch::no_grad(|| predictor.greedy(&data.src.narrow(0, 0, 1), 2));
    synchronize(device);
    let started = Instant::now();
    tch::no_grad(|| {
        let mut start = 0;
        while start < windows {
            let size = batch.min(windows - start);
            predictor.greedy(&data.src.narrow(0, start, size), NOTES);
            start += size;
        }
    });
    synchronize(device);
    let seconds = started.elapsed().as_secs_f64();
    GreedyTiming {
        windows,
        notes: NOTES,
        batch,
        seconds,
        windows_per_s: windows as f64 / seconds,
    }
}
