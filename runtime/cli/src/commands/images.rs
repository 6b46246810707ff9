//! The control plane's images and manifests from the CLI: `kiln image register`, `kiln
//! manifest register` and `kiln manifest list` (the rest of `kiln image` and `kiln manifest`
//! works on local files and the local store).

use super::{print, print_list};
use crate::context::{Connection, Session, runtime};
use anyhow::{Context, Result};
use kiln_api::manage::images::{NewImage, NewManifest};
use std::path::Path;

/// Runs `kiln image register NAME (REFERENCE | --manifest MANIFEST)`.
pub fn register_image(
    name: &str,
    reference: Option<&str>,
    manifest: Option<&str>,
    connection: &Connection,
) -> Result<()> {
    let session = Session::new(connection)?;
    runtime()?.block_on(async {
        let (team, workgroup) = (session.team()?, session.workgroup()?);
        let new = NewImage {
            name: name.to_string(),
            reference: reference.map(str::to_string),
            manifest: manifest.map(str::to_string),
            environment: None,
        };
        let image = session
            .client
            .create_image((&team, &workgroup), &new)
            .await?;
        print(session.output, &image, |i| {
            format!("registered image {} = {}", i.name, i.reference)
        })
    })
}

/// Runs `kiln manifest register`.
pub fn register_manifest(
    name: &str,
    file: &Path,
    model: &str,
    version: &str,
    connection: &Connection,
) -> Result<()> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
    let session = Session::new(connection)?;
    runtime()?.block_on(async {
        let (team, workgroup) = (session.team()?, session.workgroup()?);
        let new = NewManifest {
            name: name.to_string(),
            model: model.to_string(),
            version: version.to_string(),
            manifest: text,
        };
        let checked = session
            .client
            .create_manifest((&team, &workgroup), &new)
            .await?;
        print(session.output, &checked, |m| {
            format!(
                "registered manifest {} over {} version {}",
                m.name, m.model, m.version
            )
        })
    })
}

/// Runs `kiln manifest list`.
pub fn list_manifests(connection: &Connection) -> Result<()> {
    let session = Session::new(connection)?;
    runtime()?.block_on(async {
        let (team, workgroup) = (session.team()?, session.workgroup()?);
        let manifests = session.client.manifests((&team, &workgroup)).await?;
        print_list(session.output, manifests, |m| {
            format!("{}  {} version {}", m.name, m.model, m.version)
        })
    })
}
