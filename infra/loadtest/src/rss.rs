//! This process's peak resident memory (Linux `VmHWM`), reset before each target so that a
//! report's figure is the peak while that target ran.

/// `VmHWM` of this process in MB (MiB, as the cold-start tool prints it); `None` off Linux.
pub fn peak_mb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb as f64 / 1024.0)
}

/// Lowers the high-water mark to the current RSS (`5` written to `/proc/self/clear_refs`,
/// Linux ≥ 4.0); false where that is not possible. What an earlier target left resident
/// (memory the allocator keeps) still counts: run one target per process for a clean figure.
pub fn reset_peak() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// On Linux a 64 MiB allocation shows in the peak, and after it is freed a reset lowers
    /// the peak again.
    #[test]
    fn peak_follows_a_large_allocation_and_reset_forgets_it() {
        let Some(before) = peak_mb() else { return };
        let big = std::hint::black_box(vec![1u8; 64 * 1024 * 1024]);
        let with_big = peak_mb().expect("still readable");
        assert!(with_big >= before + 60.0, "{before} MB → {with_big} MB");
        drop(big);
        if reset_peak() {
            let after = peak_mb().expect("still readable");
            assert!(
                after < with_big - 32.0,
                "{after} MB after the reset, {with_big} MB before"
            );
        }
    }
}
