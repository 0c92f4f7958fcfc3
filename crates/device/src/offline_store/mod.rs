//! The durable offline queue: QoS 1 publishes that outlive the process.
//!
//! With [`crate::ClientBuilder::offline_store`], every QoS 1 publish the
//! client accepts is written to a file in the store's directory before it is
//! sent, and marked done when the broker acknowledges it (or refuses it, or
//! it can never be sent). The publishes not done when the process dies —
//! queued while offline, or sent and not yet acknowledged — are read back
//! by the next client that opens the directory and sent first, in the order
//! they were accepted, on its first connection.
//!
//! # What a restarted process sees
//!
//! The old process's `publish` futures are gone with it. The new client
//! resends the old messages by itself (new MQTT packet identifiers; a
//! message the broker had received but not yet acknowledged arrives twice:
//! delivery is at least once, as for every QoS 1 resend) and logs their
//! outcome with `tracing` (target `iotcore::offline_store`): how many were
//! recovered at start, each one the broker refuses, and when all are done.
//! [`crate::Client::publish`] futures of the new process cover only its own
//! messages, which follow the recovered ones.
//!
//! # Bounds
//!
//! The store holds at most [`crate::OfflineQueueLimits`]' messages and bytes
//! (topic and payload) of publishes not yet acknowledged — queued or in
//! flight — under the rule of the in-memory offline queue: a publish that
//! would exceed a bound is refused with [`crate::ErrorKind::OfflineQueueFull`]
//! and nothing older is dropped. What a store holds at start is always sent,
//! even above bounds lowered since. Only QoS 1 publishes are stored:
//! subscriptions are the broker's (persistent session) or the application's
//! to restore.
//!
//! # Durability and files
//!
//! The directory holds `offline-store.log` (the format: [`format`](mod@format)),
//! `offline-store.lock` (held while a client uses the directory: one client
//! per directory), and after damage was found `offline-store.damaged` (the
//! bytes that could not be read, for inspection). Records are written to
//! the file in batches, before the batch's packets are written to the
//! network: what the client accepted survives the process being killed. It
//! survives a power loss only with [`crate::ClientBuilder::offline_store_fsync`],
//! which syncs each batch to the disk (`fdatasync`) at a cost per batch.
//!
//! The file only grows by appending; when it holds nothing pending it is
//! truncated, and when it is at least 1 MiB and more than twice what is
//! pending it is compacted (rewritten with the pending records only, to a
//! temporary file renamed over it). A record cut short by a crash or
//! damaged on disk ends the reading: the records before it are recovered,
//! a warning says how much was lost, and the file is cut back to its last
//! whole record. Nothing the store reads makes it panic.

pub mod format;

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use iotcore_mqtt::EncodeError;
use iotcore_mqtt::packet::Publish;

pub use format::{Damage, NotAStore, PendingPublish, StoreContents, parse};

use crate::offline_queue::{OfflineQueueLimits, QueueFull, publish_size};

/// The log's file name in the store's directory.
pub const LOG_FILE: &str = "offline-store.log";
/// The lock file's name: held while a client uses the directory.
const LOCK_FILE: &str = "offline-store.lock";
/// Where the unreadable bytes of a damaged log are kept.
const DAMAGED_FILE: &str = "offline-store.damaged";
/// The compacted log while it is being written.
const COMPACTING_FILE: &str = "offline-store.log.tmp";
/// A log holding nothing pending is truncated once it is this long.
const TRUNCATE_AT: u64 = 64 * 1024;
/// A log is compacted once it is this long and more than twice what is pending.
const COMPACT_AT: u64 = 1024 * 1024;

/// Why the offline store cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The directory cannot be created, or a file in it cannot be created.
    #[error(
        "cannot use {} as the offline store's directory: {source}; check that it can be created \
         and written by this process",
        dir.display()
    )]
    Directory {
        /// The directory given.
        dir: PathBuf,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },
    /// Another client (in this process or another) uses the directory.
    #[error(
        "the offline store in {} is in use by another client (its lock file is held): give each \
         client its own directory",
        dir.display()
    )]
    InUse {
        /// The directory given.
        dir: PathBuf,
    },
    /// The log cannot be read or written.
    #[error("cannot read or write the offline store's log {}: {source}", path.display())]
    Log {
        /// The log file.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },
    /// The log's name is taken by a file that is not a store.
    #[error("{} is {source}: move it away or choose another directory", path.display())]
    NotAStore {
        /// The file in the way.
        path: PathBuf,
        /// What is wrong with it.
        #[source]
        source: NotAStore,
    },
}

/// Why a publish was not written to the store.
#[derive(Debug)]
pub(crate) enum AppendError {
    /// A bound would be exceeded.
    Full(QueueFull),
    /// The message cannot be encoded as a PUBLISH packet.
    Unencodable(EncodeError),
}

/// What the store knows of a pending publish.
#[derive(Clone, Copy, Debug)]
struct Entry {
    /// What it counts for against the byte bound.
    size: usize,
    /// Its record's length in the log.
    record_len: u64,
}

/// An open store: the log, its lock, and what is pending in it.
///
/// Appends and acknowledgements are buffered until [`flush`](Self::flush),
/// which the driver calls once per batch, before writing to the network.
#[derive(Debug)]
pub(crate) struct OfflineStore {
    dir: PathBuf,
    log: File,
    /// Held (locked) while the store is open.
    _lock: File,
    /// The log's length once the buffered records are written.
    len: u64,
    /// How much of the log is on file.
    written: u64,
    unwritten: Vec<u8>,
    pending: BTreeMap<u64, Entry>,
    /// The bound measure of the pending publishes.
    bytes: usize,
    /// The record bytes of the pending publishes.
    live: u64,
    next_seq: u64,
    limits: OfflineQueueLimits,
    fsync: bool,
}

impl OfflineStore {
    /// Opens (creating if need be) the store in `dir`; returns it with the
    /// publishes pending in it, oldest first. A damaged log is recovered up
    /// to its last whole record, with a warning.
    pub(crate) fn open(
        dir: &Path,
        limits: OfflineQueueLimits,
        fsync: bool,
    ) -> Result<(OfflineStore, Vec<PendingPublish>), StoreError> {
        let dir_error = |source| StoreError::Directory {
            dir: dir.to_owned(),
            source,
        };
        fs::create_dir_all(dir).map_err(dir_error)?;
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(dir.join(LOCK_FILE))
            .map_err(dir_error)?;
        match fs4::FileExt::try_lock(&lock) {
            Ok(()) => {}
            Err(fs4::TryLockError::WouldBlock) => {
                return Err(StoreError::InUse {
                    dir: dir.to_owned(),
                });
            }
            Err(fs4::TryLockError::Error(e)) => return Err(dir_error(e)),
        }
        let path = dir.join(LOG_FILE);
        let log_error = |source| StoreError::Log {
            path: path.clone(),
            source,
        };
        let mut log = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(&path)
            .map_err(log_error)?;
        let mut bytes = Vec::new();
        log.read_to_end(&mut bytes).map_err(log_error)?;
        let contents = parse(&bytes).map_err(|source| StoreError::NotAStore {
            path: path.clone(),
            source,
        })?;
        if let Some(damage) = &contents.damage {
            let lost = bytes.len() - contents.valid_len;
            tracing::warn!(
                target: "iotcore::offline_store",
                log = %path.display(),
                %damage,
                lost_bytes = lost,
                recovered = contents.pending.len(),
                "the offline store's log is damaged: recovered up to its last whole record; the \
                 rest is kept in {DAMAGED_FILE}"
            );
            fs::write(dir.join(DAMAGED_FILE), &bytes[contents.valid_len..]).map_err(dir_error)?;
        }
        let mut store = OfflineStore {
            dir: dir.to_owned(),
            log,
            _lock: lock,
            len: bytes.len() as u64,
            written: bytes.len() as u64,
            unwritten: Vec::new(),
            pending: BTreeMap::new(),
            bytes: 0,
            live: 0,
            next_seq: contents.next_seq,
            limits,
            fsync,
        };
        for p in &contents.pending {
            store.track(p.seq, publish_size(&p.publish), p.record.len() as u64);
        }
        let keep = if contents.valid_len < format::MAGIC.len() {
            0
        } else {
            contents.valid_len as u64
        };
        if keep < store.written {
            store.truncate(keep).map_err(log_error)?;
        }
        if keep == 0 {
            store.unwritten.extend_from_slice(format::MAGIC);
            store.len = format::MAGIC.len() as u64;
        }
        store.flush().map_err(log_error)?;
        if !contents.pending.is_empty() {
            tracing::info!(
                target: "iotcore::offline_store",
                dir = %dir.display(),
                pending = contents.pending.len(),
                "publishes recovered from the offline store: they are sent first"
            );
        }
        Ok((store, contents.pending))
    }

    /// Writes `publish` (to be flushed); returns its sequence number.
    /// Refused when a bound would be exceeded.
    pub(crate) fn append(&mut self, publish: &Publish) -> Result<u64, AppendError> {
        let size = publish_size(publish);
        self.limits
            .admit(self.pending.len(), self.bytes, size)
            .map_err(AppendError::Full)?;
        let seq = self.next_seq;
        let record_len = format::encode_publish(seq, publish, &mut self.unwritten)
            .map_err(AppendError::Unencodable)? as u64;
        self.next_seq += 1;
        self.len += record_len;
        self.track(seq, size, record_len);
        Ok(seq)
    }

    /// Marks publish `seq` done (to be flushed): acknowledged, refused, or
    /// never to be sent.
    pub(crate) fn ack(&mut self, seq: u64) {
        let Some(entry) = self.pending.remove(&seq) else {
            return;
        };
        self.bytes -= entry.size;
        self.live -= entry.record_len;
        self.len += format::encode_ack(seq, &mut self.unwritten) as u64;
    }

    /// Writes the buffered records (syncing them to the disk with the fsync
    /// option), then truncates or compacts the log when it has grown.
    ///
    /// On failure the log is cut back to what it held before, and the
    /// records stay buffered for the next flush.
    pub(crate) fn flush(&mut self) -> io::Result<()> {
        if !self.unwritten.is_empty() {
            if let Err(e) = self.write_unwritten() {
                // A partial write would end the log's readable part early,
                // hiding every record written after it.
                let _ = self.log.set_len(self.written);
                return Err(e);
            }
        }
        if self.pending.is_empty() && self.len >= TRUNCATE_AT {
            self.truncate(format::MAGIC.len() as u64)?;
        } else if self.len >= COMPACT_AT && self.len > 2 * (self.live + format::MAGIC.len() as u64)
        {
            self.compact()?;
        }
        Ok(())
    }

    fn write_unwritten(&mut self) -> io::Result<()> {
        self.log.write_all(&self.unwritten)?;
        if self.fsync {
            self.log.sync_data()?;
        }
        self.written += self.unwritten.len() as u64;
        self.unwritten.clear();
        Ok(())
    }

    fn track(&mut self, seq: u64, size: usize, record_len: u64) {
        self.pending.insert(seq, Entry { size, record_len });
        self.bytes += size;
        self.live += record_len;
    }

    /// Cuts the (fully written) log to `len` bytes.
    fn truncate(&mut self, len: u64) -> io::Result<()> {
        self.log.set_len(len)?;
        if self.fsync {
            self.log.sync_data()?;
        }
        self.written = len;
        self.len = len;
        Ok(())
    }

    /// Rewrites the (fully written) log with the pending records only.
    fn compact(&mut self) -> io::Result<()> {
        let path = self.dir.join(LOG_FILE);
        let bytes = fs::read(&path)?;
        let contents = parse(&bytes).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        let mut compacted = format::MAGIC.to_vec();
        for p in &contents.pending {
            compacted.extend_from_slice(&bytes[p.record.clone()]);
        }
        let temporary = self.dir.join(COMPACTING_FILE);
        let mut file = File::create(&temporary)?;
        file.write_all(&compacted)?;
        if self.fsync {
            file.sync_data()?;
        }
        drop(file);
        fs::rename(&temporary, &path)?;
        if self.fsync {
            File::open(&self.dir)?.sync_all()?;
        }
        self.log = OpenOptions::new().read(true).append(true).open(&path)?;
        self.len = compacted.len() as u64;
        self.written = self.len;
        tracing::debug!(
            target: "iotcore::offline_store",
            from = bytes.len(),
            to = compacted.len(),
            pending = contents.pending.len(),
            "offline store compacted"
        );
        Ok(())
    }

    /// The log's length once the buffered records are written.
    #[cfg(test)]
    fn len(&self) -> u64 {
        self.len
    }
}

impl Drop for OfflineStore {
    fn drop(&mut self) {
        if let Err(e) = self.flush() {
            tracing::error!(
                target: "iotcore::offline_store",
                dir = %self.dir.display(),
                error = %e,
                "cannot write the offline store's last records"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use iotcore_mqtt::QoS;

    use super::*;

    fn limits(max_messages: usize, max_bytes: usize) -> OfflineQueueLimits {
        OfflineQueueLimits {
            max_messages,
            max_bytes,
        }
    }

    fn message(i: usize) -> Publish {
        Publish::new("dt/t", format!("{i:04}"), QoS::AtLeastOnce)
    }

    fn payloads(pending: &[PendingPublish]) -> Vec<String> {
        pending
            .iter()
            .map(|p| String::from_utf8(p.publish.payload.to_vec()).unwrap())
            .collect()
    }

    fn open(dir: &Path, limits: OfflineQueueLimits) -> (OfflineStore, Vec<PendingPublish>) {
        OfflineStore::open(dir, limits, false).unwrap()
    }

    #[test]
    fn pending_publishes_come_back_in_order_after_a_reopen_and_acked_ones_do_not() {
        let dir = tempfile::tempdir().unwrap();
        let (mut store, pending) = open(dir.path(), limits(100, 10_000));
        assert!(pending.is_empty());
        let seqs: Vec<u64> = (0..5).map(|i| store.append(&message(i)).unwrap()).collect();
        store.ack(seqs[1]);
        store.ack(seqs[3]);
        store.flush().unwrap();
        drop(store);
        let (mut store, pending) = open(dir.path(), limits(100, 10_000));
        assert_eq!(payloads(&pending), ["0000", "0002", "0004"]);
        // New publishes follow the recovered ones.
        store.append(&message(5)).unwrap();
        store.flush().unwrap();
        drop(store);
        let (_, pending) = open(dir.path(), limits(100, 10_000));
        assert_eq!(payloads(&pending), ["0000", "0002", "0004", "0005"]);
    }

    #[test]
    fn records_reach_the_file_only_when_flushed() {
        let dir = tempfile::tempdir().unwrap();
        let (mut store, _) = open(dir.path(), limits(100, 10_000));
        store.append(&message(0)).unwrap();
        let on_disk = fs::read(dir.path().join(LOG_FILE)).unwrap();
        assert!(parse(&on_disk).unwrap().pending.is_empty());
        store.flush().unwrap();
        let on_disk = fs::read(dir.path().join(LOG_FILE)).unwrap();
        assert_eq!(payloads(&parse(&on_disk).unwrap().pending), ["0000"]);
    }

    #[test]
    fn the_bounds_refuse_new_publishes_across_a_restart_and_free_up_on_ack() {
        let dir = tempfile::tempdir().unwrap();
        // Each message counts 4 + 4 = 8 bytes.
        let bounds = limits(3, 1000);
        let (mut store, _) = open(dir.path(), bounds);
        for i in 0..3 {
            store.append(&message(i)).unwrap();
        }
        let Err(AppendError::Full(full)) = store.append(&message(3)) else {
            panic!("a fourth message fits in a store of three");
        };
        assert_eq!((full.messages, full.max_messages), (3, 3));
        drop(store);

        let (mut store, pending) = open(dir.path(), bounds);
        assert_eq!(payloads(&pending), ["0000", "0001", "0002"]);
        assert!(matches!(
            store.append(&message(3)),
            Err(AppendError::Full(_))
        ));
        store.ack(pending[0].seq);
        store.append(&message(3)).unwrap();
        drop(store);

        // Bytes: 39 bytes hold four messages.
        let (mut store, pending) = open(dir.path(), limits(100, 39));
        assert_eq!(payloads(&pending), ["0001", "0002", "0003"]);
        store.append(&message(4)).unwrap();
        let Err(AppendError::Full(full)) = store.append(&message(5)) else {
            panic!("the byte bound holds");
        };
        assert_eq!((full.bytes, full.max_bytes), (32, 39));
    }

    #[test]
    fn what_a_store_holds_is_recovered_even_above_bounds_lowered_since() {
        let dir = tempfile::tempdir().unwrap();
        let (mut store, _) = open(dir.path(), limits(10, 1000));
        for i in 0..5 {
            store.append(&message(i)).unwrap();
        }
        drop(store);
        let (mut store, pending) = open(dir.path(), limits(2, 1000));
        assert_eq!(pending.len(), 5);
        assert!(matches!(
            store.append(&message(5)),
            Err(AppendError::Full(_))
        ));
    }

    #[test]
    fn a_torn_last_record_is_cut_off_and_kept_aside_and_appends_continue_after_it() {
        let dir = tempfile::tempdir().unwrap();
        let (mut store, _) = open(dir.path(), limits(100, 10_000));
        for i in 0..3 {
            store.append(&message(i)).unwrap();
        }
        drop(store);
        let log = dir.path().join(LOG_FILE);
        let whole = fs::read(&log).unwrap();
        fs::write(&log, &whole[..whole.len() - 5]).unwrap();

        let (mut store, pending) = open(dir.path(), limits(100, 10_000));
        assert_eq!(payloads(&pending), ["0000", "0001"]);
        let damaged = fs::read(dir.path().join(DAMAGED_FILE)).unwrap();
        let last = parse(&whole).unwrap().pending[2].record.clone();
        assert_eq!(damaged, whole[last.start..whole.len() - 5]);
        store.append(&message(3)).unwrap();
        drop(store);
        let (_, pending) = open(dir.path(), limits(100, 10_000));
        assert_eq!(payloads(&pending), ["0000", "0001", "0003"]);
    }

    #[test]
    fn a_flipped_byte_is_recovered_up_to_the_record_before_it() {
        let dir = tempfile::tempdir().unwrap();
        let (mut store, _) = open(dir.path(), limits(100, 10_000));
        for i in 0..4 {
            store.append(&message(i)).unwrap();
        }
        drop(store);
        let log = dir.path().join(LOG_FILE);
        let mut bytes = fs::read(&log).unwrap();
        let third = parse(&bytes).unwrap().pending[2].record.clone();
        bytes[third.start + 12] ^= 0x01;
        fs::write(&log, &bytes).unwrap();
        let (_, pending) = open(dir.path(), limits(100, 10_000));
        assert_eq!(payloads(&pending), ["0000", "0001"]);
        assert_eq!(fs::metadata(&log).unwrap().len(), third.start as u64);
    }

    #[test]
    fn a_log_emptied_by_acks_is_truncated_and_a_mostly_acked_one_compacted() {
        let dir = tempfile::tempdir().unwrap();
        let (mut store, _) = open(dir.path(), limits(10_000, 10_000_000));
        let big = Publish::new("dt/t", vec![7u8; 4096], QoS::AtLeastOnce);
        for _ in 0..20 {
            let seq = store.append(&big).unwrap();
            store.ack(seq);
        }
        store.flush().unwrap();
        assert_eq!(store.len(), format::MAGIC.len() as u64, "truncated");

        let keep = store.append(&message(1)).unwrap();
        let mut max_len = 0;
        for _ in 0..600 {
            let seq = store.append(&big).unwrap();
            store.ack(seq);
            store.flush().unwrap();
            max_len = max_len.max(store.len());
        }
        assert!(
            max_len < COMPACT_AT + 5000,
            "compacted as it grew: {max_len}"
        );
        drop(store);
        let (mut store, pending) = open(dir.path(), limits(10_000, 10_000_000));
        assert_eq!(payloads(&pending), ["0001"]);
        assert_eq!(pending[0].seq, keep);
        let after = store.append(&message(2)).unwrap();
        assert!(after > keep);
    }

    #[test]
    fn a_second_client_on_the_same_directory_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let _first = open(dir.path(), limits(10, 100));
        let second = OfflineStore::open(dir.path(), limits(10, 100), true);
        assert!(
            matches!(second, Err(StoreError::InUse { .. })),
            "{second:?}"
        );
    }

    #[test]
    fn a_directory_that_cannot_be_created_or_a_foreign_file_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("a-file");
        fs::write(&file, b"x").unwrap();
        let under_a_file = OfflineStore::open(&file.join("store"), limits(10, 100), false);
        assert!(
            matches!(under_a_file, Err(StoreError::Directory { .. })),
            "{under_a_file:?}"
        );

        fs::write(dir.path().join(LOG_FILE), b"{\"json\": true}").unwrap();
        let foreign = OfflineStore::open(dir.path(), limits(10, 100), false);
        let Err(e @ StoreError::NotAStore { .. }) = foreign else {
            panic!("{foreign:?}");
        };
        assert!(e.to_string().contains("not an offline store file"), "{e}");
        assert_eq!(
            fs::read(dir.path().join(LOG_FILE)).unwrap(),
            b"{\"json\": true}"
        );
    }

    #[test]
    fn the_fsync_option_writes_the_same_log() {
        let dir = tempfile::tempdir().unwrap();
        let (mut store, _) = OfflineStore::open(dir.path(), limits(10, 1000), true).unwrap();
        store.append(&message(0)).unwrap();
        store.flush().unwrap();
        let on_disk = fs::read(dir.path().join(LOG_FILE)).unwrap();
        assert_eq!(payloads(&parse(&on_disk).unwrap().pending), ["0000"]);
    }
}
