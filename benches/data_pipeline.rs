//! Data pipeline speed at MAESTRO scale (~7 million notes), two figures
//! (docs/perf.md):
//!
//! 1. In memory: the bundled pieces replicated 69 times (7.03M notes), then
//!    split, quantized, windowed, encoded and summarised
//!    (`dataset::from_loaded`), best of 3. Goal: >= 2 million notes/s.
//! 2. End to end: the bundled files copied 70 times into a temporary folder
//!    (700 files, 7.13M notes), then `dataset::build` from that folder into
//!    an empty cache (cold: hash, read, parse, build, write the cache) and
//!    again (warm: hash, read the cache).
//!
//! Run with `cargo bench --bench data_pipeline` (needs `scripts/setup`'s bundled data).

use std::path::Path;
use std::time::Instant;

use runner_data::dataset::{self, Origin};
use runner_data::source::{self, Folders, Loaded, SourcePiece};
use runner_plan::config::{RunConfig, Source};

fn pathetique() -> RunConfig {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("experiments/pathetique.kdl");
    let plan = runner_plan::load(&path).expect("pathetique.kdl plans");
    plan.runs.into_iter().next().expect("a run").config
}

fn main() {
    let run = pathetique();
    let files = source::list(&Source::Bundled, &Folders::new(".")).expect("bundled data (run scripts/setup)");
    let bundled = source::load(&files, run.dataset.sustain, run.dataset.bad_files).expect("bundled data loads");

    // 1. In memory.
    let copies = 69;
    let replicated = Loaded {
        pieces: (0..copies)
            .flat_map(|copy| {
                bundled.pieces.iter().map(move |p| {
                    let mut piece = p.piece.clone();
                    piece.name = format!("copy_{copy:02}/{}", piece.name);
                    // Later by `copy` seconds, so that no copy is a duplicate.
                    for note in &mut piece.notes {
                        note.start += f64::from(copy);
                        note.end += f64::from(copy);
                    }
                    SourcePiece {
                        piece,
                        split: None,
                        file_sha256: None,
                        warnings: Vec::new(),
                        metadata: Default::default(),
                    }
                })
            })
            .collect(),
        skipped: Vec::new(),
        dropped_notes: 0,
    };
    let notes: usize = replicated.pieces.iter().map(|p| p.piece.notes.len()).sum();
    let mut best = f64::INFINITY;
    let mut windows = 0;
    for _ in 0..3 {
        let input = replicated.clone();
        let start = Instant::now();
        let built =
            dataset::from_loaded(input, &run.dataset, &Default::default(), run.encoder, String::new()).expect("builds");
        best = best.min(start.elapsed().as_secs_f64());
        windows = built.train.len() + built.validation.len() + built.test.len();
    }
    println!(
        "in memory: {notes} notes -> {windows} windows in {:.3} s (best of 3): {:.2} M notes/s",
        best,
        notes as f64 / best / 1e6
    );
    drop(replicated);

    // 2. End to end, from MIDI files on disk.
    let dir = std::env::temp_dir().join(format!("runner-bench-data-{}", std::process::id()));
    let midi = dir.join("midi");
    let copies = 70;
    for copy in 0..copies {
        let folder = midi.join(format!("copy_{copy:02}"));
        std::fs::create_dir_all(&folder).expect("temp folder");
        for file in &files.files {
            std::fs::copy(&file.path, folder.join(&file.name)).expect("copy");
        }
    }
    let mut disk_run = run.clone();
    disk_run.dataset.source = Source::MidiDir {
        path: midi.display().to_string(),
    };
    let cache = dir.join("cache");
    for label in ["cold", "warm"] {
        let start = Instant::now();
        let built = dataset::build(&disk_run, &Folders::new("/"), &cache).expect("builds");
        let seconds = start.elapsed().as_secs_f64();
        let notes: usize = built.summary.splits.iter().map(|s| s.notes).sum();
        let origin = match built.origin {
            Origin::Cached { .. } => "cache hit",
            _ => "built and cached",
        };
        println!(
            "end to end ({label}): {} files, {notes} notes in {seconds:.3} s ({origin})",
            copies * files.files.len()
        );
    }
    std::fs::remove_dir_all(&dir).expect("clean up");
}
