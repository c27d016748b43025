-- `kiln rebuild` runs: one row per rollout (what started it, with which
-- options, how it ended) and one per image it touched. A rollout killed
-- before its end keeps finished_at NULL; the rerun continues that row
-- (attempts counts the runs) and updates its images' rows.

CREATE TABLE rollouts (
    id INTEGER PRIMARY KEY,
    dir TEXT NOT NULL,
    trigger TEXT NOT NULL,
    options TEXT NOT NULL,
    who TEXT NOT NULL,
    started_at INTEGER NOT NULL,
    finished_at INTEGER,
    outcome TEXT CHECK (outcome IN ('passed', 'failed')),
    attempts INTEGER NOT NULL
) STRICT;

CREATE INDEX rollouts_unfinished ON rollouts (dir, trigger, finished_at);

CREATE TABLE rollout_images (
    rollout INTEGER NOT NULL REFERENCES rollouts (id),
    name TEXT NOT NULL,
    wave INTEGER NOT NULL,
    reason TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('started', 'passed', 'failed', 'skipped')),
    build TEXT REFERENCES builds (id),
    cached INTEGER NOT NULL CHECK (cached IN (0, 1)),
    tested TEXT CHECK (tested IN ('passed', 'reused', 'failed')),
    promoted TEXT,
    detail TEXT,
    at INTEGER NOT NULL,
    PRIMARY KEY (rollout, name)
) STRICT;
