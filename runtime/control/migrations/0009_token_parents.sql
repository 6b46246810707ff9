-- The token that minted each token (NULL for a user's first token, the bootstrap token and run
-- tokens): revoking a token revokes every token minted from it, down the whole tree.
ALTER TABLE tokens ADD COLUMN parent_id TEXT;
CREATE INDEX tokens_parent ON tokens (parent_id);
