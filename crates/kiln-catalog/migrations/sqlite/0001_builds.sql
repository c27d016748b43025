-- Builds, their output files and their test verdicts.
-- STRICT: a wrongly typed value is refused here rather than read back oddly.

CREATE TABLE builds (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    version TEXT NOT NULL,
    parent TEXT REFERENCES builds (id),
    definition_digest TEXT NOT NULL,
    lock_digest TEXT NOT NULL,
    kiln_version TEXT NOT NULL,
    git_commit TEXT,
    built_at INTEGER NOT NULL,
    last_built_at INTEGER NOT NULL,
    source_date_epoch INTEGER NOT NULL,
    manifest BLOB NOT NULL
) STRICT;

CREATE INDEX builds_by_name ON builds (name, version, built_at);
CREATE INDEX builds_by_time ON builds (built_at DESC, id);
CREATE INDEX builds_by_parent ON builds (parent);

CREATE TABLE outputs (
    build TEXT NOT NULL REFERENCES builds (id),
    format TEXT NOT NULL,
    position INTEGER NOT NULL,
    path TEXT NOT NULL,
    digest TEXT NOT NULL,
    size INTEGER NOT NULL,
    PRIMARY KEY (build, format)
) STRICT;

CREATE INDEX outputs_by_digest ON outputs (digest);

CREATE TABLE tests (
    id INTEGER PRIMARY KEY,
    build TEXT NOT NULL REFERENCES builds (id),
    at INTEGER NOT NULL,
    passed INTEGER NOT NULL CHECK (passed IN (0, 1)),
    accel TEXT NOT NULL,
    boot_seconds REAL,
    report TEXT NOT NULL
) STRICT;

CREATE INDEX tests_by_build ON tests (build, at, id);
