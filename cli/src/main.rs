//! `payhooks dev` runs the local server; `payhooks trigger` sends a signed
//! sample event to it (or to any URL); `health`, `events`, `accounts`,
//! `replay`, `sweep` and `reconcile` are the operator's, against the local
//! server or a deployed stack.

mod admin;
mod dev;
mod trigger;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "payhooks", about = "Exactly-once payment webhooks: local server, test events, and operations")]
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
    /// Queue and DLQ depth and stuck events; exits 1 when unhealthy.
    Health(admin::Target),
    /// One event's history.
    #[command(subcommand)]
    Events(admin::EventsCommand),
    /// One account's balance, entitlement, flags, ledger and audits.
    #[command(subcommand)]
    Accounts(admin::AccountsCommand),
    /// Move dead letters back to the queue: all, --provider, or one --event; --dry-run lists.
    Replay(admin::ReplayArgs),
    /// Re-enqueue stuck events now.
    Sweep(admin::Target),
    /// Check every balance against its ledger now; exits 1 on a mismatch.
    Reconcile(admin::Target),
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Dev(args) => dev::run(args).await,
        Command::Trigger(args) => trigger::run(args).await,
        Command::Health(target) => admin::health(target).await,
        Command::Events(command) => admin::events(command).await,
        Command::Accounts(command) => admin::accounts(command).await,
        Command::Replay(args) => admin::replay(args).await,
        Command::Sweep(target) => admin::sweep(target).await,
        Command::Reconcile(target) => admin::reconcile(target).await,
    };
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error}");
            std::process::ExitCode::FAILURE
        }
    }
}
