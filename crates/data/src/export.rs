//! Export: a dataset configuration in, its pieces as one parquet file out.
//!
//! [`export`] loads the pieces the configuration names, leaves out and
//! assigns splits exactly as building the dataset does, and writes them all, with a
//! `split` column, in the HuggingFace maestro layout
//! ([`parquet`](super::parquet)) to `dataset.parquet` in the output folder.

use std::path::{Path, PathBuf};

use super::dataset::{DataError, assign};
use super::duplicates::Duplicate;
use super::parquet::{ParquetError, write_parquet_file};
use super::source::{self, Folders, Skipped};
use super::split::Split;
use super::table::Tables;
use runner_plan::config::DatasetConfig;

/// The file [`export`] writes in its output folder.
pub const EXPORT_FILE: &str = "dataset.parquet";

/// What [`export`] wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exported {
    /// The parquet file.
    pub path: PathBuf,
    /// Pieces per split: train, validation, test.
    pub pieces: [usize; 3],
    /// Notes written.
    pub notes: usize,
    /// Files, rows and pieces left out while loading.
    pub skipped: Vec<Skipped>,
    /// Pieces left out as repeats of another.
    pub duplicates: Vec<Duplicate>,
}

/// Why the pieces could not be exported.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum ExportError {
    /// The pieces could not be loaded or split.
    #[error(transparent)]
    #[diagnostic(transparent)]
    Data(#[from] DataError),
    /// The output folder could not be made.
    #[error("cannot create the output folder {}: {source}", path.display())]
    OutDir {
        /// The folder.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The parquet file could not be written.
    #[error(transparent)]
    Parquet(#[from] ParquetError),
}

/// Writes the pieces of `dataset` (its source in `folders`) to
/// `out_dir/dataset.parquet`.
pub fn export(dataset: &DatasetConfig, folders: &Folders, out_dir: &Path) -> Result<Exported, ExportError> {
    let files = source::list(&dataset.source, folders).map_err(DataError::from)?;
    let loaded = source::load(&files, dataset.sustain, dataset.bad_files).map_err(DataError::from)?;
    let tables = Tables::read(dataset, &folders.base).map_err(DataError::from)?;
    let assigned = assign(loaded.pieces, dataset, &tables)?;
    std::fs::create_dir_all(out_dir).map_err(|source| ExportError::OutDir {
        path: out_dir.to_path_buf(),
        source,
    })?;
    let rows: Vec<_> = assigned.pieces.iter().map(|p| (&p.piece, p.split)).collect();
    let path = out_dir.join(EXPORT_FILE);
    write_parquet_file(&path, &rows)?;
    let count = |split: Split| rows.iter().filter(|(_, s)| *s == split).count();
    Ok(Exported {
        pieces: Split::ALL.map(count),
        notes: rows.iter().map(|(p, _)| p.notes.len()).sum(),
        path,
        skipped: loaded.skipped.into_iter().chain(assigned.left_out).collect(),
        duplicates: assigned.duplicates,
    })
}
