//! `runner status`: each run's state in the runs store, merged with what
//! Slurm says about the array task that was last submitted for it, with how
//! far it trained and what it scored last.
//!
//! In: a plan and its store. Out: a [`Status`] — one [`Row`] per planned
//! run (its state, epochs done, latest metrics, and the ETA of a run
//! training now: [`Training`]), the collation jobs, and the problems met
//! asking Slurm — rendered as a table or as JSON. Slurm is asked only when
//! the experiment has submissions.

use std::fmt;

use serde::Serialize;
use tabled::builder::Builder;
use tabled::settings::Style;

use super::manifest::{self, Submission};
use super::queue::{Queue, TaskState};
use runner_plan::Plan;
use runner_store::progress::{self, Phase};
use runner_store::{RunFolder, RunState, RunStore};

/// One run's line.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Row {
    /// The run's id.
    pub id: String,
    /// Its labels as `axis=value` text.
    pub label: String,
    /// One word: done, running, queued, partial, failed, pending.
    pub state: &'static str,
    /// Its array task and what Slurm says about it, or `-`.
    pub slurm: String,
    /// What happened or happens next, when there is more to say.
    pub note: String,
    /// How far it trained and what it scored last.
    #[serde(flatten)]
    pub training: Training,
}

/// How far a run trained and what it scored last, read from its folder:
/// `progress.json` (where the run stands while it trains) and the last row
/// of `metrics.csv`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Training {
    /// Epochs finished, when it started.
    pub epoch: Option<u64>,
    /// Epochs in all.
    pub epochs: u64,
    /// Optimizer steps taken, when it started training.
    pub step: Option<u64>,
    /// Optimizer steps in all, when it started training.
    pub total_steps: Option<u64>,
    /// What it is doing, while it trains.
    pub phase: Option<Phase>,
    /// The running training loss last read, while it trains.
    pub loss: Option<f64>,
    /// Steps per second lately, while it trains.
    pub steps_per_second: Option<f64>,
    /// Seconds left, while it trains: its steps left at its recent rate
    /// ([`runner_store::progress::RunProgress::eta`]).
    pub eta_seconds: Option<f64>,
    /// The latest evaluated epoch.
    pub evaluated_epoch: Option<u64>,
    /// Its mean training loss.
    pub train_loss: Option<f64>,
    /// Its teacher-forced validation distance.
    pub val_dist: Option<f64>,
    /// Its greedy validation distance, when evaluated.
    pub greedy_dist: Option<f64>,
}

impl Training {
    /// What `folder` says about a run of `epochs` epochs in `state` (its
    /// row's word), at `now` (seconds since the Unix epoch). Only a run
    /// training now has a phase, a rate and an ETA.
    pub fn of(folder: &RunFolder, epochs: u64, state: &str, now: f64) -> Training {
        let latest = folder.latest_evaluation();
        let progress = folder.progress();
        let live = progress.as_ref().filter(|_| state == "running");
        Training {
            epoch: progress.as_ref().map(|p| p.epoch).or(latest.as_ref().map(|l| l.epoch)),
            epochs,
            step: progress.as_ref().map(|p| p.step),
            total_steps: progress.as_ref().map(|p| p.total_steps),
            phase: live.map(|p| p.phase),
            loss: live.and_then(|p| p.loss),
            steps_per_second: live.and_then(|p| p.steps_per_second),
            eta_seconds: live.and_then(|p| p.eta(now)),
            evaluated_epoch: latest.as_ref().map(|l| l.epoch),
            train_loss: latest.as_ref().map(|l| l.train_loss),
            val_dist: latest.as_ref().map(|l| l.val_dist),
            greedy_dist: latest.as_ref().and_then(|l| l.greedy_dist),
        }
    }

    /// What a run training now is doing, in words (empty otherwise).
    fn doing(&self) -> String {
        let (Some(phase), Some(step), Some(total)) = (self.phase, self.step, self.total_steps) else {
            return String::new();
        };
        let mut words = match phase {
            Phase::Training => format!("training: step {step}/{total}"),
            Phase::Evaluating => format!("evaluating epoch {}: step {step}/{total}", self.epoch.unwrap_or(0)),
        };
        if let Some(rate) = self.steps_per_second {
            words.push_str(&format!(", {rate:.1} steps/s"));
        }
        if let Some(loss) = self.loss {
            words.push_str(&format!(", loss {loss:.3}"));
        }
        words
    }
}

/// Seconds as `45s`, `3m 20s` or `2h 05m`.
pub fn duration(seconds: f64) -> String {
    let s = seconds.max(0.0).round() as u64;
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m {:02}s", s / 60, s % 60),
        _ => format!("{}h {:02}m", s / 3600, s % 3600 / 60),
    }
}

/// The state of one experiment's runs.
#[derive(Debug, Clone, Serialize)]
pub struct Status {
    /// One row per planned run, in plan order.
    #[serde(rename = "runs")]
    pub rows: Vec<Row>,
    /// One line per submission still current for some run: its folder, its
    /// jobs and the collation job's state.
    pub submissions: Vec<String>,
    /// The job ids to follow with squeue (none once Slurm holds none of
    /// them queued or running).
    pub jobs: Vec<String>,
    /// Problems met asking Slurm.
    pub problems: Vec<String>,
}

/// Where a run was last submitted.
#[derive(Debug, Clone, Copy)]
pub struct Placed<'a> {
    /// The submission.
    pub submission: &'a Submission,
    /// The run's array task index in it.
    pub index: usize,
    /// What Slurm says about that task, when it says anything.
    pub task: Option<&'a TaskState>,
}

/// Reads the store and the submissions, asks Slurm, and merges.
pub fn status(plan: &Plan, store: &RunStore) -> Status {
    let submissions = manifest::list(store.root());
    // The latest submission of each run.
    let placed: Vec<Option<(usize, usize)>> = plan
        .runs
        .iter()
        .map(|run| {
            submissions.iter().enumerate().rev().find_map(|(s, submission)| {
                let index = submission.manifest.runs.iter().position(|r| r.id == run.id)?;
                Some((s, index))
            })
        })
        .collect();
    let mut current: Vec<usize> = placed.iter().flatten().map(|(s, _)| *s).collect();
    current.sort_unstable();
    current.dedup();
    let jobs: Vec<String> = current
        .iter()
        .filter_map(|s| submissions[*s].jobs.as_ref())
        .flat_map(|jobs| std::iter::once(jobs.array.clone()).chain(jobs.report.clone()))
        .collect();
    let queue = Queue::query(&jobs);
    let placements: Vec<Option<Placed>> = placed
        .iter()
        .map(|placed| {
            placed.map(|(s, index)| {
                let submission = &submissions[s];
                let task = submission.jobs.as_ref().and_then(|j| queue.task(&j.array, index));
                Placed {
                    submission,
                    index,
                    task,
                }
            })
        })
        .collect();
    let now = progress::now();
    // A search's record says which partial runs it left behind.
    let search = plan.search.as_ref().and_then(|_| store.search().ok().flatten());
    let rows = plan
        .runs
        .iter()
        .zip(&placements)
        .map(|(run, &placed)| {
            let label = if run.labels.is_empty() {
                plan.experiment.clone()
            } else {
                run.label_text()
            };
            let stored = store.state(run);
            let mut row = row(&run.id, label, &stored, placed);
            if let Some(rung) = search.as_ref().and_then(|s| s.stopped_at(&run.id))
                && stored == RunState::Partial
            {
                row.note = format!("stopped by the search at epoch {}", rung.epoch);
            }
            row.training = Training::of(&store.folder(&run.id), run.config.train.epochs, row.state, now);
            row
        })
        .collect();
    let submission_lines = current
        .iter()
        .map(|s| {
            let submission = &submissions[*s];
            let folder = submission.dir.display();
            match &submission.jobs {
                None => format!("submission {} ({folder}): sbatch accepted nothing", submission.number),
                Some(jobs) => {
                    let report = match &jobs.report {
                        None => "no collation job".to_owned(),
                        Some(id) => format!(
                            "collation job {id} {}",
                            queue
                                .job(id)
                                .map_or_else(|| "(state unknown)".to_owned(), TaskState::describe)
                        ),
                    };
                    format!(
                        "submission {} ({folder}): array {}, {report}; logs in {}",
                        submission.number,
                        jobs.array,
                        submission.dir.join("logs").display()
                    )
                }
            }
        })
        .collect();
    // Following the jobs is worth saying only while Slurm still holds
    // some of them (or when it could not be asked).
    let live = |task: Option<&TaskState>| task.is_some_and(|t| t.is_queued() || t.is_running());
    let tasks_live = placements.iter().flatten().any(|p| live(p.task));
    let collation_live = current
        .iter()
        .filter_map(|s| submissions[*s].jobs.as_ref()?.report.as_deref())
        .any(|id| live(queue.job(id)));
    let follow = tasks_live || collation_live || !queue.problems.is_empty();
    Status {
        rows,
        submissions: submission_lines,
        jobs: if follow { jobs } else { Vec::new() },
        problems: queue.problems,
    }
}

/// Merges one run's state in the store with its array task's.
pub fn row(id: &str, label: String, stored: &RunState, placed: Option<Placed<'_>>) -> Row {
    let task = placed.and_then(|p| p.task);
    let queued = task.is_some_and(TaskState::is_queued);
    let running = task.is_some_and(TaskState::is_running);
    let killed = task.filter(|t| t.was_killed()).map(|t| t.state.as_str());
    let (state, note) = match stored {
        RunState::Done => ("done", String::new()),
        RunState::Running => ("running", String::new()),
        _ if running => ("running", String::new()),
        RunState::Failed(reason) if queued => ("queued", format!("failed before ({reason}); submitted again")),
        RunState::Failed(reason) => ("failed", reason.clone()),
        RunState::Damaged(damage) => ("damaged", damage.clone()),
        RunState::Partial if queued => ("queued", "resumes from its checkpoint".to_owned()),
        RunState::Partial => (
            "partial",
            match killed {
                Some(how) => format!("stopped by Slurm ({how}); `runner exec` resumes it from its checkpoint"),
                None => "`runner exec` resumes it from its checkpoint".to_owned(),
            },
        ),
        RunState::Pending if queued => ("queued", String::new()),
        RunState::Pending => (
            "pending",
            match (placed, task) {
                (Some(p), Some(t)) => format!(
                    "its task ended {} before training; see {}",
                    t.state,
                    p.submission.dir.join(format!("logs/task-{}.out", p.index)).display()
                ),
                _ => String::new(),
            },
        ),
    };
    let slurm = match placed {
        None => "-".to_owned(),
        Some(p) => match &p.submission.jobs {
            None => format!("#{}: not submitted", p.submission.number),
            Some(jobs) => format!(
                "#{}: {}_{} {}",
                p.submission.number,
                jobs.array,
                p.index,
                task.map_or_else(|| "(state unknown)".to_owned(), TaskState::describe)
            ),
        },
    };
    Row {
        id: id.to_owned(),
        label,
        state,
        slurm,
        note,
        training: Training::default(),
    }
}

impl Status {
    /// The status as JSON: `runs` (each row, with its training fields),
    /// `submissions`, `jobs` and `problems`.
    pub fn json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a status serialises")
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Columns that would be `-` for every run are left out.
        let greedy = self.rows.iter().any(|row| row.training.greedy_dist.is_some());
        let slurm = self.rows.iter().any(|row| row.slurm != "-");
        let mut builder = Builder::default();
        let mut header = vec!["run", "labels", "state", "epoch", "train loss", "val dist"];
        header.extend(greedy.then_some("greedy dist"));
        header.push("eta");
        header.extend(slurm.then_some("slurm"));
        header.push("note");
        builder.push_record(header);
        let or_dash = |value: Option<String>| value.unwrap_or_else(|| "-".to_owned());
        for row in &self.rows {
            let t = &row.training;
            let mut cells = vec![
                row.id[..8.min(row.id.len())].to_owned(),
                row.label.clone(),
                row.state.to_owned(),
                or_dash(t.epoch.map(|e| format!("{e}/{}", t.epochs))),
                or_dash(t.train_loss.map(|l| format!("{l:.3}"))),
                or_dash(t.val_dist.map(|d| format!("{d:.2}"))),
            ];
            if greedy {
                cells.push(or_dash(t.greedy_dist.map(|d| format!("{d:.2}"))));
            }
            cells.push(or_dash(t.eta_seconds.map(duration)));
            if slurm {
                cells.push(row.slurm.clone());
            }
            let doing = t.doing();
            cells.push(match (row.note.is_empty(), doing.is_empty()) {
                (_, true) => row.note.clone(),
                (true, false) => doing,
                (false, false) => format!("{doing}; {}", row.note),
            });
            builder.push_record(cells);
        }
        let mut table = builder.build();
        table.with(Style::rounded());
        writeln!(f, "{table}")?;
        let mut counts: Vec<(&str, usize)> = Vec::new();
        for row in &self.rows {
            match counts.iter_mut().find(|(word, _)| *word == row.state) {
                Some((_, n)) => *n += 1,
                None => counts.push((row.state, 1)),
            }
        }
        let counts: Vec<String> = counts.iter().map(|(word, n)| format!("{n} {word}")).collect();
        write!(
            f,
            "{}: {}",
            runner_plan::show::count(self.rows.len(), "run"),
            counts.join(", ")
        )?;
        for line in &self.submissions {
            write!(f, "\n{line}")?;
        }
        if !self.jobs.is_empty() {
            write!(f, "\nfollow with: squeue --jobs {}", self.jobs.join(","))?;
        }
        for problem in &self.problems {
            write!(f, "\nnote: {problem}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::manifest::{Jobs, Manifest};

    fn submission(jobs: Option<Jobs>) -> Submission {
        Submission {
            dir: PathBuf::from("/runs/x/slurm/2"),
            number: 2,
            manifest: Manifest {
                format: manifest::FORMAT,
                plan: runner_plan::Plan {
                    experiment: "x".to_owned(),
                    description: None,
                    runs: Vec::new(),
                    merged_duplicates: 0,
                    expectations: Vec::new(),
                    search: None,
                },
                experiment_file: PathBuf::from("/x.kdl"),
                store: PathBuf::from("/runs"),
                base_dir: PathBuf::from("/"),
                workdir: PathBuf::from("/"),
                bundled: PathBuf::from("/b"),
                libtorch_lib: None,
                device: None,
                cuda_graph: runner_plan::config::CudaGraph::Auto,
                threads: None,
                runs: Vec::new(),
            },
            jobs,
        }
    }

    fn jobs() -> Option<Jobs> {
        Some(Jobs {
            array: "40".to_owned(),
            report: Some("41".to_owned()),
            commands: Vec::new(),
        })
    }

    fn task(state: &str) -> TaskState {
        TaskState {
            state: state.to_owned(),
            reason: (state == "PENDING").then(|| "Priority".to_owned()),
            nodes: (state != "PENDING").then(|| "n1".to_owned()),
            elapsed: Some("0:30".to_owned()),
        }
    }

    fn merged(stored: RunState, state: Option<&str>) -> Row {
        let submission = submission(jobs());
        let task = state.map(task);
        let placed = Placed {
            submission: &submission,
            index: 3,
            task: task.as_ref(),
        };
        row("0123456789abcdef", "lr=1".to_owned(), &stored, Some(placed))
    }

    #[test]
    fn a_run_never_submitted_shows_the_store_alone() {
        let row = row("0123456789abcdef", "lr=1".to_owned(), &RunState::Pending, None);
        assert_eq!((row.state, row.slurm.as_str(), row.note.as_str()), ("pending", "-", ""));
    }

    #[test]
    fn queued_and_running_tasks_come_from_slurm() {
        let queued = merged(RunState::Pending, Some("PENDING"));
        assert_eq!(queued.state, "queued");
        assert_eq!(queued.slurm, "#2: 40_3 PENDING (Priority)");
        let running = merged(RunState::Pending, Some("RUNNING"));
        assert_eq!(running.state, "running");
        assert_eq!(running.slurm, "#2: 40_3 RUNNING on n1, 0:30");
    }

    #[test]
    fn the_store_decides_once_a_run_is_done_or_failed() {
        assert_eq!(merged(RunState::Done, Some("COMPLETED")).state, "done");
        let failed = merged(RunState::Failed("NaN loss".to_owned()), Some("FAILED"));
        assert_eq!((failed.state, failed.note.as_str()), ("failed", "NaN loss"));
        let retried = merged(RunState::Failed("NaN loss".to_owned()), Some("PENDING"));
        assert_eq!(retried.state, "queued");
        assert!(retried.note.contains("NaN loss"), "{}", retried.note);
    }

    #[test]
    fn a_task_killed_by_slurm_leaves_a_run_that_resumes() {
        let row = merged(RunState::Partial, Some("TIMEOUT"));
        assert_eq!(row.state, "partial");
        assert_eq!(
            row.note,
            "stopped by Slurm (TIMEOUT); `runner exec` resumes it from its checkpoint"
        );
    }

    #[test]
    fn a_task_that_ended_before_training_points_at_its_log() {
        let row = merged(RunState::Pending, Some("FAILED"));
        assert_eq!(row.state, "pending");
        assert_eq!(
            row.note,
            "its task ended FAILED before training; see /runs/x/slurm/2/logs/task-3.out"
        );
    }

    #[test]
    fn a_refused_submission_and_a_forgotten_task_say_so() {
        let refused = submission(None);
        let placed = Placed {
            submission: &refused,
            index: 0,
            task: None,
        };
        let row = row("0123456789abcdef", String::new(), &RunState::Pending, Some(placed));
        assert_eq!(row.slurm, "#2: not submitted");
        assert_eq!(merged(RunState::Done, None).slurm, "#2: 40_3 (state unknown)");
    }

    #[test]
    fn the_table_shows_epochs_metrics_and_the_eta_of_a_run_training_now() {
        let mut running = row("0123456789abcdef", "lr=1".to_owned(), &RunState::Running, None);
        running.training = Training {
            epoch: Some(1),
            epochs: 3,
            step: Some(40),
            total_steps: Some(120),
            phase: Some(Phase::Training),
            loss: Some(3.214),
            steps_per_second: Some(12.5),
            eta_seconds: Some(200.4),
            evaluated_epoch: Some(1),
            train_loss: Some(3.5),
            val_dist: Some(12.25),
            greedy_dist: None,
        };
        let mut evaluating = running.clone();
        evaluating.id = "1111111111111111".to_owned();
        evaluating.training.phase = Some(Phase::Evaluating);
        evaluating.training.epoch = Some(2);
        evaluating.training.loss = None;
        let mut done = row("fedcba9876543210", "lr=2".to_owned(), &RunState::Done, None);
        done.training = Training {
            epoch: Some(3),
            epochs: 3,
            evaluated_epoch: Some(3),
            train_loss: Some(2.75),
            val_dist: Some(11.5),
            greedy_dist: Some(13.125),
            ..Training::default()
        };
        let pending = row("2222222222222222", "lr=3".to_owned(), &RunState::Pending, None);
        let status = Status {
            rows: vec![running, evaluating, done, pending],
            submissions: Vec::new(),
            jobs: Vec::new(),
            problems: Vec::new(),
        };
        // No submission: no slurm column.
        let expected = "\
╭──────────┬────────┬─────────┬───────┬────────────┬──────────┬─────────────┬────────┬─────────────────────────────────────────────────╮
│ run      │ labels │ state   │ epoch │ train loss │ val dist │ greedy dist │ eta    │ note                                            │
├──────────┼────────┼─────────┼───────┼────────────┼──────────┼─────────────┼────────┼─────────────────────────────────────────────────┤
│ 01234567 │ lr=1   │ running │ 1/3   │ 3.500      │ 12.25    │ -           │ 3m 20s │ training: step 40/120, 12.5 steps/s, loss 3.214 │
│ 11111111 │ lr=1   │ running │ 2/3   │ 3.500      │ 12.25    │ -           │ 3m 20s │ evaluating epoch 2: step 40/120, 12.5 steps/s   │
│ fedcba98 │ lr=2   │ done    │ 3/3   │ 2.750      │ 11.50    │ 13.12       │ -      │                                                 │
│ 22222222 │ lr=3   │ pending │ -     │ -          │ -        │ -           │ -      │                                                 │
╰──────────┴────────┴─────────┴───────┴────────────┴──────────┴─────────────┴────────┴─────────────────────────────────────────────────╯
4 runs: 2 running, 1 done, 1 pending";
        assert_eq!(status.to_string(), expected);
        let json: serde_json::Value = serde_json::from_str(&status.json()).unwrap();
        let first = &json["runs"][0];
        assert_eq!((first["epoch"].as_u64(), first["epochs"].as_u64()), (Some(1), Some(3)));
        assert_eq!(first["phase"], "training");
        assert_eq!(first["eta_seconds"], 200.4);
        assert_eq!(json["runs"][2]["greedy_dist"], 13.125);
        assert!(json["runs"][3]["val_dist"].is_null());
    }

    #[test]
    fn durations_are_short() {
        assert_eq!(duration(44.6), "45s");
        assert_eq!(duration(200.0), "3m 20s");
        assert_eq!(duration(7500.0), "2h 05m");
        assert_eq!(duration(-3.0), "0s");
    }

    #[test]
    fn the_table_ends_with_counts_and_how_to_follow() {
        let status = Status {
            rows: vec![
                merged(RunState::Done, Some("COMPLETED")),
                merged(RunState::Pending, Some("PENDING")),
                merged(RunState::Done, Some("COMPLETED")),
            ],
            submissions: vec!["submission 2".to_owned()],
            jobs: vec!["40".to_owned(), "41".to_owned()],
            problems: vec!["sacct: accounting disabled".to_owned()],
        };
        let text = status.to_string();
        assert!(text.contains("│ 01234567 │ lr=1"), "{text}");
        assert!(
            text.ends_with(
                "3 runs: 2 done, 1 queued\nsubmission 2\nfollow with: squeue --jobs 40,41\nnote: sacct: accounting disabled"
            ),
            "{text}"
        );
    }
}
