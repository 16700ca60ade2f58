//! Dataset building: a run configuration in, the token windows of each split
//! out, through the cache.
//!
//! [`build`] lists and hashes the source files, and returns the cached
//! dataset when the [cache key](super::cache::dataset_key) is known.
//! Otherwise it loads the pieces ([`source`]), leaves out duplicates, and
//! assigns each group of pieces to one split ([`assign`]: seeded fractions
//! or folds, named files, the parquet's split column or a metadata table's
//! ([`table`](super::table)), never two splits for one group), makes the
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
use super::summary::{DatasetSummary, EdgeLists, PieceSummary, SplitSummary, TableJoin, Tally};
use super::table::{Lookup, TableError, Tables};
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
    #[diagnostic(transparent)]
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
    #[error(
        "no piece is left: {duplicates} left out as duplicates, {few_velocities} for too few distinct velocities, {no_row} for no row in a metadata table"
    )]
    #[diagnostic(help("lower `min-velocities`, or check that the metadata table names the source's files"))]
    NothingKept {
        /// Left out as duplicates.
        duplicates: usize,
        /// Left out by `min-velocities`.
        few_velocities: usize,
        /// Left out for no row in a metadata table.
        no_row: usize,
    },
    /// The pieces could not be grouped.
    #[error(transparent)]
    #[diagnostic(transparent)]
    Group(#[from] GroupError),
    /// A metadata table could not be read or joined.
    #[error(transparent)]
    #[diagnostic(transparent)]
    Table(#[from] TableError),
    /// `group column` without a table, on rows that lack the column.
    #[error("`group column name={column}`: no row of the source has a `{column}` value (the rows have: {known})")]
    #[diagnostic(help("{help}"))]
    NoMetadata {
        /// The column asked for.
        column: String,
        /// The metadata the rows have, comma-separated.
        known: String,
        /// A did-you-mean, or where else a group can come from.
        help: String,
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
    let tables = Tables::read(dataset, &folders.base)?;
    let key = cache::dataset_key(&files, &tables, dataset, config.encoder);
    let cache = Cache::new(cache_dir);
    let stale = match cache.load(&key) {
        Ok(Some(entry)) => {
            return from_entry(entry, Origin::Cached { key });
        }
        Ok(None) => None,
        Err(corrupt) => Some(corrupt.to_string()),
    };
    let loaded = source::load(&files, dataset.sustain, dataset.bad_files)?;
    let mut built = from_loaded(loaded, dataset, &tables, config.encoder, describe(&files))?;
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
    let tables = Tables::read(&config.dataset, &folders.base).ok()?;
    Cache::new(cache_dir).summary(&cache::dataset_key(&files, &tables, &config.dataset, config.encoder))
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

/// Builds a dataset from loaded pieces and the metadata tables the config
/// names, without the cache; `source` describes where they came from.
pub fn from_loaded(
    loaded: Loaded,
    dataset: &config::DatasetConfig,
    tables: &Tables,
    scheme: Scheme,
    source: String,
) -> Result<Dataset, DataError> {
    let window = WindowConfig::new(dataset.window.length, dataset.window.step)?;
    let Assigned {
        pieces,
        duplicates,
        left_out,
        joins,
    } = assign(loaded.pieces, dataset, tables)?;
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
        tables: joins,
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
    /// Pieces left out for too few distinct velocities, or for no row in
    /// a metadata table.
    pub left_out: Vec<Skipped>,
    /// How each metadata table joined the pieces.
    pub joins: Vec<TableJoin>,
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

/// Leaves out duplicates, pieces with fewer distinct velocities than
/// `min-velocities` and pieces a metadata table has no row for, groups the
/// rest and assigns every group one split by the dataset's rule: what
/// building and exporting a dataset share. `tables` holds the tables the
/// config names ([`Tables::read`]).
pub fn assign(
    pieces: Vec<SourcePiece>,
    dataset: &config::DatasetConfig,
    tables: &Tables,
) -> Result<Assigned, DataError> {
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
    let names: Vec<String> = pieces.iter().map(|p| p.piece.name.clone()).collect();
    let mut joined = join_tables(&names, dataset, tables)?;
    let min = usize::from(dataset.min_velocities);
    let mut left_out = Vec::new();
    let (mut few_velocities, mut no_row) = (0, 0);
    let mut kept_joined = Vec::with_capacity(pieces.len());
    for ((piece, repeated), (split, group)) in pieces.into_iter().zip(repeated).zip(joined.columns) {
        if repeated {
            continue;
        }
        let missing_from = match (&split, &group, &dataset.split, &dataset.group) {
            (None, _, config::Split::Table { path, .. }, _) => Some(path.as_str()),
            (_, None, _, config::Group::Column { table: Some(table), .. }) => Some(table.as_str()),
            (None, ..) | (_, None, ..) => Some("the metadata table"),
            _ => None,
        };
        if let Some(table) = missing_from {
            no_row += 1;
            if let Some(join) = joined.joins.iter_mut().find(|j| j.table == table) {
                join.files_not_in_table += 1;
            }
            left_out.push(Skipped {
                what: piece.piece.name.clone(),
                reason: format!("no row in {table}"),
            });
            continue;
        }
        let velocities = distinct_velocities(&piece.piece);
        if velocities < min {
            few_velocities += 1;
            left_out.push(Skipped {
                what: piece.piece.name.clone(),
                reason: format!(
                    "{velocities} distinct velocit{}, fewer than `min-velocities {min}`",
                    if velocities == 1 { "y" } else { "ies" }
                ),
            });
            continue;
        }
        kept_joined.push((piece, velocities, split.flatten(), group.flatten()));
    }
    if kept_joined.is_empty() {
        return Err(DataError::NothingKept {
            duplicates: found.len(),
            few_velocities,
            no_row,
        });
    }
    let names: Vec<String> = kept_joined.iter().map(|(p, ..)| p.piece.name.clone()).collect();
    let column: Vec<Option<String>> = match &dataset.group {
        config::Group::Column { table: Some(_), .. } => kept_joined.iter().map(|(.., group)| group.clone()).collect(),
        config::Group::Column { name, table: None, .. } => own_metadata(&kept_joined, name)?,
        _ => Vec::new(),
    };
    let groups = group::group_keys(&names, &dataset.group, &column)?;
    let rule = split_rule(&kept_joined, &dataset.split, tables)?;
    let splits = split(&names, &groups, &rule)?;
    let pieces = kept_joined
        .into_iter()
        .zip(groups)
        .zip(splits.as_slice())
        .map(|(((piece, velocities, ..), group), &split)| AssignedPiece {
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
        joins: joined.joins,
    })
}

/// A piece kept so far, with its count of distinct velocities and its
/// values in the split table's and the group table's columns.
type KeptPiece = (SourcePiece, usize, Option<String>, Option<String>);

/// A piece's value in a table's column: `None` when the table has no row
/// for it, `Some(None)` when its row has no value (or no table is asked).
type RowValue = Option<Option<String>>;

/// Each piece's row values in the tables the config names.
struct Joined {
    /// Per piece: its split value and its group value.
    columns: Vec<(RowValue, RowValue)>,
    /// How each table joined.
    joins: Vec<TableJoin>,
}

/// Looks up each of `names` in the split table and the group table the
/// config names (each through [`Table::lookup`](super::table::Table::lookup)).
fn join_tables(names: &[String], dataset: &config::DatasetConfig, tables: &Tables) -> Result<Joined, DataError> {
    let mut joins: Vec<TableJoin> = Vec::new();
    let mut look = |name: &str, file_column: &str, column: &str, fields| -> Result<Vec<RowValue>, DataError> {
        let Lookup {
            values,
            rows_without_file,
        } = tables.get(name)?.lookup(file_column, column, fields, names)?;
        if !joins.iter().any(|j| j.table == name) {
            joins.push(TableJoin {
                table: name.to_owned(),
                // Counted as pieces are left out (a duplicate is not).
                files_not_in_table: 0,
                rows_without_file: rows_without_file.len(),
                first_row_without_file: rows_without_file.into_iter().next(),
            });
        }
        Ok(values
            .into_iter()
            .map(|v| v.map(|v| Some(v).filter(|v| !v.trim().is_empty())))
            .collect())
    };
    let every = || vec![Some(None); names.len()];
    let split_values = match &dataset.split {
        config::Split::Table {
            path,
            file_column,
            split_column,
        } => look(path, file_column, split_column, ["file-column", "split-column"])?,
        _ => every(),
    };
    let group_values = match &dataset.group {
        config::Group::Column {
            name,
            table: Some(table),
            file_column,
        } => look(table, file_column, name, ["file-column", "name"])?,
        _ => every(),
    };
    Ok(Joined {
        columns: split_values.into_iter().zip(group_values).collect(),
        joins,
    })
}

/// Each piece's value of `column` in its own (parquet) metadata; an error
/// when no piece has one.
fn own_metadata(pieces: &[KeptPiece], column: &str) -> Result<Vec<Option<String>>, DataError> {
    let values: Vec<Option<String>> = pieces.iter().map(|(p, ..)| p.metadata.get(column).cloned()).collect();
    if values.iter().all(Option::is_none) {
        let known: std::collections::BTreeSet<&str> = pieces
            .iter()
            .flat_map(|(p, ..)| p.metadata.keys().map(String::as_str))
            .collect();
        return Err(DataError::NoMetadata {
            column: column.to_owned(),
            known: if known.is_empty() {
                "no metadata".to_owned()
            } else {
                known.iter().copied().collect::<Vec<_>>().join(", ")
            },
            help: runner_plan::show::did_you_mean(column, known.iter().copied())
                .unwrap_or_else(|| "name a metadata table: `group column name=... table=\"...\"`".to_owned()),
        });
    }
    Ok(values)
}

/// The splits a metadata table gives the pieces; every value that is not
/// train, validation or test is reported at once.
fn table_splits(pieces: &[KeptPiece], column: &str, table: &super::table::Table) -> Result<SplitRule, DataError> {
    let mut splits = Vec::with_capacity(pieces.len());
    let mut bad = Vec::new();
    for (piece, _, value, _) in pieces {
        let value = value.as_deref().unwrap_or("");
        match Split::parse(value) {
            Some(split) => splits.push(split),
            None => bad.push((piece.piece.name.clone(), value.to_owned())),
        }
    }
    if bad.is_empty() {
        Ok(SplitRule::Given(splits))
    } else {
        Err(table.bad_splits(column, &bad).into())
    }
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

/// The split rule for the kept pieces (with their table values, see
/// [`assign`]): the config's rule, or the splits a table or the parquet gives.
fn split_rule(pieces: &[KeptPiece], rule: &config::Split, tables: &Tables) -> Result<SplitRule, DataError> {
    Ok(match rule {
        config::Split::Table { path, split_column, .. } => table_splits(pieces, split_column, tables.get(path)?)?,
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
            let missing: Vec<&str> = pieces
                .iter()
                .filter(|(p, ..)| p.split.is_none())
                .map(|(p, ..)| p.piece.name.as_str())
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
            SplitRule::Given(pieces.iter().filter_map(|(p, ..)| p.split).collect())
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
            metadata: Default::default(),
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
        let assigned = assign(pieces, &config(config::Split::Column), &Tables::default()).unwrap();
        assert_eq!(splits_of(&assigned), vec![Split::Test, Split::Train]);
        let partial = vec![piece_with("a", Some(Split::Test), 1), piece_with("b", None, 20)];
        let err = assign(partial, &config(config::Split::Column), &Tables::default()).unwrap_err();
        assert!(err.to_string().contains("1 of 2 pieces have none"), "{err}");
    }

    #[test]
    fn one_name_in_two_splits_is_refused() {
        let pieces = vec![
            piece_with("a", Some(Split::Train), 1),
            piece_with("a", Some(Split::Validation), 20),
        ];
        let err = assign(pieces, &config(config::Split::Column), &Tables::default()).unwrap_err();
        assert!(err.to_string().contains("two pieces are named \"a\""), "{err}");
    }

    #[test]
    fn duplicates_are_left_out_and_reported_or_refused() {
        let pieces = vec![piece("b.mid", None), piece("a.mid", None), piece_with("c.mid", None, 1)];
        let assigned = assign(pieces.clone(), &all_train(), &Tables::default()).unwrap();
        let kept: Vec<&str> = assigned.pieces.iter().map(|p| p.piece.name.as_str()).collect();
        assert_eq!(kept, ["a.mid", "c.mid"]);
        assert_eq!(assigned.duplicates.len(), 1);
        assert_eq!(
            (assigned.duplicates[0].name.as_str(), assigned.duplicates[0].of.as_str()),
            ("b.mid", "a.mid")
        );
        let mut strict = all_train();
        strict.duplicates = config::Duplicates::Fail;
        let err = assign(pieces, &strict, &Tables::default()).unwrap_err();
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
        let kept = assign(pieces.clone(), &dataset, &Tables::default()).unwrap();
        assert_eq!(
            kept.pieces.iter().map(|p| p.facts.velocities).collect::<Vec<_>>(),
            [1, 10]
        );
        dataset.min_velocities = 2;
        let assigned = assign(pieces, &dataset, &Tables::default()).unwrap();
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

    #[test]
    fn a_parquet_rows_own_metadata_can_name_the_groups() {
        let with = |name: &str, composer: Option<&str>, first_velocity: u8| {
            let mut piece = piece_with(name, None, first_velocity);
            if let Some(composer) = composer {
                piece.metadata.insert("composer".to_owned(), composer.to_owned());
            }
            piece
        };
        let pieces = || {
            vec![
                with("x#0", Some("Chopin"), 1),
                with("x#1", Some("Chopin"), 20),
                with("x#2", Some("Liszt"), 40),
                with("x#3", None, 60),
            ]
        };
        let mut dataset = all_train();
        dataset.group = config::Group::Column {
            name: "composer".to_owned(),
            table: None,
            file_column: "midi_filename".to_owned(),
        };
        let assigned = assign(pieces(), &dataset, &Tables::default()).unwrap();
        let groups: Vec<&str> = assigned.pieces.iter().map(|p| p.facts.group.as_str()).collect();
        assert_eq!(groups, ["composer=Chopin", "composer=Chopin", "composer=Liszt", "x#3"]);
        dataset.group = config::Group::Column {
            name: "composr".to_owned(),
            table: None,
            file_column: "midi_filename".to_owned(),
        };
        let err = assign(pieces(), &dataset, &Tables::default()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "`group column name=composr`: no row of the source has a `composr` value (the rows have: composer)"
        );
        let DataError::NoMetadata { help, .. } = err else {
            unreachable!()
        };
        assert_eq!(help, "did you mean `composer`?");
    }
}
