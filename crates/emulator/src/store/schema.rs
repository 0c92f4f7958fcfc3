//! The database schema and its migrations.
//!
//! `PRAGMA user_version` holds the number of migrations applied. Each migration runs
//! in its own transaction together with the version bump, so a failed upgrade leaves
//! the database at the previous version. Migrations are only ever appended.

use std::path::Path;

use rusqlite::Connection;

use super::StoreError;

/// The migrations, oldest first; migration `i` takes the schema to version `i + 1`.
const MIGRATIONS: &[&str] = &[
    // Version 1.
    r#"
    CREATE TABLE things (
        name        TEXT PRIMARY KEY NOT NULL,
        thing_type  TEXT,
        attributes  TEXT NOT NULL,            -- JSON object of string to string
        created_at  INTEGER NOT NULL          -- unix seconds
    );

    CREATE TABLE certificates (
        id          TEXT PRIMARY KEY NOT NULL, -- lowercase hex SHA-256 of the DER
        pem         TEXT NOT NULL,
        status      TEXT NOT NULL CHECK (status IN ('ACTIVE', 'INACTIVE', 'REVOKED', 'PENDING_ACTIVATION')),
        created_at  INTEGER NOT NULL
    );

    CREATE TABLE thing_principals (
        thing_name      TEXT NOT NULL REFERENCES things (name),
        certificate_id  TEXT NOT NULL REFERENCES certificates (id),
        PRIMARY KEY (thing_name, certificate_id)
    ) WITHOUT ROWID;
    CREATE INDEX thing_principals_by_certificate ON thing_principals (certificate_id);

    CREATE TABLE retained_messages (
        topic                     TEXT PRIMARY KEY NOT NULL,
        payload                   BLOB NOT NULL,
        qos                       INTEGER NOT NULL,
        payload_format_indicator  INTEGER,
        content_type              TEXT,
        response_topic            TEXT,
        correlation_data          BLOB,
        user_properties           TEXT NOT NULL,  -- JSON array of [name, value] pairs
        expires_at                INTEGER,        -- unix seconds
        updated_at                INTEGER NOT NULL
    );

    CREATE TABLE sessions (
        client_id            TEXT PRIMARY KEY NOT NULL,
        protocol_version     INTEGER NOT NULL,  -- 4 = MQTT 3.1.1, 5 = MQTT 5.0
        session_expiry_secs  INTEGER NOT NULL,
        disconnected_at      INTEGER            -- unix seconds; NULL while connected
    );

    CREATE TABLE session_subscriptions (
        client_id            TEXT NOT NULL REFERENCES sessions (client_id) ON DELETE CASCADE,
        filter               TEXT NOT NULL,
        qos                  INTEGER NOT NULL,
        no_local             INTEGER NOT NULL,
        retain_as_published  INTEGER NOT NULL,
        retain_handling      INTEGER NOT NULL,
        PRIMARY KEY (client_id, filter)
    ) WITHOUT ROWID;

    CREATE TABLE session_queue (
        client_id                 TEXT NOT NULL REFERENCES sessions (client_id) ON DELETE CASCADE,
        seq                       INTEGER NOT NULL,
        topic                     TEXT NOT NULL,
        payload                   BLOB NOT NULL,
        qos                       INTEGER NOT NULL,
        retain                    INTEGER NOT NULL,
        payload_format_indicator  INTEGER,
        content_type              TEXT,
        response_topic            TEXT,
        correlation_data          BLOB,
        user_properties           TEXT NOT NULL,
        expires_at                INTEGER,
        packet_id                 INTEGER,          -- set once sent
        PRIMARY KEY (client_id, seq)
    );
    "#,
    // Version 2: Device Shadow documents.
    r#"
    CREATE TABLE shadows (
        thing_name   TEXT NOT NULL,
        shadow_name  TEXT NOT NULL,            -- '' for the classic shadow
        document     TEXT,                     -- JSON {"state","metadata","version"}; NULL once deleted
        version      INTEGER NOT NULL,         -- the document's version, or the deleted one's
        deleted_at   INTEGER,                  -- unix seconds; set only while deleted
        updated_at   INTEGER NOT NULL,
        PRIMARY KEY (thing_name, shadow_name)
    ) WITHOUT ROWID;
    "#,
    // Version 3: AWS IoT policies (named, versioned), their attachments to
    // certificates, and a counter every registry change bumps, so that a running
    // emulator notices what another process (the iotcore CLI) changed.
    r#"
    CREATE TABLE policies (
        name             TEXT PRIMARY KEY NOT NULL,
        default_version  INTEGER NOT NULL,
        last_version     INTEGER NOT NULL,    -- version ids are never reused
        created_at       INTEGER NOT NULL
    );

    CREATE TABLE policy_versions (
        policy_name  TEXT NOT NULL REFERENCES policies (name) ON DELETE CASCADE,
        version      INTEGER NOT NULL,
        document     TEXT NOT NULL,           -- the JSON document as given
        created_at   INTEGER NOT NULL,
        PRIMARY KEY (policy_name, version)
    ) WITHOUT ROWID;

    CREATE TABLE policy_principals (
        policy_name     TEXT NOT NULL REFERENCES policies (name),
        certificate_id  TEXT NOT NULL REFERENCES certificates (id),
        PRIMARY KEY (policy_name, certificate_id)
    ) WITHOUT ROWID;
    CREATE INDEX policy_principals_by_certificate ON policy_principals (certificate_id);

    CREATE TABLE registry_changes (
        id       INTEGER PRIMARY KEY CHECK (id = 1),
        counter  INTEGER NOT NULL
    );
    INSERT INTO registry_changes (id, counter) VALUES (1, 0);
    CREATE TRIGGER things_insert_counted AFTER INSERT ON things
        BEGIN UPDATE registry_changes SET counter = counter + 1; END;
    CREATE TRIGGER things_update_counted AFTER UPDATE ON things
        BEGIN UPDATE registry_changes SET counter = counter + 1; END;
    CREATE TRIGGER things_delete_counted AFTER DELETE ON things
        BEGIN UPDATE registry_changes SET counter = counter + 1; END;
    CREATE TRIGGER certificates_insert_counted AFTER INSERT ON certificates
        BEGIN UPDATE registry_changes SET counter = counter + 1; END;
    CREATE TRIGGER certificates_update_counted AFTER UPDATE ON certificates
        BEGIN UPDATE registry_changes SET counter = counter + 1; END;
    CREATE TRIGGER certificates_delete_counted AFTER DELETE ON certificates
        BEGIN UPDATE registry_changes SET counter = counter + 1; END;
    CREATE TRIGGER thing_principals_insert_counted AFTER INSERT ON thing_principals
        BEGIN UPDATE registry_changes SET counter = counter + 1; END;
    CREATE TRIGGER thing_principals_update_counted AFTER UPDATE ON thing_principals
        BEGIN UPDATE registry_changes SET counter = counter + 1; END;
    CREATE TRIGGER thing_principals_delete_counted AFTER DELETE ON thing_principals
        BEGIN UPDATE registry_changes SET counter = counter + 1; END;
    CREATE TRIGGER policies_insert_counted AFTER INSERT ON policies
        BEGIN UPDATE registry_changes SET counter = counter + 1; END;
    CREATE TRIGGER policies_update_counted AFTER UPDATE ON policies
        BEGIN UPDATE registry_changes SET counter = counter + 1; END;
    CREATE TRIGGER policies_delete_counted AFTER DELETE ON policies
        BEGIN UPDATE registry_changes SET counter = counter + 1; END;
    CREATE TRIGGER policy_versions_insert_counted AFTER INSERT ON policy_versions
        BEGIN UPDATE registry_changes SET counter = counter + 1; END;
    CREATE TRIGGER policy_versions_update_counted AFTER UPDATE ON policy_versions
        BEGIN UPDATE registry_changes SET counter = counter + 1; END;
    CREATE TRIGGER policy_versions_delete_counted AFTER DELETE ON policy_versions
        BEGIN UPDATE registry_changes SET counter = counter + 1; END;
    CREATE TRIGGER policy_principals_insert_counted AFTER INSERT ON policy_principals
        BEGIN UPDATE registry_changes SET counter = counter + 1; END;
    CREATE TRIGGER policy_principals_update_counted AFTER UPDATE ON policy_principals
        BEGIN UPDATE registry_changes SET counter = counter + 1; END;
    CREATE TRIGGER policy_principals_delete_counted AFTER DELETE ON policy_principals
        BEGIN UPDATE registry_changes SET counter = counter + 1; END;
    "#,
    // Version 4: fleet provisioning templates, and the one-hour ownership tokens of
    // certificates waiting for RegisterThing (deleted with their certificate).
    r#"
    CREATE TABLE provisioning_templates (
        name          TEXT PRIMARY KEY NOT NULL,
        body          TEXT NOT NULL,           -- the JSON template as given
        description   TEXT,
        hook_command  TEXT,                    -- pre-provisioning hook, run with /bin/sh -c
        created_at    INTEGER NOT NULL,
        updated_at    INTEGER NOT NULL
    );

    CREATE TABLE provisioning_tokens (
        token                 TEXT PRIMARY KEY NOT NULL,
        certificate_id        TEXT NOT NULL REFERENCES certificates (id) ON DELETE CASCADE,
        claim_certificate_id  TEXT NOT NULL,
        expires_at            INTEGER NOT NULL  -- unix seconds
    );
    CREATE INDEX provisioning_tokens_by_expiry ON provisioning_tokens (expires_at);
    "#,
    // Version 5: what AWS's control plane returns and the registry needs for it:
    // thing versions and ids, thing types, static thing groups, certificate
    // modification times, template settings, and the access keys the HTTPS API
    // verifies SigV4 signatures with. The change counter of version 3 goes: the
    // control layer tells a running emulator of each change itself.
    r#"
    DROP TRIGGER things_insert_counted;
    DROP TRIGGER things_update_counted;
    DROP TRIGGER things_delete_counted;
    DROP TRIGGER certificates_insert_counted;
    DROP TRIGGER certificates_update_counted;
    DROP TRIGGER certificates_delete_counted;
    DROP TRIGGER thing_principals_insert_counted;
    DROP TRIGGER thing_principals_update_counted;
    DROP TRIGGER thing_principals_delete_counted;
    DROP TRIGGER policies_insert_counted;
    DROP TRIGGER policies_update_counted;
    DROP TRIGGER policies_delete_counted;
    DROP TRIGGER policy_versions_insert_counted;
    DROP TRIGGER policy_versions_update_counted;
    DROP TRIGGER policy_versions_delete_counted;
    DROP TRIGGER policy_principals_insert_counted;
    DROP TRIGGER policy_principals_update_counted;
    DROP TRIGGER policy_principals_delete_counted;
    DROP TABLE registry_changes;

    ALTER TABLE things ADD COLUMN version INTEGER NOT NULL DEFAULT 1;
    ALTER TABLE things ADD COLUMN thing_id TEXT;
    UPDATE things SET thing_id = lower(hex(randomblob(4)) || '-' || hex(randomblob(2)) || '-4' ||
        substr(hex(randomblob(2)), 2) || '-a' || substr(hex(randomblob(2)), 2) || '-' || hex(randomblob(6)));

    ALTER TABLE certificates ADD COLUMN updated_at INTEGER;
    UPDATE certificates SET updated_at = created_at;

    ALTER TABLE provisioning_templates ADD COLUMN enabled INTEGER NOT NULL DEFAULT 1;
    ALTER TABLE provisioning_templates ADD COLUMN role_arn TEXT;
    ALTER TABLE provisioning_templates ADD COLUMN hook_target TEXT;

    CREATE TABLE thing_types (
        name           TEXT PRIMARY KEY NOT NULL,
        thing_type_id  TEXT NOT NULL,
        description    TEXT,
        searchable     TEXT NOT NULL,          -- JSON array of attribute names
        deprecated_at  INTEGER,                -- unix seconds; NULL while not deprecated
        created_at     INTEGER NOT NULL
    );

    CREATE TABLE thing_groups (
        name         TEXT PRIMARY KEY NOT NULL,
        group_id     TEXT NOT NULL,
        parent       TEXT REFERENCES thing_groups (name),
        description  TEXT,
        attributes   TEXT NOT NULL,            -- JSON object of string to string
        version      INTEGER NOT NULL,
        created_at   INTEGER NOT NULL
    );

    CREATE TABLE thing_group_members (
        group_name  TEXT NOT NULL REFERENCES thing_groups (name) ON DELETE CASCADE,
        thing_name  TEXT NOT NULL REFERENCES things (name) ON DELETE CASCADE,
        PRIMARY KEY (group_name, thing_name)
    ) WITHOUT ROWID;
    CREATE INDEX thing_group_members_by_thing ON thing_group_members (thing_name);

    CREATE TABLE api_credentials (
        access_key_id      TEXT PRIMARY KEY NOT NULL,
        secret_access_key  TEXT NOT NULL,
        session_token      TEXT,
        name               TEXT NOT NULL,
        policy             TEXT,               -- an IoT policy limiting what the key may do
        created_at         INTEGER NOT NULL,
        expires_at         INTEGER             -- unix seconds; NULL for long-term keys
    );
    "#,
    // Version 6: jobs and their executions (the Jobs control plane). The
    // configurations AWS takes at CreateJob are kept as the JSON given.
    r#"
    CREATE TABLE jobs (
        job_id            TEXT PRIMARY KEY NOT NULL,
        document          TEXT NOT NULL,
        document_source   TEXT,                 -- where the document was read from
        description       TEXT,
        targets           TEXT NOT NULL,        -- JSON array of thing and thing-group ARNs
        target_selection  TEXT NOT NULL CHECK (target_selection IN ('SNAPSHOT', 'CONTINUOUS')),
        status            TEXT NOT NULL CHECK (status IN ('IN_PROGRESS', 'CANCELED', 'COMPLETED', 'DELETION_IN_PROGRESS')),
        force_canceled    INTEGER NOT NULL DEFAULT 0,
        reason_code       TEXT,
        comment           TEXT,
        namespace_id      TEXT,
        timeout_config    TEXT,                 -- JSON objects as given, or NULL
        rollout_config    TEXT,
        abort_config      TEXT,
        retry_config      TEXT,
        presigned_url_config TEXT,
        scheduling_config TEXT,
        created_at        INTEGER NOT NULL,     -- unix seconds
        last_updated_at   INTEGER NOT NULL,
        completed_at      INTEGER
    );

    CREATE TABLE job_executions (
        job_id            TEXT NOT NULL REFERENCES jobs (job_id) ON DELETE CASCADE,
        thing_name        TEXT NOT NULL,
        execution_number  INTEGER NOT NULL,
        status            TEXT NOT NULL CHECK (status IN ('QUEUED', 'IN_PROGRESS', 'SUCCEEDED', 'FAILED',
                              'TIMED_OUT', 'REJECTED', 'REMOVED', 'CANCELED')),
        status_details    TEXT NOT NULL,        -- JSON object of string to string
        version_number    INTEGER NOT NULL,
        queued_at         INTEGER NOT NULL,
        started_at        INTEGER,
        last_updated_at   INTEGER NOT NULL,
        force_canceled    INTEGER NOT NULL DEFAULT 0,
        retry_attempt     INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (job_id, thing_name, execution_number)
    ) WITHOUT ROWID;
    CREATE INDEX job_executions_by_thing ON job_executions (thing_name);
    "#,
    // Version 7: the device side of jobs. An execution's timers are kept as
    // absolute deadlines, so that they survive a restart; a job with a rollout
    // rate keeps the things it has not queued an execution for yet.
    r#"
    ALTER TABLE job_executions ADD COLUMN in_progress_deadline INTEGER;  -- unix seconds
    ALTER TABLE job_executions ADD COLUMN step_deadline INTEGER;         -- unix seconds
    ALTER TABLE job_executions ADD COLUMN queue_seq INTEGER NOT NULL DEFAULT 0;  -- queueing order
    CREATE INDEX job_executions_by_status ON job_executions (status);

    CREATE TABLE job_rollout_pending (
        job_id      TEXT NOT NULL REFERENCES jobs (job_id) ON DELETE CASCADE,
        thing_name  TEXT NOT NULL,
        position    INTEGER NOT NULL,                -- the order things are queued in
        PRIMARY KEY (job_id, thing_name)
    ) WITHOUT ROWID;
    "#,
    // Version 8: custom authorizers, and which one is the account's default.
    r#"
    CREATE TABLE authorizers (
        name                       TEXT PRIMARY KEY NOT NULL,
        function                   TEXT NOT NULL,      -- the command run as the Lambda
        token_key_name             TEXT,
        token_signing_public_keys  TEXT NOT NULL,      -- JSON object: key name -> PEM
        status                     TEXT NOT NULL CHECK (status IN ('ACTIVE', 'INACTIVE')),
        signing_disabled           INTEGER NOT NULL,
        enable_caching_for_http    INTEGER NOT NULL,
        is_default                 INTEGER NOT NULL DEFAULT 0,
        created_at                 INTEGER NOT NULL,
        last_modified_at           INTEGER NOT NULL
    );
    CREATE UNIQUE INDEX authorizers_one_default ON authorizers (is_default) WHERE is_default = 1;
    "#,
    // Version 9: Greengrass core devices (things), their connectivity
    // information and CA certificates, and the client devices associated
    // with them. Deleting a thing deletes its rows here.
    r#"
    CREATE TABLE greengrass_core_devices (
        thing_name               TEXT PRIMARY KEY NOT NULL REFERENCES things (name) ON DELETE CASCADE,
        created_at               INTEGER NOT NULL,
        connectivity             TEXT NOT NULL DEFAULT '[]',  -- JSON array of {Id, HostAddress, PortNumber, Metadata}
        connectivity_version     INTEGER NOT NULL DEFAULT 0,
        certificate_authorities  TEXT NOT NULL DEFAULT '[]'   -- JSON array of PEM strings
    );

    CREATE TABLE greengrass_client_devices (
        core_thing_name  TEXT NOT NULL REFERENCES greengrass_core_devices (thing_name) ON DELETE CASCADE,
        thing_name       TEXT NOT NULL REFERENCES things (name) ON DELETE CASCADE,
        associated_at    INTEGER NOT NULL,
        PRIMARY KEY (core_thing_name, thing_name)
    ) WITHOUT ROWID;
    CREATE INDEX greengrass_client_devices_by_thing ON greengrass_client_devices (thing_name);
    "#,
];

/// The schema version this build writes.
pub(super) fn current_version() -> i64 {
    // A handful of migrations: the cast cannot truncate.
    MIGRATIONS.len() as i64
}

/// Brings the database at `path` up to [`current_version`].
pub(super) fn migrate(conn: &mut Connection, path: &Path) -> Result<(), StoreError> {
    let open_error = |source| StoreError::Open {
        path: path.to_path_buf(),
        source,
    };
    let found: i64 = conn
        .pragma_query_value(None, "user_version", |row| row.get(0))
        .map_err(open_error)?;
    if found > current_version() {
        return Err(StoreError::SchemaTooNew {
            path: path.to_path_buf(),
            found,
            supported: current_version(),
        });
    }
    for (index, sql) in MIGRATIONS
        .iter()
        .enumerate()
        .skip(usize::try_from(found).unwrap_or(0))
    {
        let version = index as i64 + 1;
        let apply = |conn: &mut Connection| -> rusqlite::Result<()> {
            let tx = conn.transaction()?;
            tx.execute_batch(sql)?;
            tx.pragma_update(None, "user_version", version)?;
            tx.commit()
        };
        apply(conn).map_err(|source| StoreError::Migration {
            path: path.to_path_buf(),
            version,
            source,
        })?;
        tracing::debug!(path = %path.display(), version, "database schema upgraded");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A database as an iotcore of schema version 5 left it, with one thing.
    fn version_5_database(path: &Path) {
        let conn = Connection::open(path).unwrap();
        for sql in &MIGRATIONS[..5] {
            conn.execute_batch(sql).unwrap();
        }
        conn.pragma_update(None, "user_version", 5).unwrap();
        conn.execute(
            "INSERT INTO things (name, attributes, created_at, version, thing_id)
             VALUES ('dev1', '{}', 1, 1, 'id-1')",
            [],
        )
        .unwrap();
    }

    #[test]
    fn a_version_7_database_gains_the_authorizer_table_and_keeps_its_jobs() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("iotcore.db");
        {
            let conn = Connection::open(&path).unwrap();
            for sql in &MIGRATIONS[..7] {
                conn.execute_batch(sql).unwrap();
            }
            conn.pragma_update(None, "user_version", 7).unwrap();
            conn.execute(
                "INSERT INTO jobs (job_id, document, targets, target_selection, status, created_at,
                                   last_updated_at)
                 VALUES ('j', '{}', '[]', 'SNAPSHOT', 'IN_PROGRESS', 1, 1)",
                [],
            )
            .unwrap();
        }
        let mut conn = Connection::open(&path).unwrap();
        migrate(&mut conn, &path).unwrap();
        let version: i64 = conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        assert_eq!(version, current_version());
        let jobs: i64 = conn
            .query_row("SELECT count(*) FROM jobs", [], |r| r.get(0))
            .unwrap();
        assert_eq!(jobs, 1);
        let insert = |name: &str, is_default: i64| {
            conn.execute(
                "INSERT INTO authorizers (name, function, token_signing_public_keys, status,
                     signing_disabled, enable_caching_for_http, is_default, created_at,
                     last_modified_at)
                 VALUES (?1, 'true', '{}', 'ACTIVE', 1, 0, ?2, 1, 1)",
                rusqlite::params![name, is_default],
            )
        };
        insert("a", 1).unwrap();
        insert("b", 0).unwrap();
        assert!(insert("c", 1).is_err(), "one default authorizer at most");
    }

    #[test]
    fn a_version_8_database_gains_the_greengrass_tables_and_keeps_its_things() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("iotcore.db");
        {
            let conn = Connection::open(&path).unwrap();
            for sql in &MIGRATIONS[..8] {
                conn.execute_batch(sql).unwrap();
            }
            conn.pragma_update(None, "user_version", 8).unwrap();
            conn.execute(
                "INSERT INTO things (name, attributes, created_at) VALUES ('core', '{}', 1)",
                [],
            )
            .unwrap();
        }
        let mut conn = Connection::open(&path).unwrap();
        migrate(&mut conn, &path).unwrap();
        let version: i64 = conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        assert_eq!(version, current_version());
        conn.pragma_update(None, "foreign_keys", true).unwrap();
        conn.execute(
            "INSERT INTO greengrass_core_devices (thing_name, created_at) VALUES ('core', 1)",
            [],
        )
        .unwrap();
        let (connectivity, cas): (String, String) = conn
            .query_row(
                "SELECT connectivity, certificate_authorities FROM greengrass_core_devices",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        assert_eq!((connectivity.as_str(), cas.as_str()), ("[]", "[]"));
        assert!(
            conn.execute(
                "INSERT INTO greengrass_core_devices (thing_name, created_at) VALUES ('ghost', 1)",
                [],
            )
            .is_err(),
            "a core device is a thing"
        );
    }

    #[test]
    fn a_version_5_database_gains_the_job_tables_and_keeps_its_things() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("iotcore.db");
        version_5_database(&path);

        let mut conn = Connection::open(&path).unwrap();
        migrate(&mut conn, &path).unwrap();

        let version: i64 = conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        assert_eq!(version, current_version());
        let things: i64 = conn
            .query_row("SELECT count(*) FROM things", [], |r| r.get(0))
            .unwrap();
        assert_eq!(things, 1);
        conn.execute(
            "INSERT INTO jobs (job_id, document, targets, target_selection, status, created_at,
                               last_updated_at)
             VALUES ('j', '{}', '[]', 'SNAPSHOT', 'IN_PROGRESS', 1, 1)",
            [],
        )
        .unwrap();
        conn.execute(
            "INSERT INTO job_executions (job_id, thing_name, execution_number, status,
                 status_details, version_number, queued_at, last_updated_at)
             VALUES ('j', 'dev1', 1, 'QUEUED', '{}', 1, 1, 1)",
            [],
        )
        .unwrap();
        let bad_status = conn.execute(
            "INSERT INTO job_executions (job_id, thing_name, execution_number, status,
                 status_details, version_number, queued_at, last_updated_at)
             VALUES ('j', 'dev1', 2, 'DONE', '{}', 1, 1, 1)",
            [],
        );
        assert!(
            bad_status.is_err(),
            "the status CHECK refuses unknown values"
        );
    }

    #[test]
    fn a_version_6_database_keeps_its_jobs_and_gains_execution_deadlines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("iotcore.db");
        version_5_database(&path);
        {
            let mut conn = Connection::open(&path).unwrap();
            let tx = conn.transaction().unwrap();
            tx.execute_batch(MIGRATIONS[5]).unwrap();
            tx.pragma_update(None, "user_version", 6).unwrap();
            tx.execute(
                "INSERT INTO jobs (job_id, document, targets, target_selection, status,
                                   timeout_config, created_at, last_updated_at)
                 VALUES ('j', '{}', '[]', 'SNAPSHOT', 'IN_PROGRESS',
                         '{\"inProgressTimeoutInMinutes\":5}', 1, 1)",
                [],
            )
            .unwrap();
            tx.execute(
                "INSERT INTO job_executions (job_id, thing_name, execution_number, status,
                     status_details, version_number, queued_at, started_at, last_updated_at)
                 VALUES ('j', 'dev1', 1, 'IN_PROGRESS', '{}', 2, 1, 2, 2)",
                [],
            )
            .unwrap();
            tx.commit().unwrap();
        }

        let mut conn = Connection::open(&path).unwrap();
        migrate(&mut conn, &path).unwrap();

        let version: i64 = conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        assert_eq!(version, current_version());
        let (status, version, deadline): (String, i64, Option<i64>) = conn
            .query_row(
                "SELECT status, version_number, in_progress_deadline FROM job_executions",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .unwrap();
        assert_eq!(
            (status.as_str(), version, deadline),
            ("IN_PROGRESS", 2, None)
        );
        conn.execute(
            "INSERT INTO job_rollout_pending (job_id, thing_name, position) VALUES ('j', 'dev2', 0)",
            [],
        )
        .unwrap();
        conn.pragma_update(None, "foreign_keys", true).unwrap();
        conn.execute("DELETE FROM jobs WHERE job_id = 'j'", [])
            .unwrap();
        let pending: i64 = conn
            .query_row("SELECT count(*) FROM job_rollout_pending", [], |r| r.get(0))
            .unwrap();
        assert_eq!(
            pending, 0,
            "a deleted job takes its pending rollout with it"
        );
    }
}
