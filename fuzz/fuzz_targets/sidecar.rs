//! Fuzz target `sidecar`: see `jitape_fuzz::files` for what it drives and asserts.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| jitape_fuzz::files::sidecar(data));
