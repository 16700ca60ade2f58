//! The parquet reader and writer (HuggingFace maestro layout): round trip of
//! the bundled data, the split column, and clear errors for bad files.

mod data_support;

use std::path::Path;

use data_support::{TempDir, pathetique_runs};
use polars::prelude::*;
use runner_data::dataset::{self, DataError, assign};
use runner_data::export::{EXPORT_FILE, export};
use runner_data::notes::{Note, Piece};
use runner_data::parquet::{read_parquet_file, write_parquet_file};
use runner_data::source::{self, Folders, SourceError};
use runner_data::split::Split;
use runner_plan::config::{BadFiles, RunConfig, Source, Split as SplitRule};

fn note(pitch: u8, start: f64, velocity: u8) -> Note {
    Note {
        pitch,
        start,
        end: start + 0.25,
        velocity,
    }
}

fn piece(name: &str, notes: usize) -> Piece {
    Piece::new(
        name,
        (0..notes)
            .map(|i| note(21 + (i % 88) as u8, i as f64 * 0.1, (i % 128) as u8))
            .collect(),
    )
}

/// A run reading the parquet folder `dir`, split by `split`.
fn parquet_run(dir: &Path, split: SplitRule) -> RunConfig {
    let mut run = pathetique_runs().remove(0);
    run.dataset.source = Source::HfParquet {
        path: dir.display().to_string(),
    };
    run.dataset.split = split;
    run.dataset.window.length = 4;
    run.dataset.window.step = 2;
    run
}

fn write_frame(path: &Path, mut frame: DataFrame) {
    ParquetWriter::new(std::fs::File::create(path).unwrap())
        .finish(&mut frame)
        .unwrap();
}

#[test]
fn bundled_midi_exports_to_parquet_and_reads_back_identically() {
    let run = pathetique_runs().remove(0);
    let out = TempDir::new("export");
    let exported = export(&run.dataset, &Folders::new("."), out.path()).unwrap();
    assert_eq!(exported.path, out.path().join(EXPORT_FILE));
    assert_eq!(exported.pieces, [8, 1, 1]);
    assert_eq!(exported.notes, 101_901);

    let files = source::list(&Source::Bundled, &Folders::new(".")).unwrap();
    let midi = source::load(&files, run.dataset.sustain, BadFiles::Fail).unwrap();
    let splits: Vec<Split> = assign(midi.pieces.clone(), &run.dataset, &Default::default())
        .unwrap()
        .pieces
        .iter()
        .map(|p| p.split)
        .collect();
    let read = read_parquet_file(&exported.path).unwrap();
    assert!(read.bad_rows.is_empty());
    assert_eq!(read.dropped_notes, 0);
    assert_eq!(read.pieces.len(), 10);
    for ((from_midi, split), from_parquet) in midi.pieces.iter().zip(&splits).zip(&read.pieces) {
        assert_eq!(from_parquet.piece.name, from_midi.piece.name);
        assert_eq!(from_parquet.split, Some(*split));
        // Exactly equal: every f64 bit for bit, every pitch and velocity.
        assert_eq!(
            from_parquet.piece.notes, from_midi.piece.notes,
            "{}",
            from_midi.piece.name
        );
        for (a, b) in from_parquet.piece.notes.iter().zip(&from_midi.piece.notes) {
            assert_eq!(
                (a.start.to_bits(), a.end.to_bits()),
                (b.start.to_bits(), b.end.to_bits())
            );
        }
    }
}

#[test]
fn the_exported_parquet_builds_the_same_windows_as_the_midi_files() {
    let runs = pathetique_runs();
    let out = TempDir::new("export-build");
    let cache = TempDir::new("export-build-cache");
    export(&runs[0].dataset, &Folders::new("."), out.path()).unwrap();
    for run in runs {
        let from_midi = dataset::build(&run, &Folders::new("."), cache.path()).unwrap();
        let mut from_parquet_run = run.clone();
        from_parquet_run.dataset.source = Source::HfParquet {
            path: out.path().display().to_string(),
        };
        from_parquet_run.dataset.split = SplitRule::Column;
        let from_parquet = dataset::build(&from_parquet_run, &Folders::new("."), cache.path()).unwrap();
        for split in Split::ALL {
            assert_eq!(from_parquet.windows(split), from_midi.windows(split), "{split}");
        }
        assert_eq!(from_parquet.summary.splits, from_midi.summary.splits);
    }
}

#[test]
fn the_split_column_decides_the_splits() {
    let dir = TempDir::new("column");
    let a = piece("a.midi", 10);
    let b = piece("b.midi", 9);
    let c = piece("c.midi", 8);
    let d = piece("d.midi", 7);
    write_parquet_file(
        &dir.path().join("one.parquet"),
        &[(&a, Split::Test), (&b, Split::Train)],
    )
    .unwrap();
    write_parquet_file(
        &dir.path().join("two.parquet"),
        &[(&c, Split::Validation), (&d, Split::Train)],
    )
    .unwrap();
    let cache = TempDir::new("column-cache");
    let built = dataset::build(
        &parquet_run(dir.path(), SplitRule::Column),
        &Folders::new("/"),
        cache.path(),
    )
    .unwrap();
    let names = |split| -> Vec<String> {
        built
            .summary
            .split(split)
            .unwrap()
            .pieces
            .iter()
            .map(|p| p.name.clone())
            .collect()
    };
    assert_eq!(names(Split::Train), vec!["b.midi", "d.midi"]);
    assert_eq!(names(Split::Validation), vec!["c.midi"]);
    assert_eq!(names(Split::Test), vec!["a.midi"]);
    // Windows of 4 every 2: 1 + (9 - 4) / 2 = 3 and 1 + (7 - 4) / 2 = 2.
    assert_eq!(built.train.len(), 5);
    assert_eq!(built.validation.len(), 3);
    assert_eq!(built.test.len(), 4);
}

#[test]
fn split_column_without_split_values_is_a_clear_error() {
    let dir = TempDir::new("no-split");
    let p = piece("a.midi", 6);
    // The maestro layout without its split column.
    let mut frame = runner_data::parquet::frame(&[(&p, Split::Train)]).unwrap();
    frame = frame.drop("split").unwrap();
    write_frame(&dir.path().join("a.parquet"), frame);
    let cache = TempDir::new("no-split-cache");
    let err = dataset::build(
        &parquet_run(dir.path(), SplitRule::Column),
        &Folders::new("/"),
        cache.path(),
    )
    .unwrap_err();
    assert!(matches!(err, DataError::NoSplitColumn { .. }), "{err}");
    assert!(err.to_string().contains("1 of 1 pieces have none"), "{err}");
    // Fractions still work without the column.
    let fractions = SplitRule::Fractions {
        train: 1.0,
        validation: 0.0,
        test: 0.0,
        seed: 0,
    };
    let built = dataset::build(&parquet_run(dir.path(), fractions), &Folders::new("/"), cache.path()).unwrap();
    assert_eq!(built.train.len(), 2);
}

#[test]
fn a_corrupt_parquet_file_is_reported_with_its_path() {
    let dir = TempDir::new("corrupt");
    let bad = dir.path().join("bad.parquet");
    std::fs::write(&bad, b"PAR1 this is not really parquet PAR1").unwrap();
    let err = read_parquet_file(&bad).unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("bad.parquet") && text.contains("not a readable parquet file"),
        "{text}"
    );

    // As a source: `fail` stops, `skip` reports it and reads the rest.
    let files = source::list(
        &Source::HfParquet {
            path: dir.path().display().to_string(),
        },
        &Folders::new("/"),
    )
    .unwrap();
    let err = source::load(&files, None, BadFiles::Fail).unwrap_err();
    assert!(matches!(err, SourceError::Bad { .. }), "{err}");
    assert!(err.to_string().contains("bad.parquet"), "{err}");
    let err = source::load(&files, None, BadFiles::Skip).unwrap_err();
    assert!(matches!(err, SourceError::NothingRead { skipped: 1, .. }), "{err}");

    let good = piece("good.midi", 5);
    write_parquet_file(&dir.path().join("good.parquet"), &[(&good, Split::Train)]).unwrap();
    let files = source::list(
        &Source::HfParquet {
            path: dir.path().display().to_string(),
        },
        &Folders::new("/"),
    )
    .unwrap();
    let loaded = source::load(&files, None, BadFiles::Skip).unwrap();
    assert_eq!(loaded.pieces.len(), 1);
    assert_eq!(loaded.skipped.len(), 1);
    assert!(loaded.skipped[0].what.ends_with("bad.parquet"));
    assert!(loaded.skipped[0].reason.contains("not a readable parquet file"));
}

#[test]
fn a_missing_folder_or_an_empty_one_is_a_clear_error() {
    let err = source::list(&Source::HfParquet { path: "nope".into() }, &Folders::new("/tmp")).unwrap_err();
    assert_eq!(
        err.to_string(),
        "dataset folder /tmp/nope does not exist or is not a folder"
    );
    let empty = TempDir::new("empty");
    let err = source::list(
        &Source::HfParquet {
            path: empty.path().display().to_string(),
        },
        &Folders::new("/"),
    )
    .unwrap_err();
    assert!(err.to_string().starts_with("no .parquet files under"), "{err}");
}

#[test]
fn missing_columns_and_wrong_types_name_the_column() {
    let dir = TempDir::new("columns");
    let path = dir.path().join("x.parquet");

    let names = Column::new("midi_filename".into(), ["a"]);
    write_frame(&path, DataFrame::new(1, vec![names.clone()]).unwrap());
    let text = read_parquet_file(&path).unwrap_err().to_string();
    assert!(
        text.contains("no `notes` column (the file has: midi_filename)"),
        "{text}"
    );

    let list = |name: &str, values: &[f64]| Series::new(name.into(), [Series::new("".into(), values)]);
    let int_list = |name: &str, values: &[i64]| Series::new(name.into(), [Series::new("".into(), values)]);
    let fields = [int_list("pitch", &[60]), list("start", &[0.0]), list("end", &[1.0])];
    let notes = StructChunked::from_series("notes".into(), 1, fields.iter()).unwrap();
    write_frame(&path, DataFrame::new(1, vec![notes.into_series().into()]).unwrap());
    let text = read_parquet_file(&path).unwrap_err().to_string();
    assert!(text.contains("no `notes.velocity` column"), "{text}");

    let fields = [
        list("pitch", &[60.0]),
        list("velocity", &[60.0]),
        list("start", &[0.0]),
        list("end", &[1.0]),
    ];
    let notes = StructChunked::from_series("notes".into(), 1, fields.iter()).unwrap();
    write_frame(&path, DataFrame::new(1, vec![notes.into_series().into()]).unwrap());
    let text = read_parquet_file(&path).unwrap_err().to_string();
    assert!(
        text.contains("column `notes.pitch` is list[f64], expected a list of integers"),
        "{text}"
    );

    let notes = Column::new("notes".into(), [1i64]);
    write_frame(&path, DataFrame::new(1, vec![notes]).unwrap());
    let text = read_parquet_file(&path).unwrap_err().to_string();
    assert!(text.contains("column `notes` is i64"), "{text}");
}

#[test]
fn bad_rows_are_reported_with_their_index_and_out_of_range_pitches_dropped() {
    let dir = TempDir::new("rows");
    let good = Piece::new("good", vec![note(60, 0.0, 10), note(15, 0.5, 20), note(62, 1.0, 30)]);
    let mut bad = piece("bad", 3);
    bad.notes[1].end = bad.notes[1].start - 1.0;
    write_parquet_file(
        &dir.path().join("rows.parquet"),
        &[(&good, Split::Train), (&bad, Split::Test)],
    )
    .unwrap();
    let read = read_parquet_file(&dir.path().join("rows.parquet")).unwrap();
    assert_eq!(read.pieces.len(), 1);
    assert_eq!(read.pieces[0].piece.notes.len(), 2);
    assert_eq!(read.dropped_notes, 1);
    assert_eq!(read.bad_rows.len(), 1);
    assert_eq!(read.bad_rows[0].row, 1);
    assert!(
        read.bad_rows[0].reason.contains("note 1: end"),
        "{}",
        read.bad_rows[0].reason
    );

    let files = source::list(
        &Source::HfParquet {
            path: dir.path().display().to_string(),
        },
        &Folders::new("/"),
    )
    .unwrap();
    let loaded = source::load(&files, None, BadFiles::Skip).unwrap();
    assert!(
        loaded.skipped[0].what.ends_with("rows.parquet #row 1"),
        "{:?}",
        loaded.skipped
    );
    assert_eq!(loaded.dropped_notes, 1);
    let err = source::load(&files, None, BadFiles::Fail).unwrap_err();
    assert!(err.to_string().contains("rows.parquet #row 1: note 1: end"), "{err}");
}

#[test]
fn notes_as_a_list_of_structs_and_metadata_in_a_json_source_column_are_read() {
    let dir = TempDir::new("list-of-structs");
    let path = dir.path().join("v2.parquet");
    let row = |pitch: &[i64], velocity: &[i64], start: &[f64], end: &[f64]| {
        let fields = [
            Series::new("pitch".into(), pitch),
            Series::new("velocity".into(), velocity),
            Series::new("start".into(), start),
            Series::new("end".into(), end),
        ];
        StructChunked::from_series("".into(), pitch.len(), fields.iter())
            .unwrap()
            .into_series()
    };
    let notes = Series::new(
        "notes".into(),
        [
            row(&[64, 60], &[70, 80], &[0.5, 0.0], &[1.0, 0.25]),
            row(&[30], &[1], &[0.0], &[2.0]),
        ],
    );
    let source = Column::new(
        "source".into(),
        [
            r#"{"composer": "Beethoven", "midi_filename": "2004/x.midi", "split": "validation"}"#,
            r#"{"composer": "Chopin"}"#,
        ],
    );
    write_frame(&path, DataFrame::new(2, vec![notes.into(), source]).unwrap());
    let read = read_parquet_file(&path).unwrap();
    assert!(read.bad_rows.is_empty(), "{:?}", read.bad_rows);
    let first = &read.pieces[0];
    assert_eq!(first.piece.name, "2004/x.midi");
    assert_eq!(first.split, Some(Split::Validation));
    // Sorted by start on reading.
    assert_eq!(
        first.piece.notes,
        vec![
            Note {
                pitch: 60,
                start: 0.0,
                end: 0.25,
                velocity: 80
            },
            Note {
                pitch: 64,
                start: 0.5,
                end: 1.0,
                velocity: 70
            },
        ]
    );
    assert_eq!(read.pieces[1].piece.name, "v2#1");
    assert_eq!(read.pieces[1].split, None);
    // The JSON's text fields are the rows' metadata (for `group column`).
    let composer = |i: usize| read.pieces[i].metadata.get("composer").map(String::as_str);
    assert_eq!((composer(0), composer(1)), (Some("Beethoven"), Some("Chopin")));
}

#[test]
fn mutated_parquet_files_never_panic() {
    let dir = TempDir::new("mutated");
    let pieces = [piece("a.midi", 50), piece("b.midi", 70), piece("c.midi", 30)];
    let rows: Vec<_> = pieces.iter().zip(Split::ALL).collect();
    let good = dir.path().join("good.parquet");
    write_parquet_file(&good, &rows).unwrap();
    let bytes = std::fs::read(&good).unwrap();
    let mut rng = data_support::Rng(7);
    let mut failures = 0;
    // polars' decoder panics on some of these (corrupt thrift metadata):
    // the reader turns that into an error too.
    for i in 0..1000 {
        let mut mutated = bytes.clone();
        match i % 3 {
            0 => mutated.truncate(rng.below(bytes.len())),
            1 => {
                for _ in 0..1 + rng.below(8) {
                    let at = rng.below(mutated.len());
                    mutated[at] = rng.byte();
                }
            }
            _ => {
                let at = rng.below(mutated.len() - 8);
                mutated[at..at + 4].copy_from_slice(&u32::MAX.to_le_bytes());
            }
        }
        let path = dir.path().join(format!("m{i}.parquet"));
        std::fs::write(&path, &mutated).unwrap();
        // Either an error naming the file, or rows (good or reported bad).
        match read_parquet_file(&path) {
            Ok(read) => assert!(read.pieces.len() + read.bad_rows.len() <= 3),
            Err(err) => {
                failures += 1;
                assert!(err.to_string().contains(&format!("m{i}.parquet")), "{err}");
            }
        }
    }
    assert!(failures > 0);
}
