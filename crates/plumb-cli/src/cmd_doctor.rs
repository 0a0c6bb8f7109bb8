//! `plumb doctor`: every device, its dtype × op-family table with measured error and throughput,
//! and the recommended device and dtype.

use crate::common::GlobalOpts;
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use plumb::doctor::{self, Options};
use std::io::IsTerminal;

#[derive(Args, Debug)]
pub struct DoctorArgs {
    /// small shapes and short timings (seconds in all)
    #[arg(long)]
    pub quick: bool,
    /// only this device (cpu, gpu:N, ...)
    #[arg(long)]
    pub device: Option<String>,
    /// print the report as JSON (schema: docs/doctor.schema.json)
    #[arg(long)]
    pub json: bool,
}

/// Colours only on a terminal, and never with NO_COLOR set.
pub fn use_color(stream_is_terminal: bool) -> bool {
    stream_is_terminal && std::env::var_os("NO_COLOR").is_none()
}

pub fn run(args: DoctorArgs, global: &GlobalOpts) -> plumb::Result<()> {
    let opts = Options {
        quick: args.quick,
        device: args.device.clone(),
        policy: Some(global.policy),
        dtypes: None,
        families: None,
    };
    let bar = std::io::stderr().is_terminal().then(|| {
        let b = ProgressBar::new(1);
        b.set_style(
            ProgressStyle::with_template("{bar:30} {pos}/{len} {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        b
    });
    let mut progress = |what: &str, done: usize, total: usize| {
        if let Some(b) = &bar {
            b.set_length(total as u64);
            b.set_position(done as u64);
            b.set_message(what.to_string());
        }
    };
    let report = doctor::run(&opts, &mut progress)?;
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    if args.json {
        println!("{}", report.to_json());
    } else {
        print!(
            "{}",
            doctor::render_text(&report, use_color(std::io::stdout().is_terminal()))
        );
    }
    if global.explain {
        eprintln!("--explain: the doctor probes each cell on its own device handle; the decisions it took are in the table's details");
    }
    Ok(())
}
