//! Run ids are content hashes of the resolved configuration: the same
//! experiment written differently plans the same ids, and any change to a
//! value that affects training changes the id.

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};

use proptest::prelude::*;
use runner_plan as plan;
use runner_plan::Plan;

/// One setting: its section (`""` for top level) and equivalent spellings.
struct Setting {
    section: &'static str,
    spellings: &'static [&'static str],
    /// A spelling with a different value.
    changed: &'static str,
}

const SETTINGS: &[Setting] = &[
    Setting {
        section: "model",
        spellings: &["d-model 256", "d-model 0x100", "d-model 2_56"],
        changed: "d-model 512",
    },
    Setting {
        section: "model",
        spellings: &["dropout 0.1", "dropout 1e-1", "dropout 0.100"],
        changed: "dropout 0.2",
    },
    Setting {
        section: "model",
        spellings: &["heads 4", "heads 0b100"],
        changed: "heads 8",
    },
    Setting {
        section: "train",
        spellings: &["epochs 5", "epochs 0o5"],
        changed: "epochs 6",
    },
    Setting {
        section: "train",
        spellings: &["batch-size 16", "batch-size 1_6"],
        changed: "batch-size 8",
    },
    Setting {
        section: "dataset",
        spellings: &["window length=128 step=42", "window step=42 length=128"],
        changed: "window length=128 step=64",
    },
    Setting {
        section: "dataset",
        spellings: &[
            "quantize dstart=5 duration=5 velocity=3",
            "quantize velocity=3 duration=5 dstart=5",
        ],
        changed: "quantize dstart=3 duration=5 velocity=3",
    },
    Setting {
        section: "",
        spellings: &[
            "optimizer adam beta1=0.9 beta2=0.98 eps=1e-9",
            "optimizer adam eps=0.000000001 beta2=9.8e-1 beta1=0.9",
        ],
        changed: "optimizer adam beta1=0.9 beta2=0.98 eps=1e-8",
    },
    Setting {
        section: "",
        spellings: &[
            "schedule noam warmup=4000 factor=1",
            "schedule noam factor=1.0 warmup=4_000",
        ],
        changed: "schedule noam warmup=2000 factor=1",
    },
    Setting {
        section: "",
        spellings: &["loss label-smoothing epsilon=0.1", "loss label-smoothing epsilon=1e-1"],
        changed: "loss label-smoothing epsilon=0.2",
    },
    Setting {
        section: "",
        spellings: &["seed 7", "seed 0x7"],
        changed: "seed 8",
    },
];

/// Writes `lines` (section, text) into an experiment file, each in its own
/// section block, with `noise` comments and blank lines, and plans it.
fn plan_ids(lines: &[(&str, &str)], noise: bool) -> Vec<String> {
    let mut text = String::from("experiment ids {\n");
    for (section, line) in lines {
        if noise {
            text.push_str("\n    // a comment\n");
        }
        if section.is_empty() {
            text.push_str(&format!("    {line}\n"));
        } else {
            text.push_str(&format!("    {section} {{ {line} }}\n"));
        }
    }
    text.push_str("}\n");
    plan_text(&text).runs.into_iter().map(|r| r.id).collect()
}

/// Plans an experiment given as text (written to a temporary file).
fn plan_text(text: &str) -> Plan {
    let dir = std::env::temp_dir().join(format!("runner-ids-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // Tests run in parallel and plan the same text: one file per call.
    static CALLS: AtomicUsize = AtomicUsize::new(0);
    let path = dir.join(format!("{}.kdl", CALLS.fetch_add(1, Ordering::Relaxed)));
    std::fs::write(&path, text).unwrap();
    let planned = plan_file(&path);
    std::fs::remove_file(&path).unwrap();
    planned
}

/// Plans an experiment file.
fn plan_file(path: &Path) -> Plan {
    plan::load(path).unwrap_or_else(|e| panic!("{}\n{e:?}", path.display()))
}

fn reference() -> Vec<String> {
    let lines: Vec<(&str, &str)> = SETTINGS.iter().map(|s| (s.section, s.spellings[0])).collect();
    plan_ids(&lines, false)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn reordering_and_respelling_keep_the_id(
        order in Just((0..SETTINGS.len()).collect::<Vec<_>>()).prop_shuffle(),
        picks in proptest::collection::vec(0usize..3, SETTINGS.len()),
        noise in any::<bool>(),
    ) {
        let lines: Vec<(&str, &str)> = order
            .iter()
            .map(|&i| {
                let s = &SETTINGS[i];
                (s.section, s.spellings[picks[i] % s.spellings.len()])
            })
            .collect();
        prop_assert_eq!(plan_ids(&lines, noise), reference());
    }
}

#[test]
fn changing_any_value_changes_the_id() {
    let reference = reference();
    for (changed_index, setting) in SETTINGS.iter().enumerate() {
        let lines: Vec<(&str, &str)> = SETTINGS
            .iter()
            .enumerate()
            .map(|(i, s)| {
                (
                    s.section,
                    if i == changed_index {
                        setting.changed
                    } else {
                        s.spellings[0]
                    },
                )
            })
            .collect();
        assert_ne!(
            plan_ids(&lines, false),
            reference,
            "changing to `{}` kept the id",
            setting.changed
        );
    }
}

#[test]
fn the_device_is_not_part_of_the_id() {
    let mut lines: Vec<(&str, &str)> = SETTINGS.iter().map(|s| (s.section, s.spellings[0])).collect();
    lines.push(("train", "device cpu"));
    assert_eq!(plan_ids(&lines, false), reference());
}

#[test]
fn the_ablation_plans_24_runs_and_pathetique_2() {
    let count = |name: &str| plan_file(Path::new(&format!("experiments/{name}.kdl"))).runs.len();
    assert_eq!(count("ablation"), 24);
    assert_eq!(count("pathetique"), 2);
    assert_eq!(count("quickstart"), 1);
}

#[test]
fn the_ablation_cell_matching_midi_translation_has_its_id() {
    let ids = |name: &str| plan_file(Path::new(&format!("experiments/{name}.kdl"))).runs;
    let pathetique = ids("pathetique");
    let ablation = ids("ablation");
    let midi_translation = pathetique.iter().find(|r| r.matches("midi-translation")).unwrap();
    let cell = ablation
        .iter()
        .find(|r| r.matches("schedule=noam loss=label-smoothing encoder=separate seed=0"))
        .unwrap();
    assert_eq!(
        cell.id, midi_translation.id,
        "same settings, same data, same seed: same run"
    );
}

#[test]
fn identical_cells_are_planned_once() {
    // `a` and `b` both restate a default, so they make the same run as `base`.
    let text = "experiment dup {\n matrix {\n  axis setup {\n   base {}\n   a { model { d-model 256 } }\n   b { model { heads 4 } }\n   c { model { heads 8 } }\n  }\n }\n}\n";
    let planned = plan_text(text);
    assert_eq!(planned.runs.len(), 2);
    assert_eq!(planned.merged_duplicates, 2);
}

#[test]
fn an_axis_can_vary_one_field_of_a_choice() {
    let text = "experiment tweak {\n schedule noam warmup=4000\n matrix {\n  axis schedule.warmup 1000 2000\n }\n}\n";
    let planned = plan_text(text);
    let warmups: Vec<_> = planned.runs.iter().map(|r| r.config.schedule).collect();
    assert_eq!(
        warmups,
        [1000, 2000].map(|warmup| runner_plan::config::Schedule::Noam {
            warmup,
            factor: 1.0,
            counts: runner_plan::config::NoamCounts::Steps
        })
    );
}
