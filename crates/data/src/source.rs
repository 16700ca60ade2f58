//! Sources: a configured [`Source`] in, its files and then its pieces out.
//!
//! Two steps, so that a cached dataset can be found without parsing a file:
//!
//! 1. [`list`] finds the files a source names and hashes each file's bytes
//!    (SHA-256): the bundled set (checked against the committed
//!    `data/bundled.sha256`), every `.mid` / `.midi` file under a folder, or
//!    every `.parquet` file under a folder, sorted by their path relative to
//!    the folder. The hashes key the dataset cache.
//! 2. [`load`] reads those files in parallel into [`SourcePiece`]s: MIDI files
//!    through [`midi`](super::midi) (a piece per file, named by its relative
//!    path), parquet files through [`parquet`] (a piece per row, with the
//!    row's split when the file has one). A bad file or row is
//!    reported as [`Skipped`] (with [`BadFiles::Skip`]) or stops the load
//!    ([`BadFiles::Fail`]); nothing panics.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use rayon::prelude::*;
use sha2::{Digest, Sha256};

use super::midi::{MidiConfig, read_midi_file};
use super::notes::Piece;
use super::parquet;
use super::split::Split;
use runner_plan::config::{BadFiles, Source};

/// The environment variable that moves the bundled folder.
pub const BUNDLED_DIR_VAR: &str = "RUNNER_BUNDLED_DIR";

/// The committed checksum list of the bundled files (`sha256sum` format).
const BUNDLED_SHA256: &str = include_str!("../../../data/bundled.sha256");

/// What kind of files a source holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FileKind {
    /// Standard MIDI files.
    Midi,
    /// Parquet files in the HuggingFace maestro layout.
    Parquet,
}

/// One file of a source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceFile {
    /// Where it is.
    pub path: PathBuf,
    /// Its path relative to the source folder, with `/` separators: the
    /// name of its piece (MIDI) and its place in the cache key.
    pub name: String,
    /// SHA-256 of its bytes.
    pub sha256: [u8; 32],
}

/// The files of a source, sorted by name, with their hashes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceFiles {
    /// The folder they were found in.
    pub dir: PathBuf,
    /// What they hold.
    pub kind: FileKind,
    /// The files, sorted by [`SourceFile::name`].
    pub files: Vec<SourceFile>,
}

/// A file or row that was left out, and why.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Skipped {
    /// The file, with `#row N` for a parquet row.
    pub what: String,
    /// Why it was left out.
    pub reason: String,
}

/// A piece and, for parquet rows that have one, the split its file gives it.
#[derive(Debug, Clone, PartialEq)]
pub struct SourcePiece {
    /// The notes.
    pub piece: Piece,
    /// The value of the row's split column, if any.
    pub split: Option<Split>,
    /// SHA-256 of its file's bytes, when the file holds this piece alone (MIDI).
    pub file_sha256: Option<[u8; 32]>,
    /// What the reader let pass in its file (e.g. trailing bytes).
    pub warnings: Vec<String>,
    /// A parquet row's text metadata (for `group column`); empty for MIDI.
    pub metadata: BTreeMap<String, String>,
}

/// What a source held.
#[derive(Debug, Clone, PartialEq)]
pub struct Loaded {
    /// The readable pieces, in file order (then row order).
    pub pieces: Vec<SourcePiece>,
    /// The files and rows that were skipped.
    pub skipped: Vec<Skipped>,
    /// Notes dropped because their pitch lies outside the piano range.
    pub dropped_notes: usize,
}

/// Why a source could not be listed or loaded.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum SourceError {
    /// The bundled folder or one of its files is missing or altered.
    #[error("the bundled data is not in place: {problem}")]
    #[diagnostic(help(
        "run `scripts/setup` (or `scripts/fetch-bundled-data`) to fetch the ten MAESTRO files into {}",
        dir.display()
    ))]
    Bundled {
        /// The folder looked in.
        dir: PathBuf,
        /// What is wrong.
        problem: String,
    },
    /// A dataset folder that does not exist or is not a folder.
    #[error("dataset folder {} does not exist or is not a folder", path.display())]
    #[diagnostic(help("relative paths are taken from the experiment file's folder"))]
    MissingDir {
        /// The folder.
        path: PathBuf,
    },
    /// A dataset folder without files of the expected kind.
    #[error("no {what} files under {}", path.display())]
    NoFiles {
        /// The folder.
        path: PathBuf,
        /// `.mid / .midi` or `.parquet`.
        what: &'static str,
    },
    /// A file or folder that could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Io {
        /// The path.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A bad file or row, with `bad-files fail`.
    #[error("{what}: {reason}")]
    #[diagnostic(help("set `bad-files skip` in the dataset block to report bad files and go on"))]
    Bad {
        /// The file (and row).
        what: String,
        /// Why it is bad.
        reason: String,
    },
    /// Every file or row was bad.
    #[error("no piece could be read from {}: {skipped} files or rows were skipped (first: {first})", dir.display())]
    NothingRead {
        /// The source folder.
        dir: PathBuf,
        /// How many were skipped.
        skipped: usize,
        /// The first skip, with its reason.
        first: String,
    },
}

/// Where a source's folders are: relative `midi-dir` / `hf-parquet` paths
/// start from `base` (the experiment file's folder), and `bundled` holds
/// the bundled data. A value the front end resolves (`$RUNNER_BUNDLED_DIR`
/// there), passed down.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Folders {
    /// The folder relative source paths start from.
    pub base: PathBuf,
    /// The bundled data's folder.
    pub bundled: PathBuf,
}

impl Folders {
    /// `base`, with the bundled data of the clone this was built from.
    pub fn new(base: impl Into<PathBuf>) -> Folders {
        // This crate is `crates/data` of the clone.
        let clone = Path::new(env!("CARGO_MANIFEST_DIR"))
            .ancestors()
            .nth(2)
            .unwrap_or(Path::new("."));
        Folders {
            base: base.into(),
            bundled: clone.join("data/bundled"),
        }
    }

    /// `base`, with the bundled data in `bundled` when given (else the
    /// clone's).
    pub fn with_bundled(base: impl Into<PathBuf>, bundled: Option<PathBuf>) -> Folders {
        let folders = Folders::new(base);
        Folders {
            bundled: bundled.unwrap_or(folders.bundled),
            ..folders
        }
    }
}

/// Finds and hashes the files of `source` in `folders`.
pub fn list(source: &Source, folders: &Folders) -> Result<SourceFiles, SourceError> {
    match source {
        Source::Bundled => list_bundled(&folders.bundled),
        Source::MidiDir { path } => list_dir(&folders.base.join(path), FileKind::Midi),
        Source::HfParquet { path } => list_dir(&folders.base.join(path), FileKind::Parquet),
    }
}

/// The bundled files, each checked against the committed checksum list.
fn list_bundled(dir: &Path) -> Result<SourceFiles, SourceError> {
    let problem = |problem: String| SourceError::Bundled {
        dir: dir.to_path_buf(),
        problem,
    };
    if !dir.is_dir() {
        return Err(problem(format!("{} is not a folder", dir.display())));
    }
    let expected: Vec<(&str, &str)> = BUNDLED_SHA256
        .lines()
        .filter_map(|line| line.split_once("  "))
        .map(|(sum, name)| (sum.trim(), name.trim()))
        .collect();
    let mut files = expected
        .par_iter()
        .map(|&(sum, name)| {
            let path = dir.join(name);
            let bytes = std::fs::read(&path).map_err(|e| problem(format!("{name}: {e}")))?;
            let sha256: [u8; 32] = Sha256::digest(&bytes).into();
            if hex(&sha256) != sum {
                return Err(problem(format!(
                    "{name} does not match its checksum in data/bundled.sha256"
                )));
            }
            Ok(SourceFile {
                path,
                name: name.to_owned(),
                sha256,
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    files.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(SourceFiles {
        dir: dir.to_path_buf(),
        kind: FileKind::Midi,
        files,
    })
}

/// Every file of `kind` under `dir`, recursively, hashed.
fn list_dir(dir: &Path, kind: FileKind) -> Result<SourceFiles, SourceError> {
    if !dir.is_dir() {
        return Err(SourceError::MissingDir {
            path: dir.to_path_buf(),
        });
    }
    let extensions: &[&str] = match kind {
        FileKind::Midi => &["mid", "midi"],
        FileKind::Parquet => &["parquet"],
    };
    let mut paths = Vec::new();
    walk(dir, extensions, &mut paths)?;
    if paths.is_empty() {
        return Err(SourceError::NoFiles {
            path: dir.to_path_buf(),
            what: match kind {
                FileKind::Midi => ".mid / .midi",
                FileKind::Parquet => ".parquet",
            },
        });
    }
    let mut files = paths
        .into_par_iter()
        .map(|path| {
            let bytes = std::fs::read(&path).map_err(|source| SourceError::Io {
                path: path.clone(),
                source,
            })?;
            let name = relative_name(dir, &path);
            Ok(SourceFile {
                sha256: Sha256::digest(&bytes).into(),
                path,
                name,
            })
        })
        .collect::<Result<Vec<_>, SourceError>>()?;
    files.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(SourceFiles {
        dir: dir.to_path_buf(),
        kind,
        files,
    })
}

/// Collects the files under `dir` whose extension (any case) is one of `extensions`.
fn walk(dir: &Path, extensions: &[&str], out: &mut Vec<PathBuf>) -> Result<(), SourceError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| SourceError::Io { path, source }
    };
    for entry in std::fs::read_dir(dir).map_err(io(dir))? {
        let entry = entry.map_err(io(dir))?;
        let path = entry.path();
        let file_type = entry.file_type().map_err(io(&path))?;
        if file_type.is_dir() {
            walk(&path, extensions, out)?;
        } else if path
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| extensions.iter().any(|x| e.eq_ignore_ascii_case(x)))
            && path.is_file()
        {
            out.push(path);
        }
    }
    Ok(())
}

/// `path` relative to `dir`, with `/` separators.
fn relative_name(dir: &Path, path: &Path) -> String {
    let relative = path.strip_prefix(dir).unwrap_or(path);
    relative
        .components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/")
}

/// Lower-case hex digits of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Reads every file of `files` in parallel; `sustain` is the MIDI pedal
/// threshold (`None`: off; parquet notes are taken as stored).
pub fn load(files: &SourceFiles, sustain: Option<u8>, bad_files: BadFiles) -> Result<Loaded, SourceError> {
    let midi = MidiConfig {
        sustain_threshold: sustain,
    };
    let per_file: Vec<FileRead> = files
        .files
        .par_iter()
        .map(|file| match files.kind {
            FileKind::Midi => read_midi(file, &midi),
            FileKind::Parquet => read_parquet(file),
        })
        .collect();
    let mut loaded = Loaded {
        pieces: Vec::new(),
        skipped: Vec::new(),
        dropped_notes: 0,
    };
    for read in per_file {
        if let (BadFiles::Fail, Some(first)) = (bad_files, read.skipped.first()) {
            return Err(SourceError::Bad {
                what: first.what.clone(),
                reason: first.reason.clone(),
            });
        }
        loaded.pieces.extend(read.pieces);
        loaded.skipped.extend(read.skipped);
        loaded.dropped_notes += read.dropped_notes;
    }
    if loaded.pieces.is_empty() {
        let first = loaded
            .skipped
            .first()
            .map_or_else(String::new, |s| format!("{}: {}", s.what, s.reason));
        return Err(SourceError::NothingRead {
            dir: files.dir.clone(),
            skipped: loaded.skipped.len(),
            first,
        });
    }
    Ok(loaded)
}

/// What one file gave.
struct FileRead {
    pieces: Vec<SourcePiece>,
    skipped: Vec<Skipped>,
    dropped_notes: usize,
}

fn read_midi(file: &SourceFile, config: &MidiConfig) -> FileRead {
    match read_midi_file(&file.path, config) {
        Ok(read) => FileRead {
            pieces: vec![SourcePiece {
                piece: Piece {
                    name: file.name.clone(),
                    notes: read.piece.notes,
                },
                split: None,
                file_sha256: Some(file.sha256),
                warnings: read.warnings.iter().map(ToString::to_string).collect(),
                metadata: BTreeMap::new(),
            }],
            skipped: Vec::new(),
            dropped_notes: read.stats.out_of_range,
        },
        Err(error) => FileRead {
            pieces: Vec::new(),
            skipped: vec![Skipped {
                what: file.path.display().to_string(),
                reason: error_reason(&error),
            }],
            dropped_notes: 0,
        },
    }
}

/// The reason part of a MIDI file error (its message without the path).
fn error_reason(error: &super::midi::MidiFileError) -> String {
    match error {
        super::midi::MidiFileError::Io { source, .. } => source.to_string(),
        super::midi::MidiFileError::Midi { reason, .. } => reason.to_string(),
    }
}

fn read_parquet(file: &SourceFile) -> FileRead {
    let what = |row: Option<usize>| match row {
        Some(row) => format!("{} #row {row}", file.path.display()),
        None => file.path.display().to_string(),
    };
    match parquet::read_parquet_file(&file.path) {
        Ok(read) => FileRead {
            pieces: read
                .pieces
                .into_iter()
                .map(|p| SourcePiece {
                    piece: p.piece,
                    split: p.split,
                    file_sha256: None,
                    warnings: Vec::new(),
                    metadata: p.metadata,
                })
                .collect(),
            skipped: read
                .bad_rows
                .into_iter()
                .map(|bad| Skipped {
                    what: what(Some(bad.row)),
                    reason: bad.reason,
                })
                .collect(),
            dropped_notes: read.dropped_notes,
        },
        Err(error) => FileRead {
            pieces: Vec::new(),
            skipped: vec![Skipped {
                what: what(None),
                reason: error.problem.to_string(),
            }],
            dropped_notes: 0,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_names_use_slashes() {
        let dir = Path::new("/data/set");
        assert_eq!(relative_name(dir, Path::new("/data/set/2004/a.midi")), "2004/a.midi");
        assert_eq!(relative_name(dir, Path::new("/data/set/b.mid")), "b.mid");
    }

    #[test]
    fn the_checksum_list_is_embedded() {
        assert_eq!(BUNDLED_SHA256.lines().count(), 10);
        assert_eq!(hex(&[0, 15, 255]), "000fff");
    }
}
