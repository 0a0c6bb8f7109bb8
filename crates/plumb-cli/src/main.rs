//! The `plumb` command line (main.rs owned by the platform helper).

mod cmd_bench;
mod cmd_doctor;
mod cmd_model;
mod common;

use clap::{Parser, Subcommand};
use common::GlobalOpts;

#[derive(Parser, Debug)]
#[command(
    name = "plumb",
    version,
    about = "Run models on the best device, in a dtype that works there"
)]
struct Cli {
    /// dtype policy: strict, auto, safe, optionally +cpu-fallback (env PLUMB_POLICY)
    #[arg(long, global = true, env = "PLUMB_POLICY", default_value = "auto")]
    policy: String,
    /// print the run report (emulations, upcasts, fallbacks, conversions) at the end
    #[arg(long, global = true)]
    explain: bool,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand, Debug)]
// parsed once per run: the size of the largest command's arguments does not matter
#[allow(clippy::large_enum_variant)]
enum Cmd {
    /// Every device, its dtype × op-family table (support, measured error, throughput), and the
    /// recommended device and dtype
    Doctor(cmd_doctor::DoctorArgs),
    /// Op throughput per device and dtype (also as `RESULT framework=plumb …` lines)
    Bench(cmd_bench::BenchArgs),
    #[command(flatten)]
    Model(cmd_model::ModelCommand),
}

fn main() {
    let cli = Cli::parse();
    let policy = match cli.policy.parse() {
        Ok(p) => p,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(2);
        }
    };
    let global = GlobalOpts {
        policy,
        explain: cli.explain,
    };
    let r = match cli.cmd {
        Cmd::Doctor(a) => cmd_doctor::run(a, &global),
        Cmd::Bench(a) => cmd_bench::run(a, &global),
        Cmd::Model(c) => cmd_model::run(c, &global),
    };
    if let Err(e) = r {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}
