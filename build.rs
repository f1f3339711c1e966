//! Build script: the build date `srvr` and `mntr` print, as ZooKeeper's
//! "built on YYYY-MM-DD HH:MM UTC". `SOURCE_DATE_EPOCH` (reproducible
//! builds, Debian packaging) wins over the time of the build.

use std::time::{SystemTime, UNIX_EPOCH};

/// (year, month, day) of a day counted from 1970-01-01 (Howard Hinnant's civil_from_days).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(month <= 2), month, day)
}

fn main() {
    println!("cargo:rerun-if-env-changed=SOURCE_DATE_EPOCH");
    println!("cargo:rerun-if-changed=src");
    println!("cargo:rerun-if-changed=Cargo.toml");
    let secs = std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|v| v.parse::<i64>().ok())
        .unwrap_or_else(|| SystemTime::now().duration_since(UNIX_EPOCH).expect("the clock is after 1970").as_secs() as i64);
    let (year, month, day) = civil_from_days(secs.div_euclid(86_400));
    let minutes = secs.rem_euclid(86_400) / 60;
    println!("cargo:rustc-env=KEEPER_BUILD_DATE={year:04}-{month:02}-{day:02} {:02}:{:02} UTC", minutes / 60, minutes % 60);
}
