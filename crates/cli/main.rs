//! The `runner` binary: parses the command line and hands each subcommand to
//! its stage. It never loads libtorch: training, `bench`, `model`, `info`,
//! `predict` and `export` run in `runner-worker`, found beside it. Exit
//! codes: 0 success, 1 failure, 2 usage error (from clap).

mod cli;

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use clap::{CommandFactory, Parser};
use cli::{Backend, Cli, Command, DataCommand, SlurmArgs};
use runner_data::source::{self, Folders};
use runner_data::{dataset, export, report, table};
use runner_exec::{self as exec, Worker, progress::Bars};
use runner_job::{Halt, Outcome, say, say_text};
use runner_plan::config::DevicePreference;
use runner_plan::show::{self, RunFacts};
use runner_plan::{self as plan, Plan, PlannedRun};
use runner_store::{RunState, RunStore};

fn main() -> ExitCode {
    let cli = Cli::parse();
    if cli.version {
        return version();
    }
    let Some(command) = cli.command else {
        // No subcommand: show the help on stderr and fail, like a usage error.
        let _ = Cli::command().write_help(&mut std::io::stderr());
        return ExitCode::from(2);
    };
    match run(command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(report) => {
            eprintln!("{report:?}");
            ExitCode::FAILURE
        }
    }
}

fn run(command: Command) -> miette::Result<()> {
    match command {
        Command::Check { files } => check(&files),
        Command::Plan { file, json, store } => {
            let plan = plan::load(&file)?;
            if json {
                say!("{}", show::json(&plan));
            } else {
                let store = RunStore::new(&store, &plan.experiment);
                let windows = training_windows(&plan, &file, store.root());
                say!(
                    "{}",
                    show::table(&plan, &|run| RunFacts {
                        status: store.state(run).word().to_owned(),
                        steps: windows(run).map(|w| run.config.steps(w)),
                    })
                );
            }
            Ok(())
        }
        Command::Exec {
            file,
            only,
            failed_only,
            force,
            device,
            jobs,
            threads,
            cuda_graph,
            dry_run,
            store,
            backend,
            slurm,
        } => {
            // Before anything slow (the worker's probe loads libtorch): a
            // SIGTERM from then on stops the exec cleanly, never by default.
            let stop = (backend == Backend::Local && !dry_run).then(stop_on_signal);
            let plan = plan::load(&file)?;
            let device = match device.as_deref().map(DevicePreference::parse) {
                None => None,
                Some(Some(device)) => Some(device),
                Some(None) => miette::bail!(
                    help = "use cpu, cuda or cuda:K",
                    "unknown device `{}`",
                    device.unwrap_or_default()
                ),
            };
            let worker = Worker::beside_current_exe()?;
            let environment = worker.environment()?;
            let options = exec::Options {
                only,
                failed_only,
                force,
                device,
                jobs: jobs.map(usize::from),
                threads: threads.map(usize::from),
                openmp: exec::OpenMp::here(),
                cuda_graph,
                folders: folders(&file),
                runs_root: store.clone(),
                worker,
                environment,
            };
            let store = RunStore::new(&store, &plan.experiment);
            if backend == Backend::Slurm {
                return submit_to_slurm(&plan, &file, &store, &options, slurm, dry_run);
            }
            if let Some(flag) = slurm.given().first() {
                miette::bail!(help = "add --backend slurm", "{flag} is an option of the Slurm backend");
            }
            let selected = exec::select(&plan, &store, &options)?;
            devices_exist(&selected, &options)?;
            if dry_run {
                for (run, state) in &selected {
                    say!("{} {} ({})", &run.id[..8], run.label_text(), state.word());
                }
                say!(
                    "{} of {} selected; {} at a time",
                    selected.len(),
                    show::count(plan.runs.len(), "run"),
                    exec::jobs(&selected, &options)
                );
                return Ok(());
            }
            train(&plan, &selected, &store, &options, &stop.unwrap_or_default())
        }
        Command::Status { file, json, store } => {
            let plan = plan::load(&file)?;
            let store = RunStore::new(&store, &plan.experiment);
            let status = runner_slurm::status::status(&plan, &store);
            if json {
                say!("{}", status.json());
            } else {
                say!("{status}");
            }
            Ok(())
        }
        Command::SlurmTask { manifest, index } => {
            let stop = stop_on_signal();
            let worker = Worker::beside_current_exe()?;
            let environment = worker.environment()?;
            let (plan, options) = runner_slurm::task(&manifest, index, worker, environment)?;
            let store = RunStore::new(&options.runs_root, &plan.experiment);
            let selected = exec::select(&plan, &store, &options)?;
            train(&plan, &selected, &store, &options, &stop)
        }
        Command::Info { check_devices } => {
            let flags = if check_devices {
                vec!["--check-devices".into()]
            } else {
                Vec::new()
            };
            forward("info", flags)
        }
        Command::Data { action } => data(action),
        Command::Bench { args } => forward("bench", args),
        Command::Model { args } => forward("model", args),
        Command::Export { args } => forward("export", args),
        Command::Predict { args } => forward("predict", args),
        Command::SlurmReport { manifest } => {
            let manifest = runner_slurm::manifest::Manifest::read(&manifest)?;
            let store = RunStore::new(&manifest.store, &manifest.plan.experiment);
            let written = runner_report::write(&manifest.plan, &store, None)?;
            tell(&written);
            Ok(())
        }
        Command::Report { files, output, store } => {
            let mut plans: Vec<(PathBuf, Plan)> = Vec::new();
            for file in files {
                let planned = plan::load(&file)?;
                if let Some((other, _)) = plans.iter().find(|(_, p)| p.experiment == planned.experiment) {
                    miette::bail!(
                        help = "compare experiments of different names (their runs live in <store>/<name>/)",
                        "{} and {} are both experiment `{}`",
                        other.display(),
                        file.display(),
                        planned.experiment
                    );
                }
                plans.push((file, planned));
            }
            let stores: Vec<RunStore> = plans
                .iter()
                .map(|(_, p)| RunStore::new(&store, &p.experiment))
                .collect();
            let experiments: Vec<(&Plan, &RunStore)> = plans.iter().map(|(_, p)| p).zip(&stores).collect();
            let written = runner_report::write_all(&experiments, output.as_deref())?;
            tell(&written);
            Ok(())
        }
    }
}

/// Prints what a report wrote: the main table, damaged runs, the file and
/// how many test pieces it links for listening.
fn tell(written: &runner_report::Written) {
    say!("{}", written.main_table.terminal());
    for (id, damage) in &written.damaged {
        eprintln!("warning: run {} is damaged and left out: {damage}", &id[..8]);
    }
    say!("report: {}", written.path.display());
    if !written.listen.is_empty() {
        say!(
            "listen: {} as MIDI (true and greedy-predicted velocities) in listen/ beside it",
            show::count(written.listen.len(), "test piece")
        );
    }
}

/// Refuses, before anything trains, runs that ask for a CUDA device the
/// worker does not see (`--device cuda:K`, or `train.device` in the file).
fn devices_exist(selected: &[(&PlannedRun, RunState)], options: &exec::Options) -> miette::Result<()> {
    let devices = options.environment.cuda_devices;
    let wanting: Vec<DevicePreference> = selected
        .iter()
        .map(|(run, _)| options.device.unwrap_or(run.device))
        .filter(|wanted| !wanted.is_available(devices))
        .collect();
    let Some(first) = wanting.first() else {
        return Ok(());
    };
    let source = if options.device.is_some() {
        "--device"
    } else {
        "train.device"
    };
    miette::bail!(
        help = "train on the CPU (--device cpu) or where CUDA is (auto picks CUDA when present)",
        "{} selected go to {first} ({source}), but runner-worker sees {}",
        show::count(wanting.len(), "run"),
        show::count(devices, "CUDA device")
    )
}

/// The flag a Ctrl-C or SIGTERM raises: the run in progress stops at its
/// next step and later ones never start; a second signal quits at once.
fn stop_on_signal() -> Arc<AtomicBool> {
    let stop = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&stop);
    let _ = ctrlc::set_handler(move || {
        if flag.swap(true, Ordering::SeqCst) {
            std::process::exit(130);
        }
        eprintln!("stopping after the current step (a second Ctrl-C or SIGTERM quits at once)");
    });
    stop
}

/// Trains the `selected` runs with progress bars and the closing table,
/// stopping when `stop` is raised; fails when a run failed or was
/// interrupted.
fn train(
    plan: &Plan,
    selected: &[(&PlannedRun, RunState)],
    store: &RunStore,
    options: &exec::Options,
    stop: &Arc<AtomicBool>,
) -> miette::Result<()> {
    // A search trains its runs rung by rung: each rung's runs are a turn.
    let turns = match &plan.search {
        Some(search) => search.runs_per_rung(selected.len()).iter().sum(),
        None => selected.len(),
    };
    let reporter = Bars::new(turns as u64);
    let results = exec::execute(plan, selected, store, options, &reporter, stop);
    reporter.finish();
    say!("{}", exec::table(&results));
    if let Some((path, problem)) = results.iter().find_map(|r| match &r.outcome {
        Outcome::Unwritable { path, problem } => Some((path, *problem)),
        _ => None,
    }) {
        miette::bail!(
            help = problem.help(&options.runs_root),
            "the runs store cannot be written: {} ({})",
            problem.what(),
            path.display()
        );
    }
    let count = |wanted: fn(&Outcome) -> bool| results.iter().filter(|r| wanted(&r.outcome)).count();
    let failed = count(Outcome::is_failure);
    let interrupted = count(|o| *o == Outcome::Interrupted);
    // Ctrl-C between two runs interrupts none, but the rest did not run.
    let stopped = count(|o| *o == Outcome::NotStarted(Halt::Stopped));
    if failed + interrupted + stopped > 0 {
        let not_started = match stopped {
            0 => String::new(),
            n => format!(", {n} not started"),
        };
        let damaged = count(|o| matches!(o, Outcome::Damaged(_)));
        let help = match damaged {
            0 => "run the same command again to resume; --failed-only retries just the failed runs".to_owned(),
            n => format!(
                "{} not trained again: each line above names the file that is wrong and the \
                 `--force --only` that trains it again; run the same command again to resume the others",
                show::count(n, "damaged run")
            ),
        };
        miette::bail!(
            help = help,
            "{} failed, {interrupted} interrupted{not_started}; see {}/<run>/status.json",
            show::count(failed, "run"),
            store.root().display()
        );
    }
    Ok(())
}

/// `runner exec --backend slurm`: submits the selected runs that are not
/// done as one job array and a collation job, and says how to follow them.
fn submit_to_slurm(
    plan: &Plan,
    file: &Path,
    store: &RunStore,
    options: &exec::Options,
    args: SlurmArgs,
    dry_run: bool,
) -> miette::Result<()> {
    if plan.search.is_some() {
        miette::bail!(
            help = "run it here with `runner exec FILE` (the local backend; --jobs trains several runs at once)",
            "{} declares a search, which runs on the local backend only: each rung is ranked before the next starts",
            file.display()
        );
    }
    let runs = runner_slurm::pending(plan, store, options)?;
    if dry_run {
        for run in &runs {
            say!("{} {} ({})", &run.id[..8], run.label_text(), store.state(run).word());
        }
        say!(
            "{} of {} would be submitted to Slurm as one job array, then a collation job",
            runs.len(),
            show::count(plan.runs.len(), "run")
        );
        return Ok(());
    }
    if runs.is_empty() {
        say!("nothing to submit: every selected run of {} is done", plan.experiment);
        return Ok(());
    }
    let request = runner_slurm::Request {
        partition: args.partition,
        gpus_per_run: args.gpus_per_run,
        max_parallel: args.max_parallel,
        time: args.time,
        sbatch_args: args.sbatch_arg,
        libtorch: args.libtorch,
    };
    let submitted = runner_slurm::submit(plan, file, &runs, options, &request)?;
    let at_once = request
        .max_parallel
        .map_or_else(String::new, |k| format!(", at most {k} at once"));
    say!(
        "submitted {} of {} to Slurm (submission {}, {})",
        show::count(submitted.runs, "run"),
        plan.experiment,
        submitted.number,
        submitted.dir.display()
    );
    say!(
        "  job array   {}  (tasks 0-{}{at_once})",
        submitted.array,
        submitted.runs - 1
    );
    say!(
        "  collation   {}  (writes the report once every task has ended)",
        submitted.report
    );
    say!("follow with:");
    say!(
        "  runner status {} --store {}",
        file.display(),
        options.runs_root.display()
    );
    say!("  squeue --jobs {},{}", submitted.array, submitted.report);
    say!("  logs in {}", submitted.dir.join("logs").display());
    Ok(())
}

/// Training windows of each run's dataset, for the plan's step estimates:
/// read from the dataset cache's summaries (nothing is built), once per
/// distinct dataset; `None` when the dataset is not cached.
fn training_windows<'a>(plan: &Plan, file: &Path, store_root: &Path) -> impl Fn(&PlannedRun) -> Option<usize> + 'a {
    let folders = folders(file);
    let cache = store_root.parent().unwrap_or(Path::new("runs")).join(".datasets");
    let mut known: Vec<(String, Option<usize>)> = Vec::new();
    for run in &plan.runs {
        let key = serde_json::to_string(&(&run.config.dataset, run.config.encoder)).unwrap_or_default();
        if !known.iter().any(|(k, _)| *k == key) {
            let windows = dataset::cached_summary(&run.config, &folders, &cache).and_then(|summary| {
                summary
                    .split(runner_data::split::Split::Train)
                    .map(|train| train.windows)
            });
            known.push((key, windows));
        }
    }
    move |run| {
        let key = serde_json::to_string(&(&run.config.dataset, run.config.encoder)).unwrap_or_default();
        known.iter().find(|(k, _)| *k == key).and_then(|(_, w)| *w)
    }
}

/// `runner data inspect|export`: builds or exports the dataset of one run.
fn data(action: DataCommand) -> miette::Result<()> {
    let (DataCommand::Inspect { file, run, .. } | DataCommand::Export { file, run, .. }) = &action;
    let plan = plan::load(file)?;
    let chosen = match run {
        None => plan.runs.first(),
        Some(id) => plan.runs.iter().find(|r| &r.id == id),
    };
    let Some(chosen) = chosen else {
        let ids: Vec<&str> = plan.runs.iter().map(|r| r.id.as_str()).collect();
        miette::bail!(
            help = format!("runs of this experiment: {}", ids.join(", ")),
            "{} has no run {}",
            file.display(),
            run.as_deref().unwrap_or("at all")
        );
    };
    let folders = folders(file);
    match &action {
        DataCommand::Inspect { store, json, .. } => {
            let dataset = dataset::build(&chosen.config, &folders, &store.join(".datasets"))?;
            if *json {
                say_text!("{:#}", report::json(&dataset));
            } else {
                say_text!("{}", report::render(&dataset));
            }
        }
        DataCommand::Export { out, .. } => {
            let exported = export::export(&chosen.config.dataset, &folders, out)?;
            say_text!("{}", report::render_export(&exported));
        }
    }
    Ok(())
}

/// Where the data of `file`'s runs is: relative dataset paths start from
/// the file's folder; the bundled data is in `$RUNNER_BUNDLED_DIR` when set,
/// else in the clone runner was built from.
fn folders(file: &Path) -> Folders {
    let base = file.parent().unwrap_or(Path::new(""));
    Folders::with_bundled(base, std::env::var_os(source::BUNDLED_DIR_VAR).map(PathBuf::from))
}

/// `runner --version`: runner's version, then what its worker sees (or
/// that it has none).
fn version() -> ExitCode {
    let asked = Worker::beside_current_exe().and_then(|worker| worker.forward(&[OsString::from("info")]));
    match asked {
        Ok(code) => ExitCode::from(code),
        Err(error) => {
            say!("runner {}", env!("CARGO_PKG_VERSION"));
            eprintln!("{:?}", miette::Report::new(error));
            ExitCode::FAILURE
        }
    }
}

/// Runs `runner-worker NAME REST..` with this process's standard streams,
/// and fails as it does.
fn forward(name: &str, rest: Vec<OsString>) -> miette::Result<()> {
    let args: Vec<OsString> = std::iter::once(OsString::from(name)).chain(rest).collect();
    let worker = Worker::beside_current_exe()?;
    match worker.forward(&args)? {
        0 => Ok(()),
        // The worker has said what went wrong; exit as it did.
        code => std::process::exit(i32::from(code)),
    }
}

/// `runner check`: every file is checked, with the metadata tables its
/// runs name (their columns); all problems are printed.
fn check(files: &[PathBuf]) -> miette::Result<()> {
    let mut failed = 0;
    for file in files {
        match plan::check(file) {
            Ok(plan) => {
                let base = folders(file).base;
                let tables = table::check(plan.runs.iter().map(|run| &run.config.dataset), &base);
                if tables.is_empty() {
                    say!("{}: ok ({})", file.display(), show::count(plan.runs.len(), "run"));
                } else {
                    failed += 1;
                    for problem in tables {
                        eprintln!("{:?}", miette::Report::new(problem));
                    }
                }
            }
            Err(error) => {
                failed += 1;
                eprintln!("{:?}", miette::Report::new(error));
            }
        }
    }
    match failed {
        0 => Ok(()),
        n => Err(miette::miette!(
            "{n} of {} {} problems",
            show::count(files.len(), "experiment file"),
            if n == 1 { "has" } else { "have" }
        )),
    }
}
