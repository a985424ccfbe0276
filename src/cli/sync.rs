//! `boternity sync`: install exactly what a `skills.lock` lists, at its
//! commits, failing on any hash that differs.

use std::path::PathBuf;
use std::process::ExitCode;

use boternity_skills::Installer;
use boternity_skills::install::sync;
use boternity_skills::store::lock::{self, LockFile};

use super::args::{InstallArgs, MessageFormat, OfflineArgs, OutputArgs, StoreArgs};
use super::message::{self, SyncFinished};

/// Install exactly what a skills.lock lists.
///
/// Every skill is fetched at its locked commit (from the cache when it is
/// there: no network), built with the Cargo.lock kept in the lock when the
/// skill ships none, and checked against the lock's sha256 of its source,
/// its skill.wasm and every file, before any is installed. A skill already
/// installed exactly as locked is left alone; skills not in the lock are kept.
#[derive(clap::Args)]
#[command(
    after_help = "Examples:\n  boternity sync                                # the store's own skills.lock\n  boternity sync --lock bot/skills.lock --store /srv/bot\n\nExit status:\n  0  the store holds what the lock lists\n  1  a skill could not be fetched or built, or a hash differs; the store is unchanged"
)]
pub struct Opts {
    /// The lock file (default: skills.lock in the store).
    #[arg(long, value_name = "FILE")]
    lock: Option<PathBuf>,
    #[command(flatten)]
    store: StoreArgs,
    #[command(flatten)]
    offline: OfflineArgs,
    #[command(flatten)]
    install: InstallArgs,
    #[command(flatten)]
    oci: super::oci::OciArgs,
    #[command(flatten)]
    pub format: OutputArgs,
}

impl Opts {
    pub fn run(self) -> anyhow::Result<ExitCode> {
        let store = self.store.open()?;
        let path = self.lock.clone().unwrap_or_else(|| lock::lock_path(&store));
        let locked = LockFile::read(&path)?;
        let options = self.install.options();
        let mut context = self.store.context();
        // OCI origins are reached with these flags (credentials, CA file).
        self.oci.apply(&mut context)?;
        let executor = super::executor()?;
        let installer = Installer::new(&context, &store).with_executor(&executor);
        let report = sync::sync(&installer, &locked, &options, self.offline.offline)?;
        if self.format.json() {
            for installed in &report.installed {
                super::install::report(installed, MessageFormat::Json);
            }
            message::emit(&SyncFinished {
                lock: &path,
                skills: locked.skills.len(),
                installed: report.installed.iter().map(|i| i.name.as_str()).collect(),
                unchanged: &report.unchanged,
                extra: &report.extra,
            });
            return Ok(ExitCode::SUCCESS);
        }
        for installed in &report.installed {
            super::install::report(installed, MessageFormat::Human);
        }
        for name in &report.unchanged {
            eprintln!("{:>12} `{name}` (as locked)", "Unchanged");
        }
        for name in &report.extra {
            eprintln!(
                "warning: `{name}` is installed but not in {}; kept",
                path.display()
            );
        }
        eprintln!(
            "{:>12} {} skills from {} ({} installed, {} already as locked)",
            "Synced",
            locked.skills.len(),
            path.display(),
            report.installed.len(),
            report.unchanged.len()
        );
        Ok(ExitCode::SUCCESS)
    }
}
