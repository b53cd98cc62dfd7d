//! The `ringlb` binary: flags, logging, signals; everything else is in the library.

use std::{path::PathBuf, process::ExitCode};

use std::sync::Arc;

use clap::{Parser, Subcommand};
use ringlb::{
    access_log::AccessLog, admin::ctl, server::upgrade::Upgrader, Config, ReloadHandle, Server,
    Shutdown,
};

/// A thread-per-core io_uring TCP load balancer.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// Configuration file (TOML).
    #[arg(short, long, default_value = "config/ringlb.toml", global = true)]
    config: PathBuf,
    /// Validate the configuration, print the effective settings and exit (0 valid, 2 invalid).
    #[arg(long)]
    check: bool,
    /// Ask the running ringlb's admin listener (the config's [admin] listen) for /healthz and
    /// exit 0 if it answers 200, 1 otherwise: a container health check with no curl needed.
    #[arg(long, conflicts_with = "check")]
    probe_admin: bool,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Ask the running ringlb's runtime API (the config's [admin] listen, with the token of its
    /// [admin] token_file): drain, maint, ready, weight or status. Exits 0 if it agreed, 1 if
    /// not, 2 for an invalid configuration.
    #[command(subcommand)]
    Ctl(ctl::Command),
}

fn main() -> ExitCode {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();

    let config = match Config::load(&args.config) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("ringlb: invalid configuration: {e}");
            // A health check must say only healthy (0) or not (1).
            return ExitCode::from(if args.probe_admin { 1 } else { 2 });
        }
    };
    if args.probe_admin {
        return probe_admin(&config);
    }
    if let Some(Command::Ctl(command)) = &args.command {
        return run_ctl(&config, command);
    }
    warn_about(&config);
    if args.check {
        return print_checked(&config);
    }
    match run(&config) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ringlb: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Logs what the configuration allows but probably does not mean (on stderr, so `--check`'s
/// output stays the configuration alone).
fn warn_about(config: &Config) {
    for warning in config.warnings() {
        tracing::warn!("{}: {warning}", config.source.display());
    }
}

/// Prints the effective configuration. A reader that stops early (`ringlb --check | head`) is
/// not an error, and must not turn into a panic the way `print!` does on a closed pipe.
fn print_checked(config: &Config) -> ExitCode {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match write!(out, "{config}").and_then(|()| out.flush()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ringlb: cannot write the configuration: {e}");
            ExitCode::FAILURE
        }
    }
}

fn probe_admin(config: &Config) -> ExitCode {
    use ringlb::admin::probe;
    if !config.startup.admin.enabled {
        eprintln!("ringlb: [admin] enabled = false in the configuration: nothing to probe");
        return ExitCode::FAILURE;
    }
    let addr = probe::probe_addr(config.startup.admin.listen);
    match probe::probe(addr, std::time::Duration::from_secs(2)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ringlb: unhealthy: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `ringlb ctl`: the answer's body on stdout when the API agreed, on stderr otherwise.
fn run_ctl(config: &Config, command: &ctl::Command) -> ExitCode {
    match ctl::run(config, command) {
        Ok(answer) if answer.is_success() => {
            print!("{}", answer.body);
            ExitCode::SUCCESS
        }
        Ok(answer) => {
            eprint!("ringlb: {}: {}", answer.status, answer.body);
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("ringlb: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(config: &Config) -> anyhow::Result<()> {
    let shutdown = Shutdown::new();
    // Handlers are installed before the server starts, so no signal is lost in between.
    let signals = Signals::install()?;
    let server = Server::start(config, shutdown.clone())?;
    signals.spawn(
        shutdown,
        server.reload_handle(),
        server.upgrader(),
        server.access_log(),
        config.source.clone(),
    )?;
    server.wait()?;
    tracing::info!("ringlb stopped");
    Ok(())
}

/// The process's signal handlers, served by a thread of their own.
struct Signals {
    rt: tokio::runtime::Runtime,
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
    hup: tokio::signal::unix::Signal,
    usr1: tokio::signal::unix::Signal,
    usr2: tokio::signal::unix::Signal,
}

impl Signals {
    fn install() -> anyhow::Result<Signals> {
        use tokio::signal::unix::{signal, SignalKind};
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let (term, int, hup, usr1, usr2) = rt.block_on(async {
            anyhow::Ok((
                signal(SignalKind::terminate())?,
                signal(SignalKind::interrupt())?,
                signal(SignalKind::hangup())?,
                signal(SignalKind::user_defined1())?,
                signal(SignalKind::user_defined2())?,
            ))
        })?;
        Ok(Signals {
            rt,
            term,
            int,
            hup,
            usr1,
            usr2,
        })
    }

    /// SIGHUP reloads `path` (and upgrades when a change needs new sockets or threads);
    /// SIGUSR1 reopens the access log's file (logrotate); SIGUSR2 upgrades to the binary at the path ringlb was started from; the first
    /// SIGINT/SIGTERM starts a graceful stop (stop accepting, drain open connections), a second
    /// one exits at once.
    fn spawn(
        mut self,
        shutdown: Shutdown,
        reload: ReloadHandle,
        upgrader: Arc<Upgrader>,
        access_log: Arc<AccessLog>,
        path: PathBuf,
    ) -> anyhow::Result<()> {
        std::thread::Builder::new()
            .name("ringlb-signals".into())
            .spawn(move || {
                self.rt.block_on(async move {
                    let mut stopping = false;
                    loop {
                        let name = tokio::select! {
                            _ = self.term.recv() => "SIGTERM",
                            _ = self.int.recv() => "SIGINT",
                            _ = self.hup.recv() => {
                                if reload_from(&reload, &path) {
                                    upgrade(&upgrader, "SIGHUP").await;
                                }
                                continue;
                            }
                            _ = self.usr1.recv() => {
                                reopen(&access_log);
                                continue;
                            }
                            _ = self.usr2.recv() => {
                                upgrade(&upgrader, "SIGUSR2").await;
                                continue;
                            }
                        };
                        if stopping {
                            tracing::warn!("{name} again: exiting without waiting for open connections");
                            std::process::exit(1);
                        }
                        stopping = true;
                        tracing::info!("{name}: stopping; open connections may finish (signal again to exit at once)");
                        shutdown.trigger();
                    }
                })
            })?;
        Ok(())
    }
}

/// Re-reads the configuration file; an invalid one is rejected and the running one kept.
/// `true` when a change needs new sockets or threads: an upgrade carries it out.
fn reload_from(reload: &ReloadHandle, path: &std::path::Path) -> bool {
    match Config::load(path) {
        Err(e) => {
            tracing::error!("SIGHUP: configuration rejected, the running one is kept: {e}");
            false
        }
        Ok(config) => {
            warn_about(&config);
            let restart = reload.reload(&config);
            let targets: usize = config.pools().iter().map(|p| p.targets.len()).sum();
            tracing::info!(
                services = config.services().len(),
                pools = config.pools().len(),
                targets,
                "SIGHUP: configuration reloaded"
            );
            for key in &restart {
                tracing::info!(
                    key,
                    "SIGHUP: changing {key} needs new sockets or threads: upgrading in place"
                );
            }
            !restart.is_empty()
        }
    }
}

/// SIGUSR1: reopens the access log's file at its path (after logrotate moved it); a file that
/// cannot be opened leaves the old one in use.
fn reopen(access_log: &AccessLog) {
    match access_log.reopen() {
        Ok(true) => tracing::info!("SIGUSR1: access log reopened"),
        Ok(false) => tracing::info!("SIGUSR1: the access log is not a file; nothing to reopen"),
        Err(e) => {
            tracing::error!("SIGUSR1: cannot reopen the access log, the old file is kept: {e}")
        }
    }
}

/// Hands over to a new process (`why`: the signal); on failure this one keeps serving.
async fn upgrade(upgrader: &Arc<Upgrader>, why: &'static str) {
    let upgrader = Arc::clone(upgrader);
    let done = tokio::task::spawn_blocking(move || upgrader.upgrade()).await;
    match done {
        Ok(Ok(pid)) => tracing::info!(pid, "{why}: upgraded; this process drains and exits"),
        Ok(Err(e)) => tracing::error!("{why}: upgrade failed, this process keeps serving: {e}"),
        Err(e) => tracing::error!("{why}: upgrade failed, this process keeps serving: {e}"),
    }
}
