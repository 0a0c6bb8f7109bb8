//! Options every command shares (owned by the platform helper; used by all commands).

use plumb_core::Policy;

/// Global options, parsed once in main.rs and handed to every command.
#[derive(Clone, Debug)]
pub struct GlobalOpts {
    /// `--policy` or `PLUMB_POLICY` (default `auto`)
    pub policy: Policy,
    /// `--explain`: print the run report (every emulation, upcast, fallback, conversion) at the end
    pub explain: bool,
}
