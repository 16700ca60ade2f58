//! Velocities for whole pieces: a trained network and pieces in, one
//! greedy-predicted velocity per note out (`runner predict`, and the test
//! pieces a run writes for the report).
//!
//! Windows: each piece is read in windows of the run's length, `len / 2`
//! notes apart, plus one that ends at the last note
//! ([`runner_data::window::cover`]); a note takes its prediction from the
//! window it is most central in, so every note gets exactly one prediction.
//! The run's own windows (its `window length` and `step`, as its dataset
//! cut them) are decoded too, first and in the order evaluation decodes
//! them: their mean absolute error is how `runner exec` scores a split
//! (`greedy_dist`), so over a run's test pieces it equals the run's greedy
//! test dist. Windows are decoded in batches of [`eval_batch`] on the
//! device, greedily, as the run's evaluation decodes them ([`Predictor`]).
//! The source tokens carry each note's coarse velocity bin (FACTS.md: as
//! both originals' do), read from the input's velocities.

pub mod command;
pub mod listen;

use std::ops::Range;

use tch::{Device, Tensor};

use super::evaluate::{Predictor, eval_batch};
use runner_data::encoder::{CLS, NoteToken, Vocab};
use runner_data::notes::Piece;
use runner_data::quantize::Quantizer;
use runner_data::window::{WindowConfig, cover};
use runner_data::{PieceError, encoder::EncodeError};
use runner_store::metrics::VelocityMetrics;

/// What the network predicted for one piece.
#[derive(Debug, Clone, PartialEq)]
pub struct PiecePredicted {
    /// One greedy velocity per note, in the piece's order.
    pub velocities: Vec<u8>,
    /// Windows read for it (the covering ones and the run's own).
    pub windows: usize,
    /// Greedy velocities at every position of the run's own windows, flattened.
    pub windowed: Vec<u8>,
    /// The true velocities at those positions.
    pub windowed_truth: Vec<u8>,
}

impl PiecePredicted {
    /// Metrics of the per-note prediction against `truth` (each note once).
    pub fn per_note(&self, truth: &[u8]) -> VelocityMetrics {
        VelocityMetrics::of(&self.velocities, truth)
    }

    /// Metrics over the run's own windows, as `runner exec` scores a split.
    pub fn over_windows(&self) -> VelocityMetrics {
        VelocityMetrics::of(&self.windowed, &self.windowed_truth)
    }
}

/// A piece with fewer notes than one window.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{piece} has {notes} notes, fewer than the run's window of {window}")]
pub struct TooShort {
    /// The piece's name.
    pub piece: String,
    /// Its notes.
    pub notes: usize,
    /// The run's window length.
    pub window: usize,
}

/// Why pieces could not be predicted.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PredictError {
    /// A piece shorter than a window.
    #[error(transparent)]
    TooShort(#[from] TooShort),
    /// A note the vocabulary cannot encode.
    #[error(transparent)]
    Encode(#[from] PieceError),
}

/// The note windows to decode for one piece and how its notes read them.
struct PieceWindows {
    /// Source ids of each note.
    notes: Vec<u32>,
    /// True velocity of each note.
    truth: Vec<u8>,
    /// The run's own windows.
    own: Vec<Range<usize>>,
    /// Covering windows that are not among `own`.
    extra: Vec<Range<usize>>,
    /// For each note, `(index into own ++ extra, position)`.
    owner: Vec<(usize, usize)>,
}

/// Cuts `piece` as described in the module docs.
fn windows_of(
    piece: &Piece,
    quantizer: &Quantizer,
    vocab: &Vocab,
    window: WindowConfig,
) -> Result<PieceWindows, PredictError> {
    let len = window.length();
    let too_short = || TooShort {
        piece: piece.name.clone(),
        notes: piece.notes.len(),
        window: len,
    };
    let covered = cover(piece.notes.len(), len).ok_or_else(too_short)?;
    let quantized = quantizer.quantize(piece);
    let fail = |reason: EncodeError| PieceError {
        piece: piece.name.clone(),
        reason,
    };
    let notes = quantized
        .iter()
        .map(|note| vocab.note_id(NoteToken::from(note)))
        .collect::<Result<Vec<u32>, _>>()
        .map_err(fail)?;
    let truth = quantized.iter().map(|note| note.velocity).collect();
    let own: Vec<Range<usize>> = window.ranges(piece.notes.len()).collect();
    let mut extra = Vec::new();
    let mut index = Vec::with_capacity(covered.windows.len());
    for range in &covered.windows {
        match own.iter().position(|r| r == range) {
            Some(at) => index.push(at),
            None => {
                index.push(own.len() + extra.len());
                extra.push(range.clone());
            }
        }
    }
    let owner = covered.owner.iter().map(|&(w, at)| (index[w], at)).collect();
    Ok(PieceWindows {
        notes,
        truth,
        own,
        extra,
        owner,
    })
}

/// Predicts every note of every piece (module docs). `progress` is told
/// the number of windows in all, then how many are done after each batch.
pub fn predict(
    predictor: &Predictor,
    quantizer: &Quantizer,
    vocab: &Vocab,
    window: WindowConfig,
    pieces: &[&Piece],
    device: Device,
    progress: &dyn Fn(Progress),
) -> Result<Vec<PiecePredicted>, PredictError> {
    let cut = pieces
        .iter()
        .map(|piece| windows_of(piece, quantizer, vocab, window))
        .collect::<Result<Vec<_>, _>>()?;
    // Every piece's own windows first, in piece order (as the split's
    // windows lie in the dataset), then the extra covering ones.
    let mut rows: Vec<(usize, Range<usize>)> = Vec::new();
    for (p, piece) in cut.iter().enumerate() {
        rows.extend(piece.own.iter().map(|r| (p, r.clone())));
    }
    for (p, piece) in cut.iter().enumerate() {
        rows.extend(piece.extra.iter().map(|r| (p, r.clone())));
    }
    let len = window.length();
    let width = len + 1;
    let mut decoded: Vec<u8> = Vec::with_capacity(rows.len() * len);
    progress(Progress::Windows(rows.len() as u64));
    let batch = eval_batch(device) as usize;
    tch::no_grad(|| {
        for chunk in rows.chunks(batch) {
            let mut ids: Vec<i64> = Vec::with_capacity(chunk.len() * width);
            for (p, range) in chunk {
                ids.push(i64::from(CLS));
                ids.extend(cut[*p].notes[range.clone()].iter().map(|&id| i64::from(id)));
            }
            let src = Tensor::from_slice(&ids)
                .view([chunk.len() as i64, width as i64])
                .to_device(device);
            decoded.extend(predictor.greedy(&src, len as i64));
            progress(Progress::Done((decoded.len() / len) as u64));
        }
    });
    // Row r's velocities are decoded[r * len..(r + 1) * len].
    let mut first_row = vec![0usize; cut.len()]; // of each piece's own windows
    let mut first_extra = vec![0usize; cut.len()];
    let mut row = 0;
    for (p, piece) in cut.iter().enumerate() {
        first_row[p] = row;
        row += piece.own.len();
    }
    for (p, piece) in cut.iter().enumerate() {
        first_extra[p] = row;
        row += piece.extra.len();
    }
    Ok(cut
        .iter()
        .enumerate()
        .map(|(p, piece)| {
            let row_of = |w: usize| {
                if w < piece.own.len() {
                    first_row[p] + w
                } else {
                    first_extra[p] + w - piece.own.len()
                }
            };
            let velocities = piece
                .owner
                .iter()
                .map(|&(w, at)| decoded[row_of(w) * len + at])
                .collect();
            let own_rows = first_row[p]..first_row[p] + piece.own.len();
            PiecePredicted {
                velocities,
                windows: piece.own.len() + piece.extra.len(),
                windowed: decoded[own_rows.start * len..own_rows.end * len].to_vec(),
                windowed_truth: piece
                    .own
                    .iter()
                    .flat_map(|r| piece.truth[r.clone()].iter().copied())
                    .collect(),
            }
        })
        .collect())
}

/// How far [`predict`] got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// Windows to decode in all.
    Windows(u64),
    /// Windows decoded so far.
    Done(u64),
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::tests::{seeded, tiny};
    use runner_data::notes::Note;
    use runner_data::quantize::Bins;
    use runner_plan::config::{Architecture, Argmax, DecoderInput, Scheme};
    use tch::nn;

    fn piece(name: &str, n: usize) -> Piece {
        let notes = (0..n)
            .map(|i| Note {
                pitch: 40 + (i * 7 % 30) as u8,
                start: i as f64 * 0.1,
                end: i as f64 * 0.1 + 0.05 * (1 + i % 4) as f64,
                velocity: 20 + (i * 13 % 90) as u8,
            })
            .collect();
        Piece::new(name, notes)
    }

    #[test]
    fn every_note_gets_the_prediction_of_its_window_and_own_windows_match_evaluation() {
        let _generator = seeded(5);
        let bins = Bins {
            dstart: 3,
            duration: 3,
            velocity: 3,
        };
        let quantizer = Quantizer::fixed(bins).unwrap();
        let vocab = Vocab::new(Scheme::Separate, bins).unwrap();
        let vs = nn::VarStore::new(Device::Cpu);
        let net = crate::model::build(
            &vs.root(),
            &tiny(Architecture::Vanilla),
            i64::from(vocab.source_size()),
            i64::from(vocab.target_size()),
            Scheme::Separate,
        )
        .unwrap();
        let first = i64::from(vocab.velocity_id(0).unwrap());
        let predictor = Predictor {
            net: net.as_ref(),
            classes: first..first + 128,
            decoder_input: DecoderInput::Cls,
            argmax: Argmax::Velocities,
        };
        let window = WindowConfig::new(8, 3).unwrap();
        let (a, b) = (piece("a", 29), piece("b", 8));
        let got = predict(&predictor, &quantizer, &vocab, window, &[&a, &b], Device::Cpu, &|_| {}).unwrap();
        assert_eq!(got[0].velocities.len(), 29);
        assert_eq!(got[1].velocities.len(), 8);
        // Each note's prediction is what decoding its owning window alone gives.
        let dataset =
            runner_data::DatasetConfig::new(quantizer.clone(), WindowConfig::new(8, 4).unwrap(), Scheme::Separate)
                .unwrap();
        let windows = runner_data::encode_piece(&a, &dataset).unwrap();
        let covered = cover(29, 8).unwrap();
        assert_eq!(covered.windows[..6], [0..8, 4..12, 8..16, 12..20, 16..24, 20..28]);
        let alone = |w: usize| {
            let (src, _) = match windows.get(w) {
                Some(ids) => ids,
                None => panic!("window {w}"),
            };
            let ids: Vec<i64> = src.iter().map(|&i| i64::from(i)).collect();
            tch::no_grad(|| predictor.greedy(&Tensor::from_slice(&ids).view([1, 9]), 8))
        };
        for (i, &(w, at)) in covered.owner.iter().enumerate().filter(|(_, (w, _))| *w < 6) {
            assert_eq!(got[0].velocities[i], alone(w)[at], "note {i}");
        }
        // The run's own windows (every 3 notes): 8 for 29 notes, all scored.
        assert_eq!(got[0].windowed.len(), window.count(29) * 8);
        assert_eq!(
            got[0].windowed_truth[..8],
            a.notes[..8].iter().map(|n| n.velocity).collect::<Vec<_>>()[..]
        );
        let short = predict(
            &predictor,
            &quantizer,
            &vocab,
            window,
            &[&piece("c", 7)],
            Device::Cpu,
            &|_| {},
        );
        assert_eq!(
            short,
            Err(PredictError::TooShort(TooShort {
                piece: "c".into(),
                notes: 7,
                window: 8
            }))
        );
    }
}
