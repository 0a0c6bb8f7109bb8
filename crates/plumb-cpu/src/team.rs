//! A team of helper threads that stay awake between jobs: every parallel loop of the CPU kernels
//! runs on it (through `par.rs`), with the op's own thread as one of the workers. Decoding is
//! many short parallel ops (a SmolLM2-135M token is 121 quantized matrix-vector products: four
//! per layer and the head); handing each one to rayon woke a sleeping worker through the kernel
//! every time (`perf record` of `model_bench` with `PLUMB_BENCH_ONLY=llm-q4_1-decode` put ~12–15%
//! of decode samples in scheduler and futex code). Team helpers instead poll for the next job for
//! [`SPIN`] after their last one (yielding the core between polls, so other runnable threads are
//! not starved) and only then park on a condition variable.
//!
//! One job runs at a time: a caller that finds the team busy (or is itself a helper) runs its
//! tasks inline. The caller always takes tasks too, so a job finishes even if no helper wakes.
//! The team starts with `default_threads() − 1` helpers; [`reserve`] adds more for a backend
//! built with more threads.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// How long an idle helper keeps polling before it parks.
const SPIN: Duration = Duration::from_millis(2);

/// The tasks of one job. `f` is only called for a claimed task index below `tasks`, and the
/// caller waits for `done == tasks` before returning, so the borrowed closure outlives every
/// call even though helpers may hold the `Arc<Job>` a little longer.
struct Job {
    f: *const (dyn Fn(usize) + Sync),
    tasks: usize,
    /// helpers that may still join (the caller's thread budget minus itself)
    seats: AtomicUsize,
    next: AtomicUsize,
    done: AtomicUsize,
    /// the first panic of a task, re-raised on the caller's thread
    panic: Mutex<Option<Box<dyn std::any::Any + Send>>>,
}

// SAFETY: `f` points to a `Sync` closure that outlives every call made through it (see Job).
unsafe impl Send for Job {}
unsafe impl Sync for Job {}

impl Job {
    /// Claim and run tasks until none are left.
    fn work(&self) {
        loop {
            let i = self.next.fetch_add(1, Ordering::Relaxed);
            if i >= self.tasks {
                return;
            }
            // SAFETY: see Job: the closure is alive until done reaches tasks.
            let f = unsafe { &*self.f };
            if let Err(p) = catch_unwind(AssertUnwindSafe(|| f(i))) {
                if let Ok(mut slot) = self.panic.lock() {
                    slot.get_or_insert(p);
                }
            }
            self.done.fetch_add(1, Ordering::Release);
        }
    }
}

struct Team {
    /// bumped for every job; helpers compare it with the last one they saw
    epoch: AtomicU64,
    job: Mutex<Option<Arc<Job>>>,
    wake: Condvar,
    /// helpers parked on `wake` (read and written under the `job` lock)
    sleeping: AtomicUsize,
    busy: AtomicBool,
    /// helper threads started so far (only grows, under `grow`)
    helpers: AtomicUsize,
    grow: Mutex<()>,
}

thread_local! {
    static IS_HELPER: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

static TEAM: OnceLock<&'static Team> = OnceLock::new();

fn team() -> &'static Team {
    TEAM.get_or_init(|| {
        let t: &'static Team = Box::leak(Box::new(Team {
            epoch: AtomicU64::new(0),
            job: Mutex::new(None),
            wake: Condvar::new(),
            sleeping: AtomicUsize::new(0),
            busy: AtomicBool::new(false),
            helpers: AtomicUsize::new(0),
            grow: Mutex::new(()),
        }));
        start_helpers(t, crate::default_threads());
        t
    })
}

/// Start helpers until the team can run `threads` at once (the caller and `threads − 1`
/// helpers); returns how many it can, fewer only where the OS refused a thread.
fn start_helpers(t: &'static Team, threads: usize) -> usize {
    let Ok(_g) = t.grow.lock() else {
        return 1 + t.helpers.load(Ordering::Acquire);
    };
    let mut n = t.helpers.load(Ordering::Acquire);
    while n + 1 < threads {
        let seen = t.epoch.load(Ordering::Acquire);
        let spawned = std::thread::Builder::new()
            .name(format!("plumb-team-{n}"))
            .spawn(move || helper(t, seen));
        if spawned.is_err() {
            break;
        }
        n += 1;
        t.helpers.store(n, Ordering::Release);
    }
    (n + 1).min(threads.max(1))
}

/// Make the team able to run `threads` at once (a backend built with more threads than
/// `default_threads()` asks for more helpers); returns how many threads it can run at once,
/// at most `threads`.
pub fn reserve(threads: usize) -> usize {
    start_helpers(team(), threads)
}

/// A helper's loop; `seen` is the epoch of the last job it need not look at.
fn helper(t: &'static Team, mut seen: u64) {
    IS_HELPER.with(|h| h.set(true));
    loop {
        let idle = Instant::now();
        let mut polls = 0u32;
        while t.epoch.load(Ordering::Acquire) == seen {
            polls += 1;
            if polls.is_multiple_of(64) {
                if idle.elapsed() > SPIN {
                    let Ok(mut g) = t.job.lock() else { return };
                    t.sleeping.fetch_add(1, Ordering::Relaxed);
                    while t.epoch.load(Ordering::Acquire) == seen {
                        g = match t.wake.wait(g) {
                            Ok(g) => g,
                            Err(_) => return,
                        };
                    }
                    t.sleeping.fetch_sub(1, Ordering::Relaxed);
                    break;
                }
                std::thread::yield_now();
            }
            std::hint::spin_loop();
        }
        seen = t.epoch.load(Ordering::Acquire);
        let job = match t.job.lock() {
            Ok(g) => g.clone(),
            Err(_) => return,
        };
        if let Some(job) = job {
            let seat = job
                .seats
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1));
            if seat.is_ok() {
                job.work();
            }
        }
    }
}

/// Run `f(0) … f(tasks − 1)` on the calling thread and, where the team is free, on up to
/// `threads − 1` helpers. A panic in `f` is re-raised here (the first one) after every task has
/// finished.
pub fn for_each(tasks: usize, threads: usize, f: &(dyn Fn(usize) + Sync)) {
    let inline = || (0..tasks).for_each(f);
    if tasks <= 1 || threads <= 1 || IS_HELPER.with(|h| h.get()) {
        return inline();
    }
    let t = team();
    if t.helpers.load(Ordering::Relaxed) == 0 || t.busy.swap(true, Ordering::Acquire) {
        return inline();
    }
    // SAFETY (lifetime erasure): the job's closure pointer is only dereferenced for claimed
    // tasks, all of which finish before this function returns (the wait on `done` below).
    let f: *const (dyn Fn(usize) + Sync + '_) = f;
    let f: *const (dyn Fn(usize) + Sync) = unsafe { std::mem::transmute(f) };
    let job = Arc::new(Job {
        f,
        tasks,
        seats: AtomicUsize::new(threads - 1),
        next: AtomicUsize::new(0),
        done: AtomicUsize::new(0),
        panic: Mutex::new(None),
    });
    match t.job.lock() {
        Ok(mut g) => {
            *g = Some(job.clone());
            t.epoch.fetch_add(1, Ordering::Release);
            if t.sleeping.load(Ordering::Relaxed) > 0 {
                t.wake.notify_all();
            }
        }
        Err(_) => {
            t.busy.store(false, Ordering::Release);
            return inline();
        }
    }
    job.work();
    // the last tasks are running on helpers; yield now and then in case one was preempted
    let mut polls = 0u32;
    while job.done.load(Ordering::Acquire) < tasks {
        polls = polls.wrapping_add(1);
        if polls.is_multiple_of(1024) {
            std::thread::yield_now();
        }
        std::hint::spin_loop();
    }
    if let Ok(mut g) = t.job.lock() {
        *g = None;
    }
    t.busy.store(false, Ordering::Release);
    let first = job.panic.lock().ok().and_then(|mut p| p.take());
    if let Some(p) = first {
        std::panic::resume_unwind(p);
    }
}

/// A raw pointer to an output that tasks write in disjoint parts.
pub struct SyncPtr<T>(*mut T);

impl<T> Clone for SyncPtr<T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T> Copy for SyncPtr<T> {}

// SAFETY: only used for disjoint writes from tasks that finish before the owner is used again.
unsafe impl<T: Send> Send for SyncPtr<T> {}
unsafe impl<T: Send> Sync for SyncPtr<T> {}

impl<T> SyncPtr<T> {
    pub fn new(out: &mut [T]) -> Self {
        SyncPtr(out.as_mut_ptr())
    }

    /// The start of `out`'s allocation (its spare capacity too), for tasks that write every
    /// element before the owner sets the length.
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
    pub fn spare(out: &mut Vec<T>) -> Self {
        SyncPtr(out.as_mut_ptr())
    }

    /// The output's first element, for tasks whose parts are not runs of it (columns of a
    /// matrix): each task writes only its own elements through it. (Only the x86-64 kernel of
    /// `matmul_rows` needs it.)
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
    pub fn ptr(self) -> *mut T {
        self.0
    }

    /// # Safety
    /// `start + len` lies inside the slice given to [`SyncPtr::new`], which is still borrowed
    /// by the caller of [`for_each`], and no other task touches that range.
    pub unsafe fn slice<'a>(self, start: usize, len: usize) -> &'a mut [T] {
        std::slice::from_raw_parts_mut(self.0.add(start), len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_task_runs_once_across_many_jobs() {
        for tasks in [0, 1, 2, 7, 100] {
            for _ in 0..50 {
                let hits: Vec<AtomicUsize> = (0..tasks).map(|_| AtomicUsize::new(0)).collect();
                for_each(tasks, 4, &|i| {
                    hits[i].fetch_add(1, Ordering::Relaxed);
                });
                assert!(hits.iter().all(|h| h.load(Ordering::Relaxed) == 1));
            }
        }
    }

    #[test]
    fn a_task_panic_reaches_the_caller_and_the_team_stays_usable() {
        let r = std::panic::catch_unwind(|| {
            for_each(8, 2, &|i| {
                if i == 5 {
                    std::panic::panic_any("task 5");
                }
            })
        });
        let msg = r.expect_err("the panic must propagate");
        assert_eq!(msg.downcast_ref::<&str>(), Some(&"task 5"));
        let sum = AtomicUsize::new(0);
        for_each(10, 2, &|i| {
            sum.fetch_add(i, Ordering::Relaxed);
        });
        assert_eq!(sum.load(Ordering::Relaxed), 45);
    }

    #[test]
    fn concurrent_callers_each_get_all_their_tasks_done() {
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    for _ in 0..100 {
                        let sum = AtomicUsize::new(0);
                        for_each(10, 2, &|i| {
                            sum.fetch_add(i, Ordering::Relaxed);
                        });
                        assert_eq!(sum.load(Ordering::Relaxed), 45);
                    }
                });
            }
        });
    }
}
