//! The management commands over `kiln-client`'s typed calls, a module per noun. Each prints
//! through [`print`]: the answer's JSON for `--output json`, else the lines a person reads.

pub mod deployments;
pub mod endpoints;
pub mod experiments;
pub mod images;
pub mod models;
pub mod projects;
pub mod runs;
pub mod targets;
pub mod teams;
pub mod users;
pub mod workgroups;

use crate::args::Output;
use anyhow::Result;
use serde::Serialize;

/// Prints `value`: as JSON for `--output json`, else as `text` renders it.
pub(crate) fn print<T: Serialize>(
    output: Output,
    value: &T,
    text: impl FnOnce(&T) -> String,
) -> Result<()> {
    match output {
        Output::Json => println!("{}", serde_json::to_string(value)?),
        Output::Text => println!("{}", text(value)),
    }
    Ok(())
}

/// Prints every item of a listing: as one page of JSON (`{"items": [...], "next": null}`) for
/// `--output json`, else a line per item.
pub(crate) fn print_list<T: Serialize>(
    output: Output,
    items: Vec<T>,
    line: impl Fn(&T) -> String,
) -> Result<()> {
    let page = kiln_api::Page { items, next: None };
    print(output, &page, |page| {
        page.items.iter().map(line).collect::<Vec<_>>().join("\n")
    })
}
