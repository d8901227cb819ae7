//! Wall-clock time as the state file and the API count it.

use std::time::SystemTime;

/// Unix time in seconds (leases are kept in it: they must survive restarts).
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
