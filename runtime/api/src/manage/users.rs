//! Users, created by administrators (there is no self-signup), and API tokens, each user's own.

use serde::{Deserialize, Serialize};

/// `GET /api/v1/whoami`: who the token belongs to.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Whoami {
    /// The user's name.
    pub name: String,
    /// Whether the user administers the installation.
    pub admin: bool,
}

/// `POST /api/v1/users`: a new user.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct NewUser {
    /// The user's name.
    pub name: String,
    /// An installation administrator.
    #[serde(default)]
    pub admin: bool,
    /// A runtime node's user: its tokens reach the runtime routes (desired deployments,
    /// endpoints, status and drift reports) and nothing else. Give a node one instead of an
    /// admin token.
    #[serde(default)]
    pub runtime: bool,
}

/// The answer to [`NewUser`]: the user and its first token, shown once.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct CreatedUser {
    /// The user's name.
    pub name: String,
    /// An installation administrator.
    pub admin: bool,
    /// A runtime node's user.
    pub runtime: bool,
    /// The user's first token, named `initial`.
    pub token: IssuedToken,
}

/// A token's value as issued: shown once, never again.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct IssuedToken {
    /// The token's id (to list or revoke it).
    pub id: String,
    /// The token itself, `kiln_...`.
    pub token: String,
    /// [`super::SHOWN_ONCE`].
    pub note: String,
}

/// A user, as listed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct User {
    /// The user's name.
    pub name: String,
    /// An installation administrator.
    pub admin: bool,
    /// When the user was created (RFC 3339).
    pub created: String,
    /// When the user was disabled, while disabled (RFC 3339).
    pub disabled: Option<String>,
}

/// `PATCH /api/v1/users/{user}`: a change to a user.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct UserChange {
    /// Disable (every token of the user answers 401) or enable the user again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disabled: Option<bool>,
}

/// A token, as listed: never its value.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Token {
    /// The token's id.
    pub id: String,
    /// Its name.
    pub name: String,
    /// When it was created (RFC 3339).
    pub created: String,
    /// When it expires, if it does (RFC 3339).
    pub expires: Option<String>,
    /// When it was revoked, if it was (RFC 3339).
    pub revoked: Option<String>,
    /// The id of the token that minted it; revoking that one revokes this one.
    pub parent: Option<String>,
}

/// `POST /api/v1/tokens`: a new token of the caller's.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct NewToken {
    /// The token's name.
    pub name: String,
    /// Lifetime in seconds; none for a token that lasts until revoked (or until the token
    /// that creates it expires).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_in_seconds: Option<u64>,
}

/// The answer to [`NewToken`]: the token, shown once.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct CreatedToken {
    /// The token's id.
    pub id: String,
    /// Its name.
    pub name: String,
    /// The token itself, `kiln_...`.
    pub token: String,
    /// When it expires, if it does (RFC 3339).
    pub expires: Option<String>,
    /// [`super::SHOWN_ONCE`].
    pub note: String,
}

/// The answer to a revocation: the token, and every token minted from it, revoked with it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Revoked {
    /// The token's id.
    pub id: String,
    /// Always true.
    pub revoked: bool,
    /// The ids of the tokens minted from it (and from those), revoked with it.
    pub children_revoked: Vec<String>,
}
