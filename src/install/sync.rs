//! Following installed skills back to where they came from: `outdated` (the
//! installed commit against the newest of the ref it was installed from),
//! `update` (move to it through the same pipeline, one skill at a time, a
//! failure keeping the installed version; a `--rev` install is pinned) and
//! `sync` (install exactly what a `skills.lock` lists, at its commits,
//! failing on any hash that differs).

use std::collections::BTreeMap;

use super::git::{kept_cargo_lock, prepare_skill};
use super::{InstallError, InstallOptions, Installed, Installer, Planned};
use crate::context::Context;
use crate::digest::sha256_hex;
use crate::git::GitError;
use crate::git::fetch::{self, RemoteRefs, RepoCache};
use crate::git::install::{self as checkout_git, Checkout};
use crate::git::spec::{RefRequest, is_full_commit};
use crate::store::lock::{LockFile, LockedSkill, SourceKind};
use crate::store::provenance::Origin;
use crate::store::{InstalledSkill, SkillStore};

/// How an installed skill stands against its origin.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    UpToDate,
    Outdated,
    /// Installed with `--rev`: never moved.
    Pinned,
    /// The origin could not be asked (the reason is in `error`).
    Unknown,
}

/// One line of `outdated`.
#[derive(Debug, Clone)]
pub struct Outdated {
    pub name: String,
    /// `Git`, or `Oci` (then `url` is `host/repository`, `requested` the
    /// tag followed, and the commits are manifest digests).
    pub kind: SourceKind,
    pub url: String,
    pub path: String,
    /// The ref followed (`None`: the default branch).
    pub requested: Option<String>,
    pub installed: String,
    /// The ref's newest commit (`None` when pinned or unknown).
    pub latest: Option<String>,
    pub status: Status,
    pub error: Option<String>,
}

impl Outdated {
    /// The line's status against `latest` (the newest commit or digest, or
    /// why it could not be had).
    fn stand(&mut self, latest: Result<String, String>) {
        match latest {
            Ok(latest) => {
                self.status = if latest == self.installed {
                    Status::UpToDate
                } else {
                    Status::Outdated
                };
                self.latest = Some(latest);
            }
            Err(e) => {
                self.status = Status::Unknown;
                self.error = Some(e);
            }
        }
    }
}

/// The git origin of an installed skill.
fn git_origin(skill: &InstalledSkill) -> Option<(String, String, Option<String>, String)> {
    match skill.provenance.as_ref()?.origin.as_ref()? {
        Origin::Git {
            url,
            path,
            requested,
            commit,
        } => Some((url.clone(), path.clone(), requested.clone(), commit.clone())),
        _ => None,
    }
}

/// The OCI origin of an installed skill: the reference as asked, and the
/// digest installed.
fn oci_origin(skill: &InstalledSkill) -> Option<(crate::oci::Reference, String)> {
    match skill.provenance.as_ref()?.origin.as_ref()? {
        Origin::Oci { reference, digest } => crate::oci::Reference::parse(reference)
            .ok()
            .map(|r| (r, digest.clone())),
        _ => None,
    }
}

/// Asks OCI registries what their tags point at (one client for the run).
struct OciTags<'c> {
    context: &'c Context,
    offline: bool,
    client: Option<Result<crate::oci::OciClient, String>>,
}

impl<'c> OciTags<'c> {
    fn new(context: &'c Context, offline: bool) -> OciTags<'c> {
        OciTags {
            context,
            offline,
            client: None,
        }
    }

    fn client(&mut self) -> Result<&crate::oci::OciClient, String> {
        let (context, offline) = (self.context, self.offline);
        self.client
            .get_or_insert_with(|| {
                crate::oci::OciClient::new(context, Vec::new())
                    .map(|mut c| {
                        c.offline = offline;
                        c
                    })
                    .map_err(|e| crate::error_chain(&e))
            })
            .as_ref()
            .map_err(Clone::clone)
    }

    /// The digest `reference`'s tag points at now.
    fn latest(&mut self, reference: &crate::oci::Reference) -> Result<String, String> {
        let client = self.client()?;
        client
            .manifest(reference, &client.budget())
            .map(|(_, digest)| digest)
            .map_err(|e| crate::error_chain(&e))
    }
}

/// What `requested` (as recorded) asks for.
fn request_of(requested: &Option<String>) -> RefRequest {
    match requested.as_deref() {
        None => RefRequest::Default,
        Some(r) if is_full_commit(r) => RefRequest::Rev(r.to_string()),
        Some(r) => match (r.strip_prefix("refs/heads/"), r.strip_prefix("refs/tags/")) {
            (Some(b), _) => RefRequest::Branch(b.to_string()),
            (_, Some(t)) => RefRequest::Tag(t.to_string()),
            _ => RefRequest::Branch(r.to_string()),
        },
    }
}

/// Asks each repository once for its refs.
struct Remotes<'c> {
    context: &'c Context,
    seen: BTreeMap<String, Result<RemoteRefs, String>>,
    offline: bool,
}

impl Remotes<'_> {
    fn latest(&mut self, url: &str, requested: &Option<String>) -> Result<String, String> {
        let offline = self.offline;
        let context = self.context;
        let refs = self
            .seen
            .entry(url.to_string())
            .or_insert_with(|| {
                let cache = RepoCache::for_url(context, url);
                let refs = if offline {
                    cache.load_refs()
                } else {
                    fetch::ls_remote(cache.settings(), url, url).inspect(|r| {
                        let _ = cache.save_refs(r);
                    })
                };
                refs.map_err(|e| crate::error_chain(&e))
            })
            .clone()?;
        fetch::resolve(&refs, &request_of(requested), url)
            .map(|r| r.commit)
            .map_err(|e| crate::error_chain(&e))
    }
}

/// Every installed skill with a git origin against its ref's newest commit.
pub fn outdated(
    context: &Context,
    store: &SkillStore,
    offline: bool,
) -> Result<Vec<Outdated>, GitError> {
    let mut remotes = Remotes {
        context,
        seen: BTreeMap::new(),
        offline,
    };
    let mut out = Vec::new();
    let mut oci = OciTags::new(context, offline);
    for skill in store.list()? {
        if let Some((reference, installed)) = oci_origin(&skill) {
            let mut line = Outdated {
                name: skill.name.clone(),
                kind: SourceKind::Oci,
                url: reference.repository_name(),
                path: String::new(),
                requested: reference.tag.clone().filter(|_| reference.digest.is_none()),
                installed: installed.clone(),
                latest: None,
                status: Status::Pinned,
                error: None,
            };
            if line.requested.is_some() {
                line.stand(oci.latest(&reference));
            }
            out.push(line);
            continue;
        }
        let Some((url, path, requested, installed)) = git_origin(&skill) else {
            continue;
        };
        let mut line = Outdated {
            name: skill.name.clone(),
            kind: SourceKind::Git,
            url: url.clone(),
            path,
            requested: requested.clone(),
            installed: installed.clone(),
            latest: None,
            status: Status::Pinned,
            error: None,
        };
        if !matches!(request_of(&requested), RefRequest::Rev(_)) {
            line.stand(remotes.latest(&url, &requested));
        }
        out.push(line);
    }
    Ok(out)
}

/// What `update` did to one skill.
#[derive(Debug)]
pub enum Updated {
    /// Moved from the first commit to the second.
    Moved {
        from: String,
        to: String,
        installed: Box<Installed>,
    },
    UpToDate {
        commit: String,
    },
    /// A `--rev` install: left alone.
    Pinned {
        commit: String,
    },
    /// Not from git (a folder or a registry): nothing to follow.
    NotGit,
    /// The installed version is kept.
    Failed(InstallError),
}

/// Moves `names` (every git-installed skill when empty) to the newest
/// commit of their ref, one at a time: a failure keeps that skill's
/// installed version and moves on.
pub fn update(
    installer: &Installer<'_>,
    names: &[String],
    options: &InstallOptions,
    offline: bool,
) -> Result<Vec<(String, Updated)>, InstallError> {
    let result = update_each(installer, names, options, offline);
    // The cache's build outputs back within their budget ([`crate::cache`]).
    crate::cache::sweep_after_build(installer.context);
    result
}

fn update_each(
    installer: &Installer<'_>,
    names: &[String],
    options: &InstallOptions,
    offline: bool,
) -> Result<Vec<(String, Updated)>, InstallError> {
    let store = installer.store;
    let skills: Vec<InstalledSkill> = if names.is_empty() {
        store.list()?
    } else {
        names
            .iter()
            .map(|n| store.get(n))
            .collect::<Result<_, _>>()?
    };
    let mut remotes = Remotes {
        context: installer.context,
        seen: BTreeMap::new(),
        offline,
    };
    let mut out = Vec::new();
    let mut oci = OciTags::new(installer.context, offline);
    for skill in skills {
        if let Some((reference, installed)) = oci_origin(&skill) {
            let outcome = update_oci(installer, &mut oci, &reference, &installed, options);
            out.push((skill.name.clone(), outcome));
            continue;
        }
        let Some((url, path, requested, installed)) = git_origin(&skill) else {
            if !names.is_empty() {
                out.push((skill.name.clone(), Updated::NotGit));
            }
            continue;
        };
        if matches!(request_of(&requested), RefRequest::Rev(_)) {
            out.push((skill.name.clone(), Updated::Pinned { commit: installed }));
            continue;
        }
        let outcome = match remotes.latest(&url, &requested) {
            Err(e) => Updated::Failed(
                GitError::Failed {
                    what: format!("asking {url} for its newest commit"),
                    stderr: e,
                }
                .into(),
            ),
            Ok(latest) if latest == installed => Updated::UpToDate { commit: latest },
            Ok(latest) => {
                let target = Target {
                    url: &url,
                    path: &path,
                    requested,
                    commit: &latest,
                };
                match update_one(installer, &skill, &target, options, offline) {
                    Ok(done) => Updated::Moved {
                        from: installed,
                        to: latest,
                        installed: Box::new(done),
                    },
                    Err(e) => Updated::Failed(e),
                }
            }
        };
        out.push((skill.name.clone(), outcome));
    }
    Ok(out)
}

/// Moves an OCI install to what its tag points at now (a digest install is
/// pinned).
fn update_oci(
    installer: &Installer<'_>,
    tags: &mut OciTags<'_>,
    reference: &crate::oci::Reference,
    installed: &str,
    options: &InstallOptions,
) -> Updated {
    if reference.digest.is_some() || reference.tag.is_none() {
        return Updated::Pinned {
            commit: installed.into(),
        };
    }
    let latest = match tags.latest(reference) {
        Ok(latest) => latest,
        Err(e) => {
            return Updated::Failed(InstallError::Oci(crate::oci::OciError::Tag {
                reference: reference.to_string(),
                why: e,
            }));
        }
    };
    if latest == installed {
        return Updated::UpToDate { commit: latest };
    }
    let moved = tags.client().map_err(|e| {
        InstallError::Oci(crate::oci::OciError::Tag {
            reference: reference.to_string(),
            why: e,
        })
    });
    let result = moved.and_then(|client| {
        let planned = super::oci::plan(client, reference, options, &client.budget())?;
        commit_one(installer, planned, options)
    });
    match result {
        Ok(done) => Updated::Moved {
            from: installed.into(),
            to: latest,
            installed: Box::new(done),
        },
        Err(e) => Updated::Failed(e),
    }
}

/// Where an update moves a skill to.
struct Target<'t> {
    url: &'t str,
    path: &'t str,
    requested: Option<String>,
    commit: &'t str,
}

fn update_one(
    installer: &Installer<'_>,
    skill: &InstalledSkill,
    target: &Target<'_>,
    options: &InstallOptions,
    offline: bool,
) -> Result<Installed, InstallError> {
    let Target {
        url, path, commit, ..
    } = *target;
    let checkout_at = |requested: Option<String>| {
        checkout_git::checkout_commit(installer.context, url, url, requested, commit, offline)
    };
    let checkout = checkout_at(target.requested.clone())?;
    let found = checkout.skill_at(path)?;
    if found.key != skill.name {
        return Err(GitError::Renamed {
            key: skill.name.clone(),
            found: found.key,
            path: path.into(),
            url: url.into(),
        }
        .into());
    }
    let kept = skill
        .provenance
        .as_ref()
        .and_then(|p| kept_cargo_lock(&skill.dir, p.resolved_cargo_lock()));
    let planned = match prepare_skill(installer, &checkout, &found, options, kept.as_deref()) {
        // The new commit's dependencies no longer fit the kept lock: resolve anew.
        Err(e) if kept.is_some() && lock_out_of_date(&e) => {
            let fresh = checkout_at(checkout.requested.clone())?;
            let found = fresh.skill_at(path)?;
            let planned = prepare_skill(installer, &fresh, &found, options, None)?;
            return commit_one(installer, planned, options);
        }
        other => other?,
    };
    commit_one(installer, planned, options)
}

/// Whether a build failed because its `Cargo.lock` no longer fits its
/// manifests (cargo's `--locked` refusal).
fn lock_out_of_date(err: &InstallError) -> bool {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(c) = cause {
        if c.downcast_ref::<crate::build::BuildError>()
            .is_some_and(crate::build::BuildError::is_lock_out_of_date)
        {
            return true;
        }
        cause = c.source();
    }
    false
}

fn commit_one(
    installer: &Installer<'_>,
    planned: Planned,
    options: &InstallOptions,
) -> Result<Installed, InstallError> {
    let mut done = installer.commit(vec![planned], options)?;
    Ok(done.remove(0))
}

/// What `sync` did.
#[derive(Debug, Default)]
pub struct Synced {
    pub installed: Vec<Installed>,
    /// Already installed exactly as locked (nothing fetched).
    pub unchanged: Vec<String>,
    /// Installed but not in the lock (left alone).
    pub extra: Vec<String>,
}

/// Installs exactly what `lock` lists, at its commits: every skill is
/// fetched (or taken from the cache), built and checked against the lock's
/// hashes before any is committed, and all are committed together.
pub fn sync(
    installer: &Installer<'_>,
    lock: &LockFile,
    options: &InstallOptions,
    offline: bool,
) -> Result<Synced, InstallError> {
    let result = sync_all(installer, lock, options, offline);
    // The cache's build outputs back within their budget ([`crate::cache`]).
    crate::cache::sweep_after_build(installer.context);
    result
}

fn sync_all(
    installer: &Installer<'_>,
    lock: &LockFile,
    options: &InstallOptions,
    offline: bool,
) -> Result<Synced, InstallError> {
    // Every entry passes the checks `install --git` makes before anything
    // runs: a lock is a file anyone may have edited.
    for entry in lock.skills.values() {
        entry.check()?;
    }
    let current = LockFile::of_store(installer.store)?;
    let mut report = Synced::default();
    let mut planned = Vec::new();
    let mut checkouts: BTreeMap<(String, String), Checkout> = BTreeMap::new();
    let mut oci: Option<crate::oci::OciClient> = None;
    for (key, entry) in &lock.skills {
        if current
            .skills
            .get(key)
            .is_some_and(|c| same_install(c, entry))
        {
            report.unchanged.push(key.clone());
            continue;
        }
        let plan = match entry.source {
            SourceKind::Git => {
                let commit = entry.commit.clone().unwrap_or_default();
                let slot = (entry.url.clone(), commit.clone());
                if !checkouts.contains_key(&slot) {
                    let c = checkout_git::checkout_commit(
                        installer.context,
                        &entry.url,
                        &entry.url,
                        entry.reference.clone(),
                        &commit,
                        offline,
                    )?;
                    checkouts.insert(slot.clone(), c);
                }
                let checkout = &checkouts[&slot];
                let path = entry.path.clone().unwrap_or_default();
                let found = checkout.skill_at(&path)?;
                if &found.key != key {
                    return Err(GitError::Renamed {
                        key: key.clone(),
                        found: found.key,
                        path,
                        url: entry.url.clone(),
                    }
                    .into());
                }
                prepare_skill(
                    installer,
                    checkout,
                    &found,
                    options,
                    entry.cargo_lock.as_deref(),
                )?
            }
            SourceKind::Oci => {
                // Exactly the locked digest: its bytes are what the lock pins.
                let digest = entry.digest.clone().unwrap_or_default();
                let reference = crate::oci::Reference::parse(&entry.url)
                    .map_err(crate::oci::OciError::from)?
                    .with_digest(&digest);
                let client = match &oci {
                    Some(client) => client,
                    None => {
                        let mut client = crate::oci::OciClient::new(installer.context, Vec::new())?;
                        client.offline = offline;
                        oci.insert(client)
                    }
                };
                let mut plan = super::oci::plan(client, &reference, options, &client.budget())?;
                // Recorded as locked: the reference as it was asked for.
                plan.origin = Origin::Oci {
                    reference: entry.url.clone(),
                    digest,
                };
                plan
            }
            other => {
                return Err(GitError::CannotSync {
                    key: key.clone(),
                    source_kind: format!("a {other} ({})", entry.url),
                }
                .into());
            }
        };
        check_against(key, entry, &plan)?;
        planned.push(plan);
    }
    report.extra = current
        .skills
        .keys()
        .filter(|k| !lock.skills.contains_key(*k))
        .cloned()
        .collect();
    report.installed = installer.commit(planned, options)?;
    drop(checkouts);
    Ok(report)
}

/// Whether an installed skill's entry is the locked one.
fn same_install(current: &LockedSkill, locked: &LockedSkill) -> bool {
    current.source == locked.source
        && current.url == locked.url
        && current.path == locked.path
        && current.commit == locked.commit
        && current.digest == locked.digest
        && current.source_sha256 == locked.source_sha256
        && current.wasm_sha256 == locked.wasm_sha256
        && current.files == locked.files
}

/// Fails on any hash that differs from the lock.
fn check_against(key: &str, entry: &LockedSkill, plan: &Planned) -> Result<(), InstallError> {
    let mismatch = |what: &str, expected: &str, actual: &str| -> InstallError {
        GitError::LockMismatch {
            key: key.into(),
            what: what.into(),
            expected: expected.into(),
            actual: actual.into(),
        }
        .into()
    };
    let p = &plan.prepared;
    if p.source_sha256 != entry.source_sha256 {
        return Err(mismatch(
            "source sha256",
            &entry.source_sha256,
            &p.source_sha256,
        ));
    }
    let wasm = p.binary.as_deref().map(sha256_hex);
    if wasm != entry.wasm_sha256 {
        return Err(mismatch(
            "skill.wasm sha256",
            entry.wasm_sha256.as_deref().unwrap_or("(none)"),
            wasm.as_deref().unwrap_or("(none)"),
        ));
    }
    let mut files = BTreeMap::new();
    for f in p.folder.installed_files() {
        let bytes = crate::skill::files::read_one(f).map_err(|e| {
            InstallError::for_skill(
                key,
                &entry.url,
                crate::pipeline::PipelineError::from(crate::skill::source::SourceError::Files(e)),
            )
        })?;
        files.insert(f.rel.clone(), sha256_hex(&bytes));
    }
    for (rel, sha) in &entry.files {
        match files.get(rel) {
            None => return Err(mismatch(&format!("file {rel}"), sha, "(missing)")),
            Some(actual) if actual != sha => {
                return Err(mismatch(&format!("file {rel} sha256"), sha, actual));
            }
            Some(_) => {}
        }
    }
    if let Some(rel) = files.keys().find(|rel| !entry.files.contains_key(*rel)) {
        return Err(mismatch(
            &format!("file {rel}"),
            "(not in the lock)",
            "(present)",
        ));
    }
    Ok(())
}
