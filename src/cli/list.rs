//! `boternity list`: the skills in the store.

use std::process::ExitCode;

use boternity_skills::store::InstalledBinary;

use super::args::{OutputArgs, StoreArgs};
use super::message::{self, InstalledSkillLine};

/// List installed skills.
///
/// Name, version, type, binary, trust tier and how the binary was made.
#[derive(clap::Args)]
pub struct Opts {
    #[command(flatten)]
    store: StoreArgs,
    #[command(flatten)]
    pub format: OutputArgs,
}

impl Opts {
    pub fn run(self) -> anyhow::Result<ExitCode> {
        let store = self.store.open()?;
        let skills = store.list()?;
        if !self.format.json() {
            println!(
                "{:<28} {:<10} {:<7} {:<10} {:<10} {:<14} ORIGIN",
                "NAME", "VERSION", "TYPE", "BINARY", "TIER", "PATH TAKEN"
            );
        }
        for skill in &skills {
            let (version, skill_type) = match &skill.manifest {
                Ok(m) => (
                    m.version.clone().unwrap_or_else(|| "-".into()),
                    m.skill_type.to_string(),
                ),
                Err(_) => ("?".into(), "broken".into()),
            };
            let binary = match skill.binary {
                None => "-",
                Some(InstalledBinary::Component) => "component",
                Some(InstalledBinary::Stub) => "STUB",
                Some(InstalledBinary::Unknown) => "unknown",
            };
            let path_taken = skill
                .provenance
                .as_ref()
                .map_or("(old install)".to_string(), |p| p.path_taken.to_string());
            if self.format.json() {
                message::emit(&InstalledSkillLine {
                    name: &skill.name,
                    written_name: skill
                        .manifest
                        .as_ref()
                        .ok()
                        .map(|m| m.written_name.as_str()),
                    files: skill.provenance.as_ref().map_or(0, |p| p.files.len()),
                    version: &version,
                    skill_type: &skill_type,
                    binary: skill.binary,
                    trust_tier: skill.trust_tier(),
                    path_taken: skill.provenance.as_ref().map(|p| p.path_taken),
                    manifest_error: skill
                        .manifest
                        .as_ref()
                        .err()
                        .map(|e| boternity_skills::error_chain(e.as_ref())),
                    path: &skill.dir,
                    origin: skill.provenance.as_ref().and_then(|p| p.origin.as_ref()),
                });
            } else {
                // The key, and the name as the author wrote it when it differs.
                let written = skill
                    .manifest
                    .as_ref()
                    .ok()
                    .map(|m| m.written_name.as_str());
                let name = match written {
                    Some(w) if w != skill.name => format!("{} ({w})", skill.name),
                    _ => skill.name.clone(),
                };
                println!(
                    "{:<28} {:<10} {:<7} {:<10} {:<10} {:<14} {}",
                    name,
                    version,
                    skill_type,
                    binary,
                    skill.trust_tier(),
                    path_taken,
                    origin_text(skill)
                );
            }
        }
        Ok(ExitCode::SUCCESS)
    }
}

/// Where a skill came from, for the ORIGIN column: for git, the URL, the
/// skill's path in it, and the commit with the ref it follows.
fn origin_text(skill: &boternity_skills::store::InstalledSkill) -> String {
    use boternity_skills::store::provenance::Origin;
    match skill.provenance.as_ref().and_then(|p| p.origin.as_ref()) {
        None => "-".into(),
        Some(Origin::Git {
            url,
            path,
            requested,
            commit,
        }) => {
            let at = if path.is_empty() {
                String::new()
            } else {
                format!(" {path}")
            };
            let followed = match requested.as_deref() {
                None => "default branch".to_string(),
                Some(r) if boternity_skills::git::spec::is_full_commit(r) => "pinned".into(),
                Some(r) => r
                    .strip_prefix("refs/heads/")
                    .or_else(|| r.strip_prefix("refs/tags/"))
                    .unwrap_or(r)
                    .to_string(),
            };
            format!(
                "git {url}{at} @ {} ({followed})",
                &commit[..commit.len().min(12)]
            )
        }
        Some(other) => other.describe(),
    }
}
