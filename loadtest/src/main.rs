//! The `loadtest` binary: parse flags, dispatch, map the outcome to an exit code.
//!
//! Exit codes: 0 success; 1 a path failed (default run) or B regressed (`compare`); 2 a usage
//! or setup error.

use std::process::ExitCode;

use clap::Parser;
use loadtest::{
    bench,
    cli::{Cli, Command},
    compare, idle, replica,
};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let outcome = match cli.command {
        None => bench::run(cli.run),
        Some(Command::Replica(args)) => {
            replica::standalone::serve_until_signal(args.listen, &args.name, args.threads)
                .map(|()| true)
        }
        Some(Command::Hold(args)) => idle::hold::serve(args.connect, args.connections),
        Some(Command::Compare(args)) => {
            compare::run(&args.a, &args.b, args.tolerance, args.cpu_tolerance)
        }
    };
    match outcome {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("loadtest: {e:#}");
            ExitCode::from(2)
        }
    }
}
