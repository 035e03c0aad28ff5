//! Fuzz target `sidecar`: see `jitape_sim::fuzz::files` for what it drives and asserts.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| jitape_sim::fuzz::files::sidecar(data));
