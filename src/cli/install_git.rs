//! `boternity install --git <URL|owner/repo>`: skills from a git repository,
//! at a branch, tag or commit, through the same pipeline and store as a
//! local folder.

use std::path::Path;
use std::process::ExitCode;

use boternity_skills::git::install as git_install;
use boternity_skills::git::spec;
use boternity_skills::install::Pick;
use boternity_skills::{Context, InstallOptions, Installer, SkillStore, Source};

use super::args::OutputArgs;
use super::message::{self, SkillFound};

/// The flags of `install --git`.
#[derive(clap::Args, Clone, Debug, Default)]
pub struct GitArgs {
    /// Install from a git repository: an https://, http://, ssh://, git:// or
    /// file:// URL, `git@host:path`, `owner/repo` (GitHub), a GitHub/GitLab
    /// tree URL (`…/tree/<ref>/<path>`), or a local repository. The
    /// positional arguments are then the skills to install.
    #[arg(long, value_name = "URL|owner/repo", allow_hyphen_values = true)]
    pub git: Option<String>,
    /// With --git: the branch to install from (default: the remote's default branch).
    #[arg(long, requires = "git", conflicts_with_all = ["tag", "rev"])]
    pub branch: Option<String>,
    /// With --git: the tag to install from.
    #[arg(long, requires = "git", conflicts_with = "rev")]
    pub tag: Option<String>,
    /// With --git: a full commit id; the install is pinned (`update` leaves it).
    #[arg(long, requires = "git")]
    pub rev: Option<String>,
    /// With --git: the folder inside the repository to look in.
    #[arg(long, requires = "git", value_name = "SUBDIR")]
    pub path: Option<String>,
    /// With --git: install every skill the repository holds.
    #[arg(long, requires = "git")]
    pub all: bool,
    /// With --git: print the skills that would be installed; install nothing.
    #[arg(long, requires = "git")]
    pub list: bool,
    /// With --git or --registry: more skills to install (by name or
    /// folder, or NAME[@VERSION]); after an oci:// reference, more oci://
    /// references. All are installed, or none.
    #[arg(value_name = "SKILL")]
    pub more: Vec<String>,
}

/// Runs `install --git`; `first` is the first positional (a skill name).
pub fn run(
    context: &Context,
    git: &GitArgs,
    first: &Path,
    store: &SkillStore,
    options: &InstallOptions,
    offline: bool,
    format: OutputArgs,
) -> anyhow::Result<ExitCode> {
    let source = git.git.clone().unwrap_or_default();
    let result = install(context, git, first, store, options, offline, format);
    match result {
        Ok(code) => Ok(code),
        Err(err) => Ok(super::install::failed(
            err.context(format!("cannot install from {source}")),
            Path::new(&source),
            format,
        )),
    }
}

fn install(
    context: &Context,
    git: &GitArgs,
    first: &Path,
    store: &SkillStore,
    options: &InstallOptions,
    offline: bool,
    format: OutputArgs,
) -> anyhow::Result<ExitCode> {
    let source = git.git.as_deref().unwrap_or_default();
    let spec = spec::parse(
        source,
        git.branch.as_deref(),
        git.tag.as_deref(),
        git.rev.as_deref(),
        git.path.as_deref(),
    )?;
    for warning in &spec.warnings {
        eprintln!("warning: {warning}");
    }
    let mut names: Vec<String> = Vec::new();
    // `.`: the positional's stand-in when only flags were given.
    if first != Path::new(".") {
        names.push(first.to_string_lossy().into_owned());
    }
    names.extend(git.more.iter().cloned());
    if !format.json() {
        eprintln!("{:>12} {}", "Fetching", spec.url);
    }
    if git.list {
        let checkout = git_install::checkout(context, &spec, offline)?;
        let found = checkout.discover()?;
        let chosen = if names.is_empty() {
            found
        } else {
            git_install::select(found, &names, false, &checkout.url)?
        };
        for f in &chosen {
            if format.json() {
                message::emit(&SkillFound {
                    name: &f.key,
                    written_name: f.manifest.as_ref().ok().map(|m| m.written_name.as_str()),
                    path: &f.rel,
                    skill_type: f.manifest.as_ref().ok().map(|m| m.skill_type.to_string()),
                    description: f.manifest.as_ref().ok().map(|m| m.description.as_str()),
                    manifest_error: f
                        .manifest
                        .as_ref()
                        .err()
                        .map(|e| boternity_skills::error_chain(e.as_ref())),
                    url: &checkout.url,
                    commit: &checkout.commit,
                });
            } else {
                println!("{}", f.describe());
            }
        }
        return Ok(ExitCode::SUCCESS);
    }
    let executor = super::executor()?;
    let installer = Installer::new(context, store).with_executor(&executor);
    let source = Source::Git {
        spec,
        pick: Pick {
            names,
            all: git.all,
        },
        offline,
    };
    let installed = installer.install(&source, options)?;
    for i in &installed {
        super::install::report(i, format.message_format);
    }
    Ok(ExitCode::SUCCESS)
}
