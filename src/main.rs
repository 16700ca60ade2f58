//! The `runner` binary: parses the command line and hands each subcommand to
//! its stage. Exit codes: 0 success, 1 failure, 2 usage error (from clap).

use std::process::ExitCode;

use clap::{CommandFactory, Parser};
use runner::cli::{Cli, Command};
use runner::environment::{self, Environment};

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
