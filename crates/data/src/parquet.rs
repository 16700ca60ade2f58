//! Parquet in the HuggingFace maestro layout: files in, pieces out, and back.
//!
//! The layout (FACTS.md section 1): one row per piece; a `notes` column
//! holding the piece's notes as a struct of equal-length lists `pitch`,
//! `velocity` (integers), `start` and `end` (seconds); and metadata columns.
//! Read: [`read_parquet_file`] accepts `notes` as that struct of lists or as
//! a list of `{pitch, velocity, start, end}` structs, takes a piece's name
//! from `midi_filename` and its split from `split` (either as a top-level
//! column or, as in the `maestro-sustain-v2` layout, as a field of a JSON
//! `source` column; both optional), and returns the pieces with the rows it
//! had to skip. Write: [`write_parquet_file`] writes pieces with
//! `notes` (struct of lists: int64 pitch and velocity, float64 start and
//! end), `midi_filename` and `split`, so what it writes reads back into the
//! same notes, bit for bit.
//!
//! Each row is checked like a MIDI file: notes outside the piano range are
//! dropped and counted; a row with lists of unequal length, a missing value,
//! a velocity outside 0..=127, a non-finite time, an end before its start or
//! no piano notes is a bad row, reported with its index. A file the parquet
//! decoder cannot read (even one on which it panics) is an error naming it.

use std::collections::BTreeMap;
use std::fs::File;
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};

use polars::prelude::*;

use super::midi::PIANO_PITCHES;
use super::notes::{Note, Piece};
use super::split::Split;

/// The note fields, in the order they are written.
const NOTE_FIELDS: [&str; 4] = ["pitch", "velocity", "start", "end"];

/// A parquet file that could not be read or written.
#[derive(Debug, thiserror::Error)]
#[error("{}: {problem}", path.display())]
pub struct ParquetError {
    /// The file.
    pub path: PathBuf,
    /// What went wrong.
    pub problem: ParquetProblem,
}

/// What is wrong with a parquet file.
#[derive(Debug, thiserror::Error)]
pub enum ParquetProblem {
    /// The file could not be opened or created.
    #[error("{0}")]
    Io(std::io::Error),
    /// The bytes are not a parquet file polars can read.
    #[error("not a readable parquet file: {0}")]
    Format(String),
    /// A required column is absent.
    #[error("no `{column}` column (the file has: {found})")]
    MissingColumn {
        /// The column looked for.
        column: String,
        /// The columns present.
        found: String,
    },
    /// A column of the wrong type.
    #[error("column `{column}` is {found}, expected {expected}")]
    ColumnType {
        /// The column (`notes.pitch` for a note field).
        column: String,
        /// Its type.
        found: String,
        /// The types accepted.
        expected: &'static str,
    },
    /// The pieces could not be written.
    #[error("cannot write: {0}")]
    Write(String),
}

/// A piece read from a row, with the row's split if it has one.
#[derive(Debug, Clone, PartialEq)]
pub struct ParquetPiece {
    /// The notes, named by `midi_filename` (or `FILE#ROW` without one).
    pub piece: Piece,
    /// The row's split value, if any.
    pub split: Option<Split>,
    /// The row's text metadata (its string columns and the string fields
    /// of a JSON `source` column), for `group column`.
    pub metadata: BTreeMap<String, String>,
}

/// A row that was skipped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadRow {
    /// Its index in the file (0-based).
    pub row: usize,
    /// Why it was skipped.
    pub reason: String,
}

/// What a parquet file held.
#[derive(Debug, Clone, PartialEq)]
pub struct ParquetRead {
    /// The good rows, in file order.
    pub pieces: Vec<ParquetPiece>,
    /// The bad rows.
    pub bad_rows: Vec<BadRow>,
    /// Notes dropped because their pitch lies outside the piano range.
    pub dropped_notes: usize,
}

/// Reads the pieces of one parquet file.
pub fn read_parquet_file(path: &Path) -> Result<ParquetRead, ParquetError> {
    let fail = |problem| ParquetError {
        path: path.to_path_buf(),
        problem,
    };
    let file = File::open(path).map_err(|e| fail(ParquetProblem::Io(e)))?;
    let stem = path
        .file_stem()
        .map_or_else(String::new, |s| s.to_string_lossy().into_owned());
    // The decoder panics on some corrupt metadata: that is a bad file too.
    let decoded = std::panic::catch_unwind(AssertUnwindSafe(|| {
        let frame = ParquetReader::new(file)
            .finish()
            .map_err(|e| ParquetProblem::Format(e.to_string()))?;
        read_frame(&frame, &stem)
    }));
    match decoded {
        Ok(read) => read.map_err(fail),
        Err(panic) => {
            let message = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            Err(fail(ParquetProblem::Format(format!("the decoder failed: {message}"))))
        }
    }
}

/// The pieces of a data frame in the maestro layout; unnamed rows are called `{stem}#{row}`.
pub fn read_frame(frame: &DataFrame, stem: &str) -> Result<ParquetRead, ParquetProblem> {
    let notes = column(frame, "notes")?;
    let rows = note_rows(notes)?;
    let names = metadata(frame, "midi_filename")?;
    let splits = metadata(frame, "split")?;
    let mut texts = row_texts(frame);
    let mut read = ParquetRead {
        pieces: Vec::new(),
        bad_rows: Vec::new(),
        dropped_notes: 0,
    };
    for (row, raw) in rows.into_iter().enumerate() {
        let split = match splits.get(row).and_then(Option::as_deref).map(parse_split).transpose() {
            Ok(split) => split,
            Err(reason) => {
                read.bad_rows.push(BadRow { row, reason });
                continue;
            }
        };
        match raw.and_then(check_notes) {
            Ok((notes, dropped)) => {
                let name = names
                    .get(row)
                    .cloned()
                    .flatten()
                    .unwrap_or_else(|| format!("{stem}#{row}"));
                read.dropped_notes += dropped;
                read.pieces.push(ParquetPiece {
                    piece: Piece::new(name, notes),
                    split,
                    metadata: texts.get_mut(row).map(std::mem::take).unwrap_or_default(),
                });
            }
            Err(reason) => read.bad_rows.push(BadRow { row, reason }),
        }
    }
    Ok(read)
}

/// A split value as written in the maestro metadata.
fn parse_split(text: &str) -> Result<Split, String> {
    Split::parse(text).ok_or_else(|| format!("split value {text:?} is not train, validation or test"))
}

fn column<'a>(frame: &'a DataFrame, name: &str) -> Result<&'a Series, ParquetProblem> {
    frame
        .column(name)
        .map(Column::as_materialized_series)
        .map_err(|_| ParquetProblem::MissingColumn {
            column: name.to_owned(),
            found: frame
                .get_column_names()
                .iter()
                .map(|n| n.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        })
}

/// The notes of one row, as stored, before any check.
#[derive(Debug, Default)]
struct RawNotes {
    pitch: Vec<Option<i64>>,
    velocity: Vec<Option<i64>>,
    start: Vec<Option<f64>>,
    end: Vec<Option<f64>>,
}

/// Each row's raw notes, or why the row has none.
fn note_rows(notes: &Series) -> Result<Vec<Result<RawNotes, String>>, ParquetProblem> {
    match notes.dtype() {
        DataType::Struct(_) => struct_of_lists(notes),
        DataType::List(inner) if matches!(**inner, DataType::Struct(_)) => list_of_structs(notes),
        other => Err(ParquetProblem::ColumnType {
            column: "notes".into(),
            found: other.to_string(),
            expected: "a struct of lists or a list of structs",
        }),
    }
}

/// The field `name` of a struct series, checked to be numeric (optionally inside a list).
fn field(series: &Series, name: &str, in_list: bool) -> Result<Series, ParquetProblem> {
    let fields = series.struct_().map_err(|e| ParquetProblem::Format(e.to_string()))?;
    let field = fields.field_by_name(name).map_err(|_| ParquetProblem::MissingColumn {
        column: format!("notes.{name}"),
        found: fields
            .fields_as_series()
            .iter()
            .map(|f| format!("notes.{}", f.name()))
            .collect::<Vec<_>>()
            .join(", "),
    })?;
    let value_type = match field.dtype() {
        DataType::List(inner) if in_list => Some(&**inner),
        other if !in_list => Some(other),
        _ => None,
    };
    let integer = matches!(name, "pitch" | "velocity");
    let ok = value_type.is_some_and(|t| {
        if integer {
            t.is_integer()
        } else {
            t.is_primitive_numeric()
        }
    });
    if !ok {
        return Err(ParquetProblem::ColumnType {
            column: format!("notes.{name}"),
            found: field.dtype().to_string(),
            expected: match (in_list, integer) {
                (true, true) => "a list of integers",
                (true, false) => "a list of numbers",
                (false, true) => "integers",
                (false, false) => "numbers",
            },
        });
    }
    let target = if integer { DataType::Int64 } else { DataType::Float64 };
    let target = if in_list {
        DataType::List(Box::new(target))
    } else {
        target
    };
    field.cast(&target).map_err(|e| ParquetProblem::Format(e.to_string()))
}

fn ints(series: &Series) -> Result<Vec<Option<i64>>, String> {
    Ok(series.i64().map_err(|e| e.to_string())?.iter().collect())
}

fn floats(series: &Series) -> Result<Vec<Option<f64>>, String> {
    Ok(series.f64().map_err(|e| e.to_string())?.iter().collect())
}

/// `notes` as a struct of four lists (the HuggingFace layout).
fn struct_of_lists(notes: &Series) -> Result<Vec<Result<RawNotes, String>>, ParquetProblem> {
    let [pitch, velocity, start, end] = NOTE_FIELDS.map(|name| field(notes, name, true));
    let (pitch, velocity, start, end) = (pitch?, velocity?, start?, end?);
    let list = |s: &Series| {
        s.list()
            .map(|l| (0..l.len()).map(|row| l.get_as_series(row)).collect::<Vec<_>>())
    };
    let format = |e: PolarsError| ParquetProblem::Format(e.to_string());
    let (pitch, velocity) = (list(&pitch).map_err(format)?, list(&velocity).map_err(format)?);
    let (start, end) = (list(&start).map_err(format)?, list(&end).map_err(format)?);
    let rows = (0..notes.len())
        .map(|row| {
            let get = |lists: &[Option<Series>], field: &str| {
                lists
                    .get(row)
                    .cloned()
                    .flatten()
                    .ok_or_else(|| format!("`notes.{field}` is missing"))
            };
            Ok(RawNotes {
                pitch: ints(&get(&pitch, "pitch")?)?,
                velocity: ints(&get(&velocity, "velocity")?)?,
                start: floats(&get(&start, "start")?)?,
                end: floats(&get(&end, "end")?)?,
            })
        })
        .collect();
    Ok(rows)
}

/// `notes` as a list of `{pitch, velocity, start, end}` structs.
fn list_of_structs(notes: &Series) -> Result<Vec<Result<RawNotes, String>>, ParquetProblem> {
    let lists = notes.list().map_err(|e| ParquetProblem::Format(e.to_string()))?;
    let mut rows = Vec::with_capacity(lists.len());
    for row in (0..lists.len()).map(|row| lists.get_as_series(row)) {
        let Some(row) = row else {
            rows.push(Err("`notes` is missing".to_owned()));
            continue;
        };
        let [pitch, velocity, start, end] = NOTE_FIELDS.map(|name| field(&row, name, false));
        let (pitch, velocity, start, end) = (pitch?, velocity?, start?, end?);
        rows.push((|| {
            Ok(RawNotes {
                pitch: ints(&pitch)?,
                velocity: ints(&velocity)?,
                start: floats(&start)?,
                end: floats(&end)?,
            })
        })());
    }
    Ok(rows)
}

/// A string metadata column by row: the top-level column `name`, else the
/// field `name` of a JSON `source` column, else nothing.
fn metadata(frame: &DataFrame, name: &str) -> Result<Vec<Option<String>>, ParquetProblem> {
    let strings = |series: &Series, column: &str| {
        series
            .str()
            .map(|s| s.iter().map(|v| v.map(str::to_owned)).collect::<Vec<_>>())
            .map_err(|_| ParquetProblem::ColumnType {
                column: column.to_owned(),
                found: series.dtype().to_string(),
                expected: "strings",
            })
    };
    if let Ok(series) = column(frame, name) {
        return strings(series, name);
    }
    let Ok(source) = column(frame, "source") else {
        return Ok(Vec::new());
    };
    let Ok(texts) = strings(source, "source") else {
        return Ok(Vec::new());
    };
    Ok(texts
        .into_iter()
        .map(|text| {
            let json: serde_json::Value = serde_json::from_str(text.as_deref()?).ok()?;
            json.get(name)?.as_str().map(str::to_owned)
        })
        .collect())
}

/// Each row's text metadata: the frame's string columns, then the string
/// fields of a JSON `source` column (a column of the same name wins).
fn row_texts(frame: &DataFrame) -> Vec<BTreeMap<String, String>> {
    let mut rows = vec![BTreeMap::new(); frame.height()];
    for column in frame.columns() {
        let name = column.name().as_str();
        let Ok(texts) = column.str() else { continue };
        for (row, text) in texts.iter().enumerate() {
            let Some(text) = text else { continue };
            if name == "source"
                && let Ok(serde_json::Value::Object(fields)) = serde_json::from_str::<serde_json::Value>(text)
            {
                for (field, value) in fields {
                    if let serde_json::Value::String(value) = value {
                        rows[row].entry(field).or_insert(value);
                    }
                }
            }
            rows[row].insert(name.to_owned(), text.to_owned());
        }
    }
    rows
}

/// Checks one row's notes (see the module docs); returns the piano notes and
/// how many were dropped for their pitch.
fn check_notes(raw: RawNotes) -> Result<(Vec<Note>, usize), String> {
    let n = raw.pitch.len();
    if raw.velocity.len() != n || raw.start.len() != n || raw.end.len() != n {
        return Err(format!(
            "note lists of unequal length (pitch {n}, velocity {}, start {}, end {})",
            raw.velocity.len(),
            raw.start.len(),
            raw.end.len()
        ));
    }
    let mut notes = Vec::with_capacity(n);
    let mut dropped = 0;
    for i in 0..n {
        let missing = |field: &str| format!("note {i}: `{field}` is missing");
        let pitch = raw.pitch[i].ok_or_else(|| missing("pitch"))?;
        let velocity = raw.velocity[i].ok_or_else(|| missing("velocity"))?;
        let start = raw.start[i].ok_or_else(|| missing("start"))?;
        let end = raw.end[i].ok_or_else(|| missing("end"))?;
        let velocity = u8::try_from(velocity)
            .ok()
            .filter(|v| *v <= 127)
            .ok_or_else(|| format!("note {i}: velocity {velocity} is outside 0..=127"))?;
        if !start.is_finite() || !end.is_finite() {
            return Err(format!("note {i}: start {start} or end {end} is not finite"));
        }
        if end < start {
            return Err(format!("note {i}: end {end} is before start {start}"));
        }
        match u8::try_from(pitch).ok().filter(|p| PIANO_PITCHES.contains(p)) {
            Some(pitch) => notes.push(Note {
                pitch,
                start,
                end,
                velocity,
            }),
            None => dropped += 1,
        }
    }
    if notes.is_empty() {
        return Err(format!(
            "no piano notes ({dropped} notes outside 21..=108 were dropped)"
        ));
    }
    Ok((notes, dropped))
}

/// Writes `pieces` with their splits to `path` in the maestro layout.
pub fn write_parquet_file(path: &Path, pieces: &[(&Piece, Split)]) -> Result<(), ParquetError> {
    let fail = |problem| ParquetError {
        path: path.to_path_buf(),
        problem,
    };
    let mut frame = frame(pieces).map_err(|e| fail(ParquetProblem::Write(e.to_string())))?;
    let file = File::create(path).map_err(|e| fail(ParquetProblem::Io(e)))?;
    ParquetWriter::new(file)
        .finish(&mut frame)
        .map_err(|e| fail(ParquetProblem::Write(e.to_string())))?;
    Ok(())
}

/// The data frame of `pieces` in the maestro layout.
pub fn frame(pieces: &[(&Piece, Split)]) -> PolarsResult<DataFrame> {
    let rows = pieces.len();
    let total: usize = pieces.iter().map(|(p, _)| p.notes.len()).sum();
    let ints = |name: &str, value: fn(&Note) -> i64| {
        let mut builder = ListPrimitiveChunkedBuilder::<Int64Type>::new(name.into(), rows, total, DataType::Int64);
        for (piece, _) in pieces {
            builder.append_slice(&piece.notes.iter().map(value).collect::<Vec<_>>());
        }
        builder.finish().into_series()
    };
    let floats = |name: &str, value: fn(&Note) -> f64| {
        let mut builder = ListPrimitiveChunkedBuilder::<Float64Type>::new(name.into(), rows, total, DataType::Float64);
        for (piece, _) in pieces {
            builder.append_slice(&piece.notes.iter().map(value).collect::<Vec<_>>());
        }
        builder.finish().into_series()
    };
    let fields = [
        ints("pitch", |n| i64::from(n.pitch)),
        ints("velocity", |n| i64::from(n.velocity)),
        floats("start", |n| n.start),
        floats("end", |n| n.end),
    ];
    let notes = StructChunked::from_series("notes".into(), rows, fields.iter())?.into_series();
    let names: Vec<&str> = pieces.iter().map(|(p, _)| p.name.as_str()).collect();
    let splits: Vec<String> = pieces.iter().map(|(_, s)| s.to_string()).collect();
    DataFrame::new(
        rows,
        vec![
            notes.into(),
            Series::new("midi_filename".into(), names).into(),
            Series::new("split".into(), splits).into(),
        ],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(pitch: &[i64], velocity: &[i64], start: &[f64], end: &[f64]) -> RawNotes {
        RawNotes {
            pitch: pitch.iter().map(|&v| Some(v)).collect(),
            velocity: velocity.iter().map(|&v| Some(v)).collect(),
            start: start.iter().map(|&v| Some(v)).collect(),
            end: end.iter().map(|&v| Some(v)).collect(),
        }
    }

    #[test]
    fn out_of_range_pitches_are_dropped_and_counted() {
        let (notes, dropped) =
            check_notes(raw(&[20, 60, 109], &[1, 2, 3], &[0.0, 1.0, 2.0], &[1.0, 2.0, 3.0])).unwrap();
        assert_eq!(dropped, 2);
        assert_eq!(notes.len(), 1);
        assert_eq!((notes[0].pitch, notes[0].velocity), (60, 2));
    }

    #[test]
    fn bad_rows_say_why() {
        let cases = [
            (raw(&[60], &[128], &[0.0], &[1.0]), "velocity 128"),
            (raw(&[60], &[-1], &[0.0], &[1.0]), "velocity -1"),
            (raw(&[60], &[64], &[1.0], &[0.5]), "before start"),
            (raw(&[60], &[64], &[f64::NAN], &[0.5]), "not finite"),
            (raw(&[60, 61], &[64], &[0.0], &[0.5]), "unequal length"),
            (raw(&[5], &[64], &[0.0], &[0.5]), "no piano notes"),
            (raw(&[], &[], &[], &[]), "no piano notes"),
        ];
        for (raw, expected) in cases {
            let reason = check_notes(raw).unwrap_err();
            assert!(reason.contains(expected), "{reason}");
        }
        let mut missing = raw(&[60], &[64], &[0.0], &[0.5]);
        missing.end[0] = None;
        assert!(check_notes(missing).unwrap_err().contains("`end` is missing"));
    }

    #[test]
    fn split_values_are_read_loosely() {
        assert_eq!(parse_split("TRAIN"), Ok(Split::Train));
        assert_eq!(parse_split("valid"), Ok(Split::Validation));
        assert_eq!(parse_split("test"), Ok(Split::Test));
        assert!(parse_split("holdout").is_err());
    }

    #[test]
    fn a_written_frame_reads_back_with_names_and_splits() {
        let piece = Piece::new(
            "a.mid",
            vec![Note {
                pitch: 60,
                start: 0.1,
                end: 0.30000000000000004,
                velocity: 0,
            }],
        );
        let frame = frame(&[(&piece, Split::Validation)]).unwrap();
        let read = read_frame(&frame, "f").unwrap();
        assert_eq!(
            read.pieces,
            vec![ParquetPiece {
                piece,
                split: Some(Split::Validation),
                metadata: [("midi_filename", "a.mid"), ("split", "validation")]
                    .map(|(k, v)| (k.to_owned(), v.to_owned()))
                    .into()
            }]
        );
    }
}
