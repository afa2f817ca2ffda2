//! The `sluice` binary: `serve` runs a node, `demo` runs one on the embedded
//! default and walks a message through it, `pub` and `read` talk to a running
//! node from a terminal. It is the only crate that knows the config file and
//! the command line; it turns them into the broker's options.

mod client;
mod config;
mod demo;
#[path = "../../../guest-examples/guests.rs"]
mod guests;

use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "sluice",
    version,
    about = "A WebAssembly-extensible event broker with durable streams."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Args, Clone)]
struct ServeArgs {
    /// A TOML config file (see sluice.example.toml); without it, the embedded default.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Data directory (overrides the config file).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// HTTP API address; port 0 picks a free port (overrides the config file).
    #[arg(long)]
    http_listen: Option<std::net::SocketAddr>,
    /// MQTT address; port 0 picks a free port (overrides the config file).
    #[arg(long)]
    mqtt_listen: Option<std::net::SocketAddr>,
}

#[derive(Subcommand)]
enum Command {
    /// Run a node.
    Serve(ServeArgs),
    /// Run a node on the embedded default and show a message going through it.
    Demo(ServeArgs),
    /// Publish one message to a topic over HTTP.
    Pub(client::PubArgs),
    /// Read a stream's messages over HTTP.
    Read(client::ReadArgs),
    /// Hash a password (read from stdin) for the users file.
    Passwd,
}

fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("SLUICE_LOG")
                .unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(args) => serve(args, false),
        Command::Demo(args) => serve(args, true),
        Command::Pub(args) => client::publish(args),
        Command::Read(args) => client::read(args),
        Command::Passwd => passwd(),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// Reads one line (the password) from stdin and prints its Argon2id hash.
fn passwd() -> anyhow::Result<()> {
    let mut line = String::new();
    std::io::stdin().read_line(&mut line)?;
    let password = line.trim_end_matches(['\n', '\r']);
    anyhow::ensure!(!password.is_empty(), "give the password on standard input");
    println!(
        "{}",
        sluice_broker::auth::hash_password(password.as_bytes())
    );
    Ok(())
}

fn options(args: &ServeArgs, demo: bool) -> anyhow::Result<sluice_broker::NodeOptions> {
    let mut options = match &args.config {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            let base = path.parent().unwrap_or(std::path::Path::new("."));
            config::parse(path, &text)?.into_options_at(base)?
        }
        None => sluice_broker::NodeOptions::embedded_default(),
    };
    if demo {
        let default = sluice_core::TenantId::default_tenant();
        options.streams.extend(
            demo::stream_specs()
                .into_iter()
                .map(|s| (default.clone(), s)),
        );
    }
    if let Some(d) = &args.data_dir {
        options.data_dir = d.clone();
    }
    if let Some(a) = args.http_listen {
        options.http_listen = a;
    }
    if let Some(a) = args.mqtt_listen {
        options.mqtt_listen = a;
    }
    Ok(options)
}

fn serve(args: ServeArgs, demo: bool) -> anyhow::Result<()> {
    let options = options(&args, demo)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("sluice-io")
        .build()?;
    runtime.block_on(async move {
        let running = sluice_broker::start(options).await?;
        if demo {
            let url = format!("http://{}", running.http_addr);
            tokio::task::spawn_blocking(move || demo::walk_through(&url)).await??;
        }
        shutdown_signal().await;
        tracing::info!("shutting down");
        running.shutdown().await;
        anyhow::Ok(())
    })
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("SIGTERM handler");
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
