//! `read-file` and `write-file`: a skill's paths resolved inside its data
//! folder, refusing absolute paths, `..` and symlinks that lead out, with
//! sizes capped.

use std::io::{Read, Write};
use std::path::{Component, Path, PathBuf};

use super::MAX_FILE_BYTES;

/// Resolves a skill-supplied relative path inside `root`, refusing absolute
/// paths, `..`, and anything whose real location (after symlinks) is outside.
fn confine(root: &Path, path: &str) -> Result<PathBuf, String> {
    let rel = Path::new(path);
    if path.is_empty() {
        return Err("permission denied: empty path".into());
    }
    for component in rel.components() {
        match component {
            Component::Normal(_) | Component::CurDir => {}
            _ => {
                return Err(format!(
                    "permission denied: `{path}` must be a relative path inside the skill's data folder \
                     (no `/` at the start, no `..`)"
                ));
            }
        }
    }
    let root = root.canonicalize().map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            // Made on the first write; until then it holds nothing.
            format!("cannot read `{path}`: it does not exist (the skill's data folder is empty)")
        } else {
            format!("the skill's data folder is not available: {e}")
        }
    })?;
    Ok(root.join(rel))
}

fn escapes(root: &Path, real: &Path) -> bool {
    match root.canonicalize() {
        Ok(root) => !real.starts_with(root),
        Err(_) => true,
    }
}

pub(super) fn read_confined(root: &Path, path: &str) -> Result<String, String> {
    let full = confine(root, path)?;
    let real = full
        .canonicalize()
        .map_err(|e| format!("cannot read `{path}`: {e}"))?;
    if escapes(root, &real) {
        return Err(format!(
            "permission denied: `{path}` leads outside the skill's data folder"
        ));
    }
    let file = std::fs::File::open(&real).map_err(|e| format!("cannot read `{path}`: {e}"))?;
    let mut text = String::new();
    file.take(MAX_FILE_BYTES + 1)
        .read_to_string(&mut text)
        .map_err(|e| format!("cannot read `{path}`: {e}"))?;
    if text.len() as u64 > MAX_FILE_BYTES {
        return Err(format!(
            "`{path}` is larger than {MAX_FILE_BYTES} bytes, the read-file limit"
        ));
    }
    Ok(text)
}

pub(super) fn write_confined(root: &Path, path: &str, content: &[u8]) -> Result<(), String> {
    if content.len() as u64 > MAX_FILE_BYTES {
        return Err(format!(
            "content is larger than {MAX_FILE_BYTES} bytes, the write-file limit"
        ));
    }
    // The data folder is made on first write.
    std::fs::create_dir_all(root)
        .map_err(|e| format!("cannot create the skill's data folder: {e}"))?;
    let full = confine(root, path)?;
    let parent = full.parent().unwrap_or(&full);
    std::fs::create_dir_all(parent).map_err(|e| format!("cannot write `{path}`: {e}"))?;
    let real_parent = parent
        .canonicalize()
        .map_err(|e| format!("cannot write `{path}`: {e}"))?;
    if escapes(root, &real_parent) {
        return Err(format!(
            "permission denied: `{path}` leads outside the skill's data folder"
        ));
    }
    let target = real_parent.join(full.file_name().unwrap_or_default());
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        // Never write through a symlink, even one pointing inside.
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(libc::O_NOFOLLOW);
    }
    let mut file = options.open(&target).map_err(|e| {
        if e.raw_os_error() == Some(libc::ELOOP) {
            format!("permission denied: `{path}` is a symlink")
        } else {
            format!("cannot write `{path}`: {e}")
        }
    })?;
    file.write_all(content)
        .map_err(|e| format!("cannot write `{path}`: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_stay_inside_the_data_folder() {
        let dir = tempfile::tempdir().unwrap();
        write_confined(dir.path(), "notes/a.txt", b"hi").unwrap();
        assert_eq!(read_confined(dir.path(), "notes/a.txt").unwrap(), "hi");
        assert_eq!(
            read_confined(&dir.path().join("never-written"), "a.txt").unwrap_err(),
            "cannot read `a.txt`: it does not exist (the skill's data folder is empty)"
        );
        for bad in ["/etc/passwd", "../x", "notes/../../x", ""] {
            assert!(
                read_confined(dir.path(), bad)
                    .unwrap_err()
                    .contains("permission denied"),
                "{bad}"
            );
        }
        #[cfg(unix)]
        {
            std::os::unix::fs::symlink("/etc", dir.path().join("etc")).unwrap();
            assert!(
                read_confined(dir.path(), "etc/passwd")
                    .unwrap_err()
                    .contains("outside")
            );
            assert!(
                write_confined(dir.path(), "etc/x", b"x")
                    .unwrap_err()
                    .contains("outside")
            );
        }
    }
}
