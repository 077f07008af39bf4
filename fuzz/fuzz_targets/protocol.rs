//! The broker's frame decoder, as the supervisor runs it on what an agent
//! sends: never a panic, and whatever decodes re-encodes to the same bytes.
#![no_main]
use cordon_shim::protocol::{frame_length, Reply, Request};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if data.len() >= 4 {
        let _ = frame_length([data[0], data[1], data[2], data[3]]);
    }
    if let Ok(req) = Request::decode(data) {
        let frame = req.encode().expect("a decoded request re-encodes");
        assert_eq!(&frame[4..], data, "decode and encode disagree");
    }
    if let Ok(reply) = Reply::decode(data) {
        let frame = reply.encode().expect("a decoded reply re-encodes");
        assert_eq!(Reply::decode(&frame[4..]).ok(), Some(reply));
    }
});
