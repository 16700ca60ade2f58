//! The ten bundled MAESTRO performances read as FACTS.md section 1 describes
//! them, and pushed through the whole pipeline.

use std::path::PathBuf;

use runner_data::encoder::Scheme;
use runner_data::midi::{MidiConfig, MidiRead, read_midi_file};
use runner_data::notes::Piece;
use runner_data::quantize::{Bins, Quantizer};
use runner_data::split::{Split, SplitRule, split};
use runner_data::window::WindowConfig;
use runner_data::{DatasetConfig, encode_pieces};

/// FACTS.md: note counts of Maestro_1.mid .. Maestro_10.mid.
const COUNTS: [usize; 10] = [2367, 12418, 3142, 5551, 14226, 18362, 20450, 11586, 8476, 5323];

fn read_all(config: &MidiConfig) -> Vec<MidiRead> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("data/bundled");
    (1..=10)
        .map(|i| {
            let path = dir.join(format!("Maestro_{i}.mid"));
            read_midi_file(&path, config).unwrap_or_else(|e| panic!("{e}"))
        })
        .collect()
}

fn pieces(config: &MidiConfig) -> Vec<Piece> {
    read_all(config).into_iter().map(|r| r.piece).collect()
}

#[test]
fn note_counts_match_facts_per_file_and_in_all() {
    for config in [
        MidiConfig::default(),
        MidiConfig {
            sustain_threshold: None,
        },
    ] {
        let reads = read_all(&config);
        let counts: Vec<usize> = reads.iter().map(|r| r.piece.notes.len()).collect();
        assert_eq!(counts, COUNTS);
        assert_eq!(counts.iter().sum::<usize>(), 101_901);
        for r in &reads {
            // Clean recordings: every note-on has its note-off, no stray keys.
            assert_eq!(r.stats.out_of_range, 0, "{}", r.piece.name);
            assert_eq!(r.stats.retriggered, 0, "{}", r.piece.name);
            assert_eq!(r.stats.unterminated, 0, "{}", r.piece.name);
        }
    }
}

#[test]
fn velocities_match_facts() {
    let pieces = pieces(&MidiConfig::default());
    let velocities: Vec<f64> = pieces
        .iter()
        .flat_map(|p| p.notes.iter().map(|n| f64::from(n.velocity)))
        .collect();
    let n = velocities.len() as f64;
    let mean = velocities.iter().sum::<f64>() / n;
    let std = (velocities.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n).sqrt();
    let min = velocities.iter().copied().fold(f64::INFINITY, f64::min);
    let max = velocities.iter().copied().fold(0.0, f64::max);
    assert_eq!((min, max), (1.0, 126.0));
    assert_eq!(format!("{mean:.1} {std:.1}"), "65.9 19.5");
}

#[test]
fn notes_are_sorted_piano_notes_and_the_pedal_only_lengthens_them() {
    let wet = pieces(&MidiConfig::default());
    let dry = pieces(&MidiConfig {
        sustain_threshold: None,
    });
    for (w, d) in wet.iter().zip(&dry) {
        assert!(
            w.notes
                .windows(2)
                .all(|p| (p[0].start, p[0].pitch) <= (p[1].start, p[1].pitch))
        );
        assert!(
            w.notes
                .iter()
                .all(|n| (21..=108).contains(&n.pitch) && n.end >= n.start)
        );
        // Same onsets; ends only move later, and most notes are held by the pedal.
        let mut longer = 0;
        for (a, b) in w.notes.iter().zip(&d.notes) {
            assert_eq!((a.pitch, a.start, a.velocity), (b.pitch, b.start, b.velocity));
            assert!(a.end >= b.end, "{} {a:?} {b:?}", w.name);
            longer += usize::from(a.end > b.end);
        }
        assert!(longer > 0, "{}: the pedal changed nothing", w.name);
    }
}

#[test]
fn the_write_up_setting_builds_token_windows_from_the_bundled_files() {
    let pieces = pieces(&MidiConfig::default());
    let names: Vec<String> = pieces.iter().map(|p| p.name.clone()).collect();
    let rule = SplitRule::Fractions {
        train: 0.8,
        validation: 0.1,
        test: 0.1,
        seed: 0,
    };
    let splits = split(&names, &names, &rule).unwrap();
    let train: Vec<Piece> = splits
        .indices(Split::Train)
        .into_iter()
        .map(|i| pieces[i].clone())
        .collect();
    assert_eq!(train.len(), 8);
    let bins = Bins {
        dstart: 5,
        duration: 5,
        velocity: 3,
    };
    let window = WindowConfig::new(128, 42).unwrap();
    for quantizer in [
        Quantizer::fixed(bins).unwrap(),
        Quantizer::from_quantiles(&train, bins).unwrap(),
    ] {
        let config = DatasetConfig::new(quantizer, window, Scheme::Separate).unwrap();
        assert_eq!(config.vocab().source_size(), 6601);
        let windows = encode_pieces(&pieces, &config).unwrap();
        let expected: Vec<usize> = COUNTS.iter().map(|&n| 1 + (n - 128) / 42).collect();
        let got: Vec<usize> = windows.iter().map(|w| w.len()).collect();
        assert_eq!(got, expected);
        for w in &windows {
            assert_eq!(w.width(), 129);
            assert!(w.source().iter().all(|&id| id < 6601));
            assert!(w.target().iter().all(|&id| id < 129));
        }
    }
}
