//! A commit's tree, listed from git's objects and checked before anything is
//! written, then written out (all of it, or only what is needed) without
//! ever following a link.
//!
//! The listing is read tree object by tree object (`cat-file --batch`, one
//! call per level), each distinct tree once, so a tree bomb — a small
//! repository whose trees reference the same subtree again and again — is
//! measured (entries, depth and bytes it would expand to) and refused before
//! it is expanded, let alone written. Names are kept as bytes: a path that
//! is not UTF-8, a name git itself would refuse (`.`, `..`, `.git`, one
//! holding `/` or `\`), two entries of one name in one folder, and a symlink
//! whose target is absolute or leaves the repository are refused by name.
//! Writing goes through [`BeneathDir`]: folders opened with `O_NOFOLLOW`,
//! files created with `O_EXCL`, so nothing is written through a link.

use std::collections::{HashMap, HashSet};
use std::ffi::OsStr;
use std::path::Path;

use super::GitError;
use super::command::git_capped;
use crate::context::GitSettings;
use crate::fsutil::BeneathDir;

/// Most entries (files, folders and links, as written out) a tree may hold.
pub const MAX_TREE_ENTRIES: u64 = 50_000;
/// Deepest path a tree may hold, in components.
pub const MAX_TREE_DEPTH: usize = 32;
/// Most bytes a tree's files may hold together (all blobs of one commit).
pub const MAX_TREE_BYTES: u64 = 512 * 1024 * 1024;
/// Longest name of one path component (the file system's own limit).
pub const MAX_NAME_BYTES: usize = 255;
/// Longest symlink target.
pub const MAX_LINK_BYTES: u64 = 4096;
/// Most bytes of tree objects read to list one commit.
const MAX_TREE_OBJECT_BYTES: u64 = 32 * 1024 * 1024;
/// Room for the header git prints before each object of a batch.
const BATCH_HEADER_BYTES: u64 = 128;

/// One entry of a commit's tree, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Its path from the repository root, `/`-separated, UTF-8.
    pub path: String,
    pub kind: EntryKind,
}

/// What an entry is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryKind {
    Dir,
    File {
        oid: String,
        size: u64,
        executable: bool,
    },
    /// A link whose target stays inside the repository (lexically, from the
    /// link's folder).
    Symlink {
        target: String,
    },
}

/// A commit's tree: every entry, folders before what they hold, checked
/// against the caps and rules of the module doc.
#[derive(Debug, Clone)]
pub struct Tree {
    url: String,
    commit: String,
    entries: Vec<Entry>,
}

/// An entry as a tree object holds it.
#[derive(Debug, Clone)]
struct RawEntry {
    mode: u32,
    name: Vec<u8>,
    oid: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RawKind {
    Tree,
    File {
        executable: bool,
    },
    Link,
    /// A submodule: never followed, never written.
    Gitlink,
}

impl RawEntry {
    fn kind(&self) -> Option<RawKind> {
        match self.mode {
            0o040000 => Some(RawKind::Tree),
            0o160000 => Some(RawKind::Gitlink),
            0o120000 => Some(RawKind::Link),
            m if m & 0o170000 == 0o100000 => Some(RawKind::File {
                executable: m & 0o111 != 0,
            }),
            _ => None,
        }
    }
}

/// What a tree would expand to.
#[derive(Debug, Clone, Copy, Default)]
struct Stats {
    entries: u64,
    depth: usize,
    bytes: u64,
}

impl Tree {
    /// Lists and checks the tree of `commit` in the object database `db`
    /// (`url` names the repository in errors). Nothing is written.
    pub fn read(
        settings: &GitSettings,
        db: &Path,
        url: &str,
        commit: &str,
    ) -> Result<Tree, GitError> {
        super::spec::check_commit(commit)?;
        let refuse = |what: String, why: String| GitError::UnsafeTree {
            what,
            url: url.to_string(),
            commit: commit.to_string(),
            why,
        };
        let the_tree = || "the tree".to_string();

        // Every distinct tree object, level by level.
        let mut trees: HashMap<String, Vec<RawEntry>> = HashMap::new();
        let mut requested: HashSet<String> = HashSet::new();
        let mut frontier = vec![format!("{commit}^{{tree}}")];
        let mut root = None;
        let mut distinct_entries: u64 = 0;
        let mut tree_bytes: u64 = 0;
        let mut level = 0;
        while !frontier.is_empty() {
            let budget = MAX_TREE_OBJECT_BYTES.saturating_sub(tree_bytes)
                + BATCH_HEADER_BYTES * frontier.len() as u64;
            let out = match cat_file(settings, db, "--batch", &frontier, budget, commit) {
                Err(GitError::OutputTooLarge { .. }) => {
                    return Err(refuse(
                        the_tree(),
                        format!(
                            "its folders (tree objects) hold more than {MAX_TREE_OBJECT_BYTES} \
                             bytes; more than the cap of {MAX_TREE_ENTRIES} entries would fit"
                        ),
                    ));
                }
                other => other?,
            };
            let objects = parse_batch(&out, frontier.len(), true)
                .map_err(|why| refuse("git's answer".into(), why))?;
            let mut next = Vec::new();
            for object in objects {
                if object.kind != "tree" {
                    return Err(refuse(
                        format!("object {}", object.oid),
                        format!("it is a {} where a folder (tree) must be", object.kind),
                    ));
                }
                let data = &out[object.data.clone()];
                tree_bytes += data.len() as u64;
                let entries = parse_tree(data, object.oid.len() / 2)
                    .map_err(|why| refuse(format!("the folder object {}", object.oid), why))?;
                distinct_entries += entries.len() as u64;
                if distinct_entries > MAX_TREE_ENTRIES {
                    return Err(refuse(
                        the_tree(),
                        format!(
                            "it holds more than {MAX_TREE_ENTRIES} entries (files, folders and \
                             links), over the cap of {MAX_TREE_ENTRIES}"
                        ),
                    ));
                }
                for e in &entries {
                    if e.kind() == Some(RawKind::Tree) && requested.insert(e.oid.clone()) {
                        if level + 1 > MAX_TREE_DEPTH {
                            return Err(refuse(
                                the_tree(),
                                format!(
                                    "its paths are more than {MAX_TREE_DEPTH} folders deep, over \
                                     the cap of {MAX_TREE_DEPTH}"
                                ),
                            ));
                        }
                        next.push(e.oid.clone());
                    }
                }
                if root.is_none() {
                    root = Some(object.oid.clone());
                }
                trees.insert(object.oid, entries);
            }
            frontier = next;
            level += 1;
        }
        let root = root.ok_or_else(|| refuse(the_tree(), "git returned no tree".into()))?;

        // The size of every distinct blob (and that it is one).
        let mut blobs: Vec<String> = trees
            .values()
            .flatten()
            .filter(|e| matches!(e.kind(), Some(RawKind::File { .. } | RawKind::Link)))
            .map(|e| e.oid.clone())
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        blobs.sort();
        let sizes = if blobs.is_empty() {
            HashMap::new()
        } else {
            let out = cat_file(
                settings,
                db,
                "--batch-check",
                &blobs,
                BATCH_HEADER_BYTES * blobs.len() as u64,
                commit,
            )?;
            let mut sizes = HashMap::new();
            for object in parse_batch(&out, blobs.len(), false)
                .map_err(|why| refuse("git's answer".into(), why))?
            {
                if object.kind != "blob" {
                    return Err(refuse(
                        format!("object {}", object.oid),
                        format!("it is a {} where a file (blob) must be", object.kind),
                    ));
                }
                sizes.insert(object.oid, object.size);
            }
            sizes
        };

        // What it would expand to, each distinct tree measured once.
        let stats = measure(&root, &trees, &sizes);
        if stats.entries > MAX_TREE_ENTRIES {
            return Err(refuse(
                the_tree(),
                format!(
                    "it holds {} entries (files, folders and links), over the cap of \
                     {MAX_TREE_ENTRIES}",
                    stats.entries
                ),
            ));
        }
        if stats.depth > MAX_TREE_DEPTH {
            return Err(refuse(
                the_tree(),
                format!(
                    "its paths are {} folders deep, over the cap of {MAX_TREE_DEPTH}",
                    stats.depth
                ),
            ));
        }
        if stats.bytes > MAX_TREE_BYTES {
            return Err(refuse(
                the_tree(),
                format!(
                    "it holds {} bytes, over the cap of {MAX_TREE_BYTES}",
                    stats.bytes
                ),
            ));
        }

        // Expanded (within the caps now) and every path checked.
        let mut raw = Vec::new();
        expand(&root, &trees, &[], &mut raw, 0);
        let mut entries = Vec::with_capacity(raw.len());
        let mut links = Vec::new();
        let mut seen: HashSet<Vec<u8>> = HashSet::new();
        for (path, e) in raw {
            let shown = escape(&path);
            let Some(kind) = e.kind() else {
                return Err(refuse(
                    format!("`{shown}`"),
                    format!("its mode {:o} is none git writes", e.mode),
                ));
            };
            if let Err(why) = check_name(&e.name) {
                return Err(refuse(format!("the path `{shown}`"), why));
            }
            if !seen.insert(path.clone()) {
                return Err(refuse(
                    format!("the path `{shown}`"),
                    "it is in the tree twice".into(),
                ));
            }
            let Ok(path) = String::from_utf8(path) else {
                return Err(refuse(
                    format!("the path `{shown}`"),
                    "it is not UTF-8; boternity writes only UTF-8 paths (rename it)".into(),
                ));
            };
            let kind = match kind {
                RawKind::Gitlink => continue,
                RawKind::Tree => EntryKind::Dir,
                RawKind::File { executable } => EntryKind::File {
                    size: sizes.get(&e.oid).copied().unwrap_or(0),
                    oid: e.oid,
                    executable,
                },
                RawKind::Link => {
                    let size = sizes.get(&e.oid).copied().unwrap_or(0);
                    if size > MAX_LINK_BYTES {
                        return Err(refuse(
                            format!("the symlink `{path}`"),
                            format!("its target is {size} bytes, over the cap of {MAX_LINK_BYTES}"),
                        ));
                    }
                    links.push((entries.len(), e.oid));
                    EntryKind::Symlink {
                        target: String::new(),
                    }
                }
            };
            entries.push(Entry { path, kind });
        }

        // Where every link leads, before anything is written.
        if !links.is_empty() {
            let mut oids: Vec<String> = links.iter().map(|(_, oid)| oid.clone()).collect();
            oids.sort();
            oids.dedup();
            let budget = (MAX_LINK_BYTES + BATCH_HEADER_BYTES) * oids.len() as u64;
            let out = cat_file(settings, db, "--batch", &oids, budget, commit)?;
            let mut targets = HashMap::new();
            for object in parse_batch(&out, oids.len(), true)
                .map_err(|why| refuse("git's answer".into(), why))?
            {
                targets.insert(object.oid, out[object.data].to_vec());
            }
            for (at, oid) in links {
                let entry = &mut entries[at];
                let bytes = targets.get(&oid).cloned().unwrap_or_default();
                let target = check_link(&entry.path, &bytes)
                    .map_err(|why| refuse(format!("the symlink `{}`", entry.path), why))?;
                entry.kind = EntryKind::Symlink { target };
            }
        }
        Ok(Tree {
            url: url.to_string(),
            commit: commit.to_string(),
            entries,
        })
    }

    /// Every entry, folders before what they hold.
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// Writes the entries `pick` selects and `written` does not mark yet
    /// into `root`, marking them: folders (with the folders on their way),
    /// files with their executable bit, links as links. Nothing is written
    /// through a link; a name already taken is an error.
    pub fn write(
        &self,
        settings: &GitSettings,
        db: &Path,
        root: &BeneathDir,
        pick: &dyn Fn(&Entry) -> bool,
        written: &mut [bool],
    ) -> Result<(), GitError> {
        let chosen: Vec<usize> = (0..self.entries.len())
            .filter(|&i| !written.get(i).copied().unwrap_or(true) && pick(&self.entries[i]))
            .collect();
        let mut oids: Vec<String> = Vec::new();
        let mut total: u64 = 0;
        let mut asked = HashSet::new();
        for &i in &chosen {
            if let EntryKind::File { oid, size, .. } = &self.entries[i].kind
                && asked.insert(oid.clone())
            {
                oids.push(oid.clone());
                total += size + BATCH_HEADER_BYTES;
            }
        }
        let blobs = if oids.is_empty() {
            Vec::new()
        } else {
            cat_file(settings, db, "--batch", &oids, total, &self.commit)?
        };
        let mut contents: HashMap<String, std::ops::Range<usize>> = HashMap::new();
        if !oids.is_empty() {
            for object in
                parse_batch(&blobs, oids.len(), true).map_err(|why| GitError::UnsafeTree {
                    what: "git's answer".into(),
                    url: self.url.clone(),
                    commit: self.commit.clone(),
                    why,
                })?
            {
                contents.insert(object.oid, object.data);
            }
        }

        // The folders open on the way to the current entry, below the root.
        let mut open: Vec<(String, BeneathDir)> = Vec::new();
        for i in chosen {
            let entry = &self.entries[i];
            let (parent, name) = match entry.path.rsplit_once('/') {
                Some((parent, name)) => (parent, name),
                None => ("", entry.path.as_str()),
            };
            while open.last().is_some_and(|(at, _)| !holds(at, parent)) {
                open.pop();
            }
            let base = open.last().map_or("", |(at, _)| at.as_str());
            let rest = if base.is_empty() {
                parent
            } else {
                parent.get(base.len() + 1..).unwrap_or("")
            };
            let mut at = base.to_string();
            for part in rest.split('/').filter(|p| !p.is_empty()) {
                let dir = open.last().map_or(root, |(_, d)| d);
                let sub = dir.subdir(part)?;
                if !at.is_empty() {
                    at.push('/');
                }
                at.push_str(part);
                open.push((at.clone(), sub));
            }
            let dir = open.last().map_or(root, |(_, d)| d);
            match &entry.kind {
                EntryKind::Dir => {
                    let sub = dir.subdir(name)?;
                    open.push((entry.path.clone(), sub));
                }
                EntryKind::File {
                    oid, executable, ..
                } => {
                    let range = contents.get(oid).cloned().unwrap_or(0..0);
                    let bytes = blobs.get(range).unwrap_or_default();
                    dir.create_file(name, bytes, *executable)?;
                }
                EntryKind::Symlink { target } => dir.symlink(name, target)?,
            }
            if let Some(mark) = written.get_mut(i) {
                *mark = true;
            }
        }
        Ok(())
    }
}

/// Whether the folder `dir` (`""`: the root) is `path` or holds it.
fn holds(dir: &str, path: &str) -> bool {
    dir.is_empty()
        || dir == path
        || (path.len() > dir.len() && path.starts_with(dir) && path.as_bytes()[dir.len()] == b'/')
}

/// `git cat-file <mode>` of `requests`, its output capped at `max` bytes.
fn cat_file(
    settings: &GitSettings,
    db: &Path,
    mode: &str,
    requests: &[String],
    max: u64,
    commit: &str,
) -> Result<Vec<u8>, GitError> {
    let mut stdin = Vec::new();
    for r in requests {
        stdin.extend_from_slice(r.as_bytes());
        stdin.push(b'\n');
    }
    git_capped(
        settings,
        Some(db),
        &[OsStr::new("cat-file"), OsStr::new(mode)],
        Some(&stdin),
        &format!("cat-file of {commit}"),
        max,
    )
}

/// One object of a `cat-file --batch` (or `--batch-check`) answer.
#[derive(Debug)]
struct BatchObject {
    oid: String,
    kind: String,
    size: u64,
    /// Where its contents are in the answer (empty for `--batch-check`).
    data: std::ops::Range<usize>,
}

/// Parses `count` objects of a `cat-file` answer (`with_data`: `--batch`).
fn parse_batch(out: &[u8], count: usize, with_data: bool) -> Result<Vec<BatchObject>, String> {
    let mut objects = Vec::with_capacity(count);
    let mut at = 0;
    for _ in 0..count {
        let end = out[at.min(out.len())..]
            .iter()
            .position(|b| *b == b'\n')
            .map(|p| at + p)
            .ok_or("git returned a truncated answer")?;
        let header = String::from_utf8_lossy(&out[at..end]).into_owned();
        let fields: Vec<&str> = header.split(' ').collect();
        let [oid, kind, size] = fields.as_slice() else {
            return Err(format!(
                "git could not read an object: {}",
                header.escape_debug()
            ));
        };
        let size: u64 = size
            .parse()
            .map_err(|_| format!("git returned a malformed header: {}", header.escape_debug()))?;
        let mut data = 0..0;
        at = end + 1;
        if with_data {
            let stop = usize::try_from(size)
                .ok()
                .and_then(|s| at.checked_add(s))
                .filter(|stop| *stop < out.len() && out[*stop] == b'\n')
                .ok_or("git returned a truncated object")?;
            data = at..stop;
            at = stop + 1;
        }
        objects.push(BatchObject {
            oid: oid.to_string(),
            kind: kind.to_string(),
            size,
            data,
        });
    }
    Ok(objects)
}

/// The entries of a tree object (`hash_len`: 20 for sha1, 32 for sha256);
/// a name twice in one folder (a duplicate, or a file that is also a
/// folder) is refused.
fn parse_tree(bytes: &[u8], hash_len: usize) -> Result<Vec<RawEntry>, String> {
    let malformed = || "it is malformed".to_string();
    let mut entries = Vec::new();
    let mut names = HashSet::new();
    let mut at = 0;
    while at < bytes.len() {
        let space = bytes[at..]
            .iter()
            .position(|b| *b == b' ')
            .map(|p| at + p)
            .ok_or_else(malformed)?;
        let mode = std::str::from_utf8(&bytes[at..space])
            .ok()
            .and_then(|m| u32::from_str_radix(m, 8).ok())
            .ok_or_else(malformed)?;
        let nul = bytes[space + 1..]
            .iter()
            .position(|b| *b == 0)
            .map(|p| space + 1 + p)
            .ok_or_else(malformed)?;
        let name = bytes[space + 1..nul].to_vec();
        let oid_end = nul + 1 + hash_len;
        let oid = bytes.get(nul + 1..oid_end).ok_or_else(malformed)?;
        if !names.insert(name.clone()) {
            return Err(format!(
                "it holds `{}` twice (two entries, or a file that is also a folder)",
                escape(&name)
            ));
        }
        entries.push(RawEntry {
            mode,
            name,
            oid: hex::encode(oid),
        });
        at = oid_end;
    }
    Ok(entries)
}

/// Entries, depth and bytes the tree `oid` expands to, each distinct tree
/// measured once (without recursion: a hostile chain of trees is deep).
fn measure(
    root: &str,
    trees: &HashMap<String, Vec<RawEntry>>,
    sizes: &HashMap<String, u64>,
) -> Stats {
    let mut memo: HashMap<&str, Stats> = HashMap::new();
    let mut stack: Vec<(&str, bool)> = vec![(root, false)];
    while let Some((oid, children_done)) = stack.pop() {
        if memo.contains_key(oid) {
            continue;
        }
        let entries = trees.get(oid).map(Vec::as_slice).unwrap_or_default();
        if !children_done {
            stack.push((oid, true));
            for e in entries {
                if e.kind() == Some(RawKind::Tree) && !memo.contains_key(e.oid.as_str()) {
                    stack.push((e.oid.as_str(), false));
                }
            }
            continue;
        }
        let mut stats = Stats::default();
        for e in entries {
            match e.kind() {
                Some(RawKind::Tree) => {
                    let sub = memo.get(e.oid.as_str()).copied().unwrap_or_default();
                    stats.entries = stats.entries.saturating_add(1).saturating_add(sub.entries);
                    stats.depth = stats.depth.max(sub.depth.saturating_add(1));
                    stats.bytes = stats.bytes.saturating_add(sub.bytes);
                }
                Some(RawKind::Gitlink) => {}
                _ => {
                    stats.entries = stats.entries.saturating_add(1);
                    stats.depth = stats.depth.max(1);
                    let size = sizes.get(&e.oid).copied().unwrap_or(0);
                    stats.bytes = stats.bytes.saturating_add(size);
                }
            }
        }
        memo.insert(oid, stats);
    }
    memo.get(root).copied().unwrap_or_default()
}

/// Every entry below the tree `oid` with its path, folders before what they
/// hold (called only once the depth is known to be within the cap).
fn expand(
    oid: &str,
    trees: &HashMap<String, Vec<RawEntry>>,
    prefix: &[u8],
    out: &mut Vec<(Vec<u8>, RawEntry)>,
    depth: usize,
) {
    if depth > MAX_TREE_DEPTH {
        return;
    }
    for e in trees.get(oid).map(Vec::as_slice).unwrap_or_default() {
        let mut path = prefix.to_vec();
        if !path.is_empty() {
            path.push(b'/');
        }
        path.extend_from_slice(&e.name);
        let sub = (e.kind() == Some(RawKind::Tree)).then(|| path.clone());
        out.push((path, e.clone()));
        if let Some(path) = sub {
            expand(&e.oid, trees, &path, out, depth + 1);
        }
    }
}

/// A name git would write: one component, not `.`, `..` or `.git`, no `\`.
fn check_name(name: &[u8]) -> Result<(), String> {
    if name.is_empty() || name == b"." || name == b".." {
        return Err("it holds an empty, `.` or `..` component, which leaves the folder".into());
    }
    if name.contains(&b'/') || name.contains(&b'\\') || name.contains(&0) {
        return Err("a name in it holds `/`, `\\` or NUL".into());
    }
    if name.eq_ignore_ascii_case(b".git") {
        return Err("it holds a `.git` folder, which git never checks out".into());
    }
    if name.len() > MAX_NAME_BYTES {
        return Err(format!(
            "a name in it is {} bytes, over the cap of {MAX_NAME_BYTES}",
            name.len()
        ));
    }
    Ok(())
}

/// The target of the link at `path` if it stays inside the repository:
/// UTF-8, relative, and (resolved lexically from the link's folder) never
/// above the root. A link that passes through another link is resolved
/// for real later, by discovery and the skill folder's listing.
fn check_link(path: &str, target: &[u8]) -> Result<String, String> {
    let shown = escape(target);
    let Ok(text) = std::str::from_utf8(target) else {
        return Err(format!("its target `{shown}` is not UTF-8"));
    };
    if text.is_empty() || text.contains('\0') {
        return Err("its target is empty or holds NUL".into());
    }
    if text.starts_with('/') {
        return Err(format!(
            "its target `{shown}` is absolute; a link must stay inside the repository"
        ));
    }
    let mut depth = path.split('/').count() - 1;
    for part in text.split('/') {
        match part {
            "" | "." => {}
            ".." if depth == 0 => {
                return Err(format!(
                    "its target `{shown}` leads out of the repository; a link must stay inside it"
                ));
            }
            ".." => depth -= 1,
            _ => depth += 1,
        }
    }
    Ok(text.to_string())
}

/// `bytes` as text, each byte that is not UTF-8 as `\xNN`.
pub fn escape(bytes: &[u8]) -> String {
    let mut out = String::new();
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            if c.is_control() {
                out.extend(c.escape_default());
            } else {
                out.push(c);
            }
        }
        for b in chunk.invalid() {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree_object(entries: &[(&str, &[u8], u8)]) -> Vec<u8> {
        let mut out = Vec::new();
        for (mode, name, fill) in entries {
            out.extend_from_slice(mode.as_bytes());
            out.push(b' ');
            out.extend_from_slice(name);
            out.push(0);
            out.extend_from_slice(&[*fill; 20]);
        }
        out
    }

    #[test]
    fn names_are_bytes_and_one_name_twice_in_a_folder_is_refused() {
        let ok = tree_object(&[("100644", b"a\xfe", 1), ("120000", b"a\xff", 2)]);
        let entries = parse_tree(&ok, 20).unwrap();
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[1].name, b"a\xff");
        assert_eq!(escape(&entries[1].name), "a\\xff");
        for twice in [
            tree_object(&[("100644", b"a", 1), ("100644", b"a", 2)]),
            tree_object(&[("120000", b"a", 1), ("40000", b"a", 2)]),
        ] {
            let err = parse_tree(&twice, 20).unwrap_err();
            assert!(err.contains("`a` twice"), "{err}");
        }
        assert!(parse_tree(b"100644 a\0short", 20).is_err());
        assert!(parse_tree(b"garbage", 20).is_err());
    }

    #[test]
    fn links_stay_inside_the_repository_lexically() {
        assert_eq!(check_link("skills/a/run", b"../b/run").unwrap(), "../b/run");
        assert!(check_link("skills/a/up", b"../..").is_ok());
        for (path, target) in [
            ("a", &b"/root/.bashrc"[..]),
            ("a", b".."),
            ("skills/a/x", b"../../../etc/passwd"),
            ("skills/a/x", b"b/../../../.."),
            ("x", b""),
            ("x", b"\xff"),
        ] {
            assert!(check_link(path, target).is_err(), "{path} -> {target:?}");
        }
        let err = check_link("SKILL.md", b"/proc/self/environ").unwrap_err();
        assert!(err.contains("absolute"), "{err}");
    }

    #[test]
    fn names_git_would_refuse_are_refused() {
        for name in [&b""[..], b".", b"..", b".GIT", b"a\\b", &[b'x'; 256]] {
            assert!(check_name(name).is_err(), "{name:?}");
        }
        assert!(check_name(b"SKILL.md").is_ok());
    }

    /// A repository built with the git command line (plumbing for what
    /// porcelain would refuse).
    struct Repo {
        _tmp: tempfile::TempDir,
        dir: std::path::PathBuf,
    }

    impl Repo {
        fn new() -> Repo {
            let tmp = tempfile::tempdir().unwrap();
            let dir = tmp.path().join("repo");
            std::fs::create_dir(&dir).unwrap();
            let repo = Repo { _tmp: tmp, dir };
            repo.git(&["init", "-q", "-b", "main"], b"");
            repo
        }

        fn git(&self, args: &[&str], input: &[u8]) -> String {
            use std::io::Write;
            let mut child = std::process::Command::new("git")
                .current_dir(&self.dir)
                .args(["-c", "user.name=t", "-c", "user.email=t@example.com"])
                .args(args)
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap();
            child.stdin.take().unwrap().write_all(input).unwrap();
            let out = child.wait_with_output().unwrap();
            assert!(
                out.status.success(),
                "git {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            String::from_utf8_lossy(&out.stdout).trim().to_string()
        }

        fn blob(&self, bytes: &[u8]) -> String {
            self.git(&["hash-object", "-w", "--stdin"], bytes)
        }

        fn tree(&self, entries: &[(&str, &str, &[u8])]) -> String {
            let mut input = Vec::new();
            for (mode, oid, name) in entries {
                let kind = if *mode == "040000" { "tree" } else { "blob" };
                input.extend_from_slice(format!("{mode} {kind} {oid}\t").as_bytes());
                input.extend_from_slice(name);
                input.push(0);
            }
            self.git(&["mktree", "-z"], &input)
        }

        fn commit(&self, tree: &str) -> String {
            self.git(&["commit-tree", tree, "-m", "x"], b"")
        }

        fn read(&self, commit: &str) -> Result<Tree, GitError> {
            Tree::read(
                &GitSettings::default(),
                &self.dir.join(".git"),
                "file:///repo",
                commit,
            )
        }
    }

    #[test]
    fn a_tree_is_written_in_part_then_whole_with_modes_and_links() {
        use std::os::unix::fs::PermissionsExt;
        let repo = Repo::new();
        let md = repo.blob(b"---\nname: a\ndescription: A.\n---\n");
        let script = repo.blob(b"#!/bin/sh\n");
        let link = repo.blob(b"scripts/run.sh");
        let data = repo.blob(b"data");
        let scripts = repo.tree(&[("100755", &script, b"run.sh")]);
        let a = repo.tree(&[
            ("100644", &md, b"SKILL.md"),
            ("120000", &link, b"run"),
            ("040000", &scripts, b"scripts"),
        ]);
        let b = repo.tree(&[("100644", &md, b"SKILL.md"), ("100644", &data, b"big.bin")]);
        let skills = repo.tree(&[("040000", &a, b"a"), ("040000", &b, b"b")]);
        let plugin = repo.tree(&[("100644", &data, b"marketplace.json")]);
        let root = repo.tree(&[
            ("040000", &skills, b"skills"),
            ("040000", &plugin, b".claude-plugin"),
            ("100644", &data, b"README.md"),
        ]);
        let commit = repo.commit(&root);
        let tree = repo.read(&commit).unwrap();
        let paths: Vec<&str> = tree.entries().iter().map(|e| e.path.as_str()).collect();
        assert_eq!(paths.len(), 12, "{paths:?}");
        let skills_at = paths.iter().position(|p| *p == "skills").unwrap();
        let a_at = paths
            .iter()
            .position(|p| *p == "skills/a/SKILL.md")
            .unwrap();
        assert!(skills_at < a_at, "folders come before what they hold");

        let tmp = tempfile::tempdir().unwrap();
        let dest = tmp.path().join("out");
        let root_dir = BeneathDir::create_new(&dest).unwrap();
        let db = repo.dir.join(".git");
        let mut written = vec![false; tree.entries().len()];
        let skeleton =
            |e: &Entry| !matches!(e.kind, EntryKind::File { .. }) || e.path.ends_with("SKILL.md");
        tree.write(
            &GitSettings::default(),
            &db,
            &root_dir,
            &skeleton,
            &mut written,
        )
        .unwrap();
        assert!(dest.join("skills/b/SKILL.md").is_file());
        assert_eq!(
            std::fs::read_link(dest.join("skills/a/run")).unwrap(),
            Path::new("scripts/run.sh")
        );
        assert!(dest.join("skills/a/scripts").is_dir());
        assert!(!dest.join("skills/a/scripts/run.sh").exists());
        assert!(!dest.join("skills/b/big.bin").exists());
        assert!(!dest.join("README.md").exists());

        let skill_a = |e: &Entry| e.path.starts_with("skills/a/");
        tree.write(
            &GitSettings::default(),
            &db,
            &root_dir,
            &skill_a,
            &mut written,
        )
        .unwrap();
        let run = dest.join("skills/a/scripts/run.sh");
        assert_eq!(std::fs::read(&run).unwrap(), b"#!/bin/sh\n");
        assert_eq!(
            std::fs::metadata(&run).unwrap().permissions().mode() & 0o777,
            0o755
        );
        assert!(!dest.join("skills/b/big.bin").exists());

        tree.write(
            &GitSettings::default(),
            &db,
            &root_dir,
            &|_| true,
            &mut written,
        )
        .unwrap();
        assert!(written.iter().all(|w| *w));
        assert_eq!(
            std::fs::read(dest.join("skills/b/big.bin")).unwrap(),
            b"data"
        );
        assert_eq!(
            std::fs::metadata(dest.join("README.md"))
                .unwrap()
                .permissions()
                .mode()
                & 0o777,
            0o644
        );
    }

    #[test]
    fn hostile_trees_are_refused_by_name_before_anything_is_written() {
        let repo = Repo::new();
        let file = repo.blob(b"payload");
        let to_bashrc = repo.blob(b"/root/.bashrc");
        let up = repo.blob(b"../../..");
        let refused = |tree: &str, expected: &[&str]| {
            let err = repo.read(&repo.commit(tree)).unwrap_err();
            let text = err.to_string();
            for e in expected {
                assert!(text.contains(e), "expected `{e}` in: {text}");
            }
        };
        // Names that decode to one path: refused as not UTF-8, by bytes.
        let lossy = repo.tree(&[
            ("120000", &to_bashrc, b"a\xff"),
            ("100644", &file, b"a\xfe"),
        ]);
        refused(&lossy, &["the path `a\\xfe`", "not UTF-8"]);
        let absolute = repo.tree(&[("120000", &to_bashrc, b"rc")]);
        refused(
            &absolute,
            &["the symlink `rc`", "`/root/.bashrc` is absolute"],
        );
        let inner = repo.tree(&[("120000", &up, b"up")]);
        let escaping = repo.tree(&[("040000", &inner, b"x")]);
        refused(
            &escaping,
            &["the symlink `x/up`", "leads out of the repository"],
        );
        let dot_git = repo.tree(&[("100644", &file, b"config")]);
        let hidden = repo.tree(&[("040000", &dot_git, b".Git")]);
        refused(&hidden, &["the path `.Git`", "`.git` folder"]);
        let mut deep = repo.tree(&[("100644", &file, b"f")]);
        for _ in 0..40 {
            deep = repo.tree(&[("040000", &deep, b"d")]);
        }
        refused(&deep, &["folders deep", "over the cap of 32"]);
        assert!(matches!(
            repo.read("HEAD"),
            Err(GitError::InvalidCommit { .. })
        ));
    }

    #[test]
    fn a_tree_bomb_is_measured_and_refused_without_being_expanded() {
        let repo = Repo::new();
        let file = repo.blob(b"x");
        let names: Vec<Vec<u8>> = (0..10).map(|i| format!("d{i}").into_bytes()).collect();
        let mut tree = repo.tree(&[("100644", &file, b"f")]);
        for _ in 0..6 {
            let entries: Vec<(&str, &str, &[u8])> = names
                .iter()
                .map(|n| ("040000", tree.as_str(), n.as_slice()))
                .collect();
            tree = repo.tree(&entries);
        }
        let commit = repo.commit(&tree);
        let started = std::time::Instant::now();
        let err = repo.read(&commit).unwrap_err().to_string();
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
        // 10^6 files and 1,111,110 folders.
        assert!(err.contains("it holds 2111110 entries"), "{err}");
        assert!(err.contains("over the cap of 50000"), "{err}");
    }

    #[test]
    fn a_deep_chain_of_trees_is_measured_without_recursion() {
        // A root listing 100,000 trees that form one chain: deep, and small.
        let mut trees = HashMap::new();
        let n = 100_000;
        for i in 0..n {
            let entries = if i + 1 < n {
                vec![RawEntry {
                    mode: 0o040000,
                    name: b"d".to_vec(),
                    oid: format!("t{}", i + 1),
                }]
            } else {
                Vec::new()
            };
            trees.insert(format!("t{i}"), entries);
        }
        let stats = measure("t0", &trees, &HashMap::new());
        assert_eq!(stats.entries, n as u64 - 1);
        assert_eq!(stats.depth, n - 1);
    }
}
