//! The harness behind jitape's fuzz targets (`fuzz/fuzz_targets/*.rs`), kept in a library so
//! the seed generator (`fuzz/examples/seeds.rs`) encodes exactly what the targets decode, and
//! the malformed-input tests (`tests/malformed.rs`) drive the same rooms and stream splitter.
//!
//! In: the fuzzer's bytes. Out: nothing, or a panic when jitape panics or one of the
//! properties stated here does not hold (libFuzzer records the input as a crash). Every target
//! drives jitape's real code through its public API: `xmpp::wire`, `router::classify`, the
//! conference `Machine`, `jingle::{parse, build}`, the audio `Timeline`, and the sink's
//! scanner, repair and sidecar reader.
//!
//! - [`bytes`]: a forgiving reader/writer for the hand-made input encodings;
//! - [`room`]: a room and a [`jitape::conference::machine::Machine`] set up like the machine
//!   tests, plus the invariants every batch of actions must satisfy;
//! - [`machine_ops`]: machine inputs as bytes (presences, Jingle, IQ answers, link, media,
//!   ticks) for the `machine` target;
//! - [`stanza`], [`jingle_rt`], [`timeline_ops`], [`files`], [`wire`]: the other targets'
//!   bodies (`wire`: the stream splitter, in chunks the input chooses).

pub mod bytes;
pub mod files;
pub mod jingle_rt;
pub mod machine_ops;
pub mod room;
pub mod stanza;
pub mod timeline_ops;
pub mod wire;
