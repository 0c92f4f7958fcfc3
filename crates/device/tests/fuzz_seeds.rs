//! The fuzz smoke of the test command for the SDK: the `offline_store`
//! target's check (`fuzz/fuzz_targets/offline_store.rs`) over its checked-in
//! seeds (`fuzz/seeds/offline_store/`, real store files), every truncation
//! and every single-bit flip of them, without the fuzzer's nightly build. A
//! seed whose name says `refused` is not a store, one that says `damaged` is
//! recovered up to its damage, every other one reads whole.

use std::path::Path;

use iotcore::offline_store::{NotAStore, StoreContents, parse};
/// What the fuzz target checks: no panic, and the part read back is a
/// whole, undamaged store holding the same publishes.
fn read(data: &[u8]) -> Result<StoreContents, NotAStore> {
    let contents = parse(data)?;
    let kept = &data[..contents.valid_len];
    let again = parse(kept).expect("the part read is a store");
    assert_eq!(again.damage, None);
    assert_eq!(again.pending, contents.pending);
    assert_eq!(again.next_seq, contents.next_seq);
    Ok(contents)
}

#[test]
fn every_offline_store_seed_reads_as_its_name_says_and_no_cut_or_flipped_bit_panics() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/seeds/offline_store");
    let seeds = iotcore_test_support::read_seeds(&dir);
    for (name, seed) in seeds {
        match read(&seed) {
            Err(NotAStore) => assert!(name.contains("refused"), "{name} is not a store"),
            Ok(_) if name.contains("refused") => panic!("{name} is read as a store"),
            Ok(contents) if name.contains("damaged") => {
                assert!(contents.damage.is_some(), "{name} reads whole");
                assert!(
                    !contents.pending.is_empty(),
                    "{name}: nothing before the damage"
                );
            }
            Ok(contents) => assert_eq!(contents.damage, None, "{name}"),
        }
        for end in 0..seed.len() {
            let _ = read(&seed[..end]);
        }
        for bit in 0..seed.len() * 8 {
            let mut flipped = seed.clone();
            flipped[bit / 8] ^= 1 << (bit % 8);
            let _ = read(&flipped);
        }
    }
}
