//! Progress of a sweep: a bar on a terminal; otherwise (unless quiet) one line per finished point.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Progress: a bar on a terminal; otherwise (unless quiet) one line per finished point.
pub(super) struct Progress {
    pub bar: ProgressBar,
    lines: bool,
}

impl Progress {
    pub fn new(total: u64, quiet: bool) -> Progress {
        let target = if quiet {
            ProgressDrawTarget::hidden()
        } else {
            ProgressDrawTarget::stderr()
        };
        let bar = ProgressBar::with_draw_target(Some(total), target);
        bar.set_style(
            ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] {bar:32.cyan/blue} {pos}/{len} (eta {eta}) {msg}",
            )
            .expect("a valid template")
            .progress_chars("=> "),
        );
        let lines = !quiet && bar.is_hidden();
        Progress { bar, lines }
    }

    pub fn start(&self, what: &str) {
        self.bar.set_message(what.to_owned());
    }

    pub fn done(&self, line: String) {
        if self.lines {
            eprintln!("  {line}");
        } else {
            self.bar.println(format!("  {line}"));
        }
    }
}
