//! `new-skill`: a new Tool skill crate from `templates/skill/`, and the crate
//! files the bare-`lib.rs` wrapper shares with it (one template, two uses).

use std::path::{Path, PathBuf};

use crate::fsutil::{IoError, IoOp, IoResultExt, StagedDir};
use crate::skill::manifest::{self, ManifestError};
use crate::skill::world::SKILL_WIT;

const TEMPLATE_SKILL_MD: &str = include_str!("../../templates/skill/SKILL.md");
const TEMPLATE_CARGO_TOML: &str = include_str!("../../templates/skill/Cargo.toml.template");
const TEMPLATE_LIB_RS: &str = include_str!("../../templates/skill/src/lib.rs");
/// Where a skill crate keeps the world for `wit_bindgen::generate!`.
pub const SKILL_WIT_PATH: &str = "wit/boternity-skill.wit";

/// Why a skill could not be scaffolded.
#[derive(Debug, thiserror::Error)]
pub enum ScaffoldError {
    #[error(transparent)]
    InvalidName(#[from] ManifestError),
    #[error("{} already exists; choose another name or remove it first", .0.display())]
    Exists(PathBuf),
    #[error(transparent)]
    Io(#[from] IoError),
}

fn render(template: &str, name: &str) -> String {
    template.replace("{{name}}", name)
}

/// Writes `Cargo.toml` and `wit/` for a skill crate named `name` into `dir`.
pub fn write_crate_files(name: &str, dir: &Path) -> Result<(), IoError> {
    for sub in ["src", "wit"] {
        let path = dir.join(sub);
        std::fs::create_dir_all(&path).on(IoOp::Create, &path)?;
    }
    let cargo_toml = dir.join("Cargo.toml");
    std::fs::write(&cargo_toml, render(TEMPLATE_CARGO_TOML, name)).on(IoOp::Write, &cargo_toml)?;
    let wit = dir.join(SKILL_WIT_PATH);
    std::fs::write(&wit, SKILL_WIT).on(IoOp::Write, &wit)
}

/// Creates `<parent>/<name>/` holding a complete Tool skill that builds as is.
/// Staged beside its destination first, so a failure leaves nothing behind.
pub fn new_skill(name: &str, parent: &Path) -> Result<PathBuf, ScaffoldError> {
    manifest::check_name(name)?;
    let dest = parent.join(name);
    if dest.exists() {
        return Err(ScaffoldError::Exists(dest));
    }
    let staged = StagedDir::new_in(parent, name)?;
    write_crate_files(name, staged.path())?;
    staged.write("src/lib.rs", render(TEMPLATE_LIB_RS, name).as_bytes())?;
    staged.write(
        manifest::MANIFEST_FILE,
        render(TEMPLATE_SKILL_MD, name).as_bytes(),
    )?;
    staged.write(".gitignore", b"/target\n")?;
    staged.commit_new(&dest).map_err(|e| {
        if e.kind() == std::io::ErrorKind::AlreadyExists {
            ScaffoldError::Exists(dest.clone())
        } else {
            e.into()
        }
    })?;
    Ok(dest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scaffolds_a_checked_skill_and_refuses_bad_names_and_existing_folders() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = new_skill("hello-skill", tmp.path()).unwrap();
        let m = crate::skill::manifest::Manifest::load(&dir).unwrap();
        assert_eq!(m.name, "hello-skill");
        assert_eq!(m.skill_type, crate::skill::manifest::SkillType::Tool);
        assert!(
            std::fs::read_to_string(dir.join("src/lib.rs"))
                .unwrap()
                .contains("\"hello-skill\"")
        );
        assert!(matches!(
            new_skill("hello-skill", tmp.path()),
            Err(ScaffoldError::Exists(_))
        ));
        assert!(matches!(
            new_skill("Bad_Name", tmp.path()),
            Err(ScaffoldError::InvalidName(_))
        ));
        // Nothing but the one skill was left behind.
        assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 1);
    }
}
