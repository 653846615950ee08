-- Accommodations that exist only for the deploy checks: `cargo xtask overlap` books a cabin
-- of its own on a deployed environment (created through PUT /api/v1/admin/test-fixtures/{slug}),
-- so it needs no real cabin and never blocks a real guest's dates. A fixture is never listed,
-- its availability is shown only to an admin, and only a request with an admin token can
-- pre-reserve it (backend/src/store/accommodations.rs, `Audience`).
-- (0004 and 0005 are numbers taken by other changes.)
ALTER TABLE accommodations
    ADD COLUMN test_fixture INTEGER NOT NULL DEFAULT 0 CHECK (test_fixture IN (0, 1));
