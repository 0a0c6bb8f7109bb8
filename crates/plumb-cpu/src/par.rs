//! The parallel loops of the CPU kernels. An op runs on its caller's thread
//! (`CpuBackend::run` only records the backend's thread budget, [`threads`]); its parallel parts
//! are tasks of the helper team (`team.rs`), which runs them inline where there is one task,
//! where the call comes from a helper, or where the team is busy with another caller's job.
//!
//! Gemm-crate calls run single-threaded, one block of the output per team task
//! (`kernels/matmul.rs`, `gemm_team`): the crate's own rayon parallelism is not used.

use crate::team::{self, SyncPtr};
use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

thread_local! {
    /// The thread budget of the op running on this thread (0: none is).
    static BUDGET: Cell<usize> = const { Cell::new(0) };
}

/// Threads the current op may use: the budget of the backend running it, else
/// [`crate::default_threads`] (read once).
pub fn threads() -> usize {
    match BUDGET.with(Cell::get) {
        0 => {
            static DEFAULT: OnceLock<usize> = OnceLock::new();
            *DEFAULT.get_or_init(crate::default_threads)
        }
        n => n,
    }
}

/// Run `f` on this thread with a budget of `threads` (the previous budget is restored after
/// it, also when it panics, so nested scopes and ops compose).
pub fn with_threads<R>(threads: usize, f: impl FnOnce() -> R) -> R {
    struct Restore(usize);
    impl Drop for Restore {
        fn drop(&mut self) {
            BUDGET.with(|b| b.set(self.0));
        }
    }
    let _restore = Restore(BUDGET.with(|b| b.replace(threads.max(1))));
    f()
}

/// `f(0) … f(tasks − 1)` as team tasks under the current budget.
pub fn for_each(tasks: usize, f: impl Fn(usize) + Sync) {
    team::for_each(tasks, threads(), &f)
}

/// Split `out` into chunks of `chunk` elements (the last one shorter where `chunk` does not
/// divide the length) and run `f(index, chunk)` for each as a team task. One chunk runs on the
/// caller with no hand-off; an empty `out` runs nothing. Panics where `chunk` is 0, as
/// `slice::chunks_mut` does.
pub fn chunks_mut<T: Send>(out: &mut [T], chunk: usize, f: impl Fn(usize, &mut [T]) + Sync) {
    assert!(chunk != 0, "chunk size must be non-zero");
    let len = out.len();
    let tasks = len.div_ceil(chunk);
    if tasks <= 1 {
        if tasks == 1 {
            f(0, out);
        }
        return;
    }
    let ptr = SyncPtr::new(out);
    for_each(tasks, |i| {
        let start = i * chunk;
        // SAFETY: chunk i covers start .. start + min(chunk, len − start), inside `out` and
        // disjoint from every other chunk; `out` stays mutably borrowed by this function until
        // for_each has returned, after every task.
        let c = unsafe { ptr.slice(start, chunk.min(len - start)) };
        f(i, c)
    });
}

/// [`chunks_mut`] over `out` beside `src` in chunks of `src_chunk`: `f(out chunk i, src chunk
/// i)` for every i where both have a chunk (as rayon's `zip` pairs them).
pub fn zip_chunks_mut<T: Send, S: Sync>(
    out: &mut [T],
    chunk: usize,
    src: &[S],
    src_chunk: usize,
    f: impl Fn(&mut [T], &[S]) + Sync,
) {
    assert!(src_chunk != 0, "chunk size must be non-zero");
    chunks_mut(out, chunk, |i, o| {
        let start = i * src_chunk;
        if start < src.len() {
            f(o, &src[start..(start + src_chunk).min(src.len())]);
        }
    })
}

/// Items `0 .. items` split into one run per task, each taken from its front by its task; a
/// task whose run is used up takes items from the back of the longest other run. A static split
/// keeps each task's items in order (its kernel can fetch the next one ahead), and taking from
/// the others evens out a task that started late or ran slower on a shared machine.
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
pub struct Runs {
    /// per run: `front << 32 | back`, the items `front .. back` not yet taken
    runs: Vec<AtomicU64>,
}

#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
impl Runs {
    /// `items` in `tasks` runs of near-equal length (at least one run; items below 2³²).
    pub fn new(items: usize, tasks: usize) -> Runs {
        debug_assert!(
            (items as u64) >> 32 == 0,
            "{items} items do not fit a run's 32-bit bounds"
        );
        let tasks = tasks.max(1);
        let pack = |f: usize, b: usize| AtomicU64::new(((f as u64) << 32) | b as u64);
        Runs {
            runs: (0..tasks)
                .map(|t| pack(t * items / tasks, (t + 1) * items / tasks))
                .collect(),
        }
    }

    /// Take one item of run `r` from its front (`back == false`) or its back.
    fn take(&self, r: usize, back: bool) -> Option<usize> {
        let run = self.runs.get(r)?;
        let mut cur = run.load(Ordering::Relaxed);
        loop {
            let (f, b) = (cur >> 32, cur & 0xffff_ffff);
            if f >= b {
                return None;
            }
            let (next, item) = if back {
                ((f << 32) | (b - 1), b - 1)
            } else {
                (((f + 1) << 32) | b, f)
            };
            match run.compare_exchange_weak(cur, next, Ordering::Relaxed, Ordering::Relaxed) {
                Ok(_) => return Some(item as usize),
                Err(now) => cur = now,
            }
        }
    }

    /// Items left in run `r`.
    fn left(&self, r: usize) -> u64 {
        let cur = self.runs[r].load(Ordering::Relaxed);
        (cur & 0xffff_ffff).saturating_sub(cur >> 32)
    }

    /// The next item for task `t`: the front of its own run, else the back of the run with the
    /// most items left; `None` when every item is taken. The flag says whether it came from
    /// another run.
    pub fn next(&self, t: usize) -> Option<(usize, bool)> {
        if let Some(i) = self.take(t, false) {
            return Some((i, false));
        }
        loop {
            let r = (0..self.runs.len()).max_by_key(|&r| self.left(r))?;
            if self.left(r) == 0 {
                return None;
            }
            if let Some(i) = self.take(r, true) {
                return Some((i, true));
            }
        }
    }

    /// The item task `t` will most likely get next after `item`: the front of its own run if
    /// `item` came from there, else the item before it (the next one taken from that back).
    pub fn guess(&self, t: usize, item: usize, stolen: bool) -> Option<usize> {
        if stolen {
            return item.checked_sub(1);
        }
        let cur = self.runs.get(t)?.load(Ordering::Relaxed);
        let (f, b) = ((cur >> 32) as usize, (cur & 0xffff_ffff) as usize);
        (f < b).then_some(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Every chunk of a `len`-element slice in chunks of `chunk`: visited once, with its index,
    /// its length and its own elements.
    fn check_chunks(len: usize, chunk: usize, threads: usize) {
        let mut out: Vec<usize> = vec![usize::MAX; len];
        let tasks = len.div_ceil(chunk);
        let visits: Vec<AtomicUsize> = (0..tasks).map(|_| AtomicUsize::new(0)).collect();
        with_threads(threads, || {
            chunks_mut(&mut out, chunk, |i, c| {
                visits[i].fetch_add(1, Ordering::Relaxed);
                assert_eq!(
                    c.len(),
                    chunk.min(len - i * chunk),
                    "chunk {i} of {len}/{chunk}"
                );
                for (j, o) in c.iter_mut().enumerate() {
                    assert_eq!(*o, usize::MAX, "element {} written twice", i * chunk + j);
                    *o = i * chunk + j;
                }
            })
        });
        assert!(visits.iter().all(|v| v.load(Ordering::Relaxed) == 1));
        assert!(
            out.iter().enumerate().all(|(j, &o)| o == j),
            "{len}/{chunk}"
        );
    }

    #[test]
    fn chunks_mut_visits_every_chunk_once_with_its_index_and_length() {
        for threads in [1, 2, 4] {
            check_chunks(0, 8, threads); // empty: nothing runs
            check_chunks(5, 8, threads); // shorter than one chunk: one call, inline
            check_chunks(8, 8, threads);
            check_chunks(29, 8, threads); // a short last chunk
            check_chunks(64, 8, threads);
            check_chunks(10_007, 100, threads);
        }
    }

    #[test]
    fn zip_chunks_mut_pairs_chunks_by_index() {
        // out in chunks of 4, src in chunks of 2 (two src values per out chunk), 11 chunks
        let src: Vec<u32> = (0..22).collect();
        let mut out = vec![0u32; 43];
        zip_chunks_mut(&mut out, 4, &src, 2, |o, s| {
            let v = s[0] / 2 + 1;
            assert_eq!(s.len(), 2);
            o.fill(v);
        });
        for (j, &o) in out.iter().enumerate() {
            assert_eq!(o as usize, j / 4 + 1, "{j}");
        }
        // a src with fewer chunks leaves the rest of out alone
        let mut out = vec![0u32; 12];
        zip_chunks_mut(&mut out, 4, &src[..3], 2, |o, s| o.fill(s[0] + 1));
        assert_eq!(out, [1, 1, 1, 1, 3, 3, 3, 3, 0, 0, 0, 0]);
    }

    #[test]
    fn the_budget_is_scoped_and_restored() {
        let outside = threads();
        with_threads(3, || {
            assert_eq!(threads(), 3);
            with_threads(1, || assert_eq!(threads(), 1));
            assert_eq!(threads(), 3);
            let r = std::panic::catch_unwind(|| with_threads(5, || panic!("inside")));
            assert!(r.is_err());
            assert_eq!(threads(), 3);
        });
        assert_eq!(threads(), outside);
    }

    #[test]
    fn a_panicking_chunk_reaches_the_caller() {
        let mut out = vec![0u8; 100];
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            with_threads(2, || {
                chunks_mut(&mut out, 10, |i, _| {
                    if i == 7 {
                        std::panic::panic_any("chunk 7");
                    }
                })
            })
        }));
        let msg = r.expect_err("the panic must propagate");
        assert_eq!(msg.downcast_ref::<&str>(), Some(&"chunk 7"));
    }

    #[test]
    fn runs_go_front_to_back_then_steal_from_the_longest_back() {
        let r = Runs::new(10, 3); // runs 0..3, 3..6, 6..10
        let mine: Vec<_> = std::iter::from_fn(|| r.next(0)).collect();
        assert_eq!(
            mine,
            [
                (0, false),
                (1, false),
                (2, false),
                (9, true),
                (8, true),
                (5, true),
                (7, true),
                (4, true),
                (6, true),
                (3, true)
            ]
        );
        assert_eq!(r.next(1), None);
        let r = Runs::new(10, 3);
        assert_eq!(r.guess(0, 0, false), Some(0), "front not taken yet");
        assert_eq!(r.next(0), Some((0, false)));
        assert_eq!(r.guess(0, 0, false), Some(1));
        assert_eq!(r.guess(0, 9, true), Some(8));
        assert_eq!(Runs::new(0, 2).next(1), None);
        assert_eq!(Runs::new(3, 0).next(0), Some((0, false)));
    }

    #[test]
    fn runs_hand_out_every_item_once_across_threads() {
        for (items, tasks) in [(1000, 4), (7, 3), (5, 8), (0, 2)] {
            let r = Runs::new(items, tasks);
            let seen: Vec<AtomicUsize> = (0..items).map(|_| AtomicUsize::new(0)).collect();
            with_threads(tasks, || {
                for_each(tasks, |t| {
                    while let Some((i, _)) = r.next(t) {
                        seen[i].fetch_add(1, Ordering::Relaxed);
                    }
                })
            });
            assert!(
                seen.iter().all(|v| v.load(Ordering::Relaxed) == 1),
                "{items} items in {tasks} runs"
            );
        }
    }
}
