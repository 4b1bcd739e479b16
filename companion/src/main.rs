//! `emstudio`: the EM Studio companion binary.

use anyhow::Context;
use clap::{Parser, Subcommand};
use emstudio_companion::{catalog, server};
use std::path::PathBuf;

#[derive(Parser)]
#[command(
    name = "emstudio",
    version,
    about = "EM Studio companion server and CLI"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the browser app and datasets over HTTP.
    Serve {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1")]
        host: String,
        /// Port to listen on (0 picks a free one).
        #[arg(long, default_value_t = 8080)]
        port: u16,
        /// Folder with the built app (index.html, wasm).
        #[arg(long, default_value = "dist")]
        dist: PathBuf,
        /// Folder with the demo datasets shipped in the repository.
        #[arg(long, default_value = "demo")]
        demo: PathBuf,
        /// A dataset folder, or a folder of datasets, to serve too (repeatable).
        #[arg(long = "data")]
        data: Vec<PathBuf>,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    match Cli::parse().command {
        Command::Serve {
            host,
            port,
            dist,
            demo,
            data,
        } => {
            anyhow::ensure!(
                dist.join("index.html").is_file(),
                "{}: no index.html; build the app first (cargo xtask build)",
                dist.display()
            );
            for d in &data {
                anyhow::ensure!(d.is_dir(), "--data {}: no such folder", d.display());
            }
            let demo = demo.is_dir().then_some(demo);
            let datasets = catalog::scan(demo.as_deref(), &data);
            for d in &datasets {
                tracing::info!(id = %d.info.id, layers = d.info.layers.len(), "dataset {}", d.root.display());
            }
            let listener = tokio::net::TcpListener::bind((host.as_str(), port))
                .await
                .with_context(|| format!("cannot listen on {host}:{port}"))?;
            let addr = listener.local_addr()?;
            println!("EM Studio is running at http://{addr}/");
            axum::serve(listener, server::router(&dist, datasets))
                .with_graceful_shutdown(async {
                    let _ = tokio::signal::ctrl_c().await;
                })
                .await?;
        }
    }
    Ok(())
}
