//! Fuzz target `machine`: see `jitape_sim::fuzz::machine_ops` for what it drives and asserts.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| jitape_sim::fuzz::machine_ops::run(data));
