//! CPU time, split by who spent it inside the benchmark's own process: the in-process runs
//! put the `send` handler on one tokio runtime and the fake Twilio on another, and each
//! runtime's threads are counted apart (Linux's per-thread `schedstat`, nanoseconds), so
//! that what `send` itself costs is read without what the fake Twilio and the load generator
//! cost. The process's whole CPU (`getrusage`) is read beside it, as a cross-check.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context as _;

/// The threads of one tokio runtime, and the CPU they used.
#[derive(Debug, Default)]
pub struct ThreadGroup {
    /// Live threads (Linux thread ids).
    live: Mutex<Vec<u32>>,
    /// CPU of the threads that have exited, read as each one stopped.
    exited_ns: AtomicU64,
}

impl ThreadGroup {
    /// A multi-threaded runtime (as `#[tokio::main]` builds one: a worker per core) whose
    /// every thread, workers and blocking ones alike, is counted in this group.
    pub fn runtime(self: &Arc<Self>, name: &str) -> anyhow::Result<tokio::runtime::Runtime> {
        let (started, stopped) = (Arc::clone(self), Arc::clone(self));
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .thread_name(name)
            .on_thread_start(move || {
                if let Some(tid) = current_thread_id() {
                    started.live.lock().expect("thread group lock").push(tid);
                }
            })
            .on_thread_stop(move || {
                let Some(tid) = current_thread_id() else { return };
                let used = thread_cpu_ns("/proc/thread-self/schedstat").unwrap_or(0);
                stopped.exited_ns.fetch_add(used, Ordering::SeqCst);
                stopped.live.lock().expect("thread group lock").retain(|t| *t != tid);
            })
            .build()
            .with_context(|| format!("the {name} runtime"))
    }

    /// CPU used by the group's threads so far.
    pub fn cpu(&self) -> Duration {
        let live: u64 = self
            .live
            .lock()
            .expect("thread group lock")
            .iter()
            .filter_map(|tid| thread_cpu_ns(&format!("/proc/self/task/{tid}/schedstat")))
            .sum();
        Duration::from_nanos(live + self.exited_ns.load(Ordering::SeqCst))
    }
}

/// The calling thread's Linux thread id (`/proc/thread-self` links to `PID/task/TID`).
fn current_thread_id() -> Option<u32> {
    let link = std::fs::read_link("/proc/thread-self").ok()?;
    link.file_name()?.to_str()?.parse().ok()
}

/// The first field of a `schedstat` file: time spent on a CPU, in nanoseconds.
fn thread_cpu_ns(path: &str) -> Option<u64> {
    std::fs::read_to_string(path).ok()?.split_whitespace().next()?.parse().ok()
}

/// CPU used by the whole process so far (user + system, every thread).
pub fn process_cpu() -> Duration {
    // SAFETY: getrusage writes into the zeroed struct it is given and reads nothing else.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        if libc::getrusage(libc::RUSAGE_SELF, &mut usage) != 0 {
            return Duration::ZERO;
        }
        usage
    };
    let micros = |t: libc::timeval| t.tv_sec as u64 * 1_000_000 + t.tv_usec as u64;
    Duration::from_micros(micros(usage.ru_utime) + micros(usage.ru_stime))
}

/// CPU used between two readings of every account the in-process runs keep.
#[derive(Debug, Clone, Copy, Default)]
pub struct CpuSplit {
    /// The `send` handler's runtime: the handler, the memory adapters, the Twilio client.
    pub send: Duration,
    /// The fake Twilio's runtime.
    pub twilio: Duration,
    /// The whole process (the two above, the load generator and the rest).
    pub process: Duration,
}

impl CpuSplit {
    pub fn since(&self, before: &CpuSplit) -> CpuSplit {
        CpuSplit {
            send: self.send.saturating_sub(before.send),
            twilio: self.twilio.saturating_sub(before.twilio),
            process: self.process.saturating_sub(before.process),
        }
    }

    /// What neither runtime used: the load generator (events built, queue polled) and the
    /// benchmark's own bookkeeping.
    pub fn rest(&self) -> Duration {
        self.process.saturating_sub(self.send + self.twilio)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Keeps the calling thread busy until it has used `cpu` of CPU (not of wall time: the
    /// machine may be shared).
    fn spin(cpu: Duration) {
        let used = || Duration::from_nanos(thread_cpu_ns("/proc/thread-self/schedstat").unwrap());
        let until = used() + cpu;
        let mut x = 0u64;
        while used() < until {
            for _ in 0..1000 {
                x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(7));
            }
        }
    }

    #[test]
    fn a_runtimes_threads_are_counted_apart_from_the_rest_of_the_process() {
        let group = Arc::new(ThreadGroup::default());
        let runtime = group.runtime("cpu-test").unwrap();
        let (group_before, process_before) = (group.cpu(), process_cpu());
        runtime.block_on(async {
            tokio::spawn(async { spin(Duration::from_millis(60)) }).await.unwrap();
            tokio::task::spawn_blocking(|| spin(Duration::from_millis(60))).await.unwrap();
        });
        // This thread is not the group's: its spin must not be counted.
        spin(Duration::from_millis(60));
        let group_used = group.cpu() - group_before;
        let process_used = process_cpu() - process_before;
        assert!(group_used >= Duration::from_millis(120), "the runtime's two spins: {group_used:?}");
        assert!(group_used < Duration::from_millis(170), "the caller's spin left out: {group_used:?}");
        assert!(process_used >= group_used + Duration::from_millis(55), "{process_used:?} vs {group_used:?}");
        runtime.shutdown_timeout(Duration::from_secs(5));
        // Threads that stopped keep their CPU in the account.
        assert!(group.cpu() >= group_used, "{:?} after shutdown", group.cpu());
    }
}
