//! The batch scripts and the sbatch command lines of a submission, as text.
//!
//! In: a [`Manifest`] and the user's [`Request`]. Out: `task.sh` (one array
//! task: check the binary and libtorch are visible on the node, set the
//! library path and the thread count, then `exec runner slurm-task`),
//! `report.sh` (the collation job: `exec runner report`) and the arguments
//! for sbatch. Pure functions: nothing is written or run here.

use std::path::Path;

use super::Request;
use super::manifest::Manifest;

/// Seconds before the time limit at which Slurm sends SIGINT to a task:
/// `runner` then checkpoints at the next step and stops, and a later
/// submission resumes the run.
pub const STOP_BEFORE_LIMIT_S: u32 = 60;

/// Quotes a string for a POSIX shell.
pub fn quote(text: &str) -> String {
    if !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-+=:,@%".contains(c))
    {
        return text.to_owned();
    }
    format!("'{}'", text.replace('\'', r"'\''"))
}

fn path(path: &Path) -> String {
    quote(&path.display().to_string())
}

/// The lines every script starts with: the frozen binary and libtorch must
/// be visible on the node; then the library path and the thread count.
fn preamble(manifest: &Manifest, runner: &Path, what: &str) -> String {
    let mut text = format!(
        "#!/bin/bash\n\
         # {what}\n\
         # Written by `runner exec --backend slurm`; the manifest beside it holds the runs.\n\
         set -u\n\
         runner={runner}\n\
         if [ ! -x \"$runner\" ]; then\n  \
           echo \"runner: $runner is not visible on $(hostname): the runs store must be on a file system every node shares\" >&2\n  \
           exit 2\n\
         fi\n",
        runner = path(runner),
    );
    if let Some(lib) = &manifest.libtorch_lib {
        text += &format!(
            "libtorch={lib}\n\
             if [ ! -e \"$libtorch/libtorch_cpu.so\" ]; then\n  \
               echo \"runner: no libtorch at $libtorch on $(hostname): install libtorch 2.11 at that path on every node, or submit with --libtorch DIR\" >&2\n  \
               exit 2\n\
             fi\n\
             export LD_LIBRARY_PATH=\"$libtorch${{LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}}\"\n",
            lib = path(lib)
        );
    }
    // The bundled data's folder travels in the manifest.
    text += "# libtorch uses the CPUs Slurm gave the task, not every CPU of the node.\n\
         export OMP_NUM_THREADS=\"${SLURM_CPUS_PER_TASK:-${SLURM_CPUS_ON_NODE:-${OMP_NUM_THREADS:-1}}}\"\n";
    text
}

/// `task.sh`: array task `$SLURM_ARRAY_TASK_ID` trains that run of the manifest.
pub fn task(manifest: &Manifest, dir: &Path, runner: &Path) -> String {
    format!(
        "{}exec \"$runner\" slurm-task {} --index \"$SLURM_ARRAY_TASK_ID\"\n",
        preamble(
            manifest,
            runner,
            &format!(
                "One array task: trains one run of experiment {}.",
                manifest.plan.experiment
            )
        ),
        path(&dir.join(super::manifest::MANIFEST)),
    )
}

/// `report.sh`: the collation job writes the experiment's report from the
/// submitted plan (the manifest beside it), whatever became of the file.
pub fn report(manifest: &Manifest, dir: &Path, runner: &Path) -> String {
    format!(
        "{}exec \"$runner\" slurm-report {}\n",
        preamble(
            manifest,
            runner,
            &format!(
                "The collation job: writes the report of experiment {} once every array task has ended.",
                manifest.plan.experiment
            )
        ),
        path(&dir.join(super::manifest::MANIFEST)),
    )
}

/// The arguments of the sbatch that submits the job array of `count` tasks.
pub fn array_args(manifest: &Manifest, request: &Request, dir: &Path, count: usize) -> Vec<String> {
    let throttle = request.max_parallel.map(|k| format!("%{k}")).unwrap_or_default();
    let mut args = vec![
        "--parsable".to_owned(),
        format!("--array=0-{}{throttle}", count.saturating_sub(1)),
        format!("--job-name=runner-{}", manifest.plan.experiment),
        format!("--output={}", dir.join("logs/task-%a.out").display()),
        format!("--chdir={}", manifest.workdir.display()),
        format!("--signal=B:INT@{STOP_BEFORE_LIMIT_S}"),
    ];
    args.extend(common(request));
    if let Some(time) = &request.time {
        args.push(format!("--time={time}"));
    }
    if let Some(gpus) = request.gpus_per_run.filter(|n| *n > 0) {
        args.push(format!("--gres=gpu:{gpus}"));
    }
    args.extend(request.sbatch_args.iter().cloned());
    args.push(dir.join("task.sh").display().to_string());
    args
}

/// The arguments of the sbatch that submits the collation job, which waits
/// for every task of `array` to end, however it ends.
pub fn report_args(manifest: &Manifest, request: &Request, dir: &Path, array: &str) -> Vec<String> {
    let mut args = vec![
        "--parsable".to_owned(),
        format!("--dependency=afterany:{array}"),
        format!("--job-name=runner-{}-report", manifest.plan.experiment),
        format!("--output={}", dir.join("logs/report.out").display()),
        format!("--chdir={}", manifest.workdir.display()),
    ];
    args.extend(common(request));
    args.extend(request.sbatch_args.iter().cloned());
    args.push(dir.join("report.sh").display().to_string());
    args
}

/// The options both jobs share.
fn common(request: &Request) -> Vec<String> {
    request.partition.iter().map(|p| format!("--partition={p}")).collect()
}

/// The job id in sbatch's `--parsable` answer (`ID` or `ID;CLUSTER`).
pub fn parse_job_id(output: &str) -> Option<String> {
    let id = output.trim().split(';').next()?.trim();
    (!id.is_empty() && id.chars().all(|c| c.is_ascii_digit())).then(|| id.to_owned())
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    fn manifest() -> Manifest {
        Manifest {
            format: super::super::manifest::FORMAT,
            plan: runner_plan::Plan {
                experiment: "sweep".to_owned(),
                description: None,
                runs: Vec::new(),
                merged_duplicates: 0,
                expectations: Vec::new(),
                search: None,
            },
            experiment_file: PathBuf::from("/home/me/exp/sweep.kdl"),
            store: PathBuf::from("/shared/runs"),
            base_dir: PathBuf::from("/home/me/exp"),
            workdir: PathBuf::from("/home/me"),
            bundled: PathBuf::from("/home/me/runner/data/bundled"),
            libtorch_lib: Some(PathBuf::from("/opt/torch/lib")),
            device: None,
            cuda_graph: runner_plan::config::CudaGraph::Auto,
            threads: None,
            runs: Vec::new(),
        }
    }

    #[test]
    fn quoting_leaves_plain_paths_and_protects_the_rest() {
        assert_eq!(quote("/a/b-c_d.kdl"), "/a/b-c_d.kdl");
        assert_eq!(quote("my runs"), "'my runs'");
        assert_eq!(quote("it's"), r"'it'\''s'");
        assert_eq!(quote(""), "''");
        assert_eq!(quote("$HOME"), "'$HOME'");
    }

    #[test]
    fn the_array_has_one_task_per_run_throttled_and_the_users_options_last() {
        let request = Request {
            partition: Some("gpu".to_owned()),
            gpus_per_run: Some(2),
            max_parallel: Some(3),
            time: Some("4:00:00".to_owned()),
            sbatch_args: vec!["--account=proj".to_owned()],
            libtorch: None,
        };
        let dir = Path::new("/shared/runs/sweep/slurm/1");
        assert_eq!(
            array_args(&manifest(), &request, dir, 8),
            [
                "--parsable",
                "--array=0-7%3",
                "--job-name=runner-sweep",
                "--output=/shared/runs/sweep/slurm/1/logs/task-%a.out",
                "--chdir=/home/me",
                "--signal=B:INT@60",
                "--partition=gpu",
                "--time=4:00:00",
                "--gres=gpu:2",
                "--account=proj",
                "/shared/runs/sweep/slurm/1/task.sh",
            ]
        );
        assert_eq!(
            report_args(&manifest(), &request, dir, "123"),
            [
                "--parsable",
                "--dependency=afterany:123",
                "--job-name=runner-sweep-report",
                "--output=/shared/runs/sweep/slurm/1/logs/report.out",
                "--chdir=/home/me",
                "--partition=gpu",
                "--account=proj",
                "/shared/runs/sweep/slurm/1/report.sh",
            ]
        );
    }

    #[test]
    fn without_options_the_array_is_unthrottled_and_asks_for_no_gpu() {
        let args = array_args(&manifest(), &Request::default(), Path::new("/s"), 1);
        assert!(args.contains(&"--array=0-0".to_owned()), "{args:?}");
        assert!(!args.iter().any(|a| a.starts_with("--gres") || a.starts_with("--time")));
    }

    #[test]
    fn the_task_script_checks_the_node_then_execs_the_frozen_binary() {
        let dir = Path::new("/shared/runs/sweep/slurm/1");
        let text = task(&manifest(), dir, &dir.join("runner"));
        assert!(text.starts_with("#!/bin/bash\n"), "{text}");
        assert!(text.contains("runner=/shared/runs/sweep/slurm/1/runner\n"), "{text}");
        assert!(text.contains("libtorch=/opt/torch/lib\n"), "{text}");
        assert!(text.contains("export LD_LIBRARY_PATH=\"$libtorch${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}\""));
        assert!(text.ends_with(
            "exec \"$runner\" slurm-task /shared/runs/sweep/slurm/1/manifest.json --index \"$SLURM_ARRAY_TASK_ID\"\n"
        ));
        let report = report(&manifest(), dir, &dir.join("runner"));
        assert!(
            report.ends_with("exec \"$runner\" slurm-report /shared/runs/sweep/slurm/1/manifest.json\n"),
            "{report}"
        );
    }

    #[test]
    fn without_a_libtorch_folder_the_binary_keeps_its_rpath() {
        let mut manifest = manifest();
        manifest.libtorch_lib = None;
        let text = task(&manifest, Path::new("/s"), Path::new("/s/runner"));
        assert!(!text.contains("LD_LIBRARY_PATH"), "{text}");
    }

    #[test]
    fn job_ids_are_read_from_sbatchs_parsable_answer() {
        assert_eq!(parse_job_id("1234\n").as_deref(), Some("1234"));
        assert_eq!(parse_job_id("1234;cluster\n").as_deref(), Some("1234"));
        assert_eq!(parse_job_id("sbatch: error: oops"), None);
        assert_eq!(parse_job_id(""), None);
    }
}
