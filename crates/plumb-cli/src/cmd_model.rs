//! Model commands: embed, generate, check, convert, inspect (owned by the models helper).

use crate::common::GlobalOpts;
use clap::Subcommand;

#[derive(Subcommand, Debug)]
pub enum ModelCommand {
    /// What a safetensors or GGUF file holds (tensors, dtypes, shapes, bytes), validated
    Inspect {
        /// the file to inspect
        file: std::path::PathBuf,
    },
}

pub fn run(cmd: ModelCommand, _global: &GlobalOpts) -> plumb_core::Result<()> {
    match cmd {
        ModelCommand::Inspect { file } => Err(plumb_core::Error::invalid(
            "inspect",
            format!("{}: inspect is not written yet", file.display()),
        )),
    }
}
