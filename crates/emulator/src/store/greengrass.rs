//! Greengrass core devices: which things are cores, their connectivity
//! information (the addresses of their local brokers), the CA certificates
//! their brokers' certificates chain to, and the client devices associated
//! with them.
//!
//! A core device is a thing: deleting the thing deletes the core device and
//! its associations (the tables cascade from `things`).

use iotcore_model::greengrass::ConnectivityInfo;
use rusqlite::{Connection, OptionalExtension, Row, params};

use super::{Store, StoreError, conversion_error, now_unix};

/// A Greengrass core device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CoreDeviceRecord {
    /// The core's thing name.
    pub thing_name: String,
    /// When it was registered, unix seconds.
    pub created_at: i64,
    /// Its local broker's addresses, in the order the core reported them.
    pub connectivity: Vec<ConnectivityInfo>,
    /// How many times its connectivity information was set (0: never).
    pub connectivity_version: i64,
    /// PEM certificates of the CAs its broker certificate chains to.
    pub certificate_authorities: Vec<String>,
}

/// A client device associated with a core device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientDeviceRecord {
    /// The client device's thing name.
    pub thing_name: String,
    /// When it was associated, unix seconds.
    pub associated_at: i64,
}

const COLUMNS: &str =
    "thing_name, created_at, connectivity, connectivity_version, certificate_authorities";

fn from_row(row: &Row<'_>) -> rusqlite::Result<CoreDeviceRecord> {
    let connectivity: String = row.get(2)?;
    let cas: String = row.get(4)?;
    Ok(CoreDeviceRecord {
        thing_name: row.get(0)?,
        created_at: row.get(1)?,
        connectivity: serde_json::from_str(&connectivity).map_err(|e| conversion_error(2, e))?,
        connectivity_version: row.get(3)?,
        certificate_authorities: serde_json::from_str(&cas).map_err(|e| conversion_error(4, e))?,
    })
}

fn read_core(conn: &Connection, name: &str) -> rusqlite::Result<Option<CoreDeviceRecord>> {
    let sql = format!("SELECT {COLUMNS} FROM greengrass_core_devices WHERE thing_name = ?1");
    conn.query_row(&sql, [name], from_row).optional()
}

fn thing_exists(conn: &Connection, name: &str) -> rusqlite::Result<bool> {
    conn.query_row("SELECT 1 FROM things WHERE name = ?1", [name], |_| Ok(()))
        .optional()
        .map(|found| found.is_some())
}

fn to_json(value: &impl serde::Serialize) -> rusqlite::Result<String> {
    serde_json::to_string(value).map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))
}

/// Registers thing `name` as a core device if it is not one yet; fails if
/// the thing does not exist.
fn ensure_core(conn: &Connection, name: &str) -> Result<bool, StoreError> {
    if !thing_exists(conn, name)? {
        return Err(StoreError::ThingNotFound(name.to_owned()));
    }
    let inserted = conn.execute(
        "INSERT INTO greengrass_core_devices (thing_name, created_at) VALUES (?1, ?2)
         ON CONFLICT (thing_name) DO NOTHING",
        params![name, now_unix()],
    )?;
    Ok(inserted > 0)
}

impl Store {
    /// Makes thing `name` a core device. Returns `false` if it was one
    /// already; fails with [`StoreError::ThingNotFound`] if the thing does
    /// not exist.
    pub fn register_core_device(&self, name: &str) -> Result<bool, StoreError> {
        ensure_core(&self.conn(), name)
    }

    /// Core device `name`, if the thing is one.
    pub fn core_device(&self, name: &str) -> Result<Option<CoreDeviceRecord>, StoreError> {
        Ok(read_core(&self.conn(), name)?)
    }

    /// Every core device, by thing name.
    pub fn list_core_devices(&self) -> Result<Vec<CoreDeviceRecord>, StoreError> {
        let conn = self.conn();
        let sql = format!("SELECT {COLUMNS} FROM greengrass_core_devices ORDER BY thing_name");
        let mut statement = conn.prepare(&sql)?;
        let rows = statement.query_map([], from_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Replaces the connectivity information of thing `name` (making it a
    /// core device if it is not one) and returns its new version. Fails with
    /// [`StoreError::ThingNotFound`] if the thing does not exist.
    pub fn set_connectivity(
        &self,
        name: &str,
        connectivity: &[ConnectivityInfo],
    ) -> Result<i64, StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        ensure_core(&tx, name)?;
        tx.execute(
            "UPDATE greengrass_core_devices
             SET connectivity = ?2, connectivity_version = connectivity_version + 1
             WHERE thing_name = ?1",
            params![name, to_json(&connectivity)?],
        )?;
        let version = tx.query_row(
            "SELECT connectivity_version FROM greengrass_core_devices WHERE thing_name = ?1",
            [name],
            |row| row.get(0),
        )?;
        tx.commit()?;
        Ok(version)
    }

    /// Replaces the CA certificates of core device `name`. Fails with
    /// [`StoreError::CoreDeviceNotFound`] if the thing is not a core device.
    pub fn set_core_certificate_authorities(
        &self,
        name: &str,
        pems: &[String],
    ) -> Result<(), StoreError> {
        let updated = self.conn().execute(
            "UPDATE greengrass_core_devices SET certificate_authorities = ?2 WHERE thing_name = ?1",
            params![name, to_json(&pems)?],
        )?;
        if updated == 0 {
            return Err(StoreError::CoreDeviceNotFound(name.to_owned()));
        }
        Ok(())
    }

    /// Associates client device `thing` with core device `core` (again: the
    /// association time is kept). Fails with
    /// [`StoreError::CoreDeviceNotFound`] or [`StoreError::ThingNotFound`].
    pub fn associate_client_device(&self, core: &str, thing: &str) -> Result<(), StoreError> {
        let conn = self.conn();
        if read_core(&conn, core)?.is_none() {
            return Err(StoreError::CoreDeviceNotFound(core.to_owned()));
        }
        if !thing_exists(&conn, thing)? {
            return Err(StoreError::ThingNotFound(thing.to_owned()));
        }
        conn.execute(
            "INSERT INTO greengrass_client_devices (core_thing_name, thing_name, associated_at)
             VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING",
            params![core, thing, now_unix()],
        )?;
        Ok(())
    }

    /// Ends the association of `thing` with `core`; `false` if there was none.
    /// Fails with [`StoreError::CoreDeviceNotFound`].
    pub fn disassociate_client_device(&self, core: &str, thing: &str) -> Result<bool, StoreError> {
        let conn = self.conn();
        if read_core(&conn, core)?.is_none() {
            return Err(StoreError::CoreDeviceNotFound(core.to_owned()));
        }
        let deleted = conn.execute(
            "DELETE FROM greengrass_client_devices WHERE core_thing_name = ?1 AND thing_name = ?2",
            params![core, thing],
        )?;
        Ok(deleted > 0)
    }

    /// The client devices of core device `core`, by thing name. Fails with
    /// [`StoreError::CoreDeviceNotFound`].
    pub fn client_devices(&self, core: &str) -> Result<Vec<ClientDeviceRecord>, StoreError> {
        let conn = self.conn();
        if read_core(&conn, core)?.is_none() {
            return Err(StoreError::CoreDeviceNotFound(core.to_owned()));
        }
        let mut statement = conn.prepare(
            "SELECT thing_name, associated_at FROM greengrass_client_devices
             WHERE core_thing_name = ?1 ORDER BY thing_name",
        )?;
        let rows = statement.query_map([core], |row| {
            Ok(ClientDeviceRecord {
                thing_name: row.get(0)?,
                associated_at: row.get(1)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// The core devices client device `thing` is associated with, by thing name.
    pub fn cores_of_client_device(&self, thing: &str) -> Result<Vec<CoreDeviceRecord>, StoreError> {
        let conn = self.conn();
        let columns: Vec<String> = COLUMNS.split(", ").map(|c| format!("c.{c}")).collect();
        let sql = format!(
            "SELECT {} FROM greengrass_core_devices c
             JOIN greengrass_client_devices a ON a.core_thing_name = c.thing_name
             WHERE a.thing_name = ?1 ORDER BY c.thing_name",
            columns.join(", ")
        );
        let mut statement = conn.prepare(&sql)?;
        let rows = statement.query_map([thing], from_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn store_with(things: &[&str]) -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        for thing in things {
            store.create_thing(thing, None, &BTreeMap::new()).unwrap();
        }
        (dir, store)
    }

    fn address(host: &str, port: u16) -> ConnectivityInfo {
        ConnectivityInfo {
            id: host.into(),
            host_address: host.into(),
            port,
            metadata: String::new(),
        }
    }

    #[test]
    fn connectivity_makes_a_core_and_counts_versions() {
        let (_dir, store) = store_with(&["core"]);
        assert!(store.core_device("core").unwrap().is_none());
        assert_eq!(
            store
                .set_connectivity("core", &[address("10.0.0.1", 8883)])
                .unwrap(),
            1
        );
        let version = store
            .set_connectivity("core", &[address("b", 1), address("a", 2)])
            .unwrap();
        assert_eq!(version, 2);
        let core = store.core_device("core").unwrap().unwrap();
        assert_eq!(core.connectivity, [address("b", 1), address("a", 2)]);
        assert!(matches!(
            store.set_connectivity("nothing", &[]),
            Err(StoreError::ThingNotFound(_))
        ));
    }

    #[test]
    fn associations_need_a_core_and_a_thing_and_go_with_the_thing() {
        let (_dir, store) = store_with(&["core", "dev1", "dev2"]);
        assert!(matches!(
            store.associate_client_device("core", "dev1"),
            Err(StoreError::CoreDeviceNotFound(_))
        ));
        assert!(store.register_core_device("core").unwrap());
        assert!(!store.register_core_device("core").unwrap());
        store.associate_client_device("core", "dev2").unwrap();
        store.associate_client_device("core", "dev1").unwrap();
        store.associate_client_device("core", "dev1").unwrap();
        assert!(matches!(
            store.associate_client_device("core", "ghost"),
            Err(StoreError::ThingNotFound(_))
        ));
        let names: Vec<String> = store
            .client_devices("core")
            .unwrap()
            .into_iter()
            .map(|c| c.thing_name)
            .collect();
        assert_eq!(names, ["dev1", "dev2"]);
        assert_eq!(store.cores_of_client_device("dev1").unwrap().len(), 1);

        assert!(store.delete_thing("dev1", None).unwrap());
        assert_eq!(store.client_devices("core").unwrap().len(), 1);
        assert!(store.disassociate_client_device("core", "dev2").unwrap());
        assert!(!store.disassociate_client_device("core", "dev2").unwrap());

        store
            .set_core_certificate_authorities("core", &["PEM".into()])
            .unwrap();
        assert!(store.delete_thing("core", None).unwrap());
        assert!(store.list_core_devices().unwrap().is_empty());
        assert!(matches!(
            store.set_core_certificate_authorities("core", &[]),
            Err(StoreError::CoreDeviceNotFound(_))
        ));
    }
}
