//! The `runner-worker` binary, seen from `runner`: found beside it, asked
//! what it sees (`info --json`), handed commands that need libtorch
//! (`bench`, `model`, `info`), and given one run at a time to train.
//!
//! Why a process per run: libtorch's random generator and thread count are
//! process-global, and training seeds the global generator at every step, so
//! two runs training at once in one process would disturb each other's
//! random streams. Each run gets its own process, pinned to its device and
//! thread count, and ends exactly as it would alone.
//!
//! The protocol ([`runner_job`]), over the child's standard streams:
//! - the parent starts `runner-worker serve` and writes one [`Job`] as a
//!   JSON line on its stdin, then keeps stdin open: closing it (on Ctrl-C,
//!   or because the parent died) asks the worker to stop at the next step,
//!   checkpoint and mark the run interrupted;
//! - the worker reports [`Event`]s as JSON lines on stdout, the last one
//!   [`Event::Finished`] with the run's result;
//! - whatever the worker writes on stderr is shown, and kept: a worker that
//!   ends without a result (a crash, a signal) is recorded as a failed run
//!   whose log ends with those lines;
//! - a worker dies with its parent: killed (`kill -9`, the OOM killer), the
//!   parent takes its workers along (Linux's parent-death signal), as if
//!   the run had trained in its process; the last checkpoint stays.

use std::collections::VecDeque;
use std::ffi::OsString;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use runner_job::{Environment, Event, Job, Outcome, Progress, RunResult};
use runner_store::{Recorded, RunStore};

use super::progress::Reporter;

/// The worker binary's file name, beside `runner`.
pub const BINARY: &str = "runner-worker";

/// Lines of a worker's stderr kept for a failed run's log.
const STDERR_TAIL: usize = 20;

/// The `runner-worker` binary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Worker {
    path: PathBuf,
}

/// Why the worker could not be used.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum WorkerError {
    /// No worker binary where it should be.
    #[error("{BINARY} is not beside runner: no file {}", path.display())]
    #[diagnostic(help(
        "runner trains through {BINARY}, built with it: run scripts/setup, or `cargo build --release` in the workspace"
    ))]
    Missing {
        /// Where it was looked for.
        path: PathBuf,
    },
    /// It could not be started or its answer was not understood.
    #[error("{BINARY} ({}) {what}", path.display())]
    Failed {
        /// The binary.
        path: PathBuf,
        /// What went wrong.
        what: String,
    },
}

impl Worker {
    /// The worker beside the binary at `exe` (its folder, [`BINARY`]).
    pub fn beside(exe: &Path) -> Result<Worker, WorkerError> {
        let path = exe.with_file_name(BINARY);
        if path.is_file() {
            Ok(Worker { path })
        } else {
            Err(WorkerError::Missing { path })
        }
    }

    /// The worker beside the running `runner`.
    pub fn beside_current_exe() -> Result<Worker, WorkerError> {
        let exe = std::env::current_exe().map_err(|e| WorkerError::Failed {
            path: PathBuf::from(BINARY),
            what: format!("cannot be found: the running binary's path is unknown ({e})"),
        })?;
        Worker::beside(&exe)
    }

    /// The binary's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// What the worker sees: libtorch, CUDA devices, CPU threads.
    pub fn environment(&self) -> Result<Environment, WorkerError> {
        let failed = |what: String| WorkerError::Failed {
            path: self.path.clone(),
            what,
        };
        let output = Command::new(&self.path)
            .args(["info", "--json"])
            .stdin(Stdio::null())
            .output()
            .map_err(|e| failed(format!("could not be started: {e}")))?;
        if !output.status.success() {
            return Err(failed(format!(
                "failed ({}): {}",
                output.status,
                String::from_utf8_lossy(&output.stderr).trim()
            )));
        }
        serde_json::from_slice(&output.stdout).map_err(|e| failed(format!("answered something unreadable: {e}")))
    }

    /// Runs a worker command (`bench ...`, `model ...`, `info ...`) with
    /// this process's standard streams; its exit code, or 1 when it died
    /// without one.
    pub fn forward(&self, args: &[OsString]) -> Result<u8, WorkerError> {
        let status = Command::new(&self.path)
            .args(args)
            .status()
            .map_err(|e| WorkerError::Failed {
                path: self.path.clone(),
                what: format!("could not be started: {e}"),
            })?;
        Ok(status.code().and_then(|c| u8::try_from(c).ok()).unwrap_or(1))
    }

    /// The parent's side: trains `job` in a worker process, shows its events
    /// through `reporter`, and returns its result. `stop` is forwarded by
    /// closing the worker's stdin. A worker that ends without a result is
    /// recorded in the store as a failed run.
    pub fn train(&self, job: &Job, store: &RunStore, reporter: &dyn Reporter, stop: &AtomicBool) -> RunResult {
        let started = Instant::now();
        let short = &job.run.id[..8];
        let result = |outcome: Outcome| RunResult {
            id: job.run.id.clone(),
            label: job.label.clone(),
            outcome,
            seconds: started.elapsed().as_secs_f64(),
            val_dist: None,
        };
        let mut command = Command::new(&self.path);
        command
            .arg("serve")
            .env("OMP_NUM_THREADS", job.threads.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some(spins) = job.spin_count {
            command.env("GOMP_SPINCOUNT", spins.to_string());
        }
        die_with_parent(&mut command);
        let spawned = command.spawn();
        let mut child = match spawned {
            Ok(child) => child,
            Err(e) => return result(Outcome::Failed(format!("cannot start a worker process: {e}"))),
        };
        let (Some(mut stdin), Some(stdout), Some(stderr)) =
            (child.stdin.take(), child.stdout.take(), child.stderr.take())
        else {
            unreachable!("the three streams are piped")
        };
        let text = serde_json::to_string(job).expect("jobs serialise");
        // A worker that died at once shows in its exit status below.
        let _ = writeln!(stdin, "{text}");
        let ended = AtomicBool::new(false);
        let (finished, tail) = std::thread::scope(|scope| {
            let ended = &ended;
            scope.spawn(move || {
                while !ended.load(Ordering::Relaxed) && !stop.load(Ordering::Relaxed) {
                    std::thread::sleep(Duration::from_millis(50));
                }
                drop(stdin);
            });
            let tail = scope.spawn(move || {
                let mut tail: VecDeque<String> = VecDeque::new();
                for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                    reporter.line(&format!("{short}: {line}"));
                    if tail.len() == STDERR_TAIL {
                        tail.pop_front();
                    }
                    tail.push_back(line);
                }
                tail
            });
            let mut progress: Option<Box<dyn Progress + '_>> = None;
            let mut finished: Option<RunResult> = None;
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                match serde_json::from_str::<Event>(&line) {
                    Ok(Event::Line { text }) => reporter.line(&text),
                    Ok(Event::Start { total, done }) => progress
                        .get_or_insert_with(|| reporter.run(&job.run.id, &job.label))
                        .start(total, done),
                    Ok(Event::Step { step, lr, loss }) => {
                        if let Some(progress) = &progress {
                            progress.step(step, lr, loss);
                        }
                    }
                    Ok(Event::Evaluating { epoch, on }) => {
                        if let Some(progress) = &progress {
                            progress.evaluating(epoch, on);
                        }
                    }
                    Ok(Event::Epoch { record }) => {
                        if let Some(progress) = &progress {
                            progress.epoch(&record);
                        }
                    }
                    Ok(Event::Finished { result }) => finished = Some(result),
                    // Something else wrote on the worker's stdout.
                    Err(_) => reporter.line(&format!("{short}: {line}")),
                }
            }
            ended.store(true, Ordering::Relaxed);
            (finished, tail.join().unwrap_or_default())
        });
        let status = child.wait();
        if let Some(finished) = finished {
            return finished;
        }
        let reason = match &status {
            Ok(status) => ended_how(*status),
            Err(e) => format!("the worker process could not be waited for: {e}"),
        };
        let interrupted = status.is_ok_and(|s| s.code() == Some(130) || signal(s) == Some(SIGINT));
        if interrupted && stop.load(Ordering::Relaxed) {
            // Ctrl-C twice: the worker quit at once; its last checkpoint stays.
            return result(Outcome::Interrupted);
        }
        // The worker is gone and its lock with it: record the failure under the lock.
        if let Ok(Some(claimed)) = store.claim(&job.run) {
            for line in &tail {
                let _ = claimed.log(&format!("worker: {line}"));
            }
            let _ = claimed.log(&format!("failed: {reason}"));
            let _ = claimed.record(&Recorded::Failed {
                reason: reason.clone(),
                log_tail: claimed.log_tail(STDERR_TAIL),
            });
        }
        result(Outcome::Failed(reason))
    }
}

/// Makes the child `command` starts receive SIGTERM when this process dies
/// (Linux; elsewhere a no-op: the worker then stops at its next step, its
/// stdin closed). A worker whose parent is gone quits at once at that
/// signal, recording its run as interrupted.
fn die_with_parent(command: &mut Command) {
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::process::CommandExt;
        let parent = std::process::id();
        // SAFETY: the closure runs in the forked child before exec and calls
        // only async-signal-safe functions (prctl, getppid, _exit).
        unsafe {
            command.pre_exec(move || {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
                // The parent died before the signal was armed.
                if u32::try_from(libc::getppid()).ok() != Some(parent) {
                    libc::_exit(1);
                }
                Ok(())
            });
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = command;
}

const SIGINT: i32 = 2;
const SIGKILL: i32 = 9;

/// How a worker that sent no result ended, in words.
fn ended_how(status: ExitStatus) -> String {
    match (status.code(), signal(status)) {
        (Some(code), _) => format!("the worker process exited with status {code} without a result"),
        (None, Some(SIGKILL)) => "the worker process was killed (SIGKILL; out of memory?)".to_owned(),
        (None, Some(signal)) => format!("the worker process was killed by signal {signal}"),
        (None, None) => "the worker process ended without a result".to_owned(),
    }
}

/// The signal that ended a process, where the platform has signals.
fn signal(status: ExitStatus) -> Option<i32> {
    #[cfg(unix)]
    {
        std::os::unix::process::ExitStatusExt::signal(&status)
    }
    #[cfg(not(unix))]
    {
        let _ = status;
        None
    }
}
