//! Users and tokens.

use crate::{Client, Error, segment};
use kiln_api::Page;
use kiln_api::manage::users::{
    CreatedToken, CreatedUser, NewToken, NewUser, Revoked, Token, User, UserChange, Whoami,
};

impl Client {
    /// Who the token belongs to.
    pub async fn whoami(&self) -> Result<Whoami, Error> {
        self.get("/api/v1/whoami").await
    }

    /// Creates a user (an admin's call); its first token is in the answer, once.
    pub async fn create_user(&self, user: &NewUser) -> Result<CreatedUser, Error> {
        self.post("/api/v1/users", user).await
    }

    /// Every user, page after page.
    pub async fn users(&self) -> Result<Vec<User>, Error> {
        self.all("/api/v1/users").await
    }

    /// Changes a user: disables or enables it.
    pub async fn update_user(&self, name: &str, change: &UserChange) -> Result<User, Error> {
        self.patch(&format!("/api/v1/users/{}", segment(name)), change)
            .await
    }

    /// A user's tokens, never their values (an admin's call).
    pub async fn user_tokens(&self, name: &str) -> Result<Page<Token>, Error> {
        self.get(&format!("/api/v1/users/{}/tokens", segment(name)))
            .await
    }

    /// Revokes a user's token and every token minted from it (an admin's call).
    pub async fn revoke_user_token(&self, name: &str, id: &str) -> Result<Revoked, Error> {
        self.delete(&format!(
            "/api/v1/users/{}/tokens/{}",
            segment(name),
            segment(id)
        ))
        .await
    }

    /// A new token of the caller's, shown once; it ends no later than the calling token.
    pub async fn create_token(&self, token: &NewToken) -> Result<CreatedToken, Error> {
        self.post("/api/v1/tokens", token).await
    }

    /// The caller's tokens, never their values.
    pub async fn tokens(&self) -> Result<Page<Token>, Error> {
        self.get("/api/v1/tokens").await
    }

    /// Revokes one of the caller's tokens and every token minted from it.
    pub async fn revoke_token(&self, id: &str) -> Result<Revoked, Error> {
        self.delete(&format!("/api/v1/tokens/{}", segment(id)))
            .await
    }
}
