//! Which shard a process runs: `--shard I/N`, or a Slurm or Kubernetes array job's index.

use anyhow::Context as _;

/// The shard to run: `--shard I/N`, else the array index of a Slurm or Kubernetes job, read
/// through `var` (the process's environment: `|name| std::env::var(name).ok()`).
pub fn shard(
    flag: Option<&str>,
    count: Option<usize>,
    var: impl Fn(&str) -> Option<String>,
) -> anyhow::Result<Option<(usize, usize)>> {
    let env = |name: &str| var(name).filter(|v| !v.is_empty());
    let number = |what: &str, v: &str| -> anyhow::Result<usize> {
        v.trim().parse().with_context(|| format!("{what} is {v:?}; expected a whole number"))
    };
    let (index, count, source) = if let Some(flag) = flag {
        let (i, n) = flag
            .split_once('/')
            .with_context(|| format!("--shard is {flag:?}; write it as I/N, e.g. 0/4"))?;
        let n = number("--shard's N", n)?;
        if let Some(count) = count.filter(|&c| c != n) {
            anyhow::bail!(
                "--shard {flag} says {n} shards but --shard-count (or UNLEARN_BENCH_SHARD_COUNT) \
                 says {count}; give one of them"
            );
        }
        (number("--shard's I", i)?, n, "--shard")
    } else if let (Some(id), Some(n)) = (env("SLURM_ARRAY_TASK_ID"), env("SLURM_ARRAY_TASK_COUNT"))
    {
        let min =
            env("SLURM_ARRAY_TASK_MIN").map_or(Ok(0), |m| number("SLURM_ARRAY_TASK_MIN", &m))?;
        let id = number("SLURM_ARRAY_TASK_ID", &id)?;
        anyhow::ensure!(id >= min, "SLURM_ARRAY_TASK_ID {id} is below SLURM_ARRAY_TASK_MIN {min}");
        (id - min, number("SLURM_ARRAY_TASK_COUNT", &n)?, "SLURM_ARRAY_TASK_ID")
    } else if let Some(i) = env("JOB_COMPLETION_INDEX") {
        let n = count.with_context(|| {
            "JOB_COMPLETION_INDEX is set but the number of shards is not: pass --shard-count N or set UNLEARN_BENCH_SHARD_COUNT"
        })?;
        (number("JOB_COMPLETION_INDEX", &i)?, n, "JOB_COMPLETION_INDEX")
    } else {
        return Ok(None);
    };
    anyhow::ensure!(
        count >= 1 && index < count,
        "{source}: shard {index} of {count} does not exist; shards are numbered 0 to N-1"
    );
    Ok(Some((index, count)))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An environment of `vars` only.
    fn env(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let vars: Vec<(String, String)> =
            vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        move |name| vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
    }

    #[test]
    fn the_shard_comes_from_the_flag_then_slurm_then_kubernetes() {
        assert_eq!(shard(Some("1/4"), None, env(&[])).unwrap(), Some((1, 4)));
        assert_eq!(shard(None, None, env(&[])).unwrap(), None);
        let slurm = [
            ("SLURM_ARRAY_TASK_ID", "7"),
            ("SLURM_ARRAY_TASK_COUNT", "4"),
            ("SLURM_ARRAY_TASK_MIN", "5"),
        ];
        assert_eq!(shard(None, None, env(&slurm)).unwrap(), Some((2, 4)));
        assert_eq!(shard(Some("0/2"), None, env(&slurm)).unwrap(), Some((0, 2)), "the flag wins");
        let k8s = [("JOB_COMPLETION_INDEX", "2")];
        assert_eq!(shard(None, Some(3), env(&k8s)).unwrap(), Some((2, 3)));
        let err = |flag, count, vars: &[(&str, &str)]| {
            format!("{:#}", shard(flag, count, env(vars)).unwrap_err())
        };
        assert!(err(Some("4/4"), None, &[]).contains("shard 4 of 4 does not exist"));
        assert!(err(Some("a/4"), None, &[]).contains("--shard's I is \"a\""));
        assert!(err(Some("1-4"), None, &[]).contains("write it as I/N"));
        assert!(err(None, None, &k8s).contains("pass --shard-count N"));
        assert!(err(Some("1/2"), Some(3), &[]).contains("says 2 shards but --shard-count"));
        assert_eq!(shard(Some("1/3"), Some(3), env(&[])).unwrap(), Some((1, 3)), "they agree");
        let below = [("SLURM_ARRAY_TASK_ID", "1"), ("SLURM_ARRAY_TASK_COUNT", "4"), slurm[2]];
        assert!(err(None, None, &below).contains("below SLURM_ARRAY_TASK_MIN 5"));
    }
}
