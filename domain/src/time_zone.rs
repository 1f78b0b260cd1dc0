//! IANA time-zone names a merchant may report in: `Area/Location` names and `UTC`, as
//! PostgreSQL 15 knows them (`time_zones.txt`, one a line, sorted; taken from
//! `pg_timezone_names`, without the `posix/`, `right/` and `SystemV/` trees and without
//! abbreviations or POSIX strings, which are fixed offsets rather than places).

const NAMES: &str = include_str!("time_zones.txt");

/// Every known name, sorted.
pub fn all() -> impl Iterator<Item = &'static str> {
    NAMES.lines()
}

/// Whether `name` is a known zone (exact case).
pub fn is_known(name: &str) -> bool {
    NAMES.lines().any(|known| known == name)
}

#[cfg(test)]
mod tests {
    #[test]
    fn names_are_sorted_places_or_utc() {
        let names: Vec<&str> = super::all().collect();
        assert!(names.len() > 400);
        assert!(names.windows(2).all(|w| w[0] < w[1]));
        for ok in [
            "Asia/Shanghai",
            "UTC",
            "America/Argentina/Buenos_Aires",
            "Etc/GMT+3",
        ] {
            assert!(super::is_known(ok), "{ok}");
        }
        for bad in [
            "",
            "PST",
            "UTC+3",
            "EST5EDT",
            "asia/shanghai",
            "Mars/Olympus",
            "Asia/Shang",
        ] {
            assert!(!super::is_known(bad), "{bad}");
        }
    }
}
