//! Building datasets and the dataset cache: the pathetique settings on the
//! bundled data, cache hits, keys that change with every input, corrupt and
//! half-written entries, and no windows leaking between splits.

mod data_support;

use std::collections::HashSet;
use std::path::Path;

use data_support::{TempDir, bundled_dir, pathetique_runs};
use runner_data::cache::{dataset_key, split_key};
use runner_data::dataset::{self, Dataset, Origin};
use runner_data::source::{self, Folders, SourceFiles};
use runner_data::split::Split;
use runner_data::table::Tables;
use runner_plan::config::{BadFiles, Duplicates, Edges, Group, RunConfig, Scheme, Source, Split as SplitRule};

/// FACTS.md: note counts of Maestro_1.mid .. Maestro_10.mid.
const COUNTS: [usize; 10] = [2367, 12418, 3142, 5551, 14226, 18362, 20450, 11586, 8476, 5323];

fn build(run: &RunConfig, cache: &Path) -> Dataset {
    dataset::build(run, &Folders::new("."), cache).unwrap_or_else(|e| panic!("{e}"))
}

fn key_of(origin: &Origin) -> &str {
    match origin {
        Origin::Built { key } | Origin::Rebuilt { key, .. } | Origin::Cached { key } => key,
        Origin::Uncached => panic!("built without the cache"),
    }
}

fn piece_names(dataset: &Dataset, split: Split) -> Vec<String> {
    let summary = dataset.summary.split(split).unwrap();
    summary.pieces.iter().map(|p| p.name.clone()).collect()
}

/// Windows and summary, without where they came from.
fn same_data(a: &Dataset, b: &Dataset) {
    assert_eq!((&a.vocab, &a.quantizer), (&b.vocab, &b.quantizer));
    for split in Split::ALL {
        assert_eq!(a.windows(split), b.windows(split), "{split}");
    }
    assert_eq!(a.summary, b.summary);
}

#[test]
fn pathetique_settings_give_the_window_formula_per_piece_and_disjoint_splits() {
    let cache = TempDir::new("pathetique");
    for (run, scheme, source_vocab) in pathetique_runs()
        .into_iter()
        .zip([(Scheme::Separate, 6601), (Scheme::Shared, 2 + 88 * 75 + 128)])
        .map(|(run, (scheme, size))| (run, scheme, size))
    {
        assert_eq!(run.encoder, scheme);
        let built = build(&run, cache.path());
        assert_eq!(built.vocab.source_size(), source_vocab);
        assert_eq!(built.quantizer.bins().dstart, 5);
        assert_eq!(built.summary.edges.velocity, vec![0.0, 57.0, 74.0]);
        let mut seen = HashSet::new();
        let mut notes = 0;
        for split in Split::ALL {
            let summary = built.summary.split(split).unwrap();
            let windows = built.windows(split);
            assert_eq!(windows.width(), 129);
            assert_eq!(windows.len(), summary.windows);
            for piece in &summary.pieces {
                assert!(seen.insert(piece.name.clone()), "{} in two splits", piece.name);
                let index: usize = piece
                    .name
                    .trim_start_matches("Maestro_")
                    .trim_end_matches(".mid")
                    .parse()
                    .unwrap();
                assert_eq!(piece.notes, COUNTS[index - 1]);
                assert_eq!(piece.windows, 1 + (piece.notes - 128) / 42, "{}", piece.name);
                notes += piece.notes;
            }
            assert_eq!(summary.windows, summary.pieces.iter().map(|p| p.windows).sum::<usize>());
            // Every window starts with <CLS> on both sides.
            for i in 0..windows.len() {
                let (source, target) = windows.get(i).unwrap();
                assert_eq!((source[0], target[0]), (0, 0));
                assert!(source.iter().all(|&id| id < built.vocab.source_size()));
                assert!(target.iter().all(|&id| id < built.vocab.target_size()));
            }
        }
        assert_eq!(seen.len(), 10);
        assert_eq!(notes, 101_901);
        assert_eq!(
            (
                piece_names(&built, Split::Train).len(),
                piece_names(&built, Split::Validation).len(),
                piece_names(&built, Split::Test).len()
            ),
            (8, 1, 1)
        );
        let all = built
            .summary
            .splits
            .iter()
            .map(|s| s.velocity.unwrap())
            .fold((255, 0), |acc, v| (acc.0.min(v.min), acc.1.max(v.max)));
        assert_eq!(all, (1, 126));
    }
}

#[test]
fn a_second_build_reads_identical_data_from_the_cache() {
    let cache = TempDir::new("hit");
    let run = pathetique_runs().remove(0);
    let first = build(&run, cache.path());
    assert!(matches!(first.origin, Origin::Built { .. }), "{:?}", first.origin);
    let second = build(&run, cache.path());
    assert!(matches!(second.origin, Origin::Cached { .. }), "{:?}", second.origin);
    assert_eq!(key_of(&first.origin), key_of(&second.origin));
    same_data(&first, &second);
    // The dataset does not depend on where it was built from.
    let key = key_of(&first.origin).to_owned();
    assert!(cache.path().join(&key).join("train.bin").is_file());
    assert!(cache.path().join(&key).join("summary.json").is_file());
}

/// Variations of the pathetique dataset, each changing one input of the key.
fn variations() -> Vec<(&'static str, RunConfig)> {
    let base = pathetique_runs().remove(0);
    let with = |name, change: &dyn Fn(&mut RunConfig)| {
        let mut run = base.clone();
        change(&mut run);
        (name, run)
    };
    vec![
        ("base", base.clone()),
        with("split seed", &|r| {
            r.dataset.split = SplitRule::Fractions {
                train: 0.8,
                validation: 0.1,
                test: 0.1,
                seed: 1,
            }
        }),
        with("split shares", &|r| {
            r.dataset.split = SplitRule::Fractions {
                train: 0.7,
                validation: 0.2,
                test: 0.1,
                seed: 0,
            }
        }),
        with("split files", &|r| {
            r.dataset.split = SplitRule::Files {
                train: (1..=8).map(|i| format!("Maestro_{i}.mid")).collect(),
                validation: vec!["Maestro_9.mid".into()],
                test: vec!["Maestro_10.mid".into()],
            }
        }),
        with("split column", &|r| r.dataset.split = SplitRule::Column),
        with("split k-fold", &|r| {
            r.dataset.split = SplitRule::KFold { k: 5, fold: 0, seed: 0 }
        }),
        with("split k-fold fold", &|r| {
            r.dataset.split = SplitRule::KFold { k: 5, fold: 1, seed: 0 }
        }),
        with("group folder", &|r| r.dataset.group = Group::Folder { depth: 0 }),
        with("group pattern", &|r| {
            r.dataset.group = Group::Pattern {
                regex: "Maestro_1".into(),
            }
        }),
        with("duplicates fail", &|r| r.dataset.duplicates = Duplicates::Fail),
        with("duplicates keep", &|r| r.dataset.duplicates = Duplicates::Keep),
        with("min velocities", &|r| r.dataset.min_velocities = 2),
        with("sustain off", &|r| r.dataset.sustain = None),
        with("sustain 64", &|r| r.dataset.sustain = Some(64)),
        with("bad files", &|r| r.dataset.bad_files = BadFiles::Fail),
        with("dstart bins", &|r| r.dataset.quantize.dstart = 3),
        with("duration bins", &|r| r.dataset.quantize.duration = 3),
        with("velocity bins", &|r| r.dataset.quantize.velocity = 5),
        with("quantile edges", &|r| r.dataset.quantize.edges = Edges::Quantile),
        with("explicit edges", &|r| {
            r.dataset.quantize.edges = Edges::Explicit {
                dstart: vec![0.0, 0.01, 0.05, 0.1, 0.5],
                duration: vec![0.0, 0.1, 0.2, 0.4, 0.8],
                velocity: vec![0.0, 57.0, 74.0, 128.0],
            }
        }),
        with("explicit edge values", &|r| {
            r.dataset.quantize.edges = Edges::Explicit {
                dstart: vec![0.0, 0.01, 0.05, 0.1, 0.5],
                duration: vec![0.0, 0.1, 0.2, 0.4, 0.8],
                velocity: vec![0.0, 50.0, 74.0, 128.0],
            }
        }),
        with("window length", &|r| r.dataset.window.length = 64),
        with("window step", &|r| r.dataset.window.step = 128),
        with("scheme", &|r| r.encoder = Scheme::Shared),
    ]
}

#[test]
fn the_key_changes_with_every_input_that_shapes_the_dataset() {
    let files = source::list(&Source::Bundled, &Folders::new(".")).unwrap();
    let mut keys = HashSet::new();
    for (name, run) in variations() {
        assert!(
            keys.insert(dataset_key(&files, &Tables::default(), &run.dataset, run.encoder)),
            "{name}"
        );
    }
    let base = pathetique_runs().remove(0);
    let key = |files: &SourceFiles| dataset_key(files, &Tables::default(), &base.dataset, base.encoder);
    // One byte of one file.
    let mut changed = files.clone();
    changed.files[3].sha256[0] ^= 1;
    assert!(keys.insert(key(&changed)), "file contents");
    // A file renamed (piece names shape the split).
    let mut renamed = files.clone();
    renamed.files[0].name = "Other.mid".into();
    assert!(keys.insert(key(&renamed)), "file name");
    // A file fewer.
    let mut fewer = files.clone();
    fewer.files.pop();
    assert!(keys.insert(key(&fewer)), "file set");
    // Neither the folder nor training-time augmentation matter.
    let mut moved = files.clone();
    moved.dir = "/elsewhere".into();
    assert!(!keys.insert(key(&moved)), "folder");
    let mut augmented = base.clone();
    augmented.dataset.augment.pitch_shift = 3;
    assert!(!keys.insert(dataset_key(
        &files,
        &Tables::default(),
        &augmented.dataset,
        augmented.encoder
    )));
    // Each split's windows carry a key of their own.
    let k = key(&files);
    let split_keys: HashSet<[u8; 32]> = Split::ALL.iter().map(|&s| split_key(&k, s)).collect();
    assert_eq!(split_keys.len(), 3);
}

#[test]
fn another_split_rule_never_serves_cached_windows_of_another_split() {
    let cache = TempDir::new("leak");
    let runs = variations();
    let base = &runs[0].1;
    let reseeded = &runs[1].1;
    let a = build(base, cache.path());
    let b = build(reseeded, cache.path());
    assert!(matches!(b.origin, Origin::Built { .. }), "a new split is a new entry");
    assert_ne!(key_of(&a.origin), key_of(&b.origin));
    assert_ne!(
        piece_names(&a, Split::Train),
        piece_names(&b, Split::Train),
        "the seeds split differently"
    );
    // Each dataset's validation windows are those of its own validation pieces:
    // built without the cache they are the same, and no validation piece trains.
    for (run, cached) in [(base, &a), (reseeded, &b), (base, &build(base, cache.path()))] {
        let files = source::list(&run.dataset.source, &Folders::new(".")).unwrap();
        let loaded = source::load(&files, run.dataset.sustain, run.dataset.bad_files).unwrap();
        let fresh = dataset::from_loaded(
            loaded,
            &run.dataset,
            &Tables::default(),
            run.encoder,
            cached.summary.source.clone(),
        )
        .unwrap();
        same_data(&fresh, cached);
        let train: HashSet<String> = piece_names(cached, Split::Train).into_iter().collect();
        for split in [Split::Validation, Split::Test] {
            assert!(piece_names(cached, split).iter().all(|n| !train.contains(n)), "{split}");
        }
        assert_ne!(cached.validation, cached.train);
    }
}

#[test]
fn a_truncated_or_altered_cache_file_is_detected_and_rebuilt() {
    let cache = TempDir::new("corrupt");
    let run = pathetique_runs().remove(0);
    let first = build(&run, cache.path());
    let entry = cache.path().join(key_of(&first.origin));
    for (file, damage) in [
        (
            "validation.bin",
            &(|b: &mut Vec<u8>| b.truncate(b.len() / 2)) as &dyn Fn(&mut Vec<u8>),
        ),
        ("train.bin", &|b: &mut Vec<u8>| b[100] ^= 0x40),
        ("test.bin", &|b: &mut Vec<u8>| b.clear()),
        ("summary.json", &|b: &mut Vec<u8>| b.truncate(10)),
    ] {
        let path = entry.join(file);
        let mut bytes = std::fs::read(&path).unwrap();
        damage(&mut bytes);
        std::fs::write(&path, bytes).unwrap();
        let again = build(&run, cache.path());
        match &again.origin {
            Origin::Rebuilt { reason, .. } => assert!(reason.contains(file), "{file}: {reason}"),
            other => panic!("{file}: {other:?}"),
        }
        same_data(&first, &again);
        assert!(
            matches!(build(&run, cache.path()).origin, Origin::Cached { .. }),
            "{file}"
        );
    }
    // A window file of another split, copied over, is refused by its key.
    std::fs::copy(entry.join("train.bin"), entry.join("validation.bin")).unwrap();
    match build(&run, cache.path()).origin {
        Origin::Rebuilt { reason, .. } => assert!(reason.contains("another dataset or split"), "{reason}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_leftover_temporary_folder_is_ignored() {
    let cache = TempDir::new("tmp");
    let run = pathetique_runs().remove(0);
    let files = source::list(&run.dataset.source, &Folders::new(".")).unwrap();
    let key = dataset_key(&files, &Tables::default(), &run.dataset, run.encoder);
    // What a build killed half-way leaves: a temporary folder with a partial entry.
    let tmp = cache.path().join(format!(".tmp-{key}-1-0"));
    std::fs::create_dir_all(&tmp).unwrap();
    std::fs::write(tmp.join("summary.json"), "{\"format\": 1,").unwrap();
    std::fs::write(tmp.join("train.bin"), b"RNRWIN01").unwrap();
    let built = build(&run, cache.path());
    assert_eq!(built.origin, Origin::Built { key: key.clone() });
    assert!(tmp.exists(), "someone else's temporary folder is left alone");
    assert_eq!(build(&run, cache.path()).origin, Origin::Cached { key });
}

#[test]
fn a_midi_folder_source_reads_recursively_skips_bad_files_and_caches() {
    let dir = TempDir::new("midi-dir");
    std::fs::create_dir_all(dir.path().join("2004")).unwrap();
    for i in 1..=3 {
        std::fs::copy(
            bundled_dir().join(format!("Maestro_{i}.mid")),
            dir.path().join("2004").join(format!("piece_{i}.MIDI")),
        )
        .unwrap();
    }
    std::fs::write(dir.path().join("broken.mid"), b"MThd\0\0\0\x06\0\x01").unwrap();
    std::fs::write(dir.path().join("notes.txt"), b"not a MIDI file").unwrap();
    let mut run = pathetique_runs().remove(0);
    run.dataset.source = Source::MidiDir {
        path: dir.path().file_name().unwrap().to_string_lossy().into_owned(),
    };
    run.dataset.split = SplitRule::Files {
        train: vec!["2004/piece_1.MIDI".into(), "2004/piece_2.MIDI".into()],
        validation: vec!["2004/piece_3.MIDI".into()],
        test: vec![],
    };
    let cache = TempDir::new("midi-dir-cache");
    let base = dir.path().parent().unwrap();
    let built = dataset::build(&run, &Folders::new(base), cache.path()).unwrap();
    assert_eq!(built.summary.skipped.len(), 1);
    assert!(built.summary.skipped[0].what.ends_with("broken.mid"));
    assert!(
        built.summary.skipped[0].reason.contains("truncated"),
        "{:?}",
        built.summary.skipped
    );
    assert_eq!(
        piece_names(&built, Split::Train),
        vec!["2004/piece_1.MIDI", "2004/piece_2.MIDI"]
    );
    assert_eq!(built.summary.split(Split::Validation).unwrap().notes, COUNTS[2]);
    let again = dataset::build(&run, &Folders::new(base), cache.path()).unwrap();
    assert!(matches!(again.origin, Origin::Cached { .. }));
    assert_eq!(again.summary.skipped, built.summary.skipped);

    run.dataset.bad_files = BadFiles::Fail;
    let err = dataset::build(&run, &Folders::new(base), cache.path()).unwrap_err();
    assert!(err.to_string().contains("broken.mid"), "{err}");
}

#[test]
fn builds_of_one_dataset_at_the_same_time_all_succeed() {
    // Two `runner exec` processes (or parallel workers) miss the cache
    // together and store the same entry: the later one keeps the first's
    // (the rename onto it used to fail with "Directory not empty").
    let run = pathetique_runs().remove(0);
    for round in 0..5 {
        let cache = TempDir::new(&format!("race-{round}"));
        let built: Vec<Dataset> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..8).map(|_| scope.spawn(|| build(&run, cache.path()))).collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        for other in &built[1..] {
            same_data(&built[0], other);
        }
        let left: Vec<_> = std::fs::read_dir(cache.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(left.len(), 1, "one entry and no temporary folder: {left:?}");
    }
}
