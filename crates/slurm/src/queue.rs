//! What Slurm says about submitted jobs: `squeue` for the jobs the
//! controller still holds (queued, running, and recently ended), `sacct` for
//! older ones when the cluster keeps accounting.
//!
//! In: job ids. Out: a [`Queue`] mapping each array task (or plain job) to
//! its [`TaskState`], and the problems met asking (a missing command is not
//! an error: `runner status` then shows the runs store alone). The parsers
//! are pure functions over the commands' text.

use std::collections::HashMap;
use std::process::Command;

/// One array task's (or job's) state, as Slurm reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskState {
    /// Slurm's state word: PENDING, RUNNING, COMPLETED, FAILED, TIMEOUT,
    /// CANCELLED, PREEMPTED, NODE_FAIL, OUT_OF_MEMORY, ...
    pub state: String,
    /// Why it waits or ended, when Slurm says (`None` for "None").
    pub reason: Option<String>,
    /// The node(s) it ran on.
    pub nodes: Option<String>,
    /// Time used so far.
    pub elapsed: Option<String>,
}

impl TaskState {
    /// Whether the task still waits for resources or a dependency.
    pub fn is_queued(&self) -> bool {
        matches!(
            self.state.as_str(),
            "PENDING" | "CONFIGURING" | "REQUEUED" | "REQUEUE_HOLD" | "REQUEUE_FED" | "RESV_DEL_HOLD" | "SUSPENDED"
        )
    }

    /// Whether it is running now.
    pub fn is_running(&self) -> bool {
        matches!(
            self.state.as_str(),
            "RUNNING" | "COMPLETING" | "SIGNALING" | "STAGE_OUT"
        )
    }

    /// Whether Slurm ended it from outside: a time limit, a cancel, a
    /// preemption, a node failure, memory.
    pub fn was_killed(&self) -> bool {
        matches!(
            self.state.as_str(),
            "TIMEOUT" | "CANCELLED" | "PREEMPTED" | "NODE_FAIL" | "OUT_OF_MEMORY" | "BOOT_FAIL" | "DEADLINE"
        )
    }

    /// One line: state, reason or node, time.
    pub fn describe(&self) -> String {
        let mut text = self.state.clone();
        if self.is_queued() {
            if let Some(reason) = &self.reason {
                text += &format!(" ({reason})");
            }
        } else {
            if let Some(nodes) = &self.nodes {
                text += &format!(" on {nodes}");
            }
            if let Some(elapsed) = &self.elapsed {
                text += &format!(", {elapsed}");
            }
        }
        text
    }
}

/// A task of an array (`index` set) or a plain job.
pub type TaskKey = (String, Option<u32>);

/// What Slurm said about some jobs.
#[derive(Debug, Default)]
pub struct Queue {
    tasks: HashMap<TaskKey, TaskState>,
    /// Problems met asking, for a note under the status table.
    pub problems: Vec<String>,
}

impl Queue {
    /// Asks squeue about `jobs`, then sacct about what squeue no longer holds.
    pub fn query(jobs: &[String]) -> Queue {
        let mut queue = Queue::default();
        if jobs.is_empty() {
            return queue;
        }
        let mut gone = Vec::new();
        for job in jobs {
            let args = [
                "--noheader",
                "--array",
                "--states=all",
                &format!("--jobs={job}"),
                "--format=%F|%K|%T|%r|%N|%M",
            ];
            match run("squeue", &args) {
                Ok(text) => {
                    let found = parse_squeue(&text);
                    if found.is_empty() {
                        gone.push(job.clone());
                    }
                    queue.tasks.extend(found);
                }
                // The controller forgot the job (MinJobAge passed).
                Err(problem) if problem.contains("Invalid job id") => gone.push(job.clone()),
                Err(problem) => {
                    queue.problems.push(problem);
                    return queue;
                }
            }
        }
        if !gone.is_empty() {
            let args = [
                "--noheader",
                "--parsable2",
                "--allocations",
                &format!("--jobs={}", gone.join(",")),
                "--format=JobID,State,Reason,NodeList,Elapsed",
            ];
            match run("sacct", &args) {
                Ok(text) => {
                    for (key, state) in parse_sacct(&text) {
                        queue.tasks.entry(key).or_insert(state);
                    }
                }
                Err(problem) => queue.problems.push(format!(
                    "jobs {} have left the queue and sacct cannot tell how they ended: {problem}",
                    gone.join(", ")
                )),
            }
        }
        queue
    }

    /// The state of array task `index` of `job`.
    pub fn task(&self, job: &str, index: usize) -> Option<&TaskState> {
        let index = u32::try_from(index).ok()?;
        self.tasks.get(&(job.to_owned(), Some(index)))
    }

    /// The state of a plain job.
    pub fn job(&self, job: &str) -> Option<&TaskState> {
        self.tasks.get(&(job.to_owned(), None))
    }
}

/// Runs a Slurm command and returns its output, or a one-line problem.
fn run(program: &str, args: &[&str]) -> Result<String, String> {
    let output = Command::new(program)
        .args(args)
        .output()
        .map_err(|e| format!("`{program}` could not be started: {e}"))?;
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    } else {
        let stderr = String::from_utf8_lossy(&output.stderr);
        Err(format!("`{program}` failed: {}", stderr.trim()))
    }
}

fn some(text: &str) -> Option<String> {
    let text = text.trim();
    (!text.is_empty() && !matches!(text, "None" | "(null)" | "N/A" | "None assigned")).then(|| text.to_owned())
}

/// Parses `squeue --array --format=%F|%K|%T|%r|%N|%M`: array job id, task
/// index (`N/A` for a plain job), state, reason, nodes, time used.
pub fn parse_squeue(text: &str) -> Vec<(TaskKey, TaskState)> {
    text.lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.trim().split('|').collect();
            let [job, index, state, reason, nodes, elapsed] = fields[..] else {
                return None;
            };
            let index = match index.trim() {
                "N/A" => None,
                other => Some(other.parse().ok()?),
            };
            let state = TaskState {
                state: state.trim().to_owned(),
                reason: some(reason),
                nodes: some(nodes),
                elapsed: some(elapsed),
            };
            Some(((job.trim().to_owned(), index), state))
        })
        .collect()
}

/// Parses `sacct --parsable2 --allocations --format=JobID,State,Reason,NodeList,Elapsed`:
/// `JOB_INDEX` for an array task, `JOB` for a plain job; ranges of tasks
/// not started yet (`JOB_[4-7]`) are skipped. `CANCELLED by 1000` is
/// shortened to `CANCELLED`.
pub fn parse_sacct(text: &str) -> Vec<(TaskKey, TaskState)> {
    text.lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.trim().split('|').collect();
            let [id, state, reason, nodes, elapsed] = fields[..] else {
                return None;
            };
            let key = match id.split_once('_') {
                Some((job, index)) => (job.to_owned(), Some(index.parse().ok()?)),
                None => (id.to_owned(), None),
            };
            if !key.0.chars().all(|c| c.is_ascii_digit()) || key.0.is_empty() {
                return None;
            }
            let state = TaskState {
                state: state.split_whitespace().next()?.to_owned(),
                reason: some(reason),
                nodes: some(nodes),
                elapsed: some(elapsed),
            };
            Some((key, state))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn squeue_lines_become_array_tasks_and_plain_jobs() {
        let text = "\
12|0|COMPLETED|None|vm|0:14
12|1|RUNNING|None|node7|1:02
12|3|PENDING|JobArrayTaskLimit||0:00
13|N/A|PENDING|Dependency||0:00
12|2|TIMEOUT|TimeLimit|node3|4:00:00
garbage line
";
        let found: HashMap<TaskKey, TaskState> = parse_squeue(text).into_iter().collect();
        assert_eq!(found.len(), 5);
        let running = &found[&("12".to_owned(), Some(1))];
        assert!(running.is_running());
        assert_eq!(running.describe(), "RUNNING on node7, 1:02");
        let queued = &found[&("12".to_owned(), Some(3))];
        assert!(queued.is_queued());
        assert_eq!(queued.describe(), "PENDING (JobArrayTaskLimit)");
        let report = &found[&("13".to_owned(), None)];
        assert_eq!(report.describe(), "PENDING (Dependency)");
        let timeout = &found[&("12".to_owned(), Some(2))];
        assert!(timeout.was_killed() && !timeout.is_running());
        assert_eq!(timeout.describe(), "TIMEOUT on node3, 4:00:00");
        assert_eq!(found[&("12".to_owned(), Some(0))].reason, None);
    }

    #[test]
    fn sacct_lines_skip_ranges_and_shorten_cancelled() {
        let text = "\
40_0|COMPLETED|None|n1|00:00:12
40_1|CANCELLED by 1000|None|n2|00:00:03
40_[2-5%2]|PENDING|JobArrayTaskLimit|None assigned|00:00:00
41|NODE_FAIL|None|n1|00:10:00
";
        let found: HashMap<TaskKey, TaskState> = parse_sacct(text).into_iter().collect();
        assert_eq!(found.len(), 3);
        let cancelled = &found[&("40".to_owned(), Some(1))];
        assert_eq!(cancelled.state, "CANCELLED");
        assert!(cancelled.was_killed());
        assert_eq!(cancelled.describe(), "CANCELLED on n2, 00:00:03");
        assert!(found[&("41".to_owned(), None)].was_killed());
    }

    #[test]
    fn no_jobs_asks_nothing() {
        let queue = Queue::query(&[]);
        assert!(queue.problems.is_empty());
        assert!(queue.job("1").is_none());
    }
}
