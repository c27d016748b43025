-- Where each build was pushed: one row per registry reference (the image
-- manifest by digest), with the tags it was given and when.

CREATE TABLE pushes (
    build TEXT NOT NULL REFERENCES builds (id),
    reference TEXT NOT NULL,
    tags TEXT NOT NULL,
    at BIGINT NOT NULL,
    PRIMARY KEY (build, reference)
);
