//! Several runs at once: `jobs` slots, each training one run at a time in a
//! worker process (see [`worker`](super::worker)) on its own device.
//!
//! In: the selected runs, the store, the options and the number of jobs.
//! Out: one [`RunResult`] per selected run, in plan order. Slot `k` trains
//! on `cuda:k` (modulo the CUDA devices) for runs that go to CUDA without
//! naming a device, and on the CPU with `--threads` (else `cores / jobs`)
//! libtorch threads otherwise; a run that names `cuda:K` keeps it. Which device and thread
//! count each slot gets are pure functions of the inputs, tested here.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use runner_job::{Halt, Job, Outcome, RunResult};
use runner_plan::config::DevicePreference;
use runner_plan::{Plan, PlannedRun};
use runner_store::{RunState, RunStore};

use super::progress::Reporter;
use super::{OpenMp, Options, label_of, not_started, settled};

/// `--jobs` when not given: one per CUDA device when some run goes to CUDA
/// without naming a device, else one (runs on the CPU share its cores
/// better one at a time than split).
pub fn default_jobs(wanted: impl IntoIterator<Item = DevicePreference>, cuda_devices: usize) -> usize {
    let any_cuda = wanted
        .into_iter()
        .any(|w| matches!(w, DevicePreference::Auto | DevicePreference::Cuda));
    if cuda_devices > 0 && any_cuda { cuda_devices } else { 1 }
}

/// The device a run that asks for `wanted` trains on in slot `slot`.
pub fn place(wanted: DevicePreference, slot: usize, cuda_devices: usize) -> DevicePreference {
    match wanted {
        DevicePreference::Auto | DevicePreference::Cuda if cuda_devices > 0 => {
            DevicePreference::CudaIndex(slot % cuda_devices)
        }
        DevicePreference::Auto => DevicePreference::Cpu,
        // `cuda` without CUDA fails in the worker with the usual message.
        other => other,
    }
}

/// libtorch threads per job: the cores shared evenly, at least one.
pub fn threads_per_job(cores: usize, jobs: usize) -> usize {
    (cores / jobs.max(1)).max(1)
}

/// OpenMP's idle threads spin this long (`GOMP_SPINCOUNT`) on a busy machine.
pub const SHORT_SPIN: u64 = 1000;

/// `GOMP_SPINCOUNT` for workers that run `threads` libtorch threads each,
/// `jobs` at once, on `cores`: [`SHORT_SPIN`] when other processes' runnable
/// threads leave fewer cores than that, else libgomp's default (300,000 spins).
/// Measured on 2 cores (docs/perf.md, "A busy machine"): one quickstart
/// epoch with 2 threads takes 8.9 s quiet and 64.2 s beside two busy
/// processes with the default, 11.4 s and 24.8 s with 1,000 spins.
pub fn spin_count(openmp: OpenMp, cores: usize, threads: usize, jobs: usize) -> Option<u64> {
    match openmp {
        OpenMp::Runnable(others) if threads > 1 && others + threads * jobs > cores => Some(SHORT_SPIN),
        OpenMp::Runnable(_) | OpenMp::Given | OpenMp::Unknown => None,
    }
}

/// Runs to train, and how far.
pub(super) struct Batch<'a> {
    /// The runs with their state, in plan order.
    pub runs: &'a [(&'a PlannedRun, RunState)],
    /// Pause each run after this epoch (a search's rung); `None`: to the end.
    pub until_epoch: Option<u64>,
}

/// Trains the batch's runs in `jobs` worker processes at once.
pub(super) fn run(
    plan: &Plan,
    batch: &Batch<'_>,
    store: &RunStore,
    options: &Options,
    jobs: usize,
    reporter: &dyn Reporter,
    stop: &AtomicBool,
) -> Vec<RunResult> {
    let Batch {
        runs: selected,
        until_epoch,
    } = *batch;
    let cuda_devices = options.environment.cuda_devices;
    let threads = options
        .threads
        .unwrap_or_else(|| threads_per_job(options.environment.cpu_threads, jobs));
    let spin_count = spin_count(options.openmp, options.environment.cpu_threads, threads, jobs);
    let next = AtomicUsize::new(0);
    let halted = AtomicBool::new(false);
    let results: Mutex<Vec<Option<RunResult>>> = Mutex::new(vec![None; selected.len()]);
    std::thread::scope(|scope| {
        for slot in 0..jobs.min(selected.len()) {
            let (next, halted, results) = (&next, &halted, &results);
            scope.spawn(move || {
                while let Some((run, state)) = selected.get(next.fetch_add(1, Ordering::SeqCst)) {
                    let label = label_of(plan, run);
                    let result = if halted.load(Ordering::SeqCst) {
                        not_started(run, label, Halt::Unwritable)
                    } else if let Some(outcome) = settled(state, options.force, stop) {
                        RunResult {
                            id: run.id.clone(),
                            label,
                            outcome,
                            seconds: 0.0,
                            val_dist: None,
                        }
                    } else {
                        let job = Job {
                            experiment: plan.experiment.clone(),
                            run: (*run).clone(),
                            label,
                            device: place(options.device.unwrap_or(run.device), slot, cuda_devices),
                            threads,
                            spin_count,
                            cuda_graph: options.cuda_graph,
                            force: options.force,
                            until_epoch,
                            folders: options.folders.clone(),
                            runs_root: options.runs_root.clone(),
                        };
                        options.worker.train(&job, store, reporter, stop)
                    };
                    if matches!(result.outcome, Outcome::Unwritable { .. }) {
                        halted.store(true, Ordering::SeqCst);
                    }
                    reporter.finished(&result);
                    let index = selected.iter().position(|(r, _)| r.id == run.id).expect("selected");
                    results.lock().unwrap_or_else(|e| e.into_inner())[index] = Some(result);
                }
            });
        }
    });
    results
        .into_inner()
        .unwrap_or_else(|e| e.into_inner())
        .into_iter()
        .flatten()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use DevicePreference::*;

    #[test]
    fn one_job_per_gpu_when_runs_go_to_cuda_else_one() {
        assert_eq!(default_jobs([Auto, Auto], 4), 4);
        assert_eq!(default_jobs([Cpu, Cuda], 2), 2);
        assert_eq!(default_jobs([Auto], 0), 1);
        assert_eq!(default_jobs([Cpu, Cpu], 8), 1);
        assert_eq!(
            default_jobs([CudaIndex(1)], 8),
            1,
            "runs pinned to one GPU share it one at a time"
        );
        assert_eq!(default_jobs([], 2), 1);
    }

    #[test]
    fn slots_spread_over_the_gpus_and_pinned_runs_keep_theirs() {
        let placed: Vec<_> = (0..5).map(|slot| place(Auto, slot, 2)).collect();
        assert_eq!(
            placed,
            [CudaIndex(0), CudaIndex(1), CudaIndex(0), CudaIndex(1), CudaIndex(0)]
        );
        assert_eq!(place(Cuda, 3, 4), CudaIndex(3));
        assert_eq!(place(CudaIndex(2), 0, 4), CudaIndex(2));
        assert_eq!(place(Auto, 1, 0), Cpu);
        assert_eq!(place(Cpu, 1, 4), Cpu);
        assert_eq!(place(Cuda, 0, 0), Cuda);
    }

    #[test]
    fn openmp_spins_briefly_only_where_other_work_competes_for_the_cores() {
        assert_eq!(spin_count(OpenMp::Runnable(0), 2, 2, 1), None, "quiet");
        assert_eq!(
            spin_count(OpenMp::Runnable(2), 2, 2, 1),
            Some(SHORT_SPIN),
            "two busy processes"
        );
        assert_eq!(spin_count(OpenMp::Runnable(1), 2, 2, 1), Some(SHORT_SPIN));
        assert_eq!(spin_count(OpenMp::Runnable(1), 16, 4, 2), None, "room left");
        assert_eq!(spin_count(OpenMp::Runnable(6), 2, 1, 2), None, "one thread never spins");
        assert_eq!(spin_count(OpenMp::Given, 2, 2, 1), None, "the user's setting is kept");
        assert_eq!(spin_count(OpenMp::Unknown, 2, 2, 1), None);
    }

    #[test]
    fn cpu_threads_are_shared_evenly() {
        assert_eq!(threads_per_job(16, 4), 4);
        assert_eq!(threads_per_job(2, 2), 1);
        assert_eq!(threads_per_job(2, 3), 1);
        assert_eq!(threads_per_job(8, 1), 8);
        assert_eq!(threads_per_job(8, 0), 8);
    }
}
