//! Peer tests (issue R9): runner's two networks against the originals'
//! semantics. A tiny T5 run (shared vocabulary, cross-entropy) and a tiny
//! vanilla run (separate vocabularies, label smoothing) train for two
//! optimizer steps; `runner model logits` runs each on validation windows;
//! the Python peers in `tests/peer/` load the same checkpoint into
//! HuggingFace's `T5ForConditionalGeneration` and into a re-implementation
//! of midi-translation's `make_model`, and must agree on the logits (within
//! 1e-5), the greedy picks (exactly) and the loss. They run with the Python
//! of the set-up's torch environment, which must have `transformers` and
//! `safetensors` (scripts/setup installs them): without it the test fails.
//!
//! Also: `runner model logits` agrees with what training saved in
//! `predictions.json`, and refuses bad input with a clear error; `runner
//! export` writes the T5 run as a HuggingFace checkpoint that
//! `T5ForConditionalGeneration.from_pretrained` loads and that gives the
//! same logits (`tests/peer/hf_export.py`), documents every tensor of the
//! vanilla run, and refuses bad input.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use common::{python, text, tiny_experiment};
use runner_data::dataset;
use runner_data::source::Folders;
use runner_plan::config::{DecoderInput, RunConfig};

/// Two layers a stack, so that the T5 decoder's second block reads the
/// first block's relative-position table, as HF's does. Each run has its
/// original's settings: T5 reads HF's shift-right decoder input; vanilla
/// trains with midi-translation's label-smoothing target and picks by an
/// argmax over its whole target vocabulary. The vanilla run
/// stays near its initialisation, where its greedy picks still vary (after
/// two steps at Noam's rate it repeats one velocity). The T5 one's greedy
/// picks repeat one velocity either way (its tied embeddings make an
/// untrained T5 echo its input), so for T5 the greedy check covers the start
/// from CLS and the restriction to velocities more than the cached steps.
const VARIANTS: &str = r#"
    variant t5 {
        encoder shared
        model { architecture t5; layers 2 }
        loss cross-entropy
        schedule constant lr=1e-3
        train { max-steps 2; decoder-input shift-right; }
    }
    variant vanilla {
        encoder separate
        model { architecture vanilla; layers 2 }
        loss label-smoothing epsilon=0.1 target=original
        schedule constant lr=1e-6
        train { max-steps 2 }
        evaluate { argmax vocabulary; }
    }
"#;

/// The trained runs, shared by the tests.
struct Trained {
    root: PathBuf,
    t5: PathBuf,
    vanilla: PathBuf,
}

fn runner(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_runner"))
        .args(args)
        .env("NO_COLOR", "1")
        .output()
        .unwrap()
}

/// Trains the two runs once (the first test to ask waits for it).
fn trained() -> &'static Trained {
    static TRAINED: OnceLock<Trained> = OnceLock::new();
    TRAINED.get_or_init(|| {
        let root = Path::new(env!("CARGO_TARGET_TMPDIR")).join("peer");
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(&root).unwrap();
        let file = root.join("peer.kdl");
        std::fs::write(&file, tiny_experiment("peer", 1, VARIANTS)).unwrap();
        let (file, store) = (file.to_str().unwrap(), root.join("runs"));
        let store = store.to_str().unwrap();
        let output = runner(&["exec", file, "--store", store, "--device", "cpu"]);
        assert!(output.status.success(), "{}", text(&output));
        let plan: serde_json::Value = serde_json::from_slice(&runner(&["plan", file, "--json"]).stdout).unwrap();
        let run_dir = |variant: &str| {
            let run = plan["runs"]
                .as_array()
                .unwrap()
                .iter()
                .find(|run| run["labels"].as_array().unwrap().iter().any(|pair| pair[1] == variant))
                .unwrap();
            root.join("runs").join("peer").join(run["id"].as_str().unwrap())
        };
        Trained {
            t5: run_dir("t5"),
            vanilla: run_dir("vanilla"),
            root,
        }
    })
}

/// Writes the ids of the first `windows` validation windows of the run in
/// `run` to `path`, as training feeds them: `tgt_in` = CLS and the
/// velocities but the last, `tgt_out` = the velocities; with shift-right,
/// `tgt_in` = 0, CLS and the velocities but the last, `tgt_out` = CLS and
/// the velocities.
fn write_ids(trained: &Trained, run: &Path, windows: usize, path: &Path) {
    let config: RunConfig = serde_json::from_str(&std::fs::read_to_string(run.join("config.json")).unwrap()).unwrap();
    let data = dataset::build(
        &config,
        &Folders::new(&trained.root),
        &trained.root.join("runs").join(".datasets"),
    )
    .unwrap();
    let rows: Vec<(&[u32], &[u32])> = (0..windows).map(|i| data.validation.get(i).unwrap()).collect();
    let shift_right = config.train.decoder_input == DecoderInput::ShiftRight;
    let tgt_in = |tgt: &[u32]| {
        let start = if shift_right { &[0u32][..] } else { &[] };
        [start, &tgt[..tgt.len() - 1]].concat()
    };
    let tgt_out = |tgt: &[u32]| if shift_right { tgt.to_vec() } else { tgt[1..].to_vec() };
    let ids = serde_json::json!({
        "src": rows.iter().map(|(src, _)| src.to_vec()).collect::<Vec<_>>(),
        "tgt_in": rows.iter().map(|(_, tgt)| tgt_in(tgt)).collect::<Vec<_>>(),
        "tgt_out": rows.iter().map(|(_, tgt)| tgt_out(tgt)).collect::<Vec<_>>(),
    });
    std::fs::write(path, ids.to_string()).unwrap();
}

/// `runner model logits RUN --ids IDS --json`, parsed, and saved beside the ids.
fn logits(run: &Path, ids: &Path) -> (serde_json::Value, PathBuf) {
    let output = runner(&[
        "model",
        "logits",
        run.to_str().unwrap(),
        "--ids",
        ids.to_str().unwrap(),
        "--json",
    ]);
    assert!(output.status.success(), "{}", text(&output));
    let path = ids.with_extension("logits.json");
    std::fs::write(&path, &output.stdout).unwrap();
    (serde_json::from_slice(&output.stdout).unwrap(), path)
}

/// Runs the peer `script` on a run, its ids and runner's output; its report.
fn peer(script: &str, run: &Path, ids: &Path, logits: &Path) -> String {
    let output = Command::new(python(&["torch", "transformers", "safetensors"]))
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/peer").join(script))
        .args([run, ids, logits])
        .output()
        .unwrap();
    let report = text(&output);
    assert!(output.status.success(), "{script} failed:\n{report}");
    report
}

/// The `[first, end)` velocity ids of a probe.
fn velocity_ids(probe: &serde_json::Value) -> (i64, i64) {
    let ids = probe["velocity_ids"].as_array().unwrap();
    (ids[0].as_i64().unwrap(), ids[1].as_i64().unwrap())
}

/// What `runner model logits` says on window 0 is what training saved for it.
fn agrees_with_predictions(run: &Path, probe: &serde_json::Value) {
    let saved: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("predictions.json")).unwrap()).unwrap();
    let example = &saved[0];
    assert_eq!(example["window"], 0);
    assert_eq!(probe["greedy"][0], example["greedy"]);
    assert_eq!(probe["teacher_forced"][0], example["teacher_forced"]);
}

/// The words of `text`, with miette's wrapping and margins undone.
fn words(text: &str) -> String {
    text.replace('│', " ").split_whitespace().collect::<Vec<_>>().join(" ")
}

#[test]
fn t5_matches_huggingface() {
    let trained = trained();
    let ids = trained.root.join("t5-ids.json");
    write_ids(trained, &trained.t5, 3, &ids);
    let (probe, logits_path) = logits(&trained.t5, &ids);
    // Shared vocabulary of 3/3/3 bins: 2 + 88 * 27 + 128 ids, velocity 0 at 2 + 88 * 27.
    assert_eq!(velocity_ids(&probe), (2378, 2506));
    // HF's shift-right: the decoder reads [0, CLS, v1 .. v31] and predicts,
    // and counts in its loss, [CLS, v1 .. v32].
    assert_eq!(probe["decoder_prefix"], serde_json::json!([0, 0]));
    assert_eq!(probe["logits"].as_array().unwrap().len(), 3);
    assert_eq!(probe["logits"][0].as_array().unwrap().len(), 33);
    assert_eq!(probe["logits"][0][0].as_array().unwrap().len(), 2506);
    assert_eq!(probe["greedy"][0].as_array().unwrap().len(), 32);
    assert_eq!(probe["loss"]["count"], 3 * 33);
    agrees_with_predictions(&trained.t5, &probe);
    let report = peer("t5_peer.py", &trained.t5, &ids, &logits_path);
    println!("{report}");
    assert!(report.contains("t5_peer: pass"), "{report}");
}

#[test]
fn vanilla_matches_midi_translation() {
    let trained = trained();
    let ids = trained.root.join("vanilla-ids.json");
    write_ids(trained, &trained.vanilla, 3, &ids);
    let (probe, logits_path) = logits(&trained.vanilla, &ids);
    assert_eq!(velocity_ids(&probe), (1, 129));
    assert_eq!(probe["logits"][0][0].as_array().unwrap().len(), 129);
    agrees_with_predictions(&trained.vanilla, &probe);
    let report = peer("vanilla_peer.py", &trained.vanilla, &ids, &logits_path);
    println!("{report}");
    assert!(report.contains("vanilla_peer: pass"), "{report}");
    assert!(report.contains("label smoothing objective (original)"), "{report}");
    assert!(report.contains("KLDivLoss"), "{report}");
    // A greedy check over one repeated velocity would prove little.
    let picks: std::collections::BTreeSet<u64> = probe["greedy"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|row| row.as_array().unwrap())
        .map(|v| v.as_u64().unwrap())
        .collect();
    assert!(picks.len() > 3, "the greedy check needs varied picks: {picks:?}");
}

#[test]
fn bad_input_is_a_clear_error() {
    let trained = trained();
    let dir = trained.root.join("bad");
    std::fs::create_dir_all(&dir).unwrap();
    let good = trained.root.join("bad-good-ids.json");
    write_ids(trained, &trained.vanilla, 2, &good);
    // A run folder whose run never trained: its config, no checkpoint.
    let untrained = dir.join("untrained");
    std::fs::create_dir_all(&untrained).unwrap();
    std::fs::copy(trained.vanilla.join("config.json"), untrained.join("config.json")).unwrap();

    let write = |name: &str, json: &str| {
        let path = dir.join(name);
        std::fs::write(&path, json).unwrap();
        path
    };
    let vanilla = trained.vanilla.as_path();
    let cases: Vec<(&Path, PathBuf, &str)> = vec![
        (&dir, good.clone(), "is not a run folder (it has no config.json)"),
        (&untrained, good.clone(), "has not been trained"),
        (
            vanilla,
            write("range.json", r#"{"src": [[0, 2377]], "tgt_in": [[0, 1]]}"#),
            "src: id 2377 at row 0, position 1 is outside the vocabulary 0..2377",
        ),
        (
            vanilla,
            write("target-range.json", r#"{"src": [[0, 5]], "tgt_in": [[0, -1]]}"#),
            "tgt_in: id -1 at row 0, position 1 is outside the vocabulary 0..129",
        ),
        (
            vanilla,
            write(
                "ragged.json",
                r#"{"src": [[0, 5, 6], [0, 5]], "tgt_in": [[0, 1], [0, 1]]}"#,
            ),
            "src: row 1 has 2 ids but row 0 has 3",
        ),
        (
            vanilla,
            write("batch.json", r#"{"src": [[0, 5], [0, 6]], "tgt_in": [[0, 1]]}"#),
            "src has 2 rows but tgt_in has 1",
        ),
        (
            vanilla,
            write("empty.json", r#"{"src": [], "tgt_in": []}"#),
            "src: no rows",
        ),
        (
            vanilla,
            write(
                "out-shape.json",
                r#"{"src": [[0, 5]], "tgt_in": [[0, 1]], "tgt_out": [[1]]}"#,
            ),
            "tgt_out is [1, 1] but tgt_in is [1, 2]",
        ),
        (
            vanilla,
            write("malformed.json", r#"{"src": [[0, 5]], "tgt_in": "#),
            "malformed.json: EOF",
        ),
        (vanilla, dir.join("missing.json"), "missing.json: No such file"),
        (
            trained.t5.as_path(),
            write("short.json", r#"{"src": [[0, 5]], "tgt_in": [[0]]}"#),
            "tgt_in has 1 ids, fewer than the decoder prefix [0, 0] of this run",
        ),
    ];
    for (run, ids, expected) in cases {
        let output = runner(&["model", "logits", run.to_str().unwrap(), "--ids", ids.to_str().unwrap()]);
        let said = words(&text(&output));
        assert_eq!(output.status.code(), Some(1), "{expected}: {said}");
        assert!(said.contains(expected), "expected {expected:?} in:\n{said}");
        assert!(!said.contains("panicked"), "{said}");
    }

    // The same good ids give a short summary without --json.
    let output = runner(&[
        "model",
        "logits",
        vanilla.to_str().unwrap(),
        "--ids",
        good.to_str().unwrap(),
    ]);
    let said = text(&output);
    assert!(output.status.success(), "{said}");
    assert!(said.contains("logits [2, 32, 129]"), "{said}");
    assert!(said.contains("greedy 1: "), "{said}");
    assert!(said.contains("over 64 positions"), "{said}");
}

/// `runner export ARGS..`, run from the test's folder.
fn export(args: &[&str]) -> Output {
    runner(&[&["export"], args].concat())
}

/// An empty folder `name` under the test's root (emptied when it exists).
fn fresh(trained: &Trained, name: &str) -> PathBuf {
    let dir = trained.root.join(name);
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// The name and shape of every tensor in a safetensors file, read from its header.
fn safetensors_shapes(path: &Path) -> std::collections::BTreeMap<String, Vec<u64>> {
    let bytes = std::fs::read(path).unwrap();
    let length = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(&bytes[8..8 + length]).unwrap();
    header
        .into_iter()
        .filter(|(name, _)| name != "__metadata__")
        .map(|(name, facts)| (name, serde_json::from_value(facts["shape"].clone()).unwrap()))
        .collect()
}

#[test]
fn t5_exports_a_huggingface_checkpoint_with_runners_logits() {
    let trained = trained();
    let dir = fresh(trained, "export-t5");
    let output = export(&[trained.t5.to_str().unwrap(), "--hf", dir.to_str().unwrap()]);
    let said = text(&output);
    assert!(output.status.success(), "{said}");
    assert!(said.contains("wrote a HuggingFace T5 checkpoint"), "{said}");
    assert!(said.contains("from_pretrained"), "{said}");
    let config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("config.json")).unwrap()).unwrap();
    assert_eq!(config["model_type"], "t5");
    assert_eq!(config["vocab_size"], 2506);
    assert_eq!(config["runner"]["velocity_ids"], serde_json::json!([2378, 2506]));
    assert_eq!(config["runner"]["decoder_prefix"], serde_json::json!([0, 0]));
    // HF's names: q, k, v apart, and the tied tables only as shared.weight.
    let shapes = safetensors_shapes(&dir.join("model.safetensors"));
    assert_eq!(shapes["encoder.block.1.layer.0.SelfAttention.k.weight"], [16, 16]);
    assert_eq!(shapes["decoder.block.0.layer.1.EncDecAttention.v.weight"], [16, 16]);
    assert!(
        !shapes.keys().any(|name| name.contains("qkv") || name.contains(".kv.")),
        "{shapes:?}"
    );

    let ids = trained.root.join("export-t5-ids.json");
    write_ids(trained, &trained.t5, 3, &ids);
    let (_, logits_path) = logits(&trained.t5, &ids);
    let report = peer("hf_export.py", &dir, &ids, &logits_path);
    println!("{report}");
    assert!(report.contains("hf_export: pass"), "{report}");

    // The same run by a prefix of its id, looked up in the store: the same files.
    let id = trained.t5.file_name().unwrap().to_str().unwrap();
    let by_id = fresh(trained, "export-t5-by-id");
    let store = trained.root.join("runs");
    let output = export(&[
        &id[..6],
        "--store",
        store.to_str().unwrap(),
        "--hf",
        by_id.to_str().unwrap(),
    ]);
    assert!(output.status.success(), "{}", text(&output));
    for file in ["config.json", "model.safetensors"] {
        assert!(
            std::fs::read(dir.join(file)).unwrap() == std::fs::read(by_id.join(file)).unwrap(),
            "{file} differs"
        );
    }
}

#[test]
fn vanilla_export_documents_every_tensor() {
    let trained = trained();
    let dir = fresh(trained, "export-vanilla");
    let output = export(&[trained.vanilla.to_str().unwrap(), "--hf", dir.to_str().unwrap()]);
    let said = text(&output);
    assert!(output.status.success(), "{said}");
    assert!(said.contains("runner-vanilla.json"), "{said}");
    let layout: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("runner-vanilla.json")).unwrap()).unwrap();
    assert_eq!(layout["format"], "runner-vanilla");
    assert_eq!(layout["architecture"]["encoder_layers"], 2);
    assert_eq!(layout["runner"]["velocity_ids"], serde_json::json!([1, 129]));
    assert_eq!(layout["runner"]["decoder_prefix"], serde_json::json!([0]));
    assert_eq!(layout["runner"]["vocabulary"]["source_size"], 2377);
    let listed: std::collections::BTreeMap<String, Vec<u64>> = layout["tensors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|tensor| {
            let description = tensor["description"].as_str().unwrap();
            assert!(description.len() > 10, "{tensor}");
            let shape = serde_json::from_value(tensor["shape"].clone()).unwrap();
            (tensor["name"].as_str().unwrap().to_owned(), shape)
        })
        .collect();
    let written = safetensors_shapes(&dir.join("model.safetensors"));
    assert_eq!(listed, written);
    // runner's own names: the checkpoint's tensors, no more and no fewer.
    assert_eq!(
        written,
        safetensors_shapes(&trained.vanilla.join("checkpoint/model.safetensors"))
    );
    assert_eq!(written["decoder.layers.1.self_attn.qkv.weight"], [48, 16]);
}

#[test]
fn export_refuses_bad_input() {
    let trained = trained();
    let dir = trained.root.join("bad-export");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    // A run whose run never trained, and a T5 run that HF's T5 does not compute.
    let untrained = dir.join("untrained");
    std::fs::create_dir_all(&untrained).unwrap();
    std::fs::copy(trained.t5.join("config.json"), untrained.join("config.json")).unwrap();
    let post_norm = dir.join("post-norm");
    std::fs::create_dir_all(post_norm.join("checkpoint")).unwrap();
    let mut config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(trained.t5.join("config.json")).unwrap()).unwrap();
    config["model"]["norm"] = "post".into();
    config["model"]["tie-embeddings"] = false.into();
    std::fs::write(post_norm.join("config.json"), config.to_string()).unwrap();
    std::fs::copy(
        trained.t5.join("checkpoint/model.safetensors"),
        post_norm.join("checkpoint/model.safetensors"),
    )
    .unwrap();
    // A store where two run ids start with `ab`.
    let store = dir.join("store");
    for run in ["exp/abc1", "exp/abd2"] {
        std::fs::create_dir_all(store.join(run)).unwrap();
        std::fs::write(store.join(run).join("config.json"), "{}").unwrap();
    }
    let full = dir.join("full");
    std::fs::create_dir_all(&full).unwrap();
    std::fs::write(full.join("notes.txt"), "mine").unwrap();
    let file = dir.join("a-file");
    std::fs::write(&file, "").unwrap();

    let out = dir.join("out");
    let path = |p: &Path| p.to_str().unwrap().to_owned();
    let t5 = path(&trained.t5);
    let cases: Vec<(Vec<String>, &str)> = vec![
        (vec![path(&dir)], "is not a run folder (it has no config.json)"),
        (vec![path(&untrained)], "has not been trained"),
        (vec![path(&dir.join("nothing/here"))], "there is no folder"),
        (
            vec!["ffffzz".into(), "--store".into(), path(&store)],
            "has an id starting with `ffffzz`",
        ),
        (
            vec!["ab".into(), "--store".into(), path(&store)],
            "`ab` is the start of 2 run ids in",
        ),
        (vec!["ab".into(), "--store".into(), path(&store)], "exp/abc1, exp/abd2"),
        (
            vec![path(&post_norm)],
            "HuggingFace's T5 cannot express this run: `norm post`",
        ),
        (vec![path(&post_norm)], "`tie-embeddings #false`"),
        (vec![t5.clone(), "--hf".into(), path(&full)], "is not empty"),
        (vec![t5.clone(), "--hf".into(), path(&full)], "--force"),
        (vec![t5.clone(), "--hf".into(), path(&file)], "is not a folder"),
        (vec![t5.clone(), "--hf".into(), path(&file.join("sub"))], "cannot write"),
    ];
    for (mut args, expected) in cases {
        if !args.contains(&"--hf".to_owned()) {
            args.extend(["--hf".to_owned(), path(&out)]);
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let output = export(&args);
        let said = words(&text(&output));
        assert_eq!(output.status.code(), Some(1), "{expected}: {said}");
        assert!(said.contains(expected), "expected {expected:?} in:\n{said}");
        assert!(!said.contains("panicked"), "{said}");
    }
    // Nothing was written for a refused run.
    assert!(!out.exists());
    // --force writes into the full folder and leaves the other file.
    let output = export(&[&t5, "--hf", &path(&full), "--force"]);
    assert!(output.status.success(), "{}", text(&output));
    assert!(full.join("model.safetensors").is_file() && full.join("notes.txt").is_file());
}
