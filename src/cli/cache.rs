//! `boternity cache info`, `cache gc` and `cache clean`: what the cache
//! folder holds by kind, and sweeping it (the library's `cache` module does
//! the work).

use std::process::ExitCode;
use std::time::SystemTime;

use boternity_skills::cache::{self, Info, Sweep, human_size};

use super::args::OutputArgs;
use super::message::{self, CacheCleaned, CacheEntryField, CacheGc, CacheInfo, CacheKindField};

/// Show and sweep boternity's cache folder.
///
/// The cache folder ($BOTERNITY_CACHE_DIR, else ~/.cache/boternity) holds
/// what builds and installs can make again: each skill's target directory,
/// dependency layers, the cargo home, git and download caches, compiled
/// components. Its build outputs (target directories, layers) have a
/// budget, 10 GiB unless BOTERNITY_CACHE_MAX_SIZE says otherwise: after
/// build-skill, install and precompile, the least recently used are removed
/// down to it. Nothing a running build uses is ever removed.
#[derive(clap::Args)]
pub struct Opts {
    #[command(subcommand)]
    command: CacheCommand,
}

#[derive(clap::Subcommand)]
enum CacheCommand {
    /// What the cache folder holds, by kind: size, entries, last use.
    #[command(
        after_help = "Example:\n  boternity cache info\n  boternity cache info --message-format json"
    )]
    Info {
        #[command(flatten)]
        format: OutputArgs,
    },
    /// Remove the least recently used build outputs (target directories,
    /// dependency layers) until they fit the budget.
    ///
    /// Entries a build is using are skipped. The cargo home, git and
    /// download caches and the compile cache are left alone (`cache clean`
    /// removes them).
    #[command(
        after_help = "Examples:\n  boternity cache gc\n  boternity cache gc --max-size 2GiB\n\nExit status:\n  0  swept (entries in use may keep it over the budget)\n  1  the cache folder could not be read or an entry removed"
    )]
    Gc {
        /// The budget: a number of bytes, or with a unit (500M, 2GiB; K, M,
        /// G, T and KiB … TiB are powers of 1024, kB, MB, GB, TB of 1000).
        /// Default: BOTERNITY_CACHE_MAX_SIZE, else 10GiB.
        #[arg(long, value_name = "SIZE", value_parser = parse_size)]
        max_size: Option<u64>,
        #[command(flatten)]
        format: OutputArgs,
    },
    /// Remove everything the cache folder holds that can be made again.
    ///
    /// Build outputs, the cargo home, git and download caches (what
    /// --offline installs from), compiled components. Never the store, the
    /// .cwasm signing key, nor the newest serial seen from each registry.
    /// What a running build uses is kept.
    #[command(after_help = "Example:\n  boternity cache clean")]
    Clean {
        #[command(flatten)]
        format: OutputArgs,
    },
}

fn parse_size(text: &str) -> Result<u64, String> {
    cache::parse_size(text).map_err(|e| e.to_string())
}

impl Opts {
    /// The subcommand's name as typed.
    pub fn name(&self) -> &'static str {
        match self.command {
            CacheCommand::Info { .. } => "cache info",
            CacheCommand::Gc { .. } => "cache gc",
            CacheCommand::Clean { .. } => "cache clean",
        }
    }

    /// The subcommand's `--message-format`.
    pub fn format(&self) -> OutputArgs {
        match &self.command {
            CacheCommand::Info { format }
            | CacheCommand::Gc { format, .. }
            | CacheCommand::Clean { format } => *format,
        }
    }

    pub fn run(self) -> anyhow::Result<ExitCode> {
        let context = super::context::from_env(None);
        let json = self.format().json();
        match self.command {
            CacheCommand::Info { .. } => {
                let info = cache::info(&context.folders)?;
                report_info(&info, context.cache_budget, json);
            }
            CacheCommand::Gc { max_size, .. } => {
                let Some(budget) = max_size.or(context.cache_budget) else {
                    anyhow::bail!(
                        "the cache has no budget (BOTERNITY_CACHE_MAX_SIZE=unlimited): pass --max-size SIZE"
                    );
                };
                let sweep = cache::gc(&context.folders, budget)?;
                if json {
                    message::emit(&CacheGc {
                        budget,
                        before_bytes: sweep.before_bytes,
                        after_bytes: sweep.after_bytes,
                        removed: entries(&sweep.removed),
                        in_use: entries(&sweep.in_use),
                    });
                } else {
                    report_sweep(&sweep);
                    eprintln!(
                        "{:>12} build outputs {} -> {} (budget {})",
                        "Swept",
                        human_size(sweep.before_bytes),
                        human_size(sweep.after_bytes),
                        human_size(budget)
                    );
                }
            }
            CacheCommand::Clean { .. } => {
                let sweep = cache::clean(&context.folders)?;
                if json {
                    message::emit(&CacheCleaned {
                        before_bytes: sweep.before_bytes,
                        after_bytes: sweep.after_bytes,
                        removed: entries(&sweep.removed),
                        in_use: entries(&sweep.in_use),
                    });
                } else {
                    report_sweep(&sweep);
                    eprintln!(
                        "{:>12} {} -> {}",
                        "Cleaned",
                        human_size(sweep.before_bytes),
                        human_size(sweep.after_bytes)
                    );
                }
            }
        }
        Ok(ExitCode::SUCCESS)
    }
}

fn report_info(info: &Info, budget: Option<u64>, json: bool) {
    if json {
        message::emit(&CacheInfo {
            cache_dir: &info.cache_dir,
            total_bytes: info.total_bytes,
            swept_bytes: info.swept_bytes,
            budget,
            kinds: info
                .kinds
                .iter()
                .map(|k| CacheKindField {
                    kind: k.kind.name(),
                    path: &k.path,
                    bytes: k.bytes,
                    entries: k.entries,
                    last_used: k.last_used.map(rfc3339),
                    swept: k.swept,
                })
                .collect(),
        });
        return;
    }
    println!(
        "{:<14} {:>10} {:>8}  {:<20}  {:<5}  PATH",
        "KIND", "SIZE", "ENTRIES", "LAST USED", "SWEPT"
    );
    for k in &info.kinds {
        println!(
            "{:<14} {:>10} {:>8}  {:<20}  {:<5}  {}",
            k.kind.name(),
            human_size(k.bytes),
            k.entries,
            k.last_used.map_or_else(|| "-".to_string(), rfc3339),
            if k.swept { "yes" } else { "no" },
            k.path.display()
        );
    }
    let budget = budget.map_or_else(|| "no budget".to_string(), |b| human_size(b) + " budget");
    eprintln!(
        "{} in {}; build outputs {} of a {budget}",
        human_size(info.total_bytes),
        info.cache_dir.display(),
        human_size(info.swept_bytes),
    );
}

fn report_sweep(sweep: &Sweep) {
    for e in &sweep.removed {
        eprintln!(
            "{:>12} {} ({}, {})",
            "Removed",
            e.path.display(),
            e.kind,
            human_size(e.bytes)
        );
    }
    for e in &sweep.in_use {
        eprintln!(
            "{:>12} {} ({}, {}): a build is using it",
            "Kept",
            e.path.display(),
            e.kind,
            human_size(e.bytes)
        );
    }
}

fn entries(list: &[cache::Entry]) -> Vec<CacheEntryField<'_>> {
    list.iter()
        .map(|e| CacheEntryField {
            kind: e.kind.name(),
            path: &e.path,
            bytes: e.bytes,
            last_used: e.last_used.map(rfc3339),
        })
        .collect()
}

fn rfc3339(time: SystemTime) -> String {
    humantime::format_rfc3339_seconds(time).to_string()
}
