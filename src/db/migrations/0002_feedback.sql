-- Citizens' feedback on the portal of one tenant: "Was this page helpful?" on service pages
-- (EU Single Digital Gateway, Reg. 2018/1724 Art. 25) and the feedback form of the
-- accessibility statement (barriers, other remarks). Written by the portal server as the
-- tenant's role; read by the operator (`portalctl feedback`).
--
-- No personal data is required: only an accessibility report may carry an e-mail address,
-- and only when the citizen wants a reply. The client's address is never stored.
--
-- Runs inside the tenant's own schema: search_path = <tenant schema>, portalctl_ext.

CREATE TABLE feedback (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    received_at timestamptz NOT NULL DEFAULT now(),
    -- helpful: the yes/no question of a service page; accessibility: a barrier report;
    -- general: any other remark.
    kind        text NOT NULL CHECK (kind IN ('helpful', 'accessibility', 'general')),
    -- The service page the answer is about (kind helpful), kept as text so that feedback
    -- outlives the service.
    service_id  text CHECK (service_id ~ '^[a-z0-9][a-z0-9-]{0,62}$'),
    helpful     boolean,
    -- The page a report is about, as the citizen gave it.
    page        text NOT NULL DEFAULT '' CHECK (length(page) <= 300),
    message     text NOT NULL DEFAULT '' CHECK (length(message) <= 2000),
    email       text CHECK (length(email) <= 254),
    CHECK ((kind = 'helpful') = (helpful IS NOT NULL)),
    CHECK ((kind = 'helpful') = (service_id IS NOT NULL)),
    CHECK (email IS NULL OR kind = 'accessibility')
);

CREATE INDEX feedback_received_at ON feedback (received_at);
