//! The bundled default data, as `scripts/setup` leaves it.

use std::path::Path;
use std::process::Command;

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The committed checksum list, as (sha256, file name) pairs.
fn checksums() -> Vec<(String, String)> {
    std::fs::read_to_string(repo().join("data/bundled.sha256"))
        .unwrap()
        .lines()
        .map(|line| {
            let (sum, name) = line.split_once("  ").expect("sha256sum format");
            (sum.to_owned(), name.to_owned())
        })
        .collect()
}

#[test]
fn the_checksum_list_names_the_ten_maestro_files() {
    let names: Vec<String> = checksums().into_iter().map(|(_, name)| name).collect();
    let expected: Vec<String> = (1..=10).map(|i| format!("Maestro_{i}.mid")).collect();
    assert_eq!(names, expected);
}

#[test]
fn setup_placed_the_ten_files_with_their_committed_checksums() {
    let dir = repo().join("data/bundled");
    let output = Command::new("sha256sum")
        .args(["--check", "--strict", "../bundled.sha256"])
        .current_dir(&dir)
        .output()
        .expect("sha256sum runs");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stdout));
    let total: u64 = checksums()
        .iter()
        .map(|(_, name)| std::fs::metadata(dir.join(name)).unwrap().len())
        .sum();
    // FACTS.md: 1.2 MB in all.
    assert!((1_100_000..1_300_000).contains(&total), "{total} bytes");
}

#[test]
fn fetching_again_repairs_a_corrupted_file_from_the_cached_download() {
    let target = std::env::temp_dir().join(format!("runner-bundled-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&target);
    std::fs::create_dir_all(&target).unwrap();
    for (_, name) in checksums() {
        std::fs::copy(repo().join("data/bundled").join(&name), target.join(&name)).unwrap();
    }
    std::fs::write(target.join("Maestro_3.mid"), b"MThd but not really").unwrap();

    let output = Command::new(repo().join("scripts/fetch-bundled-data"))
        .env("RUNNER_BUNDLED_DIR", &target)
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{log}");
    assert!(!log.contains("downloading"), "the cached sdist should be reused: {log}");
    let repaired = std::fs::read(target.join("Maestro_3.mid")).unwrap();
    let original = std::fs::read(repo().join("data/bundled/Maestro_3.mid")).unwrap();
    assert_eq!(repaired, original);
    std::fs::remove_dir_all(&target).unwrap();
}
