//! Criterion micro-benchmarks of jitape's hot stages (`cargo bench --bench stages`).
//!
//! Every benchmark declares as its throughput the milliseconds of audio one iteration
//! represents, so criterion's `thrpt` in **Kelem/s is the multiple of real time** on one
//! core (e.g. `thrpt: 612 Kelem/s` = 612x real time). The workloads are shared with
//! `jitape bench --micro` (`src/bench/micro.rs`), which prints the multiples directly.

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use jitape_cli::bench::micro::{
    DecodeBench, FlacBench, LowerBoundBench, MixBench, PipelineBench, SrtpBench,
};

fn audio_ms(d: Duration) -> Throughput {
    Throughput::Elements(d.as_millis() as u64)
}

fn decode(c: &mut Criterion) {
    let mut g = c.benchmark_group("opus");
    g.throughput(audio_ms(DecodeBench::UNIT));
    let mut w = DecodeBench::new();
    g.bench_function("decode_20ms_packet", |b| b.iter(|| black_box(w.step())));
    g.finish();
}

fn mix(c: &mut Criterion) {
    let mut g = c.benchmark_group("timeline");
    g.throughput(audio_ms(MixBench::UNIT));
    let mut w = MixBench::new();
    g.bench_function("mix_4_tracks_100ms", |b| b.iter(|| black_box(w.step())));
    g.finish();
}

fn flac(c: &mut Criterion) {
    let mut g = c.benchmark_group("flac");
    g.throughput(audio_ms(FlacBench::UNIT));
    let mut speech = FlacBench::new(true);
    g.bench_function("encode_speech_100ms", |b| {
        b.iter(|| black_box(speech.step()))
    });
    let mut silence = FlacBench::new(false);
    g.bench_function("encode_silence_100ms", |b| {
        b.iter(|| black_box(silence.step()))
    });
    g.finish();
}

fn receive(c: &mut Criterion) {
    let mut g = c.benchmark_group("receive");
    g.throughput(audio_ms(SrtpBench::UNIT));
    let mut gcm = SrtpBench::new(true);
    g.bench_function("srtp_aes_gcm_rtp_packet", |b| {
        b.iter(|| black_box(gcm.step()))
    });
    let mut cm = SrtpBench::new(false);
    g.bench_function("srtp_aes_cm_sha1_rtp_packet", |b| {
        b.iter(|| black_box(cm.step()))
    });
    g.finish();
}

fn pipeline(c: &mut Criterion) {
    let mut g = c.benchmark_group("conference_60s");
    g.throughput(audio_ms(PipelineBench::unit()));
    g.sample_size(20);
    let mut full = PipelineBench::new();
    g.bench_function("pipeline", |b| b.iter(|| black_box(full.step())));
    let mut lower = LowerBoundBench::new(false);
    g.bench_function("decode_only", |b| b.iter(|| black_box(lower.step())));
    let mut bound = LowerBoundBench::new(true);
    g.bench_function("decode_encode", |b| b.iter(|| black_box(bound.step())));
    g.finish();
}

criterion_group!(stages, decode, mix, flac, receive, pipeline);
criterion_main!(stages);
