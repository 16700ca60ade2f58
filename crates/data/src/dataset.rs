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

use std::path::Path;

use rayon::prelude::*;

use super::cache::{self, Cache, CacheError, Entry};
use super::duplicates::{self, Duplicate, Identical};
use super::encoder::{EncodeError, Vocab};
use super::group::{self, GroupError};
use super::notes::Piece;
use super::quantize::{Bins, Edges, Feature, QuantizeError, Quantizer};
use super::source::{self, FileKind, Folders, Loaded, Skipped, SourceError, SourcePiece};
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
    /// Pieces that repeat another, with `duplicates fail`.
    #[error("{count} piece(s) repeat another:\n  {list}")]
    #[diagnostic(help("remove them from the source, or set `duplicates drop` to keep the first of each by name"))]
    Duplicates {
        /// How many.
        count: usize,
        /// One line each.
        list: String,
    },
    /// Every piece was left out.
    #[error("no piece is left: {duplicates} left out as duplicates, {few_velocities} for too few distinct velocities")]
    #[diagnostic(help("lower `min-velocities`"))]
    NothingKept {
        /// Left out as duplicates.
        duplicates: usize,
        /// Left out by `min-velocities`.
        few_velocities: usize,
    },
    /// The pieces could not be grouped.
    #[error(transparent)]
    #[diagnostic(transparent)]
    Group(#[from] GroupError),
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
    let Assigned {
        pieces,
        duplicates,
        left_out,
    } = assign(loaded.pieces, dataset)?;
    let mut by_split: [Vec<Piece>; 3] = Default::default();
    let mut facts: [Vec<PieceFacts>; 3] = Default::default();
    for piece in pieces {
        by_split[piece.split as usize].push(piece.piece);
        facts[piece.split as usize].push(piece.facts);
    }
    let quantizer = quantizer(&dataset.quantize, &by_split[Split::Train as usize])?;
    let encoding = super::DatasetConfig::new(quantizer.clone(), window, scheme)?;
    let [train, validation, test] = by_split;
    let [train_facts, validation_facts, test_facts] = facts;
    let (train, train_summary) = encode_split(Split::Train, train, train_facts, &encoding)?;
    let (validation, validation_summary) = encode_split(Split::Validation, validation, validation_facts, &encoding)?;
    let (test, test_summary) = encode_split(Split::Test, test, test_facts, &encoding)?;
    let mut skipped = loaded.skipped;
    skipped.extend(left_out);
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
        skipped,
        dropped_notes: loaded.dropped_notes,
        duplicates,
        kept_duplicates: dataset.duplicates == config::Duplicates::Keep,
        folds: match dataset.split {
            config::Split::KFold { k, .. } => Some(k),
            _ => None,
        },
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

/// The pieces a dataset keeps, each with its group and split, and those it
/// leaves out.
#[derive(Debug, Clone, PartialEq)]
pub struct Assigned {
    /// The kept pieces, in the order they were loaded.
    pub pieces: Vec<AssignedPiece>,
    /// Pieces that repeat another: left out, unless `duplicates keep`.
    pub duplicates: Vec<Duplicate>,
    /// Pieces left out for too few distinct velocities.
    pub left_out: Vec<Skipped>,
}

/// A kept piece.
#[derive(Debug, Clone, PartialEq)]
pub struct AssignedPiece {
    /// The notes.
    pub piece: Piece,
    /// Its split.
    pub split: Split,
    /// What its summary says besides its counts.
    pub facts: PieceFacts,
}

/// What a piece's summary says besides its counts.
#[derive(Debug, Clone, PartialEq)]
pub struct PieceFacts {
    /// The group it shares a split with.
    pub group: String,
    /// How many different velocities its notes have.
    pub velocities: usize,
    /// What the reader let pass in its file.
    pub warnings: Vec<String>,
}

/// Leaves out duplicates and pieces with fewer distinct velocities than
/// `min-velocities`, groups the rest and assigns every group one split by
/// the dataset's rule: what building and exporting a dataset share.
pub fn assign(pieces: Vec<SourcePiece>, dataset: &config::DatasetConfig) -> Result<Assigned, DataError> {
    let found = duplicates::find(&pieces);
    if dataset.duplicates == config::Duplicates::Fail && !found.is_empty() {
        return Err(DataError::Duplicates {
            count: found.len(),
            list: found
                .iter()
                .map(|(_, d)| format!("{} repeats {} ({})", d.name, d.of, identical_text(d.identical)))
                .collect::<Vec<_>>()
                .join("\n  "),
        });
    }
    let mut repeated = vec![false; pieces.len()];
    if dataset.duplicates != config::Duplicates::Keep {
        for (i, _) in &found {
            repeated[*i] = true;
        }
    }
    let min = usize::from(dataset.min_velocities);
    let mut left_out = Vec::new();
    let mut kept = Vec::with_capacity(pieces.len());
    for (piece, repeated) in pieces.into_iter().zip(repeated) {
        if repeated {
            continue;
        }
        let velocities = distinct_velocities(&piece.piece);
        if velocities < min {
            left_out.push(Skipped {
                what: piece.piece.name.clone(),
                reason: format!(
                    "{velocities} distinct velocit{}, fewer than `min-velocities {min}`",
                    if velocities == 1 { "y" } else { "ies" }
                ),
            });
            continue;
        }
        kept.push((piece, velocities));
    }
    if kept.is_empty() {
        return Err(DataError::NothingKept {
            duplicates: found.len(),
            few_velocities: left_out.len(),
        });
    }
    let names: Vec<String> = kept.iter().map(|(p, _)| p.piece.name.clone()).collect();
    let groups = group::group_keys(&names, &dataset.group)?;
    let given: Vec<Option<Split>> = kept.iter().map(|(p, _)| p.split).collect();
    let rule = split_rule(&names, &given, &dataset.split)?;
    let splits = split(&names, &groups, &rule)?;
    let pieces = kept
        .into_iter()
        .zip(groups)
        .zip(splits.as_slice())
        .map(|(((piece, velocities), group), &split)| AssignedPiece {
            piece: piece.piece,
            split,
            facts: PieceFacts {
                group,
                velocities,
                warnings: piece.warnings,
            },
        })
        .collect();
    Ok(Assigned {
        pieces,
        duplicates: found.into_iter().map(|(_, d)| d).collect(),
        left_out,
    })
}

/// `the bytes` / `the notes`.
fn identical_text(identical: Identical) -> &'static str {
    match identical {
        Identical::Bytes => "the same bytes",
        Identical::Notes => "the same notes",
    }
}

/// How many different velocities the notes of `piece` have.
fn distinct_velocities(piece: &Piece) -> usize {
    let mut seen = [false; 256];
    for note in &piece.notes {
        seen[usize::from(note.velocity)] = true;
    }
    seen.iter().filter(|&&s| s).count()
}

/// The split module's rule for the configured split; `split column` needs
/// every piece's split value (`given`, aligned with `names`).
fn split_rule(names: &[String], given: &[Option<Split>], rule: &config::Split) -> Result<SplitRule, DataError> {
    Ok(match rule {
        &config::Split::Fractions {
            train,
            validation,
            test,
            seed,
        } => SplitRule::Fractions {
            train,
            validation,
            test,
            seed,
        },
        config::Split::Files {
            train,
            validation,
            test,
        } => SplitRule::Lists {
            train: train.clone(),
            validation: validation.clone(),
            test: test.clone(),
        },
        &config::Split::KFold { k, fold, seed } => SplitRule::KFold { k, fold, seed },
        config::Split::Column => {
            let missing: Vec<&str> = names
                .iter()
                .zip(given)
                .filter(|(_, split)| split.is_none())
                .map(|(name, _)| name.as_str())
                .collect();
            if let Some(first) = missing.first() {
                return Err(DataError::NoSplitColumn {
                    problem: format!(
                        "{} of {} pieces have none (first: {first:?})",
                        missing.len(),
                        names.len()
                    ),
                });
            }
            SplitRule::Given(given.iter().flatten().copied().collect())
        }
    })
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
    facts: Vec<PieceFacts>,
    config: &super::DatasetConfig,
) -> Result<(TokenWindows, SplitSummary), DataError> {
    let bins = config.quantizer().bins();
    let encoded = pieces
        .into_par_iter()
        .zip(facts)
        .map(|(piece, facts)| {
            let quantized = config.quantizer().quantize(&piece);
            let mut tally = Tally::new(bins);
            tally.add(&quantized);
            let windows = encode_quantized(&piece.name, &quantized, config)?;
            let summary = PieceSummary {
                notes: quantized.len(),
                windows: windows.len(),
                name: piece.name,
                group: facts.group,
                velocities: facts.velocities,
                warnings: facts.warnings,
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
        piece_with(name, split, 40)
    }

    /// Ten notes at one pitch, velocities from `first_velocity` up.
    fn piece_with(name: &str, split: Option<Split>, first_velocity: u8) -> SourcePiece {
        let notes = (0..10)
            .map(|i| Note {
                pitch: 60,
                start: f64::from(i),
                end: f64::from(i) + 0.5,
                velocity: first_velocity + i as u8,
            })
            .collect();
        SourcePiece {
            piece: Piece::new(name, notes),
            split,
            file_sha256: None,
            warnings: Vec::new(),
        }
    }

    fn config(split: config::Split) -> config::DatasetConfig {
        config::DatasetConfig {
            source: config::Source::Bundled,
            split,
            group: config::Group::File,
            sustain: None,
            bad_files: config::BadFiles::Skip,
            duplicates: config::Duplicates::Drop,
            min_velocities: 0,
            window: config::Window { length: 4, step: 2 },
            quantize: config::Quantize {
                dstart: 3,
                duration: 3,
                velocity: 3,
                edges: config::Edges::Original,
            },
            augment: config::Augment {
                pitch_shift: 0,
                time_stretch: 0.0,
                probability: 0.0,
            },
        }
    }

    /// Every piece in training.
    fn all_train() -> config::DatasetConfig {
        config(config::Split::Fractions {
            train: 1.0,
            validation: 0.0,
            test: 0.0,
            seed: 0,
        })
    }

    fn splits_of(assigned: &Assigned) -> Vec<Split> {
        assigned.pieces.iter().map(|p| p.split).collect()
    }

    #[test]
    fn the_split_column_assigns_pieces_and_must_cover_all() {
        let pieces = vec![
            piece_with("a", Some(Split::Test), 1),
            piece_with("b", Some(Split::Train), 20),
        ];
        let assigned = assign(pieces, &config(config::Split::Column)).unwrap();
        assert_eq!(splits_of(&assigned), vec![Split::Test, Split::Train]);
        let partial = vec![piece_with("a", Some(Split::Test), 1), piece_with("b", None, 20)];
        let err = assign(partial, &config(config::Split::Column)).unwrap_err();
        assert!(err.to_string().contains("1 of 2 pieces have none"), "{err}");
    }

    #[test]
    fn one_name_in_two_splits_is_refused() {
        let pieces = vec![
            piece_with("a", Some(Split::Train), 1),
            piece_with("a", Some(Split::Validation), 20),
        ];
        let err = assign(pieces, &config(config::Split::Column)).unwrap_err();
        assert!(err.to_string().contains("two pieces are named \"a\""), "{err}");
    }

    #[test]
    fn duplicates_are_left_out_and_reported_or_refused() {
        let pieces = vec![piece("b.mid", None), piece("a.mid", None), piece_with("c.mid", None, 1)];
        let assigned = assign(pieces.clone(), &all_train()).unwrap();
        let kept: Vec<&str> = assigned.pieces.iter().map(|p| p.piece.name.as_str()).collect();
        assert_eq!(kept, ["a.mid", "c.mid"]);
        assert_eq!(assigned.duplicates.len(), 1);
        assert_eq!(
            (assigned.duplicates[0].name.as_str(), assigned.duplicates[0].of.as_str()),
            ("b.mid", "a.mid")
        );
        let mut strict = all_train();
        strict.duplicates = config::Duplicates::Fail;
        let err = assign(pieces, &strict).unwrap_err();
        assert_eq!(
            err.to_string(),
            "1 piece(s) repeat another:\n  b.mid repeats a.mid (the same notes)"
        );
    }

    #[test]
    fn pieces_with_too_few_velocities_can_be_left_out() {
        let mut constant = piece("flat.mid", None);
        constant.piece.notes.iter_mut().for_each(|n| n.velocity = 80);
        let pieces = vec![constant, piece("played.mid", None)];
        let mut dataset = all_train();
        let kept = assign(pieces.clone(), &dataset).unwrap();
        assert_eq!(
            kept.pieces.iter().map(|p| p.facts.velocities).collect::<Vec<_>>(),
            [1, 10]
        );
        dataset.min_velocities = 2;
        let assigned = assign(pieces, &dataset).unwrap();
        assert_eq!(assigned.pieces.len(), 1);
        assert_eq!(assigned.left_out[0].what, "flat.mid");
        assert_eq!(
            assigned.left_out[0].reason,
            "1 distinct velocity, fewer than `min-velocities 2`"
        );
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
