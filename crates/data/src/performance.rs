//! Performances to predict velocities for (`runner predict`, and the test
//! pieces a run writes as MIDI): files in, pieces that can be written back
//! with other velocities out.
//!
//! In: MIDI files, or parquet files of pieces in the HuggingFace maestro
//! layout; or a run's dataset configuration and the names of pieces in its
//! source. Out: [`Performance`]s — the piece as the run's reader settings
//! read it, and what it takes to write it again: a MIDI file's own bytes,
//! whose note-on velocities alone change, or (for a parquet row) the notes,
//! written as a new file ([`midi::write_piece`]).

use std::path::{Path, PathBuf};

use super::midi::{self, MidiConfig, SetVelocityError};
use super::notes::Piece;
use super::parquet;
use super::source::{self, FileKind, Folders, SourceError};
use runner_plan::config::DatasetConfig as DatasetSpec;

/// A piece and how to write it back.
#[derive(Debug, Clone, PartialEq)]
pub struct Performance {
    /// The notes (pedal-extended as the reader settings say), sorted.
    pub piece: Piece,
    /// The file it was read from.
    pub file: PathBuf,
    original: Original,
}

/// What a performance is written back from.
#[derive(Debug, Clone, PartialEq)]
enum Original {
    /// A MIDI file's bytes and, for each note, where its velocity byte is.
    Midi {
        bytes: Vec<u8>,
        velocity_offsets: Vec<usize>,
    },
    /// Notes only (a parquet row).
    Notes,
}

/// Why an input could not be read as performances.
#[derive(Debug, thiserror::Error)]
pub enum PerformanceError {
    /// A MIDI file that could not be read or is not a usable performance.
    #[error(transparent)]
    Midi(#[from] midi::MidiFileError),
    /// A parquet file that could not be read.
    #[error(transparent)]
    Parquet(#[from] parquet::ParquetError),
    /// A file that is neither MIDI nor parquet.
    #[error("{}: not a MIDI file (.mid, .midi) or parquet file (.parquet)", .0.display())]
    Kind(PathBuf),
}

impl Performance {
    /// The file's name without its folder (a parquet row's piece name), for output names.
    pub fn stem(&self) -> String {
        let name = match self.original {
            Original::Midi { .. } => self.file.file_stem().map(|s| s.to_string_lossy().into_owned()),
            Original::Notes => Path::new(&self.piece.name)
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned()),
        };
        let name = name.unwrap_or_else(|| self.piece.name.clone());
        name.chars()
            .map(|c| {
                if c.is_alphanumeric() || "-_.".contains(c) {
                    c
                } else {
                    '_'
                }
            })
            .collect()
    }

    /// A Standard MIDI File of the performance with `velocities` (one per
    /// note, in the piece's order): the original file with only its note-on
    /// velocity bytes changed, or, for notes without a file, a new one.
    /// Velocities are clamped to 1..=127 (0 would end the note).
    pub fn with_velocities(&self, velocities: &[u8]) -> Result<Vec<u8>, SetVelocityError> {
        match &self.original {
            Original::Midi {
                bytes,
                velocity_offsets,
            } => midi::set_velocities(bytes, velocity_offsets, velocities),
            Original::Notes => {
                if velocities.len() != self.piece.notes.len() {
                    return Err(SetVelocityError::Count {
                        notes: self.piece.notes.len(),
                        velocities: velocities.len(),
                    });
                }
                let mut piece = self.piece.clone();
                for (note, &velocity) in piece.notes.iter_mut().zip(velocities) {
                    note.velocity = velocity;
                }
                Ok(midi::write_piece(&piece))
            }
        }
    }
}

/// Reads one input: a MIDI file (by content, whatever its extension, when it
/// starts with `MThd`) is one performance, a parquet file one per readable row.
pub fn read(path: &Path, sustain: Option<u8>) -> Result<Vec<Performance>, PerformanceError> {
    let parquet_name = path.extension().is_some_and(|e| e.eq_ignore_ascii_case("parquet"));
    let starts_as_midi = std::fs::File::open(path)
        .and_then(|mut file| {
            let mut magic = [0u8; 4];
            std::io::Read::read_exact(&mut file, &mut magic).map(|()| &magic == b"MThd")
        })
        .unwrap_or(false);
    if parquet_name && !starts_as_midi {
        let read = parquet::read_parquet_file(path)?;
        return Ok(read
            .pieces
            .into_iter()
            .map(|row| Performance {
                piece: row.piece,
                file: path.to_owned(),
                original: Original::Notes,
            })
            .collect());
    }
    let midi_name = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("mid") || e.eq_ignore_ascii_case("midi"));
    if !starts_as_midi && !midi_name && path.is_file() {
        return Err(PerformanceError::Kind(path.to_owned()));
    }
    let config = MidiConfig {
        sustain_threshold: sustain,
    };
    let bytes = std::fs::read(path).map_err(|source| midi::MidiFileError::Io {
        path: path.to_owned(),
        source,
    })?;
    let name = path
        .file_name()
        .map_or_else(|| path.display().to_string(), |n| n.to_string_lossy().into_owned());
    let read = midi::read_midi(&bytes, name, &config).map_err(|reason| midi::MidiFileError::Midi {
        path: path.to_owned(),
        reason,
    })?;
    Ok(vec![Performance {
        piece: read.piece,
        file: path.to_owned(),
        original: Original::Midi {
            bytes,
            velocity_offsets: read.velocity_offsets,
        },
    }])
}

/// The pieces called `names` (as a dataset summary names them) of the
/// source of `dataset`, read as its run reads them, in the order of
/// `names`; names the source no longer holds are left out.
pub fn of_source(dataset: &DatasetSpec, folders: &Folders, names: &[String]) -> Result<Vec<Performance>, SourceError> {
    let files = source::list(&dataset.source, folders)?;
    let mut found: Vec<(usize, Performance)> = Vec::new();
    for file in &files.files {
        let wanted = |name: &str| names.iter().position(|n| n == name);
        match files.kind {
            FileKind::Midi => {
                let Some(at) = wanted(&file.name) else { continue };
                if let Ok(mut read) = read(&file.path, dataset.sustain) {
                    let mut performance = read.remove(0);
                    performance.piece.name = file.name.clone();
                    found.push((at, performance));
                }
            }
            FileKind::Parquet => {
                for performance in read(&file.path, dataset.sustain).into_iter().flatten() {
                    if let Some(at) = wanted(&performance.piece.name) {
                        found.push((at, performance));
                    }
                }
            }
        }
    }
    found.sort_by_key(|(at, _)| *at);
    Ok(found.into_iter().map(|(_, p)| p).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notes::Note;

    #[test]
    fn notes_without_a_file_are_written_as_a_new_one() {
        let piece = Piece::new(
            "2004/a piece.midi",
            vec![
                Note {
                    pitch: 60,
                    start: 0.0,
                    end: 0.5,
                    velocity: 40,
                },
                Note {
                    pitch: 62,
                    start: 0.5,
                    end: 1.0,
                    velocity: 50,
                },
            ],
        );
        let performance = Performance {
            piece,
            file: PathBuf::from("x.parquet"),
            original: Original::Notes,
        };
        assert_eq!(performance.stem(), "a_piece");
        let bytes = performance.with_velocities(&[90, 0]).unwrap();
        let back = midi::read_midi(&bytes, "b", &MidiConfig::default()).unwrap();
        let velocities: Vec<u8> = back.piece.notes.iter().map(|n| n.velocity).collect();
        assert_eq!(velocities, [90, 1]);
        assert!(performance.with_velocities(&[1]).is_err());
    }
}
