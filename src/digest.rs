//! Content digests: sha256 of bytes, and of a source tree (for provenance and
//! the build cache).

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// Lower-case hex sha256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Folders never part of a skill's source: build output and VCS metadata.
const SKIPPED_DIRS: &[&str] = &["target", ".git"];

/// sha256 over a folder's files: each file's path relative to `root` (with `/`
/// separators, in sorted order) and its contents, so renaming, adding or editing
/// any file changes it while the folder's own location does not.
/// `skip_file` excludes files by relative path (e.g. a shipped `skill.wasm`).
pub fn tree_sha256(root: &Path, skip_file: impl Fn(&str) -> bool) -> std::io::Result<String> {
    let mut files = Vec::new();
    collect_files(root, root, &mut files)?;
    files.sort();
    let mut hasher = Sha256::new();
    for rel in files {
        let rel_str = rel
            .components()
            .map(|c| c.as_os_str().to_string_lossy())
            .collect::<Vec<_>>()
            .join("/");
        if skip_file(&rel_str) {
            continue;
        }
        let contents = std::fs::read(root.join(&rel))?;
        hasher.update((rel_str.len() as u64).to_le_bytes());
        hasher.update(rel_str.as_bytes());
        hasher.update((contents.len() as u64).to_le_bytes());
        hasher.update(&contents);
    }
    Ok(hex::encode(hasher.finalize()))
}

fn collect_files(root: &Path, dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let kind = entry.file_type()?;
        let path = entry.path();
        if kind.is_dir() {
            if SKIPPED_DIRS.iter().any(|s| entry.file_name() == *s) {
                continue;
            }
            collect_files(root, &path, out)?;
        } else if kind.is_file() || (kind.is_symlink() && path.is_file()) {
            // A symlinked file counts by its contents (`source` has already
            // refused links leading out of the skill folder).
            out.push(path.strip_prefix(root).unwrap_or(&path).to_path_buf());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tree_hash_ignores_location_but_not_content() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        for d in [a.path(), b.path()] {
            std::fs::create_dir_all(d.join("src")).unwrap();
            std::fs::write(d.join("src/lib.rs"), "fn x() {}").unwrap();
            std::fs::create_dir_all(d.join("target")).unwrap();
        }
        std::fs::write(b.path().join("target/junk"), "x").unwrap();
        let ha = tree_sha256(a.path(), |_| false).unwrap();
        assert_eq!(ha, tree_sha256(b.path(), |_| false).unwrap());
        std::fs::write(b.path().join("src/lib.rs"), "fn y() {}").unwrap();
        assert_ne!(ha, tree_sha256(b.path(), |_| false).unwrap());
    }
}
