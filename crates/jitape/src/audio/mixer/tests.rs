//! Unit tests of `mixer`.

use super::*;

#[test]
fn below_the_ceiling_the_mix_is_exact() {
    let mut l = Limiter::new(48_000, -1.0);
    let sum: Vec<i32> = (0..1000).map(|i| (i * 29) % 20000 - 10000).collect();
    let mut out = Vec::new();
    l.process(&sum, &mut out);
    assert!(sum.iter().zip(&out).all(|(a, b)| *a == i32::from(*b)));
    assert_eq!(l.limited, 0);
}

#[test]
fn an_overload_stays_under_the_ceiling_with_its_sign() {
    let mut l = Limiter::new(48_000, -1.0);
    let sum: Vec<i32> = (0..4800)
        .map(|i| (90_000.0 * (i as f64 * 0.05).sin()) as i32)
        .collect();
    let mut out = Vec::new();
    l.process(&sum, &mut out);
    let ceiling = (32767.0 * 10f64.powf(-1.0 / 20.0)) as i32 + 1;
    for (a, b) in sum.iter().zip(&out) {
        assert!(i32::from(*b).abs() <= ceiling);
        assert!(a.signum() == i32::from(*b).signum() || *b == 0 || a.abs() < 100);
    }
    assert!(l.limited > 0);
}

/// The limiter as it was before the copy path: the envelope followed at every sample.
struct Reference {
    ceiling: f32,
    release: f32,
    envelope: f32,
    limited: u64,
}

impl Reference {
    fn process(&mut self, sum: &[i32], out: &mut Vec<i16>) {
        for &x in sum {
            let a = (x as f32).abs();
            self.envelope = (self.envelope * self.release).max(a);
            out.push(if self.envelope > self.ceiling {
                self.limited += 1;
                (x as f32 * (self.ceiling / self.envelope))
                    .round()
                    .clamp(-32768.0, 32767.0) as i16
            } else {
                x as i16
            });
        }
    }
}

#[test]
fn the_copy_path_changes_no_sample_and_no_count() {
    // Silence, speech below the ceiling, overloads that leave the envelope above it for a
    // while, samples exactly at the ceiling's integer part and one above, in odd chunks.
    let mut l = Limiter::new(48_000, -1.0);
    let mut r = Reference {
        ceiling: l.ceiling,
        release: l.release,
        envelope: 0.0,
        limited: 0,
    };
    let c = l.ceiling_int as i32;
    let mut noise = 0x9E37_79B9u32;
    let mut signal: Vec<i32> = Vec::new();
    for part in 0..40 {
        let n = 300 + (part * 977) % 5000;
        for i in 0..n {
            noise ^= noise << 13;
            noise ^= noise >> 17;
            noise ^= noise << 5;
            let wobble = (noise % 200) as i32 - 100;
            signal.push(match part % 5 {
                0 => 0,
                1 => ((i as f64 * 0.03).sin() * 20_000.0) as i32 + wobble,
                2 => ((i as f64 * 0.02).sin() * 80_000.0) as i32,
                3 if i == n / 2 => c + 1,
                3 => {
                    if i % 2 == 0 {
                        c
                    } else {
                        -c
                    }
                }
                _ => wobble,
            });
        }
    }
    let (mut a, mut b) = (Vec::new(), Vec::new());
    let mut at = 0;
    let mut k = 0;
    while at < signal.len() {
        let n = [4800, 1, 255, 256, 257, 4799, 10_000][k % 7].min(signal.len() - at);
        let mut out = Vec::new();
        l.process(&signal[at..at + n], &mut out);
        a.extend(out);
        r.process(&signal[at..at + n], &mut b);
        at += n;
        k += 1;
    }
    assert_eq!(a.len(), signal.len());
    assert!(a == b, "the copy path changed samples");
    assert_eq!(l.limited, r.limited);
    assert!(
        l.limited > 1000,
        "the test must drive the limiter: {}",
        l.limited
    );
}
