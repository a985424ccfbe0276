//! Where a skill's dependencies may come from: crates.io (or the mirror that
//! replaces it) and path dependencies inside the skill folder. Checked from
//! the skill's own `Cargo.toml` files and `Cargo.lock` *before* the fetch, so
//! a manifest can never point the fetch at a source of its choosing — an
//! alternative registry, a `registry-index` on loopback, a git repository —
//! and the refusal names the file, the dependency and the way out.

use std::path::{Path, PathBuf};

/// The crates.io index as a lock file names it (git and sparse protocols).
const CRATES_IO_SOURCES: [&str; 2] = [
    "registry+https://github.com/rust-lang/crates.io-index",
    "sparse+https://index.crates.io/",
];

/// A dependency source the fetch will not reach.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum SourceRefused {
    #[error(
        "{}: dependency `{dependency}` comes from {what}; a confined build fetches only from \
         crates.io{}: {how}",
        file.display(), mirror_note(mirror)
    )]
    Dependency {
        file: PathBuf,
        dependency: String,
        what: String,
        how: &'static str,
        mirror: bool,
    },
    #[error(
        "{}: `[{section}]` redirects dependencies ({what}); a confined build fetches only from \
         crates.io and the skill folder: remove it, vendoring a patched crate into the folder \
         as a path dependency",
        file.display()
    )]
    Redirect {
        file: PathBuf,
        section: String,
        what: String,
    },
    #[error(
        "{}: package `{package}` is locked to `{source_id}`, not crates.io; a confined build \
         fetches only from crates.io{}: remove the lock entry's source (or the lock file) and \
         depend on a crates.io release, or vendor the crate into the skill folder",
        file.display(), mirror_note(mirror)
    )]
    Locked {
        file: PathBuf,
        package: String,
        source_id: String,
        mirror: bool,
    },
    #[error("{} is not valid TOML: {message}", file.display())]
    Unreadable { file: PathBuf, message: String },
}

fn mirror_note(mirror: &bool) -> &'static str {
    if *mirror {
        " (through the configured mirror)"
    } else {
        ""
    }
}

const GIT_HOW: &str = "git dependencies are not fetched in the build sandbox; vendor the crate into \
     the skill folder and depend on it with `path = \"…\"`, or depend on a crates.io release";
const REGISTRY_HOW: &str = "depend on the crates.io release instead, or vendor the crate into the \
     skill folder and depend on it with `path = \"…\"`";

/// Checks every `Cargo.toml` (`manifests`, each with its text) and the
/// `Cargo.lock` text, if any. `mirror`: a mirror replaces crates.io (said in
/// the error).
pub fn check(
    manifests: &[(PathBuf, String)],
    lock: Option<(&Path, &str)>,
    mirror: bool,
) -> Result<(), SourceRefused> {
    for (file, text) in manifests {
        let value: toml::Value = toml::from_str(text).map_err(|e| SourceRefused::Unreadable {
            file: file.clone(),
            message: e.message().to_string(),
        })?;
        check_manifest(file, &value, mirror)?;
    }
    if let Some((file, text)) = lock {
        let value: toml::Value = toml::from_str(text).map_err(|e| SourceRefused::Unreadable {
            file: file.to_path_buf(),
            message: e.message().to_string(),
        })?;
        let packages = value
            .get("package")
            .and_then(|p| p.as_array())
            .cloned()
            .unwrap_or_default();
        for package in packages {
            let Some(source) = package.get("source").and_then(|s| s.as_str()) else {
                continue; // a path package: inside the folder (checked from metadata)
            };
            if !CRATES_IO_SOURCES.contains(&source) {
                return Err(SourceRefused::Locked {
                    file: file.to_path_buf(),
                    package: package
                        .get("name")
                        .and_then(|n| n.as_str())
                        .unwrap_or("?")
                        .to_string(),
                    source_id: source.to_string(),
                    mirror,
                });
            }
        }
    }
    Ok(())
}

fn check_manifest(file: &Path, value: &toml::Value, mirror: bool) -> Result<(), SourceRefused> {
    let Some(table) = value.as_table() else {
        return Ok(());
    };
    for (key, item) in table {
        match key.as_str() {
            "patch" | "replace" => {
                if let Some(sources) = item.as_table() {
                    for (source, deps) in sources {
                        // `[patch.crates-io] x = { path = "…" }` keeps to the folder.
                        for (name, dep) in deps.as_table().into_iter().flatten() {
                            if let Some(what) = foreign(dep) {
                                return Err(SourceRefused::Redirect {
                                    file: file.to_path_buf(),
                                    section: format!("{key}.{source}"),
                                    what: format!("`{name}` from {what}"),
                                });
                            }
                        }
                        if key == "replace" && foreign(deps).is_some() {
                            return Err(SourceRefused::Redirect {
                                file: file.to_path_buf(),
                                section: key.clone(),
                                what: source.clone(),
                            });
                        }
                    }
                }
            }
            "target" => {
                // [target.'cfg(…)'.dependencies] and friends.
                for platform in item.as_table().into_iter().flat_map(|t| t.values()) {
                    check_manifest(file, platform, mirror)?;
                }
            }
            "workspace" => {
                if let Some(deps) = item.get("dependencies") {
                    check_dependencies(file, deps, mirror)?;
                }
            }
            k if k.ends_with("dependencies") => check_dependencies(file, item, mirror)?,
            _ => {}
        }
    }
    Ok(())
}

fn check_dependencies(file: &Path, deps: &toml::Value, mirror: bool) -> Result<(), SourceRefused> {
    for (name, dep) in deps.as_table().into_iter().flatten() {
        if let Some(what) = foreign(dep) {
            let how = if dep.get("git").is_some() {
                GIT_HOW
            } else {
                REGISTRY_HOW
            };
            return Err(SourceRefused::Dependency {
                file: file.to_path_buf(),
                dependency: name.clone(),
                what,
                how,
                mirror,
            });
        }
    }
    Ok(())
}

/// What a dependency table names besides crates.io and a path, if anything.
fn foreign(dep: &toml::Value) -> Option<String> {
    let text = |k: &str| dep.get(k).map(|v| v.as_str().unwrap_or("?").to_string());
    if let Some(url) = text("git") {
        return Some(format!("the git repository `{url}`"));
    }
    if let Some(index) = text("registry-index") {
        return Some(format!("the registry index `{index}`"));
    }
    if let Some(registry) = text("registry") {
        return Some(format!("the registry `{registry}`"));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest(text: &str) -> Result<(), SourceRefused> {
        check(
            &[(PathBuf::from("Cargo.toml"), text.to_string())],
            None,
            false,
        )
    }

    #[test]
    fn crates_io_and_path_dependencies_pass() {
        manifest(
            "[package]\nname='a'\n[dependencies]\nserde = '1'\nx = { path = 'x' }\n\
             [build-dependencies]\ncc = { version = '1' }\n\
             [patch.crates-io]\nserde = { path = 'vendor/serde' }\n",
        )
        .unwrap();
        let lock = "version = 4\n[[package]]\nname = \"serde\"\nversion = \"1.0.0\"\n\
             source = \"registry+https://github.com/rust-lang/crates.io-index\"\n\
             [[package]]\nname = \"a\"\nversion = \"0.1.0\"\n";
        check(&[], Some((Path::new("Cargo.lock"), lock)), false).unwrap();
    }

    #[test]
    fn every_other_source_is_refused_naming_file_and_dependency() {
        let cases = [
            (
                "[dependencies]\nx = { version = '1', registry-index = 'sparse+http://127.0.0.1:80/' }\n",
                "127.0.0.1:80",
            ),
            (
                "[dependencies]\nx = { git = 'https://example.org/x' }\n",
                "vendor the crate",
            ),
            (
                "[dev-dependencies]\nx = { version = '1', registry = 'corp' }\n",
                "registry `corp`",
            ),
            (
                "[target.'cfg(unix)'.build-dependencies]\nx = { git = 'file:///etc' }\n",
                "file:///etc",
            ),
            (
                "[workspace.dependencies]\nx = { git = 'ssh://h/x' }\n",
                "ssh://h/x",
            ),
            (
                "[patch.crates-io]\nserde = { git = 'https://e/serde' }\n",
                "[patch.crates-io]",
            ),
            (
                "[patch.'https://github.com/rust-lang/crates.io-index']\nx = { registry-index = 'sparse+http://10.0.0.1/' }\n",
                "10.0.0.1",
            ),
        ];
        for (text, expected) in cases {
            let err = manifest(text).unwrap_err().to_string();
            assert!(err.contains("Cargo.toml"), "{err}");
            assert!(err.contains(expected), "{text}: {err}");
        }
        let lock = "[[package]]\nname = \"evil\"\nversion = \"1.0.0\"\n\
             source = \"sparse+http://127.0.0.1:8080/index/\"\n";
        let err = check(&[], Some((Path::new("/s/Cargo.lock"), lock)), false)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("/s/Cargo.lock") && err.contains("`evil`"),
            "{err}"
        );
        assert!(err.contains("sparse+http://127.0.0.1:8080/index/"), "{err}");
    }
}
