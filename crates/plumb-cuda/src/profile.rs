//! `PLUMB_CUDA_PROFILE=1`: a diagnostic. Every kernel, cuBLAS call and readback is timed
//! (synchronising after each one, which slows the run), and so is the host time between them;
//! totals per name go to stderr every 2 seconds of run time.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

pub struct Profile {
    on: bool,
    state: Mutex<State>,
}

struct State {
    totals: HashMap<String, (u64, f64)>,
    last_end: Option<Instant>,
    last_print: Instant,
}

impl Profile {
    pub fn from_env() -> Self {
        Profile {
            on: std::env::var("PLUMB_CUDA_PROFILE").is_ok_and(|v| v == "1"),
            state: Mutex::new(State {
                totals: HashMap::new(),
                last_end: None,
                last_print: Instant::now(),
            }),
        }
    }

    pub fn on(&self) -> bool {
        self.on
    }

    /// Record `name` as having run from `start` until now (the caller synchronised).
    pub fn record(&self, name: &str, start: Instant) {
        let now = Instant::now();
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(prev) = s.last_end {
            let gap = start.saturating_duration_since(prev).as_secs_f64();
            let e = s
                .totals
                .entry("(host, between device calls)".into())
                .or_default();
            *e = (e.0 + 1, e.1 + gap);
        }
        let e = s.totals.entry(name.to_string()).or_default();
        *e = (e.0 + 1, e.1 + (now - start).as_secs_f64());
        s.last_end = Some(now);
        if (now - s.last_print).as_secs_f64() >= 2.0 {
            s.last_print = now;
            let mut v: Vec<_> = s.totals.iter().collect();
            v.sort_by(|a, b| b.1 .1.total_cmp(&a.1 .1));
            let total: f64 = v.iter().map(|(_, (_, t))| t).sum();
            eprintln!("PLUMB_CUDA_PROFILE: {total:.3} s recorded");
            for (name, (n, t)) in v.iter().take(16) {
                eprintln!(
                    "  {:>8.2} ms {:>5.1}% {n:>8}× {name}",
                    t * 1e3,
                    100.0 * t / total
                );
            }
        }
    }
}
