//! Fuzz target `stanza`: see `jitape_sim::fuzz::stanza` for what it drives and asserts.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| jitape_sim::fuzz::stanza::run(data));
