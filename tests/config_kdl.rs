//! A run's `config.kdl` is an experiment file for that run alone: planning
//! it gives back the same configuration, device and id.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use proptest::prelude::*;
use runner_plan as plan;
use runner_plan::{Plan, write};

/// Alternatives for one part of an experiment; the first is "not written".
const PARTS: &[&[&str]] = &[
    &[
        "",
        "dataset { source midi-dir path=\"some folder/with \\\"quotes\\\"\" }",
        "dataset { source hf-parquet path=\"/data/maestro\"; split column }",
        "dataset { split fractions train=0.7 validation=0.2 test=0.1 seed=3 }",
        "dataset { split files { train \"a.mid\" \"b b.mid\"; test \"c.mid\" } }",
        "dataset { split k-fold k=4 seed=2; group folder depth=1 }",
        "dataset { split k-fold k=3 fold=2; group pattern regex=\"^(.+)_take\\\\d\" }",
        "dataset { split table path=\"meta/maestro.csv\"; group column name=canonical_title table=\"meta/maestro.csv\" }",
        "dataset { split table path=\"t.csv\" file-column=file split-column=fold; group column name=\"a b\" table=\"t.csv\" file-column=file }",
        "dataset { source hf-parquet path=\"/data/maestro\"; group column name=composer }",
    ],
    &[
        "",
        "dataset { duplicates fail; min-velocities 2 }",
        "dataset { duplicates keep }",
    ],
    &["", "dataset { sustain #false }", "dataset { sustain threshold=40 }"],
    &[
        "",
        "dataset { quantize dstart=4 duration=7 velocity=9 edges=quantile }",
        "dataset { quantize edges=explicit { dstart-edges 0 0.048177 0.5; duration-edges 0 0.145833 0.45; velocity-edges 0 57 74 128 } }",
    ],
    &[
        "",
        "dataset { augment pitch-shift=3 time-stretch=0.1 probability=0.5; bad-files fail }",
    ],
    &[
        "",
        "model { architecture t5; d-kv 24; heads 3 }",
        "model { norm post; tie-embeddings #true; dropout 0 }",
        "model { positions relative; relative-buckets 16; d-model 0x80; layers 2 }",
    ],
    &["", "loss cross-entropy", "loss label-smoothing epsilon=5e-2"],
    &[
        "",
        "optimizer adamw weight-decay=0.01 clip-norm=1.5",
        "optimizer adam",
        "encoder shared",
    ],
    &[
        "",
        "schedule constant lr=3e-6",
        "schedule cosine peak=0.002 min=0 warmup=10",
        "schedule noam warmup=10",
    ],
    &[
        "",
        "train { max-steps 100; precision bf16; eval-every 2; device \"cuda:1\" }",
        "train { device cpu; epochs 1_000 }",
        "train { early-stop metric=accuracy patience=2 min-delta=0.005 }",
        "train { eval-every 2; early-stop metric=val-loss }",
    ],
    &["", "evaluate { greedy #false; test #false; examples 0 }"],
    &["", "seed 12345", "repeats 2"],
];

/// A fresh file name in a per-process temporary folder.
fn temp_file(name: &str) -> PathBuf {
    static CALLS: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!("runner-config-kdl-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(format!("{}-{name}", CALLS.fetch_add(1, Ordering::Relaxed)))
}

fn plan_file(path: &Path) -> Plan {
    plan::load(path).unwrap_or_else(|e| panic!("{}\n{e:?}", path.display()))
}

fn plan_text(text: &str) -> Plan {
    let path = temp_file("experiment.kdl");
    std::fs::write(&path, text).unwrap();
    let planned = plan_file(&path);
    std::fs::remove_file(&path).unwrap();
    planned
}

/// Writes every run of `planned` as its own file, plans it, and checks it
/// is that run and only it.
fn assert_round_trips(planned: &Plan) {
    for run in &planned.runs {
        let text = write::experiment_file(&planned.experiment, run);
        let again = plan_text(&text);
        assert_eq!(again.experiment, planned.experiment);
        assert_eq!(again.runs.len(), 1, "{text}");
        let back = &again.runs[0];
        assert_eq!(back.id, run.id, "{text}");
        assert_eq!(back.config, run.config, "{text}");
        assert_eq!(back.device, run.device, "{text}");
    }
}

#[test]
fn every_run_of_the_shipped_experiments_round_trips() {
    let mut files: Vec<PathBuf> = std::fs::read_dir("experiments")
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "kdl"))
        .collect();
    files.sort();
    assert!(files.iter().any(|f| f.ends_with("ablation.kdl")));
    for file in files {
        assert_round_trips(&plan_file(&file));
    }
}

#[test]
fn the_written_file_reads_like_an_experiment() {
    let planned = plan_text("experiment tiny {\n model { d-model 16 }\n}\n");
    let text = write::experiment_file("tiny", &planned.runs[0]);
    assert!(text.starts_with(&format!("// Run {} of the experiment `tiny`", planned.runs[0].id)));
    assert!(text.contains("experiment tiny {\n    description \"run "), "{text}");
    assert!(text.contains("    model {\n        architecture vanilla\n        d-model 16\n        d-kv 4\n"));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn any_combination_of_settings_round_trips(picks in proptest::collection::vec(0usize..8, PARTS.len())) {
        let mut text = String::from("experiment \"every kind\" {\n");
        for (part, pick) in PARTS.iter().zip(&picks) {
            text.push_str(&format!("    {}\n", part[pick % part.len()]));
        }
        text.push_str("}\n");
        assert_round_trips(&plan_text(&text));
    }
}
