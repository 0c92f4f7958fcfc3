//! The SDK's offline store file, as a restarted device reads it: whatever
//! the bytes, a typed error or the publishes before the first damaged
//! record, never a panic; and the part read back is a whole, undamaged store
//! holding the same publishes (what the device cuts the file back to).
#![no_main]

use iotcore::offline_store::parse;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(contents) = parse(data) else {
        return;
    };
    let kept = data.get(..contents.valid_len).expect("valid_len within the bytes");
    let again = parse(kept).expect("the part read is a store");
    assert_eq!(again.damage, None);
    assert_eq!(again.pending, contents.pending);
    assert_eq!(again.next_seq, contents.next_seq);
});
