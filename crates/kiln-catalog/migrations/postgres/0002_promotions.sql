-- Which build runs in which environment. The promotions table is the whole
-- history; what runs now is its last row per (env, name), so the two can
-- never disagree. A promotion locks its environment's row first, which
-- keeps seq and previous right when several run at once.

CREATE TABLE environments (
    name TEXT PRIMARY KEY
);

CREATE TABLE promotions (
    env TEXT NOT NULL REFERENCES environments (name),
    seq BIGINT NOT NULL,
    name TEXT NOT NULL,
    build TEXT NOT NULL REFERENCES builds (id),
    previous TEXT REFERENCES builds (id),
    kind TEXT NOT NULL CHECK (kind IN ('promote', 'rollback')),
    who TEXT NOT NULL,
    at BIGINT NOT NULL,
    forced BOOLEAN NOT NULL,
    note TEXT,
    PRIMARY KEY (env, seq)
);

CREATE INDEX promotions_by_image ON promotions (env, name, seq);
CREATE INDEX promotions_by_build ON promotions (build);
