//! The scheduler: every job of a plan on a pool of workers, each as soon as the model it
//! starts from exists (jobs that others wait for first, then the longest).

use std::sync::Mutex;

use crate::execution::plan::{Job, Plan};

/// A job whose method produced no model (an external command that failed): the run goes on
/// with the other jobs and reports every such failure at its end.
#[derive(Debug, thiserror::Error)]
#[error("{label}: {why}")]
pub struct JobFailed {
    pub label: String,
    pub why: methods::Failed,
}

/// Runs every job of `plan` on `workers` threads of `pool` (`run` gets the job and the
/// worker's index, `0..workers`), each as soon as its upstream job has finished; among the
/// jobs that can start, those that others wait for go first, then the longest. Stops at the
/// first error (jobs already running finish), but for a [`JobFailed`]: the others go on (but
/// its dependents), and the failures are the error at the end. Results in plan order.
pub fn schedule<T: Send>(
    plan: &Plan,
    workers: usize,
    pool: &rayon::ThreadPool,
    run: impl Fn(&Job, usize) -> anyhow::Result<T> + Sync,
) -> anyhow::Result<Vec<T>> {
    let n = plan.jobs.len();
    let index = |key: &str| plan.jobs.iter().position(|j| j.key == key);
    let upstream: Vec<Option<usize>> =
        plan.jobs.iter().map(|j| j.upstream.as_deref().and_then(index)).collect();
    let has_dependents: Vec<bool> = (0..n).map(|i| upstream.contains(&Some(i))).collect();
    let priority = |i: usize| (has_dependents[i], plan.jobs[i].method.epochs(), usize::MAX - i);
    struct State<T> {
        ready: Vec<usize>,
        waiting: Vec<usize>,
        results: Vec<Option<T>>,
        running: usize,
        error: Option<anyhow::Error>,
        failed: Vec<String>,
    }
    let (ready, waiting) = (0..n).partition(|&i| upstream[i].is_none());
    let state = Mutex::new(State {
        ready,
        waiting,
        results: (0..n).map(|_| None).collect(),
        running: 0,
        error: None,
        failed: Vec::new(),
    });
    let wake = std::sync::Condvar::new();
    let worker = |w: usize| {
        let mut s = state.lock().expect("no worker panics holding the lock");
        loop {
            if s.error.is_some() || (s.ready.is_empty() && s.running == 0) {
                wake.notify_all();
                return;
            }
            let Some(pos) = (0..s.ready.len()).max_by_key(|&p| priority(s.ready[p])) else {
                s = wake.wait(s).expect("no worker panics holding the lock");
                continue;
            };
            let i = s.ready.swap_remove(pos);
            s.running += 1;
            drop(s);
            // A panicking job must not leave the others waiting for it forever.
            let job = &plan.jobs[i];
            let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run(job, w)))
                .unwrap_or_else(|_| {
                    Err(anyhow::anyhow!("{} panicked (a bug: please report it)", job.label()))
                });
            s = state.lock().expect("no worker panics holding the lock");
            s.running -= 1;
            match result {
                Ok(r) => {
                    s.results[i] = Some(r);
                    let (now, still): (Vec<usize>, Vec<usize>) =
                        s.waiting.iter().partition(|&&w| upstream[w] == Some(i));
                    s.waiting = still;
                    s.ready.extend(now);
                }
                Err(e) => match e.downcast::<JobFailed>() {
                    Ok(failed) => s.failed.push(failed.to_string()),
                    Err(e) => {
                        s.error.get_or_insert(e);
                    }
                },
            }
            wake.notify_all();
        }
    };
    pool.scope(|scope| {
        for w in 0..workers {
            let worker = &worker;
            scope.spawn(move |_| worker(w));
        }
    });
    let s = state.into_inner().expect("no worker panicked");
    if let Some(e) = s.error {
        return Err(e);
    }
    if !s.failed.is_empty() {
        // Jobs still waiting are those whose original failed.
        let skipped = match s.waiting.len() {
            0 => String::new(),
            k => format!(" ({k} more start from a failed model and were not run)"),
        };
        anyhow::bail!(
            "{} of {n} jobs failed{skipped}; nothing was cached for them, every other job's \
             model is in the cache, and no results were written. Fix the method or its \
             parameters and run again.\n\n{}",
            s.failed.len(),
            s.failed.join("\n\n")
        );
    }
    Ok(s.results.into_iter().map(|r| r.expect("every job ran")).collect())
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::sync::Mutex;
    use std::time::Duration;

    use super::*;
    use crate::execution::device::Resolved;
    use crate::experiment::Experiment;

    /// A one-seed sweep on two GPUs: its jobs run on both (not all on the seed's GPU).
    #[test]
    fn workers_take_their_own_gpus_whatever_the_seeds() {
        let exp = Experiment::parse(
            "seeds = [0]\n[forget]\nclass = 3\nfraction = 0.75\n[methods.original]\nepochs = 2\n\
             [methods.mi_unlearn]\ngamma = [0, 1, 2, 3, 4, 5, 6, 7]\nepochs = 2\n",
            Path::new("t.toml"),
        )
        .unwrap();
        let gpus = Resolved { device: tch::Device::Cuda(0), gpus: 2 };
        let plan = Plan::new(&exp, "mnist test", &gpus).unwrap();
        let pool = rayon::ThreadPoolBuilder::new().num_threads(2).build().unwrap();
        let used = Mutex::new(Vec::new());
        let workers_seen = Mutex::new(Vec::new());
        let results = schedule(&plan, 2, &pool, |job, worker| {
            // Long enough that both workers pick up jobs.
            std::thread::sleep(Duration::from_millis(30));
            used.lock().unwrap().push(gpus.for_worker(worker));
            workers_seen.lock().unwrap().push(worker);
            Ok(job.key.clone())
        })
        .unwrap();
        let keys: Vec<String> = plan.jobs.iter().map(|j| j.key.clone()).collect();
        assert_eq!(results, keys, "results in plan order");
        let used = used.into_inner().unwrap();
        assert_eq!(used.len(), 9);
        for gpu in [tch::Device::Cuda(0), tch::Device::Cuda(1)] {
            assert!(used.contains(&gpu), "{gpu:?} idle: {used:?}");
        }
        assert!(workers_seen.into_inner().unwrap().iter().all(|&w| w < 2));
    }
}
