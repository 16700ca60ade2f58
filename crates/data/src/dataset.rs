//! Dataset building: a run configuration in, the token windows of each split
//! out, through the cache.
//!
//! [`build`] lists and hashes the source files, and returns the cached
//! dataset when the [cache key](super::cache::dataset_key) is known.
//! Otherwise it loads the pieces ([`source`]), assigns each
//! piece to one split ([`assign_splits`]: seeded fractions, named files or
//! the parquet's split column, never two splits for one piece), makes the
//! bin edges (fixed, quantiles of the training split only, or explicit),
//! then quantizes, windows and encodes every piece in parallel, dropping
//! each piece's notes once it is encoded, and stores the result in the
//! cache. Augmentation happens at training time, not here.
//!
//! Memory: the notes of every piece are held until its split is encoded
//! (splitting needs every piece's name, quantile edges the training notes):
//! 24 bytes a note, about 170 MB at MAESTRO scale, next to the windows
//! themselves (8 bytes per note per window it is in).

use std::collections::HashMap;
use std::path::Path;

use rayon::prelude::*;

use super::cache::{self, Cache, CacheError, Entry};
use super::encoder::{EncodeError, Vocab};
use super::notes::Piece;
use super::quantize::{Bins, Edges, Feature, QuantizeError, Quantizer};
use super::source::{self, FileKind, Folders, Loaded, SourceError, SourcePiece};
use super::split::{Split, SplitError, SplitRule, split};
use super::summary::{DatasetSummary, EdgeLists, PieceSummary, SplitSummary, Tally};
use super::window::{WindowConfig, WindowError};
use super::{PieceError, TokenWindows, encode_quantized};
use runner_plan::config::{self, RunConfig, Scheme};

/// A dataset ready for training: token windows per split and what they hold.
#[derive(Debug, Clone, PartialEq)]
pub struct Dataset {
    /// The vocabulary (scheme and bin counts).
    pub vocab: Vocab,
    /// The bin edges in use.
    pub quantizer: Quantizer,
    /// Training windows.
    pub train: TokenWindows,
    /// Validation windows.
    pub validation: TokenWindows,
    /// Test windows.
    pub test: TokenWindows,
    /// Pieces, notes, windows, bins and velocities per split.
    pub summary: DatasetSummary,
    /// Where the dataset came from.
    pub origin: Origin,
}

impl Dataset {
    /// The windows of `split`.
    pub fn windows(&self, split: Split) -> &TokenWindows {
        match split {
            Split::Train => &self.train,
            Split::Validation => &self.validation,
            Split::Test => &self.test,
        }
    }
}

/// Whether a dataset was built or read from the cache.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// Built from the source and stored under `key`.
    Built {
        /// The cache key.
        key: String,
    },
    /// Built again because the cached entry was unusable.
    Rebuilt {
        /// The cache key.
        key: String,
        /// What was wrong with the old entry.
        reason: String,
    },
    /// Read from the cache entry `key`.
    Cached {
        /// The cache key.
        key: String,
    },
    /// Built without the cache (see [`from_loaded`]).
    Uncached,
}

/// Why a dataset could not be built.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum DataError {
    /// The source could not be listed or read.
    #[error(transparent)]
    #[diagnostic(transparent)]
    Source(#[from] SourceError),
    /// The split rule does not fit the pieces.
    #[error(transparent)]
    Split(#[from] SplitError),
    /// `split column` without a split value for every piece.
    #[error("`split column` needs a split value for every piece: {problem}")]
    #[diagnostic(help("use an hf-parquet source whose files have a `split` column, or split by fractions or files"))]
    NoSplitColumn {
        /// What is missing.
        problem: String,
    },
    /// Two pieces with one name: the same piece could end up in two splits.
    #[error("piece {name:?} appears twice (in {first} and in {second}); every piece must be in one split only")]
    DuplicatePiece {
        /// The name.
        name: String,
        /// The split of its first occurrence.
        first: Split,
        /// The split of its second.
        second: Split,
    },
    /// The bin edges could not be made.
    #[error("bin edges: {0}")]
    Quantize(#[from] QuantizeError),
    /// Explicit edges that disagree with the bin counts.
    #[error("explicit {feature} edges give {found} bins but the dataset asks for {bins}")]
    EdgeCount {
        /// The feature.
        feature: Feature,
        /// Bins the edges give.
        found: usize,
        /// Bins asked for.
        bins: usize,
    },
    /// A window of zero length or step.
    #[error("window: {0}")]
    Window(#[from] WindowError),
    /// The bin counts give no vocabulary.
    #[error("vocabulary: {0}")]
    Vocab(#[from] EncodeError),
    /// A piece the vocabulary cannot encode.
    #[error(transparent)]
    Encode(#[from] PieceError),
    /// The cache could not be written.
    #[error(transparent)]
    #[diagnostic(transparent)]
    Cache(#[from] CacheError),
}

/// Builds the dataset of `config` (its `dataset` and `encoder`) from its
/// source in `folders`, caching in `cache_dir`.
pub fn build(config: &RunConfig, folders: &Folders, cache_dir: &Path) -> Result<Dataset, DataError> {
    let dataset = &config.dataset;
    let files = source::list(&dataset.source, folders)?;
    let key = cache::dataset_key(&files, dataset, config.encoder);
    let cache = Cache::new(cache_dir);
    let stale = match cache.load(&key) {
        Ok(Some(entry)) => {
            return from_entry(entry, Origin::Cached { key });
        }
        Ok(None) => None,
        Err(corrupt) => Some(corrupt.to_string()),
    };
    let loaded = source::load(&files, dataset.sustain, dataset.bad_files)?;
    let mut built = from_loaded(loaded, dataset, config.encoder, describe(&files))?;
    cache.store(&key, &built.summary, [&built.train, &built.validation, &built.test])?;
    built.origin = match stale {
        Some(reason) => Origin::Rebuilt { key, reason },
        None => Origin::Built { key },
    };
    Ok(built)
}

/// The summary of `config`'s dataset when the cache in `cache_dir` holds
/// it, without building anything: the source files are listed and hashed
/// (their key), only the entry's summary is read. `None` when the data is
/// missing or not cached yet.
pub fn cached_summary(config: &RunConfig, folders: &Folders, cache_dir: &Path) -> Option<DatasetSummary> {
    let files = source::list(&config.dataset.source, folders).ok()?;
    Cache::new(cache_dir).summary(&cache::dataset_key(&files, &config.dataset, config.encoder))
}

/// `10 MIDI files in DIR`.
fn describe(files: &source::SourceFiles) -> String {
    let kind = match files.kind {
        FileKind::Midi => "MIDI",
        FileKind::Parquet => "parquet",
    };
    let n = files.files.len();
    format!(
        "{n} {kind} file{} in {}",
        if n == 1 { "" } else { "s" },
        files.dir.display()
    )
}

/// A dataset from a cache entry: the vocabulary and edges follow its summary.
fn from_entry(entry: Entry, origin: Origin) -> Result<Dataset, DataError> {
    let edges = &entry.summary.edges;
    let quantizer = Quantizer {
        dstart: Edges::new(edges.dstart.clone())?,
        duration: Edges::new(edges.duration.clone())?,
        velocity: Edges::new(edges.velocity.clone())?,
    };
    Ok(Dataset {
        vocab: Vocab::new(entry.summary.scheme, quantizer.bins())?,
        quantizer,
        train: entry.train,
        validation: entry.validation,
        test: entry.test,
        summary: entry.summary,
        origin,
    })
}

/// Builds a dataset from loaded pieces, without the cache; `source` describes
/// where they came from.
pub fn from_loaded(
    loaded: Loaded,
    dataset: &config::DatasetConfig,
    scheme: Scheme,
    source: String,
) -> Result<Dataset, DataError> {
    let window = WindowConfig::new(dataset.window.length, dataset.window.step)?;
    let splits = assign_splits(&loaded.pieces, &dataset.split)?;
    let mut by_split: [Vec<Piece>; 3] = Default::default();
    for (piece, split) in loaded.pieces.into_iter().zip(splits) {
        by_split[split as usize].push(piece.piece);
    }
    let quantizer = quantizer(&dataset.quantize, &by_split[Split::Train as usize])?;
    let encoding = super::DatasetConfig::new(quantizer.clone(), window, scheme)?;
    let [train, validation, test] = by_split;
    let (train, train_summary) = encode_split(Split::Train, train, &encoding)?;
    let (validation, validation_summary) = encode_split(Split::Validation, validation, &encoding)?;
    let (test, test_summary) = encode_split(Split::Test, test, &encoding)?;
    let summary = DatasetSummary {
        source,
        splits: vec![train_summary, validation_summary, test_summary],
        edges: EdgeLists {
            dstart: quantizer.dstart.as_slice().to_vec(),
            duration: quantizer.duration.as_slice().to_vec(),
            velocity: quantizer.velocity.as_slice().to_vec(),
        },
        window: dataset.window,
        scheme,
        skipped: loaded.skipped,
        dropped_notes: loaded.dropped_notes,
    };
    Ok(Dataset {
        vocab: *encoding.vocab(),
        quantizer,
        train,
        validation,
        test,
        summary,
        origin: Origin::Uncached,
    })
}

/// Each piece's split by `rule`, checked so that no piece name is in two splits.
pub fn assign_splits(pieces: &[SourcePiece], rule: &config::Split) -> Result<Vec<Split>, DataError> {
    let names: Vec<String> = pieces.iter().map(|p| p.piece.name.clone()).collect();
    let splits = match rule {
        &config::Split::Fractions {
            train,
            validation,
            test,
            seed,
        } => split(
            &names,
            &SplitRule::Fractions {
                train,
                validation,
                test,
                seed,
            },
        )?
        .as_slice()
        .to_vec(),
        config::Split::Files {
            train,
            validation,
            test,
        } => split(
            &names,
            &SplitRule::Lists {
                train: train.clone(),
                validation: validation.clone(),
                test: test.clone(),
            },
        )?
        .as_slice()
        .to_vec(),
        config::Split::Column => {
            let missing: Vec<&str> = pieces
                .iter()
                .filter(|p| p.split.is_none())
                .map(|p| p.piece.name.as_str())
                .collect();
            if let Some(first) = missing.first() {
                return Err(DataError::NoSplitColumn {
                    problem: format!(
                        "{} of {} pieces have none (first: {first:?})",
                        missing.len(),
                        pieces.len()
                    ),
                });
            }
            pieces.iter().filter_map(|p| p.split).collect()
        }
    };
    let mut owner: HashMap<&str, Split> = HashMap::with_capacity(names.len());
    for (name, &split) in names.iter().zip(&splits) {
        if let Some(first) = owner.insert(name, split) {
            return Err(DataError::DuplicatePiece {
                name: name.clone(),
                first,
                second: split,
            });
        }
    }
    Ok(splits)
}

/// The bin edges `quantize` asks for; quantiles come from `train` only.
fn quantizer(quantize: &config::Quantize, train: &[Piece]) -> Result<Quantizer, DataError> {
    let bins = Bins {
        dstart: quantize.dstart,
        duration: quantize.duration,
        velocity: quantize.velocity,
    };
    Ok(match &quantize.edges {
        config::Edges::Original => Quantizer::fixed(bins)?,
        config::Edges::Quantile => Quantizer::from_quantiles(train, bins)?,
        config::Edges::Explicit {
            dstart,
            duration,
            velocity,
        } => {
            let edges = |feature, values: &Vec<f64>, bins| {
                let edges = Edges::explicit(feature, values.clone())?;
                match edges.bins() {
                    found if found == bins => Ok(edges),
                    found => Err(DataError::EdgeCount { feature, found, bins }),
                }
            };
            Quantizer {
                dstart: edges(Feature::Dstart, dstart, bins.dstart)?,
                duration: edges(Feature::Duration, duration, bins.duration)?,
                velocity: edges(Feature::Velocity, velocity, bins.velocity)?,
            }
        }
    })
}

/// Quantizes, windows and encodes the pieces of one split in parallel, each
/// piece's notes dropped once encoded; the windows keep the pieces' order.
fn encode_split(
    split: Split,
    pieces: Vec<Piece>,
    config: &super::DatasetConfig,
) -> Result<(TokenWindows, SplitSummary), DataError> {
    let bins = config.quantizer().bins();
    let encoded = pieces
        .into_par_iter()
        .map(|piece| {
            let quantized = config.quantizer().quantize(&piece);
            let mut tally = Tally::new(bins);
            tally.add(&quantized);
            let windows = encode_quantized(&piece.name, &quantized, config)?;
            let summary = PieceSummary {
                notes: quantized.len(),
                windows: windows.len(),
                name: piece.name,
            };
            Ok((summary, tally, windows))
        })
        .collect::<Result<Vec<_>, PieceError>>()?;
    let mut windows = TokenWindows::new(config.window().length() + 1);
    let mut tally = Tally::new(bins);
    let mut pieces = Vec::with_capacity(encoded.len());
    for (summary, piece_tally, piece_windows) in encoded {
        windows.append(&piece_windows);
        tally.merge(&piece_tally);
        pieces.push(summary);
    }
    Ok((windows, SplitSummary::new(split, pieces, &tally)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notes::Note;

    fn piece(name: &str, split: Option<Split>) -> SourcePiece {
        let notes = (0..10)
            .map(|i| Note {
                pitch: 60,
                start: f64::from(i),
                end: f64::from(i) + 0.5,
                velocity: 40 + i as u8,
            })
            .collect();
        SourcePiece {
            piece: Piece::new(name, notes),
            split,
        }
    }

    #[test]
    fn the_split_column_assigns_pieces_and_must_cover_all() {
        let pieces = [piece("a", Some(Split::Test)), piece("b", Some(Split::Train))];
        assert_eq!(
            assign_splits(&pieces, &config::Split::Column).unwrap(),
            vec![Split::Test, Split::Train]
        );
        let partial = [piece("a", Some(Split::Test)), piece("b", None)];
        let err = assign_splits(&partial, &config::Split::Column).unwrap_err();
        assert!(err.to_string().contains("1 of 2 pieces have none"), "{err}");
    }

    #[test]
    fn one_piece_in_two_splits_is_refused() {
        let pieces = [piece("a", Some(Split::Train)), piece("a", Some(Split::Validation))];
        let err = assign_splits(&pieces, &config::Split::Column).unwrap_err();
        assert!(matches!(err, DataError::DuplicatePiece { .. }), "{err}");
    }

    #[test]
    fn explicit_edges_must_match_the_bin_counts() {
        let quantize = config::Quantize {
            dstart: 2,
            duration: 1,
            velocity: 2,
            edges: config::Edges::Explicit {
                dstart: vec![0.0, 0.1],
                duration: vec![0.0],
                velocity: vec![0.0, 64.0, 128.0],
            },
        };
        let q = quantizer(&quantize, &[]).unwrap();
        assert_eq!(q.velocity.as_slice(), &[0.0, 64.0]);
        let wrong = config::Quantize { dstart: 3, ..quantize };
        assert!(matches!(
            quantizer(&wrong, &[]),
            Err(DataError::EdgeCount {
                feature: Feature::Dstart,
                found: 2,
                bins: 3
            })
        ));
    }
}
