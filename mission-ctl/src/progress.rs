//! A progress bar for long scans: files read out of files to read, on stderr, only when stderr
//! is a terminal and only once a scan has taken longer than a moment (a quick command prints
//! nothing extra). It disappears before the command's output is written.

use std::io::{self, IsTerminal, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use mission_store::Store;

/// Scans shorter than this show no bar.
const DELAY: Duration = Duration::from_millis(300);

/// The progress bar of one command.
#[derive(Debug)]
pub struct Progress {
    bar: ProgressBar,
    started: Instant,
    shown: AtomicBool,
    finished: AtomicBool,
    passes: AtomicUsize,
}

impl Progress {
    /// Reports `store`'s scans on stderr if stderr is a terminal; returns the store to use and
    /// the bar (`None` when stderr is not a terminal).
    pub fn attach(store: Store) -> (Store, Option<Arc<Progress>>) {
        if !io::stderr().is_terminal() {
            return (store, None);
        }
        let bar = ProgressBar::hidden();
        if let Ok(style) = ProgressStyle::with_template(
            "reading the store{msg} [{bar:30}] {pos}/{len} files {elapsed}",
        ) {
            bar.set_style(style.progress_chars("=> "));
        }
        let progress = Arc::new(Progress {
            bar,
            started: Instant::now(),
            shown: AtomicBool::new(false),
            finished: AtomicBool::new(false),
            passes: AtomicUsize::new(0),
        });
        let hook = progress.clone();
        (store.with_progress(move |done, total| hook.update(done, total)), Some(progress))
    }

    fn update(&self, done: usize, total: usize) {
        if self.finished.load(Ordering::Relaxed) {
            return;
        }
        // Some commands read the files more than once (`report` four times): say which pass.
        if done == 0 {
            let pass = self.passes.fetch_add(1, Ordering::Relaxed) + 1;
            if pass > 1 {
                self.bar.set_message(format!(", pass {pass}"));
            }
        }
        if self.bar.length() != Some(total as u64) {
            self.bar.set_length(total as u64);
        }
        self.bar.set_position(done as u64);
        if self.started.elapsed() >= DELAY && !self.shown.swap(true, Ordering::Relaxed) {
            self.bar.set_draw_target(ProgressDrawTarget::stderr());
            self.bar.tick();
        }
    }

    /// Removes the bar for good (before output or an error message is written).
    pub fn finish(&self) {
        if !self.finished.swap(true, Ordering::Relaxed) {
            self.bar.finish_and_clear();
        }
    }
}

/// A writer that removes the progress bar before its first byte is written.
pub struct ClearingWriter<W> {
    inner: W,
    progress: Option<Arc<Progress>>,
}

impl<W: Write> ClearingWriter<W> {
    /// Wraps `inner`.
    pub fn new(inner: W, progress: Option<Arc<Progress>>) -> Self {
        Self { inner, progress }
    }
}

impl<W: Write> Write for ClearingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if let Some(p) = self.progress.take() {
            p.finish();
        }
        self.inner.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}
