//! `new-skill`: a new Tool skill crate from `templates/skill/`, and the crate
//! files the bare-`lib.rs` wrapper shares with it (one template, two uses).

use std::path::{Path, PathBuf};

use crate::manifest::{self, ManifestError};
use crate::world::SKILL_WIT;

const TEMPLATE_SKILL_MD: &str = include_str!("../templates/skill/SKILL.md");
const TEMPLATE_CARGO_TOML: &str = include_str!("../templates/skill/Cargo.toml");
const TEMPLATE_LIB_RS: &str = include_str!("../templates/skill/src/lib.rs");
/// Where a skill crate keeps the world for `wit_bindgen::generate!`.
pub const SKILL_WIT_PATH: &str = "wit/boternity-skill.wit";

/// Why a skill could not be scaffolded.
#[derive(Debug, thiserror::Error)]
pub enum ScaffoldError {
    #[error(transparent)]
    InvalidName(#[from] ManifestError),
    #[error("{} already exists; choose another name or remove it first", .0.display())]
    Exists(PathBuf),
    #[error("cannot create {}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

fn render(template: &str, name: &str) -> String {
    template.replace("{{name}}", name)
}

/// Writes `Cargo.toml` and `wit/` for a skill crate named `name` into `dir`.
pub fn write_crate_files(name: &str, dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir.join("src"))?;
    std::fs::create_dir_all(dir.join("wit"))?;
    std::fs::write(dir.join("Cargo.toml"), render(TEMPLATE_CARGO_TOML, name))?;
    std::fs::write(dir.join(SKILL_WIT_PATH), SKILL_WIT)?;
    Ok(())
}

/// Creates `<parent>/<name>/` holding a complete Tool skill that builds as is.
/// Writes into a temporary folder first so a failure leaves nothing behind.
pub fn new_skill(name: &str, parent: &Path) -> Result<PathBuf, ScaffoldError> {
    manifest::check_name(name)?;
    let dest = parent.join(name);
    if dest.exists() {
        return Err(ScaffoldError::Exists(dest));
    }
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| ScaffoldError::Io { path, source }
    };
    std::fs::create_dir_all(parent).map_err(io(parent))?;
    let staging = tempfile::Builder::new()
        .prefix(&format!(".{name}-new-"))
        .tempdir_in(parent)
        .map_err(io(parent))?;
    let root = staging.path();
    write_crate_files(name, root).map_err(io(root))?;
    std::fs::write(root.join("src/lib.rs"), render(TEMPLATE_LIB_RS, name)).map_err(io(root))?;
    std::fs::write(root.join("SKILL.md"), render(TEMPLATE_SKILL_MD, name)).map_err(io(root))?;
    std::fs::write(root.join(".gitignore"), "/target\n").map_err(io(root))?;
    // `rename` fails rather than replace a folder created meanwhile.
    let staged = staging.keep();
    std::fs::rename(&staged, &dest).map_err(|source| {
        let _ = std::fs::remove_dir_all(&staged);
        if dest.exists() {
            ScaffoldError::Exists(dest.clone())
        } else {
            ScaffoldError::Io {
                path: dest.clone(),
                source,
            }
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
        let m = crate::manifest::Manifest::load(&dir).unwrap();
        assert_eq!(m.name, "hello-skill");
        assert_eq!(m.skill_type, crate::manifest::SkillType::Tool);
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
