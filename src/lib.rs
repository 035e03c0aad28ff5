//! The `jitape` command's library: what the binary does besides running the component.
//! `check` (`jitape check-config`: the configuration and the Prosody connection), `demo` (the
//! loopback conference recorded end to end) and `bench` (the load benchmark and the stage
//! micro-benchmarks). The product itself is the `jitape` crate; the loopback conference these
//! run against is `jitape_sim`.

pub mod bench;
pub mod check;
pub mod demo;
