//! Unit tests of `procfs`.

use super::*;

#[test]
fn reads_cpu_ticks_after_a_name_with_spaces_and_parens() {
    let stat = "4242 (jit ape) (x)) S 1 4242 4242 0 -1 4194560 1000 0 0 0 \
                    350 25 0 0 20 0 7 0 12345 100000000 2500 18446744073709551615";
    assert_eq!(parse_stat_ticks(stat), Some(375));
    assert_eq!(parse_stat_ticks("garbage"), None);
    assert_eq!(parse_stat_ticks("1 (x) S 1 2"), None);
}

#[test]
fn reads_rss_peak_and_threads() {
    let status = "Name:\tjitape\nVmHWM:\t   20480 kB\nVmRSS:\t   10240 kB\nThreads:\t7\n";
    assert_eq!(parse_status(status), Some((10240, 20480, 7)));
    assert_eq!(parse_status("Name:\tx\n"), None);
}

#[test]
fn samples_this_process() {
    let s = sample(std::process::id()).expect("own /proc entry");
    assert!(s.rss_kib > 0 && s.peak_rss_kib >= s.rss_kib);
    assert!(s.threads >= 1 && s.fds >= 3);
    let (cpus, _, mem) = machine();
    assert!(cpus >= 1 && mem > 0);
}
