//! Fuzz target `wire`: see `jitape_sim::fuzz::wire` for what it drives and asserts.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| jitape_sim::fuzz::wire::run(data));
