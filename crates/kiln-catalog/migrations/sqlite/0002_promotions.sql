-- Which build runs in which environment. The promotions table is the whole
-- history; what runs now is its last row per (env, name), so the two can
-- never disagree.

CREATE TABLE environments (
    name TEXT PRIMARY KEY
) STRICT;

CREATE TABLE promotions (
    env TEXT NOT NULL REFERENCES environments (name),
    seq INTEGER NOT NULL,
    name TEXT NOT NULL,
    build TEXT NOT NULL REFERENCES builds (id),
    previous TEXT REFERENCES builds (id),
    kind TEXT NOT NULL CHECK (kind IN ('promote', 'rollback')),
    who TEXT NOT NULL,
    at INTEGER NOT NULL,
    forced INTEGER NOT NULL CHECK (forced IN (0, 1)),
    note TEXT,
    PRIMARY KEY (env, seq)
) STRICT;

CREATE INDEX promotions_by_image ON promotions (env, name, seq);
CREATE INDEX promotions_by_build ON promotions (build);
