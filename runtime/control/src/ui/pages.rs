//! The pages: the home page (teams and their work groups) and a work group's lists.

use super::session::Session;
use super::{PageError, render};
use crate::ControlPlane;
use crate::access::{self, Access};
use crate::auth::{TeamRole, WorkgroupRole};
use crate::domain::listings::{self, Page};
use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use kiln_api::manage::deployments::Deployment;
use kiln_api::manage::endpoints::Endpoint;
use kiln_api::manage::images::Image;
use kiln_api::manage::models::Model;
use kiln_api::manage::projects::Project;
use kiln_api::manage::teams::Team;
use kiln_api::manage::workgroups::Workgroup;
use std::collections::HashMap;

/// A team on the home page, with the work groups the user sees in it.
struct TeamCard {
    team: Team,
    workgroups: Vec<Workgroup>,
}

#[derive(Template)]
#[template(path = "home.html")]
struct Home {
    user: String,
    csrf: String,
    teams: Vec<TeamCard>,
}

/// `GET /`: the user's teams and work groups.
pub async fn home(
    State(control): State<ControlPlane>,
    session: Session,
) -> Result<Response, PageError> {
    let everything = Page::default();
    let teams = listings::teams(&control, &session.principal, &everything).await?;
    let mut cards = Vec::new();
    for team in teams.items {
        let params = HashMap::from([("team".to_string(), team.name.clone())]);
        let need = Access::Team(TeamRole::Member);
        let scope = access::scope(&control, session.principal.clone(), need, &params).await?;
        let workgroups =
            listings::workgroups(&control, scope.team()?, &session.principal, &everything).await?;
        cards.push(TeamCard {
            team,
            workgroups: workgroups.items,
        });
    }
    let page = Home {
        user: session.principal.name.clone(),
        csrf: session.csrf,
        teams: cards,
    };
    render(StatusCode::OK, &page)
}

#[derive(Template)]
#[template(path = "workgroup.html")]
struct WorkgroupPage {
    user: String,
    csrf: String,
    team: String,
    workgroup: String,
    role: &'static str,
    projects: Vec<Project>,
    models: Vec<Model>,
    images: Vec<Image>,
    deployments: Vec<Deployment>,
    endpoints: Vec<Endpoint>,
}

/// `GET /teams/{team}/workgroups/{workgroup}`: its projects, models, images, deployments and
/// endpoints. A work group the user may not see is a 404, as in the API.
pub async fn workgroup(
    State(control): State<ControlPlane>,
    session: Session,
    Path((team, workgroup)): Path<(String, String)>,
) -> Result<Response, PageError> {
    let params = HashMap::from([
        ("team".to_string(), team.clone()),
        ("workgroup".to_string(), workgroup.clone()),
    ]);
    let need = Access::Workgroup(WorkgroupRole::Reader);
    let scope = access::scope(&control, session.principal.clone(), need, &params).await?;
    let wg = scope.workgroup()?;
    let first = Page::default();
    let page = WorkgroupPage {
        user: session.principal.name.clone(),
        csrf: session.csrf,
        team,
        workgroup,
        role: wg.role.as_str(),
        projects: listings::projects(&control, wg, &first).await?.items,
        models: listings::models(&control, wg, &first).await?.items,
        images: listings::images(&control, wg, &first).await?.items,
        deployments: listings::deployments(&control, wg, &first).await?.items,
        endpoints: listings::endpoints(&control, wg, &first).await?.items,
    };
    render(StatusCode::OK, &page)
}
