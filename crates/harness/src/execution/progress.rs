//! What the user sees while a sweep runs: a bar for the jobs (done / total, elapsed, ETA) and
//! one per running job for its epochs, with log lines printed above the bars so they never tear
//! them. Without a terminal there are no bars, only the log lines; `--quiet` prints neither.

use std::fmt::Display;
use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

/// How much to print.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Verbosity {
    /// The summary table only.
    Quiet,
    /// A line per finished job, and bars on a terminal.
    Normal,
    /// Also a line per epoch.
    Verbose,
}

#[derive(Debug)]
pub struct Progress {
    verbosity: Verbosity,
    bars: Option<(MultiProgress, ProgressBar)>,
}

impl Progress {
    /// Bars are drawn only when both stdout and stderr are terminals (so a redirected run
    /// writes clean logs).
    pub fn new(total_jobs: usize, verbosity: Verbosity) -> Self {
        let terminal = std::io::stdout().is_terminal() && std::io::stderr().is_terminal();
        let bars = (verbosity >= Verbosity::Normal && terminal).then(|| {
            let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr());
            let jobs = multi.add(ProgressBar::new(total_jobs as u64));
            jobs.set_style(
                ProgressStyle::with_template("{elapsed_precise:.dim} [{bar:32.cyan/blue}] {pos}/{len} jobs  ETA {eta}  {msg}")
                    .expect("a valid template")
                    .progress_chars("=> "),
            );
            jobs.enable_steady_tick(Duration::from_millis(500));
            (multi, jobs)
        });
        Self { verbosity, bars }
    }

    /// Silent: for library use and tests.
    pub fn hidden() -> Self {
        Self { verbosity: Verbosity::Quiet, bars: None }
    }

    fn print(&self, msg: &dyn Display) {
        match &self.bars {
            Some((multi, _)) => {
                let _ = multi.println(msg.to_string());
            }
            None => eprintln!("{msg}"),
        }
    }

    /// A line at normal verbosity.
    pub fn log(&self, msg: impl Display) {
        if self.verbosity >= Verbosity::Normal {
            self.print(&msg);
        }
    }

    /// A warning, printed even with `-q`.
    pub fn warn(&self, msg: impl Display) {
        self.print(&format_args!("warning: {msg}"));
    }

    /// A line at `-v`.
    pub fn detail(&self, msg: impl Display) {
        if self.verbosity >= Verbosity::Verbose {
            self.print(&msg);
        }
    }

    /// A bar for one job's epochs, removed when dropped.
    pub fn job(&self, label: &str, epochs: usize) -> JobBar {
        JobBar(self.bars.as_ref().map(|(multi, _)| {
            let bar = multi.add(ProgressBar::new(epochs as u64));
            bar.set_style(
                ProgressStyle::with_template(
                    "  {prefix:<40} [{bar:20.green/white}] epoch {pos}/{len} {elapsed:>4}",
                )
                .expect("a valid template")
                .progress_chars("=> "),
            );
            bar.set_prefix(label.to_owned());
            bar
        }))
    }

    /// Counts a finished job.
    pub fn job_done(&self) {
        if let Some((_, jobs)) = &self.bars {
            jobs.inc(1);
        }
    }

    /// Removes the bars.
    pub fn finish(&self) {
        if let Some((multi, jobs)) = &self.bars {
            jobs.finish_and_clear();
            let _ = multi.clear();
        }
    }
}

#[derive(Debug)]
pub struct JobBar(Option<ProgressBar>);

impl JobBar {
    pub fn epoch_done(&self) {
        if let Some(bar) = &self.0 {
            bar.inc(1);
        }
    }
}

impl Drop for JobBar {
    fn drop(&mut self) {
        if let Some(bar) = &self.0 {
            bar.finish_and_clear();
        }
    }
}
