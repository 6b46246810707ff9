//! The listings a client pages through, composed once for the REST API and the web pages:
//! rows from the store, shown by each noun's domain function, cut into a [`Page`].

use crate::access::{TeamScope, WorkgroupScope};
use crate::auth::Principal;
use crate::store;
use crate::{ControlError, ControlPlane};
use kiln_api::manage::deployments::Deployment;
use kiln_api::manage::endpoints::Endpoint;
use kiln_api::manage::images::Image;
use kiln_api::manage::models::Model;
use kiln_api::manage::projects::Project;
use kiln_api::manage::teams::Team;
use kiln_api::manage::workgroups::Workgroup;
use serde::Deserialize;

/// `?limit=&after=`: pages of at most `limit` items (default 100, at most 1000) after the name
/// `after`, in name order.
#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Page {
    /// Items per page: 100 unless asked, 1 to 1000.
    pub limit: Option<u32>,
    /// The last name of the previous page.
    pub after: Option<String>,
}

impl Page {
    /// The row limit to query: one more than the page, to know whether another follows.
    pub fn fetch(&self) -> i64 {
        self.limit() as i64 + 1
    }
    /// Items per page: 100 unless asked, 1 to 1000.
    pub fn limit(&self) -> usize {
        crate::domain::page_limit(self.limit)
    }
    /// The lower bound (exclusive) of names.
    pub fn after(&self) -> &str {
        self.after.as_deref().unwrap_or("")
    }
    /// The typed page of rows fetched with [`Page::fetch`]: at most `limit` items, and the
    /// cursor (`key` of the last item) when more follow.
    pub fn page<T>(&self, mut items: Vec<T>, key: impl Fn(&T) -> &str) -> kiln_api::Page<T> {
        let next = self
            .cut(&mut items)
            .then(|| items.last().map(|i| key(i).to_string()))
            .flatten();
        kiln_api::Page { items, next }
    }
    /// Cuts rows fetched with [`Page::fetch`] to the page; true when more follow.
    fn cut<T>(&self, items: &mut Vec<T>) -> bool {
        let more = items.len() > self.limit();
        items.truncate(self.limit());
        more
    }
}

/// The teams the caller belongs to (all of them for administrators).
pub async fn teams(
    control: &ControlPlane,
    caller: &Principal,
    page: &Page,
) -> Result<kiln_api::Page<Team>, ControlError> {
    let rows = store::teams::list_for(
        control.db(),
        &caller.user_id,
        caller.admin,
        page.after(),
        page.fetch(),
    )
    .await?;
    let teams = rows
        .into_iter()
        .map(super::teams::listed)
        .collect::<Result<_, _>>()?;
    Ok(page.page(teams, |t: &Team| &t.name))
}

/// The work groups of a team the caller has a role in (all of them for team admins and
/// owners).
pub async fn workgroups(
    control: &ControlPlane,
    team: &TeamScope,
    caller: &Principal,
    page: &Page,
) -> Result<kiln_api::Page<Workgroup>, ControlError> {
    let workgroups = super::workgroups::list(
        control.db(),
        team,
        &caller.user_id,
        page.after(),
        page.fetch(),
    )
    .await?;
    Ok(page.page(workgroups, |w: &Workgroup| &w.name))
}

/// A work group's projects.
pub async fn projects(
    control: &ControlPlane,
    workgroup: &WorkgroupScope,
    page: &Page,
) -> Result<kiln_api::Page<Project>, ControlError> {
    let rows =
        store::projects::list(control.db(), &workgroup.id, page.after(), page.fetch()).await?;
    let projects = rows.into_iter().map(super::projects::project).collect();
    Ok(page.page(projects, |p: &Project| &p.name))
}

/// A work group's models.
pub async fn models(
    control: &ControlPlane,
    workgroup: &WorkgroupScope,
    page: &Page,
) -> Result<kiln_api::Page<Model>, ControlError> {
    let rows = store::models::list(control.db(), &workgroup.id, page.after(), page.fetch()).await?;
    let models = rows.into_iter().map(super::models::model).collect();
    Ok(page.page(models, |m: &Model| &m.name))
}

/// A work group's images.
pub async fn images(
    control: &ControlPlane,
    workgroup: &WorkgroupScope,
    page: &Page,
) -> Result<kiln_api::Page<Image>, ControlError> {
    let rows = store::images::list(control.db(), &workgroup.id, page.after(), page.fetch()).await?;
    let images = rows
        .into_iter()
        .map(super::images::image)
        .collect::<Result<_, _>>()?;
    Ok(page.page(images, |i: &Image| &i.name))
}

/// A work group's deployments.
pub async fn deployments(
    control: &ControlPlane,
    workgroup: &WorkgroupScope,
    page: &Page,
) -> Result<kiln_api::Page<Deployment>, ControlError> {
    let rows =
        store::deployments::list(control.db(), &workgroup.id, page.after(), page.fetch()).await?;
    let deployments = rows
        .into_iter()
        .map(|row| super::deployments::deployment(control, row))
        .collect::<Result<_, _>>()?;
    Ok(page.page(deployments, |d: &Deployment| &d.name))
}

/// A work group's endpoints.
pub async fn endpoints(
    control: &ControlPlane,
    workgroup: &WorkgroupScope,
    page: &Page,
) -> Result<kiln_api::Page<Endpoint>, ControlError> {
    let rows =
        store::endpoints::list(control.db(), &workgroup.id, page.after(), page.fetch()).await?;
    let endpoints = super::endpoints::endpoints(control, &workgroup.id, rows).await?;
    Ok(page.page(endpoints, |e: &Endpoint| &e.name))
}
