//! `runner predict` as a user runs it: a tiny run trained on the bundled
//! data, applied to its own test piece. mido (the set-up's Python) reads the
//! written MIDI file back: the same notes, pitches and times as the input,
//! changed velocities. The MAE over the run's own windows equals the run's
//! greedy test dist exactly (the same windows, decoded in the same batches).
//! Bad input: an unfinished run, a file that is not MIDI, a piece shorter
//! than a window, an unknown run id.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{python, text};

/// A tiny run with greedy metrics on (the test split's greedy dist is what
/// the windows' MAE is checked against).
const EXPERIMENT: &str = r#"
experiment predicted {
    dataset {
        window length=32 step=16
        quantize dstart=3 duration=3 velocity=3
    }
    model { d-model 16; d-ff 32; layers 1; heads 2 }
    train { epochs 1; batch-size 128; accumulate 1 }
    evaluate { examples 1; greedy #true }
    schedule noam warmup=10
}
"#;

fn runner(args: &[&str], store: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_runner"))
        .args(args)
        .arg("--store")
        .arg(store)
        .env("NO_COLOR", "1")
        .output()
        .unwrap()
}

/// Trains the tiny run once; its folder.
fn trained(dir: &Path) -> PathBuf {
    let file = dir.join("predicted.kdl");
    std::fs::write(&file, EXPERIMENT).unwrap();
    let out = runner(&["exec", file.to_str().unwrap()], &dir.join("runs"));
    assert!(out.status.success(), "{}", text(&out));
    let experiment = dir.join("runs").join("predicted");
    std::fs::read_dir(&experiment)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.join("summary.json").is_file())
        .unwrap()
}

fn json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn predict_writes_the_input_with_new_velocities_and_scores_as_the_run_does() {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("predict");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let run = trained(&dir);
    let data = json(&run.join("data.json"));
    let test = data["splits"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["split"] == "test")
        .unwrap();
    let names: Vec<&str> = test["pieces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(names.len(), 1, "the bundled data's default split has one test piece");
    let bundled = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/bundled");
    let input = bundled.join(names[0]);
    let out_dir = dir.join("out");
    let id = run.file_name().unwrap().to_str().unwrap();
    let out = runner(
        &[
            "predict",
            &id[..6],
            input.to_str().unwrap(),
            "--out",
            out_dir.to_str().unwrap(),
            "--json",
            "--device",
            "cpu",
        ],
        &dir.join("runs"),
    );
    assert!(out.status.success(), "{}", text(&out));
    let stem = Path::new(names[0]).file_stem().unwrap().to_str().unwrap();
    let written = out_dir.join(format!("{stem}.mid"));
    let table = json(&out_dir.join(format!("{stem}.notes.json")));

    // The windows' MAE is the greedy test dist the run reported, exactly.
    let summary = json(&run.join("summary.json"));
    let greedy_test = summary["test"][1]["dist"].as_f64().unwrap();
    assert_eq!(table["window_mae"].as_f64().unwrap(), greedy_test);
    assert!(
        text(&out).contains(&format!("{greedy_test:.3} (the run's windows")),
        "{}",
        text(&out)
    );

    // mido reads the same notes at the same ticks, with new velocities,
    // and the velocities the per-note table says.
    let check = r#"
import json, sys, mido
def notes(path):
    found = []
    for track in mido.MidiFile(path).tracks:
        tick = 0
        for message in track:
            tick += message.time
            if message.type == "note_on" and message.velocity > 0:
                found.append((tick, message.note, message.velocity))
    return sorted(found)
before, after = notes(sys.argv[1]), notes(sys.argv[2])
table = json.load(open(sys.argv[3]))
assert len(before) == len(after) == len(table["notes"]), (len(before), len(after))
assert [n[:2] for n in before] == [n[:2] for n in after], "notes or times differ"
changed = sum(a[2] != b[2] for a, b in zip(before, after))
assert changed > len(before) // 2, f"only {changed} velocities changed"
predicted = sorted(max(1, r["predicted"]) for r in table["notes"])
assert predicted == sorted(n[2] for n in after), "the MIDI file's velocities are not the table's"
mae = sum(abs(r["predicted"] - r["velocity"]) for r in table["notes"]) / len(table["notes"])
assert abs(mae - table["mae"]) < 1e-9, (mae, table["mae"])
print(f"mido: {len(after)} notes, {changed} velocities changed")
"#;
    let checked = Command::new(python(&["mido"]))
        .args(["-c", check])
        .args([&input, &written, &out_dir.join(format!("{stem}.notes.json"))])
        .output()
        .unwrap();
    assert!(checked.status.success(), "{}", text(&checked));

    // Bad input: each gets its message and a failure.
    let fails = |args: &[&str], expected: &str| {
        let out = runner(args, &dir.join("runs"));
        assert!(!out.status.success(), "{args:?} succeeded");
        assert!(text(&out).contains(expected), "{args:?}:\n{}", text(&out));
    };
    let bad_out = dir.join("bad-out");
    let bad_out = bad_out.to_str().unwrap();
    let not_midi = dir.join("notes.txt");
    std::fs::write(&not_midi, "not a performance").unwrap();
    let fake_midi = dir.join("broken.mid");
    std::fs::write(&fake_midi, b"MThd\0\0\0\x06\0\x01").unwrap();
    fails(
        &[
            "predict",
            id,
            not_midi.to_str().unwrap(),
            fake_midi.to_str().unwrap(),
            "--out",
            bad_out,
        ],
        "2 of 2 inputs could not be read",
    );
    // Three notes: shorter than the run's 32-note window.
    let short = dir.join("short.mid");
    let track: Vec<u8> = [
        &[0x00, 0x90, 60, 64, 0x60, 0x80, 60, 0][..],
        &[0x00, 0x90, 62, 64, 0x60, 0x80, 62, 0],
        &[0x00, 0x90, 64, 64, 0x60, 0x80, 64, 0, 0x00, 0xFF, 0x2F, 0x00],
    ]
    .concat();
    let length = u32::try_from(track.len()).unwrap().to_be_bytes();
    std::fs::write(
        &short,
        [&b"MThd\0\0\0\x06\0\0\0\x01\0\x60MTrk"[..], &length, &track].concat(),
    )
    .unwrap();
    fails(
        &["predict", id, short.to_str().unwrap(), "--out", bad_out],
        "short.mid (3 notes)",
    );
    fails(
        &["predict", "0000000000", input.to_str().unwrap(), "--out", bad_out],
        "no run in",
    );
    // A run that has not finished: its summary is gone.
    let unfinished = dir.join("unfinished");
    std::fs::create_dir_all(&unfinished).unwrap();
    std::fs::copy(run.join("config.json"), unfinished.join("config.json")).unwrap();
    fails(
        &[
            "predict",
            unfinished.to_str().unwrap(),
            input.to_str().unwrap(),
            "--out",
            bad_out,
        ],
        "has not finished",
    );
    assert!(!Path::new(bad_out).exists(), "nothing is written for bad input");
}
