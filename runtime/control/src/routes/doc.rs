//! What the OpenAPI document says of each route, read off its handler's signature.
//!
//! Schemas come from the wire types through `schemars`, which writes JSON Schema 2020-12 (the
//! schema dialect of OpenAPI 3.1) and follows serde's attributes, so a schema says what serde
//! sends. A handler documents itself: [`of`] reads the `T` of its `Json<T>` answer, the `B` of
//! its [`JsonBody<B>`] and the `Q` of its [`Query<Q>`] off its type ([`Documented`]), so the
//! route table names no schema by hand and none can drift from the code. What a signature
//! cannot say (a create answers 201, a handler streams text or a file) the row says with
//! [`Route::answers`](super::Route::answers).

use crate::ControlError;
use crate::api::{JsonBody, Query};
use axum::Json;
use axum::http::StatusCode;
use axum::response::Response;
use schemars::{JsonSchema, Schema, SchemaGenerator};
use std::future::Future;

/// Writes the schema of one type into a generator, returning it or a `$ref` to it.
pub type SchemaFn = fn(&mut SchemaGenerator) -> Schema;

pub(super) fn schema_of<T: JsonSchema>(generator: &mut SchemaGenerator) -> Schema {
    generator.subschema_for::<T>()
}

/// What a route answers on success.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Answer {
    /// `200` with the handler's JSON.
    Ok,
    /// `201` with the handler's JSON: something was made.
    Created,
    /// `201` with the handler's JSON when something was made, `200` when it was there and
    /// changed (a `PUT`).
    Upsert,
    /// `202` with the handler's JSON: something was asked for and goes on.
    Accepted,
    /// `200` with text (`text/plain`), streamed.
    Text,
    /// `200` with a file, as it is (`application/octet-stream`).
    Bytes,
    /// The MLflow REST protocol: MLflow's bodies and MLflow's errors.
    Mlflow,
}

/// What the document says of one route beyond its method, path and access.
#[derive(Clone, Copy)]
pub struct Doc {
    /// The schema of a JSON request body.
    pub request: Option<SchemaFn>,
    /// The schema of the query string's parameters.
    pub query: Option<SchemaFn>,
    /// The schema of a JSON answer.
    pub response: Option<SchemaFn>,
    /// What a success answers.
    pub answer: Answer,
}

/// An argument of a handler: a JSON body or a query string brings its schema, other
/// extractors nothing.
pub trait Extractor {
    /// The request body's schema, for [`JsonBody`].
    const REQUEST: Option<SchemaFn> = None;
    /// The query string's schema, for [`Query`].
    const QUERY: Option<SchemaFn> = None;
}

impl<T: JsonSchema> Extractor for JsonBody<T> {
    const REQUEST: Option<SchemaFn> = Some(schema_of::<T>);
}

impl<T: JsonSchema> Extractor for Query<T> {
    const QUERY: Option<SchemaFn> = Some(schema_of::<T>);
}

impl<S> Extractor for axum::extract::State<S> {}
impl<T> Extractor for axum::extract::Extension<T> {}
impl<T> Extractor for axum::extract::Path<T> {}
impl Extractor for axum::extract::RawQuery {}
impl Extractor for axum::http::Method {}
impl Extractor for axum::http::HeaderMap {}
impl Extractor for axum::body::Body {}
impl Extractor for bytes::Bytes {}

/// A handler's answer: JSON brings its schema, a streamed or raw response nothing.
pub trait Answered {
    /// The schema of a JSON answer.
    const RESPONSE: Option<SchemaFn>;
}

impl<T: JsonSchema> Answered for Result<(StatusCode, Json<T>), ControlError> {
    const RESPONSE: Option<SchemaFn> = Some(schema_of::<T>);
}

impl<T: JsonSchema> Answered for Json<T> {
    const RESPONSE: Option<SchemaFn> = Some(schema_of::<T>);
}

impl Answered for Result<Response, ControlError> {
    const RESPONSE: Option<SchemaFn> = None;
}

impl Answered for Response {
    const RESPONSE: Option<SchemaFn> = None;
}

/// A handler, documented by its type.
pub trait Documented<Args> {
    /// Its request, query and response schemas.
    fn doc() -> Doc;
}

macro_rules! documented {
    ($($arg:ident),*) => {
        impl<F, Fut, $($arg),*> Documented<($($arg,)*)> for F
        where
            F: FnOnce($($arg),*) -> Fut,
            Fut: Future,
            Fut::Output: Answered,
            $($arg: Extractor,)*
        {
            fn doc() -> Doc {
                let request: Option<SchemaFn> = None;
                let query: Option<SchemaFn> = None;
                $(let request = request.or(<$arg as Extractor>::REQUEST);)*
                $(let query = query.or(<$arg as Extractor>::QUERY);)*
                Doc {
                    request,
                    query,
                    response: <Fut::Output as Answered>::RESPONSE,
                    answer: Answer::Ok,
                }
            }
        }
    };
}

documented!();
documented!(A1);
documented!(A1, A2);
documented!(A1, A2, A3);
documented!(A1, A2, A3, A4);
documented!(A1, A2, A3, A4, A5);
documented!(A1, A2, A3, A4, A5, A6);
documented!(A1, A2, A3, A4, A5, A6, A7);

/// The document of a handler, read off its type.
pub fn of<Args, H: Documented<Args>>(_: &H) -> Doc {
    H::doc()
}
