//! The control plane's decisions, as plain functions: what is valid, what a change does, what
//! a row means to a client. Handlers (`api/`) extract a request, authorize it and call these;
//! these read and write through [`crate::store`]. Nothing here knows HTTP.

pub mod deployments;
pub mod endpoints;
pub mod experiments;
pub mod images;
pub mod listings;
pub mod manifests;
pub mod models;
pub mod monitoring;
pub mod oci;
pub mod projects;
pub mod quotas;
pub mod runner;
pub mod runs;
pub mod search;
pub mod targets;
pub mod teams;
pub mod users;
pub mod workgroups;

use kiln_api::manage::deployments::{DeploymentStatus, Urls};

/// The prediction URLs of a deployment or endpoint called `name`.
pub fn urls(control: &crate::ControlPlane, name: &str) -> Urls {
    Urls::of(&control.settings().prediction_url, name)
}

/// The status to show: what was reported, unless it was reported for an older generation,
/// which says nothing about the current one.
pub fn shown_status(reported: DeploymentStatus, about: i64, generation: i64) -> DeploymentStatus {
    if about < generation {
        DeploymentStatus::Pending
    } else {
        reported
    }
}

/// Items per page of a listing: 100 unless asked, 1 to 1000.
pub fn page_limit(asked: Option<u32>) -> usize {
    asked.unwrap_or(100).clamp(1, 1000) as usize
}

/// Milliseconds since the epoch as RFC 3339 text, for responses.
pub fn time(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let millis = ms.rem_euclid(1000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (h, m, s) = (rem / 3600, (rem % 3600) / 60, rem % 60);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}T{h:02}:{m:02}:{s:02}.{millis:03}Z")
}
