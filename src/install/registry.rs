//! The registry source of the install layer: the index fetched once (signed,
//! fresh, not rolled back: [`crate::registry::client`]), an entry found for
//! each skill asked for, the downgrade rule applied, every file downloaded
//! and checked, then each skill validated by the pipeline (nothing is built:
//! the registry's binary is taken, or refused) and all committed together
//! under exactly the entries' names.

use super::{InstallError, InstallOptions, Installed, Installer, Planned};
use crate::pipeline;
use crate::registry::client::{HOSTILE_HINT, RegistryClient, RegistryError};
use crate::registry::index::{self, IndexEntry, IndexError};
use crate::skill::manifest;
use crate::store::SkillStore;
use crate::store::provenance::Origin;

/// Installs `skills` (each a name and, optionally, a version) from the
/// registry `client` reaches. The trust tier is `options`' (the
/// installer's): a signature proves who published a skill, not that it is
/// harmless.
pub fn install(
    installer: &Installer<'_>,
    client: &RegistryClient,
    skills: &[(String, Option<String>)],
    options: &InstallOptions,
) -> Result<Vec<Installed>, InstallError> {
    let budget = client.budget();
    let fetched = client.fetch_index_within(&budget)?;
    let location = client.index_location();
    let mut entries = Vec::with_capacity(skills.len());
    for (name, version) in skills {
        manifest::check_name(name).map_err(|e| InstallError::Store(e.into()))?;
        let entry = fetched.index.find(name, version.as_deref(), &location)?;
        if version.is_none() {
            refuse_implicit_downgrade(installer.store, entry, client)?;
        }
        entries.push(entry.clone());
    }
    let origins: Vec<Origin> = entries.iter().map(|e| origin(client, e)).collect();
    installer.check_names(
        entries.iter().map(|e| e.name.as_str()).zip(&origins),
        options.force,
    )?;
    let mut planned = Vec::with_capacity(entries.len());
    for (entry, origin) in entries.iter().zip(origins) {
        let from = origin.describe();
        planned.push(
            prepare(client, &fetched, entry, origin, options, &budget)
                .map_err(|e| InstallError::for_skill(&entry.name, &from, e))?,
        );
    }
    installer.commit(planned, options)
}

fn origin(client: &RegistryClient, entry: &IndexEntry) -> Origin {
    Origin::Registry {
        url: client.source.display(),
        name: entry.name.clone(),
        version: entry.version.clone(),
    }
}

/// Downloads `entry` and puts it through the pipeline's validation.
fn prepare(
    client: &RegistryClient,
    fetched: &crate::registry::client::FetchedIndex,
    entry: &IndexEntry,
    origin: Origin,
    options: &InstallOptions,
    budget: &crate::registry::client::http::Budget,
) -> Result<Planned, InstallError> {
    let downloaded = client.download(fetched, entry, budget)?;
    let mut prepared =
        pipeline::prepare_with_binary(&downloaded.dir, downloaded.wasm, &options.pipeline)?;
    // The store is asked for exactly the entry's name, never another.
    let prepared_manifest = &prepared.folder.manifest;
    if prepared_manifest.name != entry.name {
        return Err(
            RegistryError::from(IndexError::IdentityMismatch(Box::new(index::Mismatch {
                name: entry.name.clone(),
                version: entry.version.clone(),
                dir: entry.dir_or_default(),
                skill_md_name: prepared_manifest.name.clone(),
                skill_md_version: prepared_manifest.version_or_default().to_string(),
                hint: HOSTILE_HINT.into(),
            })))
            .into(),
        );
    }
    prepared.notes.extend(downloaded.notes);
    Ok(Planned {
        key: entry.name.clone(),
        prepared,
        origin,
        workspace: Some(downloaded.workspace),
    })
}

/// The downgrade rule: an install that did not name a version never puts an
/// older version in place of the installed one.
fn refuse_implicit_downgrade(
    store: &SkillStore,
    entry: &IndexEntry,
    client: &RegistryClient,
) -> Result<(), RegistryError> {
    let Ok(installed) = store.get(&entry.name) else {
        return Ok(());
    };
    let version = installed
        .provenance
        .as_ref()
        .and_then(|p| p.version.clone())
        .or_else(|| {
            installed
                .manifest
                .as_ref()
                .ok()
                .and_then(|m| m.version.clone())
        });
    match version {
        Some(installed)
            if index::compare_versions(&installed, &entry.version)
                == std::cmp::Ordering::Greater =>
        {
            Err(RegistryError::ImplicitDowngrade {
                name: entry.name.clone(),
                installed,
                candidate: entry.version.clone(),
                registry: client.source.display(),
            })
        }
        _ => Ok(()),
    }
}
