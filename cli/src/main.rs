//! `payhooks dev` runs the local server; `payhooks trigger` sends a signed
//! sample event to it (or to any URL).

mod dev;
mod trigger;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "payhooks", about = "Exactly-once payment webhooks: local server and test events")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run every provider route and the processor locally, in memory.
    Dev(dev::DevArgs),
    /// Send a correctly signed sample event and print the response.
    Trigger(trigger::TriggerArgs),
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Dev(args) => dev::run(args).await,
        Command::Trigger(args) => trigger::run(args).await,
    };
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error}");
            std::process::ExitCode::FAILURE
        }
    }
}
