-- The signing keys each agent trusts, as its last heartbeat listed them (key ids separated
-- by spaces; empty until an agent of this version sends a heartbeat). `tutti keys status`
-- counts the agents that trust a rotation's next key before it takes over.
ALTER TABLE agents ADD COLUMN trusted_keys TEXT NOT NULL DEFAULT '';
