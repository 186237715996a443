-- Content that fits the authority: which level of local government a service belongs to,
-- its key in the federal service catalogue (LeiKa / FIM Leistungsschlüssel), and whether a
-- facility's or contact's details are still placeholders of the starter catalogue.
--
-- Runs inside the tenant's own schema (see 0001_content.sql). Never names a schema itself.

-- gemeinde: a municipal task (Meldewesen, dog tax, …); kreis: a task of the Kreis (vehicle
-- registration, driving licences, …); both: offered at either level. NULL: not stated.
ALTER TABLE service
    ADD COLUMN competence text CHECK (competence IN ('gemeinde', 'kreis', 'both')),
    ADD COLUMN leika_key  text CHECK (leika_key ~ '^[0-9]{14}$');

CREATE INDEX service_leika_key_idx ON service (leika_key) WHERE leika_key IS NOT NULL;

-- Address, opening hours, phone or e-mail are placeholders to be replaced before publishing.
ALTER TABLE facility ADD COLUMN placeholder boolean NOT NULL DEFAULT false;
ALTER TABLE staff ADD COLUMN placeholder boolean NOT NULL DEFAULT false;
