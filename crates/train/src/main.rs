//! The `runner-worker` binary: everything of `runner` that needs libtorch.
//! `runner` starts it beside itself to train each run (`serve`) and hands it
//! `runner bench`, `runner model` and `runner info` unchanged. Exit codes: 0
//! success, 1 failure, 2 usage error (from clap).

use std::process::ExitCode;

use clap::Parser;
use runner_job::{say, say_text};
use runner_plan::config::DevicePreference;
use runner_train::cli::{BenchCommand, ModelAction, WorkerCli, WorkerCommand};
use runner_train::{bench, environment, export, job, predict, probe};

fn main() -> ExitCode {
    let cli = WorkerCli::parse();
    match run(cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(report) => {
            eprintln!("{report:?}");
            ExitCode::FAILURE
        }
    }
}

fn run(command: WorkerCommand) -> miette::Result<()> {
    match command {
        WorkerCommand::Serve => job::serve(),
        WorkerCommand::Info { check_devices, json } => {
            let found = environment::probe();
            if json {
                say!(
                    "{}",
                    serde_json::to_string(&found).expect("an environment always serialises")
                );
                return Ok(());
            }
            say!("{found}");
            if check_devices {
                let checks = environment::check_devices();
                for check in &checks {
                    say!("{check}");
                }
                if !checks.iter().all(environment::DeviceCheck::passed) {
                    miette::bail!("a device computed a result different from the CPU's");
                }
            }
            Ok(())
        }
        WorkerCommand::Bench {
            action: BenchCommand::Train(args),
        } => {
            let options = bench::Options::from_args(&args).map_err(|message| miette::miette!("{message}"))?;
            let report = bench::run(&options);
            if args.json {
                say!("{}", report.json());
            } else {
                say_text!("{}", report.tables());
            }
            Ok(())
        }
        WorkerCommand::Export { run, hf, force, store } => {
            let folder = runner_store::find_run(&store, &run)?;
            say_text!("{}", export::export(&folder, &hf, force)?.summary());
            Ok(())
        }
        WorkerCommand::Model {
            action: ModelAction::Logits { run, ids, json },
        } => {
            let probe = probe::logits(&run, &ids)?;
            if json {
                say!("{}", serde_json::to_string(&probe).expect("a probe always serialises"));
            } else {
                say_text!("{}", probe.summary());
            }
            Ok(())
        }
        WorkerCommand::Predict(args) => {
            let device = DevicePreference::parse(&args.device).ok_or_else(|| {
                miette::miette!(
                    help = "use auto, cpu, cuda or cuda:K",
                    "unknown device `{}`",
                    args.device
                )
            })?;
            predict::command::run(&predict::command::Request {
                run: args.run,
                store: args.store,
                inputs: args.inputs,
                out: args.out,
                json: args.json,
                device,
            })
        }
    }
}
