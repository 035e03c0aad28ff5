//! Scenario tests of the audio stage with real Opus, synthetic time and simulated networks.

mod sim;
mod skew;
mod strain;
mod timing;
mod tracks;
