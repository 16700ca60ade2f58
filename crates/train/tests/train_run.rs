//! Training end to end on the bundled data with a tiny model: outputs,
//! baselines, and resume-from-checkpoint equal to an uninterrupted run.

use std::cell::Cell;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use runner_data::dataset;
use runner_data::source::Folders;
use runner_job::{Progress, Silent};
use runner_plan::PlannedRun;
use runner_plan::config::{CudaGraph, DevicePreference, RunConfig};
use runner_plan::{self as plan};
use runner_store::records::EpochRecord;
use runner_store::{ClaimedRun, RunFile, RunStore};
use runner_train::run::{self, Placement, TrainError};
use tch::Device;

const EXPERIMENT: &str = r#"
experiment tiny {
    dataset {
        window length=32 step=32
        quantize dstart=3 duration=3 velocity=3
    }
    model { d-model 16; d-ff 32; layers 1; heads 2 }
    train { epochs 3; batch-size 128; accumulate 1 }
    evaluate { examples 2 }
    schedule noam warmup=10
}
"#;

/// libtorch's random generator is process-wide: tests that train take turns.
static TRAINING: Mutex<()> = Mutex::new(());

fn temp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("runner-train-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn tiny_config(dir: &Path) -> RunConfig {
    let path = dir.join("tiny.kdl");
    std::fs::write(&path, EXPERIMENT).unwrap();
    plan::load(&path).unwrap().runs.remove(0).config
}

/// The run of `config` in a store under `dir` (experiment `name`), claimed.
fn claim(dir: &Path, name: &str, config: &RunConfig) -> ClaimedRun {
    let run = PlannedRun {
        id: config.id(),
        labels: Vec::new(),
        config: config.clone(),
        device: DevicePreference::Cpu,
    };
    RunStore::new(dir, name)
        .claim(&run)
        .unwrap()
        .expect("no other process holds it")
}

/// Training on the CPU with `threads` libtorch threads.
fn cpu(cuda_graph: CudaGraph, threads: usize) -> Placement {
    Placement {
        device: Device::Cpu,
        threads,
        cuda_graph,
        until_epoch: None,
    }
}

/// Sets the stop flag once `at` optimizer steps are done.
struct StopAt<'a> {
    at: u64,
    stop: &'a AtomicBool,
    steps: Cell<u64>,
}

impl Progress for StopAt<'_> {
    fn start(&self, _: u64, _: u64) {}
    fn step(&self, step: u64, _: f64, _: Option<f64>) {
        self.steps.set(step);
        if step == self.at {
            self.stop.store(true, Ordering::Relaxed);
        }
    }
    fn epoch(&self, _: &EpochRecord) {}
}

/// The epochs of a summary without their wall-clock times.
fn numbers(epochs: &[EpochRecord]) -> Vec<EpochRecord> {
    epochs
        .iter()
        .map(|e| EpochRecord {
            seconds: 0.0,
            ..e.clone()
        })
        .collect()
}

/// Trains `config` in a fresh store `name` with `threads` threads, stopped
/// halfway through its second epoch, then resumed with `resume_threads`.
fn interrupted_and_resumed(
    work: &Path,
    name: &str,
    config: &RunConfig,
    data: &dataset::Dataset,
    (threads, resume_threads): (usize, usize),
    at: u64,
) -> (ClaimedRun, runner_store::records::Summary) {
    let resumed = claim(work, name, config);
    let stop = AtomicBool::new(false);
    let stop_at = StopAt {
        at,
        stop: &stop,
        steps: Cell::new(0),
    };
    let first = run::train(config, data, &cpu(CudaGraph::Auto, threads), &resumed, &stop_at, &stop);
    assert!(
        matches!(first, Err(TrainError::Interrupted { step }) if step == at),
        "{first:?}"
    );
    assert!(!resumed.path(RunFile::Summary).exists());
    let never = AtomicBool::new(false);
    let placement = cpu(CudaGraph::Auto, resume_threads);
    let second = run::train(config, data, &placement, &resumed, &Silent, &never).unwrap();
    (resumed, second)
}

#[test]
fn a_resumed_run_ends_bitwise_where_an_uninterrupted_run_ends() {
    let _turn = TRAINING.lock().unwrap_or_else(|e| e.into_inner());
    let work = temp("resume");
    let config = tiny_config(&work);
    let data = dataset::build(&config, &Folders::new(&work), &work.join("cache")).unwrap();
    let never = AtomicBool::new(false);

    let straight = claim(&work, "straight", &config);
    let expected = run::train(&config, &data, &cpu(CudaGraph::Auto, 2), &straight, &Silent, &never).unwrap();
    let steps_per_epoch = expected.epochs[0].step;
    assert_eq!(expected.epochs.len(), 3);

    // Stop in the middle of the second epoch, then start again.
    let at = steps_per_epoch + steps_per_epoch / 2;
    let (resumed, second) = interrupted_and_resumed(&work, "resumed", &config, &data, (2, 2), at);
    assert_eq!(second.steps, expected.steps);
    assert_eq!(numbers(&second.epochs), numbers(&expected.epochs));
    assert_eq!(second.test, expected.test);
    let lr = |run: &ClaimedRun| std::fs::read_to_string(run.path(RunFile::Lr)).unwrap();
    assert_eq!(
        lr(&straight),
        lr(&resumed),
        "the learning-rate log continues seamlessly"
    );
    std::fs::remove_dir_all(&work).unwrap();
}

/// CPU results depend on libtorch's thread count; a run started with one
/// thread and resumed in a job given two (`--jobs 2` then `--jobs 1` on two
/// cores) keeps its one thread and ends bitwise as an uninterrupted
/// one-thread run.
#[test]
fn a_resumed_run_keeps_the_thread_count_it_started_with() {
    let _turn = TRAINING.lock().unwrap_or_else(|e| e.into_inner());
    let work = temp("threads");
    let config = tiny_config(&work);
    let data = dataset::build(&config, &Folders::new(&work), &work.join("cache")).unwrap();
    let never = AtomicBool::new(false);
    let straight = claim(&work, "one-thread", &config);
    let expected = run::train(&config, &data, &cpu(CudaGraph::Auto, 1), &straight, &Silent, &never).unwrap();
    assert_eq!(expected.threads, 1);

    let at = expected.epochs[0].step + 3;
    let (resumed, second) = interrupted_and_resumed(&work, "resumed-with-two", &config, &data, (1, 2), at);
    assert_eq!(second.threads, 1, "the summary records the count it trained with");
    assert_eq!(numbers(&second.epochs), numbers(&expected.epochs));
    assert_eq!(second.test, expected.test);
    let log = resumed.log_tail(50).join("\n");
    assert!(
        log.contains("resuming with the 1 libtorch threads it started with (this job was given 2)"),
        "{log}"
    );
    std::fs::remove_dir_all(&work).unwrap();
}

/// `--cuda-graph on` fails a run that cannot be captured (here: on the
/// CPU) before its first step; `off` trains eagerly; the summary records
/// the choice.
#[test]
fn cuda_graph_on_fails_where_it_cannot_capture_and_the_summary_records_the_choice() {
    let _turn = TRAINING.lock().unwrap_or_else(|e| e.into_inner());
    let work = temp("cuda-graph");
    let config = tiny_config(&work);
    let data = dataset::build(&config, &Folders::new(&work), &work.join("cache")).unwrap();
    let never = AtomicBool::new(false);
    let on = claim(&work, "on", &config);
    let refused = run::train(&config, &data, &cpu(CudaGraph::On, 2), &on, &Silent, &never);
    match refused {
        Err(TrainError::CudaGraph { reason }) => {
            assert!(reason.contains("need a CUDA device, not cpu"), "{reason}")
        }
        other => panic!("expected a CUDA-graph error, got {other:?}"),
    }
    assert!(!on.has_checkpoint(), "nothing was trained");
    let off = claim(&work, "off", &config);
    let summary = run::train(&config, &data, &cpu(CudaGraph::Off, 2), &off, &Silent, &never).unwrap();
    assert_eq!((summary.cuda_graph, summary.step.as_str()), (CudaGraph::Off, "eager"));
    let recorded = off.summary().unwrap();
    assert_eq!(recorded.cuda_graph, CudaGraph::Off);
    std::fs::remove_dir_all(&work).unwrap();
}

#[test]
fn a_run_writes_its_metrics_summary_and_examples() {
    let _turn = TRAINING.lock().unwrap_or_else(|e| e.into_inner());
    let work = temp("outputs");
    let config = tiny_config(&work);
    let data = dataset::build(&config, &Folders::new(&work), &work.join("cache")).unwrap();
    let folder = claim(&work, "tiny", &config);
    let summary = run::train(
        &config,
        &data,
        &cpu(CudaGraph::Auto, 2),
        &folder,
        &Silent,
        &AtomicBool::new(false),
    )
    .unwrap();

    let metrics = std::fs::read_to_string(folder.path(RunFile::Metrics)).unwrap();
    assert_eq!(metrics.lines().count(), 1 + 3, "{metrics}");
    let lr = std::fs::read_to_string(folder.path(RunFile::Lr)).unwrap();
    assert_eq!(lr.lines().count() as u64, 1 + summary.steps);
    // Noam with d_model 16 and warmup 10: lr(1) = 16^-0.5 * 1 * 10^-1.5.
    let first: f64 = lr.lines().nth(1).unwrap().split(',').nth(1).unwrap().parse().unwrap();
    assert!((first - 0.25 * 10f64.powf(-1.5)).abs() < 1e-12, "{first}");

    let examples: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(folder.path(RunFile::Predictions)).unwrap()).unwrap();
    assert_eq!(examples.as_array().unwrap().len(), 2);
    assert_eq!(examples[0]["truth"].as_array().unwrap().len(), 32);
    assert_eq!(examples[0]["greedy"].as_array().unwrap().len(), 32);

    // The baselines bracket a sensible model: the bin centre knows the coarse
    // bin the model sees, so it beats predicting the mean.
    assert!(
        summary.baseline_bin_centre.dist < summary.baseline_mean.dist,
        "{summary:?}"
    );
    let last = summary.epochs.last().unwrap();
    assert!(last.val.dist.is_finite() && last.val.notes > 0);
    assert!(last.greedy.is_some());
    assert!(summary.test.is_some());
    std::fs::remove_dir_all(&work).unwrap();
}

/// The run of experiment `text` (one run).
fn config_of(dir: &Path, text: &str) -> RunConfig {
    let path = dir.join("tiny.kdl");
    std::fs::write(&path, text).unwrap();
    plan::load(&path).unwrap().runs.remove(0).config
}

/// The tiny experiment with `settings` added at its top level (fields it
/// does not set already).
fn config_with(dir: &Path, settings: &str) -> RunConfig {
    config_of(
        dir,
        &EXPERIMENT.replacen("experiment tiny {", &format!("experiment tiny {{\n{settings}"), 1),
    )
}

/// One column of a CSV file with a header, by name (empty cells as `None`).
fn column(path: &Path, name: &str) -> Vec<Option<f64>> {
    let mut reader = csv::Reader::from_path(path).unwrap();
    let at = reader.headers().unwrap().iter().position(|h| h == name).unwrap();
    reader.records().map(|r| r.unwrap()[at].parse().ok()).collect()
}

/// midi-translation's loop: its `LambdaLR` steps after every batch, the
/// optimizer when `it % accum_iter == 0 or it == steps - 1`; the rate of an
/// optimizer step is Noam's at the index of its batch (0 read as 1).
#[test]
fn midi_translations_loop_counts_noam_per_batch_and_steps_where_it_does() {
    let _turn = TRAINING.lock().unwrap_or_else(|e| e.into_inner());
    let work = temp("original-loop");
    let config = config_of(
        &work,
        r#"
experiment tiny {
    dataset {
        window length=32 step=32
        quantize dstart=3 duration=3 velocity=3
    }
    model { d-model 16; d-ff 32; layers 1; heads 2; attention-dropout 0.2; }
    train { epochs 2; batch-size 16; accumulate 4 gradient=sum groups=first-alone; }
    evaluate { examples 2; argmax vocabulary; }
    schedule noam warmup=10 counts=batches
    loss label-smoothing epsilon=0.1 target=original
}
"#,
    );
    let data = dataset::build(&config, &Folders::new(&work), &work.join("cache")).unwrap();
    let folder = claim(&work, "tiny", &config);
    let summary = run::train(
        &config,
        &data,
        &cpu(CudaGraph::Auto, 2),
        &folder,
        &Silent,
        &AtomicBool::new(false),
    )
    .unwrap();

    let batches = data.train.len().div_ceil(16) as u64;
    let noam = |g: u64| {
        let g = g.max(1) as f64;
        16f64.powf(-0.5) * g.powf(-0.5).min(g * 10f64.powf(-1.5))
    };
    let expected: Vec<f64> = (0..2)
        .flat_map(|epoch| {
            (0..batches)
                .filter(move |it| it % 4 == 0 || *it == batches - 1)
                .map(move |it| noam(epoch * batches + it))
        })
        .collect();
    let logged: Vec<f64> = column(&folder.path(RunFile::Lr), "lr")
        .into_iter()
        .map(Option::unwrap)
        .collect();
    assert_eq!(logged.len(), expected.len(), "{batches} batches an epoch");
    assert_eq!(summary.steps, expected.len() as u64);
    for (step, (a, b)) in logged.iter().zip(&expected).enumerate() {
        assert!((a - b).abs() <= 1e-9 * b, "step {}: {a} vs {b}", step + 1);
    }
    // midi-translation's own val loss is reported; HF's is not.
    let metrics = folder.path(RunFile::Metrics);
    assert!(
        column(&metrics, "val_ls_kl")
            .iter()
            .all(|v| v.is_some_and(f64::is_finite))
    );
    assert!(column(&metrics, "val_ce_with_cls").iter().all(Option::is_none));
    std::fs::remove_dir_all(&work).unwrap();
}

/// midi-hf-transformers' decoder input: the CLS label is predicted and
/// counted in its own loss, and every note still gets one prediction.
#[test]
fn hf_shift_right_runs_report_the_loss_with_the_cls_label() {
    let _turn = TRAINING.lock().unwrap_or_else(|e| e.into_inner());
    let work = temp("shift-right");
    let config = config_with(
        &work,
        "encoder shared\nmodel { architecture t5; }\nloss cross-entropy\n\
         train { decoder-input shift-right; }",
    );
    let data = dataset::build(&config, &Folders::new(&work), &work.join("cache")).unwrap();
    let folder = claim(&work, "tiny", &config);
    let summary = run::train(
        &config,
        &data,
        &cpu(CudaGraph::Auto, 2),
        &folder,
        &Silent,
        &AtomicBool::new(false),
    )
    .unwrap();

    let last = summary.epochs.last().unwrap();
    let with_cls = last.val_ce_with_cls.expect("shift-right runs report HF's loss");
    assert!(
        with_cls.is_finite() && with_cls > 0.0 && with_cls != last.val_loss,
        "{last:?}"
    );
    assert!(last.val_ls_kl.is_none());
    assert_eq!(last.val.notes, data.validation.len() * 32);
    let examples: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(folder.path(RunFile::Predictions)).unwrap()).unwrap();
    assert_eq!(examples[0]["greedy"].as_array().unwrap().len(), 32);
    assert_eq!(examples[0]["teacher_forced"].as_array().unwrap().len(), 32);
    std::fs::remove_dir_all(&work).unwrap();
}
