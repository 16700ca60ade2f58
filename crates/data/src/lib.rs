//! The data pipeline: performances in, token-id windows out (FACTS.md
//! sections 1-3).
//!
//! Each step is a pure function in its own module; only [`source`],
//! [`parquet`], [`cache`] and [`export`] touch the disk.
//!
//! | step | module | in → out |
//! |---|---|---|
//! | find and read | [`source`] | a configured source → its files' hashes, then its [`notes::Piece`]s |
//! | read | [`midi`] | Standard MIDI File bytes → a [`notes::Piece`] (pedal-extended, seconds) |
//! | read / write | [`parquet`] | HuggingFace maestro-layout parquet ↔ pieces (with their split) |
//! | predict on | [`performance`] | MIDI or parquet files → pieces that can be written back with other velocities |
//! | group | [`group`] | piece names → their groups (file, folder, pattern) |
//! | deduplicate | [`duplicates`] | pieces → those whose bytes or notes repeat an earlier one |
//! | split | [`split`] | piece names and groups → train / validation / test, by group |
//! | quantize | [`quantize`] | a piece + bin [`quantize::Edges`] → [`quantize::QuantizedNote`]s |
//! | window | [`window`] | a note count → the note ranges of `len`-note windows every `step` |
//! | encode | [`encoder`] | quantized notes → source / target token ids, and back |
//! | build | [`dataset`] | a run configuration → a [`dataset::Dataset`] (through the cache) |
//! | summarize | [`summary`] | quantized notes → counts per split, bin and piece |
//! | cache | [`cache`] | a dataset's key ↔ its token windows and summary on disk |
//! | export | [`export`] | a run configuration → the pieces as one HuggingFace-layout parquet |
//! | report | [`report`] | a [`summary::DatasetSummary`] → text tables |
//!
//! [`encode_piece`] and [`encode_pieces`] join the quantize, window and
//! encode steps: given a [`DatasetConfig`] they turn pieces into
//! [`TokenWindows`], the core of dataset building. Quantile edges must come
//! from the training split only ([`quantize::Quantizer::from_quantiles`] on
//! the training pieces).

#![deny(missing_docs)]

pub mod cache;
pub mod dataset;
pub mod duplicates;
pub mod encoder;
pub mod export;
pub mod group;
pub mod midi;
pub mod notes;
pub mod parquet;
pub mod performance;
pub mod quantize;
pub mod report;
pub mod source;
pub mod split;
pub mod summary;
pub mod table;
pub mod window;

use rayon::prelude::*;

use encoder::{CLS, EncodeError, NoteToken, Scheme, Vocab};
use notes::Piece;
use quantize::{QuantizedNote, Quantizer};
use window::WindowConfig;

/// Everything that shapes the token windows of a piece.
#[derive(Debug, Clone, PartialEq)]
pub struct DatasetConfig {
    quantizer: Quantizer,
    window: WindowConfig,
    vocab: Vocab,
}

impl DatasetConfig {
    /// Joins a quantizer, a window configuration and a scheme; the
    /// vocabulary follows the quantizer's bin counts.
    pub fn new(quantizer: Quantizer, window: WindowConfig, scheme: Scheme) -> Result<DatasetConfig, EncodeError> {
        let vocab = Vocab::new(scheme, quantizer.bins())?;
        Ok(DatasetConfig {
            quantizer,
            window,
            vocab,
        })
    }

    /// The bin edges.
    pub fn quantizer(&self) -> &Quantizer {
        &self.quantizer
    }

    /// The window length and step.
    pub fn window(&self) -> WindowConfig {
        self.window
    }

    /// The vocabulary.
    pub fn vocab(&self) -> &Vocab {
        &self.vocab
    }
}

/// The windows of one or more pieces as two flat id arrays: window `i` is
/// `source[i * width..(i + 1) * width]` (and likewise `target`), where
/// `width` is the window length plus the leading `<CLS>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenWindows {
    width: usize,
    source: Vec<u32>,
    target: Vec<u32>,
}

impl TokenWindows {
    /// No windows yet, each to be `width` ids long.
    pub fn new(width: usize) -> TokenWindows {
        TokenWindows {
            width,
            source: Vec::new(),
            target: Vec::new(),
        }
    }

    /// Windows from flat id arrays, or `None` unless `width > 0`, both arrays
    /// have the same length and that length is a multiple of `width`.
    pub fn from_ids(width: usize, source: Vec<u32>, target: Vec<u32>) -> Option<TokenWindows> {
        let whole = width > 0 && source.len() == target.len() && source.len().is_multiple_of(width);
        whole.then_some(TokenWindows { width, source, target })
    }

    /// Ids per window (window length + 1 for `<CLS>`).
    pub fn width(&self) -> usize {
        self.width
    }

    /// Number of windows.
    pub fn len(&self) -> usize {
        self.source.len().checked_div(self.width).unwrap_or(0)
    }

    /// Whether there are no windows.
    pub fn is_empty(&self) -> bool {
        self.source.is_empty()
    }

    /// The source and target ids of window `index`.
    pub fn get(&self, index: usize) -> Option<(&[u32], &[u32])> {
        let range = index.checked_mul(self.width)?..(index + 1).checked_mul(self.width)?;
        Some((self.source.get(range.clone())?, self.target.get(range)?))
    }

    /// All source ids, window after window.
    pub fn source(&self) -> &[u32] {
        &self.source
    }

    /// All target ids, window after window.
    pub fn target(&self) -> &[u32] {
        &self.target
    }

    /// Appends the windows of `other` (of the same width).
    pub fn append(&mut self, other: &TokenWindows) {
        debug_assert_eq!(self.width, other.width, "windows of one width only");
        self.source.extend_from_slice(&other.source);
        self.target.extend_from_slice(&other.target);
    }
}

/// A piece whose notes the vocabulary cannot encode.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("piece {piece:?}: {reason}")]
pub struct PieceError {
    /// The piece's name.
    pub piece: String,
    /// Why its notes could not be encoded.
    pub reason: EncodeError,
}

/// Quantizes, windows and encodes one piece.
///
/// Every note is quantized (its `dstart` needs the whole piece) and encoded
/// once; the windows then copy the ids of their notes after a `<CLS>`.
pub fn encode_piece(piece: &Piece, config: &DatasetConfig) -> Result<TokenWindows, PieceError> {
    encode_quantized(&piece.name, &config.quantizer.quantize(piece), config)
}

/// Windows and encodes the already quantized notes of the piece `name` (all
/// its notes, in order), for callers that also need the quantized notes.
pub fn encode_quantized(
    name: &str,
    quantized: &[QuantizedNote],
    config: &DatasetConfig,
) -> Result<TokenWindows, PieceError> {
    let vocab = &config.vocab;
    let fail = |reason| PieceError {
        piece: name.to_owned(),
        reason,
    };
    let mut note_ids = Vec::with_capacity(quantized.len());
    let mut velocity_ids = Vec::with_capacity(quantized.len());
    for note in quantized {
        note_ids.push(vocab.note_id(NoteToken::from(note)).map_err(fail)?);
        velocity_ids.push(vocab.velocity_id(note.velocity).map_err(fail)?);
    }
    let window = config.window;
    let mut windows = TokenWindows::new(window.length() + 1);
    let ids = window.count(quantized.len()) * windows.width;
    windows.source.reserve_exact(ids);
    windows.target.reserve_exact(ids);
    for range in window.ranges(quantized.len()) {
        windows.source.push(CLS);
        windows.source.extend_from_slice(&note_ids[range.clone()]);
        windows.target.push(CLS);
        windows.target.extend_from_slice(&velocity_ids[range]);
    }
    Ok(windows)
}

/// [`encode_piece`] for many pieces in parallel; the result keeps the order of `pieces`.
pub fn encode_pieces(pieces: &[Piece], config: &DatasetConfig) -> Result<Vec<TokenWindows>, PieceError> {
    pieces.par_iter().map(|piece| encode_piece(piece, config)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use notes::Note;
    use quantize::Bins;

    fn config(len: usize, step: usize, scheme: Scheme) -> DatasetConfig {
        let bins = Bins {
            dstart: 3,
            duration: 3,
            velocity: 3,
        };
        DatasetConfig::new(
            Quantizer::fixed(bins).unwrap(),
            WindowConfig::new(len, step).unwrap(),
            scheme,
        )
        .unwrap()
    }

    /// `n` notes 0.1 s apart, each 0.2 s long (bins 1 and 1), pitch 42 and
    /// velocity 6 (bin 0) except as varied by `i`.
    fn piece(name: &str, n: usize) -> Piece {
        let notes = (0..n)
            .map(|i| Note {
                pitch: 42 + (i % 3) as u8,
                start: i as f64 * 0.1,
                end: i as f64 * 0.1 + 0.2,
                velocity: 6 + i as u8,
            })
            .collect();
        Piece::new(name, notes)
    }

    #[test]
    fn windows_hold_cls_and_the_ids_of_their_notes() {
        let c = config(2, 1, Scheme::Separate);
        let w = encode_piece(&piece("p", 3), &c).unwrap();
        assert_eq!((w.len(), w.width()), (2, 3));
        // 42-1-1-0 = 1 + 21*27 + 9 + 3 = 580; 43-1-1-0 = 607; the last note's
        // dstart is 0: 44-0-1-0 = 1 + 23*27 + 3 = 625.
        assert_eq!(w.get(0), Some((&[0, 580, 607][..], &[0, 7, 8][..])));
        assert_eq!(w.get(1), Some((&[0, 607, 625][..], &[0, 8, 9][..])));
        assert_eq!(w.get(2), None);
    }

    #[test]
    fn encode_piece_agrees_with_the_vocab_encoder() {
        let c = config(4, 3, Scheme::Shared);
        let p = piece("p", 11);
        let w = encode_piece(&p, &c).unwrap();
        let quantized = c.quantizer().quantize(&p);
        assert_eq!(w.len(), c.window().count(11));
        for (i, range) in c.window().ranges(11).enumerate() {
            let (s, t) = c.vocab().encode(&quantized[range]).unwrap();
            assert_eq!(w.get(i), Some((&s[..], &t[..])));
        }
    }

    #[test]
    fn short_pieces_give_no_windows_and_bad_pitches_are_errors() {
        let c = config(4, 2, Scheme::Separate);
        assert!(encode_piece(&piece("short", 3), &c).unwrap().is_empty());
        let mut bad = piece("bad", 5);
        bad.notes[1].pitch = 12;
        let err = encode_piece(&bad, &c).unwrap_err();
        assert_eq!(err.piece, "bad");
        assert!(err.to_string().contains("12-"), "{err}");
    }

    #[test]
    fn encode_pieces_keeps_order_and_matches_one_by_one() {
        let c = config(8, 3, Scheme::Separate);
        let pieces: Vec<Piece> = (0..20).map(|i| piece(&format!("p{i}"), 5 + 3 * i)).collect();
        let all = encode_pieces(&pieces, &c).unwrap();
        for (p, w) in pieces.iter().zip(&all) {
            assert_eq!(w, &encode_piece(p, &c).unwrap());
        }
        let mut joined = TokenWindows::new(9);
        all.iter().for_each(|w| joined.append(w));
        let expected: usize = pieces.iter().map(|p| c.window().count(p.notes.len())).sum();
        assert_eq!(joined.len(), expected);
        assert_eq!(joined.source().len(), expected * 9);
        assert_eq!(joined.target().len(), expected * 9);
    }
}
