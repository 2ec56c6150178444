//! hpchaos's own resource use, for the watch's cost record: CPU time and
//! peak resident memory of this process, from getrusage(2).

/// User + system CPU time this process has used so far (ms); 0 when
/// getrusage fails (it does not for `RUSAGE_SELF`).
pub fn cpu_ms() -> f64 {
    let Some(usage) = rusage() else { return 0.0 };
    let ms = |t: libc::timeval| t.tv_sec as f64 * 1000.0 + t.tv_usec as f64 / 1000.0;
    ms(usage.ru_utime) + ms(usage.ru_stime)
}

/// The process's peak resident set size so far (KiB, Linux's unit for
/// `ru_maxrss`); 0 when unknown.
pub fn peak_rss_kib() -> u64 {
    rusage().map_or(0, |u| u.ru_maxrss.max(0) as u64)
}

fn rusage() -> Option<libc::rusage> {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage writes a whole `rusage` into the pointer it is
    // given, which points at one; on failure (-1) it is not read.
    let status = unsafe { libc::getrusage(libc::RUSAGE_SELF, usage.as_mut_ptr()) };
    // SAFETY: status 0 means the struct was filled in.
    (status == 0).then(|| unsafe { usage.assume_init() })
}

#[cfg(test)]
mod tests {
    #[test]
    fn cpu_time_grows_with_work_and_memory_is_seen() {
        let before = super::cpu_ms();
        let mut x = 0u64;
        for i in 0..20_000_000u64 {
            x = x.wrapping_mul(31).wrapping_add(i);
        }
        std::hint::black_box(x);
        assert!(super::cpu_ms() > before);
        assert!(
            super::peak_rss_kib() > 1000,
            "a test process holds more than 1 MiB"
        );
    }
}
