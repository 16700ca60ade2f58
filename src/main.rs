//! The `runner` binary: parses the command line and hands each subcommand to
//! its stage. Exit codes: 0 success, 1 failure, 2 usage error (from clap).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{CommandFactory, Parser};
use runner::cli::{Cli, Command};
use runner::environment::{self, Environment};
use runner::plan::show::{self, RunFacts};
use runner::plan::{self, Plan};
use runner::spec::{self, SpecError};

fn main() -> ExitCode {
    let cli = Cli::parse();
    if cli.version {
        println!("{}", Environment::probe());
        return ExitCode::SUCCESS;
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
        Command::Plan { file, json } => {
            let plan = load_plan(&file)?;
            if json {
                println!("{}", show::json(&plan));
            } else {
                let store = Path::new("runs").join(&plan.experiment);
                println!(
                    "{}",
                    show::table(&plan, &|run| RunFacts {
                        status: if store.join(&run.id).exists() {
                            "partial"
                        } else {
                            "pending"
                        }
                        .to_owned(),
                        steps: None,
                    })
                );
            }
            Ok(())
        }
        Command::Info { check_devices } => {
            println!("{}", Environment::probe());
            if check_devices {
                let checks = environment::check_devices();
                for check in &checks {
                    println!("{check}");
                }
                if !checks.iter().all(environment::DeviceCheck::passed) {
                    miette::bail!("a device computed a result different from the CPU's");
                }
            }
            Ok(())
        }
        other => Err(miette::miette!(
            help = "see the project's open issues for when it lands",
            "`runner {}` is not implemented yet",
            other.name()
        )),
    }
}

/// Loads and expands an experiment file, with every problem found.
fn load_plan(file: &Path) -> Result<Plan, SpecError> {
    let (experiment, sources) = spec::load(file)?;
    plan::expand(&experiment).map_err(|problems| SpecError::new(&file.display().to_string(), problems, &sources))
}

/// `runner check`: every file is checked; all problems are printed.
fn check(files: &[PathBuf]) -> miette::Result<()> {
    let mut failed = 0;
    for file in files {
        match load_plan(file) {
            Ok(plan) => {
                let runs = plan.runs.len();
                println!(
                    "{}: ok ({runs} run{})",
                    file.display(),
                    if runs == 1 { "" } else { "s" }
                );
            }
            Err(error) => {
                failed += 1;
                eprintln!("{:?}", miette::Report::new(error));
            }
        }
    }
    match failed {
        0 => Ok(()),
        n => Err(miette::miette!("{n} of {} experiment files have problems", files.len())),
    }
}
