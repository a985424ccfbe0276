//! `boternity check`: lint `SKILL.md` files the way compilers report, for
//! skill authors and registry CI; `--fix` repairs what keeps its meaning.

use std::path::PathBuf;
use std::process::ExitCode;

use boternity_skills::skill::lint::{self, Severity};

use super::args::OutputArgs;
use super::message::{self, CheckFinished};

/// Check SKILL.md files against the Agent Skills spec.
///
/// PATHS are SKILL.md files, skill folders or registry roots (every skill
/// folder below is checked). Each finding prints as
/// `path:line:col: warning[code]: message` and its fix. Warnings are what
/// `install` accepts anyway (a lenient fallback); errors are what it refuses.
/// `--fix` quotes values that need it, removes a byte-order mark and trims
/// fence lines, touching only the front matter.
#[derive(clap::Args)]
#[command(
    after_help = "Examples:\n  boternity check skills/\n  boternity check skills/pdf/SKILL.md --fix\n  boternity check registry/ --strict --message-format json\n\nExit status:\n  0  no errors (and with --strict no warnings)\n  1  at least one error (or with --strict a warning)"
)]
pub struct Opts {
    /// SKILL.md files, skill folders or registry roots.
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    /// Treat warnings as errors (registries that enforce the spec).
    #[arg(long)]
    strict: bool,
    /// Rewrite what can be repaired without changing meaning, then check.
    #[arg(long)]
    fix: bool,
    #[command(flatten)]
    pub format: OutputArgs,
}

impl Opts {
    pub fn run(self) -> anyhow::Result<ExitCode> {
        let report = lint::check(&self.paths, self.fix)?;
        let errors = report.count(Severity::Error);
        let warnings = report.count(Severity::Warning);
        if self.format.json() {
            for finding in &report.findings {
                message::emit(&message::CheckFinding { finding });
            }
            message::emit(&CheckFinished {
                skills: report.checked.len(),
                errors,
                warnings,
                fixed: &report.fixed,
                strict: self.strict,
            });
        } else {
            for path in &report.fixed {
                eprintln!("{:>12} {}", "Fixed", path.display());
            }
            for f in &report.findings {
                let kind = match f.severity {
                    Severity::Warning if self.strict => format!("error[{}]", f.code),
                    Severity::Warning => format!("warning[{}]", f.code),
                    Severity::Error => "error".to_string(),
                };
                println!(
                    "{}:{}:{}: {kind}: {}",
                    f.path.display(),
                    f.line,
                    f.column,
                    f.message
                );
                if let Some(fix) = &f.fix {
                    println!("    = fix: {fix}");
                }
            }
            eprintln!(
                "{:>12} {} skills: {errors} errors, {warnings} warnings",
                "Checked",
                report.checked.len()
            );
        }
        let failed = errors > 0 || (self.strict && warnings > 0);
        Ok(if failed {
            ExitCode::FAILURE
        } else {
            ExitCode::SUCCESS
        })
    }
}
