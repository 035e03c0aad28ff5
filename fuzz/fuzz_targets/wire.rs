//! Fuzz target `wire`: see `jitape_fuzz::wire` for what it drives and asserts.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| jitape_fuzz::wire::run(data));
