-- Enrollment tokens that assign groups: an agent enrolled with the token joins these
-- groups, in this order (configuration layers apply in the order of an agent's groups).
-- A JSON array of group names, validated by the server; '[]' for tokens without groups,
-- including every token created before this migration.
ALTER TABLE enrollment_tokens ADD COLUMN groups TEXT NOT NULL DEFAULT '[]';
