-- The broker identity of each agent: the public nkey of the NATS user it connects as, when
-- its JWT was issued, and when it was revoked. Rows outlive the agent they belong to: a
-- deleted agent's key stays listed as revoked, because the account JWT the broker
-- enforces is rebuilt from this table.
CREATE TABLE broker_identities (
    public_key TEXT PRIMARY KEY,
    agent_id   TEXT NOT NULL,
    issued_at  INTEGER NOT NULL,
    revoked_at INTEGER
);

CREATE INDEX broker_identities_by_agent ON broker_identities (agent_id, issued_at);
CREATE INDEX broker_identities_revoked ON broker_identities (revoked_at)
    WHERE revoked_at IS NOT NULL;
