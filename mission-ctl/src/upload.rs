//! `mission-ctl upload`: sends a local store's finalized files to object storage, exactly once
//! ([`mission_store::upload`]); once, or continuously with `--follow` until interrupted.

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use mission_store::RemoteRoot;
use mission_store::upload::{UploadConfig, UploadStats, Uploader, upload_pending};

use crate::Error;

/// The arguments of `mission-ctl upload`.
#[derive(Clone, Debug, clap::Args)]
pub struct UploadArgs {
    /// The local store's root directory (what a writer writes; the spill while the bucket is
    /// unreachable).
    #[arg(long)]
    pub store: PathBuf,
    /// Where the files go: `s3://bucket/prefix` (credentials and endpoint from the AWS_*
    /// environment), `gs://…`, `az://…` or `file:///…`.
    #[arg(long)]
    pub to: String,
    /// Keep the local files after upload (by default each is deleted once the bucket has it).
    #[arg(long)]
    pub keep_local: bool,
    /// Most MiB of files waiting locally; past it the oldest are deleted unsent, counted
    /// (1..=67108864).
    #[arg(long, default_value_t = 10 * 1024)]
    pub max_spill_mb: u64,
    /// Keep running: upload files as writers finalize them, retrying while the bucket is
    /// unreachable, until interrupted (a summary line per pass that did something).
    #[arg(long)]
    pub follow: bool,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

impl UploadArgs {
    /// The uploader's configuration for these arguments.
    ///
    /// # Errors
    /// An invalid URL or a setting out of range.
    pub fn config(&self) -> Result<UploadConfig, Error> {
        let remote = RemoteRoot::parse(&self.to)?;
        let config = UploadConfig::new(&self.store, remote)
            .with_keep_local(self.keep_local)
            .with_max_spill_bytes(self.max_spill_mb.saturating_mul(1 << 20));
        config.validate()?;
        Ok(config)
    }
}

/// Runs `mission-ctl upload`: `Ok(true)` when everything waiting went up, `Ok(false)` when the
/// bucket refused or could not be reached (the files stay for the next run).
///
/// # Errors
/// An invalid argument, a missing store, an unlistable directory, or a failed write of the
/// output.
pub fn run_upload(args: &UploadArgs, out: &mut impl Write) -> Result<bool, Error> {
    if !args.store.is_dir() {
        return Err(crate::invalid("--store", format!("no store at {}", args.store.display())));
    }
    let config = args.config()?;
    if !args.follow {
        let stats = upload_pending(&config)?;
        print_stats(&stats, args.json, out)?;
        return Ok(stats.last_error.is_none());
    }
    let uploader = Uploader::start(config)?;
    let mut shown = UploadStats::default();
    loop {
        let stats = uploader.flush(Duration::from_secs(5));
        let changed = stats.files_uploaded != shown.files_uploaded
            || stats.files_dropped != shown.files_dropped
            || stats.last_error != shown.last_error;
        if changed {
            print_stats(&stats, args.json, out)?;
            out.flush()?;
            shown = stats;
        }
    }
}

fn print_stats(stats: &UploadStats, json: bool, out: &mut impl Write) -> Result<(), Error> {
    if json {
        let value = serde_json::json!({
            "files_uploaded": stats.files_uploaded,
            "bytes_uploaded": stats.bytes_uploaded,
            "parts_uploaded": stats.parts_uploaded,
            "files_already_there": stats.files_already_there,
            "files_pending": stats.files_pending,
            "bytes_pending": stats.bytes_pending,
            "files_dropped": stats.files_dropped,
            "bytes_dropped": stats.bytes_dropped,
            "events_dropped": stats.events_dropped,
            "failures": stats.failures,
            "error": stats.last_error,
            "denied": stats.denied,
        });
        writeln!(out, "{value}")?;
        return Ok(());
    }
    write!(
        out,
        "uploaded {} files ({} bytes); {} already there; {} waiting ({} bytes)",
        stats.files_uploaded,
        stats.bytes_uploaded,
        stats.files_already_there,
        stats.files_pending,
        stats.bytes_pending
    )?;
    if stats.files_dropped > 0 {
        write!(
            out,
            "; dropped {} oldest files ({} events) to stay within the spill bound",
            stats.files_dropped, stats.events_dropped
        )?;
    }
    writeln!(out)?;
    if let Some(error) = &stats.last_error {
        writeln!(out, "not uploaded: {error} (the files stay; run again)")?;
    }
    Ok(())
}
