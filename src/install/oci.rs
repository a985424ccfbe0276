//! The OCI source of the install layer: each reference pulled (manifest
//! checked against its digest and layout, with a key pinned its signature
//! verified, every blob against its digest: [`crate::oci::client`]), then
//! validated by the pipeline like a registry's skill (nothing is built: the
//! artifact's component is taken, or refused) and all committed together.
//! The origin records the reference as asked and the digest it resolved to.

use super::{InstallError, InstallOptions, Installed, Installer, Planned};
use crate::oci::{OciClient, OciError, Pulled, Reference};
use crate::pipeline;
use crate::registry::client::http::Budget;
use crate::store::provenance::Origin;

/// Installs each of `references` from its registry, all or none.
pub fn install(
    installer: &Installer<'_>,
    client: &OciClient,
    references: &[Reference],
    options: &InstallOptions,
) -> Result<Vec<Installed>, InstallError> {
    let budget = client.budget();
    let mut planned = Vec::with_capacity(references.len());
    for r in references {
        planned.push(
            plan(client, r, options, &budget)
                .map_err(|e| InstallError::for_skill(&r.repository, &format!("oci://{r}"), e))?,
        );
    }
    installer.commit(planned, options)
}

/// Pulls `r` and puts it through the pipeline's validation: a skill ready
/// to stage, its origin the reference and its digest.
pub fn plan(
    client: &OciClient,
    r: &Reference,
    options: &InstallOptions,
    budget: &Budget,
) -> Result<Planned, InstallError> {
    let pulled = client.pull(r, budget)?;
    let Pulled {
        reference,
        digest,
        layout,
        dir,
        workspace,
        wasm,
        notes,
        ..
    } = pulled;
    let mut prepared = pipeline::prepare_with_binary(&dir, wasm, &options.pipeline)?;
    let name = prepared.folder.manifest.name.clone();
    // The store is asked for exactly the skill the signed manifest names.
    if let Some(title) = &layout.title
        && *title != name
    {
        return Err(OciError::NameMismatch {
            reference: reference.to_string(),
            title: title.clone(),
            found: name,
        }
        .into());
    }
    if prepared.path_taken == crate::pipeline::PathTaken::Registry {
        prepared.reason = format!(
            "the OCI artifact's component, checked against the manifest {digest} it is a layer of"
        );
    }
    prepared.notes.extend(notes);
    Ok(Planned {
        key: name,
        prepared,
        origin: Origin::Oci {
            reference: reference.to_string(),
            digest,
        },
        workspace: Some(workspace),
    })
}
