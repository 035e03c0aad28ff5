//! Fuzz target `jingle`: see `jitape_sim::fuzz::jingle_rt` for what it drives and asserts.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| jitape_sim::fuzz::jingle_rt::run(data));
